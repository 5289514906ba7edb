// bench/ support shared by the suites that build big sparse_emb tables (sparse_emb,
// checkpoint): the key of row i, a table config, filling a table through Pull, RSS.
// Thread-compatible.
#ifndef TOWERPS_BENCH_TABLE_FILL_H_
#define TOWERPS_BENCH_TABLE_FILL_H_

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <vector>

#include "sparse_emb/embedding_table.h"
#include "sparse_emb/row_layout.h"

namespace towerps::bench {

inline constexpr size_t kBatch = 4096;
inline constexpr uint64_t kSalt = 0x5eed;

// The key of row i: scattered over the key space (and so over the stripes).
inline uint64_t KeyOf(uint64_t i) { return Mix64(i ^ kSalt); }

// dim `dim` fp32, row-wise Adagrad, uniform init, 16 stripes.
inline sparse_emb::TableConfig Config(int dim) {
  sparse_emb::TableConfig c;
  c.name = "bench";
  c.dim = dim;
  c.optimizer.kind = sparse_emb::OptimizerKind::kRowwiseAdagrad;
  c.initializer.kind = sparse_emb::InitKind::kUniform;
  c.num_stripes = 16;
  return c;
}

// Creates rows for keys KeyOf(0 .. n) through Pull; returns the seconds it took.
inline double Fill(sparse_emb::EmbeddingTable* table, uint64_t n) {
  std::vector<uint64_t> keys(kBatch);
  std::vector<float> out(kBatch * table->dim());
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; i += kBatch) {
    const size_t m = std::min<uint64_t>(kBatch, n - i);
    for (size_t j = 0; j < m; ++j) keys[j] = KeyOf(i + j);
    table->Pull({keys.data(), m}, 0, out.data());
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Resident set size of this process, bytes.
inline double RssBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace towerps::bench

#endif  // TOWERPS_BENCH_TABLE_FILL_H_
