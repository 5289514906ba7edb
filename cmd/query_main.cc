// `towerps query`: the retrieval service's CLI client - top-K items for a user id
// or a raw vector, with exclusions and efSearch, printed as one JSON object; over
// ZeroMQ (--server) or the HTTP/JSON API (--http, http/topk_client.h).
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cmd/curve_flags.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "common/json.h"
#include "data/keys.h"
#include "gflags/gflags.h"
#include "http/topk_client.h"
#include "index/retrieval_service.h"
#include "net/transport.h"

DEFINE_string(server, "", "the retrieval server's (or router's) endpoint");
DEFINE_string(http, "",
              "instead of --server: the HTTP API of a serve --http_port, http://HOST:PORT");
DEFINE_string(user, "", "raw user id to retrieve for");
DEFINE_string(vector, "", "comma-separated query vector (instead of --user)");
DEFINE_int32(k, 10, "results wanted");
DEFINE_string(exclude, "", "comma-separated raw item ids never to return");
DEFINE_int64(query_timeout_ms, 5000, "deadline of the request");

namespace towerps::cmd {

namespace {

// Over ZeroMQ + Cap'n Proto (--server).
absl::StatusOr<index::TopKResult> QueryZmq(const index::TopKQuery& query) {
  net::ZmqContext ctx;
  net::RpcClientOptions rpc;
  rpc.endpoint = FLAGS_server;
  rpc.name = "query";
  rpc.timeout_ms = FLAGS_query_timeout_ms;
  auto keys = CurveKeysFromFlags(net::kOperatorIdentity);
  if (!keys.ok()) return keys.status();
  auto curve = keys->ClientCurve(net::kServeIdentity);
  if (!curve.ok()) return curve.status();
  rpc.curve = *curve;
  auto client = net::RpcClient::Connect(&ctx, rpc);
  if (!client.ok()) return client.status();
  const uint64_t id = (*client)->NextRequestId();
  auto reply = (*client)->Call(id, index::EncodeTopKRequest("query", id, query), true);
  if (!reply.ok()) return reply.status();
  return index::DecodeTopKReply(*reply);
}

// Over the HTTP API (--http): exclusions travel as raw ids.
absl::StatusOr<index::TopKResult> QueryHttp(const index::TopKQuery& query,
                                            std::vector<std::string> exclude) {
  auto client = http::TopKHttpClient::Create(FLAGS_http, FLAGS_query_timeout_ms);
  if (!client.ok()) return client.status();
  http::TopKHttpRequest request;
  request.user = query.user_id;
  request.vector = query.vector;
  request.k = query.k;
  request.ef = query.ef_search;
  request.exclude = std::move(exclude);
  return (*client)->Search(request);
}

}  // namespace

int RunQuery(int /*argc*/, char** /*argv*/) {
  if (FLAGS_server.empty() == FLAGS_http.empty() || FLAGS_user.empty() == FLAGS_vector.empty()) {
    std::fprintf(stderr,
                 "towerps query: exactly one of --server or --http, and exactly one of --user or "
                 "--vector are required\n");
    return 2;
  }
  index::TopKQuery query;
  query.user_id = FLAGS_user;
  for (absl::string_view v : absl::StrSplit(FLAGS_vector, ',', absl::SkipEmpty())) {
    float value;
    if (!absl::SimpleAtof(v, &value)) {
      std::fprintf(stderr, "towerps query: bad --vector entry '%s'\n", std::string(v).c_str());
      return 2;
    }
    query.vector.push_back(value);
  }
  std::vector<std::string> exclude;
  for (absl::string_view id : absl::StrSplit(FLAGS_exclude, ',', absl::SkipEmpty())) {
    exclude.emplace_back(id);
    query.exclude.push_back(data::HashKey(id));
  }
  query.k = FLAGS_k;
  query.ef_search = FLAGS_ef_search;
  auto result = FLAGS_http.empty() ? QueryZmq(query) : QueryHttp(query, std::move(exclude));
  if (!result.ok()) return Fail("query", result.status());
  std::string items = "[";
  for (size_t i = 0; i < result->hits.size(); ++i) {
    JsonObject item;
    item.Add("key", result->hits[i].key)
        .Add("id", result->raw_ids[i])
        .Add("score", static_cast<double>(result->hits[i].score));
    absl::StrAppend(&items, i == 0 ? "" : ",", item.ToString());
  }
  items += "]";
  // One JSON object: {"user":..., "k":..., "items":[{"key","id","score"}, ...]}.
  JsonObject out;
  out.Add("user", FLAGS_user)
      .Add("k", FLAGS_k)
      .Add("results", static_cast<int64_t>(result->hits.size()));
  out.AddRaw("items", items);
  std::printf("%s\n", out.ToString().c_str());
  return 0;
}

}  // namespace towerps::cmd
