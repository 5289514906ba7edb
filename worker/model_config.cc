#include "worker/model_config.h"

#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/numeric_bounds.h"
#include "common/status.h"

namespace towerps::worker {
namespace {

// The accepted range of a number: [lo, hi], either end open when asked.
struct Range {
  double lo;
  double hi;
  bool lo_open = false;
  bool hi_open = false;

  bool Contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);  // false for NaN
  }
  std::string ToString() const {
    return absl::StrCat(lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
  }
};

constexpr Range kLearningRate{0, kMaxLearningRate, /*lo_open=*/true};
constexpr Range kUnitOpen{0, 1, false, /*hi_open=*/true};  // Adam betas, momentum

// key=value tokens of one line, with a record of which keys were used.
class KeyValues {
 public:
  static absl::StatusOr<KeyValues> Parse(const std::vector<absl::string_view>& tokens,
                                         size_t first) {
    KeyValues kv;
    for (size_t i = first; i < tokens.size(); ++i) {
      std::pair<std::string, std::string> p = absl::StrSplit(tokens[i], absl::MaxSplits('=', 1));
      if (p.first.empty() || tokens[i].find('=') == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("expected key=value, got '", tokens[i], "'"));
      }
      // A repeated key is a typo, not an override: refuse it instead of keeping one.
      if (!kv.values_.emplace(p.first, p.second).second) {
        return absl::InvalidArgumentError(absl::StrCat("key '", p.first, "' appears twice"));
      }
    }
    return kv;
  }
  bool Has(const std::string& key) const { return values_.contains(key); }
  std::string Take(const std::string& key) {
    auto it = values_.find(key);
    if (it == values_.end()) return "";
    std::string v = it->second;
    values_.erase(it);
    return v;
  }
  template <typename T>
  absl::Status TakeNumber(const std::string& key, T* out) {
    if (!Has(key)) return absl::OkStatus();
    std::string v = Take(key);
    bool ok;
    if constexpr (std::is_same_v<T, float>) {
      ok = absl::SimpleAtof(v, out);
    } else if constexpr (std::is_same_v<T, double>) {
      ok = absl::SimpleAtod(v, out);
    } else {
      ok = absl::SimpleAtoi(v, out);
    }
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(key, "=", v, " is not a number"));
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(*out)) {
        return absl::InvalidArgumentError(absl::StrCat(key, "=", v, " is not a finite number"));
      }
    }
    return absl::OkStatus();
  }
  // TakeNumber, then InvalidArgument "<key>=<v> is out of range <range>" outside it.
  template <typename T>
  absl::Status TakeNumber(const std::string& key, T* out, const Range& range) {
    if (!Has(key)) return absl::OkStatus();
    const std::string v = values_.at(key);
    TOWERPS_RETURN_IF_ERROR(TakeNumber(key, out));
    if (!range.Contains(static_cast<double>(*out))) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, "=", v, " is out of range ", range.ToString()));
    }
    return absl::OkStatus();
  }
  absl::Status TakeBool(const std::string& key, bool* out) {
    if (!Has(key)) return absl::OkStatus();
    std::string v = Take(key);
    if (v == "on" || v == "true" || v == "1") {
      *out = true;
    } else if (v == "off" || v == "false" || v == "0") {
      *out = false;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(key, "=", v, " is not on/off"));
    }
    return absl::OkStatus();
  }
  absl::Status CheckAllUsed() const {
    if (values_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("unknown key '", values_.begin()->first, "'"));
  }

 private:
  std::map<std::string, std::string> values_;
};

absl::StatusOr<data::Side> ParseSide(absl::string_view s) {
  if (s == "user") return data::Side::kUser;
  if (s == "item") return data::Side::kItem;
  return absl::InvalidArgumentError(absl::StrCat("side must be user or item, got '", s, "'"));
}

absl::Status ParseTower(KeyValues* kv, TowerShape* tower) {
  if (kv->Has("mlp")) {
    tower->mlp_hidden.clear();
    std::string mlp = kv->Take("mlp");
    for (absl::string_view width : absl::StrSplit(mlp, ',', absl::SkipEmpty())) {
      int w;
      if (!absl::SimpleAtoi(width, &w) || w <= 0) {
        return absl::InvalidArgumentError(absl::StrCat("bad mlp width '", width, "'"));
      }
      tower->mlp_hidden.push_back(w);
    }
  }
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("cross", &tower->cross_layers, Range{0, 64}));
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("out", &tower->output_dim, Range{1, 65536}));
  if (kv->Has("activation")) {
    TOWERPS_ASSIGN_OR_RETURN(tower->activation, models::ParseActivation(kv->Take("activation")));
  }
  return absl::OkStatus();
}

