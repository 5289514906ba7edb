#include "dashboard/events_reader.h"

#include <cmath>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/text_io.h"
#include "nlohmann/json.hpp"

namespace towerps::dashboard {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxString = 256;
constexpr size_t kMaxMetrics = 64;
constexpr size_t kMaxArray = 256;

// `s` cut to at most kMaxString bytes, on a UTF-8 character boundary.
std::string Cut(const std::string& s) {
  if (s.size() <= kMaxString) return s;
  size_t n = kMaxString;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// Typed reads of a key of a JSON object: absent is nullopt, the wrong type sets *bad.
class Fields {
 public:
  Fields(const json& obj, std::string* bad) : obj_(obj), bad_(bad) {}

  std::optional<std::string> String(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return Bad(key), std::nullopt;
    return Cut(v->get_ref<const std::string&>());
  }
  std::optional<double> Number(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number()) return Bad(key), std::nullopt;
    double d = v->get<double>();
    if (!std::isfinite(d)) return Bad(key), std::nullopt;
    return d;
  }
  std::optional<int64_t> Int(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number_integer()) return Bad(key), std::nullopt;
    return v->get<int64_t>();
  }
  std::optional<bool> Bool(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) return Bad(key), std::nullopt;
    return v->get<bool>();
  }
  // Numbers of an array (at most kMaxArray), empty when absent or null.
  std::vector<double> Numbers(const json& obj, const char* key) const {
    std::vector<double> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    if (!it->is_array() || it->size() > kMaxArray) return Bad(key), out;
    for (const json& e : *it) {
      if (!e.is_number() || !std::isfinite(e.get<double>())) return Bad(key), std::vector<double>();
      out.push_back(e.get<double>());
    }
    return out;
  }

 private:
  const json* Find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void Bad(const char* key) const {
    if (bad_->empty()) *bad_ = absl::StrCat("\"", key, "\" has the wrong type");
  }

  const json& obj_;
  std::string* bad_;
};

// Calls fn(object, line) for every line of `path` that is a JSON object with an integer
// ts_ms; reports the others. fn returns a problem message ("" for none).
absl::Status ForEachObject(const std::string& path, absl::string_view file,
                           const ReadLimits& limits, ProblemLog* problems,
                           const std::function<std::string(const json&, int64_t)>& fn) {
  absl::StatusOr<data::LineReader> reader =
      data::LineReader::Open(path, static_cast<size_t>(limits.max_line_bytes));
  if (!reader.ok()) return reader.status();
  absl::string_view line;
  while (true) {
    absl::StatusOr<bool> more = reader->Next(&line);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    const int64_t n = reader->line_number();
    if (reader->last_line_cut()) {
      problems->Add(file, n, absl::StrCat("longer than ", limits.max_line_bytes, " bytes"));
      continue;
    }
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    json obj = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded() || !obj.is_object()) {
      problems->Add(file, n,
                    reader->last_line_complete()
                        ? "not a JSON object"
                        : "truncated (no newline at the end): not a JSON object");
      continue;
    }
    auto ts = obj.find("ts_ms");
    if (ts == obj.end() || !ts->is_number_integer() || ts->get<int64_t>() <= 0) {
      problems->Add(file, n, "no integer ts_ms");
      continue;
    }
    std::string problem = fn(obj, ts->get<int64_t>());
    if (!problem.empty()) problems->Add(file, n, problem);
  }
}

template <typename T>
void PushBounded(std::deque<T>* q, T value, int max, int64_t* dropped) {
  q->push_back(std::move(value));
  while (static_cast<int>(q->size()) > max) {
    q->pop_front();
    ++*dropped;
  }
}

std::string Node(const std::string& role, int64_t rank) { return absl::StrCat(role, " ", rank); }

}  // namespace

