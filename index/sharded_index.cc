#include "index/sharded_index.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "common/hash.h"
#include "common/status.h"
#include "index/shard_search_pool.h"

namespace towerps::index {
namespace {

constexpr absl::string_view kManifestHeader = "towerps-index 1";

// A shard file's extension for its engine.
absl::string_view ShardExtension(AnnEngine engine) {
  switch (engine) {
    case AnnEngine::kHnswlib:
      return "hnsw";
    case AnnEngine::kExact:
      return "flat";
    default:
      return "faiss";
  }
}

bool Better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.key < b.key;
}

}  // namespace

uint32_t ShardOf(uint64_t key, int num_shards) {
  return ReduceToRange(Mix64(key), static_cast<uint32_t>(num_shards));
}

std::vector<Hit> MergeHits(absl::Span<const std::vector<Hit>> lists, int k) {
  std::vector<Hit> all;
  for (const auto& list : lists) all.insert(all.end(), list.begin(), list.end());
  const size_t keep = std::min<size_t>(all.size(), std::max(k, 0));
  std::partial_sort(all.begin(), all.begin() + keep, all.end(), Better);
  all.resize(keep);
  return all;
}

std::string IndexManifest::ToString() const {
  std::string out =
      absl::StrCat(kManifestHeader, "\ndim ", dim, "\nshards ", shards.size(), "\nitems ", items,
                   "\nmodel_step ", model_step, "\nengine ", AnnEngineName(engine), "\nfactory ",
                   factory, "\nef_construction ", ef_construction, "\n");
  for (size_t s = 0; s < shards.size(); ++s) {
    absl::StrAppend(&out, "shard ", s, " ", shards[s].file, " ", shards[s].count, " ",
                    shards[s].bytes, " ", shards[s].crc32c, "\n");
  }
  return out;
}

absl::StatusOr<IndexManifest> IndexManifest::Parse(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  auto bad = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("index MANIFEST: ", why));
  };
  if (lines.empty() || lines[0] != kManifestHeader) return bad("unknown header");
  IndexManifest manifest;
  int64_t num_shards = -1;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> f = absl::StrSplit(lines[i], ' ');
    bool ok = f.size() >= 2;
    if (ok && f[0] == "dim") {
      ok = f.size() == 2 && absl::SimpleAtoi(f[1], &manifest.dim);
    } else if (ok && f[0] == "shards") {
      ok = f.size() == 2 && absl::SimpleAtoi(f[1], &num_shards);
    } else if (ok && f[0] == "items") {
      ok = f.size() == 2 && absl::SimpleAtoi(f[1], &manifest.items);
    } else if (ok && f[0] == "model_step") {
      ok = f.size() == 2 && absl::SimpleAtoi(f[1], &manifest.model_step);
    } else if (ok && f[0] == "engine") {
      auto engine = ParseAnnEngine(f[1]);
      ok = f.size() == 2 && engine.ok() && *engine != AnnEngine::kAuto;
      if (ok) manifest.engine = *engine;
    } else if (ok && f[0] == "factory") {
      manifest.factory = std::string(lines[i].substr(8));
    } else if (ok && f[0] == "ef_construction") {
      ok = f.size() == 2 && absl::SimpleAtoi(f[1], &manifest.ef_construction);
    } else if (ok && f[0] == "shard") {
      ShardManifestEntry entry;
      size_t index;
      ok = f.size() == 6 && absl::SimpleAtoi(f[1], &index) &&
           index == manifest.shards.size() && absl::SimpleAtoi(f[3], &entry.count) &&
           absl::SimpleAtoi(f[4], &entry.bytes) && absl::SimpleAtoi(f[5], &entry.crc32c) &&
           f[2].find('/') == absl::string_view::npos;
      if (ok) {  // f[2] exists only when the line had its six fields
        entry.file = std::string(f[2]);
        manifest.shards.push_back(std::move(entry));
      }
    } else {
      ok = false;
    }
    if (!ok) return bad(absl::StrCat("bad line ", i + 1, ": '", lines[i], "'"));
  }
  if (manifest.dim < 1 || num_shards < 1 ||
      static_cast<int64_t>(manifest.shards.size()) != num_shards) {
    return bad("missing dim or shard lines");
  }
  return manifest;
}

absl::Status IndexBuildOptions::Validate() const {
  if (shards < 1 || shards > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("shards must be in [1, 65536], got ", shards));
  }
  if (threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  return ann.Validate();
}

std::vector<std::vector<int64_t>> PartitionByShard(absl::Span<const uint64_t> keys,
                                                   int num_shards) {
  std::vector<std::vector<int64_t>> rows(num_shards);
  for (size_t i = 0; i < keys.size(); ++i) rows[ShardOf(keys[i], num_shards)].push_back(i);
  return rows;
}

