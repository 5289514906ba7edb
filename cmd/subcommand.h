// The `towerps` binary's subcommand table. Each subcommand lives in
// cmd/<name>_main.cc, defines its gflags there, and exposes one Run function.
// Thread-compatible (used from main only).
#ifndef TOWERPS_CMD_SUBCOMMAND_H_
#define TOWERPS_CMD_SUBCOMMAND_H_

#include "absl/strings/string_view.h"
#include <vector>

namespace towerps::cmd {

struct Subcommand {
  // What the user types: `towerps <name> ...`.
  absl::string_view name;
  // One line for `towerps --help`.
  absl::string_view summary;
  // Source files under cmd/ whose flags this subcommand accepts (e.g.
  // "cmd/train_main.cc", "cmd/model_flags.cc"); flags of other subcommands are
  // refused as unknown. Flags defined outside cmd/ (glog's) are always accepted.
  std::vector<absl::string_view> flag_files;
  // Runs after flags are parsed and logging is initialised; argv holds what is
  // left after flag parsing (argv[0] is "towerps <name>"). Returns the exit code.
  int (*run)(int argc, char** argv);
  // A role of a cluster job (scheduler, ps, worker, ctl): it shares one job file
  // (--flagfile) with the other roles, so a flag from a flag file that belongs to any
  // of them is accepted (and left to the roles it concerns). Flags typed on the
  // command line are still checked against flag_files alone.
  bool job_role = false;
};

// Every subcommand, in the order `towerps --help` lists them.
const std::vector<Subcommand>& AllSubcommands();

int RunVersion(int argc, char** argv);
int RunPrepare(int argc, char** argv);
int RunGenerate(int argc, char** argv);
int RunTrain(int argc, char** argv);
int RunEvaluate(int argc, char** argv);
int RunScheduler(int argc, char** argv);
int RunPs(int argc, char** argv);
int RunWorker(int argc, char** argv);
int RunCtl(int argc, char** argv);
int RunExport(int argc, char** argv);
int RunBuildIndex(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunQuery(int argc, char** argv);
int RunKeygen(int argc, char** argv);
int RunDashboard(int argc, char** argv);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_SUBCOMMAND_H_
