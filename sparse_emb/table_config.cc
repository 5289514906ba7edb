#include "sparse_emb/table_config.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/file_binding.h"
#include "common/status.h"

namespace towerps::sparse_emb {
namespace {

absl::Status Bad(const TableConfig& c, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("table '", c.name, "': ", what));
}

bool NonNegative(float v) { return std::isfinite(v) && v >= 0.0f; }

struct NamedOptimizer {
  absl::string_view name;
  OptimizerKind kind;
};
constexpr NamedOptimizer kOptimizers[] = {
    {"sgd", OptimizerKind::kSgd},   {"adagrad", OptimizerKind::kAdagrad},
    {"rowwise_adagrad", OptimizerKind::kRowwiseAdagrad},
    {"adam", OptimizerKind::kAdam}, {"ftrl", OptimizerKind::kFtrl},
};

template <typename T>
absl::Status ParseNumber(absl::string_view key, absl::string_view value, T* out) {
  bool ok;
  if constexpr (std::is_same_v<T, float>) {
    ok = absl::SimpleAtof(value, out) && std::isfinite(*out);
  } else {
    ok = absl::SimpleAtoi(value, out);
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad number for ", key, ": '", value, "'"));
  return absl::OkStatus();
}

absl::Status ParseInit(absl::string_view value, InitializerConfig* init) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, ':');
  if (parts[0] == "zeros" && parts.size() == 1) {
    init->kind = InitKind::kZeros;
    return absl::OkStatus();
  }
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("init must be zeros, uniform:A or normal:S, got '", value, "'"));
  }
  if (parts[0] == "uniform") {
    init->kind = InitKind::kUniform;
  } else if (parts[0] == "normal") {
    init->kind = InitKind::kTruncatedNormal;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown initializer '", parts[0], "'"));
  }
  return ParseNumber("init", parts[1], &init->scale);
}

