#include "ps/client.h"

#include <unistd.h>

#include <filesystem>
#include <numeric>
#include <vector>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/server.h"

namespace towerps::ps {
namespace {

constexpr int kDim = 4;
constexpr uint64_t kDense = 11;
constexpr uint64_t kJob = 0x5eed;

// Two parameter servers behind real RPC servers on 127.0.0.1, and a client.
class PsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int rank = 0; rank < 2; ++rank) {
      ParameterServerOptions options;
      options.rank = rank;
      options.num_servers = 2;
      sparse_emb::TableConfig users;
      users.name = "users";
      users.dim = kDim;
      users.optimizer.kind = sparse_emb::OptimizerKind::kSgd;
      sparse_emb::TableConfig items = users;
      items.name = "items";
      items.dim = 2 * kDim;
      options.tables = {users, items};
      options.dense_params = kDense;
      options.dense_optimizer.kind = models::DenseOptimizerKind::kSgd;
      options.job_id = kJob;
      options.checkpoint_root = root_;
      auto ps = ParameterServer::Create(options, nullptr);
      ASSERT_TRUE(ps.ok()) << ps.status();
      servers_.push_back(std::move(ps).value());
      ParameterServer* raw = servers_.back().get();
      auto rpc = net::RpcServer::Start(
          &ctx_, net::RpcServerOptions(),
          [raw](const net::Peer&, const net::wire::Envelope::Reader& r) { return raw->Handle(r); },
          nullptr);
      ASSERT_TRUE(rpc.ok()) << rpc.status();
      endpoints_.push_back((*rpc)->endpoint());
      rpcs_.push_back(std::move(rpc).value());
    }
    client_ = NewClient(7);
    ASSERT_NE(client_, nullptr);
  }

  // A client of both servers with id `client_id` (null on failure).
  std::unique_ptr<PsClient> NewClient(uint64_t client_id) {
    PsClientOptions options;
    options.server_endpoints = endpoints_;
    options.client_id = client_id;
    options.dense_params = kDense;
    auto client = PsClient::Create(&ctx_, options, *ShardMap::Balanced(64, 2));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  void TearDown() override { (void)RemoveAll(root_); }

  // The servers' checkpoint root (from their options, never from a message).
  const std::string root_ = std::filesystem::path(::testing::TempDir()) /
                            ("ps_client_ckpt_" + std::to_string(::getpid()));
  net::ZmqContext ctx_;
  std::vector<std::unique_ptr<ParameterServer>> servers_;
  std::vector<std::unique_ptr<net::RpcServer>> rpcs_;
  std::vector<std::string> endpoints_;
  std::unique_ptr<PsClient> client_;
};

TEST_F(PsClientTest, SparsePullPushAcrossShards) {
  std::vector<uint64_t> user_keys(100), item_keys = {5, 6};
  std::iota(user_keys.begin(), user_keys.end(), 1000);
  std::vector<float> users(100 * kDim), items(2 * 2 * kDim);
  std::vector<SparseSlice> slices = {{0, kDim, user_keys, users.data(), nullptr, 0},
                                     {1, 2 * kDim, item_keys, items.data(), nullptr, 0}};
  ASSERT_TRUE(client_->Pull(slices, 0, /*create=*/true).ok());
  // Keys really were spread over both servers, and each row came from its owner.
  EXPECT_GT(servers_[0]->table(0)->size(), 10);
  EXPECT_GT(servers_[1]->table(0)->size(), 10);
  EXPECT_EQ(servers_[0]->table(0)->size() + servers_[1]->table(0)->size(), 100);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> direct(kDim);
    int owner = client_->shard_map().ServerOf(user_keys[i]);
    servers_[owner]->table(0)->Lookup({&user_keys[i], 1}, direct.data());
    for (int d = 0; d < kDim; ++d) ASSERT_EQ(users[i * kDim + d], direct[d]) << i;
  }
  std::vector<float> grads(100 * kDim, 1.0f);
  std::vector<SparseSlice> push = {{0, kDim, user_keys, nullptr, grads.data(), 0.1f}};
  ASSERT_TRUE(client_->Push(push, 1).ok());
  std::vector<float> after(100 * kDim);
  std::vector<SparseSlice> again = {{0, kDim, user_keys, after.data(), nullptr, 0}};
  ASSERT_TRUE(client_->Pull(again, 1, true).ok());
  for (size_t j = 0; j < after.size(); ++j) EXPECT_NEAR(after[j], users[j] - 0.1f, 1e-6);
}

