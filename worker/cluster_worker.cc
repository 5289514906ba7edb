#include "worker/cluster_worker.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glog/logging.h"
#include "models/two_tower.h"
#include "net/membership_client.h"
#include "net/scheduler_watch.h"
#include "worker/cluster_pacer.h"
#include "worker/step_runner.h"
#include "worker/training_loop.h"

namespace towerps::worker {

absl::Status ClusterWorkerOptions::Validate() const {
  if (scheduler_endpoint.empty()) return absl::InvalidArgumentError("scheduler endpoint is empty");
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is empty");
  if (log_losses && run_dir.empty()) return absl::InvalidArgumentError("log_losses needs run_dir");
  if (cluster_timeout_ms <= 0 || partition_poll_ms <= 0) {
    return absl::InvalidArgumentError("cluster_timeout_ms and partition_poll_ms must be > 0");
  }
  if (heartbeat_interval_ms <= 0 || scheduler_timeout_ms <= heartbeat_interval_ms) {
    return absl::InvalidArgumentError(
        "heartbeat_interval_ms must be > 0 and < scheduler_timeout_ms");
  }
  if (keys.enabled() && keys.identity != net::NodeIdentity("worker", rank)) {
    return absl::InvalidArgumentError(absl::StrCat("CURVE keys of ", keys.identity,
                                                   " given to worker rank ", rank,
                                                   " (with keys a worker needs an explicit rank)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ClusterWorker>> ClusterWorker::Create(
    const net::ZmqContext* ctx, const ClusterWorkerOptions& options, const ModelConfig& config,
    MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<ClusterWorker> worker(new ClusterWorker(ctx, options, metrics));
  TOWERPS_ASSIGN_OR_RETURN(data::DatasetMeta meta, data::LoadDatasetMeta(options.dataset_dir));
  TOWERPS_ASSIGN_OR_RETURN(worker->model_, BindModel(config, meta.schema));
  TOWERPS_ASSIGN_OR_RETURN(worker->catalog_, ItemCatalog::Load(options.dataset_dir));
  if (config.mining.enabled()) {  // the miner's guard: every user's training positives
    TOWERPS_ASSIGN_OR_RETURN(worker->positives_,
                             UserPositives::Load(options.dataset_dir, *worker->catalog_));
  }
  return worker;
}

absl::StatusOr<TrainResult> ClusterWorker::Run() {
  const ModelConfig& config = model_.config;
  net::RpcClientOptions rpc = options_.rpc;
  rpc.endpoint = options_.scheduler_endpoint;
  rpc.name = "worker";
  // The scheduler answers from memory: an attempt that outlasts two heartbeats went
  // to a scheduler that died, and its resend reaches the restarted one.
  rpc.timeout_ms = std::min(rpc.timeout_ms, 2 * options_.heartbeat_interval_ms);
  TOWERPS_ASSIGN_OR_RETURN(rpc.curve, options_.keys.ClientCurve(net::kSchedulerIdentity));
  net::ClusterView view;
  {
    TOWERPS_ASSIGN_OR_RETURN(auto registrar, net::MembershipClient::Connect(ctx_, rpc));
    TOWERPS_ASSIGN_OR_RETURN(view, registrar->Register(net::kRoleWorker, options_.rank, ""));
  }
  const int rank = view.rank;
  // A replaced worker continues its predecessor's clock.
  const int64_t first_finished = view.finished_steps;
  const std::string name = absl::StrCat("worker/", rank);
  // From here on the watch heartbeats and follows the job's phase; every client
  // below carries its cancellation, so a failed job or a silent scheduler ends any
  // wait at once. A restarted scheduler that does not know this worker is told what
  // the loop last published.
  RejoinState rejoin;
  {
    net::Rejoin registered;
    registered.job_id = view.job_id;
    registered.finished_steps = first_finished;
    rejoin.Publish(std::move(registered));
  }
  net::SchedulerWatchOptions watch_options;
  watch_options.rpc = rpc;
  watch_options.role = net::kRoleWorker;
  watch_options.rank = rank;
  watch_options.heartbeat_interval_ms = options_.heartbeat_interval_ms;
  watch_options.scheduler_timeout_ms = options_.scheduler_timeout_ms;
  watch_options.rejoin = [&rejoin, rank, name](net::MembershipClient* client) {
    net::Rejoin state = rejoin.Get();
    LOG(WARNING) << name << ": rejoining a restarted scheduler at clock " << state.finished_steps
                 << " with " << state.partitions.size() << " partitions";
    return client->Register(net::kRoleWorker, rank, "", state).status();
  };
  TOWERPS_ASSIGN_OR_RETURN(auto watch, net::SchedulerWatch::Start(ctx_, watch_options));
  rpc.cancel = watch->cancellation();
  TOWERPS_ASSIGN_OR_RETURN(auto scheduler, net::MembershipClient::Connect(ctx_, rpc));
  auto formed = scheduler->WaitForCluster(net::kRoleWorker, rank, options_.cluster_timeout_ms,
                                          /*poll_ms=*/20, &stop_);
  if (absl::IsCancelled(formed.status()) && stop_.HasBeenNotified()) {
    TOWERPS_RETURN_IF_ERROR(scheduler->Clock(rank, first_finished, first_finished, true).status());
    LOG(INFO) << name << ": stopped before training started";
    return TrainResult();
  }
  TOWERPS_ASSIGN_OR_RETURN(view, std::move(formed));
  if (view.phase == net::kPhaseFailed) {
    return absl::AbortedError(absl::StrCat("the job failed: ", view.reason));
  }
  if (view.phase != net::kPhaseTraining && view.phase != net::kPhasePaused &&
      view.phase != net::kPhaseRecovering) {
    LOG(INFO) << name << ": the job ended before training started (" << net::PhaseName(view.phase)
              << ")";
    return TrainResult();
  }
  LOG(INFO) << name << ": cluster of " << view.num_servers << " servers, " << view.num_workers
            << " workers, " << view.num_partitions << " partitions"
            << (first_finished > 0 ? absl::StrCat("; continuing at clock ", first_finished) : "");

  ClusterPacerOptions pacing;
  pacing.rank = rank;
  pacing.name = name;
  pacing.client.rpc = options_.rpc;
  pacing.client.rpc.name = name;
  pacing.client.rpc.curve = options_.keys.ServerCurve();
  pacing.client.client_id = static_cast<uint64_t>(rank) + 1;
  pacing.client.dense_params = models::DenseParamCount(model_.two_tower);
  pacing.keys = options_.keys;
  // Pipelining: with any staleness allowed, a prefetch thread pulls the next batch's
  // rows (through its own PsClient) while this thread computes the current one. In
  // synchronous mode every pull waits for the clock, so it sees all earlier updates.
  pacing.prefetch = options_.prefetch && view.staleness != 0;
  pacing.partition_poll_ms = options_.partition_poll_ms;
  pacing.init_timeout_ms = options_.cluster_timeout_ms;
  pacing.staleness_wait_us =
      metrics_ ? metrics_->GetHistogram("towerps_worker_staleness_wait_us") : nullptr;
  TOWERPS_ASSIGN_OR_RETURN(auto pacer,
                           ClusterPacer::Create(ctx_, pacing, view, first_finished,
                                                std::move(scheduler), watch.get(), &stop_,
                                                &rejoin));
  TOWERPS_ASSIGN_OR_RETURN(auto runner,
                           StepRunner::Create(&model_, catalog_.get(), pacer->params(),
                                              StepRunner::NegativeSeed(config.seed, rank)));
  runner->set_refresh_with_push(view.staleness != 0);
  if (positives_) TOWERPS_RETURN_IF_ERROR(runner->EnableMining(positives_.get()));
  TOWERPS_RETURN_IF_ERROR(pacer->InitDense(runner.get()));

  std::unique_ptr<LossLog> loss_log;
  if (options_.log_losses) {
    // Appended to: a replaced worker continues its predecessor's log.
    TOWERPS_ASSIGN_OR_RETURN(
        loss_log, LossLog::Open(absl::StrCat(options_.run_dir, "/losses-worker-", rank, ".tsv"),
                                /*append=*/true));
  }
  TrainingLoopOptions loop;
  loop.dataset_dir = options_.dataset_dir;
  loop.num_partitions = view.num_partitions;
  loop.shuffle = options_.shuffle;
  loop.seed = config.seed;
  loop.epochs = config.epochs;
  loop.batch_size = config.batch_size;
  loop.first_finished = first_finished;
  loop.name = name;
  loop.prefetch_params = pacer->prefetch_params();
  loop.loss_log = loss_log.get();
  if (metrics_) {
    loop.metrics.loss = metrics_->GetGauge("towerps_worker_loss");
    loop.metrics.step = metrics_->GetGauge("towerps_worker_global_step");
    loop.metrics.lr_scale = metrics_->GetGauge("towerps_worker_lr_scale");
    loop.metrics.pull_us = metrics_->GetHistogram("towerps_worker_pull_latency_us");
    loop.metrics.push_us = metrics_->GetHistogram("towerps_worker_push_latency_us");
    loop.metrics.examples = metrics_->GetCounter("towerps_worker_examples_total");
  }
  const auto start = std::chrono::steady_clock::now();
  TOWERPS_ASSIGN_OR_RETURN(LoopResult ran,
                           RunTrainingLoop(loop, model_, runner.get(), pacer.get()));
  TrainResult result;
  result.steps = ran.steps;
  result.examples = ran.examples;
  result.stopped = ran.stopped;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LOG(INFO) << name << ": " << result.steps << " steps, " << result.examples << " examples in "
            << result.seconds << " s";
  return result;
}

}  // namespace towerps::worker
