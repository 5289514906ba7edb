#include "cmd/shared_flags.h"

DEFINE_string(output, "",
              "prepare: the dataset directory to create (written atomically); dashboard: the "
              "page to write (default <run_dir>/dashboard.html)");
DEFINE_bool(watch, false,
            "dashboard: rewrite the page every --watch_interval_ms until SIGINT/SIGTERM; "
            "ctl status: refresh every --watch_interval_ms until the job is done (exit 0) or "
            "failed (exit 1), or SIGINT/SIGTERM");
DEFINE_int64(watch_interval_ms, 0,
             "--watch: milliseconds between two refreshes (0 = the subcommand's default: "
             "dashboard 5000, ctl 2000)");