absl::Status ReadEvents(const std::string& path, const ReadLimits& limits, EventsData* out,
                        ProblemLog* problems) {
  *out = EventsData();
  if (!PathExists(path)) return absl::OkStatus();
  out->present = true;
  return ForEachObject(path, "events.jsonl", limits, problems, [&](const json& obj, int64_t ts) {
    std::string bad;
    Fields f(obj, &bad);
    std::string event = f.String("event").value_or("");
    auto mark = [&](const char* kind, std::string label) {
      PushBounded(&out->marks, Mark{ts, kind, std::move(label)}, limits.max_events, &out->dropped);
    };
    if (event == "job_start") {
      out->job_started = true;
      out->job_id = f.String("job_id").value_or("");
      out->config = f.String("config").value_or("");
      out->dataset = f.String("dataset").value_or("");
      out->servers = f.Int("servers").value_or(0);
      out->workers = f.Int("workers").value_or(0);
      out->planned_steps = f.Int("planned_steps").value_or(0);
      out->staleness = f.Int("staleness").value_or(0);
      out->start_step = f.Int("start_step").value_or(0);
      out->recovered = f.Bool("recovered").value_or(false);
      if (out->start_ms < 0) out->start_ms = ts;
      out->end_ms = -1;
      if (out->recovered) mark("recovery", "a new scheduler took the job over");
    } else if (event == "phase") {
      out->phase = f.String("phase").value_or("");
      out->reason = f.String("reason").value_or("");
    } else if (event == "node_registered") {
      if (f.Bool("replaced").value_or(false)) {
        mark("replaced",
             Node(f.String("role").value_or("?"), f.Int("rank").value_or(-1)) + " replaced");
      }
    } else if (event == "node_dead") {
      std::string reason = f.String("reason").value_or("");
      mark("dead", absl::StrCat(Node(f.String("role").value_or("?"), f.Int("rank").value_or(-1)),
                                " dead", reason.empty() ? "" : ": ", reason));
    } else if (event == "checkpoint") {
      CheckpointEvent c;
      c.ts_ms = ts;
      c.step = f.Int("step").value_or(-1);
      c.bytes = f.Int("bytes").value_or(-1);
      c.duration_ms = f.Number("duration_ms").value_or(-1);
      c.incremental = f.Bool("incremental").value_or(false);
      c.ok = f.Bool("ok").value_or(true);
      c.dir = f.String("dir").value_or("");
      c.error = f.String("error").value_or("");
      mark("checkpoint", absl::StrCat(c.ok ? "checkpoint" : "failed checkpoint", " step ", c.step));
      PushBounded(&out->checkpoints, std::move(c), limits.max_events, &out->dropped);
    } else if (event == "recovery") {
      int64_t rank = f.Int("rank").value_or(-1);
      mark("recovery",
           absl::StrCat(rank < 0 ? "job rolled back" : absl::StrCat("ps ", rank, " recovered"),
                        ", ", f.Int("lost_steps").value_or(0), " steps lost",
                        f.Bool("ok").value_or(true) ? "" : " (failed)"));
    } else if (event == "job_end") {
      out->end_ms = ts;
      out->phase = f.String("phase").value_or("");
      out->reason = f.String("reason").value_or("");
      out->final_step = f.Int("global_step").value_or(-1);
    } else if (event.empty() && bad.empty()) {
      return std::string("no \"event\"");
    }
    return bad;
  });
}

absl::Status ReadEvaluations(const std::string& path, const ReadLimits& limits,
                             EvaluationsData* out, ProblemLog* problems) {
  *out = EvaluationsData();
  if (!PathExists(path)) return absl::OkStatus();
  out->present = true;
  return ForEachObject(
      path, "evaluations.jsonl", limits, problems, [&](const json& obj, int64_t ts) {
        std::string bad;
        Fields f(obj, &bad);
        Evaluation e;
        e.ts_ms = ts;
        e.step = f.Int("step").value_or(-1);
        e.checkpoint = f.String("checkpoint").value_or("");
        e.split = f.String("split").value_or("");
        for (const auto& [key, value] : obj.items()) {
          if (e.metrics.size() >= kMaxMetrics || key.size() > 64 || !value.is_number()) continue;
          if (absl::StartsWith(key, "recall@") || absl::StartsWith(key, "ndcg@") ||
              absl::StartsWith(key, "popularity_recall@") ||
              absl::StartsWith(key, "popularity_ndcg@")) {
            double v = value.get<double>();
            if (std::isfinite(v)) e.metrics.emplace_back(key, v);
          }
        }
        auto health = obj.find("embedding_health");
        if (health != obj.end() && health->is_object()) {
          Fields h(*health, &bad);
          e.has_health = true;
          e.item_coverage = h.Number("item_coverage").value_or(-1);
          e.mean_cosine = h.Number("item_mean_pairwise_cosine").value_or(0);
          e.collapse_warning = h.Bool("collapse_warning").value_or(false);
          e.collapse_threshold = h.Number("collapse_threshold").value_or(-1);
          e.item_id_rows = h.Int("item_id_rows").value_or(-1);
          e.item_id_norm_quantiles = h.Numbers(*health, "item_id_norm_quantiles");
          e.user_id_norm_quantiles = h.Numbers(*health, "user_id_norm_quantiles");
          e.item_norm_quantiles = h.Numbers(*health, "item_norm_quantiles");
          for (auto* q :
               {&e.item_id_norm_quantiles, &e.user_id_norm_quantiles, &e.item_norm_quantiles}) {
            if (q->empty() || q->size() == 7) continue;
            q->clear();
            if (bad.empty()) bad = "embedding_health: a norm quantile list is not 7 numbers";
          }
          auto hist = health->find("item_id_norm_histogram");
          if (hist != health->end() && hist->is_object()) {
            e.hist_edges = h.Numbers(*hist, "edges");
            e.hist_counts = h.Numbers(*hist, "counts");
            if (e.hist_edges.size() != e.hist_counts.size() + 1) {
              e.hist_edges.clear();
              e.hist_counts.clear();
              if (bad.empty()) bad = "item_id_norm_histogram: edges must be one more than counts";
            }
          }
        }
        if (e.metrics.empty() && !e.has_health) return std::string("no metrics");
        PushBounded(&out->evaluations, std::move(e), limits.max_evaluations, &out->dropped);
        return bad;
      });
}

}  // namespace towerps::dashboard
