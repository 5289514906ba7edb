#include "worker/embedded_trainer.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"
#include "models/lr_schedule.h"
#include "ps/checkpoint.h"
#include "ps/local_params.h"
#include "worker/job_plan.h"
#include "worker/step_runner.h"
#include "worker/training_loop.h"

namespace towerps::worker {
namespace {

// Embedded pacing: training thread t reads record partition t of `threads`; the
// global step is a counter shared by the threads, the LR scale the schedule's at it.
class EmbeddedPacer final : public StepPacer {
 public:
  EmbeddedPacer(int thread, int64_t total_steps, const models::LrSchedule* lr,
                std::atomic<int64_t>* next_step, const std::atomic<bool>* failed,
                const std::atomic<bool>* stop)
      : thread_(thread),
        total_steps_(total_steps),
        lr_(lr),
        next_step_(next_step),
        failed_(failed),
        stop_(stop) {}

  absl::StatusOr<PartitionStart> NextPartition(const LoopProgress&, bool) override {
    PartitionStart start;
    if (stop_->load()) start.kind = StepGrant::Kind::kStop;
    if (!started_) start.partition = thread_;
    started_ = true;
    return start;
  }
  absl::StatusOr<StepGrant> MayStart(const LoopProgress&) override {
    StepGrant grant;
    if (failed_->load() || stop_->load()) return grant;  // kStop
    const int64_t step = next_step_->fetch_add(1);
    if (step >= total_steps_) return grant;
    grant.kind = StepGrant::Kind::kRun;
    grant.step = step;
    grant.lr_scale = static_cast<float>(lr_->LrAt(step));
    return grant;
  }
  absl::Status StepDone(const LoopProgress&, const StepStats&) override { return absl::OkStatus(); }
  absl::Status Leave(const LoopProgress&, bool) override { return absl::OkStatus(); }

 private:
  const int thread_;
  const int64_t total_steps_;
  const models::LrSchedule* const lr_;
  std::atomic<int64_t>* const next_step_;
  const std::atomic<bool>* const failed_;
  const std::atomic<bool>* const stop_;
  bool started_ = false;
};

}  // namespace

absl::Status EmbeddedTrainerOptions::Validate() const {
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is empty");
  if (run_dir.empty()) return absl::InvalidArgumentError("run_dir is empty");
  if (threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  if (max_steps < 0) return absl::InvalidArgumentError("max_steps must be >= 0");
  if (progress_interval_ms <= 0) return absl::InvalidArgumentError("progress interval must be > 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddedTrainer>> EmbeddedTrainer::Create(
    const EmbeddedTrainerOptions& options, const ModelConfig& config, MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<EmbeddedTrainer> trainer(new EmbeddedTrainer(options, metrics));
  TOWERPS_ASSIGN_OR_RETURN(data::DatasetMeta meta, data::LoadDatasetMeta(options.dataset_dir));
  TOWERPS_ASSIGN_OR_RETURN(trainer->model_, BindModel(config, meta.schema));
  trainer->train_examples_ = static_cast<int64_t>(meta.num_examples("train"));
  if (trainer->train_examples_ < 2) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.dataset_dir, " has ", trainer->train_examples_, " training examples"));
  }
  TOWERPS_ASSIGN_OR_RETURN(trainer->catalog_, ItemCatalog::Load(options.dataset_dir));
  if (config.mining.enabled()) {  // the miner's guard: every user's training positives
    TOWERPS_ASSIGN_OR_RETURN(trainer->positives_,
                             UserPositives::Load(options.dataset_dir, *trainer->catalog_));
  }
  ps::ParameterServerOptions server = ServerOptionsFor(trainer->model_, 0, 1);
  server.job_id = ps::NewJobId();  // every run is a fresh job: its checkpoint is bound to it
  TOWERPS_ASSIGN_OR_RETURN(trainer->server_, ps::ParameterServer::Create(server, metrics));
  return trainer;
}

