// The worker's view of the parameter servers (ps-lite's KVWorker): pull and push
// sparse rows and the dense parameters, routed by the ShardMap, fanned out to every
// owning server in parallel (one request per server, all tables in it) and gathered
// back in key order.
//
// Thread-compatible: owned by one thread (it owns one DEALER socket per server). A
// worker that overlaps the next batch's pulls with compute gives its prefetch thread
// a PsClient of its own. Pushes carry (client id, sequence number) so a push retried
// after a timeout is applied once.
#ifndef TOWERPS_PS_CLIENT_H_
#define TOWERPS_PS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "net/transport.h"
#include "ps/checkpoint.h"
#include "ps/param_source.h"
#include "ps/shard_map.h"

namespace towerps::ps {

struct PsClientOptions {
  // Parameter server endpoints by rank; size == shard map's num_servers.
  std::vector<std::string> server_endpoints;
  // Deadlines, attempts and backoff of every request; endpoint is filled per server.
  // With CURVE, rpc.curve holds this client's key pair and server_public_keys[r] is
  // put in as server r's key.
  net::RpcClientOptions rpc;
  // CURVE: the public key (Z85) of each server by rank, size == server_endpoints;
  // empty when rpc.curve is off.
  std::vector<std::string> server_public_keys;
  // Unique per client in the job (e.g. worker rank * 16 + thread); with a sequence
  // number it makes retried pushes idempotent.
  uint64_t client_id = 0;
  // Floats in the model's dense parameter array.
  uint64_t dense_params = 0;
  // Push returns once its requests are sent; their replies are collected (a failure
  // reported) by the next call of this client or by Flush(), so the round trip
  // overlaps the worker's next work: a dense push waits for them together with its
  // own replies; a pull waits for them before it is sent, so it sees them. At most
  // one push is outstanding. A synchronous job, whose clock must not count a step
  // before its pushes are applied, leaves it off.
  bool defer_push_replies = false;

  absl::Status Validate() const;
};

class PsClient final : public ParamSource {
 public:
  static absl::StatusOr<std::unique_ptr<PsClient>> Create(const net::ZmqContext* ctx,
                                                           const PsClientOptions& options,
                                                           ShardMap shard_map);

  // Pulls every slice's rows from their owning servers in parallel. create=false reads
  // zeros for missing rows (export, evaluation). Errors: the first failed request's
  // Status (DeadlineExceeded after retries, InvalidArgument from a server), or
  // DataLoss for a reply of the wrong size.
  absl::Status Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) override;
  // Sends each server one request with its rows' gradients and, with a dense gradient,
  // its dense block's (then every server gets one, and `refreshed` receives the blocks
  // after the update). Without `refreshed` see defer_push_replies.
  absl::Status Update(const StepUpdate& update, int64_t step) override;
  // Collects every deferred push reply; the first failure.
  absl::Status Flush() override;

  // Reads the whole dense array (dense_params floats) from all servers; returns the
  // smallest block version (0 until a worker assigned initial values or pushed).
  absl::StatusOr<int64_t> PullDense(absl::Span<float> params) override;
  // Sets the initial dense values on every server (ignored by servers already set).
  absl::Status AssignDense(absl::Span<const float> values) override;

  // Asks every server of job `job_id` to save (or restore) its shards in the
  // checkpoint of `step`, under each server's own checkpoint root (step-N). Returns
  // the files written with their sizes and checksums, for the MANIFEST. A save with
  // `base_step` >= 0 is incremental on that step; a server whose last checkpoint is
  // another refuses it with FailedPrecondition (the caller then orders a full one).
  absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(int64_t step, uint64_t job_id,
                                                         bool restore, int64_t base_step = -1);

  const ShardMap& shard_map() const { return shard_map_; }
  int num_servers() const { return static_cast<int>(clients_.size()); }

 private:
  PsClient(const PsClientOptions& options, ShardMap shard_map);
  using Waits = std::vector<std::pair<net::RpcClient*, uint64_t>>;
  // Builds one request to server `server` in a frame with room for `payload_bytes`
  // (fill(body) sets the message kind), puts it in flight and records it in *waits.
  template <typename Fill>
  absl::Status SendTo(int server, bool retry, size_t payload_bytes, Fill&& fill, Waits* waits);
  // positions_[i][s]: where slice i's keys owned by server s are.
  void GroupSlices(absl::Span<const SparseSlice> slices);
  // One request per server that owns any key (every server when
  // dense_bytes_per_server > 0: room reserved for its dense block): fill(server, body,
  // parts) sets the message kind and returns its table list, which this fills with the
  // server's keys (and gradients, with_grads). servers: the server of each wait.
  template <typename Fill>
  absl::Status SendParts(absl::Span<const SparseSlice> slices, bool with_grads,
                         size_t dense_bytes_per_server, Fill&& fill, Waits* waits,
                         std::vector<int>* servers);
  // Checks a server's dense block reply and copies it into `params`; its version.
  absl::StatusOr<int64_t> CopyDenseBlock(int server, net::wire::PullDenseReply::Reader reply,
                                         absl::Span<float> params) const;
  uint64_t NextSeq() { return ++seq_; }
  // Waits for the deferred pushes and `waits` together; the first error of any, else
  // the replies to `waits` in order.
  absl::Status WaitWithDeferred(const Waits& waits,
                                std::vector<absl::StatusOr<net::Message>>* replies);
  const PsClientOptions options_;
  const ShardMap shard_map_;
  std::vector<std::unique_ptr<net::RpcClient>> clients_;
  uint64_t seq_ = 0;
  // Scratch reused across calls: positions of each slice's keys per server.
  std::vector<std::vector<std::vector<uint32_t>>> positions_;
  // Push requests in flight whose replies were not collected yet.
  Waits deferred_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_CLIENT_H_
