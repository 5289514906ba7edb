// EmbeddingTable: a dynamic map from uint64 feature keys to embedding rows with their
// optimizer state, the parameter server's core (docs/sparse_emb.md has the design).
//
// - Rows are created on first touch (subject to admission), deterministically from
//   (initializer seed, key), and updated in place by the table's sparse optimizer.
// - The key space is split into `num_stripes` stripes by the top bits of Mix64(key);
//   each stripe has its own reader/writer mutex, RowStore (slabs + open-addressing
//   index) and admission sketch. A batch call groups its keys by stripe and takes each
//   stripe's lock once while it walks that stripe's keys with software prefetch
//   (candidate rows of a chunk of keys first, then the rows: embedding_table.cc). Pull
//   and Lookup of existing rows share the lock; creating rows, Push and eviction take
//   it exclusively; index growth (doubling one stripe's index) stalls only that stripe.
//   Save copies a chunk of one stripe at a time under its lock, writes without it.
// - Eviction: Evict(now) drops rows idle for more than ttl_steps; a row budget is
//   enforced per stripe as rows are created (least recently touched first).
// - Snapshots: Save / SaveIncremental / Load (format in docs/sparse_emb.md).
//
// Thread-safe: every method may be called from any thread concurrently. Batch calls
// never allocate per key (per-thread scratch buffers are reused across calls).
#ifndef TOWERPS_SPARSE_EMB_EMBEDDING_TABLE_H_
#define TOWERPS_SPARSE_EMB_EMBEDDING_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/file_binding.h"
#include "common/metrics.h"
#include "sparse_emb/count_min_sketch.h"
#include "sparse_emb/row_layout.h"
#include "sparse_emb/row_store.h"
#include "sparse_emb/table_config.h"

namespace towerps::sparse_emb {

// Metadata of one row (for tests, debugging and export tools).
struct RowInfo {
  int64_t last_step = 0;      // the largest step of a Pull or Push that touched it
  uint32_t update_count = 0;  // pushes applied (Adam's per-row step)
};

class EmbeddingTable {
 public:
  // Errors: InvalidArgument when config.Validate() fails. `metrics` may be null; when
  // set it must outlive the table, which registers (with <t> = config.name)
  //   towerps_sparse_emb_<t>_admitted_total, _rejected_total, _evicted_total (counters),
  //   towerps_sparse_emb_<t>_rows, _memory_bytes (gauges).
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Create(const TableConfig& config,
                                                                MetricsRegistry* metrics);
  ~EmbeddingTable();
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  // keys: n (may repeat), out: n * dim fp32. Missing rows are created (a key's
  // sighting is counted first when admission is on; a key not yet admitted reads
  // zeros). Marks every row read as touched at `step` (raises its last-touched step;
  // when pulls with different steps touch one row at the same moment, the row may keep
  // the smaller of their steps).
  void Pull(absl::Span<const uint64_t> keys, int64_t step, float* out);

  // keys: n, out: n * dim. Like Pull but never creates, counts or touches:
  // missing rows read zeros. For evaluation and export.
  void Lookup(absl::Span<const uint64_t> keys, float* out) const;

  // keys: n UNIQUE keys (the caller aggregates duplicates), grads: n * dim, each value
  // within kMaxGradientMagnitude (common/numeric_bounds.h; the caller checks, so the
  // optimizer state stays finite). Applies the optimizer in place with learning rate
  // `lr` at global step `step` (a push with lr outside (0, kMaxLearningRate] is
  // dropped and logged). A missing
  // key is counted (admission) and created when admitted, then updated; a key not
  // admitted is only counted.
  void Push(absl::Span<const uint64_t> keys, const float* grads, float lr, int64_t step);

  // Drops rows whose last-touched step is < now_step - ttl_steps (no-op when the TTL
  // is 0). Returns the number of rows dropped. Blocks one stripe at a time.
  int64_t Evict(int64_t now_step);

  // How Save writes.
  struct SaveOptions {
    // Only rows created or updated since the last successful save, plus the keys
    // evicted since then (and the sketch). After a failed save (whose copied chunks'
    // dirty marks are gone) the next one is written full instead (kind 1: Load then
    // replaces the table), so a failed write never loses a change.
    bool incremental = false;
    // Called on the saving thread after each chunk of stripe `stripe` has been copied
    // and the stripe's lock released, before the chunk is written (tests: a push
    // proceeds mid-write).
    std::function<void(int stripe)> after_chunk_copied;
    // Bytes of rows copied per lock hold (at least one row is).
    size_t chunk_bytes = size_t{4} << 20;
    // When set, filled by a successful save: rows and erased keys written, and the
    // longest time a stripe lock was held for one chunk's copy (what a push may wait).
    struct Stats {
      int64_t rows = 0;
      int64_t erased = 0;
      double longest_lock_seconds = 0;
    };
    Stats* stats = nullptr;
  };
  // Snapshot of rows, optimizer state and admission sketch to `path`, written
  // atomically (temporary file, fsync, rename). Does not stop writers for the whole
  // write: each stripe is walked in chunks of chunk_bytes of rows, each copied under the
  // stripe's lock (rows with their optimizer state; at the walk's end the stripe's
  // erased keys and sketch) and written after the lock is released; memory: one
  // chunk. With pushes running, rows may be from slightly different moments (each
  // row always with its own optimizer state; a row changed after its chunk was copied
  // is in the next incremental snapshot); quiesced callers get an exact snapshot.
  // Saves and Loads are serialised. `origin` binds the file to its job, step and
  // server rank; the table adds its name and TableFingerprint (Binding). Afterwards
  // the incremental baseline is this snapshot. Errors: file errors.
  absl::Status Save(const std::string& path, const FileBinding& origin,
                    const SaveOptions& options);
  absl::Status Save(const std::string& path, const FileBinding& origin = {});
  // Save with incremental = true.
  absl::Status SaveIncremental(const std::string& path, const FileBinding& origin = {});
  // Checks a snapshot without touching the table: structure, lengths, checksums, and
  // its binding: the table name and fingerprint must be this table's, and the job,
  // step and rank those of `expected` when given. Errors as Load.
  absl::Status Verify(const std::string& path, const FileBinding* expected = nullptr) const;
  // Loads a full snapshot (replacing the table's contents) or applies an incremental
  // one on top. The whole file is verified as Verify does before the table is
  // touched, and applied with every stripe locked, so readers never see a half-loaded
  // table. Errors: DataLoss for a truncated or corrupt file or one bound to another
  // job, step or rank (table unchanged); InvalidArgument when the name, dim, dtype,
  // optimizer or fingerprint differ from the config; NotFound / file errors.
  absl::Status Load(const std::string& path, const FileBinding* expected = nullptr);
  // `origin` with this table's name and fingerprint: what Save writes.
  FileBinding Binding(const FileBinding& origin) const;

