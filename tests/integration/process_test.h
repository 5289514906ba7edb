// The fixture of tests that run real towerps processes: a fresh directory per test
// (kept when the test fails, for its logs), the binary and source paths ctest
// passes in, commands run to completion with a deadline, and a scheduler started
// with its endpoint read back from the file it writes.
#ifndef TOWERPS_TESTS_INTEGRATION_PROCESS_TEST_H_
#define TOWERPS_TESTS_INTEGRATION_PROCESS_TEST_H_

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/membership_client.h"
#include "net/transport.h"
#include "tests/integration/subprocess.h"

namespace towerps::testing {

class ProcessTest : public ::testing::Test {
 protected:
  static std::string Env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
  }

  void SetUp() override {
    source_ = Env("TOWERPS_SOURCE_DIR");
    binary_ = Env("TOWERPS_BINARY_DIR") + "/cmd/towerps";
    ASSERT_FALSE(source_.empty()) << "run through ctest (TOWERPS_SOURCE_DIR unset)";
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("towerps_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(RemoveAll(dir_).ok());
    ASSERT_TRUE(CreateDirectories(dir_).ok());
  }
  void TearDown() override {
    if (!HasFailure()) (void)RemoveAll(dir_);
  }

  // Runs a command to completion within `timeout`; its output goes to <dir>/<name>.log
  // and its tail is printed when it fails. Returns the exit code (-1 on timeout).
  int Run(const std::string& name, std::vector<std::string> argv,
          std::chrono::milliseconds timeout = std::chrono::seconds(180)) {
    Subprocess p(std::move(argv), dir_ + "/" + name + ".log");
    std::optional<int> rc = p.Wait(timeout);
    if (!rc || *rc != 0) {
      auto log = ReadFileToString(p.log_path());
      ADD_FAILURE() << name << (rc ? " exited " + std::to_string(*rc) : " timed out") << ":\n"
                    << (log.ok() ? log->substr(log->size() > 4000 ? log->size() - 4000 : 0) : "");
    }
    return rc.value_or(-1);
  }

  // Starts `towerps scheduler` with `flags` (its log: <dir>/<name>.log) and waits up
  // to 30 s for the endpoint it writes. Returns the endpoint, or "" (with a failure).
  std::string StartScheduler(std::vector<std::string> flags, std::unique_ptr<Subprocess>* out,
                             const std::string& name = "scheduler") {
    const std::string endpoint_file = dir_ + "/" + name + ".endpoint";
    std::filesystem::remove(endpoint_file);
    std::vector<std::string> argv = {binary_, "scheduler", "--endpoint_file=" + endpoint_file};
    argv.insert(argv.end(), flags.begin(), flags.end());
    *out = std::make_unique<Subprocess>(argv, dir_ + "/" + name + ".log");
    std::string endpoint;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (endpoint.empty() && std::chrono::steady_clock::now() < deadline) {
      auto text = ReadFileToString(endpoint_file);
      if (text.ok()) endpoint = *text;
      if (endpoint.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (endpoint.empty()) {
      ADD_FAILURE() << "the scheduler did not start; see " << dir_ << "/" << name << ".log";
      return "";
    }
    endpoint.erase(endpoint.find_last_not_of("\n") + 1);
    return endpoint;
  }

  // `towerps <argv_tail...> --config --dataset --scheduler`, logging to <dir>/<log>.
  std::unique_ptr<Subprocess> StartNode(const std::vector<std::string>& argv_tail,
                                        const std::string& config, const std::string& dataset,
                                        const std::string& scheduler, const std::string& log) {
    std::vector<std::string> argv = {binary_};
    argv.insert(argv.end(), argv_tail.begin(), argv_tail.end());
    argv.push_back("--config=" + config);
    argv.push_back("--dataset=" + dataset);
    argv.push_back("--scheduler=" + scheduler);
    return std::make_unique<Subprocess>(argv, dir_ + "/" + log);
  }

  // A membership and control client of the scheduler at `endpoint` (null, with a
  // failure, when it cannot connect).
  std::unique_ptr<net::MembershipClient> ConnectScheduler(const std::string& endpoint) {
    net::RpcClientOptions options;
    options.endpoint = endpoint;
    auto client = net::MembershipClient::Connect(&ctx_, options);
    if (!client.ok()) {
      ADD_FAILURE() << "connect to the scheduler at " << endpoint << ": " << client.status();
      return nullptr;
    }
    return std::move(client).value();
  }

  net::ZmqContext ctx_;  // for the test's own clients
  std::string source_, binary_, dir_;
};

}  // namespace towerps::testing

#endif  // TOWERPS_TESTS_INTEGRATION_PROCESS_TEST_H_
