#include "cmd/launch_address.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "cmd/job_flags.h"
#include "cmd/launch_flags.h"
#include "cmd/node_flags.h"
#include "cmd/stop_signals.h"
#include "common/cancellation.h"
#include "glog/logging.h"

namespace towerps::cmd {

absl::StatusOr<net::NodeAddress> NodeAddressFromFlags() {
  net::NodeAddressOptions options;
  options.host = FLAGS_host;
  options.port = FLAGS_port;
  options.advertise_host = FLAGS_advertise_host;
  return net::ResolveNodeAddress(options);
}

std::string SchedulerEndpointFile(const std::string& run_dir) {
  return run_dir + "/scheduler.endpoint";
}

absl::StatusOr<std::string> SchedulerEndpointFromFlags(int* stopped_by) {
  if (!FLAGS_scheduler.empty()) return FLAGS_scheduler;
  const std::string path = SchedulerEndpointFile(FLAGS_run_dir);
  // A launcher stopping the job before the scheduler is up must not wait out the
  // timeout: a signal ends the wait (and is not seen again by the caller's watcher).
  Cancellation stopped;
  StopSignalWatcher signals([&stopped, stopped_by](int sig) {
    if (stopped_by != nullptr) *stopped_by = sig;
    stopped.Cancel(absl::CancelledError(absl::StrCat("stopped by ", strsignal(sig),
                                                     " while waiting for the scheduler")));
  });
  LOG(INFO) << "waiting for the scheduler's endpoint in " << path;
  return net::WaitForEndpointFile(path, FLAGS_scheduler_timeout_ms, /*poll_ms=*/100, &stopped);
}

}  // namespace towerps::cmd
