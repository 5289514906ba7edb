#include "ps/server.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/transport.h"
#include "ps/server_harness.h"

namespace towerps::ps {
namespace {

using harness::Blob;
using harness::kDim;
using harness::Options;
using harness::ServerHarness;
using net::wire::Envelope;

TEST(ParameterServerTest, PullCreatesDeterministicRows) {
  ServerHarness a(Options());
  ServerHarness b(Options());
  std::vector<float> first = a.Pull({1, 2, 3});
  ASSERT_EQ(first.size(), 3u * kDim);
  EXPECT_EQ(a.Pull({1, 2, 3}), first);
  EXPECT_EQ(b.Pull({1, 2, 3}), first);  // another server, same seed: same rows
  EXPECT_NE(std::vector<float>(first.begin(), first.begin() + kDim),
            std::vector<float>(first.begin() + kDim, first.begin() + 2 * kDim));
  std::vector<float> lookup = a.Pull({99}, /*create=*/false);
  EXPECT_EQ(lookup, std::vector<float>(kDim, 0.0f));
  EXPECT_EQ(a.server()->table(0)->size(), 3);
}

TEST(ParameterServerTest, RetriedPushIsAppliedOnce) {
  ServerHarness h(Options());
  std::vector<float> before = h.Pull({7});
  std::vector<float> grads(kDim, 1.0f);
  EXPECT_EQ(*h.Push({7}, grads, /*client=*/42, /*seq=*/1), false);
  EXPECT_EQ(*h.Push({7}, grads, 42, 1), true);  // the retry
  std::vector<float> after = h.Pull({7});
  for (int d = 0; d < kDim; ++d) EXPECT_FLOAT_EQ(after[d], before[d] - 0.5f);  // SGD, lr 0.5
  // Out-of-order sequence numbers are each applied once.
  EXPECT_EQ(*h.Push({7}, grads, 42, 3), false);
  EXPECT_EQ(*h.Push({7}, grads, 42, 2), false);
  EXPECT_EQ(*h.Push({7}, grads, 42, 3), true);
  EXPECT_EQ(*h.Push({7}, grads, 43, 3), false);  // another client
  std::vector<float> last = h.Pull({7});
  for (int d = 0; d < kDim; ++d) EXPECT_FLOAT_EQ(last[d], before[d] - 2.0f);
}

TEST(ParameterServerTest, BadRequestsAreRefusedAndChangeNothing) {
  ServerHarness h(Options());
  std::vector<float> before = h.Pull({5});
  std::vector<float> grads(kDim, 1.0f);
  EXPECT_EQ(h.Push({5}, grads, 1, 1, /*table=*/3).status().code(),
            absl::StatusCode::kInvalidArgument);  // no such table
  EXPECT_EQ(h.Push({5}, std::vector<float>(kDim - 1), 1, 2).status().code(),
            absl::StatusCode::kInvalidArgument);  // dim mismatch
  std::vector<float> nan_grads(kDim, std::nanf(""));
  EXPECT_EQ(h.Push({5}, nan_grads, 1, 3).status().code(), absl::StatusCode::kInvalidArgument);
  auto odd_keys = h.Call([](Envelope::Body::Builder b) {
    auto part = b.initPullSparse().initTables(1)[0];
    std::string seven(7, 'x');
    part.setKeys(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(seven.data()), 7));
  });
  EXPECT_EQ(odd_keys.status().code(), absl::StatusCode::kInvalidArgument);
  auto wrong_kind = h.Call([](Envelope::Body::Builder b) { b.initClock(); });
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.Pull({5}), before);  // still serving, nothing applied
}

// Two tables in one request: both answered; a push with one bad part applies none.
// A finite but huge gradient used to overflow a row-wise Adagrad accumulator to Inf,
// after which every push divided by it and changed nothing: the row was frozen.
TEST(ParameterServerTest, HugeGradientIsRefusedAndTheRowStillTrains) {
  ParameterServerOptions options = Options();
  options.tables[0].optimizer.kind = sparse_emb::OptimizerKind::kRowwiseAdagrad;
  ServerHarness h(options);
  const std::vector<float> before = h.Pull({5});
  auto refused = h.Push({5}, std::vector<float>(kDim, 3e38f), 1, 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.Pull({5}), before);  // nothing applied
  EXPECT_EQ(h.metrics()->GetCounter("towerps_ps_refused_pushes_total")->value(), 1);
  ASSERT_TRUE(h.Push({5}, std::vector<float>(kDim, 1.0f), 1, 2).ok());
  const std::vector<float> once = h.Pull({5});
  EXPECT_NE(once, before);
  ASSERT_TRUE(h.Push({5}, std::vector<float>(kDim, 1.0f), 1, 3).ok());
  const std::vector<float> twice = h.Pull({5});
  for (int i = 0; i < kDim; ++i) {
    EXPECT_TRUE(std::isfinite(twice[i]));
    EXPECT_LT(twice[i], once[i]) << "coordinate " << i << " no longer trains";
  }
  float state = 0;
  ASSERT_TRUE(h.server()->table(0)->ReadOptimizerState(5, &state));
  EXPECT_TRUE(std::isfinite(state));
}

