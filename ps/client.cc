#include "ps/client.h"

#include <capnp/message.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::ps {
namespace {

using net::wire::Envelope;

// Calls fn(j, p, n) for each run of consecutive positions: pos[j + i] == p + i for
// i < n. Rows move one run per memcpy (with one server, a slice is a single run).
template <typename Fn>
void ForEachRun(const std::vector<uint32_t>& pos, Fn&& fn) {
  for (size_t j = 0; j < pos.size();) {
    size_t n = 1;
    while (j + n < pos.size() && pos[j + n] == pos[j] + n) ++n;
    fn(j, static_cast<size_t>(pos[j]), n);
    j += n;
  }
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
  if (rpc.curve.enabled() && server_public_keys.size() != server_endpoints.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CURVE needs one server public key per server: ", server_public_keys.size(), " for ",
        server_endpoints.size(), " servers"));
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
  for (size_t s = 0; s < options.server_endpoints.size(); ++s) {
    net::RpcClientOptions rpc = options.rpc;
    rpc.endpoint = options.server_endpoints[s];
    if (rpc.curve.enabled()) rpc.curve.server_public_key = options.server_public_keys[s];
    TOWERPS_ASSIGN_OR_RETURN(auto c, net::RpcClient::Connect(ctx, rpc));
    client->clients_.push_back(std::move(c));
  }
  return client;
}

template <typename Fill>
absl::Status PsClient::SendTo(int server, bool retry, size_t payload_bytes, Fill&& fill,
                              Waits* waits) {
  net::RpcClient* client = clients_[server].get();
  const uint64_t id = client->NextRequestId();
  net::FrameBuilder message(payload_bytes);
  auto envelope = message.initRoot<Envelope>();
  net::InitEnvelope(envelope, client->options().name, id);
  fill(envelope.getBody());
  TOWERPS_RETURN_IF_ERROR(client->Send(id, message.Finish(), retry));
  waits->push_back({client, id});
  return absl::OkStatus();
}

void PsClient::GroupSlices(absl::Span<const SparseSlice> slices) {
  positions_.resize(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    shard_map_.GroupByServer(slices[i].keys, &positions_[i]);
  }
}

template <typename Fill>
absl::Status PsClient::SendParts(absl::Span<const SparseSlice> slices, bool with_grads,
                                 size_t dense_bytes_per_server, Fill&& fill, Waits* waits,
                                 std::vector<int>* servers) {
  for (int s = 0; s < num_servers(); ++s) {
    unsigned parts = 0;
    size_t payload = 0;
    for (size_t i = 0; i < slices.size(); ++i) {
      const size_t n = positions_[i][s].size();
      if (n == 0) continue;
      ++parts;
      payload += n * (sizeof(uint64_t) + (with_grads ? slices[i].dim * sizeof(float) : 0));
    }
    if (parts == 0 && dense_bytes_per_server == 0) continue;
    payload += dense_bytes_per_server;
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, payload, [&](Envelope::Body::Builder body) {
      capnp::List<net::wire::TableKeys>::Builder list = fill(s, body, parts);
      unsigned k = 0;
      for (size_t i = 0; i < slices.size(); ++i) {
        const SparseSlice& slice = slices[i];
        const auto& pos = positions_[i][s];
        if (pos.empty()) continue;
        auto part = list[k++];
        part.setTable(slice.table);
        // Keys (and gradients) are gathered straight into the request frame.
        kj::byte* keys = part.initKeys(pos.size() * sizeof(uint64_t)).begin();
        for (size_t j = 0; j < pos.size(); ++j) {
          std::memcpy(keys + j * sizeof(uint64_t), &slice.keys[pos[j]], sizeof(uint64_t));
        }
        if (!with_grads) continue;
        part.setLearningRate(slice.learning_rate);
        const size_t row_bytes = slice.dim * sizeof(float);
        kj::byte* grads = part.initGrads(pos.size() * row_bytes).begin();
        ForEachRun(pos, [&](size_t j, size_t p, size_t n) {
          std::memcpy(grads + j * row_bytes, slice.grads + p * slice.dim, n * row_bytes);
        });
      }
    }, waits));
    servers->push_back(s);
  }
  return absl::OkStatus();
}

