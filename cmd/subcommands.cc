#include "cmd/subcommand.h"

namespace towerps::cmd {

const std::vector<Subcommand>& AllSubcommands() {
  static const std::vector<Subcommand>* const kAll = new std::vector<Subcommand>{
      {"version", "print the towerps version and the linked library versions",
       {"cmd/version_main.cc"}, &RunVersion},
      {"prepare", "turn interaction logs into example shards, entity files and stats",
       {"cmd/prepare_main.cc", "cmd/shared_flags.cc"}, &RunPrepare},
      {"generate", "write synthetic interaction logs with planted structure",
       {"cmd/generate_main.cc", "cmd/job_flags.cc"}, &RunGenerate},
      {"train", "train the two-tower model in one process (embedded mode)",
       {"cmd/train_main.cc", "cmd/job_flags.cc"}, &RunTrain},
      {"evaluate", "Recall@K / NDCG@K of a checkpoint by exact retrieval, beside popularity",
       {"cmd/evaluate_main.cc", "cmd/job_flags.cc", "cmd/index_flags.cc"}, &RunEvaluate},
      {"scheduler", "run a job's scheduler (membership, clock, checkpoints, control)",
       {"cmd/scheduler_main.cc", "cmd/job_flags.cc", "cmd/curve_flags.cc", "cmd/launch_flags.cc",
        "cmd/metrics_flags.cc"}, &RunScheduler, true},
      {"ps", "run one parameter server of a job",
       {"cmd/ps_main.cc", "cmd/job_flags.cc", "cmd/curve_flags.cc", "cmd/node_flags.cc",
        "cmd/launch_flags.cc", "cmd/metrics_flags.cc"},
       &RunPs, true},
      {"worker", "run one training worker of a job",
       {"cmd/worker_main.cc", "cmd/job_flags.cc", "cmd/curve_flags.cc", "cmd/node_flags.cc",
        "cmd/launch_flags.cc", "cmd/metrics_flags.cc"},
       &RunWorker, true},
      {"ctl", "control a running job: status, pause, resume, checkpoint, stop",
       {"cmd/ctl_main.cc", "cmd/job_flags.cc", "cmd/curve_flags.cc", "cmd/shared_flags.cc"},
       &RunCtl, true},
      {"export", "embed every user and every item from a checkpoint or a running cluster",
       {"cmd/export_main.cc", "cmd/job_flags.cc", "cmd/index_flags.cc",
        "cmd/curve_flags.cc"}, &RunExport},
      {"build-index", "build sharded Faiss HNSW indexes over exported item embeddings",
       {"cmd/build_index_main.cc", "cmd/job_flags.cc", "cmd/index_flags.cc"}, &RunBuildIndex},
      {"serve", "serve top-K retrieval from index shards, or route to shard servers and merge",
       {"cmd/serve_main.cc", "cmd/index_flags.cc", "cmd/curve_flags.cc", "cmd/metrics_flags.cc"},
       &RunServe},
      {"query", "ask a retrieval server for a user's (or a vector's) top-K items",
       {"cmd/query_main.cc", "cmd/index_flags.cc", "cmd/curve_flags.cc"}, &RunQuery},
      {"dashboard", "render a run's metrics, events and evaluations as one HTML page",
       {"cmd/dashboard_main.cc", "cmd/job_flags.cc", "cmd/shared_flags.cc"}, &RunDashboard},
      {"keygen", "write CURVE key pairs and the allow-list of a secured job (--curve_dir)",
       {"cmd/keygen_main.cc", "cmd/job_flags.cc"}, &RunKeygen},
  };
  return *kAll;
}

}  // namespace towerps::cmd
