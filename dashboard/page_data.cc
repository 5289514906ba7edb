// Schema of the page JSON (read by page.js):
// { title, run_dir, generated_ms, watch, watch_interval_ms, span_s,
//   files: {metrics, events, evaluations},
//   header: {job_id, config, dataset, servers, workers, staleness, planned_steps,
//            start_ms, duration_s, ended, phase, reason, embedded, recovered, roles, lines,
//            finals: [[name, v]]},
//   charts: [{id, title, unit, smoothed, empty, series: [{label, stride, x, y, lo?, hi?}]}],
//   marks: [{x, kind, label}], checkpoints: [{x, ts_ms, step, bytes, duration_ms,
//   incremental, ok, dir, error}], evaluations: [{ts_ms, step, checkpoint, split,
//   metrics: [[name, v]], health: {coverage, mean_cosine, collapse_threshold (-1
//   unknown), collapse_warning, item_id_rows (-1 none), item_id_quantiles,
//   user_id_quantiles, item_quantiles (each 7 numbers or []), edges, counts} | null}],
//   problems: {total, kept}, dropped: {series, examples, events, evaluations} }
// x values are seconds since the run's first timestamp; lo/hi (min/max per point) only
// for downsampled series.
#include "dashboard/page_data.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json.h"

namespace towerps::dashboard {
namespace {

// A small streaming JSON writer: commas are the caller's through Sep().
class Out {
 public:
  std::string& str() { return s_; }
  Out& Raw(absl::string_view text) {
    s_.append(text.data(), text.size());
    return *this;
  }
  Out& Str(absl::string_view text) {
    AppendJsonString(text, &s_);
    return *this;
  }
  Out& Num(double v) {
    if (!std::isfinite(v)) return Raw("null");
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
      absl::StrAppend(&s_, static_cast<int64_t>(v));
    } else {
      absl::StrAppendFormat(&s_, "%.6g", v);
    }
    return *this;
  }
  Out& Bool(bool b) { return Raw(b ? "true" : "false"); }
  Out& Key(absl::string_view k) {
    Str(k);
    return Raw(":");
  }
  // Seconds since t0 with millisecond precision.
  Out& Seconds(int64_t t_ms, int64_t t0_ms) {
    absl::StrAppendFormat(&s_, "%.3f", static_cast<double>(t_ms - t0_ms) / 1000.0);
    return *this;
  }

