// TopKApi: the HTTP/JSON face of index::RetrievalService, as pure functions of the
// request (no sockets: TopKServer wires them to cpp-httplib; the fuzzer and tests
// call them directly). docs/index.md, "HTTP API", is the contract:
//
//   GET  /v1/topk?user=ID&k=K[&ef=E][&exclude=ID,ID,...]
//   POST /v1/topk  {"vector":[dim floats],"k":K,"ef":E,"exclude":["ID",...]}
//                  (or "user":"ID" instead of "vector": exclusions too long for a URI)
//   -> 200 {"user":"ID","k":K,"items":[{"id":"RAW","key":"KEY","score":S},...],"took_us":T}
//   GET  /healthz  -> 200 {"status":"ok","items":N,"dim":D,"shards":S,"version":V,
//                           "delta_seq":Q}   (V: the served v-<V>, 0 for a plain dir)
//   errors         -> {"error":{"code":"invalid_argument","message":"..."}} with the
//                     HTTP status of HttpStatusOf(code)
//
// Parsing only checks shapes and types (a number where a number belongs, ids as
// UTF-8 strings); every range (k, ef, dim, exclusions, finite values) is the
// service's to check, so HTTP and ZeroMQ refuse the same requests with the same words.
// Thread-safe (the service is).
#ifndef TOWERPS_HTTP_TOPK_API_H_
#define TOWERPS_HTTP_TOPK_API_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "index/retrieval_service.h"

namespace towerps::http {

// A reply: an HTTP status and a JSON body.
struct HttpReply {
  int status = 200;
  std::string body;
};

// What GET /healthz reports.
struct ServeInfo {
  int64_t items = 0;  // items the server answers from (0: unknown, a router)
  int dim = 0;        // query vector dim (0: unknown until a shard answers)
  int shards = 0;     // shards loaded, or shard servers routed to
};

// Query parameters as cpp-httplib decodes them (httplib::Params).
using QueryParams = std::multimap<std::string, std::string>;

// The one map from a Status code to an HTTP status: InvalidArgument, OutOfRange,
// FailedPrecondition -> 400; NotFound -> 404; Unavailable, DeadlineExceeded,
// ResourceExhausted -> 503 (retry); anything else -> 500.
int HttpStatusOf(absl::StatusCode code);
// "invalid_argument" for kInvalidArgument, and so on (absl's names, lower case).
std::string ErrorCodeName(absl::StatusCode code);
// The inverse of ErrorCodeName (kUnknown for a name that is none).
absl::StatusCode ErrorCodeFromName(absl::string_view name);
// {"error":{"code":ErrorCodeName(status.code()),"message":status.message()}} with
// `http_status` (HttpStatusOf(status.code()) when 0).
HttpReply ErrorReply(const absl::Status& status, int http_status = 0);

// The parsers return the service's query; its exclude holds data::HashKey of the raw ids.
// GET parameters: user (required), k (default 10), ef (default 0: the server's),
// exclude (comma-separated raw ids; may repeat). InvalidArgument for a missing user,
// an unknown or repeated parameter, a k or ef that is not a 32-bit integer, or an id
// that is not UTF-8.
absl::StatusOr<index::TopKQuery> ParseTopKParams(const QueryParams& params);
// A POST body: a JSON object with exactly one of "vector" (array of numbers) or
// "user" (string), and optional "k", "ef" (integers) and "exclude" (array of
// strings). InvalidArgument for malformed JSON, another key, or a wrong type.
absl::StatusOr<index::TopKQuery> ParseTopKBody(absl::string_view body);

class TopKApi {
 public:
  // `service` is borrowed and must outlive this object.
  TopKApi(index::RetrievalService* service, const ServeInfo& info)
      : service_(service), info_(info) {}

  // GET /v1/topk and POST /v1/topk: the reply, or an error reply.
  HttpReply Get(const QueryParams& params) const;
  HttpReply Post(absl::string_view body) const;
  // GET /healthz.
  HttpReply Health() const;

 private:
  HttpReply Answer(const absl::StatusOr<index::TopKQuery>& query, absl::Time start) const;

  index::RetrievalService* const service_;
  const ServeInfo info_;
};

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TOPK_API_H_
