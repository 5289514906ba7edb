#include "ps/client.h"

#include <capnp/message.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::ps {
namespace {

using net::wire::Envelope;

template <typename T>
capnp::Data::Reader Blob(const T* data, size_t n) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data), n * sizeof(T));
}

absl::Status FirstError(const std::vector<absl::StatusOr<net::Message>>& replies) {
  for (const auto& reply : replies) {
    if (!reply.ok()) return reply.status();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PsClientOptions::Validate() const {
  if (server_endpoints.empty()) return absl::InvalidArgumentError("no server endpoints");
  for (const auto& e : server_endpoints) {
    if (e.empty()) return absl::InvalidArgumentError("empty server endpoint");
  }
  net::RpcClientOptions probe = rpc;
  probe.endpoint = server_endpoints[0];
  return probe.Validate();
}

PsClient::PsClient(const PsClientOptions& options, ShardMap shard_map)
    : options_(options), shard_map_(std::move(shard_map)) {}

absl::StatusOr<std::unique_ptr<PsClient>> PsClient::Create(const net::ZmqContext* ctx,
                                                           const PsClientOptions& options,
                                                           ShardMap shard_map) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if (shard_map.num_servers() != static_cast<int>(options.server_endpoints.size())) {
    return absl::InvalidArgumentError(absl::StrCat("shard map has ", shard_map.num_servers(),
                                                   " servers, endpoints list ",
                                                   options.server_endpoints.size()));
  }
  std::unique_ptr<PsClient> client(new PsClient(options, std::move(shard_map)));
  for (const std::string& endpoint : options.server_endpoints) {
    net::RpcClientOptions rpc = options.rpc;
    rpc.endpoint = endpoint;
    TOWERPS_ASSIGN_OR_RETURN(auto c, net::RpcClient::Connect(ctx, rpc));
    client->clients_.push_back(std::move(c));
  }
  return client;
}

template <typename Fill>
absl::Status PsClient::SendTo(int server, bool retry, Fill&& fill, Waits* waits) {
  net::RpcClient* client = clients_[server].get();
  const uint64_t id = client->NextRequestId();
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<Envelope>();
  net::InitEnvelope(envelope, client->options().name, id);
  fill(envelope.getBody());
  TOWERPS_RETURN_IF_ERROR(client->Send(id, net::EncodeMessage(message), retry));
  waits->push_back({client, id});
  return absl::OkStatus();
}

absl::Status PsClient::Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) {
  positions_.resize(slices.size());
  Waits waits;
  std::vector<std::pair<size_t, int>> owners;  // (slice, server) per wait
  for (size_t i = 0; i < slices.size(); ++i) {
    const SparseSlice& slice = slices[i];
    shard_map_.GroupByServer(slice.keys, &positions_[i]);
    for (int s = 0; s < num_servers(); ++s) {
      const auto& pos = positions_[i][s];
      if (pos.empty()) continue;
      key_scratch_.resize(pos.size());
      for (size_t j = 0; j < pos.size(); ++j) key_scratch_[j] = slice.keys[pos[j]];
      TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, [&](Envelope::Body::Builder body) {
        auto pull = body.initPullSparse();
        pull.setTable(slice.table);
        pull.setKeys(Blob(key_scratch_.data(), key_scratch_.size()));
        pull.setCreate(create);
        pull.setStep(step);
      }, &waits));
      owners.push_back({i, s});
    }
  }
  std::vector<absl::StatusOr<net::Message>> replies = net::RpcClient::WaitAll(waits);
  TOWERPS_RETURN_IF_ERROR(FirstError(replies));
  for (size_t w = 0; w < replies.size(); ++w) {
    const auto [i, s] = owners[w];
    const SparseSlice& slice = slices[i];
    const auto& pos = positions_[i][s];
    auto body = replies[w]->envelope().getBody();
    if (body.which() != Envelope::Body::PULL_SPARSE_REPLY) {
      return absl::DataLossError("pull answered with another message kind");
    }
    auto reply = body.getPullSparseReply();
    auto rows = reply.getRows();
    if (static_cast<int>(reply.getDim()) != slice.dim ||
        rows.size() != pos.size() * slice.dim * sizeof(float)) {
      return absl::DataLossError(absl::StrCat("pull reply for table ", slice.table, " has dim ",
                                              reply.getDim(), " and ", rows.size(),
                                              " bytes; expected dim ", slice.dim, " x ",
                                              pos.size(), " rows"));
    }
    const float* src = reinterpret_cast<const float*>(rows.begin());
    const size_t row_bytes = slice.dim * sizeof(float);
    for (size_t j = 0; j < pos.size(); ++j) {
      std::memcpy(slice.out + static_cast<size_t>(pos[j]) * slice.dim, src + j * slice.dim,
                  row_bytes);
    }
  }
  return absl::OkStatus();
}

