#include "cmd/node_flags.h"

DEFINE_int64(heartbeat_interval_ms, 1000, "heartbeat period to the scheduler, ms");
DEFINE_int64(scheduler_timeout_ms, 60000,
             "exit when the scheduler has not answered for this long, ms "
             "(> --heartbeat_interval_ms): the time a restarted scheduler has to come "
             "back (this node then registers with it again and carries on)");
