#include "worker/job_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/two_tower.h"

namespace towerps::worker {

ps::ParameterServerOptions ServerOptionsFor(const BoundModel& model, int rank, int num_servers) {
  ps::ParameterServerOptions options;
  options.rank = rank;
  options.num_servers = num_servers;
  for (const TableSpec& t : model.config.tables) options.tables.push_back(t.config);
  options.dense_params = models::DenseParamCount(model.two_tower);
  options.dense_optimizer = model.config.dense_optimizer;
  options.name = absl::StrCat("ps/", rank);
  return options;
}

int64_t PlannedSteps(const ModelConfig& config, int64_t train_examples) {
  const int64_t per_epoch = (train_examples + config.batch_size - 1) / config.batch_size;
  return std::max<int64_t>(1, per_epoch * config.epochs);
}

models::LrScheduleOptions LrScaleOptions(const ModelConfig& config, int64_t total_steps) {
  models::LrScheduleOptions o;
  o.base_lr = 1.0;
  o.warmup_steps = std::min(config.warmup_steps, total_steps / 2);
  o.decay_steps = std::max<int64_t>(1, total_steps - o.warmup_steps);
  o.min_lr = config.min_lr_ratio;
  return o;
}

}  // namespace towerps::worker
