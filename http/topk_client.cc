#include "http/topk_client.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "http/topk_api.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace towerps::http {
namespace {

using nlohmann::json;

// Exclusions that would make a GET's URI longer than this go in a POST body.
constexpr size_t kMaxGetExcludeBytes = 4096;

std::string PostBody(const TopKHttpRequest& request) {
  JsonObject body;
  if (request.user.empty()) {
    // %.9g: every float reads back as itself (JsonArray's %.6g would not).
    std::string vector = "[";
    for (size_t i = 0; i < request.vector.size(); ++i) {
      absl::StrAppendFormat(&vector, "%s%.9g", i == 0 ? "" : ",", request.vector[i]);
    }
    body.AddRaw("vector", vector + "]");
  } else {
    body.Add("user", request.user);
  }
  body.Add("k", request.k);
  if (request.ef != 0) body.Add("ef", request.ef);
  std::string exclude = "[";
  for (size_t i = 0; i < request.exclude.size(); ++i) {
    if (i > 0) exclude.push_back(',');
    AppendJsonString(request.exclude[i], &exclude);
  }
  body.AddRaw("exclude", exclude + "]");
  return body.ToString();
}

}  // namespace

absl::StatusOr<index::TopKResult> ParseTopKReply(int http_status, absl::string_view body) {
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::DataLossError(absl::StrCat("HTTP ", http_status, ": the body is not JSON"));
  }
  if (http_status != 200) {
    auto error = doc.find("error");
    if (error == doc.end() || !error->is_object() || !error->contains("code") ||
        !(*error)["code"].is_string() || !error->contains("message") ||
        !(*error)["message"].is_string()) {
      return absl::DataLossError(absl::StrCat("HTTP ", http_status, " without a JSON error"));
    }
    absl::StatusCode code = ErrorCodeFromName((*error)["code"].get<std::string>());
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
    return absl::Status(code, (*error)["message"].get<std::string>());
  }
  auto items = doc.find("items");
  if (items == doc.end() || !items->is_array()) {
    return absl::DataLossError("the reply has no \"items\" array");
  }
  index::TopKResult result;
  for (const json& item : *items) {
    uint64_t key = 0;
    if (!item.is_object() || !item.contains("id") || !item["id"].is_string() ||
        !item.contains("key") || !item["key"].is_string() ||
        !absl::SimpleAtoi(item["key"].get<std::string>(), &key) || !item.contains("score") ||
        !item["score"].is_number()) {
      return absl::DataLossError(
          "a reply item is not {\"id\":string,\"key\":string,\"score\":number}");
    }
    result.hits.push_back({key, item["score"].get<float>()});
    result.raw_ids.push_back(item["id"].get<std::string>());
  }
  return result;
}

TopKHttpClient::TopKHttpClient(std::unique_ptr<httplib::Client> client)
    : client_(std::move(client)) {}
TopKHttpClient::~TopKHttpClient() = default;

absl::StatusOr<std::unique_ptr<TopKHttpClient>> TopKHttpClient::Create(absl::string_view url,
                                                                       int64_t timeout_ms) {
  absl::string_view rest = url;
  absl::string_view host;
  int port = 0;
  bool ok = absl::ConsumePrefix(&rest, "http://");
  absl::ConsumeSuffix(&rest, "/");
  const size_t colon = rest.rfind(':');
  if (ok && colon != absl::string_view::npos && colon > 0) {
    host = rest.substr(0, colon);
    ok = absl::SimpleAtoi(rest.substr(colon + 1), &port) && port >= 1 && port <= 65535;
  } else {
    ok = false;
  }
  if (!ok || timeout_ms < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected http://HOST:PORT and a timeout >= 1 ms, got \"", url, "\""));
  }
  auto client = std::make_unique<httplib::Client>(std::string(host), port);
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);  // see Listener: no Nagle wait for a small request
  return std::unique_ptr<TopKHttpClient>(new TopKHttpClient(std::move(client)));
}

absl::StatusOr<index::TopKResult> TopKHttpClient::Search(const TopKHttpRequest& request) {
  size_t exclude_bytes = 0;
  bool comma = false;
  for (const std::string& id : request.exclude) {
    exclude_bytes += id.size() + 1;
    comma |= id.find(',') != std::string::npos;
  }
  const bool get = !request.user.empty() && !comma && exclude_bytes <= kMaxGetExcludeBytes;
  httplib::Params params;
  if (get) {
    params = {{"user", request.user}, {"k", absl::StrCat(request.k)}};
    if (request.ef != 0) params.emplace("ef", absl::StrCat(request.ef));
    if (!request.exclude.empty()) params.emplace("exclude", absl::StrJoin(request.exclude, ","));
  }
  httplib::Result res = get ? client_->Get("/v1/topk", params, httplib::Headers())
                            : client_->Post("/v1/topk", PostBody(request), "application/json");
  if (!res) {
    return absl::UnavailableError(
        absl::StrCat("no HTTP answer: ", httplib::to_string(res.error())));
  }
  return ParseTopKReply(res->status, res->body);
}

}  // namespace towerps::http
