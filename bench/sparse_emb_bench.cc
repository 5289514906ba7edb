// bench/run.sh sparse_emb [--quick] [--scale [--rows=N]]
// EmbeddingTable beside what a user would otherwise write, measured in the same run:
//   baseline: std::unordered_map<uint64_t, std::vector<float>> (embedding + row-wise
//             Adagrad accumulator per row, the same ApplyOptimizer), behind a
//             std::shared_mutex taken once per batch (shared for pulls).
//   memory limit: a plain gather of the same rows from a flat huge-page array by
//             precomputed index, with software prefetch.
// Shapes: dim 64 fp32, row-wise Adagrad, 10M rows (--quick: 1M), 4096-key batches,
// uniform and Zipf(1.1) keys, one and two threads.
// --scale: one table of --rows (default 100M) rows of dim 16: RSS, insert and pull rate.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "bench/table_fill.h"
#include "common/prefetch.h"
#include "sparse_emb/embedding_table.h"
#include "sparse_emb/initializer.h"
#include "sparse_emb/optimizer.h"
#include "sparse_emb/row_layout.h"
#include "sparse_emb/row_store.h"

namespace towerps::bench {
namespace {

using sparse_emb::EmbeddingTable;
using sparse_emb::TableConfig;

// The table a user would otherwise write.
class MapTable {
 public:
  MapTable(const TableConfig& config, size_t reserve) : config_(config) { map_.reserve(reserve); }

  void Pull(const uint64_t* keys, size_t n, float* out) {
    std::shared_lock lock(mu_);
    const int dim = config_.dim;
    for (size_t i = 0; i < n; ++i) {
      auto it = map_.find(keys[i]);
      if (it == map_.end()) {
        std::memset(out + i * dim, 0, sizeof(float) * dim);
      } else {
        std::memcpy(out + i * dim, it->second.data(), sizeof(float) * dim);
      }
    }
  }
  void Insert(const uint64_t* keys, size_t n) {
    std::unique_lock lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      std::vector<float>& row = map_[keys[i]];
      row.resize(config_.dim + 1);
      sparse_emb::InitializeRow(config_.initializer, keys[i], config_.dim, row.data());
      sparse_emb::InitOptimizerState(config_.optimizer, config_.dim, row.data() + config_.dim);
    }
  }
  void Push(const uint64_t* keys, size_t n, const float* grads, float lr) {
    std::unique_lock lock(mu_);
    const int dim = config_.dim;
    std::vector<float> scratch(dim);
    for (size_t i = 0; i < n; ++i) {
      std::vector<float>& row = map_[keys[i]];
      sparse_emb::ApplyOptimizer(config_.optimizer, dim, lr, 1, 0, grads + i * dim, scratch.data(),
                                 row.data(), row.data() + dim);
    }
  }

 private:
  const TableConfig config_;
  std::shared_mutex mu_;
  std::unordered_map<uint64_t, std::vector<float>> map_;
};

// Row indices [0, n) of `batches` batches: uniform, or Zipf(s) ranks mapped to rows by
// a fixed bijection so popular rows are scattered. `unique` de-duplicates each batch
// (pushes carry unique keys).
std::vector<std::vector<uint32_t>> MakeBatches(uint64_t n, int batches, double zipf_s,
                                               bool unique, uint64_t seed) {
  std::vector<double> cdf;
  if (zipf_s > 0) {
    cdf.resize(n);
    double sum = 0;
    for (uint64_t r = 0; r < n; ++r) cdf[r] = (sum += std::pow(static_cast<double>(r + 1), -zipf_s));
    for (double& c : cdf) c /= sum;
  }
  uint64_t mult = 2654435761ULL;
  while (std::gcd(mult, n) != 1) mult += 2;
  std::vector<std::vector<uint32_t>> out(batches);
  uint64_t counter = seed << 32;
  for (auto& batch : out) {
    batch.reserve(kBatch);
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t h = Mix64(++counter);
      uint64_t row;
      if (zipf_s > 0) {
        const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
        const uint64_t rank = std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
        row = (std::min(rank, n - 1) * mult) % n;
      } else {
        row = h % n;
      }
      batch.push_back(static_cast<uint32_t>(row));
    }
    if (unique) {
      std::sort(batch.begin(), batch.end());
      batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
    }
  }
  return out;
}

// Per-thread work: the batches' keys and gradient/output buffers, prepared untimed.
struct Work {
  std::vector<std::vector<uint64_t>> keys;
  std::vector<std::vector<uint32_t>> rows;
  size_t total = 0;
};

