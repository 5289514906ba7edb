// The model config parser (worker/model_config.h): the input is a config file; a
// parsed config is validated and bound to the schema of a small prepared dataset
// (generated once at start-up).
#include <cstddef>
#include <cstdint>

#include "data/generator.h"
#include "data/prepare.h"
#include "data/schema.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "worker/model_config.h"

namespace {

towerps::data::DatasetSchema MakeSchema() {
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  towerps::data::GenerateOptions generate;
  generate.output_dir = dir.File("log");
  generate.users = 20;
  generate.items = 20;
  generate.interactions = 200;
  generate.clusters = 2;
  generate.content_dim = 4;
  CHECK(towerps::data::Generate(generate).ok());
  towerps::data::PrepareOptions prepare;
  prepare.source.input = generate.output_dir;
  prepare.output_dir = dir.File("dataset");
  prepare.num_shards = 1;
  CHECK(towerps::data::Prepare(prepare).ok());
  auto meta = towerps::data::LoadDatasetMeta(prepare.output_dir);
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
