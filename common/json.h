// A minimal JSON object writer for metrics lines, bench figures and result lines.
// One flat or nested object, keys in insertion order. Thread-compatible.
#ifndef TOWERPS_COMMON_JSON_H_
#define TOWERPS_COMMON_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace towerps {

// Appends `s` to `out` as a quoted JSON string (escaping quotes, backslashes and
// control characters).
void AppendJsonString(absl::string_view s, std::string* out);

// A JSON array of numbers, e.g. "[1,0.5,null]" (doubles as JsonObject writes them:
// %.6g, non-finite as null), for JsonObject::AddRaw.
std::string JsonArray(absl::Span<const double> values);
std::string JsonArray(absl::Span<const int64_t> values);

class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, int value) { return Add(key, int64_t{value}); }
  JsonObject& Add(absl::string_view key, uint64_t value);
  // Non-finite doubles are written as null.
  JsonObject& Add(absl::string_view key, double value);
  JsonObject& Add(absl::string_view key, bool value);
  // Adds an already serialised JSON value (object, array) verbatim.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  // Appends every key of `other` after this object's (keys are not deduplicated).
  JsonObject& Merge(const JsonObject& other);

  bool empty() const { return body_.empty(); }
  // "{...}" without a trailing newline.
  std::string ToString() const { return "{" + body_ + "}"; }

 private:
  void AppendKey(absl::string_view key);
  std::string body_;
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_JSON_H_
