// The parameter server's state and request handling: shards of the sparse tables
// (sparse_emb::EmbeddingTable, one per table id), one block of the dense parameters,
// push de-duplication, checkpoints. Plugged into a net::RpcServer as its handler; the
// process wiring (registration, heartbeats) lives in ps/ps_process.h.
//
// Every field from the wire is checked (table ids, sizes, dims, counts); a bad
// request gets InvalidArgument and nothing changes. Limits are derived so that no
// accepted request asks for a reply the wire cannot carry (max_reply_bytes, one blob
// per table at most net::kMaxBlobBytes, a dense block that fits one blob). Thread-safe: Handle runs on
// many handler threads at once (tables stripe their locks; the dense block has one).
#ifndef TOWERPS_PS_SERVER_H_
#define TOWERPS_PS_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/metrics.h"
#include "models/optimizer.h"
#include "net/codec.h"
#include "ps/dense_block.h"
#include "ps/push_dedup.h"
#include "sparse_emb/embedding_table.h"

namespace towerps::ps {

struct ParameterServerOptions {
  // This server's rank and the number of servers (its dense block depends on both).
  int rank = 0;
  int num_servers = 1;
  // Sparse tables by id (the model's feature config order).
  std::vector<sparse_emb::TableConfig> tables;
  // Floats in the model's whole dense parameter array; this server holds its block.
  uint64_t dense_params = 0;
  models::DenseOptimizerOptions dense_optimizer;
  // The job's id (checkpoint files are bound to it; a checkpoint order for another job
  // is refused). 0 outside a job (tools reading a checkpoint).
  uint64_t job_id = 0;
  // Where checkpoints ordered over the wire live: <checkpoint_root>/step-N. From the
  // process's own flags (<run_dir>/checkpoint), never from a message; empty: this
  // server refuses checkpoint orders.
  std::string checkpoint_root;
  // Largest number of keys accepted in one request.
  uint64_t max_keys_per_request = uint64_t{1} << 22;
  // Largest reply a pull may ask for, in bytes of rows over all its tables; at most the
  // clients' CodecOptions::max_frame_bytes less room for the envelope. Each table's
  // rows must also fit one Cap'n Proto blob (net::kMaxBlobBytes). A pull over either
  // limit is refused with InvalidArgument before anything is read; clients split it.
  uint64_t max_reply_bytes = (uint64_t{1} << 30) - (uint64_t{1} << 20);
  // Name in envelopes and logs ("ps/0").
  std::string name = "ps/0";
  // Tests: called on the saving thread after each chunk of stripe `stripe` of table
  // `table` has been copied for a checkpoint and the lock released, before it is written.
  std::function<void(int table, int stripe)> checkpoint_chunk_copied;

  absl::Status Validate() const;
};

class ParameterServer {
 public:
  // Errors: InvalidArgument for bad options or table configs. `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<ParameterServer>> Create(
      const ParameterServerOptions& options, MetricsRegistry* metrics);

  // Serves one request (pullSparse, pushSparse, pullDense, pushDense, checkpoint, ping)
  // and returns the reply frame; an error Status becomes an error reply.
  absl::StatusOr<std::string> Handle(const net::wire::Envelope::Reader& request);

