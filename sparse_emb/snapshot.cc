// EmbeddingTable snapshots (Save, SaveIncremental, Verify, Load) and streaming export
// (ForEachRow). File format (little-endian; docs/sparse_emb.md):
//   binding, 128 bytes (common/file_binding.h): job, step, rank, table name, fingerprint
//   header, 72 bytes: magic "TWPSEMB\0", u32 version (3), u32 kind (1 full, 2
//     incremental), u32 dim, u32 dtype, u32 optimizer, u32 state_floats, u32 num_stripes,
//     u32 sketch_depth, u64 sketch_width (per stripe), u64 row_count,
//     u64 erased_count (version 3: both 0, the counts are in the end block),
//     u32 masked crc32c(bytes 0..63), u32 zero
//   blocks: u32 type, u32 aux, u64 count, u64 payload_bytes, payload,
//     u32 masked crc32c(block header + payload); types: 1 rows (count records of the row's
//     first 20 + 4*state_floats + dim*dtype_bytes bytes, dirty bit cleared),
//     2 erased keys (count u64), 3 sketch (aux = stripe, counters), 4 end (last; version
//     3: 16 bytes, u64 row_count, u64 erased_count).
//   Version 3 writes stripe by stripe (rows, erased keys, sketch of stripe 0, then 1...),
//   so the counts are known only at the end; version 2 files (counts in the header)
//   still load.
// Non-stopping saves: a stripe is copied a chunk of rows (4 MiB) at a time under
// its lock, which is released before the chunk is written, so a push waits at most for
// one chunk's copy (docs/sparse_emb.md).
// Embedded CRCs are masked (common/checksum.h) so the MANIFEST's CRC of the whole file
// depends on every byte of it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/pod_bytes.h"
#include "common/checksum.h"
#include "common/file_binding.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"
#include "sparse_emb/embedding_table.h"

