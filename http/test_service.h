// For http/ tests only: a RetrievalService over a small exact (Flat) two-shard index
// of kItems items "i<N>" (dim kDim) with kUsers users "u<N>", max_k 50,
// max_ef_search 256, max_exclude 8.
#ifndef TOWERPS_HTTP_TEST_SERVICE_H_
#define TOWERPS_HTTP_TEST_SERVICE_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/test_dir.h"
#include "data/keys.h"
#include "gtest/gtest.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"

namespace towerps::http {

inline constexpr int kDim = 8;
inline constexpr int kItems = 200;
inline constexpr int kUsers = 16;

inline std::unique_ptr<index::EmbeddingTable> TestTable(data::Side side, int n) {
  auto table = std::make_unique<index::EmbeddingTable>();
  table->side = side;
  table->dim = kDim;
  for (int i = 0; i < n; ++i) {
    table->raw_ids.push_back(absl::StrCat(side == data::Side::kUser ? "u" : "i", i));
    table->keys.push_back(data::HashKey(table->raw_ids.back()));
    for (int d = 0; d < kDim; ++d) {
      table->values.push_back(static_cast<float>((i * 7 + d * 3) % 11) - 5.0f + 0.01f * i);
    }
  }
  return table;
}

inline std::unique_ptr<index::RetrievalService> TestService() {
  auto items = TestTable(data::Side::kItem, kItems);
  index::IndexBuildOptions build;
  build.shards = 2;
  build.ann.factory = "Flat";
  const std::string dir = FreshTestDir("http_index");
  auto manifest = index::BuildShardedIndex(build, items->keys, items->values.data(), kDim, 1, dir);
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  auto local = index::ShardedIndex::Load(dir);
  EXPECT_TRUE(local.ok()) << local.status();
  if (!local.ok()) return nullptr;
  index::RetrievalServiceOptions options;
  options.max_k = 50;
  options.max_ef_search = 256;
  options.max_exclude = 8;
  auto service = index::RetrievalService::Create(
      nullptr, options, *std::move(local), TestTable(data::Side::kUser, kUsers), std::move(items));
  EXPECT_TRUE(service.ok()) << service.status();
  return service.ok() ? *std::move(service) : nullptr;
}

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TEST_SERVICE_H_
