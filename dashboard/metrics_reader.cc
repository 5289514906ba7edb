#include "dashboard/metrics_reader.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "dashboard/charts.h"
#include "data/text_io.h"
#include "nlohmann/json.hpp"

namespace towerps::dashboard {
namespace {

constexpr absl::string_view kFile = "metrics.jsonl";
constexpr size_t kMaxBindingCache = 4096;  // distinct keys remembered
constexpr size_t kMaxRole = 32;
constexpr int64_t kMaxRank = 1 << 20;
constexpr int64_t kMaxTsMs = int64_t{1} << 52;  // past year 100000
constexpr size_t kMaxDroppedRemembered = 1024;
constexpr size_t kMaxProcessesPerSum = 1024;
constexpr size_t kDroppedExamples = 5;

// One metrics line as the SAX parser hands it over: only depth-1 keys are kept.
class LineHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;

  void Reset() {
    depth_ = 0;
    top_is_object_ = false;
    key_.clear();
    ts_ms_.reset();
    has_role_ = false;
    role_.clear();
    rank_ = 0;
    rank_ok_ = true;
    numbers_.clear();
    error_.clear();
  }

  bool null() override { return true; }
  bool boolean(bool) override { return Top(); }
  bool number_integer(number_integer_t v) override { return Number(static_cast<double>(v), true); }
  bool number_unsigned(number_unsigned_t v) override {
    return Number(static_cast<double>(v), true);
  }
  bool number_float(number_float_t v, const string_t&) override { return Number(v, false); }
  bool string(string_t& v) override {
    if (!Top()) return false;
    if (depth_ == 1 && key_ == "role") {
      has_role_ = true;
      role_ = v.substr(0, kMaxRole);
    }
    return true;
  }
  bool binary(binary_t&) override { return Top(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object_ = true;
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return Top();
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    if (error_.empty()) error_ = absl::StrCat("not valid JSON (byte ", position, ")");
    return false;
  }

  bool top_is_object() const { return top_is_object_; }
  const std::string& error() const { return error_; }
  std::optional<int64_t> ts_ms() const { return ts_ms_; }
  bool has_role() const { return has_role_; }
  const std::string& role() const { return role_; }
  int64_t rank() const { return rank_; }
  bool rank_ok() const { return rank_ok_; }
  const std::vector<std::pair<std::string, double>>& numbers() const { return numbers_; }

 private:
  // A scalar at depth 0 is not an object: stop there.
  bool Top() {
    if (depth_ == 0) {
      error_ = "not a JSON object";
      return false;
    }
    return true;
  }
  bool Number(double v, bool integral) {
    if (!Top()) return false;
    if (depth_ != 1) return true;
    if (key_ == "ts_ms") {
      if (integral && v > 0 && v < static_cast<double>(kMaxTsMs)) {
        ts_ms_ = static_cast<int64_t>(v);
      } else {
        error_ = "ts_ms is not a time in milliseconds";
      }
    } else if (key_ == "rank") {
      rank_ok_ = integral && v >= 0 && v <= static_cast<double>(kMaxRank);
      if (rank_ok_) rank_ = static_cast<int64_t>(v);
    } else if (std::isfinite(v) && key_.size() > 8 && key_.compare(0, 8, "towerps_") == 0) {
      numbers_.emplace_back(key_, v);
    }
    return true;
  }

  int depth_ = 0;
  bool top_is_object_ = false;
  std::string key_;
  std::optional<int64_t> ts_ms_;
  bool has_role_ = false;
  std::string role_;
  int64_t rank_ = 0;
  bool rank_ok_ = true;
  std::vector<std::pair<std::string, double>> numbers_;
  std::string error_;
};

struct SeriesState {
  SeriesState(int chart, std::string label, int capacity)
      : chart(chart), label(std::move(label)), series(capacity) {}
  int chart;
  std::string label;
  DownsampledSeries series;
  // kRate: the previous raw counter value.
  bool has_prev = false;
  int64_t prev_t_ms = 0;
  double prev_value = 0;
  // kSum: each process's latest value.
  std::map<std::string, double> latest;
};

class Collector {
 public:
  Collector(const ReadLimits& limits, ProblemLog* problems)
      : limits_(limits), problems_(problems) {}

