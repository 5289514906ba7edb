// The HTTP API's request handling (`towerps serve --http_port`, http/topk_api.h) as
// pure functions: the input is a query string and a POST body (two parts), answered
// by TopKApi::Get (after cpp-httplib's own query-string decoding) and TopKApi::Post
// over one service built at start-up (a two-shard HNSW index of 64 items, dim 4, 8
// known users), then both replies read back by the client's ParseTopKReply, and
// each part read as a reply too. Every reply must be JSON (an object, parsed
// strictly) with a status in 200..599; a crash, an escaped exception or a sanitizer
// report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/keys.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "http/topk_api.h"
#include "http/topk_client.h"
#include "httplib.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"
#include "nlohmann/json.hpp"

namespace {

using towerps::index::EmbeddingTable;

constexpr int kDim = 4;

std::unique_ptr<EmbeddingTable> MakeTable(towerps::data::Side side, int n) {
  auto table = std::make_unique<EmbeddingTable>();
  table->side = side;
  table->dim = kDim;
  for (int i = 0; i < n; ++i) {
    table->raw_ids.push_back(absl::StrCat(side == towerps::data::Side::kUser ? "u" : "i", i));
    table->keys.push_back(towerps::data::HashKey(table->raw_ids.back()));
    for (int d = 0; d < kDim; ++d) {
      table->values.push_back(static_cast<float>((i * 7 + d * 3) % 11) - 5.0f);
    }
  }
  return table;
}

towerps::http::TopKApi* MakeApi() {
  auto items = MakeTable(towerps::data::Side::kItem, 64);
  towerps::index::IndexBuildOptions build;
  build.shards = 2;
  build.ann.hnsw_m = 8;
  build.ann.ef_construction = 16;
  const std::string dir = towerps::fuzz::ScratchDir::Get().File("index");
  auto manifest =
      towerps::index::BuildShardedIndex(build, items->keys, items->values.data(), kDim, 1, dir);
  CHECK(manifest.ok()) << manifest.status();
  auto local = towerps::index::ShardedIndex::Load(dir);
  CHECK(local.ok()) << local.status();
  towerps::index::RetrievalServiceOptions options;
  options.max_k = 32;
  options.default_ef_search = 16;
  options.max_ef_search = 64;
  options.max_exclude = 64;
  auto service = towerps::index::RetrievalService::Create(
      nullptr, options, std::move(local).value(), MakeTable(towerps::data::Side::kUser, 8),
      std::move(items));
  CHECK(service.ok()) << service.status();
  return new towerps::http::TopKApi(service->release(), {64, kDim, 2});
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