absl::Status PsClient::Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) {
  TOWERPS_RETURN_IF_ERROR(Flush());  // reads see this client's earlier pushes
  GroupSlices(slices);
  Waits waits;
  std::vector<int> servers;
  TOWERPS_RETURN_IF_ERROR(SendParts(slices, /*with_grads=*/false, /*dense_bytes_per_server=*/0,
                                    [&](int, Envelope::Body::Builder body, unsigned parts) {
    auto pull = body.initPullSparse();
    pull.setCreate(create);
    pull.setStep(step);
    return pull.initTables(parts);
  }, &waits, &servers));
  std::vector<absl::StatusOr<net::Message>> replies = net::RpcClient::WaitAll(waits);
  TOWERPS_RETURN_IF_ERROR(FirstError(replies));
  for (size_t w = 0; w < replies.size(); ++w) {
    const int s = servers[w];
    auto body = replies[w]->envelope().getBody();
    if (body.which() != Envelope::Body::PULL_SPARSE_REPLY) {
      return absl::DataLossError("pull answered with another message kind");
    }
    auto tables = body.getPullSparseReply().getTables();
    unsigned k = 0;
    for (size_t i = 0; i < slices.size(); ++i) {
      const SparseSlice& slice = slices[i];
      const auto& pos = positions_[i][s];
      if (pos.empty()) continue;
      if (k >= tables.size()) return absl::DataLossError("pull reply misses tables");
      auto part = tables[k++];
      auto rows = part.getRows();
      if (static_cast<int>(part.getDim()) != slice.dim ||
          rows.size() != pos.size() * slice.dim * sizeof(float)) {
        return absl::DataLossError(absl::StrCat("pull reply for table ", slice.table, " has dim ",
                                                part.getDim(), " and ", rows.size(),
                                                " bytes; expected dim ", slice.dim, " x ",
                                                pos.size(), " rows"));
      }
      const size_t row_bytes = slice.dim * sizeof(float);
      ForEachRun(pos, [&](size_t j, size_t p, size_t n) {
        std::memcpy(slice.out + p * slice.dim, rows.begin() + j * row_bytes, n * row_bytes);
      });
    }
    if (k != tables.size()) return absl::DataLossError("pull reply has extra tables");
  }
  return absl::OkStatus();
}

absl::Status PsClient::Update(const StepUpdate& update, int64_t step) {
  const bool dense = !update.dense_grads.empty();
  if ((dense && update.dense_grads.size() != options_.dense_params) ||
      (!update.refreshed.empty() && (!dense || update.refreshed.size() != options_.dense_params))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dense update of ", update.dense_grads.size(), " floats refreshing ",
        update.refreshed.size(), "; the model has ", options_.dense_params));
  }
  GroupSlices(update.sparse);
  Waits waits;
  std::vector<int> servers;
  // With a dense gradient every server gets a request (each holds a block).
  const size_t dense_bytes =
      dense ? (options_.dense_params + num_servers() - 1) / num_servers() * sizeof(float) : 0;
  TOWERPS_RETURN_IF_ERROR(SendParts(update.sparse, /*with_grads=*/true, dense_bytes,
                                    [&](int s, Envelope::Body::Builder body, unsigned parts) {
    auto push = body.initPushSparse();
    push.setStep(step);
    push.setClientId(options_.client_id);
    push.setSeq(NextSeq());
    if (dense) {
      auto [begin, end] = shard_map_.DenseBlock(s, options_.dense_params);
      auto block = push.initDense();
      const size_t bytes = (end - begin) * sizeof(float);
      std::memcpy(block.initGrads(bytes).begin(), update.dense_grads.data() + begin, bytes);
      block.setLearningRate(update.dense_learning_rate);
      block.setPull(!update.refreshed.empty());
    }
    return push.initTables(parts);
  }, &waits, &servers));
  if (update.refreshed.empty() && options_.defer_push_replies) {
    // This push stays in flight; the one before it (if still there) is collected
    // now, so at most one push is ever outstanding.
    Waits older = std::move(deferred_);
    deferred_ = std::move(waits);
    return FirstError(net::RpcClient::WaitAll(older));
  }
  std::vector<absl::StatusOr<net::Message>> replies;
  TOWERPS_RETURN_IF_ERROR(WaitWithDeferred(waits, &replies));
  if (update.refreshed.empty()) return absl::OkStatus();
  for (size_t w = 0; w < replies.size(); ++w) {
    auto body = replies[w]->envelope().getBody();
    if (body.which() != Envelope::Body::PUSH_REPLY || !body.getPushReply().hasDense()) {
      return absl::DataLossError("a dense push-and-pull was answered without the block");
    }
    TOWERPS_RETURN_IF_ERROR(
        CopyDenseBlock(servers[w], body.getPushReply().getDense(), update.refreshed).status());
  }
  return absl::OkStatus();
}

