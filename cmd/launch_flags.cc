#include "cmd/launch_flags.h"

#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "glog/logging.h"
#include "worker/job_plan.h"

DEFINE_string(host, "",
              "address this process binds to (an IPv4 address or a name resolving to one); "
              "its outgoing connections leave from it too. Empty: listen on 127.0.0.1 and "
              "connect from the system's choice. 0.0.0.0 (every interface) only when asked, "
              "with --advertise_host");
DEFINE_int32(port, 0, "port to listen on (scheduler, ps); 0 = any free port");
DEFINE_string(advertise_host, "",
              "address peers should use to reach this process (the scheduler's endpoint "
              "file, a server's registration); empty = --host");
DEFINE_bool(dry_run, false,
            "validate the flags, the model config, the dataset and the keys, then print one "
            "JSON line describing the job and exit 0 (1 with one error line), binding, "
            "starting and writing nothing");
DEFINE_bool(exit_when_done, true,
            "exit once the job has ended; false keeps the process up (idle, answering "
            "status) until SIGTERM, for launchers that restart any process that exits "
            "(a Kubernetes Deployment or StatefulSet)");

namespace towerps::cmd {

absl::StatusOr<JobInputs> LoadJobInputs() {
  auto config = worker::LoadModelConfig(FLAGS_config);
  if (!config.ok()) return config.status();
  auto meta = data::LoadDatasetMeta(FLAGS_dataset);
  if (!meta.ok()) return meta.status();
  auto model = worker::BindModel(*config, meta->schema);
  if (!model.ok()) return model.status();
  JobInputs job{*std::move(model), *std::move(meta), 0};
  job.planned_steps = worker::PlannedSteps(job.model.config,
                                           static_cast<int64_t>(job.meta.num_examples("train")));
  return job;
}

JsonObject DryRunReport(const char* role, const JobInputs& job, const net::NodeAddress& address) {
  JsonObject json;
  json.Add("dry_run", "ok")
      .Add("role", role)
      .Add("config", FLAGS_config)
      .Add("dataset", FLAGS_dataset)
      .Add("run_dir", FLAGS_run_dir)
      .Add("num_servers", FLAGS_num_servers)
      .Add("num_workers", FLAGS_num_workers)
      .Add("curve_dir", FLAGS_curve_dir)
      .Add("bind", address.BindEndpoint())
      .Add("advertise_host", address.advertise_host)
      .Add("scheduler", FLAGS_scheduler)
      .Add("planned_steps", job.planned_steps);
  return json;
}

int PrintDryRun(const JsonObject& report) {
  std::printf("%s\n", report.ToString().c_str());
  std::fflush(stdout);
  return 0;
}

void IdleUntilStoppedIfAsked(const char* role, const StopSignalWatcher& signals) {
  if (FLAGS_exit_when_done) return;
  if (signals.signal() == 0) {
    LOG(INFO) << role << ": the job has ended; idle until SIGTERM (--exit_when_done=false)";
  }
  while (signals.signal() == 0) absl::SleepFor(absl::Milliseconds(100));
}

}  // namespace towerps::cmd