  // Streams all rows in chunks of at most `chunk_rows` (> 0): fn(keys: m,
  // values: m * dim fp32). Memory is bounded by one chunk. Weakly consistent: rows
  // created or erased concurrently may or may not be seen; each row is seen at most
  // once. fn runs without any table lock held (it may call the table). Stops at and
  // returns fn's first error.
  absl::Status ForEachRow(
      int64_t chunk_rows,
      const std::function<absl::Status(absl::Span<const uint64_t> keys, const float* values)>&
          fn) const;

  // The row's metadata, or nullopt when the key has no row.
  std::optional<RowInfo> GetRowInfo(uint64_t key) const;
  // Copies the row's optimizer state (state: state_floats()); false if no row.
  bool ReadOptimizerState(uint64_t key, float* state) const;

  int64_t size() const { return total_rows_.load(std::memory_order_relaxed); }
  int dim() const { return config_.dim; }
  const TableConfig& config() const { return config_; }
  int state_floats() const { return layout_.state_floats; }
  // Bytes of one stored row (metadata + optimizer state + embedding, 8-byte aligned).
  size_t row_bytes() const { return layout_.row_bytes; }
  // Estimate of the memory held: slabs, indexes, sketches. Locks each stripe briefly.
  size_t MemoryBytes() const;

 private:
  struct Stripe {
    explicit Stripe(const RowLayout& layout, int64_t sketch_width, int sketch_depth)
        : store(layout), sketch(sketch_width, sketch_depth) {}
    mutable absl::Mutex mu;
    RowStore store ABSL_GUARDED_BY(mu);
    CountMinSketch sketch ABSL_GUARDED_BY(mu);
    // Keys erased since the last successful save (for incremental snapshots).
    std::vector<uint64_t> erased_since_save ABSL_GUARDED_BY(mu);
  };
  // Per-call tallies, published to the metrics once per call.
  struct Tally {
    int64_t admitted = 0;
    int64_t rejected = 0;
    int64_t evicted = 0;
  };
  EmbeddingTable(const TableConfig& config, MetricsRegistry* metrics);

  int StripeOf(uint64_t hash) const {
    return stripe_shift_ >= 64 ? 0 : static_cast<int>(hash >> stripe_shift_);
  }
  // Counts a sighting of a missing key and creates its row when admitted; nullptr when
  // not admitted. Caller holds s->mu.
  char* FindOrAdmit(Stripe* s, uint64_t key, uint64_t hash, int64_t step, float* scratch,
                    Tally* tally);
  // Erases the `n` least recently touched rows of the stripe. Caller holds s->mu.
  void EvictOldestLocked(Stripe* s, int64_t n, Tally* tally);
  // After creating rows in a stripe: enforce the per-stripe budget.
  void EnforceBudgetLocked(Stripe* s, Tally* tally);
  void EraseLocked(Stripe* s, char* row);
  void Publish(const Tally& tally);

  // Applies one verified snapshot block (snapshot.cc). Caller holds every stripe lock.
  void ApplyBlockLocked(uint32_t type, uint32_t aux, uint64_t count, const char* payload,
                        bool sketch_compatible);
  void LockAll() const;
  void UnlockAll() const;

  // Constant after construction.
  const TableConfig config_;
  const RowLayout layout_;
  const int stripe_shift_;       // stripe = Mix64(key) >> stripe_shift_ (64: one stripe)
  const int64_t stripe_budget_;  // rows per stripe; 0 = unlimited
  const size_t row_prefetch_bytes_;  // bytes of a row the batched walks prefetch
  Counter* admitted_metric_ = nullptr;
  Counter* rejected_metric_ = nullptr;
  Counter* evicted_metric_ = nullptr;
  Gauge* rows_metric_ = nullptr;
  Gauge* memory_metric_ = nullptr;

  std::vector<std::unique_ptr<Stripe>> stripes_;
  std::atomic<int64_t> total_rows_{0};
  // Whether erased keys are remembered for the next incremental snapshot (true once a
  // snapshot exists to be incremental to). Written with every stripe lock held, so
  // reading it under any one stripe lock is safe.
  bool track_erased_ = false;
  // Serialises Save / SaveIncremental / Load against each other.
  absl::Mutex snapshot_mu_;
  // A save or load failed after changing dirty marks: the next save is a full one.
  bool baseline_lost_ ABSL_GUARDED_BY(snapshot_mu_) = false;
};

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_EMBEDDING_TABLE_H_
