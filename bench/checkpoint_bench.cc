// bench/run.sh checkpoint [--quick] [--rows=N[,N...]] [--dir=DIR]
// The cost of checkpointing one sparse_emb table, the shape of the sparse_emb --scale
// run (dim 16 fp32, row-wise Adagrad, 16 stripes; ~93 B of RSS per row, so 100M rows
// take ~9.3 GiB), at 10M and 100M rows (--quick: 200k and 1M):
//   full snapshot: seconds (to durable: fsync + rename) and bytes; the longest a
//     stripe lock was held to copy one chunk (a push's worst wait for the save),
//     beside the whole write (how long every stripe was locked before saves became
//     non-stopping);
//   incremental snapshot after 1% and after 10% of the rows were pushed: seconds and
//     bytes, beside the full snapshot;
//   push throughput (rows/s, one thread, 4096-key uniform batches of existing rows)
//     while a full snapshot is written, beside the same pushes with no snapshot just
//     before, same table and run; and the longest single push in each window (a push
//     waits only while its stripe is being copied).
// Files go to --dir (default $TMPDIR, else /tmp) and are removed after each figure.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "bench/table_fill.h"
#include "common/file_util.h"
#include "sparse_emb/embedding_table.h"

namespace towerps::bench {
namespace {

using sparse_emb::EmbeddingTable;
using Clock = std::chrono::steady_clock;

constexpr int kDim = 16;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Pushes a small gradient to every row i < n with (Mix64(i) % 1000) < per_mille.
void Touch(EmbeddingTable* table, uint64_t n, int per_mille, uint64_t salt) {
  std::vector<uint64_t> keys;
  keys.reserve(kBatch);
  const std::vector<float> grads(kBatch * kDim, 0.01f);
  for (uint64_t i = 0; i < n; ++i) {
    if (Mix64(i ^ salt) % 1000 >= static_cast<uint64_t>(per_mille)) continue;
    keys.push_back(KeyOf(i));
    if (keys.size() == kBatch || i + 1 == n) {
      table->Push(keys, grads.data(), 0.1f, 1);
      keys.clear();
    }
  }
  if (!keys.empty()) table->Push(keys, grads.data(), 0.1f, 1);
}

struct Saved {
  double seconds = 0;
  double bytes = 0;
  double longest_lock = 0;  // seconds one stripe was locked for its copy
};

// Saves `table` to `path` (incremental or full); the file is removed.
Saved TimedSave(EmbeddingTable* table, const std::string& path, bool incremental) {
  EmbeddingTable::SaveOptions options;
  EmbeddingTable::SaveOptions::Stats stats;
  options.incremental = incremental;
  options.stats = &stats;
  const auto start = Clock::now();
  const absl::Status saved = table->Save(path, {}, options);
  const double seconds = Since(start);
  if (!saved.ok()) {
    std::fprintf(stderr, "bench_checkpoint: save failed: %s\n", saved.ToString().c_str());
    std::exit(1);
  }
  const double bytes = static_cast<double>(std::filesystem::file_size(path));
  std::filesystem::remove(path);
  return {seconds, bytes, stats.longest_lock_seconds};
}

// One thread pushing uniform batches of existing rows; counts rows and the longest
// push per window (window 0: no save; window 1: a save in progress).
class Pusher {
 public:
  Pusher(EmbeddingTable* table, uint64_t n) : table_(table), n_(n) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Pusher() {
    window_.store(2);
    thread_.join();
  }
  void SetWindow(int w) { window_.store(w); }
  double rows(int w) const { return rows_[w].load(); }
  double longest(int w) const { return longest_us_[w].load() / 1e6; }

 private:
  void Run() {
    std::vector<uint64_t> keys(kBatch);
    const std::vector<float> grads(kBatch * kDim, 0.001f);
    uint64_t x = 12345;
    int w;
    while ((w = window_.load()) < 2) {
      for (auto& k : keys) k = KeyOf((x = Mix64(x)) % n_);
      const auto start = Clock::now();
      table_->Push(keys, grads.data(), 0.1f, 2);
      const int64_t us = static_cast<int64_t>(Since(start) * 1e6);
      rows_[w].fetch_add(kBatch);
      if (us > longest_us_[w].load()) longest_us_[w].store(us);
    }
  }