namespace towerps::sparse_emb {
namespace {

constexpr char kMagic[8] = {'T', 'W', 'P', 'S', 'E', 'M', 'B', '\0'};
constexpr uint32_t kVersion = 3;  // 1: unbound, plain CRCs; 2: counts in the header
constexpr uint32_t kOldVersion = 2;
constexpr uint64_t kEndBytes = 16;  // version 3's end block: row and erased counts
constexpr uint32_t kKindFull = 1;
constexpr uint32_t kKindIncremental = 2;
constexpr size_t kHeaderBytes = 72;
constexpr size_t kBlockHeaderBytes = 24;
constexpr uint32_t kBlockRows = 1;
constexpr uint32_t kBlockErased = 2;
constexpr uint32_t kBlockSketch = 3;
constexpr uint32_t kBlockEnd = 4;
constexpr size_t kBlockTargetBytes = 4 << 20;
// Bounds what a corrupt length can make Load allocate; real blocks are <= ~4 MiB
// (rows) or one stripe's sketch / erased keys.
constexpr uint64_t kMaxPayloadBytes = uint64_t{1} << 30;

struct Header {
  uint32_t version = kVersion;
  uint32_t kind = 0;
  uint32_t dim = 0;
  uint32_t dtype = 0;
  uint32_t optimizer = 0;
  uint32_t state_floats = 0;
  uint32_t num_stripes = 0;
  uint32_t sketch_depth = 0;
  uint64_t sketch_width = 0;
  uint64_t row_count = 0;
  uint64_t erased_count = 0;
};


std::string EncodeHeader(const Header& h) {
  std::string out(kMagic, sizeof(kMagic));
  for (uint32_t v : {h.version, h.kind, h.dim, h.dtype, h.optimizer, h.state_floats,
                     h.num_stripes, h.sketch_depth}) {
    AppendPod(&out, v);
  }
  for (uint64_t v : {h.sketch_width, h.row_count, h.erased_count}) AppendPod(&out, v);
  AppendPod(&out, MaskCrc32c(Crc32c(out)));
  AppendPod(&out, uint32_t{0});
  return out;
}

// Sequential reads with Status errors; short reads are reported to the caller.
class FileReader {
 public:
  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  absl::Status Open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
    return absl::OkStatus();
  }
  // Reads up to n bytes; *got < n only at end of file.
  absl::Status Read(char* out, size_t n, size_t* got) {
    *got = 0;
    while (*got < n) {
      ssize_t r = ::read(fd_, out + *got, n - *got);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, absl::StrCat("read ", path_));
      }
      if (r == 0) break;
      *got += static_cast<size_t>(r);
    }
    return absl::OkStatus();
  }
  absl::Status ReadExact(char* out, size_t n, absl::string_view what) {
    size_t got;
    TOWERPS_RETURN_IF_ERROR(Read(out, n, &got));
    if (got != n) return absl::DataLossError(absl::StrCat(path_, ": truncated ", what));
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// Visits every block of a snapshot after checking its binding against `binding`
// (name and fingerprint always; job, step and rank when `compare_origin`) and its
// header against `layout`; every structural problem is DataLoss.
// visit(type, aux, count, payload).
template <typename Visit>
absl::Status WalkSnapshot(const std::string& path, const TableConfig& config,
                          const RowLayout& layout, const FileBinding& binding, bool compare_origin,
                          Header* header, Visit&& visit) {
  FileReader in;
  TOWERPS_RETURN_IF_ERROR(in.Open(path));
  char bound[kFileBindingBytes];
  size_t got_binding;
  TOWERPS_RETURN_IF_ERROR(in.Read(bound, kFileBindingBytes, &got_binding));
  TOWERPS_ASSIGN_OR_RETURN(FileBinding actual,
                           DecodeFileBinding(absl::string_view(bound, got_binding), path));
  char hb[kHeaderBytes];
  TOWERPS_RETURN_IF_ERROR(in.ReadExact(hb, kHeaderBytes, "header"));
  if (std::memcmp(hb, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not a sparse_emb snapshot (bad magic)"));
  }
  if (UnmaskCrc32c(LoadPod<uint32_t>(hb + 64)) != Crc32c(absl::string_view(hb, 64))) {
    return absl::DataLossError(absl::StrCat(path, ": header checksum mismatch"));
  }
  Header& h = *header;
  h.version = LoadPod<uint32_t>(hb + 8);
  if (h.version != kVersion && h.version != kOldVersion) {
    return absl::DataLossError(absl::StrCat(path, ": unsupported format version ", h.version));
  }
  h.kind = LoadPod<uint32_t>(hb + 12);
  h.dim = LoadPod<uint32_t>(hb + 16);
  h.dtype = LoadPod<uint32_t>(hb + 20);
  h.optimizer = LoadPod<uint32_t>(hb + 24);
  h.state_floats = LoadPod<uint32_t>(hb + 28);
  h.num_stripes = LoadPod<uint32_t>(hb + 32);
  h.sketch_depth = LoadPod<uint32_t>(hb + 36);
  h.sketch_width = LoadPod<uint64_t>(hb + 40);
  h.row_count = LoadPod<uint64_t>(hb + 48);
  h.erased_count = LoadPod<uint64_t>(hb + 56);
  if (h.kind != kKindFull && h.kind != kKindIncremental) {
    return absl::DataLossError(absl::StrCat(path, ": bad snapshot kind ", h.kind));
  }
  if (h.dim != static_cast<uint32_t>(config.dim) ||
      h.dtype != static_cast<uint32_t>(config.dtype) ||
      h.optimizer != static_cast<uint32_t>(config.optimizer.kind) ||
      h.state_floats != static_cast<uint32_t>(layout.state_floats)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": snapshot is dim ", h.dim, " dtype ", h.dtype, " optimizer ", h.optimizer,
        "; table '", config.name, "' is dim ", config.dim, " dtype ", DTypeName(config.dtype),
        " optimizer ", OptimizerName(config.optimizer.kind)));
  }
  // After the shape check, whose message says more when only the config changed.
  TOWERPS_RETURN_IF_ERROR(CheckFileBinding(actual, binding, compare_origin, path));
  const uint64_t record_bytes = layout.embedding_offset + DTypeBytes(config.dtype) * h.dim;
  uint64_t rows = 0, erased = 0;
  std::vector<char> payload;
  while (true) {
    char bh[kBlockHeaderBytes];
    TOWERPS_RETURN_IF_ERROR(in.ReadExact(bh, kBlockHeaderBytes, "block header"));
    const uint32_t type = LoadPod<uint32_t>(bh);
    const uint32_t aux = LoadPod<uint32_t>(bh + 4);
    const uint64_t count = LoadPod<uint64_t>(bh + 8);
    const uint64_t bytes = LoadPod<uint64_t>(bh + 16);
    uint64_t expected;
    switch (type) {
      case kBlockRows:
        expected = count * record_bytes;
        break;
      case kBlockErased:
        expected = count * 8;
        break;
      case kBlockSketch:
      case kBlockEnd:
        expected = count;
        break;
      default:
        return absl::DataLossError(absl::StrCat(path, ": unknown block type ", type));
    }
    if (bytes != expected || bytes > kMaxPayloadBytes || count > kMaxPayloadBytes) {
      return absl::DataLossError(absl::StrCat(path, ": bad block length"));
    }
    payload.resize(bytes + 4);
    TOWERPS_RETURN_IF_ERROR(in.ReadExact(payload.data(), bytes + 4, "block"));
    const uint32_t crc =
        Crc32cExtend(Crc32cExtend(0, bh, kBlockHeaderBytes), payload.data(), bytes);
    if (crc != UnmaskCrc32c(LoadPod<uint32_t>(payload.data() + bytes))) {
      return absl::DataLossError(absl::StrCat(path, ": block checksum mismatch"));
    }
    if (type == kBlockEnd) {
      if (bytes != (h.version == kVersion ? kEndBytes : 0)) {
        return absl::DataLossError(absl::StrCat(path, ": bad end block"));
      }
      if (h.version == kVersion) {
        h.row_count = LoadPod<uint64_t>(payload.data());
        h.erased_count = LoadPod<uint64_t>(payload.data() + 8);
      }
      break;
    }
    if (type == kBlockRows) rows += count;
    if (type == kBlockErased) erased += count;
    visit(type, aux, count, payload.data());
  }
  char extra;
  size_t got;
  TOWERPS_RETURN_IF_ERROR(in.Read(&extra, 1, &got));
  if (got != 0) return absl::DataLossError(absl::StrCat(path, ": trailing bytes after end block"));
  if (rows != h.row_count || erased != h.erased_count) {
    return absl::DataLossError(absl::StrCat(path, ": header promises ", h.row_count, " rows and ",
                                            h.erased_count, " erased keys, file holds ", rows,
                                            " and ", erased));
  }
  return absl::OkStatus();
}

