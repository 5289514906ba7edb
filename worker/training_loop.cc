#include "worker/training_loop.h"

#include <pthread.h>

#include <cerrno>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/bounded_queue.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "glog/logging.h"

namespace towerps::worker {
namespace {

// A failure the pacer may wait out: a parameter server is gone or slow.
bool IsParamsOutage(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

// "worker-prefetch": prepares one batch at a time through its own source.
class Prefetcher {
 public:
  Prefetcher(StepRunner* runner, ps::ParamSource* source) : runner_(runner), source_(source) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "worker-prefetch");
      while (auto request = requests_.Pop()) {
        results_.Push(runner_->Prepare(request->first, source_, request->second));
      }
    });
  }
  ~Prefetcher() {
    requests_.Close();
    results_.Close();
    thread_.join();
  }
  // At most one request in flight.
  void Submit(PreparedBatch* batch, int64_t step) {
    busy_ = true;
    requests_.Push({batch, step});
  }
  bool busy() const { return busy_; }
  // The in-flight request's result.
  absl::Status Wait() {
    busy_ = false;
    std::optional<absl::Status> result = results_.Pop();
    return result ? *result : absl::CancelledError("prefetch stopped");
  }

 private:
  StepRunner* const runner_;
  ps::ParamSource* const source_;
  BoundedQueue<std::pair<PreparedBatch*, int64_t>> requests_{1};
  BoundedQueue<absl::Status> results_{1};
  bool busy_ = false;
  std::thread thread_;
};

// A batch buffer: filled from the partition, then prepared (its rows pulled).
struct Slot {
  explicit Slot(const BoundModel* model) : batch(model->schema), prepared(model) {
    prepared.batch = &batch;
  }
  enum class Prep { kNone, kInFlight, kReady };
  data::ExampleBatch batch;
  PreparedBatch prepared;
  bool filled = false;  // holds >= 2 examples not yet trained on
  Prep prep = Prep::kNone;
};

}  // namespace

