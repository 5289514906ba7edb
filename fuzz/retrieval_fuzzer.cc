// The retrieval service's request handling (towerps serve, local shards): the input
// is up to 8 TopK/Ping frames, answered by one service built at start-up over a
// small two-shard HNSW index of 64 items (dim 4) with 8 known users. The service is
// immutable, so one instance serves every input. Any request must get a reply or an
// error Status: an escaped exception or a sanitizer report is a crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"

namespace {

using towerps::index::EmbeddingTable;

constexpr int kDim = 4;

std::unique_ptr<EmbeddingTable> MakeTable(towerps::data::Side side, int n, uint64_t salt) {
  auto table = std::make_unique<EmbeddingTable>();
  table->side = side;
  table->dim = kDim;
  for (int i = 0; i < n; ++i) {
    table->keys.push_back(salt + static_cast<uint64_t>(i));
    table->raw_ids.push_back(absl::StrCat(side == towerps::data::Side::kUser ? "u" : "i", i));
    for (int d = 0; d < kDim; ++d) {
      table->values.push_back(static_cast<float>((i * 7 + d * 3) % 11) - 5.0f);
    }
  }
  return table;
}

towerps::index::RetrievalService* MakeService() {
  auto items = MakeTable(towerps::data::Side::kItem, 64, 1000);
  towerps::index::IndexBuildOptions build;
  build.shards = 2;
  build.ann.hnsw_m = 8;
  build.ann.ef_construction = 16;
  const std::string dir = towerps::fuzz::ScratchDir::Get().File("index");
  auto manifest = towerps::index::BuildShardedIndex(build, items->keys, items->values.data(),
                                                    kDim, 1, dir);
  CHECK(manifest.ok()) << manifest.status();
  auto local = towerps::index::ShardedIndex::Load(dir);
  CHECK(local.ok()) << local.status();
  towerps::index::RetrievalServiceOptions options;
  options.max_k = 32;
  options.default_ef_search = 16;
  options.max_ef_search = 64;
  options.max_exclude = 64;
  auto service = towerps::index::RetrievalService::Create(
      nullptr, options, std::move(local).value(),
      MakeTable(towerps::data::Side::kUser, 8, 1), std::move(items));
  CHECK(service.ok()) << service.status();
  return service->release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static towerps::index::RetrievalService* service = MakeService();
  towerps::fuzz::ForEachRequest(
      towerps::fuzz::AsView(data, size), 8,
      [](const towerps::net::wire::Envelope::Reader& r) { (void)service->Handle(r); });
  return 0;
}