Work MakeWork(const std::vector<std::vector<uint32_t>>& batches, size_t first, size_t step) {
  Work w;
  for (size_t b = first; b < batches.size(); b += step) {
    w.rows.push_back(batches[b]);
    std::vector<uint64_t> k(batches[b].size());
    for (size_t i = 0; i < k.size(); ++i) k[i] = KeyOf(batches[b][i]);
    w.total += k.size();
    w.keys.push_back(std::move(k));
  }
  return w;
}

// Runs each fn(work, out, grads) on `threads` threads (one per Work), each thread over
// its share of the batches; returns each fn's keys per second, the median of
// `repeats` interleaved rounds.
using WorkFn = std::function<void(const Work&, float*, const float*)>;
std::vector<double> Rates(const std::vector<Work>& works, int dim, int repeats,
                          const std::vector<WorkFn>& fns) {
  size_t total = 0;
  for (const Work& w : works) total += w.total;
  std::vector<std::vector<float>> outs(works.size(), std::vector<float>(kBatch * dim));
  std::vector<float> grads(kBatch * dim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 13) - 0.006f;
  std::vector<std::function<void()>> runs;
  for (const WorkFn& fn : fns) {
    runs.push_back([&] {
      std::vector<std::thread> threads;
      for (size_t t = 0; t < works.size(); ++t) {
        threads.emplace_back([&, t] { fn(works[t], outs[t].data(), grads.data()); });
      }
      for (auto& th : threads) th.join();
    });
  }
  std::vector<double> rates;
  for (double seconds : InterleavedMedianSeconds(repeats, runs)) {
    rates.push_back(static_cast<double>(total) / seconds);
  }
  DoNotOptimize(outs[0][0]);
  return rates;
}

void FlatGather(const float* flat, const Work& w, int dim, float* out) {
  constexpr size_t kAhead = 12;
  for (const auto& rows : w.rows) {
    const size_t n = rows.size();
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) PrefetchLine(flat + static_cast<size_t>(rows[i + kAhead]) * dim);
      std::memcpy(out + i * dim, flat + static_cast<size_t>(rows[i]) * dim, sizeof(float) * dim);
    }
  }
}

