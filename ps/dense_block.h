// One parameter server's block of the dense tower parameters, with its optimizer.
// Workers pull the block, push gradients for it, and the first worker assigns its
// initial values. Thread-safe (one mutex: dense blocks are small next to the tables).
#ifndef TOWERPS_PS_DENSE_BLOCK_H_
#define TOWERPS_PS_DENSE_BLOCK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/file_binding.h"
#include "models/optimizer.h"

namespace towerps::ps {

class DenseBlock {
 public:
  // offset: index of the block's first parameter in the model's flat array;
  // size: floats in the block (may be 0). Errors: InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<DenseBlock>> Create(
      uint64_t offset, uint64_t size, const models::DenseOptimizerOptions& optimizer);

  // Copies the values into out (size floats) and returns the version (updates so
  // far), or -1 while no initial values were assigned or loaded.
  int64_t Read(float* out) const;
  // Sets the initial values. FailedPrecondition once any update was applied (a
  // second worker's assign is ignored that way); InvalidArgument on a size mismatch.
  absl::Status Assign(absl::Span<const float> values);
  // One optimizer step at learning rate lr. InvalidArgument on a size mismatch;
  // FailedPrecondition for a non-finite gradient (skipped).
  absl::Status Apply(absl::Span<const float> grads, float lr);

  // Checkpoint file (a FileBinding of `origin` named "dense" with a fingerprint of the
  // optimizer kind, offset and size; then values, optimizer state, version and a
  // masked CRC-32C), written atomically.
  absl::Status Save(const std::string& path, const FileBinding& origin = {}) const;
  // Checks a checkpoint file without changing anything: DataLoss when torn or
  // corrupt or bound to another job, step or rank than `expected` (when given);
  // InvalidArgument when offset/size/optimizer differ.
  absl::Status Verify(const std::string& path, const FileBinding* expected = nullptr) const;
  // Verifies the whole file as Verify does before changing anything, then loads it.
  absl::Status Load(const std::string& path, const FileBinding* expected = nullptr);
  // `origin` with this block's name and fingerprint: what Save writes.
  FileBinding Binding(const FileBinding& origin) const;

  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }

 private:
  DenseBlock(uint64_t offset, uint64_t size, std::unique_ptr<models::DenseOptimizer> optimizer);

  struct Header {
    char magic[8];
    uint32_t format_version;
    uint32_t optimizer_kind;
    uint64_t offset;
    uint64_t size;
    int64_t version;
    int64_t optimizer_step;
    uint64_t state_floats;
  };
  // A verified checkpoint file: bytes[values_offset..] holds size_ values, then the
  // optimizer state.
  struct Parsed {
    std::string bytes;
    Header header;
    size_t values_offset = 0;
  };
  absl::StatusOr<Parsed> Parse(const std::string& path, const FileBinding* expected) const;

  const uint64_t offset_;
  const uint64_t size_;
  const uint32_t optimizer_kind_;  // 0 when size_ is 0 (no optimizer)
  mutable absl::Mutex mu_;
  std::vector<float> values_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<models::DenseOptimizer> optimizer_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool assigned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_DENSE_BLOCK_H_