absl::Status ApplyPair(absl::string_view key, absl::string_view value, TableConfig* c) {
  OptimizerConfig& o = c->optimizer;
  if (key == "name") {
    c->name = std::string(value);
  } else if (key == "dim") {
    return ParseNumber(key, value, &c->dim);
  } else if (key == "dtype") {
    if (value == "fp32") {
      c->dtype = DType::kFp32;
    } else if (value == "fp16") {
      c->dtype = DType::kFp16;
    } else if (value == "bf16") {
      c->dtype = DType::kBf16;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("dtype must be fp32|fp16|bf16, got '", value, "'"));
    }
  } else if (key == "init") {
    return ParseInit(value, &c->initializer);
  } else if (key == "seed") {
    return ParseNumber(key, value, &c->initializer.seed);
  } else if (key == "optimizer") {
    for (const NamedOptimizer& n : kOptimizers) {
      if (n.name == value) {
        o.kind = n.kind;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown optimizer '", value, "'"));
  } else if (key == "eps") {
    return ParseNumber(key, value, &o.epsilon);
  } else if (key == "init_acc") {
    return ParseNumber(key, value, &o.initial_accumulator);
  } else if (key == "beta1") {
    return ParseNumber(key, value, &o.beta1);
  } else if (key == "beta2") {
    return ParseNumber(key, value, &o.beta2);
  } else if (key == "adam_mode") {
    if (value == "lazy" || value == "catchup") {
      o.adam_mode = value == "lazy" ? AdamMode::kLazy : AdamMode::kCatchUp;
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("adam_mode must be lazy|catchup, got '", value, "'"));
  } else if (key == "ftrl_beta") {
    return ParseNumber(key, value, &o.ftrl_beta);
  } else if (key == "l1") {
    return ParseNumber(key, value, &o.ftrl_l1);
  } else if (key == "l2") {
    return ParseNumber(key, value, &o.ftrl_l2);
  } else if (key == "wd") {
    return ParseNumber(key, value, &o.weight_decay);
  } else if (key == "clip") {
    return ParseNumber(key, value, &o.clip_norm);
  } else if (key == "admit") {
    return ParseNumber(key, value, &c->admission.min_count);
  } else if (key == "sketch_width") {
    return ParseNumber(key, value, &c->admission.sketch_width);
  } else if (key == "sketch_depth") {
    return ParseNumber(key, value, &c->admission.sketch_depth);
  } else if (key == "ttl") {
    return ParseNumber(key, value, &c->eviction.ttl_steps);
  } else if (key == "max_rows") {
    return ParseNumber(key, value, &c->eviction.max_rows);
  } else if (key == "stripes") {
    return ParseNumber(key, value, &c->num_stripes);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown table config key '", key, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFp32:
      return "fp32";
    case DType::kFp16:
      return "fp16";
    case DType::kBf16:
      return "bf16";
  }
  return "unknown";
}

absl::string_view OptimizerName(OptimizerKind kind) {
  for (const NamedOptimizer& n : kOptimizers) {
    if (n.kind == kind) return n.name;
  }
  return "unknown";
}

uint64_t TableFingerprint(const TableConfig& c) {
  // Catch-up Adam rows hold one more state float: a different row layout. Other
  // optimizers (and lazy Adam) keep the fingerprints their snapshots were written with.
  const bool catchup =
      c.optimizer.kind == OptimizerKind::kAdam && c.optimizer.adam_mode == AdamMode::kCatchUp;
  return FingerprintOf(absl::StrFormat(
      "dim=%d dtype=%s optimizer=%s%s init=%d:%.9g seed=%d", c.dim, DTypeName(c.dtype),
      OptimizerName(c.optimizer.kind), catchup ? ":catchup" : "",
      static_cast<int>(c.initializer.kind), c.initializer.scale, c.initializer.seed));
}

int DTypeBytes(DType dtype) { return dtype == DType::kFp32 ? 4 : 2; }

absl::Status TableConfig::Validate() const {
  if (name.empty() || name.size() > 64) return Bad(*this, "name must have 1..64 characters");
  for (char ch : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '_') {
      return Bad(*this, "name may hold only [A-Za-z0-9_]");
    }
  }
  if (dim < 4 || dim > 1024) return Bad(*this, absl::StrCat("dim must be in 4..1024, got ", dim));
  if (dtype != DType::kFp32 && dtype != DType::kFp16 && dtype != DType::kBf16) {
    return Bad(*this, "unknown dtype");
  }
  const InitializerConfig& init = initializer;
  if (init.kind != InitKind::kZeros && init.kind != InitKind::kUniform &&
      init.kind != InitKind::kTruncatedNormal) {
    return Bad(*this, "unknown initializer kind");
  }
  if (init.kind != InitKind::kZeros && !(init.scale > 0.0f && init.scale <= 10.0f)) {
    return Bad(*this, absl::StrCat("initializer scale must be in (0, 10], got ", init.scale));
  }
  const OptimizerConfig& o = optimizer;
  if (OptimizerName(o.kind) == "unknown") return Bad(*this, "unknown optimizer kind");
  if (!(NonNegative(o.epsilon) && o.epsilon <= 1e3f)) {
    return Bad(*this, absl::StrCat("optimizer epsilon must be in [0, 1000], got ", o.epsilon));
  }
  if (!NonNegative(o.initial_accumulator)) return Bad(*this, "initial_accumulator must be >= 0");
  // A zero denominator turns a zero gradient into 0 / 0 = NaN.
  const bool adagrad =
      o.kind == OptimizerKind::kAdagrad || o.kind == OptimizerKind::kRowwiseAdagrad;
  if (adagrad && !(o.epsilon > 0.0f || o.initial_accumulator > 0.0f)) {
    return Bad(*this, "adagrad needs epsilon > 0 or initial_accumulator > 0");
  }
  if (o.kind == OptimizerKind::kAdam && !(o.epsilon > 0.0f)) {
    return Bad(*this, "adam needs epsilon > 0");
  }
  if (o.kind == OptimizerKind::kFtrl && !(o.ftrl_beta > 0.0f)) {
    return Bad(*this, "ftrl needs ftrl_beta > 0");
  }
  if (!(o.beta1 >= 0.0f && o.beta1 < 1.0f)) return Bad(*this, "adam beta1 must be in [0, 1)");
  if (!(o.beta2 >= 0.0f && o.beta2 < 1.0f)) return Bad(*this, "adam beta2 must be in [0, 1)");
  if (o.kind == OptimizerKind::kAdam && o.adam_mode == AdamMode::kCatchUp &&
      !(o.beta1 * o.beta1 < o.beta2)) {
    return Bad(*this, "adam_mode=catchup needs beta1^2 < beta2");
  }
  if (!NonNegative(o.ftrl_beta) || !NonNegative(o.ftrl_l1) || !NonNegative(o.ftrl_l2)) {
    return Bad(*this, "ftrl beta, l1 and l2 must be >= 0");
  }
  if (!(NonNegative(o.weight_decay) && o.weight_decay <= 1.0f)) {
    return Bad(*this, absl::StrCat("weight_decay must be in [0, 1], got ", o.weight_decay));
  }
  if (!NonNegative(o.clip_norm)) return Bad(*this, "clip_norm must be >= 0");
  const AdmissionConfig& a = admission;
  if (a.min_count < 0 || a.min_count > 255) {
    return Bad(*this, absl::StrCat("admission min_count must be in 0..255, got ", a.min_count));
  }
  if (a.sketch_depth < 1 || a.sketch_depth > 8) return Bad(*this, "sketch_depth must be 1..8");
  if (a.sketch_width < 1024 || a.sketch_width > (int64_t{1} << 34)) {
    return Bad(*this, "sketch_width must be in 1024..2^34");
  }
  if (num_stripes < 1 || num_stripes > 1024 || (num_stripes & (num_stripes - 1)) != 0) {
    return Bad(*this, absl::StrCat("num_stripes must be a power of two in 1..1024, got ",
                                   num_stripes));
  }
  if (eviction.ttl_steps < 0) return Bad(*this, "ttl_steps must be >= 0");
  if (eviction.max_rows < 0 || (eviction.max_rows > 0 && eviction.max_rows < num_stripes)) {
    return Bad(*this, "max_rows must be 0 (unlimited) or >= num_stripes");
  }
  return absl::OkStatus();
}

