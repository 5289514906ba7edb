// towerps: one binary, many subcommands (`towerps --help`). This file only picks the
// subcommand, parses its flags, initialises logging and hands over.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
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
              "--flagfile=FILE reads flags from a file, one per line.%s\n",
              sub.job_role ? " A job file shared by the scheduler,\n"
                             "ps, worker and ctl may hold flags of any of them; each role\n"
                             "takes those that concern it (deploy/README.md)."
                           : "");
}

// "--items-only=1" -> "--items_only=1": a flag name typed with dashes means the
// same as with underscores (gflags knows only the latter); values are kept as typed.
std::string DashesToUnderscores(absl::string_view arg) {
  std::string out(arg);
  if (arg.size() < 3 || arg.substr(0, 2) != "--") return out;
  const size_t end = std::min(out.find('='), out.size());
  std::replace(out.begin() + 2, out.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  return out;
}

// Names of the flags typed on the command line itself (not read from a --flagfile):
// "--name", "-name", "--name=value", "--noname".
absl::flat_hash_set<std::string> TypedFlagNames(int argc, char** argv) {
  absl::flat_hash_set<std::string> names;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    arg = arg.substr(0, arg.find('='));
    names.insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) names.insert(std::string(arg));
  }
  return names;
}

// gflags skips a flag it does not know when it comes from a --flagfile, and takes a
// line that is not a flag as a filter on program names for the lines after it: a typo
// in a job file would silently change nothing. So every line of every flag file named
// on the command line (and, nested, in them) must be a comment, blank, or a flag of
// this binary.
absl::Status CheckFlagFile(const std::string& path, int depth) {
  constexpr int kMaxDepth = 8;
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": flag files nested too deep"));
  }
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  if (text->size() > (1u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a flag file over 1 MiB"));
  }
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(path, ":", line_number);
    if (!absl::ConsumePrefix(&line, "-")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": '", line, "' is not a flag (--name=value)"));
    }
    absl::ConsumePrefix(&line, "-");
    const size_t eq = line.find('=');
    const std::string name(line.substr(0, eq));
    if (name == "flagfile" && eq != absl::string_view::npos) {
      if (absl::Status nested = CheckFlagFile(std::string(line.substr(eq + 1)), depth + 1);
          !nested.ok()) {
        return nested;
      }
      continue;
    }
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(name.c_str(), &info)) continue;
    if (absl::StartsWith(name, "no") && eq == absl::string_view::npos &&
        gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) && info.type == "bool") {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": unknown flag --", name));
  }
  return absl::OkStatus();
}

absl::Status CheckFlagFiles(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--flagfile=") && !absl::ConsumePrefix(&arg, "-flagfile=")) {
      continue;
    }
    if (absl::Status checked = CheckFlagFile(std::string(arg), 0); !checked.ok()) return checked;
  }
  return absl::OkStatus();
}

// A flag of a cluster job's role: a job file shared by all roles may hold it.
bool IsJobRoleFlag(absl::string_view file) {
  for (const Subcommand& role : AllSubcommands()) {
    if (role.job_role && FlagBelongsTo(role, file)) return true;
  }
  return false;
}

// A flag set that belongs to another subcommand: refused when typed on the command
// line; from a flag file, accepted only by a job role and only if another role takes
// it (a shared job file), otherwise refused too.
bool RefuseForeignFlags(const Subcommand& sub, const absl::flat_hash_set<std::string>& typed) {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& flag : flags) {
    if (flag.is_default || FlagBelongsTo(sub, flag.filename)) continue;
    const bool from_file = !typed.contains(flag.name);
    if (from_file && sub.job_role && IsJobRoleFlag(flag.filename)) continue;
    std::fprintf(stderr, "towerps %s: unknown flag --%s%s (see towerps %s --help)\n",
                 std::string(sub.name).c_str(), flag.name.c_str(),
                 from_file ? " in a flag file" : "", std::string(sub.name).c_str());
    return true;
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
  std::vector<std::string> typed_args;
  for (int i = 2; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    typed_args.push_back(DashesToUnderscores(argv[i]));
  }
  std::vector<char*> args;
  args.push_back(program.data());
  for (std::string& arg : typed_args) args.push_back(arg.data());
  for (int i = 2 + static_cast<int>(typed_args.size()); i < argc; ++i) args.push_back(argv[i]);
  int sub_argc = static_cast<int>(args.size());
  char** sub_argv = args.data();
  const absl::flat_hash_set<std::string> typed = TypedFlagNames(sub_argc, sub_argv);
  if (absl::Status checked = CheckFlagFiles(sub_argc, sub_argv); !checked.ok()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(checked.message()).c_str());
    return 2;
  }
  gflags::SetUsageMessage(program);
  gflags::SetVersionString("0.1.0");
  // Unknown flags make gflags print one line and exit(1).
  gflags::ParseCommandLineNonHelpFlags(&sub_argc, &sub_argv, /*remove_flags=*/true);
  std::string help;
  if (gflags::GetCommandLineOption("help", &help) && help == "true") {
    PrintSubcommandHelp(*sub);
    return 0;
  }
  if (RefuseForeignFlags(*sub, typed)) return 2;
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
