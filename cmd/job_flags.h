// Flags that several subcommands share (gflags names are global to the binary, so a
// flag used by more than one subcommand is defined once, here). A subcommand that
// accepts them lists "cmd/job_flags.cc" in its flag files.
#ifndef TOWERPS_CMD_JOB_FLAGS_H_
#define TOWERPS_CMD_JOB_FLAGS_H_

#include "absl/status/status.h"
#include "gflags/gflags.h"

DECLARE_string(config);
DECLARE_string(dataset);
DECLARE_string(run_dir);
DECLARE_int32(threads);
DECLARE_string(scheduler);
DECLARE_int64(metrics_interval_ms);
DECLARE_int32(num_servers);
DECLARE_int32(num_workers);
DECLARE_string(output_dir);

namespace towerps::cmd {

// --threads, or every core when it is 0.
int ThreadsOrAllCores();

// Prints "towerps <sub>: <message>" on stderr and returns exit code 1.
int Fail(const char* subcommand, const absl::Status& status);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_JOB_FLAGS_H_
