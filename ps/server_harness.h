// Test support for ps tests: a ParameterServer driven through the codec, as the RPC
// server drives it. Thread-compatible.
#ifndef TOWERPS_PS_SERVER_HARNESS_H_
#define TOWERPS_PS_SERVER_HARNESS_H_

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ps/server.h"

namespace towerps::ps::harness {

using net::wire::Envelope;

inline constexpr int kDim = 8;

inline ParameterServerOptions Options() {
  ParameterServerOptions o;
  sparse_emb::TableConfig table;
  table.name = "items";
  table.dim = kDim;
  table.optimizer.kind = sparse_emb::OptimizerKind::kSgd;
  table.initializer.seed = 11;
  table.num_stripes = 4;
  o.tables = {table};
  o.dense_params = 10;
  o.dense_optimizer.kind = models::DenseOptimizerKind::kSgd;
  return o;
}

template <typename T>
inline capnp::Data::Reader Blob(const std::vector<T>& v) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.data()), v.size() * sizeof(T));
}

// Builds a request, runs it through the codec and the server, decodes the reply.
class ServerHarness {
 public:
  explicit ServerHarness(const ParameterServerOptions& options) {
    auto server = ParameterServer::Create(options, &metrics_);
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  absl::StatusOr<std::unique_ptr<net::DecodedEnvelope>> Call(
      const std::function<void(Envelope::Body::Builder)>& fill) {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<Envelope>();
    net::InitEnvelope(envelope, "test", ++request_id_);
    fill(envelope.getBody());
    frames_.push_back(net::EncodeMessage(message));
    auto request = net::DecodeEnvelope(frames_.back(), net::CodecOptions());
    EXPECT_TRUE(request.ok());
    auto reply = server_->Handle((*request)->envelope());
    if (!reply.ok()) return reply.status();
    replies_.push_back(std::move(reply).value());
    return net::DecodeEnvelope(replies_.back(), net::CodecOptions());
  }

  std::vector<float> Pull(const std::vector<uint64_t>& keys, bool create = true) {
    auto reply = Call([&](Envelope::Body::Builder b) {
      auto pull = b.initPullSparse();
      auto part = pull.initTables(1)[0];
      part.setTable(0);
      part.setKeys(Blob(keys));
      pull.setCreate(create);
    });
    EXPECT_TRUE(reply.ok()) << reply.status();
    auto rows = (*reply)->envelope().getBody().getPullSparseReply().getTables()[0].getRows();
    std::vector<float> out(rows.size() / sizeof(float));
    std::memcpy(out.data(), rows.begin(), rows.size());
    return out;
  }

  absl::StatusOr<bool> Push(const std::vector<uint64_t>& keys, const std::vector<float>& grads,
                            uint64_t client, uint64_t seq, uint32_t table = 0) {
    auto reply = Call([&](Envelope::Body::Builder b) {
      auto push = b.initPushSparse();
      auto part = push.initTables(1)[0];
      part.setTable(table);
      part.setKeys(Blob(keys));
      part.setGrads(Blob(grads));
      part.setLearningRate(0.5f);
      push.setClientId(client);
      push.setSeq(seq);
    });
    if (!reply.ok()) return reply.status();
    return (*reply)->envelope().getBody().getPushReply().getDuplicate();
  }

  ParameterServer* server() { return server_.get(); }
  MetricsRegistry* metrics() { return &metrics_; }

 private:
  MetricsRegistry metrics_;
  std::unique_ptr<ParameterServer> server_;
  uint64_t request_id_ = 0;
  std::vector<std::string> frames_;
  std::vector<std::string> replies_;
};

}  // namespace towerps::ps::harness

#endif  // TOWERPS_PS_SERVER_HARNESS_H_
