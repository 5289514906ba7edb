// The column spec parser (data/column_spec.h): the input is a spec file.
#include <cstddef>
#include <cstdint>

#include "data/column_spec.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)towerps::data::ParseColumnSpec(towerps::fuzz::AsView(data, size));
  return 0;
}
