// `towerps query`: the retrieval service's CLI client - top-K items for a user id
// or a raw vector, with exclusions and efSearch, printed as one JSON object.
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
#include "index/retrieval_service.h"
#include "net/transport.h"

DEFINE_string(server, "", "the retrieval server's (or router's) endpoint");
DEFINE_string(user, "", "raw user id to retrieve for");
DEFINE_string(vector, "", "comma-separated query vector (instead of --user)");
DEFINE_int32(k, 10, "results wanted");
DEFINE_string(exclude, "", "comma-separated raw item ids never to return");
DEFINE_int64(query_timeout_ms, 5000, "deadline of the request");

namespace towerps::cmd {

int RunQuery(int /*argc*/, char** /*argv*/) {
  if (FLAGS_server.empty() || FLAGS_user.empty() == FLAGS_vector.empty()) {
    std::fprintf(stderr,
                 "towerps query: --server and exactly one of --user or --vector are required\n");
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
  for (absl::string_view id : absl::StrSplit(FLAGS_exclude, ',', absl::SkipEmpty())) {
    query.exclude.push_back(data::HashKey(id));
  }
  query.k = FLAGS_k;
  query.ef_search = FLAGS_ef_search;
  net::ZmqContext ctx;
  net::RpcClientOptions rpc;
  rpc.endpoint = FLAGS_server;
  rpc.name = "query";
  rpc.timeout_ms = FLAGS_query_timeout_ms;
  auto keys = CurveKeysFromFlags(net::kOperatorIdentity);
  if (!keys.ok()) return Fail("query", keys.status());
  auto curve = keys->ClientCurve(net::kServeIdentity);
  if (!curve.ok()) return Fail("query", curve.status());
  rpc.curve = *curve;
  auto client = net::RpcClient::Connect(&ctx, rpc);
  if (!client.ok()) return Fail("query", client.status());
  const uint64_t id = (*client)->NextRequestId();
  auto reply = (*client)->Call(id, index::EncodeTopKRequest("query", id, query), true);
  if (!reply.ok()) return Fail("query", reply.status());
  auto result = index::DecodeTopKReply(*reply);
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
  out.Add("user", FLAGS_user).Add("k", FLAGS_k).Add("results",
                                                    static_cast<int64_t>(result->hits.size()));
  out.AddRaw("items", items);
  std::printf("%s\n", out.ToString().c_str());
  return 0;
}

}  // namespace towerps::cmd
