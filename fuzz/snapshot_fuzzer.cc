// The sparse table snapshot reader (sparse_emb::EmbeddingTable::Load): input byte 0
// picks one of two table configs (dim 4 fp32 + row-wise Adagrad, or dim 8 fp16 + Adam with
// admission and a row cap), the rest is the snapshot file, loaded into a fresh table;
// a loaded table is then read and saved again.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "sparse_emb/embedding_table.h"
#include "sparse_emb/table_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kConfigs[] = {
      "name=a dim=4 optimizer=rowwise_adagrad stripes=2",
      "name=b dim=8 dtype=fp16 optimizer=adam admit=2 sketch_width=1024 sketch_depth=1 max_rows=16 stripes=1"};
  auto config = towerps::sparse_emb::ParseTableConfig(kConfigs[data[0] % 2]);
  CHECK(config.ok()) << config.status();
  auto table = towerps::sparse_emb::EmbeddingTable::Create(*config, nullptr);
  CHECK(table.ok()) << table.status();
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  const std::string path = dir.Write("table.snap", towerps::fuzz::AsView(data + 1, size - 1));
  if (!(*table)->Load(path).ok()) return 0;
  const uint64_t keys[] = {0, 1, 2, 3, 1u << 20, ~uint64_t{0}};
  std::vector<float> rows(std::size(keys) * config->dim);
  (*table)->Lookup(keys, rows.data());
  (void)(*table)->Save(dir.File("resaved.snap"));
  return 0;
}
