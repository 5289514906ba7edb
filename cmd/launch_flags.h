// Flags of the processes a launcher starts for a cluster job (`towerps scheduler`,
// `ps`, `worker`): where a process binds and what address it gives its peers, a dry
// run that only validates, and what a process does once the job has ended. Listed as
// "cmd/launch_flags.cc" in those subcommands' flag files. deploy/README.md shows them
// in use by deploy/local.sh, deploy/slurm/ and deploy/k8s/.
#ifndef TOWERPS_CMD_LAUNCH_FLAGS_H_
#define TOWERPS_CMD_LAUNCH_FLAGS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "cmd/stop_signals.h"
#include "common/json.h"
#include "data/schema.h"
#include "net/address.h"
#include "gflags/gflags.h"
#include "worker/model_config.h"

DECLARE_string(host);
DECLARE_int32(port);
DECLARE_string(advertise_host);
DECLARE_bool(dry_run);
DECLARE_bool(exit_when_done);

namespace towerps::cmd {

// What every process of a cluster job loads first: --config bound to --dataset's
// schema, and the job's planned global steps.
struct JobInputs {
  worker::BoundModel model;  // model.config is the parsed --config
  data::DatasetMeta meta;
  int64_t planned_steps = 0;
};
absl::StatusOr<JobInputs> LoadJobInputs();

// `--dry_run`'s report: {"dry_run":"ok","role":ROLE, the job's flags as this process
// sees them (config, dataset, run_dir, num_servers, num_workers, curve_dir, scheduler),
// "bind" and "advertise_host" as resolved, "planned_steps"}; the role adds its own.
// Launchers read it (deploy/local.sh --flagfile, deploy/slurm/).
JsonObject DryRunReport(const char* role, const JobInputs& job, const net::NodeAddress& address);
// Prints the report as one line on stdout; returns exit code 0.
int PrintDryRun(const JsonObject& report);

// After the job ended: with --exit_when_done=false, logs that this process idles and
// blocks until `signals` has seen SIGTERM/SIGINT (at once if it already has).
void IdleUntilStoppedIfAsked(const char* role, const StopSignalWatcher& signals);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_LAUNCH_FLAGS_H_
