// Child processes for integration tests: start a real binary with its output in
// files, wait with a deadline, and kill whatever is still running when the test
// ends (the destructor), so no test leaves processes behind.
#ifndef TOWERPS_TESTS_INTEGRATION_SUBPROCESS_H_
#define TOWERPS_TESTS_INTEGRATION_SUBPROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace towerps::testing {

class Subprocess {
 public:
  // Starts argv[0] with the arguments; stdout and stderr go to `log_path`.
  Subprocess(std::vector<std::string> argv, const std::string& log_path) : log_path_(log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::setpgid(0, 0);  // its own group, so Kill reaches its children too
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Subprocess() { Kill(); }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // The exit code once the child exits within `timeout`; nullopt on timeout (the
  // child keeps running; the destructor kills it).
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  void Kill() {
    if (pid_ <= 0 || exit_code_) return;
    ::kill(-pid_, SIGTERM);
    if (!Wait(std::chrono::milliseconds(3000))) {
      ::kill(-pid_, SIGKILL);
      Wait(std::chrono::milliseconds(3000));
    }
  }

  // Sends `sig` to the child's process group (no-op once it exited).
  void Signal(int sig) {
    if (pid_ > 0 && !exit_code_) ::kill(-pid_, sig);
  }

  // Whether any process of the child's group (the child and what it started) is
  // still running.
  bool GroupAlive() const { return pid_ > 0 && ::kill(-pid_, 0) == 0; }

  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

}  // namespace towerps::testing

#endif  // TOWERPS_TESTS_INTEGRATION_SUBPROCESS_H_
