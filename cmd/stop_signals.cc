#include "cmd/stop_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "glog/logging.h"

namespace towerps::cmd {
namespace {

// The self-pipe: a signal handler is process-wide, so is its pipe. Written only by
// the handler, read only by the one waiting thread.
int g_pipe[2] = {-1, -1};

void OnStopSignal(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  (void)!write(g_pipe[1], &byte, 1);  // non-blocking; a full pipe already says "stop"
  errno = saved;
}

// SIGHUP's own self-pipe (ReloadSignalWatcher).
int g_reload_pipe[2] = {-1, -1};

void OnReloadSignal(int) {
  const int saved = errno;
  const unsigned char byte = 1;
  (void)!write(g_reload_pipe[1], &byte, 1);
  errno = saved;
}

// The next stop signal within `timeout_ms` (-1: no limit), or 0.
int TakeStopSignal(int timeout_ms) {
  if (g_pipe[0] < 0) return 0;
  pollfd fd{g_pipe[0], POLLIN, 0};
  if (poll(&fd, 1, timeout_ms) <= 0) return 0;
  unsigned char byte = 0;
  return read(g_pipe[0], &byte, 1) == 1 ? byte : 0;
}

}  // namespace

void CatchStopSignals() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      PLOG(ERROR) << "cannot catch SIGTERM/SIGINT (pipe)";
      return;
    }
    for (int sig : {SIGTERM, SIGINT}) {
      struct sigaction old {};
      if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
      struct sigaction action {};
      action.sa_handler = OnStopSignal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART;
      sigaction(sig, &action, nullptr);
    }
  });
}

int WaitForStopSignal() {
  while (true) {
    const int sig = TakeStopSignal(-1);
    if (sig != 0) return sig;
    if (g_pipe[0] < 0) pause();  // never caught: wait for the default action
  }
}

StopSignalWatcher::StopSignalWatcher(std::function<void(int)> on_stop) {
  thread_ = std::thread([this, on_stop = std::move(on_stop)] {
    pthread_setname_np(pthread_self(), "stop-signals");
    while (!done_.load()) {
      const int sig = TakeStopSignal(100);
      if (sig == 0) continue;
      if (signal_.load() != 0) {
        LOG(WARNING) << strsignal(sig) << " again; already stopping (SIGKILL forces an exit)";
        continue;
      }
      signal_ = sig;
      LOG(INFO) << strsignal(sig) << " received; stopping";
      on_stop(sig);
    }
  });
}

StopSignalWatcher::~StopSignalWatcher() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

ReloadSignalWatcher::ReloadSignalWatcher(std::function<void()> on_reload) {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_reload_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      PLOG(ERROR) << "cannot catch SIGHUP (pipe)";
      return;
    }
    struct sigaction action {};
    action.sa_handler = OnReloadSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &action, nullptr);
  });
  thread_ = std::thread([this, on_reload = std::move(on_reload)] {
    pthread_setname_np(pthread_self(), "reload-signal");
    while (!done_.load() && g_reload_pipe[0] >= 0) {
      pollfd fd{g_reload_pipe[0], POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      unsigned char bytes[64];
      if (read(g_reload_pipe[0], bytes, sizeof(bytes)) <= 0) continue;
      LOG(INFO) << "SIGHUP received; reloading";
      on_reload();
    }
  });
}

ReloadSignalWatcher::~ReloadSignalWatcher() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace towerps::cmd