class BlockWriter {
 public:
  explicit BlockWriter(AtomicFileWriter* out) : out_(out) {}
  absl::Status Write(uint32_t type, uint32_t aux, uint64_t count, absl::string_view payload) {
    std::string bh;
    AppendPod(&bh, type);
    AppendPod(&bh, aux);
    AppendPod(&bh, count);
    AppendPod(&bh, static_cast<uint64_t>(payload.size()));
    uint32_t crc = Crc32cExtend(Crc32c(bh), payload.data(), payload.size());
    TOWERPS_RETURN_IF_ERROR(out_->Append(bh));
    TOWERPS_RETURN_IF_ERROR(out_->Append(payload));
    std::string tail;
    AppendPod(&tail, MaskCrc32c(crc));
    return out_->Append(tail);
  }

 private:
  AtomicFileWriter* out_;
};

}  // namespace

FileBinding EmbeddingTable::Binding(const FileBinding& origin) const {
  FileBinding b = origin;
  b.name = config_.name;
  b.fingerprint = TableFingerprint(config_);
  return b;
}

absl::Status EmbeddingTable::Save(const std::string& path, const FileBinding& origin) {
  return Save(path, origin, SaveOptions{});
}

absl::Status EmbeddingTable::SaveIncremental(const std::string& path, const FileBinding& origin) {
  SaveOptions options;
  options.incremental = true;
  return Save(path, origin, options);
}

absl::Status EmbeddingTable::Verify(const std::string& path, const FileBinding* expected) const {
  Header header;
  return WalkSnapshot(path, config_, layout_, Binding(expected ? *expected : FileBinding()),
                      expected != nullptr, &header,
                      [](uint32_t, uint32_t, uint64_t, const char*) {});
}