  // Writes this server's shards into `dir` (created when missing; a symlink is
  // refused): one file per table and one for the dense block, each written atomically
  // and bound to (job_id, step, rank, table). Returns the file names. Pushes go on
  // meanwhile (EmbeddingTable::Save copies ~4 MiB of one stripe at a time; the dense
  // block is copied under its lock): in an asynchronous job rows may be
  // from slightly different moments, each row always with its own optimizer state; a
  // synchronous job checkpoints at a barrier, where the copy is exact.
  // With `base_step` >= 0 the table files are incremental: only rows changed (and keys
  // evicted) since this server's last checkpoint, which must be step `base_step`
  // (its last successful save, or the checkpoint it restored); otherwise
  // FailedPrecondition and nothing is written. The dense block is always whole.
  absl::StatusOr<std::vector<std::string>> SaveCheckpoint(const std::string& dir, int64_t step,
                                                          int64_t base_step = -1);
  // Loads this rank's files of the checkpoint in `dir` and of every link of its chain
  // (ReadChain: the full root, then each incremental up to `dir`), all or nothing: every
  // link's MANIFEST is read and every file of this rank verified (listed, size,
  // checksum, binding to the link's job and step, this rank, each table's name and
  // fingerprint, structure) before any table or the dense block is replaced; then the
  // root and the increments are applied in order, and the dense block of `dir`.
  // Afterwards the server's last checkpoint (SaveCheckpoint's base) is this step.
  // With `require_this_job` (restores
  // named by a step: resumed jobs, restore orders), the checkpoint must also be of
  // options().job_id and `dir` must not be a symlink. Errors: NotFound (no directory),
  // DataLoss (torn, corrupt, copied-in files), InvalidArgument (another model or job).
  // Only an I/O error while applying files already verified (or a concurrent rewrite of
  // them) can leave the shards partly loaded; it is logged as such.
  absl::Status LoadCheckpoint(const std::string& dir, bool require_this_job = false);

  sparse_emb::EmbeddingTable* table(int id) { return tables_[id].get(); }
  DenseBlock* dense() { return dense_.get(); }
  const ParameterServerOptions& options() const { return options_; }

 private:
  ParameterServer(const ParameterServerOptions& options, MetricsRegistry* metrics);
  absl::StatusOr<std::string> PullSparse(const net::wire::Envelope::Reader& request);
  absl::StatusOr<std::string> PushSparse(const net::wire::Envelope::Reader& request);
  absl::StatusOr<std::string> PullDense(const net::wire::Envelope::Reader& request);
  absl::StatusOr<std::string> PushDense(const net::wire::Envelope::Reader& request);
  absl::StatusOr<std::string> Checkpoint(const net::wire::Envelope::Reader& request);
  absl::StatusOr<sparse_emb::EmbeddingTable*> TableFor(uint32_t id) const;
  // One table's part of a sparse request, checked (table id, sizes; for a push also
  // dim, a learning rate in (0, kMaxLearningRate] and gradients within
  // kMaxGradientMagnitude: common/numeric_bounds.h). The spans point into the request.
  struct TablePart {
    sparse_emb::EmbeddingTable* table = nullptr;
    absl::Span<const uint64_t> keys;
    absl::Span<const float> grads;
    float learning_rate = 0;
  };
  // Checks every part of a request (and that no table appears twice, and the total
  // key count) before anything is applied.
  absl::StatusOr<std::vector<TablePart>> ParseParts(
      capnp::List<net::wire::TableKeys>::Reader parts, bool push) const;
  // Checks a dense update for this server's block (size, learning rate, bounded);
  // its gradient, read in place.
  absl::StatusOr<absl::Span<const float>> ParseDenseUpdate(
      net::wire::PushDense::Reader dense) const;
  // Fills `reply` with this server's dense block.
  void ReadDense(net::wire::PullDenseReply::Builder reply);

  // Constant after construction.
  const ParameterServerOptions options_;
  std::vector<std::unique_ptr<sparse_emb::EmbeddingTable>> tables_;
  std::unique_ptr<DenseBlock> dense_;
  Counter* pulled_keys_ = nullptr;
  Counter* pushed_keys_ = nullptr;
  Counter* duplicate_pushes_ = nullptr;
  Counter* refused_pushes_ = nullptr;  // pushes refused by validation (nothing applied)

  PushDedup dedup_;
  // Serialises checkpoint saves and restores; the step of the last one (-1: none, or
  // the last one failed), the only base an incremental save accepts.
  absl::Mutex checkpoint_mu_;
  int64_t last_checkpoint_step_ ABSL_GUARDED_BY(checkpoint_mu_) = -1;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_SERVER_H_
