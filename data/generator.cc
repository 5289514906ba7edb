#include "data/generator.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/keys.h"

namespace towerps::data {
namespace {

constexpr int kTags = 50;
constexpr double kMaxActivity = 50.0;

// Stream tags for the per-entity hashes; any distinct constants do.
enum Stream : uint64_t {
  kUserCluster = 1, kUserSecond, kUserCountry, kUserLanguage, kUserAge, kUserActivity,
  kUserEvents, kItemCountry, kItemLanguage, kItemCreator, kItemTag, kItemDuration,
  kCentroid, kItemVector, kNextCluster, kSuccessor,
};

// A uniform double in [0, 1) from 64 random bits.
double ToUnit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// SplitMix64: a fast, seedable stream (the user's events).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  double Unit() { return ToUnit(Next()); }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

class Hasher {
 public:
  explicit Hasher(uint64_t seed) : seed_(seed) {}
  uint64_t Bits(Stream s, uint64_t id, uint64_t k = 0) const {
    return CombineSeeds(CombineSeeds(seed_ + s, id), k);
  }
  double Unit(Stream s, uint64_t id, uint64_t k = 0) const { return ToUnit(Bits(s, id, k)); }
  double Gaussian(Stream s, uint64_t id, uint64_t k) const {
    const double u1 = std::max(Unit(s, id, 2 * k), 1e-300);
    const double u2 = Unit(s, id, 2 * k + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  uint64_t seed_;
};

// Everything about one entity that is a function of (seed, id).
class World {
 public:
  explicit World(const GenerateOptions& o) : o_(o), h_(o.seed) {}

  int UserCluster(int64_t u, int which) const {
    const int primary = static_cast<int>(h_.Bits(kUserCluster, u) % o_.clusters);
    if (which == 0) return primary;
    return (primary + 1 + static_cast<int>(h_.Bits(kUserSecond, u) % (o_.clusters - 1))) %
           o_.clusters;
  }
  int CountryOf(int cluster, Stream s, int64_t id) const {
    return h_.Unit(s, id) < 0.75 ? cluster % o_.countries
                                 : static_cast<int>(h_.Bits(s, id, 1) % o_.countries);
  }
  int LanguageOf(int country, Stream s, int64_t id) const {
    return h_.Unit(s, id) < 0.9 ? country % o_.languages
                                : static_cast<int>(h_.Bits(s, id, 1) % o_.languages);
  }
  int UserCountry(int64_t u) const { return CountryOf(UserCluster(u, 0), kUserCountry, u); }
  int ItemCluster(int64_t i) const { return static_cast<int>(i % o_.clusters); }
  int ItemCountry(int64_t i) const { return CountryOf(ItemCluster(i), kItemCountry, i); }
  // Heavy-tailed activity weight in [~0.3, kMaxActivity].
  double Activity(int64_t u) const {
    return std::min(kMaxActivity, 0.3 / std::sqrt(std::max(h_.Unit(kUserActivity, u), 1e-12)));
  }
  // An item of `cluster` with power-law popularity over its rank.
  int64_t PopularItem(int cluster, double unit) const {
    const int64_t n = (o_.items - cluster + o_.clusters - 1) / o_.clusters;
    double x;
    const double a = o_.zipf_exponent;
    if (a == 0) x = 1 + unit * n;
    else if (std::abs(a - 1.0) < 1e-9) x = std::exp(unit * std::log(n + 1.0));
    else x = std::pow(1 + unit * (std::pow(n + 1.0, 1 - a) - 1), 1 / (1 - a));
    const int64_t rank = std::clamp<int64_t>(static_cast<int64_t>(x) - 1, 0, n - 1);
    return cluster + o_.clusters * rank;
  }

  int NextCluster(int c) const {
    return (c + 1 + static_cast<int>(h_.Bits(kNextCluster, c) % (o_.clusters - 1))) % o_.clusters;
  }
  int64_t Successor(int64_t i, int j) const {
    return PopularItem(NextCluster(ItemCluster(i)), h_.Unit(kSuccessor, i, j));
  }

  // Appends the item's side columns: creator,item_country,item_language,tags,duration.
  void AppendItemColumns(int64_t i, std::string* out) const {
    const int c = ItemCluster(i);
    const int country = ItemCountry(i);
    const int64_t creator =
        c + o_.clusters * static_cast<int64_t>(h_.Bits(kItemCreator, i) % o_.creators_per_cluster);
    const int tag1 = h_.Unit(kItemTag, i) < 0.8 ? c % kTags : static_cast<int>(h_.Bits(kItemTag, i, 1) % kTags);
    const int tag2 = static_cast<int>(h_.Bits(kItemTag, i, 2) % kTags);
    const int64_t duration = static_cast<int64_t>(std::exp(4.0 + 0.8 * h_.Gaussian(kItemDuration, i, 0)));
    absl::StrAppend(out, "cr", creator, ",c", country, ",l", LanguageOf(country, kItemLanguage, i),
                    ",g", tag1, "|g", tag2, ",", duration);
  }
  void AppendUserColumns(int64_t u, std::string* out) const {
    const int country = UserCountry(u);
    absl::StrAppend(out, "c", country, ",l", LanguageOf(country, kUserLanguage, u), ",",
                    18 + h_.Bits(kUserAge, u) % 50);
  }
  float ContentValue(int64_t i, int d) const {
    return static_cast<float>(h_.Gaussian(kCentroid, ItemCluster(i), d) +
                              0.5 * h_.Gaussian(kItemVector, i, d));
  }
  const Hasher& hasher() const { return h_; }

 private:
  const GenerateOptions& o_;
  Hasher h_;
};

absl::Status CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError("generate interrupted");
  }
  return absl::OkStatus();
}

constexpr char kSpec[] =
    "# Written by `towerps generate`; the column spec reference is docs/column_spec.md.\n"
    "interactions = interactions.csv\n"
    "delimiter = comma\n"
    "header = true\n"
    "user = user\n"
    "item = item\n"
    "timestamp = ts\n"
    "label = click:1, like:2\n"
    "user_categorical = country, language\n"
    "user_dense = age\n"
    "item_categorical = creator, item_country, item_language\n"
    "item_multi = tags\n"
    "item_dense = duration:log1p\n";

}  // namespace

absl::Status GenerateOptions::Validate() const {
  if (output_dir.empty()) return absl::InvalidArgumentError("--output (a directory) is required");
  if (users < 1 || items < 1 || interactions < 0) {
    return absl::InvalidArgumentError("--users and --items must be >= 1, --interactions >= 0");
  }
  if (clusters < 2 || clusters > items) {
    return absl::InvalidArgumentError("--clusters must be in [2, items]");
  }
  if (zipf_exponent < 0 || zipf_exponent > 5) {
    return absl::InvalidArgumentError("--zipf_exponent must be in [0, 5]");
  }
  if (in_cluster < 0 || in_cluster > 1 || negative_fraction < 0 || negative_fraction >= 1) {
    return absl::InvalidArgumentError("--in_cluster in [0, 1], --negative_fraction in [0, 1)");
  }
  if (!(sequence_strength >= 0 && sequence_strength <= 1) || successors < 1 || successors > 64) {
    return absl::InvalidArgumentError("--sequence_strength in [0, 1], --successors in [1, 64]");
  }
  if (countries < 1 || languages < 1 || creators_per_cluster < 1 || content_dim < 0 ||
      content_dim > 4096 || time_span_seconds < 1) {
    return absl::InvalidArgumentError(
        "--countries, --languages, --creators_per_cluster, --time_span_seconds must be >= 1; "
        "--content_dim in [0, 4096]");
  }
  return absl::OkStatus();
}

std::string PlantedTruth::UserId(int64_t user) { return absl::StrCat("u", user); }
std::string PlantedTruth::ItemId(int64_t item) { return absl::StrCat("i", item); }
int PlantedTruth::UserCluster(int64_t user, int which) const {
  return World(options_).UserCluster(user, which);
}
int PlantedTruth::UserCountry(int64_t user) const { return World(options_).UserCountry(user); }
int PlantedTruth::ItemCountry(int64_t item) const { return World(options_).ItemCountry(item); }
int PlantedTruth::NextCluster(int cluster) const { return World(options_).NextCluster(cluster); }
int64_t PlantedTruth::Successor(int64_t item, int j) const {
  return World(options_).Successor(item, j);
}

absl::StatusOr<GenerateResult> Generate(const GenerateOptions& o,
                                        const std::atomic<bool>* cancel) {
  TOWERPS_RETURN_IF_ERROR(o.Validate());
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(o.output_dir));
  const World world(o);
  GenerateResult result;
  result.users = o.users;
  result.items = o.items;

