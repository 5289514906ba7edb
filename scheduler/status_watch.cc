#include "scheduler/status_watch.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "scheduler/status_view.h"

namespace towerps::scheduler {
namespace {

// ANSI: cursor home, clear the screen.
constexpr char kClearScreen[] = "\x1b[H\x1b[2J";

int64_t NowMs(const Clock* clock) { return clock->NowMicros() / 1000; }

}  // namespace

absl::Status StatusWatchOptions::Validate() const {
  if (interval_ms <= 0 || give_up_ms < 0) {
    return absl::InvalidArgumentError("watch: interval_ms must be > 0 and give_up_ms >= 0");
  }
  return absl::OkStatus();
}

int WatchStatus(const StatusWatchOptions& options, const StatusWatchIo& io) {
  if (!io.write) return 2;
  if (absl::Status valid = options.Validate(); !valid.ok() || !io.fetch || io.clock == nullptr) {
    io.write(
        absl::StrCat(valid.ok() ? "watch: fetch and clock are required" : valid.message(), "\n"));
    return 2;
  }
  std::string phase;  // as last seen
  bool seen = false;  // a status arrived
  bool unreachable = false;
  int64_t last_answer_ms = NowMs(io.clock);
  std::optional<JobStatusView> last;
  while (true) {
    absl::StatusOr<std::string> reply = io.fetch();
    const int64_t now = NowMs(io.clock);
    if (reply.ok()) {
      last_answer_ms = now;
      unreachable = false;
      absl::StatusOr<JobStatusView> status = ParseStatusJson(*reply);
      if (!status.ok()) {
        io.write(absl::StrCat("bad status reply: ", status.status().message(), "\n"));
      } else {
        seen = true;
        if (options.screen) {
          io.write(absl::StrCat(kClearScreen, RenderStatusScreen(*status, options.width)));
        } else {
          if (status->phase != phase) io.write(absl::StrCat("job phase: ", status->phase, "\n"));
          io.write(RenderStatusLine(*status) + "\n");
        }
        phase = status->phase;
        last = *std::move(status);
        if (phase == "done") {
          io.write("the job is done\n");
          return 0;
        }
        if (phase == "failed") {
          io.write("the job failed (see the scheduler's log)\n");
          return 1;
        }
      }
    } else {
      // The job was seen running: a scheduler that has gone may have ended it.
      const std::string state = seen && io.job_file_state ? io.job_file_state() : "";
      if (state == "done" || state == "failed") {
        io.write(absl::StrCat("the job is ", state, " (its scheduler has exited)\n"));
        return state == "done" ? 0 : 1;
      }
      const std::string line =
          absl::StrCat("scheduler unreachable, retrying (", reply.status().message(), ")\n");
      if (options.screen) {
        std::string screen = absl::StrCat(kClearScreen, line);
        if (last) {
          absl::StrAppend(&screen, "last status, ",
                          FormatSeconds(static_cast<double>(now - last_answer_ms) / 1000.0),
                          " ago:\n", RenderStatusScreen(*last, options.width));
        }
        io.write(screen);
      } else if (!unreachable) {
        io.write(line);
      }
      unreachable = true;
      if (options.give_up_ms > 0 && now - last_answer_ms >= options.give_up_ms) {
        io.write(absl::StrCat("giving up: no answer from the scheduler for ", now - last_answer_ms,
                              " ms\n"));
        return 1;
      }
    }
    const absl::Duration wait = absl::Milliseconds(options.interval_ms);
    if (io.stop != nullptr) {
      if (io.stop->WaitForNotificationWithTimeout(wait)) return 0;
    } else {
      absl::SleepFor(wait);
    }
  }
}

}  // namespace towerps::scheduler
