// `towerps ps`: one parameter server of a job.
#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "cmd/launch_address.h"
#include "cmd/launch_flags.h"
#include "cmd/metrics_flags.h"
#include "cmd/node_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "data/schema.h"
#include "gflags/gflags.h"
#include "ps/ps_node.h"
#include "worker/job_plan.h"
#include "worker/model_config.h"

DEFINE_int32(rank, -1, "requested rank (-1: any free one)");
DEFINE_string(restore, "", "checkpoint directory to load this server's shards from");
DEFINE_int64(stop_grace_ms, 20000,
             "on SIGTERM/SIGINT: keep serving until the job ends, at most this long (ms), "
             "so that a stopping scheduler's final checkpoint reaches this server");
DEFINE_int32(handler_threads, 2,
             "threads serving requests; 0 serves on the io thread (fewest context "
             "switches: for servers sharing few cores with other processes)");

namespace towerps::cmd {

int RunPs(int /*argc*/, char** /*argv*/) {
  // --run_dir is where this server's checkpoints go: the scheduler names only steps.
  // Without --scheduler, the endpoint comes from <run_dir>/scheduler.endpoint.
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_run_dir.empty()) {
    std::fprintf(stderr, "towerps ps: --config, --dataset and --run_dir are required\n");
    return 2;
  }
  if (absl::Status ranked = RequireRankWithCurve(FLAGS_rank, "--rank"); !ranked.ok()) {
    return Fail("ps", ranked);
  }
  auto address = NodeAddressFromFlags();
  if (!address.ok()) return Fail("ps", address.status());
  CatchStopSignals();
  auto job = LoadJobInputs();
  if (!job.ok()) return Fail("ps", job.status());

  ps::PsNodeOptions options;
  options.address = *address;
  options.rank = FLAGS_rank;
  options.handler_threads = FLAGS_handler_threads;
  options.server = worker::ServerOptionsFor(job->model, 0, 1);
  options.restore_dir = FLAGS_restore;
  auto keys = CurveKeysFromFlags(net::NodeIdentity("ps", FLAGS_rank));
  if (!keys.ok()) return Fail("ps", keys.status());
  options.curve = keys->ServerCurve();
  auto scheduler_curve = keys->ClientCurve(net::kSchedulerIdentity);
  if (!scheduler_curve.ok()) return Fail("ps", scheduler_curve.status());
  options.scheduler_rpc.curve = *scheduler_curve;
  options.heartbeat_interval_ms = FLAGS_heartbeat_interval_ms;
  options.scheduler_timeout_ms = FLAGS_scheduler_timeout_ms;
  options.stop_grace_ms = FLAGS_stop_grace_ms;
  // Checkpoints ordered by the scheduler go under the run directory given here, never
  // under a path from the wire.
  options.server.checkpoint_root = FLAGS_run_dir + "/checkpoint";
  if (FLAGS_dry_run) {
    JsonObject report = DryRunReport("ps", *job, *address);
    report.Add("rank", FLAGS_rank).Add("restore", FLAGS_restore);
    return PrintDryRun(report);
  }
  auto scheduler = SchedulerEndpointFromFlags();
  if (absl::IsCancelled(scheduler.status())) return 0;  // stopped before the job started
  if (!scheduler.ok()) return Fail("ps", scheduler.status());
  options.scheduler_endpoint = *scheduler;
  net::ZmqContext ctx;
  MetricsRegistry metrics;
  RealClock clock;
  auto zap = StartZapIfSecure(&ctx, *keys, &metrics);
  if (!zap.ok()) return Fail("ps", zap.status());
  auto node = ps::PsNode::Start(&ctx, options, &metrics);
  if (!node.ok()) return Fail("ps", node.status());
  auto exporter = StartMetricsServerFromFlags("ps", (*node)->rank(), address->bind_host, &metrics);
  if (!exporter.ok()) return Fail("ps", exporter.status());
  std::unique_ptr<MetricsWriter> writer;
  if (!FLAGS_run_dir.empty()) {
    MetricsWriterOptions metrics_options;
    metrics_options.path = FLAGS_run_dir + "/metrics.jsonl";
    metrics_options.role = "ps";
    metrics_options.rank = (*node)->rank();
    metrics_options.interval_ms = FLAGS_metrics_interval_ms;
    auto created = MetricsWriter::Create(metrics_options, &metrics, &clock);
    if (!created.ok()) return Fail("ps", created.status());
    writer = std::move(created).value();
    writer->Start();
  }
  // SIGTERM / SIGINT: serve until the job ends (at most --stop_grace_ms), answer the
  // requests already received, exit 0.
  ps::PsNode* raw = node->get();
  StopSignalWatcher signals([raw](int) { raw->Stop(); });
  absl::Status status = (*node)->Run();
  if (writer) writer->Stop();
  if (!status.ok()) return Fail("ps", status);
  IdleUntilStoppedIfAsked("ps", signals);
  return 0;
}

}  // namespace towerps::cmd
