// The dense block checkpoint reader (ps::DenseBlock::Load): the input is the file,
// loaded into a fresh 10-float block with Adam state; a loaded block is read back.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "ps/dense_block.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  towerps::models::DenseOptimizerOptions optimizer;
  auto block = towerps::ps::DenseBlock::Create(/*offset=*/5, /*size=*/10, optimizer);
  CHECK(block.ok()) << block.status();
  const std::string path =
      towerps::fuzz::ScratchDir::Get().Write("dense.bin", towerps::fuzz::AsView(data, size));
  if (!(*block)->Load(path).ok()) return 0;
  std::vector<float> values(10);
  (void)(*block)->Read(values.data());
  return 0;
}
