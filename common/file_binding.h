// What a checkpoint file belongs to: the job, the step, the server rank and the
// table (its name and a fingerprint of the config its bytes depend on). Every
// checkpoint file starts with this binding, so a file copied in from another step,
// another run or another table is refused on load with one line saying what differs.
//
// Encoded form (little-endian, kFileBindingBytes = 128, at offset 0 of the file):
//   magic "TWPSBND\0", u32 version (1), i32 rank, u64 job_id, i64 step,
//   u64 fingerprint, u32 name length (<= 72), name (72 bytes, zero padded),
//   u32 zero, u32 masked CRC-32C of bytes 0..119, u32 zero.
//
// Plain data and pure functions; thread-safe.
#ifndef TOWERPS_COMMON_FILE_BINDING_H_
#define TOWERPS_COMMON_FILE_BINDING_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps {

inline constexpr size_t kFileBindingBytes = 128;
inline constexpr size_t kMaxBindingNameBytes = 72;

struct FileBinding {
  // The job's random 64-bit id (0: a file written outside any job, e.g. by a tool).
  uint64_t job_id = 0;
  // The global step of the checkpoint.
  int64_t step = 0;
  // The parameter server rank that wrote it.
  int32_t rank = 0;
  // The table's name, or "dense" for a dense block; at most kMaxBindingNameBytes.
  std::string name;
  // FingerprintOf the config text the file's contents depend on.
  uint64_t fingerprint = 0;
};

// Exactly kFileBindingBytes bytes. `binding.name` longer than kMaxBindingNameBytes is
// a programmer error (CHECK).
std::string EncodeFileBinding(const FileBinding& binding);

// Parses the first kFileBindingBytes of `bytes` (a file's start). DataLoss naming
// `path` when they are short, not a binding (e.g. a file of an older towerps) or
// corrupt.
absl::StatusOr<FileBinding> DecodeFileBinding(absl::string_view bytes, const std::string& path);

// Reads and decodes the binding at the start of the file at `path`. Errors: file
// errors, DataLoss as above.
absl::StatusOr<FileBinding> ReadFileBinding(const std::string& path);

// Empty when `actual` matches `expected`, else what differs, e.g.
// "step 10, not 20; table 'a', not 'b'". Compares the job, step and rank only when
// `compare_origin`; the name and fingerprint always.
std::string BindingDifference(const FileBinding& actual, const FileBinding& expected,
                              bool compare_origin);

// OK when `actual` (read from the file at `path`) matches `expected`; otherwise one
// line naming the file and what differs: InvalidArgument when the table name or
// fingerprint differ (the model config changed), DataLoss when only the job, step or
// rank differ (a file copied in from elsewhere).
absl::Status CheckFileBinding(const FileBinding& actual, const FileBinding& expected,
                              bool compare_origin, const std::string& path);

// A stable 64-bit fingerprint of a canonical config text (the same in every process
// and on every platform).
uint64_t FingerprintOf(absl::string_view text);

}  // namespace towerps

#endif  // TOWERPS_COMMON_FILE_BINDING_H_
