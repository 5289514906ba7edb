#include "ps/dense_block.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "common/status.h"

namespace towerps::ps {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'S', 'D', 'E', 'N', 'S', 'E'};
constexpr uint32_t kFormatVersion = 1;

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

}  // namespace

absl::StatusOr<std::unique_ptr<DenseBlock>> DenseBlock::Create(
    uint64_t offset, uint64_t size, const models::DenseOptimizerOptions& optimizer) {
  TOWERPS_RETURN_IF_ERROR(optimizer.Validate());
  std::unique_ptr<models::DenseOptimizer> opt;
  if (size > 0) {
    TOWERPS_ASSIGN_OR_RETURN(opt, models::DenseOptimizer::Create(optimizer, size));
  }
  return std::unique_ptr<DenseBlock>(new DenseBlock(offset, size, std::move(opt)));
}

DenseBlock::DenseBlock(uint64_t offset, uint64_t size,
                       std::unique_ptr<models::DenseOptimizer> optimizer)
    : offset_(offset), size_(size), values_(size, 0.0f), optimizer_(std::move(optimizer)) {}

int64_t DenseBlock::Read(float* out) const {
  absl::MutexLock lock(&mu_);
  if (size_ > 0) std::memcpy(out, values_.data(), size_ * sizeof(float));
  return assigned_ || version_ > 0 ? version_ : -1;
}

absl::Status DenseBlock::Assign(absl::Span<const float> values) {
  if (values.size() != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("dense assign of ", values.size(), " floats to a block of ", size_));
  }
  absl::MutexLock lock(&mu_);
  if (version_ > 0 || assigned_) {
    return absl::FailedPreconditionError("dense block already initialised");
  }
  std::copy(values.begin(), values.end(), values_.begin());
  assigned_ = true;
  return absl::OkStatus();
}

absl::Status DenseBlock::Apply(absl::Span<const float> grads, float lr) {
  if (grads.size() != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("dense gradient of ", grads.size(), " floats for a block of ", size_));
  }
  if (!(lr >= 0) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(absl::StrCat("bad learning rate ", lr));
  }
  absl::MutexLock lock(&mu_);
  if (size_ > 0) {
    TOWERPS_RETURN_IF_ERROR(optimizer_->Step(std::span<float>(values_.data(), values_.size()),
                                             std::span<const float>(grads.data(), grads.size()),
                                             lr));
  }
  ++version_;
  return absl::OkStatus();
}

absl::Status DenseBlock::Save(const std::string& path) const {
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    Header h;
    std::memcpy(h.magic, kMagic, sizeof(kMagic));
    h.format_version = kFormatVersion;
    h.optimizer_kind = optimizer_ ? static_cast<uint32_t>(optimizer_->options().kind) : 0;
    h.offset = offset_;
    h.size = size_;
    h.version = version_;
    h.optimizer_step = optimizer_ ? optimizer_->step() : 0;
    std::span<const float> state =
        optimizer_ ? optimizer_->state() : std::span<const float>();
    h.state_floats = state.size();
    bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
    bytes.append(reinterpret_cast<const char*>(values_.data()), values_.size() * sizeof(float));
    bytes.append(reinterpret_cast<const char*>(state.data()), state.size() * sizeof(float));
  }
  uint32_t crc = Crc32c(bytes);
  bytes.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  return WriteFileAtomically(path, bytes);
}

absl::Status DenseBlock::Load(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.size() < sizeof(Header) + sizeof(uint32_t)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated dense checkpoint (",
                                            bytes.size(), " bytes)"));
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof(uint32_t), sizeof(uint32_t));
  absl::string_view body(bytes.data(), bytes.size() - sizeof(uint32_t));
  if (Crc32c(body) != stored_crc) {
    return absl::DataLossError(absl::StrCat(path, ": dense checkpoint checksum mismatch"));
  }
  Header h;
  std::memcpy(&h, body.data(), sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 || h.format_version != kFormatVersion) {
    return absl::DataLossError(absl::StrCat(path, ": not a dense checkpoint (format ",
                                            h.format_version, ")"));
  }
  if (h.offset != offset_ || h.size != size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": block [", h.offset, ", +", h.size, ") does not match this server's [", offset_,
        ", +", size_, "); restore with the same number of servers and model"));
  }
  if (body.size() != sizeof(Header) + (h.size + h.state_floats) * sizeof(float)) {
    return absl::DataLossError(absl::StrCat(path, ": dense checkpoint length mismatch"));
  }
  const float* values = reinterpret_cast<const float*>(body.data() + sizeof(Header));
  absl::MutexLock lock(&mu_);
  if (optimizer_ != nullptr) {
    if (h.optimizer_kind != static_cast<uint32_t>(optimizer_->options().kind)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": saved with another optimizer"));
    }
    TOWERPS_RETURN_IF_ERROR(optimizer_->RestoreState(
        h.optimizer_step, std::span<const float>(values + h.size, h.state_floats)));
  }
  std::memcpy(values_.data(), values, h.size * sizeof(float));
  version_ = h.version;
  assigned_ = true;
  return absl::OkStatus();
}

}  // namespace towerps::ps
