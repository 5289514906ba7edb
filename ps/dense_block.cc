#include "ps/dense_block.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/file_binding.h"
#include "common/file_util.h"
#include "common/status.h"

namespace towerps::ps {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'S', 'D', 'E', 'N', 'S', 'E'};
// 2: preceded by a FileBinding, masked CRC (1: unbound, plain CRC).
constexpr uint32_t kFormatVersion = 2;

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
    : offset_(offset),
      size_(size),
      optimizer_kind_(optimizer ? static_cast<uint32_t>(optimizer->options().kind) : 0),
      values_(size, 0.0f),
      optimizer_(std::move(optimizer)) {}

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

FileBinding DenseBlock::Binding(const FileBinding& origin) const {
  FileBinding b = origin;
  b.name = "dense";
  b.fingerprint = FingerprintOf(
      absl::StrCat("dense optimizer=", optimizer_kind_, " offset=", offset_, " size=", size_));
  return b;
}

absl::Status DenseBlock::Save(const std::string& path, const FileBinding& origin) const {
  std::string bytes = EncodeFileBinding(Binding(origin));
  {
    absl::MutexLock lock(&mu_);
    Header h;
    std::memcpy(h.magic, kMagic, sizeof(kMagic));
    h.format_version = kFormatVersion;
    h.optimizer_kind = optimizer_kind_;
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
  const uint32_t crc = MaskCrc32c(Crc32c(absl::string_view(bytes).substr(kFileBindingBytes)));
  bytes.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<DenseBlock::Parsed> DenseBlock::Parse(const std::string& path,
                                                     const FileBinding* expected) const {
  Parsed parsed;
  TOWERPS_ASSIGN_OR_RETURN(parsed.bytes, ReadFileToString(path));
  const std::string& bytes = parsed.bytes;
  TOWERPS_ASSIGN_OR_RETURN(FileBinding binding, DecodeFileBinding(bytes, path));
  if (bytes.size() < kFileBindingBytes + sizeof(Header) + sizeof(uint32_t)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated dense checkpoint (",
                                            bytes.size(), " bytes)"));
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof(uint32_t), sizeof(uint32_t));
  absl::string_view body(bytes.data() + kFileBindingBytes,
                         bytes.size() - kFileBindingBytes - sizeof(uint32_t));
  if (Crc32c(body) != UnmaskCrc32c(stored_crc)) {
    return absl::DataLossError(absl::StrCat(path, ": dense checkpoint checksum mismatch"));
  }
  Header& h = parsed.header;
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
  if (h.optimizer_kind != optimizer_kind_) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": saved with another optimizer"));
  }
  if (body.size() != sizeof(Header) + (h.size + h.state_floats) * sizeof(float)) {
    return absl::DataLossError(absl::StrCat(path, ": dense checkpoint length mismatch"));
  }
  TOWERPS_RETURN_IF_ERROR(CheckFileBinding(binding, Binding(expected ? *expected : FileBinding()),
                                           expected != nullptr, path));
  parsed.values_offset = kFileBindingBytes + sizeof(Header);
  if (optimizer_ != nullptr && h.state_floats != optimizer_->state().size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", h.state_floats,
                                                   " floats of optimizer state, want ",
                                                   optimizer_->state().size()));
  }
  return parsed;
}

absl::Status DenseBlock::Verify(const std::string& path, const FileBinding* expected) const {
  return Parse(path, expected).status();
}

absl::Status DenseBlock::Load(const std::string& path, const FileBinding* expected) {
  TOWERPS_ASSIGN_OR_RETURN(Parsed parsed, Parse(path, expected));
  const Header& h = parsed.header;
  const float* values = reinterpret_cast<const float*>(parsed.bytes.data() + parsed.values_offset);
  absl::MutexLock lock(&mu_);
  if (optimizer_ != nullptr) {
    TOWERPS_RETURN_IF_ERROR(optimizer_->RestoreState(
        h.optimizer_step, std::span<const float>(values + h.size, h.state_floats)));
  }
  std::memcpy(values_.data(), values, h.size * sizeof(float));
  version_ = h.version;
  assigned_ = true;
  return absl::OkStatus();
}

}  // namespace towerps::ps
