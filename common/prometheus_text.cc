#include "common/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace towerps {
namespace {

// The per-table names sparse_emb/embedding_table.cc registers.
constexpr absl::string_view kTablePrefix = "towerps_sparse_emb_";
constexpr absl::string_view kTableSuffixes[] = {"admitted_total", "rejected_total", "evicted_total",
                                                "rows", "memory_bytes"};

// Exponents of the exported `le` bounds, in the recorded unit: 16 powers of 4 from
// 2^0 (1 us .. 2^30 us = 18 min for a _us latency) or, for a histogram recorded in
// base units, from 2^-10 (1 ms .. 2^20 s = 12 days for _seconds).
constexpr int kLeCount = 16;
constexpr int kLeStep = 2;
constexpr int kScaledMinLeExponent = 0;
constexpr int kBaseMinLeExponent = -10;
static_assert(kBaseMinLeExponent > Histogram::kMinExponent &&
              kScaledMinLeExponent + (kLeCount - 1) * kLeStep < Histogram::kMaxExponent);

enum class Kind { kCounter, kGauge, kHistogram };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// One registry name mapped to its Prometheus family.
struct Mapped {
  std::string family;
  std::optional<std::string> table;
  double scale = 1.0;  // multiply recorded values by this to get base units
};

std::string SanitizeName(absl::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == ':';
    if (!ok) c = '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out = absl::StrCat("_", out);
  return out;
}

Mapped MapName(absl::string_view name, Kind kind) {
  Mapped m;
  std::string base(name);
  if (absl::StartsWith(name, kTablePrefix)) {
    absl::string_view rest = name.substr(kTablePrefix.size());
    for (absl::string_view suffix : kTableSuffixes) {
      // "<table>_<suffix>" with a non-empty table.
      if (rest.size() > suffix.size() + 1 && absl::EndsWith(rest, suffix) &&
          rest[rest.size() - suffix.size() - 1] == '_') {
        m.table = std::string(rest.substr(0, rest.size() - suffix.size() - 1));
        base = absl::StrCat(kTablePrefix, suffix);
        break;
      }
    }
  }
  const bool counter = kind == Kind::kCounter;
  absl::string_view stem = base;
  if (counter && absl::EndsWith(stem, "_total")) stem.remove_suffix(6);
  std::string unit_fixed(stem);
  if (absl::EndsWith(stem, "_us")) {
    unit_fixed = absl::StrCat(stem.substr(0, stem.size() - 3), "_seconds");
    m.scale = 1e-6;
  } else if (absl::EndsWith(stem, "_ms")) {
    unit_fixed = absl::StrCat(stem.substr(0, stem.size() - 3), "_seconds");
    m.scale = 1e-3;
  }
  m.family = SanitizeName(counter ? absl::StrCat(unit_fixed, "_total") : unit_fixed);
  return m;
}

struct Family {
  Kind kind = Kind::kGauge;
  std::string source;  // first registry name seen, for the HELP line
  double scale = 1.0;
  std::vector<std::string> samples;  // rendered lines, in registry order
};

std::string Labels(const PrometheusTarget& target, const std::optional<std::string>& table,
                   absl::string_view le = {}) {
  std::string out = absl::StrCat("{role=\"", EscapePrometheusLabelValue(target.role), "\",rank=\"",
                                 target.rank, "\"");
  if (table.has_value())
    absl::StrAppend(&out, ",table=\"", EscapePrometheusLabelValue(*table), "\"");
  if (!le.empty()) absl::StrAppend(&out, ",le=\"", le, "\"");
  out.push_back('}');
  return out;
}

// The text format's escapes: backslash and newline always (HELP text), the double
// quote too in a label value.
std::string Escape(absl::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string EscapePrometheusLabelValue(absl::string_view value) {
  return Escape(value, /*quote=*/true);
}

std::string FormatPrometheusValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

std::string RenderPrometheusText(MetricsRegistry* registry, const PrometheusTarget& target) {
  std::map<std::string, Family> families;
  auto family_for = [&](const std::string& name, Kind kind, Mapped* mapped) -> Family* {
    *mapped = MapName(name, kind);
    auto [it, inserted] = families.try_emplace(mapped->family);
    Family& f = it->second;
    if (inserted) {
      f.kind = kind;
      f.source = mapped->table.has_value()
                     ? absl::StrCat(kTablePrefix, "<table>_",
                                    absl::string_view(mapped->family).substr(kTablePrefix.size()))
                     : name;
      f.scale = mapped->scale;
    } else if (f.kind != kind) {
      return nullptr;  // two kinds mapped to one family: keep the first
    }
    return &f;
  };
  registry->ForEach(
      [&](const std::string& name, const Counter& counter) {
        Mapped m;
        Family* f = family_for(name, Kind::kCounter, &m);
        if (f == nullptr) return;
        f->samples.push_back(absl::StrCat(m.family, Labels(target, m.table), " ", counter.value()));
      },
      [&](const std::string& name, const Gauge& gauge) {
        Mapped m;
        Family* f = family_for(name, Kind::kGauge, &m);
        if (f == nullptr) return;
        f->samples.push_back(absl::StrCat(m.family, Labels(target, m.table), " ",
                                          FormatPrometheusValue(gauge.value() * m.scale)));
      },
      [&](const std::string& name, Histogram* histogram) {
        Mapped m;
        Family* f = family_for(name, Kind::kHistogram, &m);
        if (f == nullptr) return;
        Histogram::Totals totals = histogram->TakeTotals();
        int bucket = 0;
        int64_t cumulative = 0;
        const int min_exponent = m.scale == 1.0 ? kBaseMinLeExponent : kScaledMinLeExponent;
        for (int i = 0; i < kLeCount; ++i) {
          const double bound = std::ldexp(1.0, min_exponent + i * kLeStep);
          while (bucket < Histogram::kNumBuckets && Histogram::BucketUpperBound(bucket) <= bound) {
            cumulative += totals.buckets[bucket++];
          }
          f->samples.push_back(absl::StrCat(
              m.family, "_bucket", Labels(target, m.table, FormatPrometheusValue(bound * m.scale)),
              " ", cumulative));
        }
        f->samples.push_back(
            absl::StrCat(m.family, "_bucket", Labels(target, m.table, "+Inf"), " ", totals.count));
        f->samples.push_back(absl::StrCat(m.family, "_sum", Labels(target, m.table), " ",
                                          FormatPrometheusValue(totals.sum * m.scale)));
        f->samples.push_back(
            absl::StrCat(m.family, "_count", Labels(target, m.table), " ", totals.count));
      });
  std::string out;
  for (const auto& [name, f] : families) {
    std::string help = absl::StrCat("towerps ", KindName(f.kind), " ", f.source);
    if (f.scale != 1.0) absl::StrAppend(&help, ", converted to seconds");
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(help, /*quote=*/false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", KindName(f.kind), "\n");
    for (const std::string& line : f.samples) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace towerps
