// `towerps ctl --scheduler=ENDPOINT status|pause|resume|checkpoint|stop`, or
// `towerps ctl --flagfile=JOB ...`: the job's scheduler, from <run_dir>/scheduler.endpoint.
// `status --watch` refreshes the status until the job ends (scheduler/status_watch.h).
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "cmd/launch_address.h"
#include "cmd/shared_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/status.h"
#include "gflags/gflags.h"
#include "net/address.h"
#include "net/membership_client.h"
#include "scheduler/job_file.h"
#include "scheduler/status_watch.h"

DEFINE_int64(ctl_timeout_ms, 5000, "deadline of the request");
DEFINE_string(watch_format, "auto",
              "status --watch: screen (redrawn), line (the progress line each refresh) or auto "
              "(screen on a terminal, else line)");
DEFINE_int64(watch_give_up_ms, 0,
             "status --watch: give up (exit 1) after this long without an answer from the "
             "scheduler, milliseconds; 0 = never");

namespace towerps::cmd {
namespace {

// status --watch refreshes this often unless --watch_interval_ms says otherwise.
constexpr int64_t kDefaultWatchIntervalMs = 2000;

// A client of the scheduler at --scheduler or <run_dir>/scheduler.endpoint (read at
// each connect: a restarted scheduler may have written a new one).
absl::StatusOr<std::unique_ptr<net::MembershipClient>> ConnectScheduler(const net::ZmqContext* ctx,
                                                                        int64_t timeout_ms,
                                                                        int max_attempts) {
  std::string endpoint = FLAGS_scheduler;
  if (endpoint.empty()) {
    TOWERPS_ASSIGN_OR_RETURN(endpoint, net::ReadEndpointFile(SchedulerEndpointFile(FLAGS_run_dir)));
  }
  net::RpcClientOptions options;
  options.endpoint = endpoint;
  options.timeout_ms = timeout_ms;
  options.max_attempts = max_attempts;
  options.name = "ctl";
  TOWERPS_ASSIGN_OR_RETURN(net::JobKeys keys, CurveKeysFromFlags(net::kOperatorIdentity));
  TOWERPS_ASSIGN_OR_RETURN(options.curve, keys.ClientCurve(net::kSchedulerIdentity));
  return net::MembershipClient::Connect(ctx, options);
}

int Watch(const net::ZmqContext* ctx) {
  scheduler::StatusWatchOptions options;
  options.interval_ms = WatchIntervalMsOr(kDefaultWatchIntervalMs);
  options.give_up_ms = FLAGS_watch_give_up_ms;
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  if (FLAGS_watch_format != "auto" && FLAGS_watch_format != "screen" &&
      FLAGS_watch_format != "line") {
    std::fprintf(stderr, "towerps ctl: --watch_format must be auto, screen or line\n");
    return 2;
  }
  options.screen = FLAGS_watch_format == "screen" || (FLAGS_watch_format == "auto" && terminal);
  winsize size{};
  if (terminal && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    options.width = size.ws_col;
  }
  // One attempt per refresh, answered within the interval (at least 1 s).
  const int64_t timeout_ms =
      std::min(FLAGS_ctl_timeout_ms, std::max<int64_t>(options.interval_ms, 1000));
  std::unique_ptr<net::MembershipClient> client;
  scheduler::StatusWatchIo io;
  io.fetch = [&]() -> absl::StatusOr<std::string> {
    if (client == nullptr) {
      TOWERPS_ASSIGN_OR_RETURN(client, ConnectScheduler(ctx, timeout_ms, /*max_attempts=*/1));
    }
    absl::StatusOr<std::string> status = client->Control("status");
    if (!status.ok()) client.reset();  // reconnect (to the endpoint file's scheduler) next time
    return status;
  };
  if (!FLAGS_run_dir.empty()) {
    io.job_file_state = [] {
      auto file = scheduler::ReadJobFile(FLAGS_run_dir + "/scheduler.job");
      return file.ok() ? file->state : std::string();
    };
  }
  io.write = [](const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  };
  RealClock clock;
  io.clock = &clock;
  absl::Notification stop;
  io.stop = &stop;
  CatchStopSignals();
  StopSignalWatcher signals([&stop](int) { stop.Notify(); });
  return scheduler::WatchStatus(options, io);
}

}  // namespace

int RunCtl(int argc, char** argv) {
  if ((FLAGS_scheduler.empty() && FLAGS_run_dir.empty()) || argc != 2) {
    std::fprintf(stderr,
                 "usage: towerps ctl --scheduler=ENDPOINT|--flagfile=JOB "
                 "status [--watch]|pause|resume|checkpoint|stop\n");
    return 2;
  }
  net::ZmqContext ctx;
  if (FLAGS_watch) {
    if (std::string(argv[1]) != "status") {
      std::fprintf(stderr, "towerps ctl: --watch goes with status only\n");
      return 2;
    }
    return Watch(&ctx);
  }
  auto client = ConnectScheduler(&ctx, FLAGS_ctl_timeout_ms, /*max_attempts=*/2);
  if (!client.ok()) return Fail("ctl", client.status());
  auto status = (*client)->Control(argv[1]);
  if (!status.ok()) return Fail("ctl", status.status());
  std::printf("%s\n", status->c_str());
  return 0;
}

}  // namespace towerps::cmd