absl::Status EmbeddingTable::Save(const std::string& path, const FileBinding& origin,
                                  const SaveOptions& options) {
  absl::MutexLock snapshot_lock(&snapshot_mu_);
  // After a failed save some stripes' dirty bits and erased keys are gone: only a full
  // snapshot is a sound baseline again.
  const bool incremental = options.incremental && !baseline_lost_;
  if (options.incremental && !incremental) {
    LOG(WARNING) << "sparse_emb " << config_.name << ": the previous save failed; " << path
                 << " is written as a full snapshot";
  }
  if (!track_erased_) {
    // From here on erasures are remembered: a stripe erasing a key after its copy
    // lists it for the next incremental snapshot.
    LockAll();
    track_erased_ = true;
    UnlockAll();
  }
  baseline_lost_ = true;  // until this save is durable
  const size_t record_bytes = layout_.embedding_offset + DTypeBytes(config_.dtype) * config_.dim;
  Header h;
  h.kind = incremental ? kKindIncremental : kKindFull;
  h.dim = config_.dim;
  h.dtype = static_cast<uint32_t>(config_.dtype);
  h.optimizer = static_cast<uint32_t>(config_.optimizer.kind);
  h.state_floats = layout_.state_floats;
  h.num_stripes = config_.num_stripes;
  h.sketch_depth = stripes_[0]->sketch.depth();
  h.sketch_width = stripes_[0]->sketch.width();
  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Open(path));
  TOWERPS_RETURN_IF_ERROR(out.Append(EncodeFileBinding(Binding(origin))));
  TOWERPS_RETURN_IF_ERROR(out.Append(EncodeHeader(h)));
  BlockWriter blocks(&out);
  // Each stripe is walked in slab order (rows never move) in chunks of at most
  // per_chunk rows, each chunk copied under the stripe's lock (each row with its
  // optimizer state; the dirty bit cleared in the copy and in the table) and written
  // without it. A change to a row after its chunk was copied leaves it dirty: it is in
  // the next incremental snapshot. At the walk's end, under the same lock, the keys
  // erased since the last save (incremental) or during the walk (full) that are still
  // absent follow the rows: a row copied before its erasure is then dropped on load. A
  // key erased and created again is not listed: its new row is in this file or dirty.
  const size_t per_chunk = std::max<size_t>(1, options.chunk_bytes / record_bytes);
  std::string rows;
  rows.reserve(per_chunk * record_bytes);  // allocated once, outside any lock
  std::vector<uint64_t> erased;
  std::vector<uint8_t> counters;
  uint64_t total_rows = 0, total_erased = 0;
  double longest_lock = 0;
  for (uint32_t i = 0; i < stripes_.size(); ++i) {
    Stripe& s = *stripes_[i];
    uint64_t cursor = 0;
    bool more = true;
    while (more) {
      rows.clear();
      {
        absl::MutexLock lock(&s.mu);
        const auto locked = std::chrono::steady_clock::now();
        if (cursor == 0 && !incremental) s.erased_since_save.clear();
        more = s.store.ForEachRowFrom(&cursor, static_cast<int64_t>(per_chunk), [&](char* row) {
          const uint32_t count = RowLayout::CountWord(row);
          if (incremental && (count & RowLayout::kDirtyBit) == 0) return;
          RowLayout::SetCountWord(row, count & ~RowLayout::kDirtyBit);
          rows.append(row, record_bytes);
        });
        if (!more) {
          erased.clear();
          for (uint64_t key : s.erased_since_save) {
            if (s.store.Find(key, Mix64(key)) == nullptr) erased.push_back(key);
          }
          s.erased_since_save.clear();
          counters = s.sketch.counters();
        }
        longest_lock = std::max(
            longest_lock,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - locked).count());
      }
      if (options.after_chunk_copied) options.after_chunk_copied(static_cast<int>(i));
      if (!rows.empty()) {
        const size_t n = rows.size() / record_bytes;
        TOWERPS_RETURN_IF_ERROR(blocks.Write(kBlockRows, i, n, rows));
        total_rows += n;
      }
    }
    if (!erased.empty()) {
      TOWERPS_RETURN_IF_ERROR(blocks.Write(
          kBlockErased, i, erased.size(),
          absl::string_view(reinterpret_cast<const char*>(erased.data()), erased.size() * 8)));
      total_erased += erased.size();
    }
    if (!counters.empty()) {
      TOWERPS_RETURN_IF_ERROR(blocks.Write(
          kBlockSketch, i, counters.size(),
          absl::string_view(reinterpret_cast<const char*>(counters.data()), counters.size())));
    }
  }
  std::string end;
  AppendPod(&end, total_rows);
  AppendPod(&end, total_erased);
  TOWERPS_RETURN_IF_ERROR(blocks.Write(kBlockEnd, 0, end.size(), end));
  TOWERPS_RETURN_IF_ERROR(out.Commit());
  baseline_lost_ = false;  // this snapshot is the new incremental baseline
  if (options.stats != nullptr) {
    *options.stats = {static_cast<int64_t>(total_rows), static_cast<int64_t>(total_erased),
                      longest_lock};
  }
  return absl::OkStatus();
}