TEST(ParameterServerTest, MultiTableRequestsAreAppliedWhole) {
  ParameterServerOptions options = Options();
  sparse_emb::TableConfig users = options.tables[0];
  users.name = "users";
  users.dim = 4;
  options.tables.push_back(users);
  ServerHarness h(options);
  std::vector<uint64_t> item_keys = {1, 2}, user_keys = {3};
  auto pull = [&] {
    auto reply = h.Call([&](Envelope::Body::Builder b) {
      auto body = b.initPullSparse();
      body.setCreate(true);
      auto parts = body.initTables(2);
      parts[0].setTable(1);
      parts[0].setKeys(Blob(user_keys));
      parts[1].setTable(0);
      parts[1].setKeys(Blob(item_keys));
    });
    EXPECT_TRUE(reply.ok()) << reply.status();
    auto tables = (*reply)->envelope().getBody().getPullSparseReply().getTables();
    EXPECT_EQ(tables.size(), 2u);
    EXPECT_EQ(tables[0].getDim(), 4u);
    EXPECT_EQ(tables[0].getRows().size(), 1 * 4 * sizeof(float));
    EXPECT_EQ(tables[1].getDim(), static_cast<uint32_t>(kDim));
    std::vector<float> out(2 * kDim);
    std::memcpy(out.data(), tables[1].getRows().begin(), out.size() * sizeof(float));
    return out;
  };
  const std::vector<float> before = pull();
  EXPECT_EQ(before, h.Pull(item_keys));  // the same rows as a one-table pull
  std::vector<float> item_grads(2 * kDim, 1.0f), user_grads(4, 1.0f);
  auto push = [&](uint32_t second_table, float second_lr, uint64_t seq) {
    return h.Call([&](Envelope::Body::Builder b) {
      auto body = b.initPushSparse();
      body.setClientId(9);
      body.setSeq(seq);
      auto parts = body.initTables(2);
      parts[0].setTable(0);
      parts[0].setKeys(Blob(item_keys));
      parts[0].setGrads(Blob(item_grads));
      parts[0].setLearningRate(0.5f);
      parts[1].setTable(second_table);
      parts[1].setKeys(Blob(user_keys));
      parts[1].setGrads(Blob(user_grads));
      parts[1].setLearningRate(second_lr);
    });
  };
  EXPECT_EQ(push(1, -1.0f, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(push(0, 0.5f, 2).status().code(), absl::StatusCode::kInvalidArgument)
      << "a table twice in one request";
  EXPECT_EQ(pull(), before) << "a refused push applied nothing";
  ASSERT_TRUE(push(1, 0.5f, 3).ok());
  const std::vector<float> after = pull();
  for (size_t j = 0; j < after.size(); ++j) EXPECT_FLOAT_EQ(after[j], before[j] - 0.5f);
}

TEST(ParameterServerTest, DenseAssignPullPush) {
  ParameterServerOptions options = Options();
  options.num_servers = 2;
  options.rank = 1;  // holds floats [5, 10)
  ServerHarness h(options);
  std::vector<float> init = {1, 2, 3, 4, 5};
  auto assign = [&](const std::vector<float>& values) {
    return h.Call([&](Envelope::Body::Builder b) {
      auto push = b.initPushDense();
      push.setGrads(Blob(values));
      push.setAssign(true);
    });
  };
  ASSERT_TRUE(assign(init).ok());
  auto second = assign({9, 9, 9, 9, 9});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->envelope().getBody().getPushReply().getDuplicate());
  // A dense update rides in a push (here with no sparse tables).
  auto dense_push = [&](uint64_t seq, bool pull) {
    return h.Call([&](Envelope::Body::Builder b) {
      auto push = b.initPushSparse();
      push.setClientId(1);
      push.setSeq(seq);
      auto p = push.initDense();
      std::vector<float> g = {1, 1, 1, 1, 1};
      p.setGrads(Blob(g));
      p.setLearningRate(0.25f);
      p.setPull(pull);
    });
  };
  auto push = dense_push(1, false);
  ASSERT_TRUE(push.ok()) << push.status();
  auto pulled = h.Call([](Envelope::Body::Builder b) { b.initPullDense(); });
  ASSERT_TRUE(pulled.ok());
  auto reply = (*pulled)->envelope().getBody().getPullDenseReply();
  EXPECT_EQ(reply.getOffset(), 5u);
  EXPECT_EQ(reply.getVersion(), 1);
  std::vector<float> values(5);
  std::memcpy(values.data(), reply.getValues().begin(), 5 * sizeof(float));
  EXPECT_EQ(values, (std::vector<float>{0.75f, 1.75f, 2.75f, 3.75f, 4.75f}));
  // A push that asks for the block back gets it after its own update.
  auto push_pull = dense_push(2, true);
  ASSERT_TRUE(push_pull.ok()) << push_pull.status();
  auto dense = (*push_pull)->envelope().getBody().getPushReply().getDense();
  EXPECT_EQ(dense.getOffset(), 5u);
  EXPECT_EQ(dense.getVersion(), 2);
  std::memcpy(values.data(), dense.getValues().begin(), 5 * sizeof(float));
  EXPECT_EQ(values, (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f, 4.5f}));
  // The retry of a push-and-pull is not applied again but still returns the block.
  auto retried = dense_push(2, true);
  ASSERT_TRUE(retried.ok());
  EXPECT_TRUE((*retried)->envelope().getBody().getPushReply().getDuplicate());
  EXPECT_EQ((*retried)->envelope().getBody().getPushReply().getDense().getVersion(), 2);
  auto wrong = h.Call([&](Envelope::Body::Builder b) {
    std::vector<float> g = {1, 1};
    auto p = b.initPushSparse().initDense();
    p.setGrads(Blob(g));
    p.setLearningRate(0.25f);
  });
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  auto not_assign = h.Call([&](Envelope::Body::Builder b) {
    b.initPushDense().setGrads(Blob(init));  // standalone without assign
  });
  EXPECT_EQ(not_assign.status().code(), absl::StatusCode::kInvalidArgument);
}

