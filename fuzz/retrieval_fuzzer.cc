// The retrieval service's request handling (towerps serve, local shards): the input
// is up to 8 TopK/Ping frames, answered by one service built at start-up
// (fuzz/tiny_service.h). Any request must get a reply or an error Status: an escaped
// exception or a sanitizer report is a crash.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "fuzz/tiny_service.h"
#include "index/retrieval_service.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static towerps::index::RetrievalService* service = towerps::fuzz::MakeTinyRetrievalService();
  towerps::fuzz::ForEachRequest(
      towerps::fuzz::AsView(data, size), 8,
      [](const towerps::net::wire::Envelope::Reader& r) { (void)service->Handle(r); });
  return 0;
}
