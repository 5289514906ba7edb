// `towerps ctl --scheduler=ENDPOINT status|pause|resume|checkpoint|stop`, or
// `towerps ctl --flagfile=JOB ...`: the job's scheduler, from <run_dir>/scheduler.endpoint.
#include <cstdio>
#include <string>

#include "cmd/curve_flags.h"
#include "cmd/job_flags.h"
#include "cmd/launch_address.h"
#include "cmd/subcommand.h"
#include "gflags/gflags.h"
#include "net/address.h"
#include "net/membership_client.h"

DEFINE_int64(ctl_timeout_ms, 5000, "deadline of the request");

namespace towerps::cmd {

int RunCtl(int argc, char** argv) {
  if ((FLAGS_scheduler.empty() && FLAGS_run_dir.empty()) || argc != 2) {
    std::fprintf(stderr,
                 "usage: towerps ctl --scheduler=ENDPOINT|--flagfile=JOB "
                 "status|pause|resume|checkpoint|stop\n");
    return 2;
  }
  std::string endpoint = FLAGS_scheduler;
  if (endpoint.empty()) {
    auto written = net::ReadEndpointFile(SchedulerEndpointFile(FLAGS_run_dir));
    if (!written.ok()) return Fail("ctl", written.status());
    endpoint = *std::move(written);
  }
  net::ZmqContext ctx;
  net::RpcClientOptions options;
  options.endpoint = endpoint;
  options.timeout_ms = FLAGS_ctl_timeout_ms;
  options.max_attempts = 2;
  options.name = "ctl";
  auto keys = CurveKeysFromFlags(net::kOperatorIdentity);
  if (!keys.ok()) return Fail("ctl", keys.status());
  auto curve = keys->ClientCurve(net::kSchedulerIdentity);
  if (!curve.ok()) return Fail("ctl", curve.status());
  options.curve = *curve;
  auto client = net::MembershipClient::Connect(&ctx, options);
  if (!client.ok()) return Fail("ctl", client.status());
  auto status = (*client)->Control(argv[1]);
  if (!status.ok()) return Fail("ctl", status.status());
  std::printf("%s\n", status->c_str());
  return 0;
}

}  // namespace towerps::cmd
