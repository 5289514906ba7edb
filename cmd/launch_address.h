// The launch flags as addresses (cmd/launch_flags.h): --host, --port and
// --advertise_host resolved into a net::NodeAddress, and the scheduler endpoint of a
// ps or worker process (--scheduler, or <run_dir>/scheduler.endpoint). The rules
// live in net/address.h; this file only reads the flags.
#ifndef TOWERPS_CMD_LAUNCH_ADDRESS_H_
#define TOWERPS_CMD_LAUNCH_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "net/address.h"

namespace towerps::cmd {

// --host, --port and --advertise_host, validated and resolved (net::ResolveNodeAddress;
// its errors name the flag).
absl::StatusOr<net::NodeAddress> NodeAddressFromFlags();

// <run_dir>/scheduler.endpoint: where the scheduler writes its advertised endpoint
// (its --endpoint_file default) and where a ps or worker without --scheduler reads it.
std::string SchedulerEndpointFile(const std::string& run_dir);

// The scheduler's endpoint: --scheduler when given, else the one in
// <run_dir>/scheduler.endpoint, waited for up to --scheduler_timeout_ms (polled every
// 100 ms). Errors: net::WaitForEndpointFile's (DeadlineExceeded, InvalidArgument for
// a bad file); Cancelled when SIGTERM or SIGINT arrives during the wait (call
// CatchStopSignals first), with that signal in *stopped_by (may be null). Needs
// --scheduler or --run_dir (the main checks).
absl::StatusOr<std::string> SchedulerEndpointFromFlags(int* stopped_by = nullptr);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_LAUNCH_ADDRESS_H_
