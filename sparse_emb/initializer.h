// Deterministic row initialisation: the initial embedding of key k is a pure function
// of (config, k), so any server, in any run, re-sharded or restarted, creates the same
// row for the same key. Uses a counter-based generator (Mix64 of seed, key and index);
// no state, no allocation. Thread-safe.
#ifndef TOWERPS_SPARSE_EMB_INITIALIZER_H_
#define TOWERPS_SPARSE_EMB_INITIALIZER_H_

#include <cstdint>

#include "sparse_emb/table_config.h"

namespace towerps::sparse_emb {

// Writes the initial embedding of `key` (out: dim floats).
//   kZeros: all 0. kUniform: uniform in [-scale, scale).
//   kTruncatedNormal: normal(0, scale) with draws beyond 2 * scale redrawn.
void InitializeRow(const InitializerConfig& config, uint64_t key, int dim, float* out);

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_INITIALIZER_H_
