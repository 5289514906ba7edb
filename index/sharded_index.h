// Item embeddings partitioned into S shards by key hash, one AnnIndex per shard,
// written with the engine's IO plus a MANIFEST, loaded (all shards or a subset),
// searched on a small pool of threads (all shards of one query at once) and merged.
//
// Directory layout (docs/index.md):
//   <dir>/shard-00000.<ext> ... shard-<S-1>.<ext>   the engine's bytes, ids = item keys
//     (ext: faiss, hnsw or flat)
//   <dir>/MANIFEST   text, written last (atomically):
//     towerps-index 1
//     dim <d>
//     shards <S>
//     items <n>
//     model_step <step>
//     engine <faiss-hnsw|hnswlib|exact>   (absent in older indexes: faiss-hnsw)
//     factory <faiss factory string, or the engine's parameters>
//     ef_construction <e>
//     shard <i> <file> <count> <bytes> <crc32c>      (one line per shard)
// Item key k lives in shard ShardOf(k, S) = ReduceToRange(Mix64(k), S). A shard
// file that is missing or whose size or CRC-32C differs from the manifest is
// refused at load (DataLoss naming the file).
//
// Thread-safety: a loaded ShardedIndex is immutable; Search is thread-safe. Its
// search threads ("shard_search", ShardedIndexOptions::search_threads - 1 of them)
// live as long as the ShardedIndex.
#ifndef TOWERPS_INDEX_SHARDED_INDEX_H_
#define TOWERPS_INDEX_SHARDED_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/ann_index.h"

namespace towerps::index {

class ShardSearchPool;

// The shard of an item key.
uint32_t ShardOf(uint64_t key, int num_shards);

// One result: an item key and its inner-product score.
struct Hit {
  uint64_t key = 0;
  float score = 0;
};

// The k best of several best-first lists (descending score, ties by lower key).
std::vector<Hit> MergeHits(absl::Span<const std::vector<Hit>> lists, int k);

struct ShardManifestEntry {
  std::string file;
  int64_t count = 0;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
};

struct IndexManifest {
  int dim = 0;
  int64_t items = 0;
  int64_t model_step = 0;
  AnnEngine engine = AnnEngine::kFaissHnsw;
  std::string factory;
  int ef_construction = 0;
  std::vector<ShardManifestEntry> shards;

  std::string ToString() const;
  // DataLoss for a malformed manifest.
  static absl::StatusOr<IndexManifest> Parse(absl::string_view text);
};

struct IndexBuildOptions {
  // Shards S; >= 1.
  int shards = 4;
  // Per-shard index (engine, HNSW M, efConstruction, or a factory string). kAuto
  // is resolved once, by the largest shard, so every shard has one engine.
  AnnIndexOptions ann;
  // Shards built at once (std::threads); >= 1. Faiss's OpenMP threads per shard
  // are capped so that threads * omp threads stays near the core count.
  int threads = 1;

  absl::Status Validate() const;
};

// Partitions rows: out[s] = the row numbers (ascending) of keys in shard s.
std::vector<std::vector<int64_t>> PartitionByShard(absl::Span<const uint64_t> keys,
                                                   int num_shards);

// Builds S shards over keys: n, vectors: n * dim and writes them and the MANIFEST
// to `dir` (created; files replaced atomically). Errors: InvalidArgument (options,
// shapes, duplicate key), Faiss errors, file errors.
absl::StatusOr<IndexManifest> BuildShardedIndex(const IndexBuildOptions& options,
                                                absl::Span<const uint64_t> keys,
                                                const float* vectors, int dim,
                                                int64_t model_step, const std::string& dir);

struct ShardedIndexOptions {
  // Threads searching one query's shards at once, the caller's included; 0 = the
  // smaller of the loaded shards and the cores. 1 searches shard after shard on
  // the caller. The pool is shared by all concurrent queries (no thread per query):
  // a caller also searches its own shards, so a busy pool never stalls it.
  int search_threads = 0;

  absl::Status Validate() const;
};

// One query of ShardedIndex::SearchBatch: Search's arguments (borrowed).
struct BatchQuery {
  const float* vector = nullptr;  // dim floats
  int k = 10;
  int ef_search = 0;
  absl::Span<const uint64_t> exclude;
};

class ShardedIndex {
 public:
  // Loads the shards listed in `shards` (empty: all) of the index in `dir`, verifying
  // each file against the manifest. Errors: NotFound (manifest or shard file),
  // DataLoss (changed shard, malformed manifest), InvalidArgument (shard number,
  // options).
  static absl::StatusOr<std::unique_ptr<ShardedIndex>> Load(
      const std::string& dir, absl::Span<const int> shards = {},
      const ShardedIndexOptions& options = {});
  ~ShardedIndex();

  // The k best items for one query (dim floats) over the loaded shards, merged,
  // never one of `exclude` (item keys). Errors: InvalidArgument (k < 1), Faiss.
  absl::StatusOr<std::vector<Hit>> Search(const float* query, int k, int ef_search,
                                          absl::Span<const uint64_t> exclude) const;

  // Search for every query of a batch, answer i for queries[i], each exactly what
  // Search returns for it. Exact shards score the whole batch with one sgemm (per
  // block of rows) each; other engines spread the (query, shard) pairs over the
  // pool. A query's own error (k < 1) fails that query only; a library error fails
  // the queries it hit.
  std::vector<absl::StatusOr<std::vector<Hit>>> SearchBatch(
      absl::Span<const BatchQuery> queries) const;

  const IndexManifest& manifest() const { return manifest_; }
  const std::vector<int>& loaded_shards() const { return loaded_; }
  int dim() const { return manifest_.dim; }

 private:
  ShardedIndex() = default;

  IndexManifest manifest_;
  std::vector<int> loaded_;
  std::vector<std::unique_ptr<AnnIndex>> indexes_;  // parallel to loaded_
  std::unique_ptr<ShardSearchPool> pool_;           // null: search on the caller
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_SHARDED_INDEX_H_
