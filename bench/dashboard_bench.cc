// bench_dashboard: `towerps dashboard` on a long run. Writes a synthetic metrics.jsonl
// shaped like a real cluster run (a scheduler, 4 servers with 3 tables each, 8 workers,
// every key they write plus the dashboard's new series), renders it, and reports the
// page's size, the render time and the peak resident memory of the rendering, for
// 100k and 1M lines (--quick: 10k and 100k). Each rendering runs in a child process
// (fork) so its peak RSS (wait4) is its own: flat memory shows as a ratio near 1.
// The peer, in the same run and on the same file: jq (Debian's command-line JSON tool)
// pulling one series out of it (`select(.role=="worker") | [.ts_ms, .towerps_worker_loss]`),
// a lower bound of what any reader of the file does; skipped when jq is absent.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "dashboard/dashboard.h"
#include "glog/logging.h"

namespace towerps::bench {
namespace {

constexpr int kServers = 4;
constexpr int kWorkers = 8;

std::string Line(int64_t i, int64_t t_ms) {
  const int64_t interval = i / (1 + kServers + kWorkers);
  const int slot = static_cast<int>(i % (1 + kServers + kWorkers));
  const double noise = std::sin(static_cast<double>(i) * 0.7);
  std::string s;
  auto hist = [&](const char* name, double p50) {
    absl::StrAppendFormat(&s, ",\"%s_count\":%d,\"%s_p50\":%.3f,\"%s_p99\":%.3f,\"%s_max\":%.3f",
                          name, 40, name, p50, name, p50 * 3, name, p50 * 5);
  };
  if (slot == 0) {
    absl::StrAppendFormat(
        &s,
        "{\"ts_ms\":%d,\"role\":\"scheduler\",\"rank\":0,\"towerps_net_bad_requests_total\":0,"
        "\"towerps_net_requests_total\":%d,\"towerps_scheduler_checkpoints_total\":%d,"
        "\"towerps_scheduler_global_step\":%d,\"towerps_scheduler_planned_steps\":%d,"
        "\"towerps_scheduler_clock_spread_steps\":%d,\"towerps_scheduler_live_workers\":8,"
        "\"towerps_scheduler_lr_scale\":%.4f,\"towerps_process_resident_memory_bytes\":%d",
        t_ms, interval * 16, interval / 100, interval * 8, int64_t{1} << 40, interval % 3,
        0.5 + 0.4 * noise, 50'000'000 + interval % 1000);
    hist("towerps_net_handle_latency_us", 30);
  } else if (slot <= kServers) {
    absl::StrAppendFormat(
        &s,
        "{\"ts_ms\":%d,\"role\":\"ps\",\"rank\":%d,\"towerps_net_bad_requests_total\":%d,"
        "\"towerps_net_requests_total\":%d,\"towerps_ps_pulled_keys_total\":%d,"
        "\"towerps_ps_pushed_keys_total\":%d,\"towerps_process_resident_memory_bytes\":%d",
        t_ms, slot - 1, interval / 1000, interval * 40, interval * 5000, interval * 5000,
        200'000'000 + interval);
    for (const char* table : {"user_id", "item_id", "attr"}) {
      absl::StrAppendFormat(
          &s,
          ",\"towerps_sparse_emb_%s_admitted_total\":%d,\"towerps_sparse_emb_%s_evicted_total\":%d,"
          "\"towerps_sparse_emb_%s_rejected_total\":0,\"towerps_sparse_emb_%s_rows\":%d,"
          "\"towerps_sparse_emb_%s_memory_bytes\":%d",
          table, interval * 3, interval, table, table, interval * 2, table, interval * 512);
    }
    hist("towerps_net_handle_latency_us", 120);
  } else {
    absl::StrAppendFormat(
        &s,
        "{\"ts_ms\":%d,\"role\":\"worker\",\"rank\":%d,\"towerps_worker_global_step\":%d,"
        "\"towerps_worker_loss\":%.5f,\"towerps_worker_lr_scale\":%.4f,"
        "\"towerps_worker_examples_total\":%d,\"towerps_process_resident_memory_bytes\":%d",
        t_ms, slot - 1 - kServers, interval * 8, 6.0 / (1 + interval * 1e-4) + 0.1 * noise,
        0.5 + 0.4 * noise, interval * 512, 300'000'000 + interval);
    hist("towerps_worker_pull_latency_us", 900 + 100 * noise);
    hist("towerps_worker_push_latency_us", 1500 + 100 * noise);
    hist("towerps_worker_staleness_wait_us", 50);
  }
  s += "}\n";
  return s;
}

// Writes `lines` lines to <dir>/metrics.jsonl; returns its size in bytes.
uint64_t WriteRun(const std::string& dir, int64_t lines) {
  CHECK(CreateDirectories(dir).ok());
  auto writer = AtomicFileWriter::Open(dir + "/metrics.jsonl");
  CHECK(writer.status().ok());
  const int64_t t0 = 1'700'000'000'000;
  for (int64_t i = 0; i < lines; ++i) {
    // 13 processes, one line each per 2 s interval.
    CHECK(writer->Append(Line(i, t0 + (i / 13) * 2000 + i % 13)).ok());
  }
  CHECK(writer->Commit().ok());
  return writer->size();
}

// Renders <dir> in a child process; prints its figures (the child prints seconds and
// bytes, the parent the child's peak RSS) and returns the peak RSS in MiB.
double RenderInChild(const std::string& dir, const std::string& label) {
  std::fflush(stdout);
  pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    dashboard::DashboardOptions options;
    options.run_dir = dir;
    dashboard::RenderStats stats;
    double seconds = Seconds([&] { CHECK(dashboard::WriteDashboard(options, &stats).ok()); });
    PrintFigure({"dashboard", "render seconds, " + label, seconds, "s", "", 0});
    PrintFigure(
        {"dashboard", "page bytes, " + label, static_cast<double>(stats.page_bytes), "B", "", 0});
    PrintFigure({"dashboard", "chart lines (points), " + label, static_cast<double>(stats.series),
                 absl::StrCat("lines (", stats.points, " points)"), "", 0});
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  struct rusage usage {};
  CHECK_EQ(wait4(pid, &status, 0, &usage), pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "render child failed";
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB -> MiB
}

// Runs jq over <dir>/metrics.jsonl (output discarded) in a child; returns its seconds
// and peak RSS in MiB, or seconds < 0 when jq cannot run.
std::pair<double, double> JqInChild(const std::string& dir) {
  std::fflush(stdout);
  const std::string path = dir + "/metrics.jsonl";
  double seconds = 0;
  int status = 0;
  struct rusage usage {};
  seconds = Seconds([&] {
    pid_t pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) {
      if (std::freopen("/dev/null", "w", stdout) == nullptr) _exit(127);
      execlp("jq", "jq", "-c", R"(select(.role=="worker") | [.ts_ms, .towerps_worker_loss])",
             path.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    CHECK_EQ(wait4(pid, &status, 0, &usage), pid);
  });
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {-1, 0};
  return {seconds, static_cast<double>(usage.ru_maxrss) / 1024.0};
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  using namespace towerps::bench;
  const bool quick = QuickMode(argc, argv);
  const int64_t small = quick ? 10'000 : 100'000;
  const int64_t large = quick ? 100'000 : 1'000'000;
  char tmpl[] = "/tmp/bench_dashboard.XXXXXX";
  const std::string root = mkdtemp(tmpl);
  double rss[2];
  int64_t sizes[2] = {small, large};
  for (int k = 0; k < 2; ++k) {
    const std::string dir = absl::StrCat(root, "/run", k);
    const std::string label = absl::StrCat(sizes[k], " lines");
    uint64_t bytes = WriteRun(dir, sizes[k]);
    PrintFigure(
        {"dashboard", "metrics.jsonl bytes, " + label, static_cast<double>(bytes), "B", "", 0});
    rss[k] = RenderInChild(dir, label);
    auto [jq_seconds, jq_rss] = JqInChild(dir);
    if (jq_seconds < 0) {
      std::printf("# jq not found or failed: no peer figures (apt-get install jq)\n");
      continue;
    }
    PrintFigure({"dashboard", "jq, one series out, seconds, " + label, jq_seconds, "s", "", 0});
    PrintFigure({"dashboard", "jq peak RSS MiB, " + label, jq_rss, "MiB", "", 0});
  }
  PrintFigure({"dashboard", absl::StrCat("peak RSS, ", large, " lines"), rss[1], "MiB",
               absl::StrCat("peak RSS, ", small, " lines"), rss[0]});
  CHECK(towerps::RemoveAll(root).ok());
  return 0;
}
