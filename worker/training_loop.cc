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

namespace {

// One run of the loop: the state shared by its parts.
class Loop {
 public:
  Loop(const TrainingLoopOptions& options, const BoundModel& model, StepRunner* runner,
       StepPacer* pacer)
      : options_(options),
        runner_(runner),
        pacer_(pacer),
        slots_{Slot(&model), Slot(&model)} {
    if (options.prefetch_params != nullptr) prefetcher_.emplace(runner, options.prefetch_params);
    progress_.finished = options.first_finished;
  }

  absl::StatusOr<LoopResult> Run() {
    bool done = false;  // the held partition was read to its end
    while (true) {
      while (!result_.stopped) {
        TOWERPS_ASSIGN_OR_RETURN(PartitionStart start, pacer_->NextPartition(progress_, done));
        if (done) {  // reported
          progress_.partition = -1;
          progress_.offset = 0;
          done = false;
        }
        if (start.kind == StepGrant::Kind::kStop) {
          result_.stopped = true;
        } else if (start.kind == StepGrant::Kind::kReconnect) {
          TOWERPS_RETURN_IF_ERROR(pacer_->Reconnect(runner_));
        } else if (start.kind == StepGrant::Kind::kRestart) {
          runner_->DropDenseGradients();
          progress_.finished = start.finished;
        } else if (start.partition < 0) {
          break;  // no data is left
        } else {
          TOWERPS_ASSIGN_OR_RETURN(done, ReadPartition(start));
        }
      }
      // The dense gradients since the last dense push. An outage is waited out; after
      // a rollback the loop goes on (NextPartition restarts it), else the flush is
      // retried.
      absl::Status flushed = runner_->FlushDense(result_.last_step, result_.last_lr);
      if (flushed.ok()) break;
      TOWERPS_RETURN_IF_ERROR(Recover(flushed));
    }
    TOWERPS_RETURN_IF_ERROR(pacer_->Leave(progress_, result_.stopped));
    return result_;
  }

 private:
  // Trains on the partition from start.offset; true when read to its end (false:
  // stopped or rolled back).
  absl::StatusOr<bool> ReadPartition(const PartitionStart& start) {
    progress_.partition = start.partition;
    progress_.offset = start.offset;
    data::ExampleReaderOptions reader_options;
    reader_options.dataset_dir = options_.dataset_dir;
    reader_options.split = "train";
    reader_options.partition_index = start.partition;
    reader_options.num_partitions = options_.num_partitions;
    reader_options.partition_by = data::ExampleReaderOptions::PartitionBy::kRecords;
    reader_options.shuffle = options_.shuffle;
    reader_options.seed = options_.seed;
    reader_options.epochs = options_.epochs;
    TOWERPS_ASSIGN_OR_RETURN(reader_, data::ExampleReader::Open(reader_options));
    for (int64_t skip = 0; skip < start.offset; ++skip) {  // resume a handed-over partition
      TOWERPS_ASSIGN_OR_RETURN(bool more, reader_->Next(&example_));
      if (!more) break;
    }
    for (Slot& s : slots_) s.filled = false;
    int cur = 0;
    TOWERPS_RETURN_IF_ERROR(Fill(&slots_[cur]));
    bool read_to_end = true;
    while (slots_[cur].filled) {
      Slot& slot = slots_[cur];
      Slot& next = slots_[1 - cur];
      if (prefetcher_) {
        // The current batch's rows arrive; the next batch's are requested.
        if (slot.prep == Slot::Prep::kInFlight) {
          absl::Status prepared = prefetcher_->Wait();
          if (!prepared.ok()) {
            TOWERPS_RETURN_IF_ERROR(Recover(prepared));
            continue;
          }
          slot.prep = Slot::Prep::kReady;
        }
        if (!next.filled) TOWERPS_RETURN_IF_ERROR(Fill(&next));
        if (next.filled && next.prep == Slot::Prep::kNone) {
          next.prep = Slot::Prep::kInFlight;
          prefetcher_->Submit(&next.prepared, result_.last_step);
        }
      }
      TOWERPS_ASSIGN_OR_RETURN(StepGrant grant, pacer_->MayStart(progress_));
      if (grant.kind == StepGrant::Kind::kStop) {
        result_.stopped = true;
        read_to_end = false;
        break;
      }
      if (grant.kind == StepGrant::Kind::kReconnect) {
        Drain();
        TOWERPS_RETURN_IF_ERROR(pacer_->Reconnect(runner_));
        continue;
      }
      if (grant.kind == StepGrant::Kind::kRestart) {
        Drain();
        runner_->DropDenseGradients();
        LOG(WARNING) << options_.name << ": the job rolled back; partition "
                     << progress_.partition << " dropped at example " << progress_.offset
                     << ", clock " << progress_.finished << " -> " << grant.finished;
        progress_ = LoopProgress();
        progress_.finished = grant.finished;
        read_to_end = false;
        break;
      }
      absl::Status stepped = Step(grant, &slot);
      if (!stepped.ok()) {
        TOWERPS_RETURN_IF_ERROR(Recover(stepped));
        continue;  // the same batch again
      }
      if (!next.filled) TOWERPS_RETURN_IF_ERROR(Fill(&next));
      cur = 1 - cur;
    }
    Drain();
    reader_.reset();
    return read_to_end;
  }

