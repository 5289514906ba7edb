// TopKHttpClient: the client side of the HTTP API (topk_api.h), on cpp-httplib's
// client: `towerps query --http` and bench/serve_load. One connection, kept alive
// between calls. Thread-compatible (one client per thread).
#ifndef TOWERPS_HTTP_TOPK_CLIENT_H_
#define TOWERPS_HTTP_TOPK_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/retrieval_service.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace towerps::http {

struct TopKHttpRequest {
  std::string user;           // raw user id; empty: `vector`
  std::vector<float> vector;  // dim floats when user is empty
  int k = 10;
  int ef = 0;                        // 0: the server's default
  std::vector<std::string> exclude;  // raw item ids
};

// The reply body of a request: the result for 200, otherwise the JSON error's
// Status (its code by name, its message). DataLoss for a body that is neither.
absl::StatusOr<index::TopKResult> ParseTopKReply(int http_status, absl::string_view body);

class TopKHttpClient {
 public:
  // url: "http://HOST:PORT" (a trailing '/' allowed). InvalidArgument otherwise.
  // timeout_ms bounds connecting and each read and write.
  static absl::StatusOr<std::unique_ptr<TopKHttpClient>> Create(absl::string_view url,
                                                                int64_t timeout_ms);
  ~TopKHttpClient();

  // GET /v1/topk for a user (POST with "user" when the exclusions hold a comma or
  // would make the URI long), POST with "vector" otherwise. Errors: the server's
  // (ParseTopKReply), Unavailable when there is no answer (cpp-httplib's error).
  absl::StatusOr<index::TopKResult> Search(const TopKHttpRequest& request);

 private:
  explicit TopKHttpClient(std::unique_ptr<httplib::Client> client);
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TOPK_CLIENT_H_