void Suite(bool quick) {
  const uint64_t n = quick ? 1'000'000 : 10'000'000;
  const int dim = 64;
  const int batches = quick ? 60 : 200;
  // 9 rounds: on this shared VM a burst of load from other tenants can last several
  // rounds, and one contender of a round may catch it alone.
  const int repeats = 9;
  const TableConfig config = Config(dim);
  std::vector<uint64_t> fill(kBatch);

  // Fill ours, then the baseline, each measured from RSS.
  double rss0 = RssBytes();
  auto table = EmbeddingTable::Create(config, nullptr).value();
  const double ours_insert_s = Fill(table.get(), n);
  const double ours_bytes = (RssBytes() - rss0) / static_cast<double>(n);

  rss0 = RssBytes();
  MapTable map(config, n);
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; i += kBatch) {
    const size_t m = std::min<uint64_t>(kBatch, n - i);
    for (size_t j = 0; j < m; ++j) fill[j] = KeyOf(i + j);
    map.Insert(fill.data(), m);
  }
  const double map_insert_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double map_bytes = (RssBytes() - rss0) / static_cast<double>(n);

  const double payload = 8.0 + 4.0 * dim + 4.0;  // key + embedding + accumulator
  PrintFigure({"sparse_emb", "bytes_per_row_dim64_rowwise_adagrad", ours_bytes, "bytes",
               "payload", payload});
  PrintFigure({"sparse_emb", "bytes_per_row_unordered_map", map_bytes, "bytes", "payload",
               payload});
  PrintFigure({"sparse_emb", "insert_rate", n / ours_insert_s / 1e6, "M keys/s",
               "unordered_map", n / map_insert_s / 1e6});

  // The memory limit: the same rows in a flat array.
  sparse_emb::PageBuffer flat_buffer(n * dim * sizeof(float), /*huge=*/true);
  float* flat = reinterpret_cast<float*>(flat_buffer.data());
  for (uint64_t i = 0; i < n * dim; ++i) flat[i] = static_cast<float>(i & 1023);

  std::atomic<int64_t> step{1};
  for (const char* dist : {"uniform", "zipf1.1"}) {
    const double s = std::string(dist) == "uniform" ? 0.0 : 1.1;
    const auto pull_batches = MakeBatches(n, batches, s, /*unique=*/false, 1);
    const auto push_batches = MakeBatches(n, batches, s, /*unique=*/true, 2);
    for (int threads : {1, 2}) {
      std::vector<Work> pull_work, push_work;
      for (int t = 0; t < threads; ++t) {
        pull_work.push_back(MakeWork(pull_batches, t, threads));
        push_work.push_back(MakeWork(push_batches, t, threads));
      }
      const std::string suffix = absl::StrCat("_", dist, "_", threads, "t");
      auto ours_pull = [&](const Work& w, float* out, const float*) {
        for (const auto& k : w.keys) table->Pull(k, step++, out);
      };
      auto map_pull = [&](const Work& w, float* out, const float*) {
        for (const auto& k : w.keys) map.Pull(k.data(), k.size(), out);
      };
      auto flat_pull = [&](const Work& w, float* out, const float*) {
        FlatGather(flat, w, dim, out);
      };
      auto ours_lookup = [&](const Work& w, float* out, const float*) {
        for (const auto& k : w.keys) table->Lookup(k, out);
      };
      std::vector<WorkFn> pulls = {ours_pull, map_pull, flat_pull};
      if (threads == 1) pulls.push_back(ours_lookup);
      const std::vector<double> pull_rates = Rates(pull_work, dim, repeats, pulls);
      const double ours = pull_rates[0], base = pull_rates[1], limit = pull_rates[2];
      PrintFigure({"sparse_emb", absl::StrCat("pull", suffix), ours / 1e6, "M keys/s", "unordered_map",
                   base / 1e6});
      PrintFigure({"sparse_emb", absl::StrCat("pull", suffix, "_vs_flat_gather"), ours / 1e6, "M keys/s",
                   "flat_gather", limit / 1e6});
      if (threads == 1) {
        PrintFigure({"sparse_emb", absl::StrCat("lookup", suffix, "_vs_flat_gather"),
                     pull_rates[3] / 1e6, "M keys/s", "flat_gather", limit / 1e6});
      }
      auto ours_push = [&](const Work& w, float*, const float* grads) {
        for (const auto& k : w.keys) table->Push(k, grads, 0.01f, step++);
      };
      auto map_push = [&](const Work& w, float*, const float* grads) {
        for (const auto& k : w.keys) map.Push(k.data(), k.size(), grads, 0.01f);
      };
      const std::vector<double> push_rates = Rates(push_work, dim, repeats, {ours_push, map_push});
      const double ours_p = push_rates[0], base_p = push_rates[1];
      PrintFigure({"sparse_emb", absl::StrCat("push_rowwise_adagrad", suffix), ours_p / 1e6, "M keys/s",
                   "unordered_map", base_p / 1e6});
    }
  }
}

void Scale(uint64_t rows) {
  const int dim = 16;
  TableConfig config = Config(dim);
  config.num_stripes = 64;
  const double rss0 = RssBytes();
  auto table = EmbeddingTable::Create(config, nullptr).value();
  const double insert_s = Fill(table.get(), rows);
  const double rss = RssBytes() - rss0;
  const double payload = 8.0 + 4.0 * dim + 4.0;
  const std::string tag = absl::StrCat("_", rows / 1'000'000, "M_rows_dim16");
  PrintFigure({"sparse_emb", absl::StrCat("scale_rss", tag), rss / (1 << 30), "GiB", "payload",
               payload * static_cast<double>(rows) / (1 << 30)});
  PrintFigure({"sparse_emb", absl::StrCat("scale_insert_rate", tag), rows / insert_s / 1e6, "M keys/s", "", 0});
  const auto batches = MakeBatches(rows, 200, 0.0, false, 3);
  std::atomic<int64_t> step{1};
  for (int threads : {1, 2}) {
    std::vector<Work> work;
    for (int t = 0; t < threads; ++t) work.push_back(MakeWork(batches, t, threads));
    const double rate = Rates(work, dim, 5, {[&](const Work& w, float* o, const float*) {
      for (const auto& k : w.keys) table->Pull(k, step++, o);
    }})[0];
    PrintFigure({"sparse_emb", absl::StrCat("scale_pull_uniform_", threads, "t", tag),
                 rate / 1e6, "M keys/s", "", 0});
  }
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  uint64_t scale_rows = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--scale" && scale_rows == 0) scale_rows = 100'000'000;
    if (arg.rfind("--rows=", 0) == 0) scale_rows = std::stoull(arg.substr(7));
  }
  if (scale_rows > 0) {
    towerps::bench::Scale(scale_rows);
  } else {
    towerps::bench::Suite(towerps::bench::QuickMode(argc, argv));
  }
  return 0;
}