// Deferred push replies: the push returns before its reply, a later pull still sees
// it, and a push the servers refuse is reported by the next call.
TEST_F(PsClientTest, DeferredPushIsSeenByPullsAndItsFailureReported) {
  PsClientOptions options;
  options.server_endpoints = endpoints_;
  options.client_id = 8;
  options.dense_params = kDense;
  options.defer_push_replies = true;
  auto client = PsClient::Create(&ctx_, options, *ShardMap::Balanced(64, 2));
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<uint64_t> keys(50);
  std::iota(keys.begin(), keys.end(), 7000);
  std::vector<float> before(50 * kDim), after(50 * kDim), grads(50 * kDim, 1.0f);
  ASSERT_TRUE((*client)->Pull({{0, kDim, keys, before.data(), nullptr, 0}}, 0, true).ok());
  ASSERT_TRUE((*client)->Push({{0, kDim, keys, nullptr, grads.data(), 0.25f}}, 1).ok());
  ASSERT_TRUE((*client)->Pull({{0, kDim, keys, after.data(), nullptr, 0}}, 1, true).ok());
  for (size_t j = 0; j < after.size(); ++j) EXPECT_FLOAT_EQ(after[j], before[j] - 0.25f);
  // A zero learning rate is refused by the servers: not by Push, but by what follows.
  ASSERT_TRUE((*client)->Push({{0, kDim, keys, nullptr, grads.data(), 0.0f}}, 2).ok());
  EXPECT_EQ((*client)->Flush().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*client)->Flush().ok()) << "reported once";
}

