#include "dashboard/charts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace towerps::dashboard {
namespace {

enum ChartIndex {
  kLoss,
  kExamples,
  kLrScale,
  kGlobalStep,
  kStaleness,
  kStalenessWait,
  kPullLatency,
  kPushLatency,
  kServerRequests,
  kTableRows,
  kTableChanges,
  kMemory,
};

constexpr absl::string_view kTablePrefix = "towerps_sparse_emb_";
constexpr size_t kMaxTableName = 64;

Binding Make(Transform t, int chart, std::string label, double scale = 1) {
  Binding b;
  b.transform = t;
  b.chart = chart;
  b.label = std::move(label);
  b.scale = scale;
  return b;
}

// p50/p99 of a latency histogram (microseconds, shown in ms), gated by its _count.
bool ClassifyQuantile(absl::string_view key, absl::string_view histogram, int chart, Binding* out) {
  if (!absl::StartsWith(key, histogram)) return false;
  absl::string_view rest = key.substr(histogram.size());
  if (rest == "_count") {
    *out = Make(Transform::kCount, chart, std::string(histogram));
    return true;
  }
  if (rest != "_p50" && rest != "_p99") return false;
  *out = Make(Transform::kValue, chart, std::string(rest.substr(1)), 1e-3);
  out->count_of = std::string(histogram);
  return true;
}

}  // namespace

const std::vector<ChartDef>& ChartDefs() {
  static const std::vector<ChartDef>* const kDefs = new std::vector<ChartDef>{
      {"loss", "Training loss per worker", "loss", true,
       "no towerps_worker_loss or towerps_train_loss in metrics.jsonl yet"},
      {"examples_per_s", "Examples per second", "examples/s", false,
       "no towerps_worker_examples_total or towerps_train_examples_per_s yet"},
      {"lr_scale", "Learning-rate scale", "scale", false,
       "no towerps_scheduler_lr_scale or towerps_train_lr_scale yet"},
      {"global_step", "Global step", "steps", false,
       "no towerps_scheduler_global_step or towerps_train_step yet"},
      {"staleness", "Staleness: clock spread between workers", "steps", false,
       "no towerps_scheduler_clock_spread_steps (a cluster job's scheduler writes it)"},
      {"staleness_wait", "Time workers waited for the staleness bound (p50 / p99)", "ms", false,
       "no towerps_worker_staleness_wait_us (cluster workers write it)"},
      {"pull_latency", "Pull latency per worker (p50 / p99)", "ms", false,
       "no pull latency recorded yet"},
      {"push_latency", "Push latency per worker (p50 / p99)", "ms", false,
       "no push latency recorded yet"},
      {"server_requests", "Requests and bad requests per server", "requests/s", false,
       "no towerps_net_requests_total from a parameter server"},
      {"table_rows", "Rows per embedding table (all servers)", "rows", false,
       "no towerps_sparse_emb_<table>_rows yet"},
      {"table_changes", "Rows admitted / evicted per table (cumulative, all servers)", "rows",
       false, "no towerps_sparse_emb_<table>_admitted_total yet"},
      {"memory", "Resident memory per process", "MiB", false,
       "no towerps_process_resident_memory_bytes yet"},
  };
  return *kDefs;
}

Binding Classify(absl::string_view key) {
  if (!absl::StartsWith(key, "towerps_")) return Binding();
  if (key == "towerps_worker_loss" || key == "towerps_train_loss") {
    Binding b = Make(Transform::kValue, kLoss, "");
    b.zero_gate =
        key == "towerps_worker_loss" ? "towerps_worker_global_step" : "towerps_train_step";
    return b;
  }
  if (key == "towerps_worker_examples_total") return Make(Transform::kRate, kExamples, "");
  if (key == "towerps_train_examples_per_s") return Make(Transform::kValue, kExamples, "");
  if (key == "towerps_scheduler_lr_scale" || key == "towerps_train_lr_scale") {
    return Make(Transform::kValue, kLrScale, "");
  }
  if (key == "towerps_scheduler_global_step" || key == "towerps_train_step") {
    return Make(Transform::kValue, kGlobalStep, "");
  }
  if (key == "towerps_scheduler_planned_steps") {
    return Make(Transform::kValue, kGlobalStep, "planned");
  }
  if (key == "towerps_scheduler_clock_spread_steps") {
    return Make(Transform::kValue, kStaleness, "");
  }
  if (key == "towerps_process_resident_memory_bytes") {
    return Make(Transform::kValue, kMemory, "", 1.0 / (1 << 20));
  }
  if (key == "towerps_net_requests_total" || key == "towerps_net_bad_requests_total") {
    Binding b = Make(Transform::kRate, kServerRequests,
                     key == "towerps_net_requests_total" ? "requests" : "bad requests");
    b.only_role = "ps";
    return b;
  }
  Binding b;
  if (ClassifyQuantile(key, "towerps_worker_staleness_wait_us", kStalenessWait, &b) ||
      ClassifyQuantile(key, "towerps_worker_pull_latency_us", kPullLatency, &b) ||
      ClassifyQuantile(key, "towerps_train_pull_latency_us", kPullLatency, &b) ||
      ClassifyQuantile(key, "towerps_worker_push_latency_us", kPushLatency, &b) ||
      ClassifyQuantile(key, "towerps_train_push_latency_us", kPushLatency, &b)) {
    return b;
  }
  if (absl::StartsWith(key, kTablePrefix)) {
    absl::string_view rest = key.substr(kTablePrefix.size());
    const std::pair<absl::string_view, int> kSuffixes[] = {{"_rows", kTableRows},
                                                           {"_admitted_total", kTableChanges},
                                                           {"_evicted_total", kTableChanges}};
    for (const auto& [suffix, chart] : kSuffixes) {
      if (!absl::EndsWith(rest, suffix) || rest.size() == suffix.size()) continue;
      absl::string_view table = rest.substr(0, rest.size() - suffix.size());
      if (table.size() > kMaxTableName) return Binding();
      std::string label(table);
      if (chart == kTableChanges) {
        absl::StrAppend(&label, suffix == "_admitted_total" ? " admitted" : " evicted");
      }
      return Make(Transform::kSum, chart, std::move(label));
    }
  }
  return Binding();
}

}  // namespace towerps::dashboard