// The keys of `pooling=attention` (docs/model_config.md); dim is the table's.
absl::Status ParseAttention(KeyValues* kv, int dim, FeatureSpec* f) {
  if (f->side != data::Side::kUser) {
    return absl::InvalidArgumentError("pooling=attention is for user features only");
  }
  f->attention = true;
  models::SequenceEncoderConfig& s = f->sequence;
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("heads", &s.heads, Range{1, 64}));
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("blocks", &s.blocks, Range{1, 4}));
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("max_len", &s.max_len, Range{1, 1024}));
  TOWERPS_RETURN_IF_ERROR(kv->TakeNumber("ffn", &s.ffn_dim, Range{1, 65536}));
  if (kv->Has("seq_pool")) {
    TOWERPS_ASSIGN_OR_RETURN(s.pool, models::ParseSequencePool(kv->Take("seq_pool")));
  }
  s.dim = dim;
  return s.Validate();
}

absl::Status ParseLine(const std::vector<absl::string_view>& t, ModelConfig* c) {
  const absl::string_view directive = t[0];
  if (directive == "table") {
    if (t.size() < 2) return absl::InvalidArgumentError("table needs a name");
    std::vector<std::string> rest = {absl::StrCat("name=", t[1])};
    TableSpec spec;
    bool has_lr = false;
    for (size_t i = 2; i < t.size(); ++i) {
      if (absl::StartsWith(t[i], "lr=")) {
        if (has_lr) return absl::InvalidArgumentError("key 'lr' appears twice");
        has_lr = true;
        if (!absl::SimpleAtof(t[i].substr(3), &spec.learning_rate) ||
            !kLearningRate.Contains(spec.learning_rate)) {
          return absl::InvalidArgumentError(
              absl::StrCat(t[i], " is not a learning rate in ", kLearningRate.ToString()));
        }
      } else {
        rest.emplace_back(t[i]);
      }
    }
    TOWERPS_ASSIGN_OR_RETURN(spec.config, sparse_emb::ParseTableConfig(absl::StrJoin(rest, " ")));
    if (!has_lr && spec.config.optimizer.kind == sparse_emb::OptimizerKind::kAdam) {
      spec.learning_rate = TableSpec::kDefaultAdamLearningRate;
    }
    if (c->TableIndex(spec.config.name) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("table ", t[1], " defined twice"));
    }
    c->tables.push_back(spec);
    return absl::OkStatus();
  }
  if (directive == "feature") {
    if (t.size() < 3) return absl::InvalidArgumentError("feature needs a side and a name");
    FeatureSpec f;
    TOWERPS_ASSIGN_OR_RETURN(f.side, ParseSide(t[1]));
    f.feature = std::string(t[2]);
    TOWERPS_ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(t, 3));
    std::string table = kv.Take("table");
    f.table = c->TableIndex(table);
    if (f.table < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature ", f.feature, ": table '", table, "' is not defined above"));
    }
    std::string pooling = kv.Take("pooling");
    if (pooling == "sum") {
      f.pooling = models::Pooling::kSum;
    } else if (pooling == "attention") {
      TOWERPS_RETURN_IF_ERROR(ParseAttention(&kv, c->tables[f.table].config.dim, &f));
    } else if (!pooling.empty() && pooling != "mean") {
      return absl::InvalidArgumentError(absl::StrCat("pooling must be mean, sum or attention"));
    }
    TOWERPS_RETURN_IF_ERROR(kv.CheckAllUsed());
    c->features.push_back(f);
    return absl::OkStatus();
  }
  if (directive == "dense") {
    if (t.size() != 3) return absl::InvalidArgumentError("dense <user|item> <on|off>");
    TOWERPS_ASSIGN_OR_RETURN(data::Side side, ParseSide(t[1]));
    bool* target = side == data::Side::kUser ? &c->user_dense : &c->item_dense;
    if (t[2] != "on" && t[2] != "off") return absl::InvalidArgumentError("dense takes on or off");
    *target = t[2] == "on";
    return absl::OkStatus();
  }
  TOWERPS_ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(t, directive == "tower" ? 2 : 1));
  if (directive == "tower") {
    if (t.size() < 2) return absl::InvalidArgumentError("tower needs a side");
    TOWERPS_ASSIGN_OR_RETURN(data::Side side, ParseSide(t[1]));
    TOWERPS_RETURN_IF_ERROR(
        ParseTower(&kv, side == data::Side::kUser ? &c->user_tower : &c->item_tower));
  } else if (directive == "loss") {
    if (kv.Has("kind")) {
      TOWERPS_ASSIGN_OR_RETURN(c->loss.kind, models::ParseLossKind(kv.Take("kind")));
    }
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("temperature", &c->loss.temperature, Range{1e-4, 100}));
    TOWERPS_RETURN_IF_ERROR(
        kv.TakeNumber("negative_weight", &c->loss.negative_weight, Range{0, 1e3}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeBool("logq", &c->logq));
    TOWERPS_RETURN_IF_ERROR(kv.TakeBool("mask_duplicates", &c->loss.mask_duplicates));
    TOWERPS_RETURN_IF_ERROR(
        kv.TakeNumber("extra_negatives", &c->extra_negatives, Range{0, 1 << 20}));
    TOWERPS_RETURN_IF_ERROR(
        kv.TakeNumber("hard_negatives", &c->loss.hard_negatives, Range{0, 65536}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("hard_weight", &c->loss.hard_weight, Range{1, 1e6}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeBool("hard_only", &c->loss.hard_only));
    TOWERPS_RETURN_IF_ERROR(c->loss.Validate());
  } else if (directive == "mine") {
    MiningOptions& m = c->mining;
    if (!kv.Has("every")) return absl::InvalidArgumentError("mine needs every=<steps>");
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("every", &m.every, Range{1, 1e9}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("per_user", &m.per_user, Range{1, 1024}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("skip_top", &m.skip_top, Range{0, 1e6}));
  } else if (directive == "dense_optimizer") {
    auto& o = c->dense_optimizer;
    if (kv.Has("kind")) {
      TOWERPS_ASSIGN_OR_RETURN(o.kind, models::ParseDenseOptimizerKind(kv.Take("kind")));
    }
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("lr", &c->dense_learning_rate, kLearningRate));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("beta1", &o.beta1, kUnitOpen));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("beta2", &o.beta2, kUnitOpen));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("eps", &o.epsilon, Range{0, 1e3, /*lo_open=*/true}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("momentum", &o.momentum, kUnitOpen));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("wd", &o.weight_decay, Range{0, 1}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("clip", &o.clip_global_norm, Range{0, 1e9}));
  } else if (directive == "schedule") {
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("warmup", &c->warmup_steps, Range{0, 1e15}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("min_lr_ratio", &c->min_lr_ratio, Range{0, 1}));
  } else if (directive == "train") {
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("batch", &c->batch_size, Range{2, 1 << 24}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("epochs", &c->epochs, Range{1, 1e6}));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("seed", &c->seed));
    TOWERPS_RETURN_IF_ERROR(kv.TakeNumber("dense_sync_every", &c->dense_sync_every, Range{1, 1e9}));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown directive '", directive, "'"));
  }
  return kv.CheckAllUsed();
}

}  // namespace

