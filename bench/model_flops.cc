// bench_model_flops: the model-FLOP-utilisation denominator of `bench/run.sh train`.
//
//   bench_model_flops --config=C --dataset=D [--threads=T] [--seconds=S]
//
// Binds the model config to the dataset, prints the analytic GEMM FLOPs per
// training example (models::TwoTowerFlopsPerExample at the config's batch and
// extra negatives) and the OpenBLAS sgemm GFLOP/s on exactly the GEMM shapes of
// one training step, run the way `towerps train --threads=T` runs them: T
// threads at once, each with one OpenBLAS thread, each looping over the step's
// products for S seconds. Output, one line:
//   {"flops_per_example":…, "sgemm_gflops":…, "threads":T, "batch":B, "extra":N}
// Exit 2 on bad flags, 1 when the config does not bind to the dataset.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "bench/bench_util.h"
#include "common/json.h"
#include "data/schema.h"
#include "glog/logging.h"
#include "models/two_tower.h"
#include "worker/model_config.h"

namespace towerps::bench {
namespace {

// One product C (m x n) = A (m x k) B (k x n), operands transposed as stored.
struct GemmShape {
  int m = 0, n = 0, k = 0;
  bool a_transposed = false, b_transposed = false;
  double flops() const { return 2.0 * m * n * k; }
};

// Every GEMM of one step, read off the model's own parameter layout: each
// "<tower>/.../w" matrix (in x out) is a Linear or cross layer, run over B rows
// in the user tower and B + N in the item tower as forward x W, weight gradient
// x^T dy and input gradient dy W^T; then the logits Z = U I^T, dU = dZ I and
// dI = dZ^T U.
std::vector<GemmShape> StepProducts(const models::TwoTower& model, int batch, int extra) {
  std::vector<GemmShape> step;
  for (const models::ParamInfo& p : model.params().layout()) {
    if (!absl::EndsWith(p.name, "/w")) continue;
    const int rows = absl::StartsWith(p.name, "user/") ? batch : batch + extra;
    const int in = p.ref.rows, out = p.ref.cols;
    step.push_back({.m = rows, .n = out, .k = in});
    step.push_back({.m = in, .n = out, .k = rows, .a_transposed = true});
    step.push_back({.m = rows, .n = in, .k = out, .b_transposed = true});
  }
  const int items = batch + extra;
  const int dim = model.config().user.output_dim;
  step.push_back({.m = batch, .n = items, .k = dim, .b_transposed = true});
  step.push_back({.m = batch, .n = dim, .k = items});
  step.push_back({.m = items, .n = dim, .k = batch, .a_transposed = true});
  return step;
}

// Loops over `step` on this thread until `stop`; returns the FLOPs done.
double RunProducts(const std::vector<GemmShape>& step, const std::atomic<bool>& stop) {
  size_t largest = 1;
  for (const GemmShape& g : step) {
    largest = std::max({largest, static_cast<size_t>(g.m) * g.k,
                        static_cast<size_t>(g.k) * g.n, static_cast<size_t>(g.m) * g.n});
  }
  std::vector<float> a(largest, 0.5f), b(largest, 0.25f), c(largest, 0.0f);
  double done = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (const GemmShape& g : step) {
      cblas_sgemm(CblasRowMajor, g.a_transposed ? CblasTrans : CblasNoTrans,
                  g.b_transposed ? CblasTrans : CblasNoTrans, g.m, g.n, g.k, 1.0f, a.data(),
                  g.a_transposed ? g.m : g.k, b.data(), g.b_transposed ? g.k : g.n, 0.0f,
                  c.data(), g.n);
      done += g.flops();
    }
    DoNotOptimize(c[0]);
  }
  return done;
}

bool FlagValue(const char* arg, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  if (!absl::StartsWith(arg, prefix)) return false;
  *value = arg + prefix.size();
  return true;
}

int Main(int argc, char** argv) {
  std::string config_path, dataset, threads_text = "2", seconds_text = "3";
  for (int i = 1; i < argc; ++i) {
    if (!FlagValue(argv[i], "config", &config_path) && !FlagValue(argv[i], "dataset", &dataset) &&
        !FlagValue(argv[i], "threads", &threads_text) &&
        !FlagValue(argv[i], "seconds", &seconds_text)) {
      std::fprintf(stderr, "bench_model_flops: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  int threads = 0;
  double seconds = 0;
  if (config_path.empty() || dataset.empty() || !absl::SimpleAtoi(threads_text, &threads) ||
      threads < 1 || !absl::SimpleAtod(seconds_text, &seconds) || !(seconds > 0)) {
    std::fprintf(stderr,
                 "usage: bench_model_flops --config=C --dataset=D [--threads=T] [--seconds=S]\n");
    return 2;
  }
  auto config = worker::LoadModelConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "bench_model_flops: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  auto meta = data::LoadDatasetMeta(dataset);
  if (!meta.ok()) {
    std::fprintf(stderr, "bench_model_flops: %s\n", std::string(meta.status().message()).c_str());
    return 1;
  }
  auto bound = worker::BindModel(*config, meta->schema);
  if (!bound.ok()) {
    std::fprintf(stderr, "bench_model_flops: %s\n", std::string(bound.status().message()).c_str());
    return 1;
  }
  const int batch = config->batch_size;
  const int extra = config->extra_negatives;
  const double per_example = models::TwoTowerFlopsPerExample(bound->two_tower, batch, extra);
  auto model = models::TwoTower::Create(bound->two_tower);
  if (!model.ok()) {
    std::fprintf(stderr, "bench_model_flops: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const std::vector<GemmShape> step = StepProducts(**model, batch, extra);
  double step_flops = 0;
  for (const GemmShape& g : step) step_flops += g.flops();
  // The shapes must be the ones the analytic count describes.
  CHECK_LT(std::abs(step_flops / batch - per_example), 1e-6 * per_example);

  openblas_set_num_threads(1);  // towerps train --threads > 1 does the same
  std::atomic<bool> stop{false};
  std::vector<double> flops(threads, 0.0);
  std::vector<std::thread> pool;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { flops[t] = RunProducts(step, stop); });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : pool) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double f : flops) total += f;

  JsonObject out;
  out.Add("flops_per_example", per_example)
      .Add("sgemm_gflops", total / wall / 1e9)
      .Add("threads", threads)
      .Add("batch", batch)
      .Add("extra", extra);
  std::printf("%s\n", out.ToString().c_str());
  return 0;
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) { return towerps::bench::Main(argc, argv); }
