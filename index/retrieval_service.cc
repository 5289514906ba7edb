#include "index/retrieval_service.h"

#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "capnp/message.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/codec.h"

namespace towerps::index {

using net::wire::Envelope;

absl::Status RetrievalServiceOptions::Validate() const {
  if (max_k < 1) return absl::InvalidArgumentError("max_k must be >= 1");
  if (default_ef_search < 1 || max_ef_search < default_ef_search) {
    return absl::InvalidArgumentError("need 1 <= default_ef_search <= max_ef_search");
  }
  if (max_exclude < 0) return absl::InvalidArgumentError("max_exclude must be >= 0");
  if (max_batch < 1) return absl::InvalidArgumentError("max_batch must be >= 1");
  return absl::OkStatus();
}

std::string EncodeTopKRequest(absl::string_view sender, uint64_t request_id,
                              const TopKQuery& query) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<Envelope>();
  net::InitEnvelope(envelope, sender, request_id);
  auto topk = envelope.getBody().initTopK();
  topk.setUserId(query.user_id);
  topk.setVector(kj::arrayPtr(reinterpret_cast<const kj::byte*>(query.vector.data()),
                              query.vector.size() * sizeof(float)));
  topk.setK(static_cast<uint32_t>(std::max(query.k, 0)));
  topk.setEfSearch(static_cast<uint32_t>(std::max(query.ef_search, 0)));
  auto exclude = topk.initExclude(query.exclude.size());
  for (size_t i = 0; i < query.exclude.size(); ++i) exclude.set(i, query.exclude[i]);
  return net::EncodeMessage(message);
}

absl::StatusOr<TopKResult> DecodeTopKReply(const net::Message& reply) {
  auto body = reply.envelope().getBody();
  if (body.which() == Envelope::Body::ERROR) return net::StatusFromError(body.getError());
  if (body.which() != Envelope::Body::TOP_K_REPLY) {
    return absl::DataLossError("expected a TopKReply");
  }
  auto r = body.getTopKReply();
  auto keys = r.getKeys();
  auto scores = r.getScores();
  auto raw_ids = r.getRawIds();
  if (scores.size() != keys.size() || (raw_ids.size() != 0 && raw_ids.size() != keys.size())) {
    return absl::DataLossError("TopKReply lists disagree in size");
  }
  TopKResult result;
  for (size_t i = 0; i < keys.size(); ++i) {
    result.hits.push_back({keys[i], scores[i]});
    result.raw_ids.push_back(raw_ids.size() == 0 ? "" : std::string(raw_ids[i].cStr()));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<RetrievalService>> RetrievalService::Create(
    const net::ZmqContext* ctx, const RetrievalServiceOptions& options,
    std::unique_ptr<ShardedIndex> local, std::unique_ptr<EmbeddingTable> users,
    std::unique_ptr<EmbeddingTable> items) {
  return Create(ctx, options, local ? LiveIndex::Static(std::move(local)) : nullptr,
                std::move(users), std::move(items));
}

absl::StatusOr<std::unique_ptr<RetrievalService>> RetrievalService::Create(
    const net::ZmqContext* ctx, const RetrievalServiceOptions& options,
    std::unique_ptr<LiveIndex> local, std::unique_ptr<EmbeddingTable> users,
    std::unique_ptr<EmbeddingTable> items) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if ((local == nullptr) == options.shard_endpoints.empty()) {
    return absl::InvalidArgumentError(
        "a retrieval server has either local shards or shard endpoints (router), not both");
  }
  std::unique_ptr<RetrievalService> service(new RetrievalService(ctx, options));
  if (local != nullptr) service->dim_ = local->Current()->dim();
  if (users != nullptr) {
    if (users->side != data::Side::kUser) {
      return absl::InvalidArgumentError("the users table holds item embeddings");
    }
    if (service->dim_ != 0 && users->dim != service->dim_) {
      return absl::InvalidArgumentError(absl::StrCat("user embeddings have dim ", users->dim,
                                                     ", the index ", service->dim_));
    }
    service->dim_ = users->dim;
    service->user_lookup_ = std::make_unique<EmbeddingLookup>(users.get());
  }
  if (items != nullptr) service->item_lookup_ = std::make_unique<EmbeddingLookup>(items.get());
  service->local_ = std::move(local);
  if (service->local_ != nullptr && options.max_batch > 1) {
    service->batcher_ = std::make_unique<QueryBatcher>(QueryBatcherOptions{options.max_batch});
  }
  service->users_ = std::move(users);
  service->items_ = std::move(items);
  if (!options.shard_endpoints.empty()) {  // connect once up front: fail fast
    TOWERPS_ASSIGN_OR_RETURN(auto clients, service->TakeClients());
    service->ReturnClients(std::move(clients));
  }
  return service;
}

absl::StatusOr<std::unique_ptr<RetrievalService::ClientSet>> RetrievalService::TakeClients() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      auto clients = std::move(idle_.back());
      idle_.pop_back();
      return clients;
    }
  }
  auto clients = std::make_unique<ClientSet>();
  for (const std::string& endpoint : options_.shard_endpoints) {
    net::RpcClientOptions rpc = options_.rpc;
    rpc.endpoint = endpoint;
    rpc.name = options_.name;
    TOWERPS_ASSIGN_OR_RETURN(auto client, net::RpcClient::Connect(ctx_, rpc));
    clients->push_back(std::move(client));
  }
  return clients;
}

