// `towerps keygen --output_dir=DIR --num_servers=N --num_workers=M`: one CURVE key
// pair per identity of a job and its allow-list (format: net/curve_keys.h,
// docs/security.md). Then every process of the job gets --curve_dir=DIR.
#include <cstdio>

#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "net/curve_keys.h"

namespace towerps::cmd {

int RunKeygen(int /*argc*/, char** /*argv*/) {
  if (FLAGS_output_dir.empty()) {
    std::fprintf(stderr,
                 "usage: towerps keygen --output_dir=DIR --num_servers=N --num_workers=M\n");
    return 2;
  }
  net::KeygenOptions options;
  options.output_dir = FLAGS_output_dir;
  options.num_servers = FLAGS_num_servers;
  options.num_workers = FLAGS_num_workers;
  auto identities = net::GenerateJobKeys(options);
  if (!identities.ok()) return Fail("keygen", identities.status());
  std::printf("wrote CURVE keys of %zu identities and %s to %s\n", identities->size(),
              net::kAllowListFile, FLAGS_output_dir.c_str());
  return 0;
}

}  // namespace towerps::cmd