 private:
  std::string s_;
};

template <typename T, typename Fn>
void Array(Out* o, const T& items, Fn&& fn) {
  o->Raw("[");
  bool first = true;
  for (const auto& item : items) {
    if (!first) o->Raw(",");
    first = false;
    fn(item);
  }
  o->Raw("]");
}

void Series(Out* o, const ChartSeries& s, int64_t t0) {
  o->Raw("{").Key("label").Str(s.label).Raw(",").Key("stride").Num(static_cast<double>(s.stride));
  o->Raw(",").Key("x");
  Array(o, s.points,
        [&](const SeriesPoint& p) { o->Seconds((p.t_first_ms + p.t_last_ms) / 2, t0); });
  o->Raw(",").Key("y");
  Array(o, s.points, [&](const SeriesPoint& p) { o->Num(p.mean()); });
  if (s.stride > 1) {
    o->Raw(",").Key("lo");
    Array(o, s.points, [&](const SeriesPoint& p) { o->Num(p.min); });
    o->Raw(",").Key("hi");
    Array(o, s.points, [&](const SeriesPoint& p) { o->Num(p.max); });
  }
  o->Raw("}");
}

void Header(Out* o, const PageInput& in, int64_t t0, int64_t t_end) {
  const EventsData& e = *in.events;
  const MetricsData& m = *in.metrics;
  bool embedded =
      std::find(m.roles.begin(), m.roles.end(), "train") != m.roles.end() && !e.job_started;
  int64_t start = e.start_ms > 0 ? e.start_ms : t0;
  int64_t end = e.end_ms > 0 ? e.end_ms : t_end;
  o->Raw("{").Key("job_id").Str(e.job_id).Raw(",").Key("config").Str(e.config);
  o->Raw(",").Key("dataset").Str(e.dataset);
  o->Raw(",").Key("servers").Num(static_cast<double>(e.servers));
  o->Raw(",").Key("workers").Num(static_cast<double>(e.workers));
  o->Raw(",").Key("staleness").Num(static_cast<double>(e.staleness));
  o->Raw(",").Key("planned_steps").Num(static_cast<double>(e.planned_steps));
  o->Raw(",").Key("start_ms").Num(static_cast<double>(start));
  o->Raw(",").Key("duration_s").Num(start > 0 && end >= start ? (end - start) / 1000.0 : -1);
  o->Raw(",").Key("ended").Bool(e.end_ms > 0);
  std::string phase = e.phase;
  if (phase.empty() && embedded) phase = "embedded training";
  o->Raw(",").Key("phase").Str(phase).Raw(",").Key("reason").Str(e.reason);
  o->Raw(",").Key("embedded").Bool(embedded).Raw(",").Key("recovered").Bool(e.recovered);
  o->Raw(",").Key("roles");
  Array(o, m.roles, [&](const std::string& r) { o->Str(r); });
  o->Raw(",").Key("lines").Num(static_cast<double>(m.lines));
  o->Raw(",").Key("finals");
  std::vector<std::pair<std::string, double>> finals = m.finals;
  if (e.final_step >= 0) finals.emplace_back("final global step (job_end)", e.final_step);
  Array(o, finals,
        [&](const auto& f) { o->Raw("[").Str(f.first).Raw(",").Num(f.second).Raw("]"); });
  o->Raw("}");
}

void Evaluations(Out* o, const EvaluationsData& evals) {
  Array(o, evals.evaluations, [&](const Evaluation& e) {
    o->Raw("{").Key("ts_ms").Num(static_cast<double>(e.ts_ms));
    o->Raw(",").Key("step").Num(static_cast<double>(e.step));
    o->Raw(",").Key("checkpoint").Str(e.checkpoint).Raw(",").Key("split").Str(e.split);
    o->Raw(",").Key("metrics");
    Array(o, e.metrics,
          [&](const auto& m) { o->Raw("[").Str(m.first).Raw(",").Num(m.second).Raw("]"); });
    o->Raw(",").Key("health");
    if (!e.has_health) {
      o->Raw("null}");
      return;
    }
    auto nums = [&](const std::vector<double>& v) { Array(o, v, [&](double d) { o->Num(d); }); };
    o->Raw("{").Key("coverage").Num(e.item_coverage).Raw(",").Key("mean_cosine").Num(e.mean_cosine);
    o->Raw(",").Key("collapse_threshold").Num(e.collapse_threshold);
    o->Raw(",").Key("collapse_warning").Bool(e.collapse_warning);
    o->Raw(",").Key("item_id_rows").Num(static_cast<double>(e.item_id_rows));
    o->Raw(",").Key("item_id_quantiles");
    nums(e.item_id_norm_quantiles);
    o->Raw(",").Key("user_id_quantiles");
    nums(e.user_id_norm_quantiles);
    o->Raw(",").Key("item_quantiles");
    nums(e.item_norm_quantiles);
    o->Raw(",").Key("edges");
    nums(e.hist_edges);
    o->Raw(",").Key("counts");
    nums(e.hist_counts);
    o->Raw("}}");
  });
}

}  // namespace

