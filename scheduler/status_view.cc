#include "scheduler/status_view.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/progress_line.h"
#include "nlohmann/json.hpp"

namespace towerps::scheduler {
namespace {

using nlohmann::json;

// Bounds on what a reply can make the screen hold.
constexpr size_t kMaxNodes = 4096;
constexpr size_t kMaxStringBytes = 256;

const json* Find(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

int64_t IntOr(const json& object, const char* key, int64_t fallback) {
  const json* v = Find(object, key);
  if (v == nullptr) return fallback;
  if (v->is_number_unsigned()) {
    return static_cast<int64_t>(
        std::min<uint64_t>(v->get<uint64_t>(), std::numeric_limits<int64_t>::max()));
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && std::fabs(d) < 9e18) return static_cast<int64_t>(d);
  }
  return fallback;
}

double NumberOr(const json& object, const char* key, double fallback) {
  const json* v = Find(object, key);
  return v != nullptr && v->is_number() ? v->get<double>() : fallback;
}

bool BoolOr(const json& object, const char* key, bool fallback) {
  const json* v = Find(object, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}

// Printable characters only (no terminal escapes), at most kMaxStringBytes.
std::string Sanitized(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxStringBytes) break;
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) out += c;
  }
  return out;
}

std::string StringOr(const json& object, const char* key, const std::string& fallback) {
  const json* v = Find(object, key);
  return v != nullptr && v->is_string() ? Sanitized(v->get<std::string>()) : fallback;
}

std::vector<NodeStatus> Nodes(const json& object, const char* key) {
  std::vector<NodeStatus> nodes;
  const json* list = Find(object, key);
  if (list == nullptr || !list->is_array()) return nodes;
  for (const json& n : *list) {
    if (nodes.size() >= kMaxNodes) break;
    if (!n.is_object()) continue;
    NodeStatus node;
    node.rank = IntOr(n, "rank", -1);
    node.alive = BoolOr(n, "alive", false);
    node.endpoint = StringOr(n, "endpoint", "");
    node.steps = IntOr(n, "steps", 0);
    node.finished = BoolOr(n, "finished", false);
    node.loss = NumberOr(n, "loss", kUnknown);
    node.examples = IntOr(n, "examples", 0);
    node.last_seen_s = NumberOr(n, "last_seen_s", -1);
    nodes.push_back(std::move(node));
  }
  return nodes;
}

std::string LossText(double loss) {
  return std::isfinite(loss) ? absl::StrFormat("%.4f", loss) : "-";
}

std::string NodeState(const NodeStatus& n) {
  if (n.rank < 0) return "waiting";
  if (!n.alive) return "dead";
  return n.finished ? "left" : "alive";
}

std::string SeenText(double seconds) {
  return std::isfinite(seconds) && seconds >= 0 ? absl::StrFormat("%.1fs ago", seconds) : "-";
}

}  // namespace

absl::StatusOr<JobStatusView> ParseStatusJson(absl::string_view text) {
  const json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("the status reply is not a JSON object");
  }
  const json* phase = Find(root, "phase");
  if (phase == nullptr || !phase->is_string()) {
    return absl::InvalidArgumentError("the status reply has no phase");
  }
  JobStatusView s;
  s.phase = Sanitized(phase->get<std::string>());
  s.global_step = IntOr(root, "global_step", 0);
  s.planned_steps = IntOr(root, "planned_steps", 0);
  s.epoch = IntOr(root, "epoch", 0);
  s.lr_scale = NumberOr(root, "lr_scale", kUnknown);
  s.staleness = IntOr(root, "staleness", 0);
  s.elapsed_s = NumberOr(root, "elapsed_s", -1);
  s.steps_per_s = NumberOr(root, "steps_per_s", 0);
  s.examples_per_s = NumberOr(root, "examples_per_s", 0);
  s.eta_s = NumberOr(root, "eta_s", -1);
  s.loss = NumberOr(root, "loss", kUnknown);
  s.servers = Nodes(root, "servers");
  s.workers = Nodes(root, "workers");
  s.partitions_done = IntOr(root, "partitions_done", 0);
  s.partitions = IntOr(root, "partitions", 0);
  s.last_checkpoint = StringOr(root, "last_checkpoint", "");
  s.last_checkpoint_step = IntOr(root, "last_checkpoint_step", -1);
  s.last_checkpoint_age_s = NumberOr(root, "last_checkpoint_age_s", -1);
  return s;
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds > 1e9) return ">30y";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
}

