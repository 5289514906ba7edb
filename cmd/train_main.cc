// `towerps train`: embedded mode, the whole model in one process.
#include <cblas.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "cmd/job_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/metrics.h"
#include "common/progress_line.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/embedded_trainer.h"
#include "worker/model_config.h"

DEFINE_int64(max_steps, 0, "stop after this many steps; 0 = the config's epochs");
DEFINE_bool(log_losses, false, "write every step's loss to <run_dir>/losses.tsv");

namespace towerps::cmd {

int RunTrain(int /*argc*/, char** /*argv*/) {
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_run_dir.empty()) {
    std::fprintf(stderr, "towerps train: --config, --dataset and --run_dir are required\n");
    return 2;
  }
  CatchStopSignals();
  auto config = worker::LoadModelConfig(FLAGS_config);
  if (!config.ok()) {
    std::fprintf(stderr, "towerps train: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  worker::EmbeddedTrainerOptions options;
  options.dataset_dir = FLAGS_dataset;
  options.run_dir = FLAGS_run_dir;
  options.threads = ThreadsOrAllCores();
  options.max_steps = FLAGS_max_steps;
  options.log_losses = FLAGS_log_losses;
  options.on_progress = [](const worker::TrainProgress& p) {
    const double rate = p.elapsed_s > 0 ? p.step / p.elapsed_s : 0;
    ProgressFigures figures;
    figures.step = p.step;
    figures.total_steps = p.total_steps;
    figures.loss = p.loss;
    figures.examples_per_s = p.examples_per_s;
    figures.lr_scale = p.lr_scale;
    figures.eta_s = rate > 0 ? std::max<double>(p.total_steps - p.step, 0) / rate : -1;
    std::fprintf(stderr, "%s\n", FormatProgressLine(figures).c_str());
  };
  // One model replica per thread: keep OpenBLAS from adding threads of its own.
  if (options.threads > 1) openblas_set_num_threads(1);
  MetricsRegistry metrics;
  RealClock clock;
  auto trainer = worker::EmbeddedTrainer::Create(options, *config, &metrics);
  if (!trainer.ok()) {
    std::fprintf(stderr, "towerps train: %s\n", std::string(trainer.status().message()).c_str());
    return 1;
  }
  if (absl::Status made = CreateDirectories(FLAGS_run_dir); !made.ok()) {
    std::fprintf(stderr, "towerps train: %s\n", std::string(made.message()).c_str());
    return 1;
  }
  MetricsWriterOptions metrics_options;
  metrics_options.path = FLAGS_run_dir + "/metrics.jsonl";
  metrics_options.role = "train";
  metrics_options.interval_ms = FLAGS_metrics_interval_ms;
  auto writer = MetricsWriter::Create(metrics_options, &metrics, &clock);
  if (!writer.ok()) {
    std::fprintf(stderr, "towerps train: %s\n", std::string(writer.status().message()).c_str());
    return 1;
  }
  (*writer)->Start();
  // SIGTERM / SIGINT: finish the steps under way, write the checkpoint, exit 0.
  worker::EmbeddedTrainer* raw = trainer->get();
  StopSignalWatcher signals([raw](int) { raw->Stop(); });
  auto result = (*trainer)->Run();
  (*writer)->Stop();
  if (!result.ok()) {
    std::fprintf(stderr, "towerps train: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  std::printf("trained %ld steps (%ld examples) in %.1f s, %.0f examples/s, final loss %.4f\n",
              static_cast<long>(result->steps), static_cast<long>(result->examples),
              result->seconds, result->examples / std::max(result->seconds, 1e-9),
              result->final_loss);
  if (result->stopped) std::printf("stopped early on request\n");
  std::printf("checkpoint: %s\n", result->checkpoint_dir.c_str());
  return 0;
}

}  // namespace towerps::cmd
