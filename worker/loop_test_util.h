// Test-only: small generated datasets (the loop's made once per test binary), and a
// model bound to one with its in-process parameter server and runners over it, for
// the worker's tests.
#ifndef TOWERPS_WORKER_LOOP_TEST_UTIL_H_
#define TOWERPS_WORKER_LOOP_TEST_UTIL_H_

#include <memory>
#include <string>

#include "common/test_dir.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "ps/local_params.h"
#include "ps/server.h"
#include "worker/item_catalog.h"
#include "worker/job_plan.h"
#include "worker/model_config.h"
#include "worker/step_runner.h"
#include "worker/training_loop.h"

namespace towerps::worker {

inline constexpr char kConfig[] = R"(
table item_id dim=8 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
feature user history table=item_id
feature item item_id table=item_id
tower user mlp=16 cross=1 out=8
tower item mlp=16 cross=1 out=8
loss kind=softmax temperature=0.1 logq=on extra_negatives=8
dense_optimizer kind=adam lr=0.003
train batch=32 epochs=1 seed=5
)";

// Generates logs of users x items with `interactions` in `clusters` and prepares
// them in a fresh test directory <name>; returns the prepared dataset's directory.
inline std::string GeneratedDataset(const std::string& name, int users, int items,
                                    int interactions, int clusters) {
  std::string out = FreshTestDir(name);
  data::GenerateOptions g;
  g.output_dir = out + "_logs";
  g.users = users;
  g.items = items;
  g.interactions = interactions;
  g.clusters = clusters;
  EXPECT_TRUE(data::Generate(g).ok());
  data::PrepareOptions p;
  p.source.input = g.output_dir;
  p.output_dir = out;
  EXPECT_TRUE(data::Prepare(p).ok());
  return out;
}

// The loop's and pacer's tests' dataset, made once per test binary.
inline const std::string& Dataset() {
  static const std::string* dir = new std::string(GeneratedDataset("loop_ds", 100, 80, 1500, 3));
  return *dir;
}

// A model, its in-process server and a runner over it.
struct Fixture {
  Fixture() {
    auto meta = data::LoadDatasetMeta(Dataset());
    EXPECT_TRUE(meta.ok()) << meta.status();
    train_examples = static_cast<int64_t>(meta->num_examples("train"));
    auto config = ParseModelConfig(kConfig);
    EXPECT_TRUE(config.ok()) << config.status();
    model = *BindModel(*config, meta->schema);
    catalog = *ItemCatalog::Load(Dataset());
    server = *ps::ParameterServer::Create(ServerOptionsFor(model, 0, 1), nullptr);
    params = std::make_unique<ps::LocalParams>(server.get());
  }
  std::unique_ptr<StepRunner> Runner(ps::ParamSource* source) {
    auto runner = *StepRunner::Create(&model, catalog.get(), source,
                                      StepRunner::NegativeSeed(model.config.seed, 0));
    EXPECT_TRUE(runner->InitDense(true).ok());
    return runner;
  }
  TrainingLoopOptions LoopOptions() const {
    TrainingLoopOptions o;
    o.dataset_dir = Dataset();
    o.seed = model.config.seed;
    o.batch_size = model.config.batch_size;
    o.name = "test";
    return o;
  }

  int64_t train_examples = 0;
  BoundModel model;
  std::unique_ptr<ItemCatalog> catalog;
  std::unique_ptr<ps::ParameterServer> server;
  std::unique_ptr<ps::LocalParams> params;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_LOOP_TEST_UTIL_H_
