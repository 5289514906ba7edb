// The retrieval service that the retrieval and http_topk fuzz targets drive:
// index/test_service.h's with its defaults (two Faiss HNSW shards of 64 items, dim 4,
// 8 users) and small limits (k <= 32, efSearch <= 64, <= 64 exclusions) so that inputs
// reach every bound within -max_len. Built once per process in its scratch directory;
// immutable, so one instance serves every input.
#ifndef TOWERPS_FUZZ_TINY_SERVICE_H_
#define TOWERPS_FUZZ_TINY_SERVICE_H_

#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "index/test_service.h"

namespace towerps::fuzz {

inline index::TestServiceSpec TinySpec() {
  index::TestServiceSpec spec;
  spec.options.max_k = 32;
  spec.options.default_ef_search = 16;
  spec.options.max_ef_search = 64;
  spec.options.max_exclude = 64;
  return spec;
}

// Aborts when the harness cannot build it (not an input's fault). Never freed.
inline index::RetrievalService* MakeTinyRetrievalService() {
  auto service = index::MakeTestService(TinySpec(), ScratchDir::Get().File("index"));
  CHECK(service.ok()) << service.status();
  return service->release();
}

}  // namespace towerps::fuzz

#endif  // TOWERPS_FUZZ_TINY_SERVICE_H_
