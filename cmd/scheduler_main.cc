// `towerps scheduler`: membership, shard map, clock, checkpoints and control of one job.
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "cmd/launch_address.h"
#include "cmd/launch_flags.h"
#include "cmd/metrics_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/metrics.h"
#include "data/schema.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "models/two_tower.h"
#include "net/transport.h"
#include "ps/checkpoint.h"
#include "scheduler/job_file.h"
#include "scheduler/scheduler.h"
#include "worker/job_plan.h"
#include "worker/model_config.h"

DEFINE_string(endpoint_file, "",
              "once bound, write tcp://<advertise_host>:<bound port> to this file (atomically), "
              "where launchers and nodes started without --scheduler find it; empty = "
              "<run_dir>/scheduler.endpoint");
DEFINE_int32(num_partitions, 0, "data partitions of the training split; 0 = num_workers");
DEFINE_int64(staleness, -1, "bounded staleness in steps: 0 synchronous, -1 unbounded (async)");
DEFINE_int64(heartbeat_timeout_ms, 15000,
             "a node silent this long is declared dead; also how long unfinished partitions "
             "may wait for a live worker before the job fails");
DEFINE_int64(stop_timeout_ms, 10000,
             "on SIGTERM/SIGINT or `ctl stop`: how long to wait for the workers to report "
             "their progress before the final checkpoint");
DEFINE_int64(checkpoint_every_steps, 0, "coordinated checkpoint every N global steps (0 = off)");
DEFINE_int64(checkpoint_every_ms, 0, "coordinated checkpoint every N ms (0 = off)");
DEFINE_int32(full_checkpoint_every, 10,
             "every N-th checkpoint is full, those between are incremental (only the rows "
             "changed since the previous one); 1 = all full");
DEFINE_int32(keep_full_checkpoints, 2,
             "after each full checkpoint, delete the checkpoints older than the newest N "
             "complete chains (a full one and its increments) under <run_dir>/checkpoint; the "
             "newest complete one is never deleted, nor anything when none is complete; "
             "0 = keep everything");
DEFINE_uint32(num_virtual_shards, 4096, "virtual shards of the key space");
DEFINE_bool(recover, false,
            "adopt the running job recorded in <run_dir>/scheduler.job (a restarted "
            "scheduler: same endpoint, its nodes re-register, progress from the newest "
            "complete checkpoint); without a running job there, start as usual. "
            "Supervisors pass it on every restart");
DEFINE_int64(recovery_timeout_ms, 120000,
             "how long a dead parameter server's replacement is waited for (phase "
             "recovering) before the job fails, ms");
DEFINE_string(resume, "",
              "continue a job from a checkpoint directory, or 'latest' for the newest "
              "complete one under <run_dir>/checkpoint (servers load their shards from it)");

