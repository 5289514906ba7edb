// The HTTP API's request handling (`towerps serve --http_port`, http/topk_api.h) as
// pure functions: the input is a query string and a POST body (two parts), answered
// by TopKApi::Get (after cpp-httplib's own query-string decoding) and TopKApi::Post
// over one service built at start-up (fuzz/tiny_service.h), then both replies read
// back by the client's ParseTopKReply, and each part read as a reply too. Every reply must be JSON (an object, parsed
// strictly) with a status in 200..599; a crash, an escaped exception or a sanitizer
// report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "fuzz/tiny_service.h"
#include "glog/logging.h"
#include "http/topk_api.h"
#include "http/topk_client.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace {

towerps::http::TopKApi* MakeApi() {
  return new towerps::http::TopKApi(
      towerps::fuzz::MakeTinyRetrievalService(),
      {towerps::fuzz::TinySpec().items, towerps::fuzz::TinySpec().dim,
       towerps::fuzz::TinySpec().shards});
}

void CheckReply(const towerps::http::HttpReply& reply) {
  CHECK(reply.status >= 200 && reply.status <= 599) << reply.status;
  const nlohmann::json doc = nlohmann::json::parse(reply.body, nullptr, false);
  CHECK(!doc.is_discarded() && doc.is_object()) << "not a JSON object: " << reply.body;
  (void)towerps::http::ParseTopKReply(reply.status, reply.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static towerps::http::TopKApi* api = MakeApi();
  std::vector<absl::string_view> parts =
      towerps::fuzz::SplitParts(towerps::fuzz::AsView(data, size), 2);
  httplib::Params params;
  httplib::detail::parse_query_text(std::string(parts[0]), params);
  CheckReply(api->Get(params));
  if (parts.size() > 1) CheckReply(api->Post(parts[1]));
  for (absl::string_view part : parts) {
    (void)towerps::http::ParseTopKReply(200, part);
    (void)towerps::http::ParseTopKReply(400, part);
  }
  return 0;
}