absl::Status PsClient::Push(absl::Span<const SparseSlice> slices, int64_t step) {
  positions_.resize(slices.size());
  Waits waits;
  for (size_t i = 0; i < slices.size(); ++i) {
    const SparseSlice& slice = slices[i];
    shard_map_.GroupByServer(slice.keys, &positions_[i]);
    for (int s = 0; s < num_servers(); ++s) {
      const auto& pos = positions_[i][s];
      if (pos.empty()) continue;
      key_scratch_.resize(pos.size());
      grad_scratch_.resize(pos.size() * slice.dim);
      for (size_t j = 0; j < pos.size(); ++j) {
        key_scratch_[j] = slice.keys[pos[j]];
        std::memcpy(grad_scratch_.data() + j * slice.dim,
                    slice.grads + static_cast<size_t>(pos[j]) * slice.dim,
                    slice.dim * sizeof(float));
      }
      TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, [&](Envelope::Body::Builder body) {
        auto push = body.initPushSparse();
        push.setTable(slice.table);
        push.setKeys(Blob(key_scratch_.data(), key_scratch_.size()));
        push.setGrads(Blob(grad_scratch_.data(), grad_scratch_.size()));
        push.setLearningRate(slice.learning_rate);
        push.setStep(step);
        push.setClientId(options_.client_id);
        push.setSeq(NextSeq());
      }, &waits));
    }
  }
  return FirstError(net::RpcClient::WaitAll(waits));
}

absl::StatusOr<int64_t> PsClient::PullDense(absl::Span<float> params) {
  if (params.size() != options_.dense_params) {
    return absl::InvalidArgumentError(absl::StrCat("dense pull into ", params.size(),
                                                   " floats; the model has ",
                                                   options_.dense_params));
  }
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true,
                                   [](Envelope::Body::Builder body) { body.initPullDense(); },
                                   &waits));
  }
  std::vector<absl::StatusOr<net::Message>> replies = net::RpcClient::WaitAll(waits);
  TOWERPS_RETURN_IF_ERROR(FirstError(replies));
  int64_t min_version = INT64_MAX;
  for (int s = 0; s < num_servers(); ++s) {
    auto body = replies[s]->envelope().getBody();
    if (body.which() != Envelope::Body::PULL_DENSE_REPLY) {
      return absl::DataLossError("dense pull answered with another message kind");
    }
    auto reply = body.getPullDenseReply();
    auto [begin, end] = shard_map_.DenseBlock(s, options_.dense_params);
    if (reply.getOffset() != begin || reply.getValues().size() != (end - begin) * sizeof(float)) {
      return absl::DataLossError(absl::StrCat("server ", s, " holds dense block at ",
                                              reply.getOffset(), " of ",
                                              reply.getValues().size() / sizeof(float),
                                              " floats; expected ", begin, " of ", end - begin));
    }
    std::memcpy(params.data() + begin, reply.getValues().begin(), reply.getValues().size());
    min_version = std::min(min_version, reply.getVersion());
  }
  return min_version;
}

absl::Status PsClient::PushDenseBlocks(absl::Span<const float> values, bool assign,
                                       float learning_rate, int64_t step) {
  if (values.size() != options_.dense_params) {
    return absl::InvalidArgumentError(absl::StrCat("dense push of ", values.size(),
                                                   " floats; the model has ",
                                                   options_.dense_params));
  }
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    auto [begin, end] = shard_map_.DenseBlock(s, options_.dense_params);
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, [&](Envelope::Body::Builder body) {
      auto push = body.initPushDense();
      push.setGrads(Blob(values.data() + begin, end - begin));
      push.setAssign(assign);
      if (!assign) {
        push.setLearningRate(learning_rate);
        push.setStep(step);
        push.setClientId(options_.client_id);
        push.setSeq(NextSeq());
      }
    }, &waits));
  }
  return FirstError(net::RpcClient::WaitAll(waits));
}

absl::Status PsClient::PushDense(absl::Span<const float> grads, float learning_rate,
                                 int64_t step) {
  return PushDenseBlocks(grads, /*assign=*/false, learning_rate, step);
}

absl::Status PsClient::AssignDense(absl::Span<const float> values) {
  return PushDenseBlocks(values, /*assign=*/true, 0, 0);
}

absl::StatusOr<std::vector<CheckpointFile>> PsClient::Checkpoint(const std::string& dir,
                                                                 int64_t step, bool restore) {
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    // Not retried: a checkpoint that timed out is re-run whole by the scheduler.
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/false, [&](Envelope::Body::Builder body) {
      auto checkpoint = body.initCheckpoint();
      checkpoint.setDir(dir.c_str());
      checkpoint.setStep(step);
      checkpoint.setRestore(restore);
    }, &waits));
  }
  std::vector<absl::StatusOr<net::Message>> replies = net::RpcClient::WaitAll(waits);
  TOWERPS_RETURN_IF_ERROR(FirstError(replies));
  std::vector<CheckpointFile> files;
  for (const auto& reply : replies) {
    auto r = reply->envelope().getBody().getCheckpointReply();
    if (r.getFileBytes().size() != r.getFiles().size() ||
        r.getChecksums().size() != r.getFiles().size()) {
      return absl::DataLossError("checkpoint reply lists are not parallel");
    }
    for (unsigned i = 0; i < r.getFiles().size(); ++i) {
      files.push_back({r.getFiles()[i].cStr(), r.getFileBytes()[i], r.getChecksums()[i]});
    }
  }
  return files;
}

}  // namespace towerps::ps