  // Per-user row counts: the cumulative share of activity, rounded, so the total is
  // exactly o.interactions without storing a count per user.
  double total_activity = 0;
  for (int64_t u = 0; u < o.users; ++u) total_activity += world.Activity(u);

  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter log,
                           AtomicFileWriter::Open(absl::StrCat(o.output_dir, "/interactions.csv")));
  std::string buf = "user,item,ts,click,like,country,language,age,creator,item_country,"
                    "item_language,tags,duration\n";
  std::string user_cols;
  std::vector<int64_t> times;
  double cumulative = 0;
  int64_t emitted = 0;
  for (int64_t u = 0; u < o.users; ++u) {
    cumulative += world.Activity(u);
    const auto target = static_cast<int64_t>(
        std::llround(static_cast<double>(o.interactions) * cumulative / total_activity));
    const int64_t n = std::max<int64_t>(0, std::min(target, o.interactions) - emitted);
    emitted += n;
    if (u % 1024 == 0) TOWERPS_RETURN_IF_ERROR(CheckCancel(cancel));
    if (n == 0) continue;
    Rng rng(CombineSeeds(o.seed + kUserEvents, static_cast<uint64_t>(u)));
    // Each user is active from a random start to the end of the span.
    const int64_t first = o.start_time + static_cast<int64_t>(rng.Unit() * 0.5 * o.time_span_seconds);
    const int64_t span = o.start_time + o.time_span_seconds - first;
    times.resize(n);
    for (int64_t& t : times) t = first + static_cast<int64_t>(rng.Unit() * span);
    std::sort(times.begin(), times.end());
    const int primary = world.UserCluster(u, 0), secondary = world.UserCluster(u, 1);
    const int country = world.UserCountry(u);
    user_cols.clear();
    world.AppendUserColumns(u, &user_cols);
    int64_t previous = -1;  // the user's last positive, for the successor chain
    for (int64_t k = 0; k < n; ++k) {
      int64_t item;
      int click = 1, like = 0;
      if (rng.Unit() < o.negative_fraction) {
        item = static_cast<int64_t>(rng.Below(o.items));
        click = 0;
      } else if (o.sequence_strength > 0 && previous >= 0 && rng.Unit() < o.sequence_strength) {
        item = world.Successor(previous, static_cast<int>(rng.Below(o.successors)));
        like = rng.Unit() < 0.5 ? 1 : 0;
        ++result.positives;
        previous = item;
      } else {
        const bool own = rng.Unit() < o.in_cluster;
        const int cluster = own ? (rng.Unit() < 0.7 ? primary : secondary)
                                : static_cast<int>(rng.Below(o.clusters));
        item = world.PopularItem(cluster, rng.Unit());
        // Users lean to items from their own country: one redraw half the time.
        if (world.ItemCountry(item) != country && rng.Unit() < 0.5) {
          item = world.PopularItem(cluster, rng.Unit());
        }
        like = rng.Unit() < (own ? 0.5 : 0.15) ? 1 : 0;
        ++result.positives;
        previous = item;
      }
      absl::StrAppend(&buf, "u", u, ",i", item, ",", times[k], ",", click, ",", like, ",",
                      user_cols, ",");
      world.AppendItemColumns(item, &buf);
      buf.push_back('\n');
      if (buf.size() >= (1 << 20)) {
        TOWERPS_RETURN_IF_ERROR(log.Append(buf));
        buf.clear();
      }
    }
  }
  TOWERPS_RETURN_IF_ERROR(log.Append(buf));
  result.interactions = emitted;
  result.bytes += log.size();
  TOWERPS_RETURN_IF_ERROR(log.Commit());

  std::string spec = kSpec;
  if (o.content_dim > 0) {
    spec += "item_vectors = item_vectors.csv\n";
    TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter vectors,
                             AtomicFileWriter::Open(absl::StrCat(o.output_dir, "/item_vectors.csv")));
    buf.clear();
    for (int64_t i = 0; i < o.items; ++i) {
      if (i % 4096 == 0) TOWERPS_RETURN_IF_ERROR(CheckCancel(cancel));
      absl::StrAppend(&buf, "i", i);
      for (int d = 0; d < o.content_dim; ++d) {
        absl::StrAppend(&buf, absl::StrFormat(",%.4f", world.ContentValue(i, d)));
      }
      buf.push_back('\n');
      if (buf.size() >= (1 << 20)) {
        TOWERPS_RETURN_IF_ERROR(vectors.Append(buf));
        buf.clear();
      }
    }
    TOWERPS_RETURN_IF_ERROR(vectors.Append(buf));
    result.bytes += vectors.size();
    TOWERPS_RETURN_IF_ERROR(vectors.Commit());
  }
  result.bytes += spec.size();
  TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(o.output_dir, "/towerps.spec"), spec));
  return result;
}

}  // namespace towerps::data
