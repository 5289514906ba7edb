// Item delta files (index/item_delta.h): what `serve` reads from <index_root>/deltas.
// Input byte 0: bit 0 set = recompute the trailing CRC-32C over the rest first, so
// that mutations reach the structural checks behind the checksum. The rest is the
// file. A delta that parses must serialise back to the same bytes and be applied to
// a small live index (refused or searched, never a crash).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "common/pod_bytes.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "index/index_root.h"
#include "index/item_delta.h"
#include "index/live_index.h"
#include "index/sharded_index.h"

namespace {

using namespace towerps;

// A root with v-1 (4 items, dim 2, 2 exact shards), built once.
const std::string& Root() {
  static const std::string* root = [] {
    auto* dir = new std::string(fuzz::ScratchDir::Get().File("root"));
    const std::vector<uint64_t> keys = {1, 2, 3, 4};
    const std::vector<float> values = {1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f};
    index::IndexBuildOptions build;
    build.shards = 2;
    build.ann.engine = index::AnnEngine::kExact;
    CHECK(index::BuildShardedIndex(build, keys, values.data(), 2, 1, *dir + "/v-1").ok());
    CHECK(index::SetCurrentVersion(*dir, "v-1").ok());
    return dir;
  }();
  return *root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) != 0 && file.size() >= 4) {
    const uint32_t crc = Crc32c(absl::string_view(file).substr(0, file.size() - 4));
    std::memcpy(file.data() + file.size() - 4, &crc, 4);
  }
  auto delta = index::ParseItemDelta(file);
  if (!delta.ok()) return 0;
  auto bytes = index::SerializeItemDelta(*delta);
  CHECK(bytes.ok()) << bytes.status();
  CHECK(*bytes == file) << "a parsed delta does not serialise back to its bytes";
  if (delta->dim != 2 || delta->upserts() > 64 || delta->removed_keys.size() > 64) return 0;
  // Applied as seq 1 of v-1: refused or searchable.
  delta->seq = 1;
  delta->base_version = "v-1";
  const std::string& root = Root();
  (void)RemoveAll(root + "/deltas");
  CHECK(index::WriteItemDelta(root, *delta).ok());
  index::LiveIndexOptions options;
  options.dir = root;
  options.watch_interval_ms = 0;
  options.max_fresh_items = 32;
  options.max_tombstones = 32;
  auto live = index::LiveIndex::Open(options, nullptr);
  CHECK(live.ok()) << live.status();
  const float query[2] = {0.5f, 0.5f};
  const uint64_t exclude[] = {2};
  auto hits = (*live)->Current()->Search(query, 3, 8, exclude);
  CHECK(hits.ok()) << hits.status();
  return 0;
}