  EmbeddingTable* const table_;
  const uint64_t n_;
  std::atomic<int> window_{0};
  std::atomic<int64_t> rows_[2] = {0, 0};
  std::atomic<int64_t> longest_us_[2] = {0, 0};
  std::thread thread_;
};

void Print(const std::string& name, double value, const std::string& unit,
           const std::string& peer = "", double peer_value = 0) {
  PrintFigure({"checkpoint", name, value, unit, peer, peer_value});
}

void Run(uint64_t n, const std::string& dir, bool quick) {
  const std::string tag = n >= 1'000'000 ? absl::StrCat(n / 1'000'000, "M")
                                         : absl::StrCat(n / 1000, "k");
  auto table = EmbeddingTable::Create(Config(kDim), nullptr).value();
  const double fill_s = Fill(table.get(), n);
  Print(absl::StrCat("fill_rate_", tag), n / fill_s / 1e6, "M rows/s");
  Print(absl::StrCat("rss_", tag), RssBytes() / (1 << 30), "GiB");
  const std::string path = dir + "/bench_checkpoint.snap";
  const Saved full = TimedSave(table.get(), path, false);
  const double full_s = full.seconds, full_bytes = full.bytes;
  Print(absl::StrCat("full_seconds_", tag), full_s, "s");
  Print(absl::StrCat("full_longest_lock_", tag), full.longest_lock * 1e3, "ms",
        "whole write (all stripes locked, before)", full_s * 1e3);
  Print(absl::StrCat("full_bytes_", tag), full_bytes / 1e6, "MB");
  Print(absl::StrCat("full_rate_", tag), full_bytes / full_s / 1e6, "MB/s");
  for (int percent : {1, 10}) {
    Touch(table.get(), n, percent * 10, 0xfeed + percent);
    const Saved inc = TimedSave(table.get(), path, true);
    const double inc_s = inc.seconds, inc_bytes = inc.bytes;
    const std::string name = absl::StrCat("_", percent, "pct_touched_", tag);
    Print("incremental_seconds" + name, inc_s, "s", "full snapshot", full_s);
    Print("incremental_bytes" + name, inc_bytes / 1e6, "MB", "full snapshot", full_bytes / 1e6);
  }
  // Pushes without, then during, a full snapshot.
  Pusher pusher(table.get(), n);
  const auto window = std::chrono::duration<double>(quick ? 0.5 : std::min(5.0, 2 * full_s));
  auto start = Clock::now();
  std::this_thread::sleep_for(window);
  const double base_s = Since(start);
  pusher.SetWindow(1);
  start = Clock::now();
  const double during_save_s = TimedSave(table.get(), path, false).seconds;
  const double during_s = Since(start);
  pusher.SetWindow(2);
  const double base_rate = pusher.rows(0) / base_s, during_rate = pusher.rows(1) / during_s;
  Print(absl::StrCat("push_rate_during_full_save_", tag), during_rate / 1e6, "M rows/s",
        "no save", base_rate / 1e6);
  Print(absl::StrCat("longest_push_during_full_save_", tag), pusher.longest(1) * 1e3, "ms",
        "no save", pusher.longest(0) * 1e3);
  Print(absl::StrCat("full_seconds_with_pushes_", tag), during_save_s, "s", "no pushes", full_s);
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  const bool quick = towerps::bench::QuickMode(argc, argv);
  std::vector<uint64_t> sizes = quick ? std::vector<uint64_t>{200'000, 1'000'000}
                                      : std::vector<uint64_t>{10'000'000, 100'000'000};
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--dir=", 0) == 0) dir = arg.substr(6);
    if (arg.rfind("--rows=", 0) == 0) {
      sizes.clear();
      for (absl::string_view n : absl::StrSplit(arg.substr(7), ',')) {
        uint64_t rows = 0;
        if (!absl::SimpleAtoi(n, &rows) || rows == 0) {
          std::fprintf(stderr, "bench_checkpoint: bad --rows '%s'\n", arg.c_str());
          return 2;
        }
        sizes.push_back(rows);
      }
    }
  }
  dir = absl::StrCat(dir, "/towerps_bench_checkpoint_", getpid());
  if (!towerps::CreateDirectories(dir).ok()) return 1;
  for (uint64_t n : sizes) towerps::bench::Run(n, dir, quick);
  (void)towerps::RemoveAll(dir);
  return 0;
}