absl::StatusOr<IndexManifest> BuildShardedIndex(const IndexBuildOptions& options,
                                                absl::Span<const uint64_t> keys,
                                                const float* vectors, int dim,
                                                int64_t model_step, const std::string& dir) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if (dim < 1 || (!keys.empty() && vectors == nullptr)) {
    return absl::InvalidArgumentError("build index: bad shape");
  }
  absl::flat_hash_set<uint64_t> distinct(keys.begin(), keys.end());
  if (distinct.size() != keys.size()) {
    return absl::InvalidArgumentError("build index: duplicate item keys");
  }
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(dir));
  const auto rows = PartitionByShard(keys, options.shards);
  IndexManifest manifest;
  manifest.dim = dim;
  manifest.items = static_cast<int64_t>(keys.size());
  manifest.model_step = model_step;
  AnnIndexOptions ann = options.ann;
  size_t largest = 0;
  for (const auto& shard_rows : rows) largest = std::max(largest, shard_rows.size());
  ann.engine = ann.EngineFor(static_cast<int64_t>(largest));
  manifest.engine = ann.engine;
  manifest.factory = ann.EffectiveFactory();
  manifest.ef_construction = options.ann.ef_construction;
  manifest.shards.resize(options.shards);

  const int threads = std::min(options.threads, options.shards);
  const int omp_threads =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / threads);
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  auto build = [&] {
    std::vector<float> shard_vectors;
    std::vector<int64_t> ids;
    for (int s = next++; s < options.shards; s = next++) {
      shard_vectors.clear();
      ids.clear();
      for (int64_t row : rows[s]) {
        shard_vectors.insert(shard_vectors.end(), vectors + row * dim, vectors + (row + 1) * dim);
        ids.push_back(static_cast<int64_t>(keys[row]));
      }
      ShardManifestEntry& entry = manifest.shards[s];
      entry.file = absl::StrFormat("shard-%05d.%s", s, ShardExtension(ann.engine));
      entry.count = static_cast<int64_t>(ids.size());
      absl::Status status = [&]() -> absl::Status {
        TOWERPS_ASSIGN_OR_RETURN(auto index, AnnIndex::Build(ann, shard_vectors.data(), ids.data(),
                                                             entry.count, dim, omp_threads));
        TOWERPS_ASSIGN_OR_RETURN(std::string bytes, index->Serialize());
        entry.bytes = bytes.size();
        entry.crc32c = Crc32c(bytes);
        return WriteFileAtomically(absl::StrCat(dir, "/", entry.file), bytes);
      }();
      if (!status.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = status;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(build);
  build();
  for (auto& thread : pool) thread.join();
  TOWERPS_RETURN_IF_ERROR(first_error);
  TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(dir, "/MANIFEST"), manifest.ToString()));
  return manifest;
}

absl::Status ShardedIndexOptions::Validate() const {
  if (search_threads < 0 || search_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("search_threads must be in [0, 1024], got ", search_threads));
  }
  return absl::OkStatus();
}

ShardedIndex::~ShardedIndex() = default;

absl::StatusOr<std::unique_ptr<ShardedIndex>> ShardedIndex::Load(
    const std::string& dir, absl::Span<const int> shards, const ShardedIndexOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(absl::StrCat(dir, "/MANIFEST")));
  std::unique_ptr<ShardedIndex> index(new ShardedIndex());
  TOWERPS_ASSIGN_OR_RETURN(index->manifest_, IndexManifest::Parse(text));
  const int num_shards = static_cast<int>(index->manifest_.shards.size());
  if (shards.empty()) {
    for (int s = 0; s < num_shards; ++s) index->loaded_.push_back(s);
  } else {
    index->loaded_.assign(shards.begin(), shards.end());
  }
  for (int s : index->loaded_) {
    if (s < 0 || s >= num_shards) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard ", s, " out of range: the index has ", num_shards));
    }
    const ShardManifestEntry& entry = index->manifest_.shards[s];
    const std::string path = absl::StrCat(dir, "/", entry.file);
    auto bytes = ReadFileToString(path);
    if (!bytes.ok()) {
      return Annotate(bytes.status(), absl::StrCat("index shard ", s, " (", path, ")"));
    }
    if (bytes->size() != entry.bytes || Crc32c(*bytes) != entry.crc32c) {
      return absl::DataLossError(absl::StrCat(
          "index shard ", s, " (", path, ") does not match the MANIFEST: ", bytes->size(),
          " bytes with CRC-32C ", Crc32c(*bytes), ", expected ", entry.bytes, " bytes with ",
          entry.crc32c, "; the file was changed or truncated - rebuild the index"));
    }
    auto ann = AnnIndex::Deserialize(*bytes, index->manifest_.engine);
    if (!ann.ok()) return Annotate(ann.status(), absl::StrCat("index shard ", s, " (", path, ")"));
    if ((*ann)->dim() != index->manifest_.dim || (*ann)->size() != entry.count) {
      return absl::DataLossError(absl::StrCat("index shard ", s, " (", path,
                                              ") disagrees with the MANIFEST on dim or count"));
    }
    index->indexes_.push_back(std::move(*ann));
  }
  int threads = options.search_threads;
  if (threads == 0) {
    threads = std::min(static_cast<int>(index->indexes_.size()),
                       std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  }
  if (threads > 1) index->pool_ = std::make_unique<ShardSearchPool>(threads - 1);
  return index;
}

absl::StatusOr<std::vector<Hit>> ShardedIndex::Search(const float* query, int k, int ef_search,
                                                      absl::Span<const uint64_t> exclude) const {
  if (k < 1) return absl::InvalidArgumentError("k must be >= 1");
  std::vector<int64_t> excluded(exclude.begin(), exclude.end());
  const int n = static_cast<int>(indexes_.size());
  std::vector<std::vector<Hit>> lists(n);
  std::vector<absl::Status> errors(n);
  auto search_shard = [&](int i) {
    std::vector<int64_t> ids(k);
    std::vector<float> scores(k);
    errors[i] = indexes_[i]->Search(query, k, ef_search, excluded, ids.data(), scores.data());
    for (int j = 0; j < k && ids[j] != -1; ++j) {
      lists[i].push_back({static_cast<uint64_t>(ids[j]), scores[j]});
    }
  };
  if (pool_ != nullptr) {
    pool_->ParallelFor(n, search_shard);
  } else {
    for (int i = 0; i < n; ++i) search_shard(i);
  }
  for (const absl::Status& error : errors) TOWERPS_RETURN_IF_ERROR(error);
  return MergeHits(lists, k);
}

}  // namespace towerps::index
