// towerps: one binary, many subcommands (`towerps --help`). This file only picks the
// subcommand, parses its flags, initialises logging and hands over.
#include <cstdio>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/strings/match.h"
#include "cmd/subcommand.h"
#include "common/allocator.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

namespace towerps::cmd {
namespace {

bool IsProjectFlagFile(absl::string_view file) { return absl::StrContains(file, "cmd/"); }

bool FlagBelongsTo(const Subcommand& sub, absl::string_view file) {
  if (!IsProjectFlagFile(file)) return true;
  for (absl::string_view allowed : sub.flag_files) {
    if (absl::EndsWith(file, allowed)) return true;
  }
  return false;
}

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "towerps: train two-tower retrieval models on a parameter-server cluster.\n\n"
               "usage: towerps <subcommand> [--flags]\n"
               "       towerps <subcommand> --help   (the subcommand's flags)\n\n"
               "subcommands:\n");
  for (const Subcommand& sub : AllSubcommands()) {
    std::fprintf(out, "  %-12s %s\n", std::string(sub.name).c_str(),
                 std::string(sub.summary).c_str());
  }
}

void PrintSubcommandHelp(const Subcommand& sub) {
  std::printf("towerps %s: %s\n\nflags:\n", std::string(sub.name).c_str(),
              std::string(sub.summary).c_str());
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& flag : flags) {
    if (!IsProjectFlagFile(flag.filename) || !FlagBelongsTo(sub, flag.filename)) continue;
    std::printf("  --%s (%s) default: %s\n      %s\n", flag.name.c_str(), flag.type.c_str(),
                flag.type == "string" ? ("\"" + flag.default_value + "\"").c_str()
                                      : flag.default_value.c_str(),
                flag.description.c_str());
  }
  std::printf("\nlogging flags (glog): --log_dir, --v, --logtostderr, --minloglevel, ...\n"
              "--flagfile=FILE reads flags from a file, one per line.\n");
}

// A flag set on the command line that belongs to another subcommand.
bool RefuseForeignFlags(const Subcommand& sub) {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& flag : flags) {
    if (!flag.is_default && !FlagBelongsTo(sub, flag.filename)) {
      std::fprintf(stderr, "towerps %s: unknown flag --%s (see towerps %s --help)\n",
                   std::string(sub.name).c_str(), flag.name.c_str(),
                   std::string(sub.name).c_str());
      return true;
    }
  }
  return false;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  absl::string_view name = argv[1];
  const Subcommand* sub = nullptr;
  for (const Subcommand& candidate : AllSubcommands()) {
    if (candidate.name == name) sub = &candidate;
  }
  if (sub == nullptr) {
    std::fprintf(stderr, "towerps: unknown subcommand '%s' (see towerps --help)\n", argv[1]);
    return 2;
  }
  std::string program = "towerps " + std::string(name);
  std::vector<char*> args;
  args.push_back(program.data());
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  int sub_argc = static_cast<int>(args.size());
  char** sub_argv = args.data();
  gflags::SetUsageMessage(program);
  gflags::SetVersionString("0.1.0");
  // Unknown flags make gflags print one line and exit(1).
  gflags::ParseCommandLineNonHelpFlags(&sub_argc, &sub_argv, /*remove_flags=*/true);
  std::string help;
  if (gflags::GetCommandLineOption("help", &help) && help == "true") {
    PrintSubcommandHelp(*sub);
    return 0;
  }
  if (RefuseForeignFlags(*sub)) return 2;
  if (FLAGS_log_dir.empty()) FLAGS_logtostderr = true;
  google::InitGoogleLogging(program.c_str());
  if (!KeepLargeAllocationsInHeap()) LOG(WARNING) << "malloc tuning refused; continuing";
  int rc = sub->run(sub_argc, sub_argv);
  google::FlushLogFiles(google::GLOG_INFO);
  gflags::ShutDownCommandLineFlags();
  return rc;
}

}  // namespace
}  // namespace towerps::cmd

int main(int argc, char** argv) { return towerps::cmd::Main(argc, argv); }
