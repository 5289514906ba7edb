// Flags of the processes a launcher starts for a cluster job (`towerps scheduler`,
// `ps`, `worker`): where a process binds and what address it gives its peers, a dry
// run that only validates, and what a process does once the job has ended. Listed as
// "cmd/launch_flags.cc" in those subcommands' flag files. deploy/README.md shows them
// in use by deploy/local.sh, deploy/slurm/ and deploy/k8s/.
#ifndef TOWERPS_CMD_LAUNCH_FLAGS_H_
#define TOWERPS_CMD_LAUNCH_FLAGS_H_

#include "gflags/gflags.h"

DECLARE_string(host);
DECLARE_int32(port);
DECLARE_string(advertise_host);
DECLARE_bool(dry_run);
DECLARE_bool(exit_when_done);

#endif  // TOWERPS_CMD_LAUNCH_FLAGS_H_
