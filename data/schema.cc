#include "data/schema.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/issue_log.h"

namespace towerps::data {
namespace {

constexpr char kMetaMagic[] = "towerps-dataset";
constexpr int kMetaVersion = 1;

std::string JoinFloats(const std::vector<float>& v) {
  return v.empty() ? "-" : absl::StrJoin(v, ",", [](std::string* out, float x) {
    absl::StrAppend(out, absl::StrFormat("%.7g", x));
  });
}

bool ParseFloats(absl::string_view s, std::vector<float>* out) {
  out->clear();
  if (s == "-") return true;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    float x;
    if (!absl::SimpleAtof(part, &x)) return false;
    out->push_back(x);
  }
  return true;
}

bool ParseSide(absl::string_view s, Side* side) {
  if (s == "user") *side = Side::kUser;
  else if (s == "item") *side = Side::kItem;
  else return false;
  return true;
}

// Parses "key=value" attributes of a feature line.
absl::Status ParseFeatureAttrs(const std::vector<absl::string_view>& tokens, size_t first,
                               FeatureSpec* f) {
  for (size_t i = first; i < tokens.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(tokens[i], '=');
    bool ok = true;
    if (kv.first == "vocab") {
      ok = absl::SimpleAtoi(kv.second, &f->vocab_size);
    } else if (kv.first == "item_space") {
      f->item_id_space = kv.second == "1";
    } else if (kv.first == "dim") {
      ok = absl::SimpleAtoi(kv.second, &f->dim) && f->dim > 0;
    } else if (kv.first == "log1p") {
      f->log1p = kv.second == "1";
    } else if (kv.first == "mean") {
      ok = ParseFloats(kv.second, &f->mean);
    } else if (kv.first == "std") {
      ok = ParseFloats(kv.second, &f->stddev);
    } else {
      ok = false;
    }
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad attribute '", tokens[i], "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view SideName(Side side) { return side == Side::kUser ? "user" : "item"; }

absl::string_view FeatureKindName(FeatureKind kind) {
  switch (kind) {
    case FeatureKind::kSingle:
      return "single";
    case FeatureKind::kMulti:
      return "multi";
    case FeatureKind::kDense:
      return "dense";
  }
  return "?";
}

int SideSchema::dense_dim() const {
  int d = 0;
  for (const FeatureSpec& f : dense) d += f.dim;
  return d;
}

int SideSchema::SparseSlot(absl::string_view name) const {
  for (size_t i = 0; i < sparse.size(); ++i) {
    if (sparse[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int SideSchema::DenseOffset(absl::string_view name) const {
  int offset = 0;
  for (const FeatureSpec& f : dense) {
    if (f.name == name) return offset;
    offset += f.dim;
  }
  return -1;
}

uint64_t DatasetMeta::num_examples(absl::string_view split_name) const {
  auto it = shards.find(std::string(split_name));
  if (it == shards.end()) return 0;
  uint64_t n = 0;
  for (const ShardInfo& s : it->second) n += s.records;
  return n;
}

std::string SerializeDatasetMeta(const DatasetMeta& meta) {
  std::string out = absl::StrCat(kMetaMagic, " ", kMetaVersion, "\n");
  absl::StrAppend(&out, "source_format ", meta.source_format, "\n");
  absl::StrAppend(&out, "split ", meta.split, "\n");
  absl::StrAppend(&out, "history_length ", meta.history_length, "\n");
  absl::StrAppend(&out, "min_rating ", meta.min_rating, "\n");
  absl::StrAppend(&out, "valid_cutoff ", meta.valid_cutoff, "\n");
  absl::StrAppend(&out, "test_cutoff ", meta.test_cutoff, "\n");
  absl::StrAppend(&out, "num_users ", meta.num_users, "\n");
  absl::StrAppend(&out, "num_items ", meta.num_items, "\n");
  absl::StrAppend(&out, "train_positives ", meta.train_positives, "\n");
  for (Side side : {Side::kUser, Side::kItem}) {
    const SideSchema& s = meta.schema.side(side);
    for (const FeatureSpec& f : s.sparse) {
      absl::StrAppend(&out, "sparse ", SideName(side), " ", f.name, " ", FeatureKindName(f.kind),
                      " item_space=", f.item_id_space ? 1 : 0, " vocab=", f.vocab_size, "\n");
    }
    for (const FeatureSpec& f : s.dense) {
      absl::StrAppend(&out, "dense ", SideName(side), " ", f.name, " dim=", f.dim,
                      " log1p=", f.log1p ? 1 : 0, " mean=", JoinFloats(f.mean),
                      " std=", JoinFloats(f.stddev), "\n");
    }
  }
  for (const char* split : kSplitNames) {
    auto it = meta.shards.find(split);
    if (it == meta.shards.end()) continue;
    for (const ShardInfo& shard : it->second) {
      absl::StrAppend(&out, "shard ", split, " ", shard.file, " ", shard.records, "\n");
    }
  }
  return out;
}

absl::StatusOr<DatasetMeta> ParseDatasetMeta(absl::string_view text) {
  DatasetMeta meta;
  int line_number = 0;
  bool saw_magic = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    std::vector<absl::string_view> t = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (t.empty()) continue;  // an empty line, or one of only spaces
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("meta.txt:", line_number, ": ", why, ": '", Excerpt(line), "'"));
    };
    if (!saw_magic) {
      int version = 0;
      if (t.size() != 2 || t[0] != kMetaMagic || !absl::SimpleAtoi(t[1], &version)) {
        return bad("not a towerps dataset meta file");
      }
      if (version != kMetaVersion) return bad("unsupported meta version");
      saw_magic = true;
      continue;
    }
    const absl::string_view key = t[0];
    bool ok = true;
    if (key == "sparse" || key == "dense") {
      Side side;
      if (t.size() < (key == "sparse" ? 4u : 3u) || !ParseSide(t[1], &side)) {
        return bad("bad feature line");
      }
      FeatureSpec f;
      f.name = std::string(t[2]);
      size_t first_attr = 3;
      if (key == "sparse") {
        if (t[3] == "single") f.kind = FeatureKind::kSingle;
        else if (t[3] == "multi") f.kind = FeatureKind::kMulti;
        else return bad("bad feature kind");
        first_attr = 4;
      } else {
        f.kind = FeatureKind::kDense;
      }
      absl::Status s = ParseFeatureAttrs(t, first_attr, &f);
      if (!s.ok()) return bad(s.message());
      SideSchema& side_schema = meta.schema.side(side);
      (key == "sparse" ? side_schema.sparse : side_schema.dense).push_back(std::move(f));
      continue;
    }
    if (key == "shard") {
      ShardInfo shard;
      if (t.size() != 4 || !absl::SimpleAtoi(t[3], &shard.records)) return bad("bad shard line");
      shard.file = std::string(t[2]);
      meta.shards[std::string(t[1])].push_back(std::move(shard));
      continue;
    }
    if (t.size() != 2) return bad("expected 'key value'");
    const absl::string_view v = t[1];
    if (key == "source_format") meta.source_format = std::string(v);
    else if (key == "split") meta.split = std::string(v);
    else if (key == "history_length") ok = absl::SimpleAtoi(v, &meta.history_length);
    else if (key == "min_rating") ok = absl::SimpleAtod(v, &meta.min_rating);
    else if (key == "valid_cutoff") ok = absl::SimpleAtoi(v, &meta.valid_cutoff);
    else if (key == "test_cutoff") ok = absl::SimpleAtoi(v, &meta.test_cutoff);
    else if (key == "num_users") ok = absl::SimpleAtoi(v, &meta.num_users);
    else if (key == "num_items") ok = absl::SimpleAtoi(v, &meta.num_items);
    else if (key == "train_positives") ok = absl::SimpleAtoi(v, &meta.train_positives);
    // Unknown keys are skipped so that later versions may append fields.
    if (!ok) return bad("bad value");
  }
  if (!saw_magic) return absl::InvalidArgumentError("meta.txt: empty");
  const SideSchema& u = meta.schema.user;
  const SideSchema& i = meta.schema.item;
  if (u.SparseSlot(kUserIdFeature) != kUserIdSlot || u.SparseSlot(kHistoryFeature) != kHistorySlot ||
      i.SparseSlot(kItemIdFeature) != kItemIdSlot) {
    return absl::InvalidArgumentError("meta.txt: schema lacks user_id, history or item_id");
  }
  return meta;
}

absl::StatusOr<DatasetMeta> LoadDatasetMeta(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/", kMetaFile);
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  absl::StatusOr<DatasetMeta> meta = ParseDatasetMeta(text);
  if (!meta.ok()) return Annotate(meta.status(), dir);
  return meta;
}

}  // namespace towerps::data
