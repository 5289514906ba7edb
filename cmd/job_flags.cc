#include "cmd/job_flags.h"

#include <cstdio>
#include <string>
#include <thread>

DEFINE_string(config, "", "model config file (examples/*.conf; format: docs/model_config.md)");
DEFINE_string(dataset, "", "prepared dataset directory (towerps prepare --output)");
DEFINE_string(run_dir, "",
              "run directory: checkpoints, metrics.jsonl, events.jsonl (scheduler), logs; "
              "evaluate appends its result to evaluations.jsonl there");
DEFINE_int32(threads, 0, "worker threads; 0 = all cores");
DEFINE_string(scheduler, "", "the scheduler's endpoint, e.g. tcp://127.0.0.1:5555");
DEFINE_int64(metrics_interval_ms, 2000, "interval of metrics.jsonl lines");
DEFINE_int32(num_servers, 1, "parameter servers in the job");
DEFINE_int32(num_workers, 1, "workers in the job");
DEFINE_string(output_dir, "",
              "directory to write into (generate: interactions.csv, item_vectors.csv and "
              "towerps.spec, then towerps prepare --input=DIR; keygen: the job's keys)");

namespace towerps::cmd {

int Fail(const char* subcommand, const absl::Status& status) {
  std::fprintf(stderr, "towerps %s: %s\n", subcommand, std::string(status.message()).c_str());
  return 1;
}

int ThreadsOrAllCores() {
  if (FLAGS_threads > 0) return FLAGS_threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace towerps::cmd
