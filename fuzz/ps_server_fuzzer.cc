// A parameter server's request handling: the input is up to 8 request frames (split
// on fuzz_util.h's separator), handled in order by a fresh server of two small tables
// and a dense block. Any request must get a reply or an error Status: an exception
// escaping Handle, or a sanitizer report, is a crash. Checkpoint requests are not
// served here (they write or read the paths they name; the readers have their own
// targets).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "ps/server.h"
#include "sparse_emb/table_config.h"

namespace {

std::unique_ptr<towerps::ps::ParameterServer> MakeServer() {
  towerps::ps::ParameterServerOptions options;
  options.rank = 1;
  options.num_servers = 2;
  // Small dims and key limit: replies stay far below Cap'n Proto's blob limit.
  for (const char* text : {"name=a dim=4 optimizer=rowwise_adagrad stripes=2",
                           "name=b dim=8 dtype=fp16 optimizer=adam admit=2 sketch_width=1024 sketch_depth=1 "
                           "max_rows=16 stripes=1"}) {
    auto config = towerps::sparse_emb::ParseTableConfig(text);
    CHECK(config.ok()) << config.status();
    options.tables.push_back(*config);
  }
  options.dense_params = 10;
  options.max_keys_per_request = 256;
  auto server = towerps::ps::ParameterServer::Create(options, nullptr);
  CHECK(server.ok()) << server.status();
  return std::move(server).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using towerps::net::wire::Envelope;
  std::unique_ptr<towerps::ps::ParameterServer> server = MakeServer();
  towerps::fuzz::ForEachRequest(towerps::fuzz::AsView(data, size), 8,
                                [&](const Envelope::Reader& request) {
                                  if (request.getBody().which() == Envelope::Body::CHECKPOINT) {
                                    return;
                                  }
                                  (void)server->Handle(request);
                                });
  return 0;
}
