#include "cmd/job_flags.h"

#include <thread>

DEFINE_string(config, "", "model config file (examples/*.conf; format: docs/model_config.md)");
DEFINE_string(dataset, "", "prepared dataset directory (towerps prepare --output)");
DEFINE_string(run_dir, "", "run directory: checkpoints, metrics.jsonl, logs");
DEFINE_int32(threads, 0, "worker threads; 0 = all cores");

namespace towerps::cmd {

int ThreadsOrAllCores() {
  if (FLAGS_threads > 0) return FLAGS_threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace towerps::cmd
