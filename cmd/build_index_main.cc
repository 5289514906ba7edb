// `towerps build-index`: partitions the exported item embeddings into S shards by
// key hash and builds one Faiss index per shard (HNSW on inner product by default),
// in parallel, written with a MANIFEST (index/sharded_index.h).
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "gflags/gflags.h"
#include "index/embeddings.h"
#include "index/sharded_index.h"

DEFINE_int32(shards, 4, "index shards S (item key hash -> shard)");
DEFINE_int32(hnsw_m, 32, "HNSW graph degree M");
DEFINE_int32(ef_construction, 200, "HNSW efConstruction (beam width while building)");
DEFINE_string(factory, "",
              "Faiss index factory string (e.g. HNSW32,Flat or IVF256,PQ16); empty: "
              "HNSW<hnsw_m>,Flat");

namespace towerps::cmd {

int RunBuildIndex(int /*argc*/, char** /*argv*/) {
  if (FLAGS_embeddings.empty() || FLAGS_index_dir.empty()) {
    std::fprintf(stderr, "towerps build-index: --embeddings and --index_dir are required\n");
    return 2;
  }
  index::IndexBuildOptions options;
  options.shards = FLAGS_shards;
  options.ann.hnsw_m = FLAGS_hnsw_m;
  options.ann.ef_construction = FLAGS_ef_construction;
  options.ann.factory = FLAGS_factory;
  options.threads = ThreadsOrAllCores();
  if (absl::Status valid = options.Validate(); !valid.ok()) return Fail("build-index", valid);
  auto items = index::EmbeddingTable::Read(absl::StrCat(FLAGS_embeddings, "/items.emb"));
  if (!items.ok()) return Fail("build-index", items.status());
  if ((*items)->side != data::Side::kItem) {
    return Fail("build-index", absl::InvalidArgumentError("items.emb holds user embeddings"));
  }
  const auto start = std::chrono::steady_clock::now();
  auto manifest = index::BuildShardedIndex(options, (*items)->keys, (*items)->values.data(),
                                           (*items)->dim, (*items)->model_step, FLAGS_index_dir);
  if (!manifest.ok()) return Fail("build-index", manifest.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("built %zu shards (%s, efConstruction %d) over %ld items of dim %d in %.2f s: %s\n",
              manifest->shards.size(), manifest->factory.c_str(), manifest->ef_construction,
              static_cast<long>(manifest->items), manifest->dim, seconds,
              FLAGS_index_dir.c_str());
  for (size_t s = 0; s < manifest->shards.size(); ++s) {
    std::printf("  shard %zu: %ld items, %lu bytes\n", s,
                static_cast<long>(manifest->shards[s].count),
                static_cast<unsigned long>(manifest->shards[s].bytes));
  }
  return 0;
}

}  // namespace towerps::cmd
