// TableConfig: everything that defines one embedding table (dim, storage dtype,
// initializer, optimizer, admission, eviction, striping). The model's feature config
// names a table per slot and the parameter server builds its shards from the same
// struct, so both sides agree on what a row is.
//
// Plain data; thread-compatible. Validate() before use.
#ifndef TOWERPS_SPARSE_EMB_TABLE_CONFIG_H_
#define TOWERPS_SPARSE_EMB_TABLE_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::sparse_emb {

// Storage type of the embedding values. Math (optimizer, pull output) is always fp32;
// optimizer state is always stored in fp32.
enum class DType : uint32_t { kFp32 = 0, kFp16 = 1, kBf16 = 2 };

enum class InitKind : uint32_t {
  kZeros = 0,
  kUniform = 1,          // uniform in [-scale, +scale)
  kTruncatedNormal = 2,  // normal(0, scale), values beyond 2 * scale redrawn
};

struct InitializerConfig {
  InitKind kind = InitKind::kUniform;
  // Half-width a for kUniform, sigma for kTruncatedNormal; ignored for kZeros. (0, 10].
  float scale = 0.01f;
  // Row r of key k is a pure function of (seed, k): same on every server and run.
  uint64_t seed = 0;
};

enum class OptimizerKind : uint32_t {
  kSgd = 0,             // w -= lr * g
  kAdagrad = 1,         // a += g*g;           w -= lr * g / (sqrt(a) + eps)   (per coordinate)
  kRowwiseAdagrad = 2,  // a += mean(g*g);     w -= lr * g / (sqrt(a) + eps)   (one a per row)
  kAdam = 3,            // Adam on touched rows; AdamMode says how skipped steps count
  kFtrl = 4,            // FTRL-Proximal (McMahan et al. 2013), alpha = lr
};

// Hyper-parameters of the sparse optimizer. The learning rate is not here: it is an
// argument of EmbeddingTable::Push (the schedule lives with the scheduler).
// Gradient preprocessing, in this order: clip the row's gradient to L2 norm
// <= clip_norm (if > 0), then add weight_decay * w (L2 regularisation).
// How table Adam treats the steps in which a row got no gradient (docs/models.md
// "Sparse Adam"). kCatchUp behaves like dense Adam on the whole table (moments decay
// over the gap, the momentum the row would have kept moving by is applied, bias
// correction from the global step); kLazy ignores the gap and corrects with the row's
// own update count, which moves a rarely seen row ~lr per touch where dense Adam moves
// it up to lr / sqrt(1 - beta2) (~32 lr).
enum class AdamMode : uint32_t { kLazy = 0, kCatchUp = 1 };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kRowwiseAdagrad;
  // Added to the denominator of Adagrad / Adam; in [0, 1000]. Adam needs > 0, Adagrad
  // > 0 unless initial_accumulator > 0 (a zero denominator makes 0 / 0).
  float epsilon = 1e-8f;
  // Initial value of Adagrad accumulators and of FTRL's n; >= 0.
  float initial_accumulator = 0.0f;
  // Adam moment decays, in [0, 1).
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  // kCatchUp needs beta1^2 < beta2 (the skipped momentum steps form a converging sum).
  AdamMode adam_mode = AdamMode::kLazy;
  // FTRL: beta (denominator smoothing) > 0, l1 >= 0, l2 >= 0.
  float ftrl_beta = 1.0f;
  float ftrl_l1 = 0.0f;
  float ftrl_l2 = 0.0f;
  // L2 weight decay added to the gradient; in [0, 1] (0 = off).
  float weight_decay = 0.0f;
  // Per-row gradient L2-norm clipping threshold; >= 0 (0 = off).
  float clip_norm = 0.0f;
};

struct AdmissionConfig {
  // A key becomes a row once it has been seen this many times (each key occurrence in
  // a Pull or a Push is one sighting). 0 or 1: admit on first touch. <= 255.
  int min_count = 0;
  // Counters of the count-min sketch over the whole table (split across stripes),
  // one byte each, times `sketch_depth` rows. Used only when min_count > 1. >= 1024.
  int64_t sketch_width = 1 << 20;
  // Hash rows of the sketch, 1..8.
  int sketch_depth = 4;
};

struct EvictionConfig {
  // Evict(now) removes rows whose last-touched step is < now - ttl_steps. 0 = no TTL.
  int64_t ttl_steps = 0;
  // Row budget; 0 = unlimited. Enforced per stripe (budget / num_stripes, rounded up):
  // a stripe over its share drops its least recently touched rows (~1/32 of the share
  // at a time, so the cost is amortised). >= num_stripes when set.
  int64_t max_rows = 0;
};

struct TableConfig {
  // Table name, used in metric names, error messages and checkpoint bindings.
  // 1..64 characters of [A-Za-z0-9_].
  std::string name = "table";
  // Embedding dimension, 4..1024.
  int dim = 64;
  DType dtype = DType::kFp32;
  InitializerConfig initializer;
  OptimizerConfig optimizer;
  AdmissionConfig admission;
  EvictionConfig eviction;
  // Lock stripes (each owns its own hash index and slabs); a power of two, 1..1024.
  int num_stripes = 16;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Parses a compact text form: whitespace- or comma-separated key=value pairs applied on
// top of the defaults, e.g.
//   "name=item_id dim=64 dtype=fp16 init=uniform:0.05 seed=7 optimizer=rowwise_adagrad
//    eps=1e-8 wd=0 clip=1 admit=3 ttl=100000 max_rows=50000000 stripes=16"
// Keys: name dim dtype(fp32|fp16|bf16) init(zeros|uniform:A|normal:S) seed
// optimizer(sgd|adagrad|rowwise_adagrad|adam|ftrl) eps init_acc beta1 beta2
// adam_mode(lazy|catchup) ftrl_beta
// l1 l2 wd clip admit sketch_width sketch_depth ttl max_rows stripes.
// Every float must be finite. Errors: InvalidArgument for an unknown or repeated key, a
// bad value, or a config failing Validate().
absl::StatusOr<TableConfig> ParseTableConfig(absl::string_view text);

// The inverse of ParseTableConfig (every key written).
std::string TableConfigToString(const TableConfig& config);

// FingerprintOf the fields a table's stored rows depend on: dim, dtype, optimizer kind
// and initializer (kind, scale, seed). Checkpoint files record it (common/file_binding.h)
// so a table whose config changed, or another table of the same shape, does not load
// them. Hyper-parameters that can change between runs (rates, eps, decay, clipping,
// admission, eviction, stripes) are not part of it.
uint64_t TableFingerprint(const TableConfig& config);

absl::string_view DTypeName(DType dtype);
absl::string_view OptimizerName(OptimizerKind kind);
// Bytes of one stored embedding value.
int DTypeBytes(DType dtype);

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_TABLE_CONFIG_H_
