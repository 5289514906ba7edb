// The retrieval service behind `towerps serve`: answers TopK requests (net/towerps.capnp)
// by user id (the user's exported embedding) or by raw query vector, with an
// exclusion list and a per-request efSearch, either
//   - over the shards it loaded itself (a shard server, or a whole index), or
//   - as a router: fanning each request out to shard servers in parallel (ZeroMQ +
//     Cap'n Proto, RpcClient::WaitAll) and merging their top-K lists.
// A bad request (wrong dim, unknown user, K or efSearch out of range, too many
// exclusions) gets an error reply; the server keeps serving.
//
// Thread-safe: Handle/Search run concurrently on the RpcServer's handler threads.
// A local service answers each request from one snapshot of its LiveIndex (taken
// once per request: a version swap or a delta never mixes two views in one reply);
// the tables are immutable; a router keeps a pool of per-call RpcClient
// sets (one DEALER per shard each), taken and returned under mu_.
#ifndef TOWERPS_INDEX_RETRIEVAL_SERVICE_H_
#define TOWERPS_INDEX_RETRIEVAL_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "index/embeddings.h"
#include "index/live_index.h"
#include "index/query_batcher.h"
#include "index/sharded_index.h"
#include "net/transport.h"

namespace towerps::index {

struct RetrievalServiceOptions {
  // Largest K a request may ask for; >= 1.
  int max_k = 1000;
  // efSearch when a request leaves it 0; >= 1.
  int default_ef_search = 128;
  // Largest efSearch a request may ask for.
  int max_ef_search = 4096;
  // Most exclusions one request may carry.
  int max_exclude = 100000;
  // Router mode: the shard servers' endpoints (each serves a subset of the shards;
  // together all of them). Empty: search the local index.
  std::vector<std::string> shard_endpoints;
  // Deadlines and retries of the router's requests (endpoint set per shard).
  net::RpcClientOptions rpc;
  // Sender name in replies and logs.
  std::string name = "serve";
  // Local shards: most waiting queries searched as one batch (index/query_batcher.h);
  // >= 1, 1 = no batching (the default: batching measured no gain on 2 cores,
  // BENCHMARKS.md "serve").
  int max_batch = 1;

  absl::Status Validate() const;
};

// One request, in process.
struct TopKQuery {
  std::string user_id;        // raw user id; empty: use `vector`
  std::vector<float> vector;  // dim floats when user_id is empty
  int k = 10;
  int ef_search = 0;          // 0: the server's default
  std::vector<uint64_t> exclude;  // item keys
};

struct TopKResult {
  std::vector<Hit> hits;              // best first
  std::vector<std::string> raw_ids;   // parallel to hits ("" when unknown)
};

// Builds a TopK request frame. Shapes: vector dim floats (may be empty).
std::string EncodeTopKRequest(absl::string_view sender, uint64_t request_id,
                              const TopKQuery& query);
// Reads a TopKReply (DataLoss for a malformed one; the error reply's Status).
absl::StatusOr<TopKResult> DecodeTopKReply(const net::Message& reply);

class RetrievalService {
 public:
  // local: the loaded shards (null for a router). users: exported user embeddings
  // (null: only vector queries). items: exported item embeddings for raw ids (may be
  // null). ctx is borrowed (router mode). Errors: InvalidArgument (options, neither
  // or both of local and shard_endpoints, dims that disagree), Unavailable.
  static absl::StatusOr<std::unique_ptr<RetrievalService>> Create(
      const net::ZmqContext* ctx, const RetrievalServiceOptions& options,
      std::unique_ptr<LiveIndex> local, std::unique_ptr<EmbeddingTable> users,
      std::unique_ptr<EmbeddingTable> items);
  // The same over a static index (LiveIndex::Static).
  static absl::StatusOr<std::unique_ptr<RetrievalService>> Create(
      const net::ZmqContext* ctx, const RetrievalServiceOptions& options,
      std::unique_ptr<ShardedIndex> local, std::unique_ptr<EmbeddingTable> users,
      std::unique_ptr<EmbeddingTable> items);

  // The RpcServer handler: TopK -> TopKReply, Ping -> Pong, anything else
  // InvalidArgument.
  absl::StatusOr<std::string> Handle(const net::wire::Envelope::Reader& request);

  // Validates and answers one query. Errors: InvalidArgument (k, ef_search, dim,
  // exclusions), NotFound (unknown user), the shards' errors (router).
  absl::StatusOr<TopKResult> Search(const TopKQuery& query);

  // The embedding dim (0 for a router without users until a shard answers).
  int dim() const { return dim_; }
  // The local index (null for a router): its current snapshot, Wake (SIGHUP), Stop.
  LiveIndex* live_index() const { return local_.get(); }

 private:
  using ClientSet = std::vector<std::unique_ptr<net::RpcClient>>;
  RetrievalService(const net::ZmqContext* ctx, const RetrievalServiceOptions& options)
      : ctx_(ctx), options_(options) {}
  absl::StatusOr<std::vector<Hit>> FanOut(const float* vector, int dim, int k, int ef_search,
                                          const std::vector<uint64_t>& exclude,
                                          std::vector<std::string>* raw_ids);
  absl::StatusOr<std::unique_ptr<ClientSet>> TakeClients();
  void ReturnClients(std::unique_ptr<ClientSet> clients);

  // Constant after Create.
  const net::ZmqContext* const ctx_;
  const RetrievalServiceOptions options_;
  std::unique_ptr<LiveIndex> local_;
  std::unique_ptr<QueryBatcher> batcher_;  // null: max_batch 1 or a router
  std::unique_ptr<EmbeddingTable> users_, items_;
  std::unique_ptr<EmbeddingLookup> user_lookup_, item_lookup_;
  int dim_ = 0;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<ClientSet>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_RETRIEVAL_SERVICE_H_