  void Line(absl::string_view text, int64_t n, bool complete, bool cut) {
    ++out_lines_;
    if (cut) {
      problems_->Add(kFile, n, absl::StrCat("longer than ", limits_.max_line_bytes, " bytes"));
      return;
    }
    if (text.find_first_not_of(" \t\r") == absl::string_view::npos) return;
    handler_.Reset();
    line_overflow_.clear();
    bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &handler_);
    if (!parsed || !handler_.top_is_object()) {
      std::string what = handler_.error().empty() ? "not a JSON object" : handler_.error();
      if (!complete) what = absl::StrCat("truncated (no newline at the end): ", what);
      problems_->Add(kFile, n, what);
      return;
    }
    if (!handler_.error().empty()) return problems_->Add(kFile, n, handler_.error());
    if (!handler_.ts_ms().has_value()) return problems_->Add(kFile, n, "no ts_ms");
    if (!handler_.has_role()) return problems_->Add(kFile, n, "no role");
    if (!handler_.rank_ok()) return problems_->Add(kFile, n, "rank is not a small integer");
    int64_t t = *handler_.ts_ms();
    first_ts_ = first_ts_ < 0 ? t : std::min(first_ts_, t);
    last_ts_ = std::max(last_ts_, t);
    if (roles_.size() < 16) roles_.insert(handler_.role());
    const std::string process = absl::StrCat(handler_.role(), " ", handler_.rank());
    // Histogram counts of this line first: they gate the quantiles.
    counts_.clear();
    bindings_.clear();
    for (const auto& [key, value] : handler_.numbers()) {
      const Binding* b = Lookup(key);
      if (b->transform == Transform::kCount) counts_.emplace_back(&b->label, value);
      if (b->transform != Transform::kNone && b->transform != Transform::kCount) {
        bindings_.emplace_back(b, value);
      }
    }
    for (const auto& [b, value] : bindings_) {
      if (!b->only_role.empty() && b->only_role != handler_.role()) continue;
      if (!b->count_of.empty() && CountOf(b->count_of) == 0) continue;
      if (!b->zero_gate.empty() && ValueOf(b->zero_gate) == 0) continue;
      Apply(*b, process, t, value * b->scale);
    }
  }

  void Finish(MetricsData* out) {
    out->lines = out_lines_;
    out->first_ts_ms = first_ts_;
    out->last_ts_ms = last_ts_;
    out->roles.assign(roles_.begin(), roles_.end());
    std::sort(out->roles.begin(), out->roles.end());
    out->dropped_series = static_cast<int64_t>(dropped_.size());
    for (const std::string& name : dropped_) {
      if (out->dropped_examples.size() >= kDroppedExamples) break;
      out->dropped_examples.push_back(name);
    }
    std::sort(out->dropped_examples.begin(), out->dropped_examples.end());
    const std::vector<ChartDef>& defs = ChartDefs();
    out->charts.clear();
    for (const ChartDef& def : defs) {
      TimeChart chart;
      chart.id = def.id;
      chart.title = def.title;
      chart.unit = def.unit;
      chart.smoothed = def.smoothed;
      chart.empty_reason = def.empty_reason;
      out->charts.push_back(std::move(chart));
    }
    // Series in a stable order: by label within each chart.
    std::vector<const SeriesState*> ordered;
    for (const auto& [name, state] : series_) ordered.push_back(state.get());
    std::sort(ordered.begin(), ordered.end(), [](const SeriesState* a, const SeriesState* b) {
      return std::tie(a->chart, a->label) < std::tie(b->chart, b->label);
    });
    for (const SeriesState* s : ordered) {
      if (s->series.total() == 0) continue;
      out->charts[s->chart].series.push_back(
          ChartSeries{s->label, s->series.Points(), s->series.stride()});
    }
    AddFinals(*out, out);
  }

 private:
  const Binding* Lookup(const std::string& key) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.get();
    auto binding = std::make_unique<Binding>(Classify(key));
    const Binding* b = binding.get();
    if (cache_.size() < kMaxBindingCache) {
      cache_.emplace(key, std::move(binding));
    } else {  // hostile key variety: classify again next time, keep memory bounded
      line_overflow_.push_back(std::move(binding));
    }
    return b;
  }

  double CountOf(const std::string& histogram) const {
    for (const auto& [name, value] : counts_) {
      if (*name == histogram) return value;
    }
    return -1;  // no count in the line: keep the quantile
  }

  // The line's value of `key`; -1 when the line does not have it.
  double ValueOf(const std::string& key) const {
    for (const auto& [name, value] : handler_.numbers()) {
      if (name == key) return value;
    }
    return -1;
  }

