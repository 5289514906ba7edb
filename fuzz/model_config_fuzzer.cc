// The model config parser (worker/model_config.h): the input is a config file; a
// parsed config is validated and bound to the schema of a small prepared dataset
// (fuzz_util.h's tiny dataset, made once at start-up).
#include <cstddef>
#include <cstdint>

#include "data/schema.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "worker/model_config.h"

namespace {

towerps::data::DatasetSchema MakeSchema() {
  auto meta = towerps::data::LoadDatasetMeta(towerps::fuzz::PrepareTinyDataset());
  CHECK(meta.ok()) << meta.status();
  return meta->schema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const towerps::data::DatasetSchema* schema =
      new towerps::data::DatasetSchema(MakeSchema());
  auto config = towerps::worker::ParseModelConfig(towerps::fuzz::AsView(data, size));
  if (!config.ok() || !config->Validate().ok()) return 0;
  (void)towerps::worker::BindModel(*config, *schema);
  return 0;
}
