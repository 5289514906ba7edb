// The checkpoint MANIFEST reader (ps::VerifyCheckpoint): the input is the MANIFEST of
// a directory that also holds two real shard files (written once at start-up), so a
// manifest naming them with the right sizes and checksums verifies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "ps/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  static const bool files_written = [&] {
    dir.Write("ps-0-table-0.snap", "a table snapshot's bytes");
    dir.Write("ps-0-dense.bin", std::string(40, '\x7f'));
    return true;
  }();
  (void)files_written;
  dir.Write("MANIFEST", towerps::fuzz::AsView(data, size));
  (void)towerps::ps::VerifyCheckpoint(dir.path());
  return 0;
}