absl::StatusOr<TrainResult> EmbeddedTrainer::Run() {
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(options_.run_dir));
  const ModelConfig& config = model_.config;
  int64_t total_steps = PlannedSteps(config, train_examples_);
  if (options_.max_steps > 0) total_steps = std::min(total_steps, options_.max_steps);
  TOWERPS_ASSIGN_OR_RETURN(models::LrSchedule lr,
                           models::LrSchedule::Create(LrScaleOptions(config, total_steps)));
  ps::LocalParams params(server_.get());

  const int threads = options_.threads;
  std::vector<std::unique_ptr<StepRunner>> runners;
  for (int t = 0; t < threads; ++t) {
    TOWERPS_ASSIGN_OR_RETURN(auto runner,
                             StepRunner::Create(&model_, catalog_.get(), &params,
                                                StepRunner::NegativeSeed(config.seed, t)));
    TOWERPS_RETURN_IF_ERROR(runner->InitDense(/*assign=*/t == 0));
    if (positives_) TOWERPS_RETURN_IF_ERROR(runner->EnableMining(positives_.get()));
    runners.push_back(std::move(runner));
  }
  std::unique_ptr<LossLog> loss_log;
  if (options_.log_losses) {
    TOWERPS_ASSIGN_OR_RETURN(loss_log,
                             LossLog::Open(options_.run_dir + "/losses.tsv", /*append=*/false));
  }
  Gauge* loss_metric = metrics_ ? metrics_->GetGauge("towerps_train_loss") : nullptr;
  Gauge* step_metric = metrics_ ? metrics_->GetGauge("towerps_train_step") : nullptr;
  Gauge* lr_metric = metrics_ ? metrics_->GetGauge("towerps_train_lr_scale") : nullptr;
  Gauge* eps_metric = metrics_ ? metrics_->GetGauge("towerps_train_examples_per_s") : nullptr;
  Histogram* pull_metric = metrics_ ? metrics_->GetHistogram("towerps_train_pull_latency_us") : nullptr;
  Histogram* push_metric = metrics_ ? metrics_->GetHistogram("towerps_train_push_latency_us") : nullptr;
  Counter* examples_metric =
      metrics_ ? metrics_->GetCounter("towerps_train_examples_total") : nullptr;

  std::atomic<int64_t> next_step{0};
  std::atomic<int64_t> examples{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status first_error;
  double window_loss = 0;
  int64_t window_steps = 0;
  std::vector<double> losses(total_steps, 0.0);
  const auto start = std::chrono::steady_clock::now();

  auto work = [&](int t) {
    pthread_setname_np(pthread_self(), absl::StrCat("train-", t).c_str());
    TrainingLoopOptions loop;
    loop.dataset_dir = options_.dataset_dir;
    loop.num_partitions = threads;
    loop.shuffle = options_.shuffle;
    loop.seed = config.seed;
    loop.epochs = config.epochs;
    loop.batch_size = config.batch_size;
    loop.name = absl::StrCat("train-", t);
    loop.loss_log = loss_log.get();
    loop.metrics.pull_us = pull_metric;
    loop.metrics.push_us = push_metric;
    loop.metrics.examples = examples_metric;
    loop.on_step = [&](int64_t step, const StepStats& stats) {
      examples.fetch_add(stats.examples);
      absl::MutexLock lock(&mu);
      losses[step] = stats.loss;
      window_loss += stats.loss;
      ++window_steps;
    };
    EmbeddedPacer pacer(t, total_steps, &lr, &next_step, &failed, &stop_requested_);
    absl::StatusOr<LoopResult> ran = RunTrainingLoop(loop, model_, runners[t].get(), &pacer);
    if (!ran.ok()) {
      absl::MutexLock lock(&mu);
      if (first_error.ok()) first_error = ran.status();
      failed = true;
    }
  };

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
  std::atomic<bool> running{true};
  std::thread reporter([&] {
    pthread_setname_np(pthread_self(), "train-progress");
    int64_t last_examples = 0;
    auto last_time = start;
    while (running.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::min<int64_t>(options_.progress_interval_ms, 100)));
      auto now = std::chrono::steady_clock::now();
      if (now - last_time < std::chrono::milliseconds(options_.progress_interval_ms) &&
          running.load()) {
        continue;
      }
      TrainProgress p;
      p.step = std::min(next_step.load(), total_steps);
      p.total_steps = total_steps;
      const int64_t ex = examples.load();
      p.examples_per_s = (ex - last_examples) / std::chrono::duration<double>(now - last_time).count();
      p.elapsed_s = std::chrono::duration<double>(now - start).count();
      p.lr_scale = lr.LrAt(p.step);
      {
        absl::MutexLock lock(&mu);
        p.loss = window_steps > 0 ? window_loss / window_steps : 0;
        window_loss = 0;
        window_steps = 0;
      }
      last_examples = ex;
      last_time = now;
      if (loss_metric) loss_metric->Set(p.loss);
      if (step_metric) step_metric->Set(static_cast<double>(p.step));
      if (lr_metric) lr_metric->Set(p.lr_scale);
      if (eps_metric) eps_metric->Set(p.examples_per_s);
      if (options_.on_progress) options_.on_progress(p);
    }
  });
  for (auto& t : pool) t.join();
  running = false;
  reporter.join();
  loss_log.reset();
  {
    absl::MutexLock lock(&mu);
    TOWERPS_RETURN_IF_ERROR(first_error);
  }
  TrainResult result;
  result.steps = std::min(next_step.load(), total_steps);
  result.stopped = stop_requested_.load() && result.steps < total_steps;
  if (result.stopped) LOG(INFO) << "train: stopped at step " << result.steps << " on request";
  result.examples = examples.load();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t tail = std::min(result.steps, std::max<int64_t>(1, result.steps / 10));
  double tail_sum = 0;
  for (int64_t s = result.steps - tail; s < result.steps; ++s) tail_sum += losses[s];
  result.final_loss = tail > 0 ? tail_sum / tail : 0;

  // The checkpoint, in the cluster's format with one server.
  result.checkpoint_dir = ps::CheckpointDir(options_.run_dir + "/checkpoint", result.steps);
  TOWERPS_ASSIGN_OR_RETURN(std::vector<std::string> files,
                           server_->SaveCheckpoint(result.checkpoint_dir, result.steps));
  ps::CheckpointManifest manifest;
  manifest.job_id = server_->options().job_id;
  manifest.step = result.steps;
  manifest.num_servers = 1;
  manifest.num_virtual_shards = 1;
  manifest.dense_params = server_->dense()->size();
  for (const std::string& name : files) {
    TOWERPS_ASSIGN_OR_RETURN(ps::CheckpointFile file,
                             ps::DescribeFile(result.checkpoint_dir, name));
    manifest.files.push_back(file);
  }
  TOWERPS_RETURN_IF_ERROR(ps::WriteManifest(result.checkpoint_dir, manifest));
  LOG(INFO) << "train: " << result.steps << " steps, " << result.examples << " examples in "
            << absl::StrFormat("%.1f", result.seconds) << " s; checkpoint "
            << result.checkpoint_dir;
  return result;
}

}  // namespace towerps::worker
