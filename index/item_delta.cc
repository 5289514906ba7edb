#include "index/item_delta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "common/pod_bytes.h"
#include "common/status.h"
#include "index/index_root.h"

namespace towerps::index {
namespace {

constexpr uint64_t kNoKey = ~uint64_t{0};  // id -1: AnnIndex's empty slot

// The rules a delta must keep, checked before writing and after reading.
absl::Status CheckDelta(const ItemDelta& d) {
  if (d.dim < 1 || d.dim > kMaxDeltaDim) {
    return absl::InvalidArgumentError(absl::StrCat("delta dim ", d.dim, " out of range"));
  }
  if (d.seq < 1) return absl::InvalidArgumentError("delta seq must be >= 1");
  if (d.base_version.empty() || d.base_version.size() > 255) {
    return absl::InvalidArgumentError("delta base version name empty or too long");
  }
  const size_t u = d.upsert_keys.size();
  if (d.upsert_raw_ids.size() != u || d.upsert_vectors.size() != u * static_cast<size_t>(d.dim)) {
    return absl::InvalidArgumentError("delta upsert lists disagree in size");
  }
  absl::flat_hash_set<uint64_t> seen;
  seen.reserve(u + d.removed_keys.size());
  for (size_t i = 0; i < u; ++i) {
    if (d.upsert_keys[i] == kNoKey || !seen.insert(d.upsert_keys[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("delta upsert key ", d.upsert_keys[i], " is -1 or repeated"));
    }
    if (d.upsert_raw_ids[i].size() > kMaxDeltaRawIdBytes) {
      return absl::InvalidArgumentError("delta raw id too long");
    }
  }
  for (float v : d.upsert_vectors) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("delta vector is not finite");
  }
  for (uint64_t key : d.removed_keys) {
    if (key == kNoKey || !seen.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("delta removed key ", key, " is -1, repeated or also upserted"));
    }
  }
  return absl::OkStatus();
}

// A bounds-checked cursor over the delta's bytes.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Pod(T* out) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    *out = LoadPod<T>(bytes_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(size_t n, absl::string_view* out) {
    if (bytes_.size() - pos_ < n) return false;
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t left() const { return bytes_.size() - pos_; }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status Truncated() { return absl::DataLossError("item delta truncated"); }

}  // namespace

absl::StatusOr<std::string> SerializeItemDelta(const ItemDelta& d) {
  TOWERPS_RETURN_IF_ERROR(CheckDelta(d));
  std::string out(kItemDeltaMagic, sizeof(kItemDeltaMagic));
  AppendPod<uint32_t>(&out, kItemDeltaFormat);
  AppendPod<uint32_t>(&out, static_cast<uint32_t>(d.dim));
  AppendPod<uint64_t>(&out, d.seq);
  AppendPod<int64_t>(&out, d.model_step);
  AppendPod<int64_t>(&out, d.created_at_ms);
  AppendPod<uint32_t>(&out, static_cast<uint32_t>(d.base_version.size()));
  out += d.base_version;
  AppendPod<uint64_t>(&out, d.upsert_keys.size());
  AppendPod<uint64_t>(&out, d.removed_keys.size());
  for (size_t i = 0; i < d.upsert_keys.size(); ++i) {
    AppendPod<uint64_t>(&out, d.upsert_keys[i]);
    AppendPod<uint32_t>(&out, static_cast<uint32_t>(d.upsert_raw_ids[i].size()));
    out += d.upsert_raw_ids[i];
    out.append(reinterpret_cast<const char*>(d.upsert_vectors.data() + i * d.dim),
               sizeof(float) * d.dim);
  }
  for (uint64_t key : d.removed_keys) AppendPod<uint64_t>(&out, key);
  AppendPod<uint32_t>(&out, Crc32c(out));
  return out;
}

