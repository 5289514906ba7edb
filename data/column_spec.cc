#include "data/column_spec.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/keys.h"
#include "data/schema.h"
#include "data/text_io.h"

namespace towerps::data {
namespace {

absl::StatusOr<std::vector<ColumnSpec::Column>> ParseColumns(absl::string_view value,
                                                             bool weighted, bool dense) {
  std::vector<ColumnSpec::Column> out;
  for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> parts = absl::StrSplit(Trim(item), ':');
    ColumnSpec::Column c;
    c.name = std::string(Trim(parts[0]));
    if (parts.size() == 2 && weighted) {
      if (!absl::SimpleAtof(Trim(parts[1]), &c.weight)) {
        return absl::InvalidArgumentError(absl::StrCat("bad label weight '", item, "'"));
      }
    } else if (parts.size() == 2 && dense && Trim(parts[1]) == "log1p") {
      c.log1p = true;
    } else if (parts.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad column '", item, "'"));
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool ParseBool(absl::string_view v, bool* out) {
  if (v == "true" || v == "1") *out = true;
  else if (v == "false" || v == "0") *out = false;
  else return false;
  return true;
}

std::string ParseDelimiter(absl::string_view v) {
  if (v == "comma") return ",";
  if (v == "tab" || v == "\\t") return "\t";
  if (v == "pipe") return "|";
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

// A column of the spec resolved to its field index.
struct Resolved {
  int index = -1;
  float weight = 1;
  bool log1p = false;
};

// Column names -> field indices from the header (or literal indices).
class ColumnResolver {
 public:
  explicit ColumnResolver(const std::vector<absl::string_view>& header) {
    for (size_t i = 0; i < header.size(); ++i) names_[std::string(Trim(header[i]))] = i;
  }
  absl::StatusOr<Resolved> Resolve(const ColumnSpec::Column& c) const {
    Resolved r{-1, c.weight, c.log1p};
    auto it = names_.find(c.name);
    if (it != names_.end()) r.index = static_cast<int>(it->second);
    else if (!absl::SimpleAtoi(c.name, &r.index) || r.index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("column spec names column '", c.name, "', which the header lacks"));
    }
    max_index_ = std::max(max_index_, r.index);
    return r;
  }
  absl::StatusOr<std::vector<Resolved>> ResolveAll(const std::vector<ColumnSpec::Column>& cs) const {
    std::vector<Resolved> out;
    for (const auto& c : cs) {
      TOWERPS_ASSIGN_OR_RETURN(Resolved r, Resolve(c));
      out.push_back(r);
    }
    return out;
  }
  int max_index() const { return max_index_; }

 private:
  absl::flat_hash_map<std::string, size_t> names_;
  mutable int max_index_ = -1;
};

void AddFeatures(const std::vector<ColumnSpec::Column>& cs, FeatureKind kind,
                 std::vector<FeatureSpec>* out) {
  for (const auto& c : cs) {
    FeatureSpec f;
    f.name = c.name;
    f.kind = kind;
    f.log1p = c.log1p;
    out->push_back(std::move(f));
  }
}

struct SideColumns {
  std::vector<Resolved> categorical, multi, dense;
};

// Builds one entity's attributes from a row.
void BuildAttrs(const SideColumns& cols, const std::vector<absl::string_view>& f,
                const std::vector<float>& dense, absl::string_view separator, AttrBuilder* b) {
  b->Clear();
  for (const Resolved& r : cols.categorical) {
    absl::string_view v = Trim(f[r.index]);
    if (!v.empty()) b->Add(HashKey(v));
    b->EndSlot();
  }
  for (const Resolved& r : cols.multi) {
    for (absl::string_view v : absl::StrSplit(f[r.index], separator, absl::SkipWhitespace())) {
      b->Add(HashKey(Trim(v)));
    }
    b->EndSlot();
  }
  b->dense = dense;
}

}  // namespace

absl::StatusOr<ColumnSpec> ParseColumnSpec(absl::string_view text, absl::string_view name) {
  ColumnSpec spec;
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_number, ": ", why));
    };
    if (raw.size() > kMaxSpecLineBytes) {  // and no token of it is echoed whole
      return bad(absl::StrCat("a line of ", raw.size(), " bytes (at most ", kMaxSpecLineBytes,
                              ")"));
    }
    absl::string_view line = raw.substr(0, raw.find('#'));
    if (Trim(line).empty()) continue;
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return bad("expected 'key = value'");
    absl::string_view key = Trim(line.substr(0, eq));
    absl::string_view value = Trim(line.substr(eq + 1));
    absl::StatusOr<std::vector<ColumnSpec::Column>> cols;
    auto columns = [&](std::vector<ColumnSpec::Column>* out, bool weighted, bool dense) {
      cols = ParseColumns(value, weighted, dense);
      if (cols.ok()) *out = *std::move(cols);
      return cols.status();
    };
    absl::Status s;
    if (key == "interactions") spec.interactions = std::string(value);
    else if (key == "delimiter") spec.delimiter = ParseDelimiter(value);
    else if (key == "header") s = ParseBool(value, &spec.header) ? s : bad("header: true|false");
    else if (key == "numeric_ids") s = ParseBool(value, &spec.numeric_ids) ? s : bad("numeric_ids: true|false");
    else if (key == "user") spec.user.name = std::string(value);
    else if (key == "item") spec.item.name = std::string(value);
    else if (key == "timestamp") spec.timestamp.name = std::string(value);
    else if (key == "label") s = columns(&spec.labels, true, false);
    else if (key == "user_categorical") s = columns(&spec.user_categorical, false, false);
    else if (key == "user_multi") s = columns(&spec.user_multi, false, false);
    else if (key == "user_dense") s = columns(&spec.user_dense, false, true);
    else if (key == "item_categorical") s = columns(&spec.item_categorical, false, false);
    else if (key == "item_multi") s = columns(&spec.item_multi, false, false);
    else if (key == "item_dense") s = columns(&spec.item_dense, false, true);
    else if (key == "multi_separator") spec.multi_separator = ParseDelimiter(value);
    else if (key == "item_vectors") spec.item_vectors = std::string(value);
    else return bad(absl::StrCat("unknown key '", key, "'"));
    if (!s.ok()) return s.message().find(name) == 0 ? s : bad(s.message());
  }
  auto missing = [&](const char* key) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": required key '", key, "' is missing"));
  };
  if (spec.interactions.empty()) return missing("interactions");
  if (spec.user.name.empty()) return missing("user");
  if (spec.item.name.empty()) return missing("item");
  if (spec.delimiter.empty() || spec.multi_separator.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty delimiter"));
  }
  for (const auto* list : {&spec.user_categorical, &spec.user_multi, &spec.user_dense,
                           &spec.item_categorical, &spec.item_multi, &spec.item_dense}) {
    for (const auto& c : *list) {
      if (c.name == kUserIdFeature || c.name == kHistoryFeature || c.name == kItemIdFeature ||
          c.name == kContentFeature) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": feature name '", c.name, "' is reserved"));
      }
    }
  }
  return spec;
}