absl::Status PsClient::Flush() {
  std::vector<absl::StatusOr<net::Message>> replies;
  return WaitWithDeferred({}, &replies);
}

absl::Status PsClient::WaitWithDeferred(const Waits& waits,
                                        std::vector<absl::StatusOr<net::Message>>* replies) {
  Waits all = std::move(deferred_);
  deferred_.clear();
  const size_t deferred = all.size();
  all.insert(all.end(), waits.begin(), waits.end());
  std::vector<absl::StatusOr<net::Message>> results = net::RpcClient::WaitAll(all);
  TOWERPS_RETURN_IF_ERROR(FirstError(results));
  replies->clear();
  for (size_t i = deferred; i < results.size(); ++i) replies->push_back(std::move(results[i]));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PsClient::CopyDenseBlock(int server,
                                                 net::wire::PullDenseReply::Reader reply,
                                                 absl::Span<float> params) const {
  auto [begin, end] = shard_map_.DenseBlock(server, options_.dense_params);
  if (reply.getOffset() != begin || reply.getValues().size() != (end - begin) * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("server ", server, " holds dense block at ",
                                            reply.getOffset(), " of ",
                                            reply.getValues().size() / sizeof(float),
                                            " floats; expected ", begin, " of ", end - begin));
  }
  std::memcpy(params.data() + begin, reply.getValues().begin(), reply.getValues().size());
  return reply.getVersion();
}

absl::StatusOr<int64_t> PsClient::PullDense(absl::Span<float> params) {
  TOWERPS_RETURN_IF_ERROR(Flush());  // reads see this client's earlier pushes
  if (params.size() != options_.dense_params) {
    return absl::InvalidArgumentError(absl::StrCat("dense pull into ", params.size(),
                                                   " floats; the model has ",
                                                   options_.dense_params));
  }
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, 0,
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
    TOWERPS_ASSIGN_OR_RETURN(int64_t version,
                             CopyDenseBlock(s, body.getPullDenseReply(), params));
    min_version = std::min(min_version, version);
  }
  return min_version;
}

absl::Status PsClient::AssignDense(absl::Span<const float> values) {
  if (values.size() != options_.dense_params) {
    return absl::InvalidArgumentError(absl::StrCat("dense values of ", values.size(),
                                                   " floats; the model has ",
                                                   options_.dense_params));
  }
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    // Not a structured binding: the lambda captures `begin`, which clang < 16 refuses.
    const std::pair<uint64_t, uint64_t> block = shard_map_.DenseBlock(s, options_.dense_params);
    const uint64_t begin = block.first;
    const size_t bytes = (block.second - begin) * sizeof(float);
    TOWERPS_RETURN_IF_ERROR(SendTo(s, /*retry=*/true, bytes, [&](Envelope::Body::Builder body) {
      auto assign = body.initPushDense();
      std::memcpy(assign.initGrads(bytes).begin(), values.data() + begin, bytes);
      assign.setAssign(true);
    }, &waits));
  }
  std::vector<absl::StatusOr<net::Message>> replies;
  return WaitWithDeferred(waits, &replies);
}

absl::StatusOr<std::vector<CheckpointFile>> PsClient::Checkpoint(int64_t step, uint64_t job_id,
                                                                 bool restore, int64_t base_step) {
  TOWERPS_RETURN_IF_ERROR(Flush());  // reads see this client's earlier pushes
  Waits waits;
  for (int s = 0; s < num_servers(); ++s) {
    // Not retried: a checkpoint that timed out is re-run whole by the scheduler.
    TOWERPS_RETURN_IF_ERROR(SendTo(
        s, /*retry=*/false, 0,
        [&](Envelope::Body::Builder body) {
          auto checkpoint = body.initCheckpoint();
          checkpoint.setStep(step);
          checkpoint.setJobId(job_id);
          checkpoint.setRestore(restore);
          if (base_step >= 0) {
            checkpoint.setIncremental(true);
            checkpoint.setBaseStep(base_step);
          }
        },
        &waits));
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
