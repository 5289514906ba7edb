// Flags that two unrelated subcommands share under one name (gflags names are global to
// the binary). Each subcommand lists "cmd/shared_flags.cc" in its flag files and reads
// only the ones it documents.
#ifndef TOWERPS_CMD_SHARED_FLAGS_H_
#define TOWERPS_CMD_SHARED_FLAGS_H_

#include "gflags/gflags.h"

DECLARE_string(output);
DECLARE_bool(watch);
DECLARE_int64(watch_interval_ms);

namespace towerps::cmd {

// --watch_interval_ms, or `default_ms` when it is 0 (each subcommand has its own).
inline int64_t WatchIntervalMsOr(int64_t default_ms) {
  return FLAGS_watch_interval_ms != 0 ? FLAGS_watch_interval_ms : default_ms;
}

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_SHARED_FLAGS_H_