absl::StatusOr<ColumnSpec> LoadColumnSpec(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseColumnSpec(text, path);
}

absl::Status ReadWithColumnSpec(const ColumnSpec& spec, const std::string& dir, IssueLog* issues,
                                RawDataset* out) {
  out->format = "spec";
  AddFeatures(spec.user_categorical, FeatureKind::kSingle, &out->user_attrs.sparse);
  AddFeatures(spec.user_multi, FeatureKind::kMulti, &out->user_attrs.sparse);
  AddFeatures(spec.user_dense, FeatureKind::kDense, &out->user_attrs.dense);
  AddFeatures(spec.item_categorical, FeatureKind::kSingle, &out->item_attrs.sparse);
  AddFeatures(spec.item_multi, FeatureKind::kMulti, &out->item_attrs.sparse);
  AddFeatures(spec.item_dense, FeatureKind::kDense, &out->item_attrs.dense);

  const std::string path = spec.interactions[0] == '/' ? spec.interactions
                                                       : absl::StrCat(dir, "/", spec.interactions);
  const std::string file(BaseName(path));
  const bool csv = spec.delimiter.size() == 1;
  std::vector<absl::string_view> f;
  std::vector<std::string> scratch;
  std::vector<float> user_dense, item_dense;
  AttrBuilder b;
  // Column indices, resolved against the header (or the spec's indices).
  Resolved user_col, item_col, ts_col;
  std::vector<Resolved> label_cols;
  SideColumns user_cols, item_cols;
  size_t expected_fields = 0;
  auto resolve = [&](const std::vector<absl::string_view>& header) -> absl::Status {
    ColumnResolver r(header);
    TOWERPS_ASSIGN_OR_RETURN(user_col, r.Resolve(spec.user));
    TOWERPS_ASSIGN_OR_RETURN(item_col, r.Resolve(spec.item));
    if (!spec.timestamp.name.empty()) {
      TOWERPS_ASSIGN_OR_RETURN(ts_col, r.Resolve(spec.timestamp));
    }
    TOWERPS_ASSIGN_OR_RETURN(label_cols, r.ResolveAll(spec.labels));
    TOWERPS_ASSIGN_OR_RETURN(user_cols.categorical, r.ResolveAll(spec.user_categorical));
    TOWERPS_ASSIGN_OR_RETURN(user_cols.multi, r.ResolveAll(spec.user_multi));
    TOWERPS_ASSIGN_OR_RETURN(user_cols.dense, r.ResolveAll(spec.user_dense));
    TOWERPS_ASSIGN_OR_RETURN(item_cols.categorical, r.ResolveAll(spec.item_categorical));
    TOWERPS_ASSIGN_OR_RETURN(item_cols.multi, r.ResolveAll(spec.item_multi));
    TOWERPS_ASSIGN_OR_RETURN(item_cols.dense, r.ResolveAll(spec.item_dense));
    expected_fields = spec.header ? header.size() : static_cast<size_t>(r.max_index() + 1);
    return absl::OkStatus();
  };
  auto split = [&](absl::string_view line) {
    return csv ? SplitCsv(line, spec.delimiter[0], &f, &scratch)
               : (SplitFields(line, spec.delimiter, &f), true);
  };
  // Parses the dense columns of a row; false (reported) on a non-numeric value.
  auto parse_dense = [&](const std::vector<Resolved>& cols, int64_t n, std::vector<float>* v,
                         absl::Status* status) {
    v->clear();
    for (const Resolved& r : cols) {
      float x = 0;
      absl::string_view s = Trim(f[r.index]);
      if (!s.empty() && !absl::SimpleAtof(s, &x)) {
        *status = issues->Report(file, n, "non-numeric dense value", s);
        return false;
      }
      v->push_back(r.log1p ? std::log1p(std::max(x, 0.0f)) : x);
    }
    return true;
  };
  TOWERPS_RETURN_IF_ERROR(ForEachLine(path, [&](absl::string_view line, int64_t n) -> absl::Status {
    if (n == 1 && spec.header) {
      if (!split(line)) return absl::InvalidArgumentError(absl::StrCat(file, ":1: bad header"));
      return resolve(f);
    }
    if (line.empty()) return absl::OkStatus();
    if (n == 1) TOWERPS_RETURN_IF_ERROR(resolve({}));
    ++out->interaction_lines;
    if (!split(line)) return issues->Report(file, n, "unterminated quote");
    if (f.size() != expected_fields) {
      return issues->Report(file, n, "wrong column count",
                            absl::StrCat("expected ", expected_fields, " fields, got ", f.size()));
    }
    int64_t ts = n;
    if (ts_col.index >= 0 && !absl::SimpleAtoi(Trim(f[ts_col.index]), &ts)) {
      return issues->Report(file, n, "non-numeric timestamp", f[ts_col.index]);
    }
    float label = label_cols.empty() ? 1.0f : 0.0f;
    for (const Resolved& r : label_cols) {
      float x = 0;
      absl::string_view s = Trim(f[r.index]);
      if (!s.empty() && !absl::SimpleAtof(s, &x)) {
        return issues->Report(file, n, "non-numeric label", s);
      }
      label += r.weight * x;
    }
    absl::Status status;
    if (!parse_dense(user_cols.dense, n, &user_dense, &status)) return status;
    if (!parse_dense(item_cols.dense, n, &item_dense, &status)) return status;
    TOWERPS_ASSIGN_OR_RETURN(int64_t u, out->AddInteraction(file, n, Trim(f[user_col.index]),
                                                            Trim(f[item_col.index]), ts, label,
                                                            spec.numeric_ids, issues));
    if (u < 0) return absl::OkStatus();
    // Attributes from the entity's earliest row (ties: the first line).
    EntityAttrs& ua = out->users.attrs(u);
    if (ts < ua.time) {
      BuildAttrs(user_cols, f, user_dense, spec.multi_separator, &b);
      b.StoreTo(&ua, ts);
    }
    EntityAttrs& ia = out->items.attrs(out->interactions.back().item);
    if (ts < ia.time) {
      BuildAttrs(item_cols, f, item_dense, spec.multi_separator, &b);
      b.StoreTo(&ia, ts);
    }
    return absl::OkStatus();
  }));
  if (spec.item_vectors.empty()) return absl::OkStatus();

  // Item vectors: item, v1..vd; dim from the first data line.
  const std::string vpath = spec.item_vectors[0] == '/' ? spec.item_vectors
                                                        : absl::StrCat(dir, "/", spec.item_vectors);
  const std::string vfile(BaseName(vpath));
  const int dense_before = out->item_attrs.dense_dim();
  int dim = -1;
  TOWERPS_RETURN_IF_ERROR(ForEachLine(vpath, [&](absl::string_view line, int64_t n) -> absl::Status {
    if (line.empty()) return absl::OkStatus();
    ++out->side_lines;
    SplitFields(line, spec.delimiter, &f);
    if (dim < 0) dim = static_cast<int>(f.size()) - 1;
    if (dim <= 0 || static_cast<int>(f.size()) != dim + 1) {
      return issues->Report(vfile, n, "wrong column count",
                            absl::StrCat("expected ", dim + 1, " fields, got ", f.size()));
    }
    int64_t i = out->items.Find(Trim(f[0]));
    if (i < 0) return issues->Report(vfile, n, "unknown item id", f[0]);
    std::vector<float>& dense = out->items.attrs(i).dense;
    dense.resize(dense_before + dim, 0.0f);
    for (int k = 0; k < dim; ++k) {
      if (!absl::SimpleAtof(Trim(f[k + 1]), &dense[dense_before + k])) {
        dense.resize(dense_before);
        return issues->Report(vfile, n, "non-numeric vector value", f[k + 1]);
      }
    }
    return absl::OkStatus();
  }));
  if (dim > 0) {
    FeatureSpec content;
    content.name = kContentFeature;
    content.kind = FeatureKind::kDense;
    content.dim = dim;
    out->item_attrs.dense.push_back(std::move(content));
  }
  return absl::OkStatus();
}

}  // namespace towerps::data