absl::StatusOr<ItemDelta> ParseItemDelta(absl::string_view bytes) {
  if (bytes.size() < sizeof(kItemDeltaMagic) + sizeof(uint32_t)) return Truncated();
  if (std::memcmp(bytes.data(), kItemDeltaMagic, sizeof(kItemDeltaMagic)) != 0) {
    return absl::DataLossError("not an item delta (bad magic)");
  }
  const absl::string_view body = bytes.substr(0, bytes.size() - sizeof(uint32_t));
  if (LoadPod<uint32_t>(bytes.data() + body.size()) != Crc32c(body)) {
    return absl::DataLossError("item delta checksum mismatch");
  }
  Reader in(body.substr(sizeof(kItemDeltaMagic)));
  ItemDelta d;
  uint32_t format = 0, dim = 0, name_size = 0;
  uint64_t upserts = 0, removals = 0;
  absl::string_view name;
  if (!in.Pod(&format) || !in.Pod(&dim) || !in.Pod(&d.seq) || !in.Pod(&d.model_step) ||
      !in.Pod(&d.created_at_ms) || !in.Pod(&name_size) || !in.Bytes(name_size, &name) ||
      !in.Pod(&upserts) || !in.Pod(&removals)) {
    return Truncated();
  }
  if (format != kItemDeltaFormat) {
    return absl::DataLossError(absl::StrCat("item delta format ", format, " unknown"));
  }
  if (dim < 1 || dim > static_cast<uint32_t>(kMaxDeltaDim)) {
    return absl::InvalidArgumentError(absl::StrCat("delta dim ", dim, " out of range"));
  }
  d.dim = static_cast<int>(dim);
  d.base_version = std::string(name);
  // Every upsert takes at least 12 + 4 * dim bytes, every removal 8: sizes that
  // cannot fit in what is left are refused before anything is allocated.
  const uint64_t min_upsert = 12 + 4 * uint64_t{dim};
  if (upserts > in.left() / min_upsert || removals > in.left() / 8 ||
      upserts * min_upsert + removals * 8 > in.left()) {
    return Truncated();
  }
  d.upsert_keys.resize(upserts);
  d.upsert_raw_ids.resize(upserts);
  d.upsert_vectors.resize(upserts * dim);
  for (uint64_t i = 0; i < upserts; ++i) {
    uint32_t id_size = 0;
    absl::string_view id, vector;
    if (!in.Pod(&d.upsert_keys[i]) || !in.Pod(&id_size) || id_size > kMaxDeltaRawIdBytes ||
        !in.Bytes(id_size, &id) || !in.Bytes(sizeof(float) * dim, &vector)) {
      return id_size > kMaxDeltaRawIdBytes ? absl::InvalidArgumentError("delta raw id too long")
                                           : Truncated();
    }
    d.upsert_raw_ids[i] = std::string(id);
    std::memcpy(d.upsert_vectors.data() + i * dim, vector.data(), vector.size());
  }
  d.removed_keys.resize(removals);
  for (uint64_t i = 0; i < removals; ++i) {
    if (!in.Pod(&d.removed_keys[i])) return Truncated();
  }
  if (in.left() != 0) return absl::DataLossError("trailing bytes after the item delta");
  TOWERPS_RETURN_IF_ERROR(CheckDelta(d));
  return d;
}

std::string ItemDeltaPath(const std::string& root, uint64_t seq) {
  return absl::StrFormat("%s/deltas/delta-%08u", root, seq);
}

int64_t ItemDeltaSeqOfName(absl::string_view name) {
  constexpr absl::string_view kPrefix = "delta-";
  if (name.size() != kPrefix.size() + 8 || name.substr(0, kPrefix.size()) != kPrefix) return -1;
  int64_t seq = 0;
  for (char c : name.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return -1;
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

absl::StatusOr<std::vector<uint64_t>> ListItemDeltas(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<uint64_t> seqs;
  const std::string dir = root + "/deltas";
  std::error_code ec;
  if (!fs::exists(dir, ec)) return seqs;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const int64_t seq = ItemDeltaSeqOfName(it->path().filename().string());
    if (seq > 0) seqs.push_back(static_cast<uint64_t>(seq));
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

absl::Status WriteItemDelta(const std::string& root, const ItemDelta& delta) {
  TOWERPS_ASSIGN_OR_RETURN(std::string bytes, SerializeItemDelta(delta));
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(root + "/deltas"));
  const std::string path = ItemDeltaPath(root, delta.seq);
  if (PathExists(path)) return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<uint64_t> PublishItemDelta(const std::string& root, ItemDelta delta) {
  TOWERPS_ASSIGN_OR_RETURN(delta.base_version, ReadCurrentVersion(root));
  TOWERPS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, ListItemDeltas(root));
  delta.seq = seqs.empty() ? 1 : seqs.back() + 1;
  delta.created_at_ms = absl::ToUnixMillis(absl::Now());
  TOWERPS_RETURN_IF_ERROR(WriteItemDelta(root, delta));
  return delta.seq;
}

absl::StatusOr<ItemDelta> DiffItemEmbeddings(const EmbeddingTable& before,
                                             const EmbeddingTable& now, float tolerance) {
  if (before.side != data::Side::kItem || now.side != data::Side::kItem) {
    return absl::InvalidArgumentError("an item delta compares two item tables");
  }
  if (before.dim != now.dim) {
    return absl::InvalidArgumentError(absl::StrCat("the item tables have dims ", before.dim,
                                                   " and ", now.dim, ": build a new version"));
  }
  ItemDelta d;
  d.dim = now.dim;
  d.model_step = now.model_step;
  absl::flat_hash_map<uint64_t, int64_t> old_row;
  old_row.reserve(before.size());
  for (int64_t i = 0; i < before.size(); ++i) old_row[before.keys[i]] = i;
  absl::flat_hash_set<uint64_t> present;
  present.reserve(now.size());
  for (int64_t i = 0; i < now.size(); ++i) {
    present.insert(now.keys[i]);
    auto it = old_row.find(now.keys[i]);
    bool changed = it == old_row.end();
    for (int c = 0; !changed && c < d.dim; ++c) {
      changed = std::fabs(now.row(i)[c] - before.row(it->second)[c]) > tolerance;
    }
    if (!changed) continue;
    d.upsert_keys.push_back(now.keys[i]);
    d.upsert_raw_ids.push_back(now.raw_ids[i]);
    d.upsert_vectors.insert(d.upsert_vectors.end(), now.row(i), now.row(i) + d.dim);
  }
  for (uint64_t key : before.keys) {
    if (!present.contains(key)) d.removed_keys.push_back(key);
  }
  return d;
}

}  // namespace towerps::index
