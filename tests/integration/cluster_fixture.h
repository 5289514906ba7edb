// The fixture of tests that run whole clusters: generated datasets, a small model
// config, and reading a running job's status.
#ifndef TOWERPS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
#define TOWERPS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/membership_client.h"
#include "tests/integration/process_test.h"

namespace towerps::testing {

class ClusterFixture : public ProcessTest {
 protected:
  // Generated interactions prepared into <dir>/ds.
  std::string GeneratedDataset(int users, int items, int interactions) {
    Run("generate", {binary_, "generate", "--output_dir=" + dir_ + "/logs",
                     "--users=" + std::to_string(users), "--items=" + std::to_string(items),
                     "--interactions=" + std::to_string(interactions), "--clusters=8"});
    Run("prepare", {binary_, "prepare", "--input=" + dir_ + "/logs", "--output=" + dir_ + "/ds"});
    return dir_ + "/ds";
  }
  // Small enough to train in seconds; medium: a few hundred steps.
  std::string SmallDataset() { return GeneratedDataset(600, 400, 20000); }
  std::string MediumDataset() { return GeneratedDataset(2000, 500, 120000); }

  // Steps live worker `rank` has reported, from the status JSON (-1 if absent).
  static int64_t WorkerSteps(net::MembershipClient* ctl, int rank) {
    auto status = ctl->Control("status");
    if (!status.ok()) return -1;
    std::string key = "{\"rank\":" + std::to_string(rank) + ",\"alive\":true,\"steps\":";
    size_t at = status->find(key);
    return at == std::string::npos ? -1 : std::atoll(status->c_str() + at + key.size());
  }

  // Waits (up to 60 s) until every worker in `ranks` has reported `steps` steps.
  static bool WaitForSteps(net::MembershipClient* ctl, std::vector<int> ranks, int64_t steps) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (int r : ranks) all = all && WorkerSteps(ctl, r) >= steps;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // A small two-tower model trained for `epochs` epochs; written to <dir>/<name>.conf.
  // `train_extra`: more settings of its train line (e.g. "dense_sync_every=4").
  std::string Config(const std::string& name, int epochs = 1, const std::string& train_extra = "") {
    std::string path = dir_ + "/" + name + ".conf";
    std::string text = R"(
table item_id dim=16 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
table attr dim=8 init=uniform:0.05 optimizer=adam lr=0.01
feature user history table=item_id
feature user country table=attr
feature item item_id table=item_id
feature item creator table=attr
tower user mlp=32 cross=1 out=16
tower item mlp=32 cross=1 out=16
loss kind=softmax temperature=0.1 logq=on extra_negatives=8
dense_optimizer kind=adam lr=0.003
schedule warmup=5 min_lr_ratio=0.1
train batch=64 epochs=EPOCHS seed=5 EXTRA
)";
    text = absl::StrReplaceAll(text, {{"EPOCHS", absl::StrCat(epochs)}, {"EXTRA", train_extra}});
    EXPECT_TRUE(WriteFileAtomically(path, text).ok());
    return path;
  }
};

}  // namespace towerps::testing

#endif  // TOWERPS_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