  // Prepares (unless prefetched) and runs the slot's batch; on success records it.
  absl::Status Step(const StepGrant& grant, Slot* slot) {
    result_.last_step = grant.step;
    result_.last_lr = grant.lr_scale;
    if (slot->prep != Slot::Prep::kReady) {
      TOWERPS_RETURN_IF_ERROR(runner_->Prepare(&slot->prepared, runner_->params(), grant.step));
      slot->prep = Slot::Prep::kReady;
    }
    TOWERPS_ASSIGN_OR_RETURN(StepStats stats,
                             runner_->Run(&slot->prepared, grant.step, grant.lr_scale));
    slot->filled = false;
    slot->prep = Slot::Prep::kNone;
    ++progress_.finished;
    ++result_.steps;
    progress_.offset += stats.examples;
    result_.examples += stats.examples;
    const LoopMetrics& m = options_.metrics;
    if (options_.loss_log) options_.loss_log->Write(grant.step, stats.loss);
    if (m.loss) m.loss->Set(stats.loss);
    if (m.step) m.step->Set(static_cast<double>(grant.step));
    if (m.lr_scale) m.lr_scale->Set(grant.lr_scale);
    if (m.pull_us) m.pull_us->Record(stats.pull_us);
    if (m.push_us) m.push_us->Record(stats.push_us);
    if (m.examples) m.examples->Increment(stats.examples);
    if (options_.on_step) options_.on_step(grant.step, stats);
    VLOG(1) << options_.name << ": step " << grant.step << " loss " << stats.loss;
    return pacer_->StepDone(progress_, stats);
  }

  // Fills a slot from the partition; filled stays false with fewer than 2 left.
  absl::Status Fill(Slot* slot) {
    slot->batch.Clear();
    slot->prep = Slot::Prep::kNone;
    while (slot->batch.size() < static_cast<size_t>(options_.batch_size)) {
      TOWERPS_ASSIGN_OR_RETURN(bool more, reader_->Next(&example_));
      if (!more) break;
      slot->batch.Add(example_);
    }
    slot->filled = slot->batch.size() >= 2;
    return absl::OkStatus();
  }

  // Waits out any prefetch and forgets every prepared batch (rows from servers that
  // are being replaced, or from before a rollback).
  void Drain() {
    if (prefetcher_ && prefetcher_->busy()) (void)prefetcher_->Wait();
    for (Slot& s : slots_) s.prep = Slot::Prep::kNone;
  }

  // A parameter-server outage: wait for the replacement, reconnect (then the caller
  // retries what failed). Other errors are returned.
  absl::Status Recover(const absl::Status& status) {
    if (!IsParamsOutage(status)) return status;
    LOG(WARNING) << options_.name << ": " << status << "; waiting for the cluster to recover";
    Drain();
    TOWERPS_RETURN_IF_ERROR(pacer_->AwaitRecovery(status));
    return pacer_->Reconnect(runner_);
  }

  const TrainingLoopOptions& options_;
  StepRunner* const runner_;
  StepPacer* const pacer_;
  Slot slots_[2];
  std::optional<Prefetcher> prefetcher_;  // after slots_: joined before they go
  std::unique_ptr<data::ExampleReader> reader_;
  data::Example example_;
  LoopProgress progress_;
  LoopResult result_;
};

}  // namespace

absl::StatusOr<LoopResult> RunTrainingLoop(const TrainingLoopOptions& options,
                                           const BoundModel& model, StepRunner* runner,
                                           StepPacer* pacer) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  return Loop(options, model, runner, pacer).Run();
}

}  // namespace towerps::worker
