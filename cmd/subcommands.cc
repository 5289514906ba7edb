#include "cmd/subcommand.h"

namespace towerps::cmd {

const std::vector<Subcommand>& AllSubcommands() {
  static const std::vector<Subcommand>* const kAll = new std::vector<Subcommand>{
      {"version", "print the towerps version and the linked library versions",
       {"cmd/version_main.cc"}, &RunVersion},
  };
  return *kAll;
}

}  // namespace towerps::cmd