absl::Status MiningOptions::Validate() const {
  if (every < 0 || every > 1000000000) {
    return absl::InvalidArgumentError("mine every must be in [0, 1e9]");
  }
  if (per_user < 1 || per_user > 1024) {
    return absl::InvalidArgumentError("mine per_user must be in [1, 1024]");
  }
  if (skip_top < 0 || skip_top > 1000000) {
    return absl::InvalidArgumentError("mine skip_top must be in [0, 1000000]");
  }
  return absl::OkStatus();
}

int ModelConfig::TableIndex(absl::string_view name) const {
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i].config.name == name) return static_cast<int>(i);
  }
  return -1;
}

absl::Status ModelConfig::Validate() const {
  if (tables.empty()) return absl::InvalidArgumentError("the config defines no table");
  if (features.empty()) return absl::InvalidArgumentError("the config binds no feature");
  for (const TableSpec& t : tables) {
    TOWERPS_RETURN_IF_ERROR(Annotate(t.config.Validate(), absl::StrCat("table ", t.config.name)));
  }
  if (batch_size < 2) return absl::InvalidArgumentError("train batch must be >= 2");
  if (epochs < 1) return absl::InvalidArgumentError("train epochs must be >= 1");
  if (dense_sync_every < 1) return absl::InvalidArgumentError("dense_sync_every must be >= 1");
  if (extra_negatives < 0) return absl::InvalidArgumentError("extra_negatives must be >= 0");
  TOWERPS_RETURN_IF_ERROR(mining.Validate());
  if (mining.enabled() &&
      static_cast<int64_t>(mining.per_user) * batch_size + extra_negatives > (1 << 20)) {
    return absl::InvalidArgumentError(
        "mine per_user * train batch + extra_negatives must be at most 1048576 columns");
  }
  if (warmup_steps < 0) return absl::InvalidArgumentError("schedule warmup must be >= 0");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) {
    return absl::InvalidArgumentError("schedule min_lr_ratio must be in [0, 1]");
  }
  for (const TableSpec& t : tables) {
    TOWERPS_RETURN_IF_ERROR(
        CheckLearningRate(t.learning_rate, absl::StrCat("table ", t.config.name)));
  }
  TOWERPS_RETURN_IF_ERROR(CheckLearningRate(dense_learning_rate, "dense_optimizer"));
  if (!(loss.temperature >= 1e-4f && loss.temperature <= 100.0f)) {
    return absl::InvalidArgumentError("loss temperature must be in [0.0001, 100]");
  }
  TOWERPS_RETURN_IF_ERROR(loss.Validate());
  return dense_optimizer.Validate();
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view text, absl::string_view name) {
  ModelConfig config;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.size() > kMaxConfigLineBytes) {  // and no token of it is echoed whole
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_number, ": a line of ",
                                                     line.size(), " bytes (at most ",
                                                     kMaxConfigLineBytes, ")"));
    }
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> tokens =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (tokens.empty()) continue;
    absl::Status status = ParseLine(tokens, &config);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_number, ": ", status.message()));
    }
  }
  TOWERPS_RETURN_IF_ERROR(Annotate(config.Validate(), name));
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseModelConfig(text, path);
}