absl::Status TrainingLoopOptions::Validate() const {
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is empty");
  if (num_partitions < 1) return absl::InvalidArgumentError("num_partitions must be >= 1");
  if (epochs < 1) return absl::InvalidArgumentError("epochs must be >= 1");
  if (batch_size < 2) return absl::InvalidArgumentError("batch_size must be >= 2");
  if (first_finished < 0) return absl::InvalidArgumentError("first_finished must be >= 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LossLog>> LossLog::Open(const std::string& path, bool append) {
  FILE* file = std::fopen(path.c_str(), append ? "a" : "w");
  if (file == nullptr) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  return std::unique_ptr<LossLog>(new LossLog(file));
}

LossLog::~LossLog() { std::fclose(file_); }

void LossLog::Write(int64_t step, double loss) {
  absl::MutexLock lock(&mu_);
  std::fprintf(file_, "%ld\t%.9g\n", static_cast<long>(step), loss);
}

absl::StatusOr<LoopResult> RunTrainingLoop(const TrainingLoopOptions& options,
                                           const BoundModel& model, StepRunner* runner,
                                           StepPacer* pacer) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::optional<Prefetcher> prefetcher;
  if (options.prefetch_params != nullptr) prefetcher.emplace(runner, options.prefetch_params);
  const LoopMetrics& m = options.metrics;
  LoopResult result;
  LoopProgress progress;
  progress.finished = options.first_finished;
  Slot slots[2] = {Slot(&model), Slot(&model)};
  data::Example example;
  bool done = false;  // the held partition is finished
  // Waits out any prefetch and forgets every prepared batch (rows from servers that
  // are being replaced, or before a rollback).
  auto drain = [&] {
    if (prefetcher && prefetcher->busy()) (void)prefetcher->Wait();
    for (Slot& s : slots) s.prep = Slot::Prep::kNone;
  };
  // A parameter-server failure: wait for the replacement, reconnect, retry the batch.
  auto recover = [&](const absl::Status& status) -> absl::Status {
    if (!IsParamsOutage(status)) return status;
    LOG(WARNING) << options.name << ": " << status << "; waiting for the cluster to recover";
    drain();
    TOWERPS_RETURN_IF_ERROR(pacer->AwaitRecovery(status));
    return pacer->Reconnect(runner);
  };
  while (!result.stopped) {
    TOWERPS_ASSIGN_OR_RETURN(PartitionStart start, pacer->NextPartition(progress, done));
    if (done) {  // reported
      progress.partition = -1;
      progress.offset = 0;
      done = false;
    }
    if (start.kind == StepGrant::Kind::kStop) {
      result.stopped = true;
      break;
    }
    if (start.kind == StepGrant::Kind::kReconnect) {
      TOWERPS_RETURN_IF_ERROR(pacer->Reconnect(runner));
      continue;
    }
    if (start.kind == StepGrant::Kind::kRestart) {
      runner->DropDenseGradients();
      progress.finished = start.finished;
      continue;
    }
    if (start.partition < 0) break;  // no data is left
    progress.partition = start.partition;
    progress.offset = start.offset;
    data::ExampleReaderOptions reader_options;
    reader_options.dataset_dir = options.dataset_dir;
    reader_options.split = "train";
    reader_options.partition_index = start.partition;
    reader_options.num_partitions = options.num_partitions;
    reader_options.partition_by = data::ExampleReaderOptions::PartitionBy::kRecords;
    reader_options.shuffle = options.shuffle;
    reader_options.seed = options.seed;
    reader_options.epochs = options.epochs;
    TOWERPS_ASSIGN_OR_RETURN(auto reader, data::ExampleReader::Open(reader_options));
    for (int64_t skip = 0; skip < start.offset; ++skip) {  // resume a handed-over partition
      TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
      if (!more) break;
    }
    if (start.offset > 0 || options.num_partitions > 1) {
      VLOG(1) << options.name << ": partition " << start.partition << " from example "
              << start.offset;
    }
    // Fills a slot from the partition; filled stays false with fewer than 2 left.
    auto fill = [&](Slot* slot) -> absl::Status {
      slot->batch.Clear();
      slot->prep = Slot::Prep::kNone;
      while (slot->batch.size() < static_cast<size_t>(options.batch_size)) {
        TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
        if (!more) break;
        slot->batch.Add(example);
      }
      slot->filled = slot->batch.size() >= 2;
      return absl::OkStatus();
    };
    for (Slot& s : slots) s.filled = false;
    int cur = 0;
    TOWERPS_RETURN_IF_ERROR(fill(&slots[cur]));
    bool restart = false;
    while (slots[cur].filled) {
      Slot& slot = slots[cur];
      Slot& next = slots[1 - cur];
      if (prefetcher) {
        // The current batch's rows arrive; the next batch's are requested.
        if (slot.prep == Slot::Prep::kInFlight) {
          absl::Status prepared = prefetcher->Wait();
          if (!prepared.ok()) {
            TOWERPS_RETURN_IF_ERROR(recover(prepared));
            continue;
          }
          slot.prep = Slot::Prep::kReady;
        }
        if (!next.filled) TOWERPS_RETURN_IF_ERROR(fill(&next));
        if (next.filled && next.prep == Slot::Prep::kNone) {
          next.prep = Slot::Prep::kInFlight;
          prefetcher->Submit(&next.prepared, result.last_step);
        }
      }
      TOWERPS_ASSIGN_OR_RETURN(StepGrant grant, pacer->MayStart(progress));
      if (grant.kind == StepGrant::Kind::kStop) {
        result.stopped = true;
        break;
      }
      if (grant.kind == StepGrant::Kind::kReconnect) {
        drain();
        TOWERPS_RETURN_IF_ERROR(pacer->Reconnect(runner));
        continue;
      }
      if (grant.kind == StepGrant::Kind::kRestart) {
        drain();
        runner->DropDenseGradients();
        LOG(WARNING) << options.name << ": the job rolled back; partition " << progress.partition
                     << " dropped at example " << progress.offset << ", clock "
                     << progress.finished << " -> " << grant.finished;
        progress = LoopProgress();
        progress.finished = grant.finished;
        restart = true;
        break;
      }
      result.last_step = grant.step;
      result.last_lr = grant.lr_scale;
      if (slot.prep != Slot::Prep::kReady) {
        absl::Status prepared = runner->Prepare(&slot.prepared, runner->params(), grant.step);
        if (!prepared.ok()) {
          TOWERPS_RETURN_IF_ERROR(recover(prepared));
          continue;
        }
        slot.prep = Slot::Prep::kReady;
      }
      absl::StatusOr<StepStats> stats = runner->Run(&slot.prepared, grant.step, grant.lr_scale);
      if (!stats.ok()) {
        TOWERPS_RETURN_IF_ERROR(recover(stats.status()));
        continue;
      }
      slot.filled = false;
      slot.prep = Slot::Prep::kNone;
      ++progress.finished;
      ++result.steps;
      progress.offset += stats->examples;
      result.examples += stats->examples;
      if (options.loss_log) options.loss_log->Write(grant.step, stats->loss);
      if (m.loss) m.loss->Set(stats->loss);
      if (m.step) m.step->Set(static_cast<double>(grant.step));
      if (m.lr_scale) m.lr_scale->Set(grant.lr_scale);
      if (m.pull_us) m.pull_us->Record(stats->pull_us);
      if (m.push_us) m.push_us->Record(stats->push_us);
      if (options.on_step) options.on_step(grant.step, *stats);
      VLOG(1) << options.name << ": step " << grant.step << " loss " << stats->loss;
      TOWERPS_RETURN_IF_ERROR(pacer->StepDone(progress));
      if (!next.filled) TOWERPS_RETURN_IF_ERROR(fill(&next));
      cur = 1 - cur;
    }
    drain();
    if (restart || result.stopped) continue;
    done = true;  // read to its end
  }
  TOWERPS_RETURN_IF_ERROR(runner->FlushDense(result.last_step, result.last_lr));
  TOWERPS_RETURN_IF_ERROR(pacer->Leave(progress, result.stopped));
  return result;
}

}  // namespace towerps::worker
