#include "index/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "glog/logging.h"
#include "index/id_lists.h"

namespace towerps::index {

void RetrievalMetrics::AddToJson(JsonObject* out, absl::string_view prefix) const {
  const std::pair<const char*, const std::vector<double>*> series[] = {
      {"recall@", &recall}, {"ndcg@", &ndcg}, {"hit_rate@", &hit_rate},
      {"coverage@", &coverage}};
  for (const auto& [name, values] : series) {
    for (size_t i = 0; i < ks.size(); ++i) {
      out->Add(absl::StrCat(prefix, name, ks[i]), (*values)[i]);
    }
  }
  out->Add(absl::StrCat(prefix, "queries"), queries);
}

JsonObject RetrievalMetrics::ToJson() const {
  JsonObject out;
  AddToJson(&out);
  return out;
}

absl::StatusOr<RetrievalMetrics> ComputeMetrics(const TopK& ranked,
                                                absl::Span<const int64_t> relevant_offsets,
                                                absl::Span<const int32_t> relevant_ids,
                                                int64_t num_items, absl::Span<const int> ks) {
  if (num_items < 1) return absl::InvalidArgumentError("num_items must be >= 1");
  if (ranked.k < 1 || ranked.ids.size() % ranked.k != 0) {
    return absl::InvalidArgumentError(absl::StrCat("ranked lists: k = ", ranked.k,
                                                   " does not divide ", ranked.ids.size(),
                                                   " ids"));
  }
  if (ks.empty()) return absl::InvalidArgumentError("no K given");
  for (int k : ks) {
    if (k < 1 || k > ranked.k) {
      return absl::InvalidArgumentError(
          absl::StrCat("K = ", k, " outside [1, ranked list length ", ranked.k, "]"));
    }
  }
  const int64_t n = ranked.num_queries();
  TOWERPS_RETURN_IF_ERROR(
      ValidateIdLists("relevant", n, num_items, relevant_offsets, relevant_ids));
  for (size_t i = 0; i < ranked.ids.size(); ++i) {
    if (ranked.ids[i] < -1 || ranked.ids[i] >= num_items) {
      return absl::InvalidArgumentError(absl::StrCat("ranked id ", ranked.ids[i], " of query ",
                                                     i / ranked.k, " outside [-1, ",
                                                     num_items, ")"));
    }
  }

  const size_t nk = ks.size();
  const int max_k = *std::max_element(ks.begin(), ks.end());
  // discount[i] = 1 / log2(i + 2): the gain of a relevant item at rank i (0-based).
  std::vector<double> discount(max_k);
  for (int i = 0; i < max_k; ++i) discount[i] = 1.0 / std::log2(i + 2.0);
  // first_rank[i]: the smallest K-list position at which item i appears in any
  // evaluated query's list, so coverage@K counts items with first_rank < K.
  std::vector<int32_t> first_rank(num_items, max_k);

  RetrievalMetrics out;
  out.ks.assign(ks.begin(), ks.end());
  out.recall.assign(nk, 0.0);
  out.ndcg.assign(nk, 0.0);
  out.hit_rate.assign(nk, 0.0);
  out.coverage.assign(nk, 0.0);
  std::vector<int32_t> relevant;
  std::vector<int> hit_ranks;  // 0-based ranks of relevant items within max_k
  for (int64_t q = 0; q < n; ++q) {
    relevant.assign(relevant_ids.begin() + relevant_offsets[q],
                    relevant_ids.begin() + relevant_offsets[q + 1]);
    std::sort(relevant.begin(), relevant.end());
    relevant.erase(std::unique(relevant.begin(), relevant.end()), relevant.end());
    if (relevant.empty()) {
      ++out.skipped_queries;
      continue;
    }
    ++out.queries;
    absl::Span<const int32_t> list = ranked.Ids(q);
    hit_ranks.clear();
    for (int i = 0; i < max_k; ++i) {
      const int32_t id = list[i];
      if (id < 0) continue;
      first_rank[id] = std::min<int32_t>(first_rank[id], i);
      if (std::binary_search(relevant.begin(), relevant.end(), id)) hit_ranks.push_back(i);
    }
    const double num_relevant = static_cast<double>(relevant.size());
    for (size_t j = 0; j < nk; ++j) {
      const int k = ks[j];
      int hits = 0;
      double dcg = 0;
      for (int rank : hit_ranks) {
        if (rank >= k) break;
        ++hits;
        dcg += discount[rank];
      }
      double ideal = 0;
      const int ideal_hits = static_cast<int>(std::min<size_t>(relevant.size(), k));
      for (int i = 0; i < ideal_hits; ++i) ideal += discount[i];
      out.recall[j] += hits / num_relevant;
      out.ndcg[j] += dcg / ideal;
      out.hit_rate[j] += hits > 0 ? 1.0 : 0.0;
    }
  }
  if (out.queries > 0) {
    for (size_t j = 0; j < nk; ++j) {
      out.recall[j] /= out.queries;
      out.ndcg[j] /= out.queries;
      out.hit_rate[j] /= out.queries;
    }
  }
  // Count items by first rank once, then prefix-sum for each K.
  std::vector<int64_t> items_first_at(max_k + 1, 0);
  for (int32_t r : first_rank) ++items_first_at[r];
  for (size_t j = 0; j < nk; ++j) {
    int64_t covered = 0;
    for (int r = 0; r < ks[j]; ++r) covered += items_first_at[r];
    out.coverage[j] = static_cast<double>(covered) / static_cast<double>(num_items);
  }
  return out;
}

std::string FormatMetricsTable(absl::Span<const LabeledMetrics> columns) {
  if (columns.empty()) return "";
  const RetrievalMetrics& first = *columns[0].metrics;
  for (const LabeledMetrics& c : columns) CHECK(c.metrics->ks == first.ks) << c.label;
  const bool ratio = columns.size() == 2;
  std::string out = absl::StrFormat("%-14s", "metric");
  for (const LabeledMetrics& c : columns) absl::StrAppendFormat(&out, " %12s", c.label);
  if (ratio) absl::StrAppendFormat(&out, " %8s", "ratio");
  out += "\n";
  const std::pair<const char*, std::vector<double> RetrievalMetrics::*> series[] = {
      {"recall@", &RetrievalMetrics::recall},
      {"ndcg@", &RetrievalMetrics::ndcg},
      {"hit_rate@", &RetrievalMetrics::hit_rate},
      {"coverage@", &RetrievalMetrics::coverage}};
  for (const auto& [name, member] : series) {
    for (size_t j = 0; j < first.ks.size(); ++j) {
      absl::StrAppendFormat(&out, "%-14s", absl::StrCat(name, first.ks[j]));
      for (const LabeledMetrics& c : columns) {
        absl::StrAppendFormat(&out, " %12.4f", (c.metrics->*member)[j]);
      }
      if (ratio) {
        const double denom = (columns[1].metrics->*member)[j];
        if (denom > 0) {
          absl::StrAppendFormat(&out, " %7.2fx", (first.*member)[j] / denom);
        } else {
          absl::StrAppendFormat(&out, " %8s", "-");
        }
      }
      out += "\n";
    }
  }
  absl::StrAppendFormat(&out, "%-14s", "queries");
  for (const LabeledMetrics& c : columns) absl::StrAppendFormat(&out, " %12d", c.metrics->queries);
  out += "\n";
  return out;
}

}  // namespace towerps::index