  SeriesState* Series(int chart, const std::string& label) {
    std::string name = absl::StrCat(ChartDefs()[chart].id, "/", label);
    auto it = series_.find(name);
    if (it != series_.end()) return it->second.get();
    if (static_cast<int>(series_.size()) >= limits_.max_series) {
      if (dropped_.size() < kMaxDroppedRemembered) dropped_.insert(std::move(name));
      return nullptr;
    }
    auto state = std::make_unique<SeriesState>(chart, label, limits_.max_points_per_series);
    SeriesState* s = state.get();
    series_.emplace(std::move(name), std::move(state));
    return s;
  }

  void Apply(const Binding& b, const std::string& process, int64_t t, double v) {
    if (b.transform == Transform::kSum) {
      SeriesState* s = Series(b.chart, b.label);
      if (s == nullptr) return;
      if (s->latest.size() < kMaxProcessesPerSum || s->latest.count(process) > 0) {
        s->latest[process] = v;
      }
      double sum = 0;
      for (const auto& [p, value] : s->latest) sum += value;
      s->series.Add(t, sum);
      return;
    }
    std::string label = b.label.empty() ? process : absl::StrCat(process, " ", b.label);
    SeriesState* s = Series(b.chart, label);
    if (s == nullptr) return;
    if (b.transform == Transform::kValue) return s->series.Add(t, v);
    // kRate: a counter going down is a restarted process; start over from it.
    if (s->has_prev && t > s->prev_t_ms && v >= s->prev_value) {
      s->series.Add(t, (v - s->prev_value) * 1000.0 / static_cast<double>(t - s->prev_t_ms));
    }
    if (!s->has_prev || t > s->prev_t_ms || v < s->prev_value) {
      s->has_prev = true;
      s->prev_t_ms = t;
      s->prev_value = v;
    }
  }

  // Final figures for the header: the latest value of each kind.
  void AddFinals(const MetricsData& data, MetricsData* out) const {
    auto last_of = [&](const char* chart_id, bool sum, const char* skip_label) {
      double total = 0, best = -1;
      int n = 0;
      for (const TimeChart& c : data.charts) {
        if (c.id != chart_id) continue;
        for (const ChartSeries& s : c.series) {
          if (s.points.empty() || (skip_label != nullptr && s.label == skip_label)) continue;
          const SeriesPoint& p = s.points.back();
          double v = p.count == 1 ? p.sum : p.mean();
          total += v;
          best = std::max(best, v);
          ++n;
        }
      }
      return std::make_pair(n, sum ? total : (n > 0 ? total / n : 0.0));
    };
    auto [nl, loss] = last_of("loss", false, nullptr);
    if (nl > 0) out->finals.emplace_back("loss (mean of the latest)", loss);
    auto [ns, step] = last_of("global_step", false, "planned");
    if (ns > 0) out->finals.emplace_back("global step", step);
    auto [ne, examples] = last_of("examples_per_s", true, nullptr);
    if (ne > 0) out->finals.emplace_back("examples/s (latest, all workers)", examples);
  }

  const ReadLimits limits_;
  ProblemLog* const problems_;
  LineHandler handler_;
  std::unordered_map<std::string, std::unique_ptr<Binding>> cache_;
  std::vector<std::unique_ptr<Binding>> line_overflow_;  // this line's uncached keys
  std::vector<std::pair<const std::string*, double>> counts_;
  std::vector<std::pair<const Binding*, double>> bindings_;
  absl::flat_hash_map<std::string, std::unique_ptr<SeriesState>> series_;
  absl::flat_hash_set<std::string> dropped_;
  absl::flat_hash_set<std::string> roles_;
  int64_t out_lines_ = 0;
  int64_t first_ts_ = -1;
  int64_t last_ts_ = -1;
};

}  // namespace

absl::Status ReadMetrics(const std::string& path, const ReadLimits& limits, MetricsData* out,
                         ProblemLog* problems) {
  *out = MetricsData();
  Collector collector(limits, problems);
  if (!PathExists(path)) {  // no line yet: every chart empty
    collector.Finish(out);
    return absl::OkStatus();
  }
  absl::StatusOr<data::LineReader> reader =
      data::LineReader::Open(path, static_cast<size_t>(limits.max_line_bytes));
  if (!reader.ok()) return reader.status();
  absl::string_view line;
  while (true) {
    absl::StatusOr<bool> more = reader->Next(&line);
    if (!more.ok()) return more.status();
    if (!*more) break;
    collector.Line(line, reader->line_number(), reader->last_line_complete(),
                   reader->last_line_cut());
  }
  collector.Finish(out);
  out->present = true;
  return absl::OkStatus();
}

}  // namespace towerps::dashboard