TEST_F(PsClientTest, DenseAssignPullPush) {
  std::vector<float> params(kDense);
  EXPECT_EQ(*client_->PullDense(absl::MakeSpan(params)), -1);  // not initialised yet
  std::vector<float> init(kDense);
  std::iota(init.begin(), init.end(), 1.0f);
  ASSERT_TRUE(client_->AssignDense(init).ok());
  ASSERT_TRUE(client_->PullDense(absl::MakeSpan(params)).ok());
  EXPECT_EQ(params, init);
  std::vector<float> grads(kDense, 2.0f);
  ASSERT_TRUE(client_->PushDense(grads, 0.5f, 0, {}).ok());
  EXPECT_EQ(*client_->PullDense(absl::MakeSpan(params)), 1);
  for (uint64_t i = 0; i < kDense; ++i) EXPECT_FLOAT_EQ(params[i], init[i] - 1.0f);
  // Push and refresh in one round trip: both servers' blocks after the update.
  std::vector<float> refreshed(kDense);
  ASSERT_TRUE(client_->PushDense(grads, 0.5f, 0, absl::MakeSpan(refreshed)).ok());
  for (uint64_t i = 0; i < kDense; ++i) EXPECT_FLOAT_EQ(refreshed[i], init[i] - 2.0f);
  // One step's sparse rows and dense gradient together: both applied.
  std::vector<uint64_t> keys = {11, 12, 13};
  std::vector<float> rows(3 * kDim), after(3 * kDim), row_grads(3 * kDim, 1.0f);
  ASSERT_TRUE(client_->Pull({{0, kDim, keys, rows.data(), nullptr, 0}}, 0, true).ok());
  std::vector<SparseSlice> slices = {{0, kDim, keys, nullptr, row_grads.data(), 0.5f}};
  StepUpdate update;
  update.sparse = slices;
  update.dense_grads = grads;
  update.dense_learning_rate = 0.5f;
  update.refreshed = absl::MakeSpan(refreshed);
  ASSERT_TRUE(client_->Update(update, 1).ok());
  for (uint64_t i = 0; i < kDense; ++i) EXPECT_FLOAT_EQ(refreshed[i], init[i] - 3.0f);
  ASSERT_TRUE(client_->Pull({{0, kDim, keys, after.data(), nullptr, 0}}, 1, true).ok());
  for (size_t j = 0; j < after.size(); ++j) EXPECT_FLOAT_EQ(after[j], rows[j] - 0.5f);
  EXPECT_EQ(client_->PullDense(absl::MakeSpan(params.data(), 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PsClientTest, CheckpointAndRestoreThroughRpc) {
  ASSERT_TRUE(RemoveAll(root_).ok());
  const std::string dir = CheckpointDir(root_, 10);
  std::vector<uint64_t> keys = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> rows(keys.size() * kDim);
  std::vector<SparseSlice> slices = {{0, kDim, keys, rows.data(), nullptr, 0}};
  ASSERT_TRUE(client_->Pull(slices, 0, true).ok());
  ASSERT_TRUE(client_->AssignDense(std::vector<float>(kDense, 3.0f)).ok());
  auto files = client_->Checkpoint(10, kJob, /*restore=*/false);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 6u);  // 2 servers x (2 tables + dense)
  CheckpointManifest manifest;
  manifest.job_id = kJob;
  manifest.step = 10;
  manifest.num_servers = 2;
  manifest.files = *files;
  ASSERT_TRUE(WriteManifest(dir, manifest).ok());
  auto verified = VerifyCheckpoint(dir);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->step, 10);
  EXPECT_EQ(verified->files.size(), 6u);
  std::vector<float> grads(keys.size() * kDim, 1.0f);
  std::vector<SparseSlice> push = {{0, kDim, keys, nullptr, grads.data(), 1.0f}};
  ASSERT_TRUE(client_->Push(push, 11).ok());
  // Another job's order, and a step with no checkpoint, are refused.
  EXPECT_EQ(client_->Checkpoint(10, kJob + 1, true).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->Checkpoint(11, kJob, true).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(client_->Checkpoint(10, kJob, /*restore=*/true).ok());
  std::vector<float> restored(keys.size() * kDim);
  std::vector<SparseSlice> check = {{0, kDim, keys, restored.data(), nullptr, 0}};
  ASSERT_TRUE(client_->Pull(check, 12, false).ok());
  EXPECT_EQ(restored, rows);  // the push after the checkpoint is gone

  // A client that pushed before the restore is refused (its pushes were computed on
  // the replaced state); workers reconnect with a new client id.
  EXPECT_EQ(client_->Push(push, 13).code(), absl::StatusCode::kUnavailable);
  client_ = NewClient(9);
  ASSERT_NE(client_, nullptr);

  // Incremental on the restored step 10: refused on another base (the code the
  // scheduler falls back to a full checkpoint on), written on 10, restored as a chain.
  ASSERT_TRUE(client_->Push(push, 13).ok());
  std::vector<float> at20(keys.size() * kDim);
  std::vector<SparseSlice> read20 = {{0, kDim, keys, at20.data(), nullptr, 0}};
  ASSERT_TRUE(client_->Pull(read20, 13, false).ok());
  EXPECT_EQ(client_->Checkpoint(20, kJob, false, /*base_step=*/15).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto delta = client_->Checkpoint(20, kJob, false, /*base_step=*/10);
  ASSERT_TRUE(delta.ok()) << delta.status();
  manifest.step = 20;
  manifest.base_step = 10;
  manifest.files = *delta;
  ASSERT_TRUE(WriteManifest(CheckpointDir(root_, 20), manifest).ok());
  ASSERT_TRUE(client_->Push(push, 14).ok());
  ASSERT_TRUE(client_->Checkpoint(20, kJob, /*restore=*/true).ok());
  ASSERT_TRUE(client_->Pull(check, 15, false).ok());
  EXPECT_EQ(restored, at20);
}

}  // namespace
}  // namespace towerps::ps