namespace towerps::cmd {

int RunScheduler(int /*argc*/, char** /*argv*/) {
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_run_dir.empty()) {
    std::fprintf(stderr, "towerps scheduler: --config, --dataset and --run_dir are required\n");
    return 2;
  }
  auto address = NodeAddressFromFlags();
  if (!address.ok()) return Fail("scheduler", address.status());
  CatchStopSignals();
  auto job = LoadJobInputs();
  if (!job.ok()) return Fail("scheduler", job.status());
  const worker::ModelConfig& config = job->model.config;
  scheduler::SchedulerOptions options;
  options.job.num_servers = FLAGS_num_servers;
  options.job.num_workers = FLAGS_num_workers;
  options.job.num_partitions = FLAGS_num_partitions > 0 ? FLAGS_num_partitions : FLAGS_num_workers;
  options.job.staleness = FLAGS_staleness;
  options.job.heartbeat_timeout_ms = FLAGS_heartbeat_timeout_ms;
  options.job.checkpoint_every_steps = FLAGS_checkpoint_every_steps;
  options.job.checkpoint_every_ms = FLAGS_checkpoint_every_ms;
  options.job.checkpoint_clock_multiple = config.dense_sync_every;
  options.stop_timeout_ms = FLAGS_stop_timeout_ms;
  options.recovery_timeout_ms = FLAGS_recovery_timeout_ms;
  options.job_file = FLAGS_run_dir + "/scheduler.job";
  options.events_path = FLAGS_run_dir + "/events.jsonl";
  options.config_path = FLAGS_config;
  options.dataset_path = FLAGS_dataset;
  options.recover = FLAGS_recover;
  options.num_virtual_shards = FLAGS_num_virtual_shards;
  const int64_t total_steps = job->planned_steps;
  options.lr_scale = worker::LrScaleOptions(config, total_steps);
  options.planned_steps = total_steps;
  options.checkpoint_root = FLAGS_run_dir + "/checkpoint";
  options.full_checkpoint_every = FLAGS_full_checkpoint_every;
  options.keep_full_checkpoints = FLAGS_keep_full_checkpoints;
  options.resume_from = FLAGS_resume;
  if (FLAGS_resume == "latest") {
    auto latest = ps::LatestCheckpoint(options.checkpoint_root);
    if (!latest.ok()) return Fail("scheduler", latest.status());
    options.resume_from = *latest;
  }
  options.dense_params = models::DenseParamCount(job->model.two_tower);
  options.rpc.bind_endpoint = address->BindEndpoint();
  options.ps_rpc.source_host = address->source_host;
  options.rpc.name = "scheduler";
  options.rpc.handler_threads = 2;
  options.ps_rpc.timeout_ms = 600000;  // checkpoints of big tables take a while
  auto keys = CurveKeysFromFlags(net::kSchedulerIdentity);
  if (!keys.ok()) return Fail("scheduler", keys.status());
  options.rpc.curve = keys->ServerCurve();
  options.ps_rpc.curve = keys->ServerCurve();
  auto server_keys = keys->ServerPublicKeys(FLAGS_num_servers);
  if (!server_keys.ok()) return Fail("scheduler", server_keys.status());
  options.server_public_keys = *std::move(server_keys);
  if (FLAGS_dry_run) {
    if (absl::Status valid = options.Validate(); !valid.ok()) return Fail("scheduler", valid);
    JsonObject report = DryRunReport("scheduler", *job, *address);
    report.Add("num_partitions", options.job.num_partitions)
        .Add("staleness", FLAGS_staleness)
        .Add("resume", options.resume_from)
        .Add("recover", FLAGS_recover);
    return PrintDryRun(report);
  }
  if (absl::Status made = CreateDirectories(FLAGS_run_dir); !made.ok()) {
    return Fail("scheduler", made);
  }
  // A restarted scheduler of a job that already ended (a Kubernetes pod recreated
  // after the job finished) must not train it again: it idles until stopped.
  if (FLAGS_recover && !FLAGS_exit_when_done) {
    auto file = scheduler::ReadJobFile(options.job_file);
    if (file.ok() && file->state != "running") {
      LOG(INFO) << "scheduler: the job in " << options.job_file << " is " << file->state;
      StopSignalWatcher signals([](int) {});
      IdleUntilStoppedIfAsked("scheduler", signals);
      return file->state == "done" ? 0 : 1;
    }
  }

  net::ZmqContext ctx;
  MetricsRegistry metrics;
  RealClock clock;
  auto zap = StartZapIfSecure(&ctx, *keys, &metrics);
  if (!zap.ok()) return Fail("scheduler", zap.status());
  auto sched = scheduler::Scheduler::Start(&ctx, options, &metrics, &clock);
  if (!sched.ok()) return Fail("scheduler", sched.status());
  auto exporter = StartMetricsServerFromFlags("scheduler", 0, address->bind_host, &metrics);
  if (!exporter.ok()) return Fail("scheduler", exporter.status());
  auto advertised = address->AdvertisedEndpoint((*sched)->endpoint());
  if (!advertised.ok()) return Fail("scheduler", advertised.status());
  absl::Status written = WriteFileAtomically(
      FLAGS_endpoint_file.empty() ? SchedulerEndpointFile(FLAGS_run_dir) : FLAGS_endpoint_file,
      *advertised + "\n");
  if (!written.ok()) return Fail("scheduler", written);
  MetricsWriterOptions metrics_options;
  metrics_options.path = FLAGS_run_dir + "/metrics.jsonl";
  metrics_options.role = "scheduler";
  metrics_options.interval_ms = FLAGS_metrics_interval_ms;
  auto writer = MetricsWriter::Create(metrics_options, &metrics, &clock);
  if (!writer.ok()) return Fail("scheduler", writer.status());
  (*writer)->Start();
  LOG(INFO) << "scheduler: " << total_steps << " planned steps; endpoint " << *advertised
            << " (bound " << (*sched)->endpoint() << ")";
  // SIGTERM / SIGINT: a graceful stop with a final checkpoint.
  scheduler::Scheduler* raw = sched->get();
  StopSignalWatcher signals(
      [raw](int sig) { raw->RequestStop(absl::StrCat("stopped by ", strsignal(sig))); });
  absl::Status done = (*sched)->WaitUntilDone();
  // Let servers and workers see the final phase in their next heartbeat.
  absl::SleepFor(absl::Seconds(2));
  std::printf("%s\n", (*sched)->StatusJson().c_str());
  std::fflush(stdout);  // before the failure line, which must be the last
  IdleUntilStoppedIfAsked("scheduler", signals);  // still answering `ctl status`
  (*sched)->Stop();
  (*writer)->Stop();
  if (!done.ok()) return Fail("scheduler", done);
  return 0;
}

}  // namespace towerps::cmd