absl::StatusOr<BoundModel> BindModel(const ModelConfig& config,
                                     const data::DatasetSchema& schema) {
  TOWERPS_RETURN_IF_ERROR(config.Validate());
  BoundModel bound;
  bound.config = config;
  bound.schema = schema;
  for (const FeatureSpec& f : config.features) {
    const data::SideSchema& side = schema.side(f.side);
    int slot = side.SparseSlot(f.feature);
    if (slot < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feature ", data::SideName(f.side), " ", f.feature,
          " is not a sparse feature of the dataset (see its meta.txt)"));
    }
    BoundFeature b{f, slot, config.tables[f.table].config.dim};
    if (f.attention) {
      bound.two_tower.user_sequences.push_back(
          {static_cast<int>(bound.user_features.size()), b.spec.sequence});
    }
    (f.side == data::Side::kUser ? bound.user_features : bound.item_features).push_back(b);
  }
  bound.user_dense_dim = config.user_dense ? schema.user.dense_dim() : 0;
  bound.item_dense_dim = config.item_dense ? schema.item.dense_dim() : 0;
  auto tower = [&](data::Side side, const TowerShape& shape) -> absl::StatusOr<models::TowerConfig> {
    models::TowerConfig t;
    for (const BoundFeature& f : bound.features(side)) t.input_dims.push_back(f.dim);
    if (bound.dense_dim(side) > 0) t.input_dims.push_back(bound.dense_dim(side));
    if (t.input_dims.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", data::SideName(side), " tower has no input"));
    }
    t.mlp_hidden = shape.mlp_hidden;
    t.cross_layers = shape.cross_layers;
    t.output_dim = shape.output_dim;
    t.activation = shape.activation;
    return t;
  };
  TOWERPS_ASSIGN_OR_RETURN(bound.two_tower.user, tower(data::Side::kUser, config.user_tower));
  TOWERPS_ASSIGN_OR_RETURN(bound.two_tower.item, tower(data::Side::kItem, config.item_tower));
  bound.two_tower.loss = config.loss;
  TOWERPS_RETURN_IF_ERROR(bound.two_tower.Validate());
  return bound;
}

}  // namespace towerps::worker