void RetrievalService::ReturnClients(std::unique_ptr<ClientSet> clients) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(clients));
}

absl::StatusOr<std::vector<Hit>> RetrievalService::FanOut(const float* vector, int dim, int k,
                                                          int ef_search,
                                                          const std::vector<uint64_t>& exclude,
                                                          std::vector<std::string>* raw_ids) {
  TOWERPS_ASSIGN_OR_RETURN(auto clients, TakeClients());
  TopKQuery forward;
  forward.vector.assign(vector, vector + dim);
  forward.k = k;
  forward.ef_search = ef_search;
  forward.exclude = exclude;
  std::vector<std::pair<net::RpcClient*, uint64_t>> waits;
  for (auto& client : *clients) {
    const uint64_t id = client->NextRequestId();
    absl::Status sent = client->Send(id, EncodeTopKRequest(options_.name, id, forward), true);
    if (!sent.ok()) return sent;  // the set is dropped: its sockets may hold stale replies
    waits.emplace_back(client.get(), id);
  }
  auto replies = net::RpcClient::WaitAll(waits);
  std::vector<std::vector<Hit>> lists;
  absl::flat_hash_map<uint64_t, std::string> names;
  for (size_t s = 0; s < replies.size(); ++s) {
    if (!replies[s].ok()) {
      return Annotate(replies[s].status(), absl::StrCat("shard server ",
                                                        options_.shard_endpoints[s]));
    }
    TOWERPS_ASSIGN_OR_RETURN(TopKResult result, DecodeTopKReply(*replies[s]));
    for (size_t i = 0; i < result.hits.size(); ++i) {
      names[result.hits[i].key] = result.raw_ids[i];
    }
    lists.push_back(std::move(result.hits));
  }
  ReturnClients(std::move(clients));
  std::vector<Hit> merged = MergeHits(lists, k);
  for (const Hit& hit : merged) raw_ids->push_back(names[hit.key]);
  return merged;
}