// The reply to a pull of max_keys_per_request keys of dim 32 (2^22 * 128 bytes) is one
// byte over Cap'n Proto's blob limit: the request is refused before any row is read,
// and the server, behind the real transport, keeps serving.
TEST(ParameterServerTest, PullWhoseReplyCannotBeCarriedIsRefused) {
  ParameterServerOptions options = Options();
  options.tables[0].dim = 32;
  sparse_emb::TableConfig wide = options.tables[0];
  wide.name = "wide";
  wide.dim = 64;
  options.tables.push_back(wide);
  MetricsRegistry metrics;
  auto server = ParameterServer::Create(options, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  net::ZmqContext ctx;
  net::RpcServerOptions rpc;
  rpc.handler_threads = 0;
  ParameterServer* raw = server->get();
  auto rpc_server = net::RpcServer::Start(
      &ctx, rpc, [raw](const net::Peer&, const Envelope::Reader& r) { return raw->Handle(r); },
      &metrics);
  ASSERT_TRUE(rpc_server.ok()) << rpc_server.status();
  net::RpcClientOptions client_options;
  client_options.endpoint = (*rpc_server)->endpoint();
  client_options.timeout_ms = 30000;
  client_options.max_attempts = 1;
  auto client = net::RpcClient::Connect(&ctx, client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto pull = [&](uint32_t table, uint64_t n) {
    std::vector<uint64_t> keys(n);
    for (uint64_t i = 0; i < n; ++i) keys[i] = i;
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<Envelope>();
    const uint64_t id = (*client)->NextRequestId();
    net::InitEnvelope(envelope, "test", id);
    auto part = envelope.getBody().initPullSparse().initTables(1)[0];
    part.setTable(table);
    part.setKeys(Blob(keys));
    envelope.getBody().getPullSparse().setCreate(true);
    return (*client)->Call(id, net::EncodeMessage(message), /*retry=*/false);
  };
  auto dim32 = pull(0, options.max_keys_per_request);
  EXPECT_EQ(dim32.status().code(), absl::StatusCode::kInvalidArgument) << dim32.status();
  auto dim64 = pull(1, options.max_keys_per_request / 2);
  EXPECT_EQ(dim64.status().code(), absl::StatusCode::kInvalidArgument) << dim64.status();
  EXPECT_EQ((*server)->table(0)->size(), 0);  // nothing was created
  auto small = pull(1, 3);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->envelope().getBody().getPullSparseReply().getTables()[0].getRows().size(),
            3u * 64 * sizeof(float));
}

// The reply limit over all tables of one pull.
TEST(ParameterServerTest, PullOverTheReplyLimitIsRefused) {
  ParameterServerOptions options = Options();
  options.max_reply_bytes = 10 * kDim * sizeof(float);
  ServerHarness h(options);
  EXPECT_EQ(h.Pull({1, 2, 3}).size(), 3u * kDim);
  auto reply = h.Call([](Envelope::Body::Builder b) {
    std::vector<uint64_t> keys(11);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = i;
    auto part = b.initPullSparse().initTables(1)[0];
    part.setKeys(Blob(keys));
  });
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
}

// A dense block that no message could carry is refused when the server is made.
TEST(ParameterServerTest, DenseBlockTooBigForOneMessageIsRefused) {
  ParameterServerOptions options = Options();
  options.dense_params = net::kMaxBlobBytes / sizeof(float) + 1;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.num_servers = 2;
  EXPECT_TRUE(options.Validate().ok());
}

}  // namespace
}  // namespace towerps::ps
