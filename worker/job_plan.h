// What a job derives from its model config and dataset, read alike by every process
// of it (embedded trainer, parameter servers, scheduler, export and index tools):
// the servers' options, the planned number of global steps and the learning-rate
// multiplier schedule. Pure functions.
#ifndef TOWERPS_WORKER_JOB_PLAN_H_
#define TOWERPS_WORKER_JOB_PLAN_H_

#include <cstdint>

#include "models/lr_schedule.h"
#include "ps/server.h"
#include "worker/model_config.h"

namespace towerps::worker {

// The parameter servers' options for a model: its tables, its dense parameter count
// (models::DenseParamCount) and dense optimizer, named "ps/<rank>".
ps::ParameterServerOptions ServerOptionsFor(const BoundModel& model, int rank, int num_servers);

// Planned global steps: epochs * ceil(train_examples / batch_size), at least 1.
int64_t PlannedSteps(const ModelConfig& config, int64_t train_examples);

// The LR multiplier schedule (base 1): warmup, then cosine to min_lr_ratio.
models::LrScheduleOptions LrScaleOptions(const ModelConfig& config, int64_t total_steps);

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_JOB_PLAN_H_