absl::StatusOr<TopKResult> RetrievalService::Search(const TopKQuery& query) {
  if (query.k < 1 || query.k > options_.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, ", options_.max_k, "], got ", query.k));
  }
  if (query.ef_search < 0 || query.ef_search > options_.max_ef_search) {
    return absl::InvalidArgumentError(absl::StrCat("ef_search must be in [0, ",
                                                   options_.max_ef_search, "], got ",
                                                   query.ef_search));
  }
  if (static_cast<int64_t>(query.exclude.size()) > options_.max_exclude) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", options_.max_exclude,
                                                   " exclusions"));
  }
  const float* vector = query.vector.data();
  int dim = static_cast<int>(query.vector.size());
  if (!query.user_id.empty()) {
    if (user_lookup_ == nullptr) {
      return absl::FailedPreconditionError("this server has no user embeddings (--embeddings)");
    }
    const int64_t row = user_lookup_->RowOfRawId(query.user_id);
    if (row < 0) return absl::NotFoundError(absl::StrCat("unknown user '", query.user_id, "'"));
    vector = users_->row(row);
    dim = users_->dim;
  } else if (dim_ != 0 && dim != dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the query vector has dim ", dim, ", the index ", dim_));
  } else if (dim == 0) {
    return absl::InvalidArgumentError("neither a user id nor a query vector");
  }
  for (int c = 0; c < dim; ++c) {
    if (!std::isfinite(vector[c])) return absl::InvalidArgumentError("non-finite query vector");
  }
  const int ef = query.ef_search > 0 ? query.ef_search : options_.default_ef_search;
  TopKResult result;
  if (local_ == nullptr) {
    TOWERPS_ASSIGN_OR_RETURN(result.hits,
                             FanOut(vector, dim, query.k, ef, query.exclude, &result.raw_ids));
    if (item_lookup_ != nullptr) {
      for (size_t i = 0; i < result.hits.size(); ++i) {
        const int64_t row = item_lookup_->RowOfKey(result.hits[i].key);
        if (row >= 0 && result.raw_ids[i].empty()) result.raw_ids[i] = items_->raw_ids[row];
      }
    }
    return result;
  }
  // One snapshot for the whole request: a swap meanwhile does not change this reply.
  const std::shared_ptr<const IndexSnapshot> snapshot = local_->Current();
  TOWERPS_ASSIGN_OR_RETURN(result.hits, snapshot->Search(vector, query.k, ef, query.exclude, batcher_.get()));
  result.raw_ids.resize(result.hits.size());
  for (size_t i = 0; i < result.hits.size(); ++i) {
    if (const std::string* fresh = snapshot->FreshRawId(result.hits[i].key)) {
      result.raw_ids[i] = *fresh;  // an item added or changed since the version
    } else if (item_lookup_ != nullptr) {
      const int64_t row = item_lookup_->RowOfKey(result.hits[i].key);
      if (row >= 0) result.raw_ids[i] = items_->raw_ids[row];
    }
  }
  return result;
}

absl::StatusOr<std::string> RetrievalService::Handle(const Envelope::Reader& request) {
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<Envelope>();
  net::InitEnvelope(reply, options_.name, request.getRequestId());
  switch (request.getBody().which()) {
    case Envelope::Body::PING:
      reply.getBody().initPong().setNonce(request.getBody().getPing().getNonce());
      return net::EncodeMessage(message);
    case Envelope::Body::TOP_K: {
      auto in = request.getBody().getTopK();
      TopKQuery query;
      query.user_id = in.getUserId().cStr();
      auto bytes = in.getVector();
      if (bytes.size() % sizeof(float) != 0) {
        return absl::InvalidArgumentError("the query vector is not a whole number of f32");
      }
      query.vector.resize(bytes.size() / sizeof(float));
      if (bytes.size() > 0) {  // may be unaligned: copy
        std::memcpy(query.vector.data(), bytes.begin(), bytes.size());
      }
      query.k = static_cast<int>(std::min<uint32_t>(in.getK(), 1u << 30));
      query.ef_search = static_cast<int>(std::min<uint32_t>(in.getEfSearch(), 1u << 30));
      auto exclude = in.getExclude();
      if (exclude.size() > static_cast<uint32_t>(options_.max_exclude)) {
        return absl::InvalidArgumentError(absl::StrCat("more than ", options_.max_exclude,
                                                       " exclusions"));
      }
      query.exclude.reserve(exclude.size());
      for (uint64_t key : exclude) query.exclude.push_back(key);
      TOWERPS_ASSIGN_OR_RETURN(TopKResult result, Search(query));
      auto out = reply.getBody().initTopKReply();
      auto keys = out.initKeys(result.hits.size());
      auto scores = out.initScores(result.hits.size());
      auto raw_ids = out.initRawIds(result.hits.size());
      for (size_t i = 0; i < result.hits.size(); ++i) {
        keys.set(i, result.hits[i].key);
        scores.set(i, result.hits[i].score);
        raw_ids.set(i, result.raw_ids[i]);
      }
      return net::EncodeMessage(message);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("a retrieval server does not serve message kind ",
                       static_cast<int>(request.getBody().which())));
  }
}

}  // namespace towerps::index
