// Helpers shared by the libFuzzer targets in fuzz/ (and their gcc-built replay
// programs): splitting one input into several parts or request frames, one scratch
// directory per process for the readers that only take paths, a tiny dataset. Not thread-safe: a fuzz target runs
// one input at a time.
#ifndef TOWERPS_FUZZ_FUZZ_UTIL_H_
#define TOWERPS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "net/towerps.capnp.h"

namespace towerps::fuzz {

// Separates the parts of a multi-part input (several frames, several files).
inline constexpr absl::string_view kPartSeparator = "\n@@@\n";

// The input as text.
inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits `input` on kPartSeparator into at most max_parts parts (the last one keeps
// any further separators).
std::vector<absl::string_view> SplitParts(absl::string_view input, size_t max_parts);

// The inverse of SplitParts (used to write seeds).
std::string JoinParts(const std::vector<std::string>& parts);

// Decodes up to max_frames frames of a multi-part input with small codec limits (so
// messages that outgrow them are reachable within -max_len) and calls `handle` with
// each one that decodes, in order.
void ForEachRequest(absl::string_view input, size_t max_frames,
                    const std::function<void(const net::wire::Envelope::Reader&)>& handle);

// One scratch directory per process, created on first use under $TMPDIR (or /tmp)
// and removed at exit. Fixed file names are rewritten for every input, so a run
// makes no directory churn.
class ScratchDir {
 public:
  // The process's directory.
  static ScratchDir& Get();
  const std::string& path() const { return path_; }
  // <path>/<name>.
  std::string File(absl::string_view name) const;
  // Writes <path>/<name>; aborts on an I/O error (the harness, not the input, is broken).
  std::string Write(absl::string_view name, absl::string_view bytes) const;
  // Removes every entry of the directory (so no file of an earlier input is read).
  void Clear() const;

 private:
  ScratchDir();
  std::string path_;
};

// Generates a tiny interaction log (6 users, 5 items, 24 interactions) into
// <scratch>/log and prepares it (one shard per split, history 3) into
// <scratch>/dataset; returns the dataset directory. Aborts on failure.
std::string PrepareTinyDataset();

}  // namespace towerps::fuzz

#endif  // TOWERPS_FUZZ_FUZZ_UTIL_H_