absl::StatusOr<TableConfig> ParseTableConfig(absl::string_view text) {
  TableConfig config;
  std::vector<absl::string_view> seen;
  for (absl::string_view pair :
       absl::StrSplit(text, absl::ByAnyChar(" \t\n,"), absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("expected key=value, got '", pair, "'"));
    }
    // `dim=32 dim=8` is a typo, not an override: refuse it instead of keeping the last.
    if (std::find(seen.begin(), seen.end(), pair.substr(0, eq)) != seen.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", pair.substr(0, eq), "' appears twice"));
    }
    seen.push_back(pair.substr(0, eq));
    TOWERPS_RETURN_IF_ERROR(ApplyPair(pair.substr(0, eq), pair.substr(eq + 1), &config));
  }
  TOWERPS_RETURN_IF_ERROR(config.Validate());
  return config;
}

std::string TableConfigToString(const TableConfig& c) {
  const OptimizerConfig& o = c.optimizer;
  std::string init;
  switch (c.initializer.kind) {
    case InitKind::kZeros:
      init = "zeros";
      break;
    case InitKind::kUniform:
      init = absl::StrFormat("uniform:%.9g", c.initializer.scale);
      break;
    case InitKind::kTruncatedNormal:
      init = absl::StrFormat("normal:%.9g", c.initializer.scale);
      break;
  }
  return absl::StrFormat(
      "name=%s dim=%d dtype=%s init=%s seed=%d optimizer=%s eps=%.9g init_acc=%.9g "
      "beta1=%.9g beta2=%.9g adam_mode=%s ftrl_beta=%.9g l1=%.9g l2=%.9g wd=%.9g clip=%.9g "
      "admit=%d "
      "sketch_width=%d sketch_depth=%d ttl=%d max_rows=%d stripes=%d",
      c.name, c.dim, DTypeName(c.dtype), init, c.initializer.seed, OptimizerName(o.kind),
      o.epsilon, o.initial_accumulator, o.beta1, o.beta2,
      o.adam_mode == AdamMode::kLazy ? "lazy" : "catchup", o.ftrl_beta, o.ftrl_l1, o.ftrl_l2,
      o.weight_decay, o.clip_norm, c.admission.min_count, c.admission.sketch_width,
      c.admission.sketch_depth, c.eviction.ttl_steps, c.eviction.max_rows, c.num_stripes);
}

}  // namespace towerps::sparse_emb
