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

  // Checkpoint file (values, optimizer state, version; CRC-32C), written atomically.
  absl::Status Save(const std::string& path) const;
  // Verifies the whole file before changing anything. DataLoss when torn or corrupt,
  // InvalidArgument when offset/size/optimizer differ.
  absl::Status Load(const std::string& path);

  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }

 private:
  DenseBlock(uint64_t offset, uint64_t size, std::unique_ptr<models::DenseOptimizer> optimizer);

  const uint64_t offset_;
  const uint64_t size_;
  mutable absl::Mutex mu_;
  std::vector<float> values_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<models::DenseOptimizer> optimizer_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool assigned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_DENSE_BLOCK_H_
