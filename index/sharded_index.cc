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
  const BatchQuery one{query, k, ef_search, exclude};
  return std::move(SearchBatch({&one, 1})[0]);
}

std::vector<absl::StatusOr<std::vector<Hit>>> ShardedIndex::SearchBatch(
    absl::Span<const BatchQuery> queries) const {
  const int nq = static_cast<int>(queries.size());
  const int ns = static_cast<int>(indexes_.size());
  std::vector<absl::StatusOr<std::vector<Hit>>> answers(nq);
  std::vector<int> valid;  // queries searched
  std::vector<std::vector<int64_t>> excluded(nq);
  for (int q = 0; q < nq; ++q) {
    if (queries[q].k < 1) {
      answers[q] = absl::InvalidArgumentError("k must be >= 1");
      continue;
    }
    valid.push_back(q);
    excluded[q].assign(queries[q].exclude.begin(), queries[q].exclude.end());
  }
  // Per (shard, valid query): the shard's best k, ids -1 past its end.
  const int nv = static_cast<int>(valid.size());
  if (nv == 0) return answers;
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(ns) * nv);
  std::vector<std::vector<float>> scores(ids.size());
  std::vector<AnnIndex::Query> calls(ids.size());
  for (int s = 0; s < ns; ++s) {
    for (int v = 0; v < nv; ++v) {
      const BatchQuery& q = queries[valid[v]];
      const size_t at = static_cast<size_t>(s) * nv + v;
      ids[at].resize(q.k);
      scores[at].resize(q.k);
      calls[at] = {q.vector, q.k, q.ef_search, excluded[valid[v]], ids[at].data(),
                   scores[at].data()};
    }
  }
  // Tasks: a whole shard (exact, one sgemm over the batch) or one (shard, query).
  std::vector<std::pair<size_t, size_t>> tasks;  // [begin, end) in calls
  for (int s = 0; s < ns; ++s) {
    const size_t begin = static_cast<size_t>(s) * nv;
    if (indexes_[s]->engine() == AnnEngine::kExact) {
      tasks.emplace_back(begin, begin + nv);
    } else {
      for (int v = 0; v < nv; ++v) tasks.emplace_back(begin + v, begin + v + 1);
    }
  }
  std::vector<absl::Status> errors(tasks.size());
  auto run = [&](int t) {
    const auto [begin, end] = tasks[t];
    errors[t] = indexes_[begin / nv]->SearchBatch(
        absl::MakeConstSpan(calls).subspan(begin, end - begin));
  };
  const int n_tasks = static_cast<int>(tasks.size());
  if (pool_ != nullptr) {
    pool_->ParallelFor(n_tasks, run);
  } else {
    for (int t = 0; t < n_tasks; ++t) run(t);
  }
  std::vector<absl::Status> failed(nv);  // a query's first library error
  for (int t = 0; t < n_tasks; ++t) {
    if (errors[t].ok()) continue;
    for (size_t at = tasks[t].first; at < tasks[t].second; ++at) {
      if (failed[at % nv].ok()) failed[at % nv] = errors[t];
    }
  }
  for (int v = 0; v < nv; ++v) {
    if (!failed[v].ok()) {
      answers[valid[v]] = failed[v];
      continue;
    }
    const int k = queries[valid[v]].k;
    std::vector<std::vector<Hit>> lists(ns);
    for (int s = 0; s < ns; ++s) {
      const size_t at = static_cast<size_t>(s) * nv + v;
      for (int j = 0; j < k && ids[at][j] != -1; ++j) {
        lists[s].push_back({static_cast<uint64_t>(ids[at][j]), scores[at][j]});
      }
    }
    answers[valid[v]] = MergeHits(lists, k);
  }
  return answers;
}

}  // namespace towerps::index
