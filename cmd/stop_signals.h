// SIGTERM / SIGINT for the long-running subcommands, with no work in a signal
// handler: CatchStopSignals() installs a handler that only writes the signal number
// to a self-pipe (async-signal-safe), and one thread reads it:
//   - StopSignalWatcher runs a callback (the component's Stop) on its own thread
//     "stop-signals" at the first signal and only logs later ones: a launcher that
//     forwards SIGTERM to a process the batch system signalled too must not cut
//     its graceful stop short (SIGKILL is the way to force an exit).
//   - WaitForStopSignal blocks the caller until one arrives (a main with nothing
//     else to do, e.g. `towerps serve`).
// A self-pipe rather than sigwait(): OpenBLAS starts its threads before main, with
// no signal blocked, so a process-directed signal may land on any of them.
// A signal that was ignored at start (SIGINT in a script's background job) stays
// ignored, so Ctrl-C on a launcher reaches only the launcher.
#ifndef TOWERPS_CMD_STOP_SIGNALS_H_
#define TOWERPS_CMD_STOP_SIGNALS_H_

#include <atomic>
#include <functional>
#include <thread>

namespace towerps::cmd {

// Installs the handlers (once per process; later calls do nothing). Call early in a
// Run function, before the work starts.
void CatchStopSignals();

// Blocks until SIGTERM or SIGINT arrives (CatchStopSignals first); returns it.
int WaitForStopSignal();

// Owns thread "stop-signals". Construct after CatchStopSignals; the destructor
// joins (within ~100 ms). Thread-compatible object; the callback runs on its thread.
class StopSignalWatcher {
 public:
  // `on_stop(signal)` runs once, at the first signal; it must not block for long.
  explicit StopSignalWatcher(std::function<void(int)> on_stop);
  ~StopSignalWatcher();
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

  // The first signal received, 0 before.
  int signal() const { return signal_.load(); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  std::thread thread_;
};

// SIGHUP as "look again now" (serve: reload the index). Owns thread "reload-signal",
// which runs `on_reload` once per SIGHUP (several quick ones may be merged). Installs
// the SIGHUP handler (a self-pipe, as above) on construction; the destructor joins
// (within ~100 ms) and leaves the handler in place, writing to nothing.
class ReloadSignalWatcher {
 public:
  explicit ReloadSignalWatcher(std::function<void()> on_reload);
  ~ReloadSignalWatcher();
  ReloadSignalWatcher(const ReloadSignalWatcher&) = delete;
  ReloadSignalWatcher& operator=(const ReloadSignalWatcher&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_STOP_SIGNALS_H_
