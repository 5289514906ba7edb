// Flags of the processes that follow a scheduler (`towerps ps`, `towerps worker`):
// how often they heartbeat and how long the scheduler may stay silent before they
// give up. Listed as "cmd/node_flags.cc" in those subcommands' flag files.
#ifndef TOWERPS_CMD_NODE_FLAGS_H_
#define TOWERPS_CMD_NODE_FLAGS_H_

#include "gflags/gflags.h"

DECLARE_int64(heartbeat_interval_ms);
DECLARE_int64(scheduler_timeout_ms);

#endif  // TOWERPS_CMD_NODE_FLAGS_H_