std::string BuildPageJson(const PageInput& in) {
  const MetricsData& m = *in.metrics;
  const EventsData& e = *in.events;
  // The time origin: the earliest of the metrics and the job's start.
  int64_t t0 = m.first_ts_ms;
  if (e.start_ms > 0 && (t0 < 0 || e.start_ms < t0)) t0 = e.start_ms;
  int64_t t_end = std::max<int64_t>(m.last_ts_ms, e.end_ms);
  for (const Mark& mark : e.marks) t_end = std::max(t_end, mark.ts_ms);
  if (t0 < 0) t0 = t_end > 0 ? t_end : in.generated_ms;
  Out o;
  std::string title(in.run_dir);
  size_t slash = title.find_last_of('/', title.size() > 1 ? title.size() - 2 : 0);
  if (slash != std::string::npos && slash + 1 < title.size()) title = title.substr(slash + 1);
  o.Raw("{").Key("title").Str(title).Raw(",").Key("run_dir").Str(in.run_dir);
  o.Raw(",").Key("generated_ms").Num(static_cast<double>(in.generated_ms));
  o.Raw(",").Key("watch").Bool(in.watch);
  o.Raw(",").Key("watch_interval_ms").Num(static_cast<double>(in.watch_interval_ms));
  o.Raw(",").Key("span_s").Num(t_end > t0 ? (t_end - t0) / 1000.0 : 0);
  o.Raw(",").Key("files").Raw("{").Key("metrics").Bool(m.present);
  o.Raw(",")
      .Key("events")
      .Bool(e.present)
      .Raw(",")
      .Key("evaluations")
      .Bool(in.evaluations->present);
  o.Raw("},").Key("header");
  Header(&o, in, t0, t_end);
  o.Raw(",").Key("charts");
  Array(&o, m.charts, [&](const TimeChart& c) {
    o.Raw("{").Key("id").Str(c.id).Raw(",").Key("title").Str(c.title);
    o.Raw(",").Key("unit").Str(c.unit).Raw(",").Key("smoothed").Bool(c.smoothed);
    o.Raw(",").Key("empty").Str(c.empty_reason).Raw(",").Key("series");
    Array(&o, c.series, [&](const ChartSeries& s) { Series(&o, s, t0); });
    o.Raw("}");
  });
  o.Raw(",").Key("marks");
  Array(&o, e.marks, [&](const Mark& k) {
    o.Raw("{").Key("x").Seconds(k.ts_ms, t0).Raw(",").Key("kind").Str(k.kind);
    o.Raw(",").Key("label").Str(k.label).Raw("}");
  });
  o.Raw(",").Key("checkpoints");
  Array(&o, e.checkpoints, [&](const CheckpointEvent& c) {
    o.Raw("{")
        .Key("x")
        .Seconds(c.ts_ms, t0)
        .Raw(",")
        .Key("ts_ms")
        .Num(static_cast<double>(c.ts_ms));
    o.Raw(",").Key("step").Num(static_cast<double>(c.step));
    o.Raw(",").Key("bytes").Num(static_cast<double>(c.bytes));
    o.Raw(",").Key("duration_ms").Num(c.duration_ms);
    o.Raw(",").Key("incremental").Bool(c.incremental).Raw(",").Key("ok").Bool(c.ok);
    o.Raw(",").Key("dir").Str(c.dir).Raw(",").Key("error").Str(c.error).Raw("}");
  });
  o.Raw(",").Key("evaluations");
  Evaluations(&o, *in.evaluations);
  o.Raw(",").Key("problems").Raw("{").Key("total").Num(static_cast<double>(in.problems->total()));
  o.Raw(",").Key("kept");
  Array(&o, in.problems->kept(), [&](const std::string& p) { o.Str(p); });
  o.Raw("},").Key("dropped").Raw("{").Key("series").Num(static_cast<double>(m.dropped_series));
  o.Raw(",").Key("examples");
  Array(&o, m.dropped_examples, [&](const std::string& p) { o.Str(p); });
  o.Raw(",").Key("events").Num(static_cast<double>(e.dropped));
  o.Raw(",").Key("evaluations").Num(static_cast<double>(in.evaluations->dropped));
  o.Raw("}}");
  // '<' only occurs inside strings: \u003c there keeps "</script>" and "<!--" inert.
  std::string escaped;
  escaped.reserve(o.str().size());
  for (char c : o.str()) {
    if (c == '<') {
      escaped += "\\u003c";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string HtmlEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace towerps::dashboard
