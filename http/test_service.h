// For http/ tests only: the service of index/test_service.h over exact ("Flat")
// shards: kItems items "i<N>" (dim kDim), kUsers users "u<N>", max_k 50,
// max_ef_search 256, max_exclude 8.
#ifndef TOWERPS_HTTP_TEST_SERVICE_H_
#define TOWERPS_HTTP_TEST_SERVICE_H_

#include <memory>

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/test_service.h"

namespace towerps::http {

inline constexpr int kDim = 8;
inline constexpr int kItems = 200;
inline constexpr int kUsers = 16;

inline index::TestServiceSpec HttpTestSpec() {
  index::TestServiceSpec spec;
  spec.dim = kDim;
  spec.items = kItems;
  spec.users = kUsers;
  spec.jitter = 0.01f;
  spec.factory = "Flat";
  spec.options.max_k = 50;
  spec.options.max_ef_search = 256;
  spec.options.max_exclude = 8;
  return spec;
}

inline std::unique_ptr<index::EmbeddingTable> TestTable(data::Side side) {
  return index::TestTable(HttpTestSpec(), side);
}

inline std::unique_ptr<index::RetrievalService> TestService() {
  auto service = index::MakeTestService(HttpTestSpec(), FreshTestDir("http_index"));
  EXPECT_TRUE(service.ok()) << service.status();
  return service.ok() ? *std::move(service) : nullptr;
}

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TEST_SERVICE_H_
