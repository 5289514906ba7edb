// `towerps build-index`: partitions the exported item embeddings into S shards by
// key hash and builds one index per shard (--engine: hnswlib HNSW on inner product,
// exact for small shards, or Faiss), in parallel, written with a MANIFEST
// (index/sharded_index.h). With --index_root=ROOT it publishes a new version
// instead: builds ROOT/v-<n+1> and then points ROOT/CURRENT at it (atomically), so a
// `serve --index_dir=ROOT` swaps to it without a restart (index/index_root.h).
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "common/file_util.h"
#include "gflags/gflags.h"
#include "index/embeddings.h"
#include "index/index_root.h"
#include "index/sharded_index.h"

DEFINE_int32(shards, 4, "index shards S (item key hash -> shard)");
DEFINE_string(engine, "auto",
              "auto (exact for shards of at most --exact_max_items, hnswlib above: the "
              "fastest measured, docs/index.md), hnswlib, exact or faiss-hnsw (implied by "
              "--factory)");
DEFINE_int64(exact_max_items, 4096, "--engine=auto: exact search up to this many items a shard");
DEFINE_int32(hnsw_m, 32, "HNSW graph degree M");
DEFINE_int32(ef_construction, 200, "HNSW efConstruction (beam width while building)");
DEFINE_string(factory, "",
              "Faiss index factory string (e.g. HNSW32,Flat or IVF256,PQ16); empty: "
              "HNSW<hnsw_m>,Flat");
DEFINE_string(index_root, "",
              "publish a new version under this index root: build ROOT/v-<n+1>, then point "
              "ROOT/CURRENT at it (instead of --index_dir)");

namespace towerps::cmd {

int RunBuildIndex(int /*argc*/, char** /*argv*/) {
  if (FLAGS_embeddings.empty() || FLAGS_index_dir.empty() == FLAGS_index_root.empty()) {
    std::fprintf(stderr,
                 "towerps build-index: --embeddings and one of --index_dir or --index_root are "
                 "required\n");
    return 2;
  }
  std::string dir = FLAGS_index_dir, version;
  if (!FLAGS_index_root.empty()) {
    if (absl::Status made = CreateDirectories(FLAGS_index_root); !made.ok()) {
      return Fail("build-index", made);
    }
    version = absl::StrCat("v-", index::LatestVersionNumber(FLAGS_index_root) + 1);
    dir = absl::StrCat(FLAGS_index_root, "/", version);
  }
  index::IndexBuildOptions options;
  options.shards = FLAGS_shards;
  options.ann.hnsw_m = FLAGS_hnsw_m;
  options.ann.ef_construction = FLAGS_ef_construction;
  options.ann.factory = FLAGS_factory;
  options.ann.exact_max_items = FLAGS_exact_max_items;
  auto engine = index::ParseAnnEngine(FLAGS_engine);
  if (!engine.ok()) return Fail("build-index", engine.status());
  options.ann.engine = *engine;
  if (!FLAGS_factory.empty() && *engine == index::AnnEngine::kAuto) {
    options.ann.engine = index::AnnEngine::kFaissHnsw;
  }
  options.threads = ThreadsOrAllCores();
  if (absl::Status valid = options.Validate(); !valid.ok()) return Fail("build-index", valid);
  auto items = index::EmbeddingTable::Read(absl::StrCat(FLAGS_embeddings, "/items.emb"));
  if (!items.ok()) return Fail("build-index", items.status());
  if ((*items)->side != data::Side::kItem) {
    return Fail("build-index", absl::InvalidArgumentError("items.emb holds user embeddings"));
  }
  const auto start = std::chrono::steady_clock::now();
  auto manifest = index::BuildShardedIndex(options, (*items)->keys, (*items)->values.data(),
                                           (*items)->dim, (*items)->model_step, dir);
  if (!manifest.ok()) return Fail("build-index", manifest.status());
  if (!version.empty()) {
    absl::Status flipped = index::SetCurrentVersion(FLAGS_index_root, version);
    if (!flipped.ok()) return Fail("build-index", flipped);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "built %zu shards (%s: %s, efConstruction %d) over %ld items of dim %d in %.2f s: %s\n",
      manifest->shards.size(), std::string(index::AnnEngineName(manifest->engine)).c_str(),
      manifest->factory.c_str(), manifest->ef_construction, static_cast<long>(manifest->items),
      manifest->dim, seconds, dir.c_str());
  if (!version.empty()) {
    std::printf("published %s: %s/CURRENT names it\n", version.c_str(), FLAGS_index_root.c_str());
  }
  for (size_t s = 0; s < manifest->shards.size(); ++s) {
    std::printf("  shard %zu: %ld items, %lu bytes\n", s,
                static_cast<long>(manifest->shards[s].count),
                static_cast<unsigned long>(manifest->shards[s].bytes));
  }
  return 0;
}

}  // namespace towerps::cmd
