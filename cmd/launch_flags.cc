#include "cmd/launch_flags.h"

DEFINE_string(host, "",
              "address this process binds to (an IPv4 address or a name resolving to one); "
              "its outgoing connections leave from it too. Empty: listen on 127.0.0.1 and "
              "connect from the system's choice. 0.0.0.0 (every interface) only when asked, "
              "with --advertise_host");
DEFINE_int32(port, 0, "port to listen on (scheduler, ps); 0 = any free port");
DEFINE_string(advertise_host, "",
              "address peers should use to reach this process (the scheduler's endpoint "
              "file, a server's registration); empty = --host");
DEFINE_bool(dry_run, false,
            "validate the flags, the model config, the dataset and the keys, then print one "
            "JSON line describing the job and exit 0 (1 with one error line), binding, "
            "starting and writing nothing");
DEFINE_bool(exit_when_done, true,
            "exit once the job has ended; false keeps the process up (idle, answering "
            "status) until SIGTERM, for launchers that restart any process that exits "
            "(a Kubernetes Deployment or StatefulSet)");
