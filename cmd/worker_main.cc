// `towerps worker`: one training worker of a job.
#include <cblas.h>

#include <cstdio>

#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "cmd/launch_address.h"
#include "cmd/launch_flags.h"
#include "cmd/metrics_flags.h"
#include "cmd/node_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/metrics.h"
#include "gflags/gflags.h"
#include "worker/cluster_worker.h"
#include "worker/model_config.h"

DEFINE_int32(worker_rank, -1, "requested rank (-1: any free one)");
DEFINE_bool(worker_log_losses, false, "write every step's loss to <run_dir>/losses-worker-<rank>.tsv");
DEFINE_int64(request_timeout_ms, 30000, "deadline of one request to a server (or the scheduler: at most 2 heartbeat intervals)");

namespace towerps::cmd {

int RunWorker(int /*argc*/, char** /*argv*/) {
  if (FLAGS_config.empty() || FLAGS_dataset.empty() ||
      (FLAGS_scheduler.empty() && FLAGS_run_dir.empty())) {
    std::fprintf(stderr,
                 "towerps worker: --config, --dataset and --scheduler or --run_dir (its "
                 "scheduler.endpoint) are required\n");
    return 2;
  }
  if (absl::Status ranked = RequireRankWithCurve(FLAGS_worker_rank, "--worker_rank");
      !ranked.ok()) {
    return Fail("worker", ranked);
  }
  auto address = NodeAddressFromFlags();
  if (!address.ok()) return Fail("worker", address.status());
  CatchStopSignals();
  auto job = LoadJobInputs();
  if (!job.ok()) return Fail("worker", job.status());
  const worker::ModelConfig& config = job->model.config;
  // Several processes share the cores: keep OpenBLAS from spawning its own threads.
  openblas_set_num_threads(1);
  worker::ClusterWorkerOptions options;
  options.rpc.source_host = address->source_host;
  options.dataset_dir = FLAGS_dataset;
  options.run_dir = FLAGS_run_dir;
  options.rank = FLAGS_worker_rank;
  options.log_losses = FLAGS_worker_log_losses;
  options.rpc.timeout_ms = FLAGS_request_timeout_ms;
  auto keys = CurveKeysFromFlags(net::NodeIdentity("worker", FLAGS_worker_rank));
  if (!keys.ok()) return Fail("worker", keys.status());
  options.keys = *std::move(keys);
  options.heartbeat_interval_ms = FLAGS_heartbeat_interval_ms;
  options.scheduler_timeout_ms = FLAGS_scheduler_timeout_ms;
  if (FLAGS_dry_run) {
    JsonObject report = DryRunReport("worker", *job, *address);
    report.Add("worker_rank", FLAGS_worker_rank);
    return PrintDryRun(report);
  }
  int stopped_by = 0;
  auto scheduler = SchedulerEndpointFromFlags(&stopped_by);
  // Stopped before the job started: stopped, not done (as below).
  if (absl::IsCancelled(scheduler.status())) return 128 + stopped_by;
  if (!scheduler.ok()) return Fail("worker", scheduler.status());
  options.scheduler_endpoint = *scheduler;
  if (!FLAGS_run_dir.empty()) {
    if (absl::Status made = CreateDirectories(FLAGS_run_dir); !made.ok()) {
      return Fail("worker", made);
    }
  }
  net::ZmqContext ctx;
  MetricsRegistry metrics;
  RealClock clock;
  auto worker = worker::ClusterWorker::Create(&ctx, options, config, &metrics);
  if (!worker.ok()) return Fail("worker", worker.status());
  auto exporter = StartMetricsServerFromFlags(
      "worker", FLAGS_worker_rank < 0 ? 0 : FLAGS_worker_rank, address->bind_host, &metrics);
  if (!exporter.ok()) return Fail("worker", exporter.status());
  std::unique_ptr<MetricsWriter> writer;
  if (!FLAGS_run_dir.empty()) {
    MetricsWriterOptions metrics_options;
    metrics_options.path = FLAGS_run_dir + "/metrics.jsonl";
    metrics_options.role = "worker";
    metrics_options.rank = FLAGS_worker_rank < 0 ? 0 : FLAGS_worker_rank;
    metrics_options.interval_ms = FLAGS_metrics_interval_ms;
    auto created = MetricsWriter::Create(metrics_options, &metrics, &clock);
    if (!created.ok()) return Fail("worker", created.status());
    writer = std::move(created).value();
    writer->Start();
  }
  // SIGTERM / SIGINT: finish the step, report the progress, leave the job, exit 128+sig.
  worker::ClusterWorker* raw = worker->get();
  StopSignalWatcher signals([raw](int) { raw->Stop(); });
  auto result = (*worker)->Run();
  if (writer) writer->Stop();
  if (!result.ok()) return Fail("worker", result.status());
  std::printf("worker: %ld steps, %ld examples in %.1f s\n", static_cast<long>(result->steps),
              static_cast<long>(result->examples), result->seconds);
  // Stopped by a signal (preempted, drained), not because its work is done: 128 + the
  // signal, as if it had died of it, so that a launcher that replaces failed processes
  // (a Kubernetes Indexed Job, the local supervisor) starts this rank again.
  if (signals.signal() != 0) return 128 + signals.signal();
  return 0;
}

}  // namespace towerps::cmd
