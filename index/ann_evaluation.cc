#include "index/ann_evaluation.h"

#include <algorithm>
#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace towerps::index {
namespace {

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  const size_t at = std::min(values.size() - 1, static_cast<size_t>(q * values.size()));
  std::nth_element(values.begin(), values.begin() + at, values.end());
  return values[at];
}

}  // namespace

absl::Status AnnEvaluationOptions::Validate() const {
  if (ks.empty()) return absl::InvalidArgumentError("no K to evaluate");
  if (ef_search < 1) return absl::InvalidArgumentError("ef_search must be >= 1");
  for (int ef : ef_searches) {
    if (ef < 1) return absl::InvalidArgumentError("every efSearch must be >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<AnnEvaluationResult> EvaluateAnn(const EvaluationSet& set,
                                                const EvaluationResult& exact,
                                                const ShardedIndex& index,
                                                const AnnEvaluationOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if (index.dim() != set.dim) {
    return absl::InvalidArgumentError(absl::StrCat("the index has dim ", index.dim(),
                                                   ", the model ", set.dim));
  }
  absl::flat_hash_map<uint64_t, int32_t> row_of;
  for (int64_t row = 0; row < set.num_items(); ++row) {
    row_of[set.item_keys[row]] = static_cast<int32_t>(row);
  }
  const int k = exact.ranked.k;
  std::vector<int> ks;
  for (int kk : options.ks) ks.push_back(std::min(kk, k));
  std::vector<int> efs = options.ef_searches;
  efs.push_back(options.ef_search);
  std::sort(efs.begin(), efs.end());
  efs.erase(std::unique(efs.begin(), efs.end()), efs.end());

  AnnEvaluationResult result;
  const int64_t n = set.num_queries();
  std::vector<uint64_t> exclude;
  for (int ef : efs) {
    if (ef == options.ef_search) result.primary = static_cast<int>(result.sweep.size());
    AnnSweepPoint point;
    point.ef_search = ef;
    TopK ranked;
    ranked.k = k;
    ranked.ids.assign(n * k, -1);
    ranked.scores.assign(n * k, 0.0f);
    std::vector<double> latencies_us(n);
    double total_s = 0;
    for (int64_t q = 0; q < n; ++q) {
      exclude.clear();
      for (int64_t e = set.exclude_offsets[q]; e < set.exclude_offsets[q + 1]; ++e) {
        exclude.push_back(set.item_keys[set.exclude_ids[e]]);
      }
      const auto start = std::chrono::steady_clock::now();
      TOWERPS_ASSIGN_OR_RETURN(std::vector<Hit> hits,
                               index.Search(set.queries.data() + q * set.dim, k, ef, exclude));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      total_s += seconds;
      latencies_us[q] = seconds * 1e6;
      for (size_t j = 0; j < hits.size(); ++j) {
        auto it = row_of.find(hits[j].key);
        if (it == row_of.end()) {
          return absl::FailedPreconditionError(
              "the index holds an item the dataset does not: built from other embeddings?");
        }
        ranked.ids[q * k + j] = it->second;
        ranked.scores[q * k + j] = hits[j].score;
      }
    }
    TOWERPS_ASSIGN_OR_RETURN(point.metrics, ComputeMetrics(ranked, set.relevant_offsets,
                                                           set.relevant_ids, set.num_items(), ks));
    for (int kk : ks) {
      double sum = 0;
      absl::flat_hash_set<int32_t> truth;
      for (int64_t q = 0; q < n; ++q) {
        truth.clear();
        for (int j = 0; j < kk; ++j) {
          if (exact.ranked.ids[q * k + j] >= 0) truth.insert(exact.ranked.ids[q * k + j]);
        }
        if (truth.empty()) {
          sum += 1;
          continue;
        }
        int found = 0;
        for (int j = 0; j < kk; ++j) found += truth.contains(ranked.ids[q * k + j]);
        sum += static_cast<double>(found) / truth.size();
      }
      point.index_recall.push_back(n == 0 ? 0 : sum / n);
    }
    point.p50_us = Percentile(latencies_us, 0.50);
    point.p99_us = Percentile(latencies_us, 0.99);
    point.qps = total_s > 0 ? n / total_s : 0;
    result.sweep.push_back(std::move(point));
  }
  return result;
}

void AnnEvaluationResult::AddToJson(JsonObject* out) const {
  const AnnSweepPoint& p = sweep[primary];
  p.metrics.AddToJson(out, "ann_");
  for (size_t i = 0; i < p.metrics.ks.size(); ++i) {
    out->Add(absl::StrCat("index_recall@", p.metrics.ks[i]), p.index_recall[i]);
  }
  out->Add("ann_ef_search", p.ef_search)
      .Add("ann_p50_us", p.p50_us)
      .Add("ann_p99_us", p.p99_us)
      .Add("ann_qps", p.qps);
  for (const AnnSweepPoint& s : sweep) {
    const std::string prefix = absl::StrCat("ef", s.ef_search, "_");
    out->Add(absl::StrCat(prefix, "index_recall@", s.metrics.ks[0]), s.index_recall[0])
        .Add(absl::StrCat(prefix, "p50_us"), s.p50_us)
        .Add(absl::StrCat(prefix, "p99_us"), s.p99_us)
        .Add(absl::StrCat(prefix, "qps"), s.qps);
  }
}

std::string AnnEvaluationResult::ToTable() const {
  const AnnSweepPoint& first = sweep[0];
  std::string out = absl::StrFormat("%-9s", "efSearch");
  for (int k : first.metrics.ks) absl::StrAppendFormat(&out, " %12s", absl::StrCat("recall@", k));
  for (int k : first.metrics.ks) {
    absl::StrAppendFormat(&out, " %16s", absl::StrCat("index_recall@", k));
  }
  absl::StrAppendFormat(&out, " %9s %9s %9s\n", "p50_us", "p99_us", "qps");
  for (const AnnSweepPoint& s : sweep) {
    absl::StrAppendFormat(&out, "%-9d", s.ef_search);
    for (double r : s.metrics.recall) absl::StrAppendFormat(&out, " %12.4f", r);
    for (double r : s.index_recall) absl::StrAppendFormat(&out, " %16.4f", r);
    absl::StrAppendFormat(&out, " %9.1f %9.1f %9.0f\n", s.p50_us, s.p99_us, s.qps);
  }
  return out;
}

}  // namespace towerps::index