void EmbeddingTable::ApplyBlockLocked(uint32_t type, uint32_t aux, uint64_t count,
                                      const char* payload, bool sketch_compatible) {
  const size_t record_bytes = layout_.embedding_offset + DTypeBytes(config_.dtype) * config_.dim;
  if (type == kBlockRows) {
    for (uint64_t r = 0; r < count; ++r) {
      const char* rec = payload + r * record_bytes;
      const uint64_t key = LoadPod<uint64_t>(rec);
      const uint64_t hash = Mix64(key);
      RowStore& store = stripes_[StripeOf(hash)]->store;
      char* row = store.Find(key, hash);
      if (row == nullptr) row = store.Insert(key, hash);
      std::memcpy(row, rec, record_bytes);
    }
  } else if (type == kBlockErased) {
    for (uint64_t r = 0; r < count; ++r) {
      const uint64_t key = LoadPod<uint64_t>(payload + 8 * r);
      const uint64_t hash = Mix64(key);
      stripes_[StripeOf(hash)]->store.Erase(key, hash);
    }
  } else if (type == kBlockSketch && sketch_compatible && aux < stripes_.size()) {
    std::vector<uint8_t>& counters = stripes_[aux]->sketch.mutable_counters();
    if (counters.size() == count) std::memcpy(counters.data(), payload, count);
  }
}

absl::Status EmbeddingTable::Load(const std::string& path, const FileBinding* expected) {
  absl::MutexLock snapshot_lock(&snapshot_mu_);
  const FileBinding binding = Binding(expected ? *expected : FileBinding());
  // Pass 1 verifies the whole file without touching the table.
  Header header;
  TOWERPS_RETURN_IF_ERROR(WalkSnapshot(path, config_, layout_, binding, expected != nullptr,
                                       &header, [](uint32_t, uint32_t, uint64_t, const char*) {}));
  const bool sketch_compatible =
      header.num_stripes == static_cast<uint32_t>(config_.num_stripes) &&
      header.sketch_width == static_cast<uint64_t>(stripes_[0]->sketch.width()) &&
      header.sketch_depth == static_cast<uint32_t>(stripes_[0]->sketch.depth());
  if (!sketch_compatible && stripes_[0]->sketch.width() > 0) {
    LOG(WARNING) << "sparse_emb " << config_.name << ": " << path
                 << " has a different admission sketch geometry; admission counts restart";
  }
  // Pass 2 applies it with every stripe locked. Having verified the file, only an I/O
  // error or a concurrent rewrite of the file can fail here.
  LockAll();
  const int64_t before = [&] {
    int64_t n = 0;
    for (auto& s : stripes_) n += s->store.size();
    return n;
  }();
  if (header.kind == kKindFull) {
    for (auto& s : stripes_) {
      s->store.Clear();
      s->sketch.Clear();
      s->erased_since_save.clear();
    }
  }
  Header again;
  absl::Status status =
      WalkSnapshot(path, config_, layout_, binding, expected != nullptr, &again,
                   [&](uint32_t type, uint32_t aux, uint64_t count, const char* payload) {
                     ApplyBlockLocked(type, aux, count, payload, sketch_compatible);
                   });
  int64_t after = 0;
  for (auto& s : stripes_) after += s->store.size();
  track_erased_ = true;
  UnlockAll();
  if (!status.ok()) {
    baseline_lost_ = true;
  } else if (header.kind == kKindFull) {
    baseline_lost_ = false;
  }
  total_rows_.fetch_add(after - before, std::memory_order_relaxed);
  if (rows_metric_ != nullptr) rows_metric_->Set(static_cast<double>(size()));
  if (!status.ok()) {
    LOG(ERROR) << "sparse_emb " << config_.name << ": " << path
               << " failed after verification; table partially loaded: " << status;
  }
  return status;
}

absl::Status EmbeddingTable::ForEachRow(
    int64_t chunk_rows,
    const std::function<absl::Status(absl::Span<const uint64_t>, const float*)>& fn) const {
  if (chunk_rows <= 0) return absl::InvalidArgumentError("chunk_rows must be > 0");
  std::vector<uint64_t> keys;
  std::vector<float> values(static_cast<size_t>(chunk_rows) * config_.dim);
  keys.reserve(chunk_rows);
  for (const auto& stripe : stripes_) {
    uint64_t cursor = 0;
    bool more = true;
    while (more) {
      keys.clear();
      {
        absl::MutexLock lock(&stripe->mu);
        more = stripe->store.ForEachRowFrom(&cursor, chunk_rows, [&](const char* row) {
          layout_.ReadEmbedding(row, values.data() + keys.size() * config_.dim);
          keys.push_back(RowLayout::Key(row));
        });
      }
      if (!keys.empty()) TOWERPS_RETURN_IF_ERROR(fn(keys, values.data()));
    }
  }
  return absl::OkStatus();
}

}  // namespace towerps::sparse_emb
