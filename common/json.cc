#include "common/json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace towerps {

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

namespace {

void AppendJsonNumber(double value, std::string* out) {
  if (std::isfinite(value)) {
    absl::StrAppendFormat(out, "%.6g", value);
  } else {
    out->append("null");
  }
}

}  // namespace

std::string JsonArray(absl::Span<const double> values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonNumber(values[i], &out);
  }
  return out + "]";
}

std::string JsonArray(absl::Span<const int64_t> values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, values[i]);
  }
  return out + "]";
}

void JsonObject::AppendKey(absl::string_view key) {
  if (!body_.empty()) body_.push_back(',');
  AppendJsonString(key, &body_);
  body_.push_back(':');
}

JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  AppendKey(key);
  AppendJsonString(value, &body_);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, int64_t value) {
  AppendKey(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, uint64_t value) {
  AppendKey(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, double value) {
  AppendKey(key);
  AppendJsonNumber(value, &body_);
  return *this;
}

JsonObject& JsonObject::Add(absl::string_view key, bool value) {
  AppendKey(key);
  body_.append(value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  AppendKey(key);
  body_.append(json.data(), json.size());
  return *this;
}

JsonObject& JsonObject::Merge(const JsonObject& other) {
  if (other.body_.empty()) return *this;
  if (!body_.empty()) body_.push_back(',');
  body_.append(other.body_);
  return *this;
}

}  // namespace towerps
