#include "http/topk_api.h"

#include <cctype>
#include <cfloat>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "data/keys.h"
#include "data/text_io.h"
#include "nlohmann/json.hpp"

namespace towerps::http {
namespace {

using nlohmann::json;

// Deeper JSON than a request needs is refused before parsing (no recursion on
// hostile nesting, in parsing or in destruction).
constexpr int kMaxJsonDepth = 4;

// The deepest nesting of arrays and objects in `text`, outside strings.
int JsonDepth(absl::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

absl::Status CheckId(absl::string_view what, absl::string_view id) {
  if (!data::IsValidUtf8(id)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

// A 32-bit integer parameter (k, ef) from a query string.
absl::Status ParseInt(absl::string_view name, absl::string_view text, int* out) {
  if (!absl::SimpleAtoi(text, out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be a 32-bit integer"));
  }
  return absl::OkStatus();
}

// A 32-bit integer member (k, ef) of a JSON body.
absl::Status JsonInt(absl::string_view name, const json& value, int* out) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      *out = static_cast<int>(v);
      return absl::OkStatus();
    }
  } else if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max()) {
      *out = static_cast<int>(v);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be a 32-bit integer"));
}

std::string ItemsJson(const index::TopKResult& result) {
  std::string items = "[";
  for (size_t i = 0; i < result.hits.size(); ++i) {
    JsonObject item;
    // The key as a string: a JSON number loses 64-bit precision in most readers.
    item.Add("id", result.raw_ids[i])
        .Add("key", absl::StrCat(result.hits[i].key))
        .Add("score", static_cast<double>(result.hits[i].score));
    absl::StrAppend(&items, i == 0 ? "" : ",", item.ToString());
  }
  return items + "]";
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:  // a shard server's limit: retry later
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorCodeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

absl::StatusCode ErrorCodeFromName(absl::string_view name) {
  for (int c = 0; c <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    if (ErrorCodeName(code) == name) return code;
  }
  return absl::StatusCode::kUnknown;
}

HttpReply ErrorReply(const absl::Status& status, int http_status) {
  JsonObject error;
  error.Add("code", ErrorCodeName(status.code())).Add("message", status.message());
  JsonObject body;
  body.AddRaw("error", error.ToString());
  return {http_status != 0 ? http_status : HttpStatusOf(status.code()), body.ToString()};
}

absl::StatusOr<index::TopKQuery> ParseTopKParams(const QueryParams& params) {
  index::TopKQuery query;
  bool has_user = false, has_k = false, has_ef = false;
  for (const auto& [name, value] : params) {
    auto once = [&name = name](bool* seen) {
      if (*seen) return absl::InvalidArgumentError(absl::StrCat("repeated parameter '", name, "'"));
      *seen = true;
      return absl::OkStatus();
    };
    absl::Status s;
    if (name == "user") {
      s = once(&has_user);
      if (s.ok()) s = CheckId("user", value);
      query.user_id = value;
    } else if (name == "k") {
      s = once(&has_k);
      if (s.ok()) s = ParseInt("k", value, &query.k);
    } else if (name == "ef") {
      s = once(&has_ef);
      if (s.ok()) s = ParseInt("ef", value, &query.ef_search);
    } else if (name == "exclude") {
      s = CheckId("exclude", value);
      for (absl::string_view id : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        query.exclude.push_back(data::HashKey(id));
      }
    } else {
      s = absl::InvalidArgumentError(absl::StrCat("unknown parameter (user, k, ef, exclude): '",
                                                  data::IsValidUtf8(name) ? name : "?", "'"));
    }
    if (!s.ok()) return s;
  }
  if (query.user_id.empty()) {
    return absl::InvalidArgumentError("user is required (POST a \"vector\" to query by vector)");
  }
  return query;
}

absl::StatusOr<index::TopKQuery> ParseTopKBody(absl::string_view body) {
  if (JsonDepth(body) > kMaxJsonDepth) {
    return absl::InvalidArgumentError("malformed JSON body: nested too deep");
  }
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("malformed JSON body");
  if (!doc.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  index::TopKQuery query;
  bool has_vector = false;
  for (const auto& [name, value] : doc.items()) {
    if (name == "vector") {
      if (!value.is_array()) return absl::InvalidArgumentError("\"vector\" must be an array");
      has_vector = true;
      query.vector.reserve(value.size());
      for (const json& v : value) {
        if (!v.is_number()) {
          return absl::InvalidArgumentError("\"vector\" must hold numbers only");
        }
        const double d = v.get<double>();
        // Out of float range becomes infinite (the service refuses it), never UB.
        query.vector.push_back(std::fabs(d) <= FLT_MAX ? static_cast<float>(d)
                                                       : std::numeric_limits<float>::infinity());
      }
    } else if (name == "user") {
      if (!value.is_string()) return absl::InvalidArgumentError("\"user\" must be a string");
      query.user_id = value.get<std::string>();
      if (query.user_id.empty()) return absl::InvalidArgumentError("\"user\" is empty");
    } else if (name == "k") {
      if (absl::Status s = JsonInt("k", value, &query.k); !s.ok()) return s;
    } else if (name == "ef") {
      if (absl::Status s = JsonInt("ef", value, &query.ef_search); !s.ok()) return s;
    } else if (name == "exclude") {
      if (!value.is_array()) return absl::InvalidArgumentError("\"exclude\" must be an array");
      query.exclude.reserve(value.size());
      for (const json& id : value) {
        if (!id.is_string()) {
          return absl::InvalidArgumentError("\"exclude\" must hold strings (raw item ids)");
        }
        query.exclude.push_back(data::HashKey(id.get_ref<const std::string&>()));
      }
    } else {
      // nlohmann has checked that keys are UTF-8.
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key (vector, user, k, ef, exclude): \"", name, "\""));
    }
  }
  if (has_vector == !query.user_id.empty()) {
    return absl::InvalidArgumentError("the body needs exactly one of \"vector\" or \"user\"");
  }
  return query;
}

HttpReply TopKApi::Get(const QueryParams& params) const {
  const absl::Time start = absl::Now();
  return Answer(ParseTopKParams(params), start);
}

HttpReply TopKApi::Post(absl::string_view body) const {
  const absl::Time start = absl::Now();
  return Answer(ParseTopKBody(body), start);
}

HttpReply TopKApi::Answer(const absl::StatusOr<index::TopKQuery>& query, absl::Time start) const {
  if (!query.ok()) return ErrorReply(query.status());
  absl::StatusOr<index::TopKResult> result = service_->Search(*query);
  if (!result.ok()) return ErrorReply(result.status());
  JsonObject out;
  if (!query->user_id.empty()) out.Add("user", query->user_id);
  out.Add("k", query->k).AddRaw("items", ItemsJson(*result));
  out.Add("took_us", absl::ToInt64Microseconds(absl::Now() - start));
  return {200, out.ToString()};
}

HttpReply TopKApi::Health() const {
  JsonObject out;
  int64_t items = info_.items;
  int64_t version = 0;  // 0: a plain index dir or a router
  uint64_t delta_seq = 0;
  if (const index::LiveIndex* live = service_->live_index()) {
    const auto snapshot = live->Current();
    items = snapshot->items();
    version = snapshot->version_number();
    delta_seq = snapshot->applied_delta_seq();
  }
  out.Add("status", "ok")
      .Add("items", items)
      .Add("dim", info_.dim)
      .Add("shards", info_.shards)
      .Add("version", version)
      .Add("delta_seq", static_cast<int64_t>(delta_seq));
  return {200, out.ToString()};
}

}  // namespace towerps::http
