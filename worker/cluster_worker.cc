#include "worker/cluster_worker.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/bounded_queue.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "glog/logging.h"
#include "models/two_tower.h"
#include "net/membership_client.h"
#include "net/scheduler_watch.h"
#include "ps/client.h"
#include "worker/step_runner.h"

namespace towerps::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Examples between two progress reports to the scheduler (the hand-over point).
constexpr int64_t kReportEverySteps = 20;
// Steps between clock exchanges with the scheduler in an asynchronous job: a pause,
// stop or LR-scale change reaches the worker within this many steps.
constexpr int64_t kAsyncClockEvery = 4;

}  // namespace

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
  return worker;
}

absl::StatusOr<TrainResult> ClusterWorker::Run() {
  const ModelConfig& config = model_.config;
  net::RpcClientOptions rpc = options_.rpc;
  rpc.endpoint = options_.scheduler_endpoint;
  rpc.name = "worker";
  TOWERPS_ASSIGN_OR_RETURN(rpc.curve, options_.keys.ClientCurve(net::kSchedulerIdentity));
  net::ClusterView view;
  {
    TOWERPS_ASSIGN_OR_RETURN(auto registrar, net::MembershipClient::Connect(ctx_, rpc));
    TOWERPS_ASSIGN_OR_RETURN(view, registrar->Register(net::kRoleWorker, options_.rank, ""));
  }
  const int rank = view.rank;
  const std::string name = absl::StrCat("worker/", rank);
  // From here on the watch heartbeats and follows the job's phase; every client
  // below carries its cancellation, so a failed job or a silent scheduler ends any
  // wait at once.
  net::SchedulerWatchOptions watch_options;
  watch_options.rpc = rpc;
  watch_options.role = net::kRoleWorker;
  watch_options.rank = rank;
  watch_options.heartbeat_interval_ms = options_.heartbeat_interval_ms;
  watch_options.scheduler_timeout_ms = options_.scheduler_timeout_ms;
  TOWERPS_ASSIGN_OR_RETURN(auto watch, net::SchedulerWatch::Start(ctx_, watch_options));
  rpc.cancel = watch->cancellation();
  TOWERPS_ASSIGN_OR_RETURN(auto scheduler, net::MembershipClient::Connect(ctx_, rpc));
  auto formed = scheduler->WaitForCluster(net::kRoleWorker, rank, options_.cluster_timeout_ms,
                                          /*poll_ms=*/20, &stop_);
  if (absl::IsCancelled(formed.status()) && stop_.HasBeenNotified()) {
    TOWERPS_RETURN_IF_ERROR(scheduler->Clock(rank, 0, 0, /*finished=*/true).status());
    LOG(INFO) << name << ": stopped before training started";
    return TrainResult();
  }
  TOWERPS_ASSIGN_OR_RETURN(view, std::move(formed));
  if (view.phase == net::kPhaseFailed) {
    return absl::AbortedError(absl::StrCat("the job failed: ", view.reason));
  }
  if (view.phase != net::kPhaseTraining && view.phase != net::kPhasePaused) {
    LOG(INFO) << name << ": the job ended before training started (" << net::PhaseName(view.phase)
              << ")";
    return TrainResult();
  }
  // Stop() or the job stopping: finish the step, report progress, leave.
  auto should_stop = [&] {
    const uint8_t phase = watch->phase();
    return stop_.HasBeenNotified() || phase == net::kPhaseStopping || phase == net::kPhaseDone;
  };
  LOG(INFO) << name << ": cluster of " << view.num_servers << " servers, " << view.num_workers
            << " workers, " << view.num_partitions << " partitions";
  TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map,
                           ps::ShardMap::FromWire(view.shard_owners, view.num_servers));
  ps::PsClientOptions client;
  client.server_endpoints = view.server_endpoints;
  client.rpc = options_.rpc;
  client.rpc.name = name;
  client.rpc.curve = options_.keys.ServerCurve();
  TOWERPS_ASSIGN_OR_RETURN(client.server_public_keys,
                           options_.keys.ServerPublicKeys(view.num_servers));
  client.rpc.cancel = watch->cancellation();
  client.client_id = static_cast<uint64_t>(rank) + 1;
  client.dense_params = models::DenseParamCount(model_.two_tower);
  client.defer_push_replies = view.staleness != 0;
  TOWERPS_ASSIGN_OR_RETURN(auto params, ps::PsClient::Create(ctx_, client, std::move(map)));
  TOWERPS_ASSIGN_OR_RETURN(auto runner,
                           StepRunner::Create(&model_, catalog_.get(), params.get(),
                                              config.seed * 1000003 + rank));
  runner->set_refresh_with_push(view.staleness != 0);
  // Worker 0 initialises the dense parameters; the others wait until they are there.
  const auto init_deadline = Clock::now() + std::chrono::milliseconds(options_.cluster_timeout_ms);
  while (true) {
    absl::Status init = runner->InitDense(/*assign=*/rank == 0);
    if (init.ok()) break;
    if (!absl::IsUnavailable(init) || Clock::now() > init_deadline || watch->ended()) {
      return init;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  FILE* loss_log = nullptr;
  if (options_.log_losses) {
    std::string path = absl::StrCat(options_.run_dir, "/losses-worker-", rank, ".tsv");
    loss_log = std::fopen(path.c_str(), "w");
    if (loss_log == nullptr) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  Gauge* loss_metric = metrics_ ? metrics_->GetGauge("towerps_worker_loss") : nullptr;
  Gauge* step_metric = metrics_ ? metrics_->GetGauge("towerps_worker_global_step") : nullptr;
  Gauge* lr_metric = metrics_ ? metrics_->GetGauge("towerps_worker_lr_scale") : nullptr;
  Histogram* pull_metric = metrics_ ? metrics_->GetHistogram("towerps_worker_pull_latency_us") : nullptr;
  Histogram* push_metric = metrics_ ? metrics_->GetHistogram("towerps_worker_push_latency_us") : nullptr;
  Histogram* wait_metric = metrics_ ? metrics_->GetHistogram("towerps_worker_staleness_wait_us") : nullptr;

  // Pipelining: with any staleness allowed, a prefetch thread pulls the next batch's
  // rows (through its own PsClient) while this thread computes the current one. In
  // synchronous mode every pull waits for the clock, so it sees all earlier updates.
  const bool prefetch = options_.prefetch && view.staleness != 0;
  std::unique_ptr<ps::PsClient> prefetch_params;
  if (prefetch) {
    TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap prefetch_map,
                             ps::ShardMap::FromWire(view.shard_owners, view.num_servers));
    ps::PsClientOptions prefetch_client = client;
    prefetch_client.rpc.name = name + "/prefetch";
    prefetch_client.client_id = client.client_id + (uint64_t{1} << 32);
    TOWERPS_ASSIGN_OR_RETURN(prefetch_params, ps::PsClient::Create(ctx_, prefetch_client,
                                                                   std::move(prefetch_map)));
  }
  BoundedQueue<std::pair<PreparedBatch*, int64_t>> prepare_requests(1);
  BoundedQueue<absl::Status> prepared(1);
  std::thread prefetcher;
  if (prefetch) {
    prefetcher = std::thread([&] {
      pthread_setname_np(pthread_self(), "worker-prefetch");
      while (auto request = prepare_requests.Pop()) {
        prepared.Push(runner->Prepare(request->first, prefetch_params.get(), request->second));
      }
    });
  }
  struct StopPrefetcher {
    BoundedQueue<std::pair<PreparedBatch*, int64_t>>* requests;
    std::thread* thread;
    ~StopPrefetcher() {
      requests->Close();
      if (thread->joinable()) thread->join();
    }
  } stop_prefetcher{&prepare_requests, &prefetcher};

  // An asynchronous job never waits on the clock: the worker exchanges it (reports
  // progress, learns the global step, LR scale and phase) every kAsyncClockEvery
  // steps instead of every step, one round trip to the scheduler saved in most steps.
  const bool asynchronous = view.staleness < 0;
  int64_t clock_finished = -kAsyncClockEvery;  // `finished` at the last exchange
  TrainResult result;
  const auto start = Clock::now();
  int64_t finished = 0;
  int64_t last_step = 0;
  float last_lr = 1.0f;
  bool stopped = false;
  struct Slot {
    explicit Slot(const BoundModel* model) : batch(model->schema), prepared(model) {
      prepared.batch = &batch;
    }
    data::ExampleBatch batch;
    PreparedBatch prepared;
  };
  Slot slots[2] = {Slot(&model_), Slot(&model_)};
  data::Example example;
  int partition = -1;  // the one being read, -1 between partitions
  int64_t consumed = 0;
  TOWERPS_ASSIGN_OR_RETURN(net::PartitionGrant next, scheduler->Partition(rank, -1, 0, false));
  bool waiting_logged = false;
  while (!stopped) {
    if (next.partition < 0) {
      if (!next.wait) break;  // no data is left anywhere
      // Other workers hold unfinished partitions: stay in the job to take over any
      // that a dead worker releases.
      if (!waiting_logged) {
        LOG(INFO) << name << ": no partition free; waiting for one to be released";
        waiting_logged = true;
      }
      (void)stop_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.partition_poll_ms));
      if (should_stop()) {
        stopped = true;
        break;
      }
      TOWERPS_ASSIGN_OR_RETURN(next, scheduler->Partition(rank, -1, 0, false));
      continue;
    }
    waiting_logged = false;
    partition = next.partition;
    consumed = next.offset;
    data::ExampleReaderOptions reader_options;
    reader_options.dataset_dir = options_.dataset_dir;
    reader_options.split = "train";
    reader_options.partition_index = partition;
    reader_options.num_partitions = view.num_partitions;
    reader_options.partition_by = data::ExampleReaderOptions::PartitionBy::kRecords;
    reader_options.shuffle = options_.shuffle;
    reader_options.seed = config.seed;
    reader_options.epochs = config.epochs;
    TOWERPS_ASSIGN_OR_RETURN(auto reader, data::ExampleReader::Open(reader_options));
    for (int64_t skip = 0; skip < consumed; ++skip) {  // resume a handed-over partition
      TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
      if (!more) break;
    }
    LOG(INFO) << name << ": partition " << partition << " from example " << consumed;
    // Fills a batch from the partition; false when fewer than 2 examples were left.
    auto fill = [&](data::ExampleBatch* batch) -> absl::StatusOr<bool> {
      batch->Clear();
      while (batch->size() < static_cast<size_t>(config.batch_size)) {
        TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
        if (!more) break;
        batch->Add(example);
      }
      return batch->size() >= 2;
    };
    int cur = 0;
    TOWERPS_ASSIGN_OR_RETURN(bool have, fill(&slots[cur].batch));
    if (have && prefetch) prepare_requests.Push({&slots[cur].prepared, last_step});
    while (have && !stopped) {
      if (should_stop()) {
        stopped = true;
        break;
      }
      bool have_next = false;
      if (prefetch) {
        std::optional<absl::Status> ready = prepared.Pop();
        if (!ready) return absl::CancelledError("prefetch stopped");
        TOWERPS_RETURN_IF_ERROR(*ready);
        TOWERPS_ASSIGN_OR_RETURN(have_next, fill(&slots[1 - cur].batch));
        if (have_next) prepare_requests.Push({&slots[1 - cur].prepared, last_step});
      }
      if (asynchronous && finished - clock_finished < kAsyncClockEvery) {
        // Between clock exchanges of an asynchronous job: the other workers are
        // assumed to keep pace, so the global step advances by one per worker.
        last_step += view.num_workers;
      } else {
        // Bounded staleness: wait until the scheduler lets this step start.
        auto wait_start = Clock::now();
        net::ClockView clock;
        while (true) {
          TOWERPS_ASSIGN_OR_RETURN(clock, scheduler->Clock(rank, finished, finished, false));
          if (clock.may_start) break;
          if (clock.phase == net::kPhaseFailed) {
            return absl::AbortedError(absl::StrCat("the job failed: ", clock.reason));
          }
          if (clock.phase == net::kPhaseDone || clock.phase == net::kPhaseStopping ||
              should_stop()) {
            stopped = true;
            break;
          }
          // Held back by staleness, the step starts as soon as the slowest worker
          // reports: ask again soon. A paused job waits for an operator: ask at a
          // human pace (every ask is a request, and under CURVE an encrypted one).
          std::this_thread::sleep_for(clock.phase == net::kPhasePaused
                                          ? std::chrono::microseconds(50'000)
                                          : std::chrono::microseconds(500));
        }
        if (stopped) break;
        if (wait_metric) {
          wait_metric->Record(
              std::chrono::duration<double, std::micro>(Clock::now() - wait_start).count());
        }
        clock_finished = finished;
        last_step = clock.global_step;
        last_lr = clock.lr_scale;
      }
      PreparedBatch* batch = &slots[cur].prepared;
      if (!prefetch) TOWERPS_RETURN_IF_ERROR(runner->Prepare(batch, params.get(), last_step));
      TOWERPS_ASSIGN_OR_RETURN(StepStats stats, runner->Run(batch, last_step, last_lr));
      ++finished;
      consumed += stats.examples;
      result.examples += stats.examples;
      if (loss_log) std::fprintf(loss_log, "%ld\t%.9g\n", static_cast<long>(last_step), stats.loss);
      if (loss_metric) loss_metric->Set(stats.loss);
      if (step_metric) step_metric->Set(static_cast<double>(last_step));
      if (lr_metric) lr_metric->Set(last_lr);
      if (pull_metric) pull_metric->Record(stats.pull_us);
      if (push_metric) push_metric->Record(stats.push_us);
      if (finished % kReportEverySteps == 0) {
        TOWERPS_RETURN_IF_ERROR(scheduler->Partition(rank, partition, consumed, false).status());
      }
      VLOG(1) << name << ": step " << last_step << " loss " << stats.loss;
      if (!prefetch) {
        TOWERPS_ASSIGN_OR_RETURN(have_next, fill(&slots[1 - cur].batch));
      }
      have = have_next;
      cur = 1 - cur;
    }
    if (stopped) break;
    TOWERPS_ASSIGN_OR_RETURN(next, scheduler->Partition(rank, partition, consumed, true));
    partition = -1;
  }
  if (loss_log) std::fclose(loss_log);
  if (stopped && partition >= 0) {
    // The exact progress, so the final checkpoint (or the next taker) resumes here.
    TOWERPS_RETURN_IF_ERROR(scheduler->Partition(rank, partition, consumed, false).status());
    LOG(INFO) << name << ": stopping; partition " << partition << " reported at example "
              << consumed;
  }
  TOWERPS_RETURN_IF_ERROR(runner->FlushDense(last_step, last_lr));
  TOWERPS_RETURN_IF_ERROR(scheduler->Clock(rank, finished, finished, /*finished=*/true).status());
  result.steps = finished;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  LOG(INFO) << name << ": " << finished << " steps, " << result.examples << " examples in "
            << result.seconds << " s";
  return result;
}

}  // namespace towerps::worker