std::string RenderStatusLine(const JobStatusView& s) {
  ProgressFigures f;
  f.step = s.global_step;
  f.total_steps = s.planned_steps;
  f.loss = s.loss;
  f.examples_per_s = s.examples_per_s;
  f.lr_scale = std::isfinite(s.lr_scale) ? s.lr_scale : 0;
  f.eta_s = s.eta_s;
  return FormatProgressLine(f);
}

std::string RenderStatusScreen(const JobStatusView& s, int width) {
  width = std::clamp(width, 40, 400);
  std::string out =
      absl::StrFormat("towerps job: %s    elapsed %s\n", s.phase, FormatSeconds(s.elapsed_s));
  // step 1234/5000 [####.......]  24.7%
  std::string step = absl::StrCat("step ", s.global_step, "/",
                                  s.planned_steps > 0 ? absl::StrCat(s.planned_steps) : "?");
  if (s.planned_steps > 0) {
    const double done = std::clamp(
        static_cast<double>(s.global_step) / static_cast<double>(s.planned_steps), 0.0, 1.0);
    const int bar = std::max(10, width - static_cast<int>(step.size()) - 12);
    const int filled = static_cast<int>(done * bar);
    step += absl::StrFormat(" [%s%s] %5.1f%%", std::string(filled, '#'),
                            std::string(bar - filled, '.'), 100.0 * done);
  }
  absl::StrAppend(&out, step, "\n");
  absl::StrAppendFormat(&out, "ETA %s   %.0f examples/s   %.1f steps/s   loss %s   lr x%s\n",
                        s.phase == "done" ? "0s" : FormatSeconds(s.eta_s),
                        std::isfinite(s.examples_per_s) ? s.examples_per_s : 0,
                        std::isfinite(s.steps_per_s) ? s.steps_per_s : 0, LossText(s.loss),
                        std::isfinite(s.lr_scale) ? absl::StrFormat("%.3f", s.lr_scale) : "-");
  absl::StrAppendFormat(&out, "partitions %d/%d done   staleness %d   epoch %d\n",
                        s.partitions_done, s.partitions, s.staleness, s.epoch);
  if (s.last_checkpoint_step >= 0) {
    absl::StrAppendFormat(&out, "last checkpoint: step %d, %s ago  %s\n", s.last_checkpoint_step,
                          FormatSeconds(s.last_checkpoint_age_s), s.last_checkpoint);
  } else {
    absl::StrAppend(&out, "last checkpoint: none yet\n");
  }
  absl::StrAppendFormat(&out, "\nservers (%d)\n  %4s  %-7s  %11s  %s\n", s.servers.size(), "rank",
                        "state", "last seen", "endpoint");
  for (const NodeStatus& n : s.servers) {
    absl::StrAppendFormat(&out, "  %4d  %-7s  %11s  %s\n", n.rank, NodeState(n),
                          SeenText(n.last_seen_s), n.endpoint);
  }
  absl::StrAppendFormat(&out, "workers (%d)\n  %4s  %-7s  %11s  %9s  %11s  %s\n", s.workers.size(),
                        "rank", "state", "last seen", "steps", "examples", "loss");
  for (const NodeStatus& n : s.workers) {
    absl::StrAppendFormat(&out, "  %4d  %-7s  %11s  %9d  %11d  %s\n", n.rank, NodeState(n),
                          SeenText(n.last_seen_s), n.steps, n.examples, LossText(n.loss));
  }
  return out;
}

}  // namespace towerps::scheduler
