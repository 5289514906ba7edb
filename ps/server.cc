#include "ps/server.h"

#include <capnp/message.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_binding.h"
#include "common/file_util.h"
#include "common/numeric_bounds.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/checkpoint.h"
#include "ps/shard_map.h"

namespace towerps::ps {
namespace {

using net::wire::Envelope;

// A Data blob viewed as n values of T. The codec hands out 8-byte aligned frames and
// Cap'n Proto blobs start on word boundaries, so this reads in place.
template <typename T>
absl::StatusOr<absl::Span<const T>> BlobAs(capnp::Data::Reader data, absl::string_view what) {
  if (data.size() % sizeof(T) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " of ", data.size(), " bytes is not a whole number of values"));
  }
  if (reinterpret_cast<uintptr_t>(data.begin()) % alignof(T) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not aligned"));
  }
  return absl::MakeConstSpan(reinterpret_cast<const T*>(data.begin()), data.size() / sizeof(T));
}

std::string TableFile(int rank, int table) {
  return absl::StrCat("ps-", rank, "-table-", table, ".snap");
}
std::string DenseFile(int rank) { return absl::StrCat("ps-", rank, "-dense.bin"); }

// A checkpoint directory that is a symlink could lead a save or a restore anywhere.
absl::Status RefuseSymlink(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_symlink(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " is a symlink; checkpoint directories must be real directories"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParameterServerOptions::Validate() const {
  if (num_servers <= 0 || rank < 0 || rank >= num_servers) {
    return absl::InvalidArgumentError(
        absl::StrCat("server rank ", rank, " out of range for ", num_servers, " servers"));
  }
  for (const auto& table : tables) {
    TOWERPS_RETURN_IF_ERROR(Annotate(table.Validate(), absl::StrCat("table ", table.name)));
  }
  if (max_keys_per_request == 0) {
    return absl::InvalidArgumentError("max_keys_per_request must be > 0");
  }
  if (max_reply_bytes == 0) return absl::InvalidArgumentError("max_reply_bytes must be > 0");
  auto [begin, end] = DenseRange(rank, num_servers, dense_params);
  if ((end - begin) * sizeof(float) > net::kMaxBlobBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a dense block of ", end - begin, " floats does not fit one message (",
        net::kMaxBlobBytes, " bytes); run more parameter servers"));
  }
  return dense_optimizer.Validate();
}

ParameterServer::ParameterServer(const ParameterServerOptions& options, MetricsRegistry* metrics)
    : options_(options) {
  if (metrics != nullptr) {
    pulled_keys_ = metrics->GetCounter("towerps_ps_pulled_keys_total");
    pushed_keys_ = metrics->GetCounter("towerps_ps_pushed_keys_total");
    duplicate_pushes_ = metrics->GetCounter("towerps_ps_duplicate_pushes_total");
    refused_pushes_ = metrics->GetCounter("towerps_ps_refused_pushes_total");
  }
}

absl::StatusOr<std::unique_ptr<ParameterServer>> ParameterServer::Create(
    const ParameterServerOptions& options, MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<ParameterServer> server(new ParameterServer(options, metrics));
  for (const auto& config : options.tables) {
    TOWERPS_ASSIGN_OR_RETURN(auto table, sparse_emb::EmbeddingTable::Create(config, metrics));
    server->tables_.push_back(std::move(table));
  }
  auto [begin, end] = DenseRange(options.rank, options.num_servers, options.dense_params);
  TOWERPS_ASSIGN_OR_RETURN(server->dense_,
                           DenseBlock::Create(begin, end - begin, options.dense_optimizer));
  return server;
}

absl::StatusOr<sparse_emb::EmbeddingTable*> ParameterServer::TableFor(uint32_t id) const {
  if (id >= tables_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no table ", id, " (this job has ", tables_.size(), ")"));
  }
  return tables_[id].get();
}

absl::StatusOr<std::string> ParameterServer::Handle(const Envelope::Reader& request) {
  switch (request.getBody().which()) {
    case Envelope::Body::PULL_SPARSE:
      return PullSparse(request);
    case Envelope::Body::PUSH_SPARSE:
      return PushSparse(request);
    case Envelope::Body::PULL_DENSE:
      return PullDense(request);
    case Envelope::Body::PUSH_DENSE:
      return PushDense(request);
    case Envelope::Body::CHECKPOINT:
      return Checkpoint(request);
    case Envelope::Body::PING: {
      net::FrameBuilder message(0);
      auto reply = message.initRoot<Envelope>();
      net::InitEnvelope(reply, options_.name, request.getRequestId());
      reply.getBody().initPong().setNonce(request.getBody().getPing().getNonce());
      return message.Finish();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "a parameter server does not serve message kind ",
          static_cast<int>(request.getBody().which())));
  }
}

absl::StatusOr<std::vector<ParameterServer::TablePart>> ParameterServer::ParseParts(
    capnp::List<net::wire::TableKeys>::Reader parts, bool push) const {
  std::vector<TablePart> out;
  out.reserve(parts.size());
  uint64_t total_keys = 0;
  for (auto part : parts) {
    TablePart p;
    TOWERPS_ASSIGN_OR_RETURN(p.table, TableFor(part.getTable()));
    for (const TablePart& seen : out) {
      if (seen.table == p.table) {
        return absl::InvalidArgumentError(
            absl::StrCat("table ", part.getTable(), " appears twice in one request"));
      }
    }
    TOWERPS_ASSIGN_OR_RETURN(p.keys, BlobAs<uint64_t>(part.getKeys(), "keys"));
    total_keys += p.keys.size();
    if (push) {
      TOWERPS_ASSIGN_OR_RETURN(p.grads, BlobAs<float>(part.getGrads(), "grads"));
      if (p.grads.size() != p.keys.size() * static_cast<size_t>(p.table->dim())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "push of ", p.keys.size(), " keys carries ", p.grads.size(), " floats; table ",
            part.getTable(), " has dim ", p.table->dim()));
      }
      p.learning_rate = part.getLearningRate();
      // Bounded rates and gradients keep the optimizer state finite (common/numeric_bounds.h).
      TOWERPS_RETURN_IF_ERROR(
          CheckLearningRate(p.learning_rate, "table", part.getTable()));
      TOWERPS_RETURN_IF_ERROR(CheckGradients(p.grads, "table", part.getTable()));
    }
    out.push_back(p);
  }
  if (total_keys > options_.max_keys_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("request of ", total_keys,
                                                   " keys exceeds the limit of ",
                                                   options_.max_keys_per_request));
  }
  if (!push) {  // the reply carries every key's row: it must fit the wire
    uint64_t reply_bytes = 0;
    for (const TablePart& p : out) {
      const uint64_t bytes = p.keys.size() * static_cast<uint64_t>(p.table->dim()) * sizeof(float);
      if (bytes > net::kMaxBlobBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a pull of ", p.keys.size(), " keys of dim ", p.table->dim(), " asks for ", bytes,
            " bytes of rows; one message holds at most ", net::kMaxBlobBytes,
            " per table: split the request"));
      }
      reply_bytes += bytes;
    }
    if (reply_bytes > options_.max_reply_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a pull asking for ", reply_bytes, " bytes of rows exceeds the reply limit of ",
          options_.max_reply_bytes, ": split the request"));
    }
  }
  return out;
}

absl::StatusOr<std::string> ParameterServer::PullSparse(const Envelope::Reader& request) {
  auto pull = request.getBody().getPullSparse();
  TOWERPS_ASSIGN_OR_RETURN(std::vector<TablePart> parts,
                           ParseParts(pull.getTables(), /*push=*/false));
  size_t payload = 0;
  for (const TablePart& p : parts) payload += p.keys.size() * p.table->dim() * sizeof(float);
  // The rows are written once, by the table, straight into the reply frame.
  net::FrameBuilder message(payload);
  auto reply_envelope = message.initRoot<Envelope>();
  net::InitEnvelope(reply_envelope, options_.name, request.getRequestId());
  auto tables = reply_envelope.getBody().initPullSparseReply().initTables(parts.size());
  int64_t keys = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const TablePart& p = parts[i];
    const int dim = p.table->dim();
    tables[i].setDim(static_cast<uint32_t>(dim));
    float* out = reinterpret_cast<float*>(
        tables[i].initRows(p.keys.size() * dim * sizeof(float)).begin());
    if (pull.getCreate()) {
      p.table->Pull(p.keys, pull.getStep(), out);
    } else {
      p.table->Lookup(p.keys, out);
    }
    keys += static_cast<int64_t>(p.keys.size());
  }
  if (pulled_keys_) pulled_keys_->Increment(keys);
  return message.Finish();
}

absl::StatusOr<absl::Span<const float>> ParameterServer::ParseDenseUpdate(
    net::wire::PushDense::Reader dense) const {
  if (dense.getAssign()) {
    return absl::InvalidArgumentError("initial dense values travel in a standalone PushDense");
  }
  TOWERPS_ASSIGN_OR_RETURN(auto grads, BlobAs<float>(dense.getGrads(), "dense gradient"));
  if (grads.size() != dense_->size()) {
    return absl::InvalidArgumentError(absl::StrCat("dense gradient of ", grads.size(),
                                                   " floats for a block of ", dense_->size()));
  }
  TOWERPS_RETURN_IF_ERROR(CheckLearningRate(dense.getLearningRate(), "dense block"));
  TOWERPS_RETURN_IF_ERROR(CheckGradients(grads, "dense block"));
  return grads;
}

absl::StatusOr<std::string> ParameterServer::PushSparse(const Envelope::Reader& request) {
  auto push = request.getBody().getPushSparse();
  // Every part is checked before any is applied: a bad request changes nothing.
  auto parts = ParseParts(push.getTables(), /*push=*/true);
  const bool dense = push.hasDense();
  absl::StatusOr<absl::Span<const float>> dense_grads = absl::Span<const float>();
  if (parts.ok() && dense) dense_grads = ParseDenseUpdate(push.getDense());
  if (!parts.ok() || !dense_grads.ok()) {
    const absl::Status refused = parts.ok() ? dense_grads.status() : parts.status();
    if (refused_pushes_) refused_pushes_->Increment();
    LOG_EVERY_N(WARNING, 100) << options_.name << ": refused a push (" << google::COUNTER
                              << " so far): " << refused;
    return refused;
  }
  const bool pull = dense && push.getDense().getPull();
  net::FrameBuilder message(pull ? dense_->size() * sizeof(float) : 0);
  auto reply_envelope = message.initRoot<Envelope>();
  net::InitEnvelope(reply_envelope, options_.name, request.getRequestId());
  auto reply = reply_envelope.getBody().initPushReply();
  if (dedup_.Retired(push.getClientId())) {
    // Sent before the workers learnt of this server's restore (a rollback): the
    // parameters it was computed on are gone. The worker reconnects.
    if (refused_pushes_) refused_pushes_->Increment();
    return absl::UnavailableError(absl::StrCat(
        options_.name, ": a push of a client from before this server's restore; reconnect"));
  }
  if (!dedup_.Claim(push.getClientId(), push.getSeq())) {
    reply.setDuplicate(true);
    if (duplicate_pushes_) duplicate_pushes_->Increment();
  } else {
    int64_t keys = 0;
    for (const TablePart& p : *parts) {
      p.table->Push(p.keys, p.grads.data(), p.learning_rate, push.getStep());
      keys += static_cast<int64_t>(p.keys.size());
    }
    if (pushed_keys_) pushed_keys_->Increment(keys);
    if (dense) {
      TOWERPS_RETURN_IF_ERROR(dense_->Apply(*dense_grads, push.getDense().getLearningRate()));
    }
  }
  if (pull) ReadDense(reply.initDense());
  return message.Finish();
}

void ParameterServer::ReadDense(net::wire::PullDenseReply::Builder reply) {
  reply.setOffset(dense_->offset());
  auto values = reply.initValues(dense_->size() * sizeof(float));
  reply.setVersion(dense_->Read(reinterpret_cast<float*>(values.begin())));
}

absl::StatusOr<std::string> ParameterServer::PullDense(const Envelope::Reader& request) {
  net::FrameBuilder message(dense_->size() * sizeof(float));
  auto reply_envelope = message.initRoot<Envelope>();
  net::InitEnvelope(reply_envelope, options_.name, request.getRequestId());
  ReadDense(reply_envelope.getBody().initPullDenseReply());
  return message.Finish();
}

absl::StatusOr<std::string> ParameterServer::PushDense(const Envelope::Reader& request) {
  auto push = request.getBody().getPushDense();
  if (!push.getAssign()) {
    return absl::InvalidArgumentError(
        "a dense update travels in PushSparse.dense; PushDense only assigns initial values");
  }
  TOWERPS_ASSIGN_OR_RETURN(auto values, BlobAs<float>(push.getGrads(), "dense values"));
  if (!AllWithin(values, std::numeric_limits<float>::max())) {
    return absl::InvalidArgumentError("dense values hold NaN or Inf");
  }
  capnp::MallocMessageBuilder message;
  auto reply_envelope = message.initRoot<Envelope>();
  net::InitEnvelope(reply_envelope, options_.name, request.getRequestId());
  auto reply = reply_envelope.getBody().initPushReply();
  absl::Status status = dense_->Assign(values);
  if (absl::IsFailedPrecondition(status)) {
    reply.setDuplicate(true);  // already initialised by another worker: not an error
  } else {
    TOWERPS_RETURN_IF_ERROR(status);
  }
  return net::EncodeMessage(message);
}

absl::StatusOr<std::string> ParameterServer::Checkpoint(const Envelope::Reader& request) {
  auto checkpoint = request.getBody().getCheckpoint();
  // The wire names a step, never a path: the directory is this server's own root.
  if (checkpoint.hasDir() && checkpoint.getDir().size() > 0) {
    return absl::InvalidArgumentError(
        "a checkpoint request names a directory; servers take theirs from --run_dir");
  }
  const int64_t step = checkpoint.getStep();
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("bad checkpoint step ", step));
  if (options_.checkpoint_root.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, " has no checkpoint root (start it with --run_dir)"));
  }
  if (checkpoint.getJobId() != options_.job_id) {
    return absl::FailedPreconditionError(
        absl::StrFormat("checkpoint ordered for job %016x; %s belongs to job %016x",
                        checkpoint.getJobId(), options_.name, options_.job_id));
  }
  const std::string dir = CheckpointDir(options_.checkpoint_root, step);
  capnp::MallocMessageBuilder message;
  auto reply_envelope = message.initRoot<Envelope>();
  net::InitEnvelope(reply_envelope, options_.name, request.getRequestId());
  auto reply = reply_envelope.getBody().initCheckpointReply();
  if (checkpoint.getRestore()) {
    TOWERPS_RETURN_IF_ERROR(LoadCheckpoint(dir, /*require_this_job=*/true));
    return net::EncodeMessage(message);
  }
  int64_t base_step = -1;
  if (checkpoint.getIncremental()) {
    base_step = checkpoint.getBaseStep();
    if (base_step < 0 || base_step >= step) {
      return absl::InvalidArgumentError(absl::StrCat(
          "an incremental checkpoint of step ", step, " on base step ", base_step));
    }
  }
  TOWERPS_ASSIGN_OR_RETURN(std::vector<std::string> files,
                           SaveCheckpoint(dir, step, base_step));
  const unsigned n = static_cast<unsigned>(files.size());
  auto names = reply.initFiles(n);
  auto sizes = reply.initFileBytes(n);
  auto checksums = reply.initChecksums(n);
  uint64_t total = 0;
  for (unsigned i = 0; i < n; ++i) {
    TOWERPS_ASSIGN_OR_RETURN(CheckpointFile file, DescribeFile(dir, files[i]));
    names.set(i, file.name.c_str());
    sizes.set(i, file.bytes);
    checksums.set(i, file.crc32c);
    total += file.bytes;
  }
  reply.setBytes(total);
  return net::EncodeMessage(message);
}

absl::StatusOr<std::vector<std::string>> ParameterServer::SaveCheckpoint(const std::string& dir,
                                                                         int64_t step,
                                                                         int64_t base_step) {
  absl::MutexLock lock(&checkpoint_mu_);
  const bool incremental = base_step >= 0;
  if (incremental && (base_step != last_checkpoint_step_ || base_step >= step)) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.name, ": an incremental checkpoint of step ", step, " on step ", base_step,
        ", but this server's last checkpoint is ",
        last_checkpoint_step_ < 0 ? std::string("none (or it failed)")
                                  : absl::StrCat("step ", last_checkpoint_step_),
        "; take a full one"));
  }
  TOWERPS_RETURN_IF_ERROR(RefuseSymlink(dir));
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(dir));
  // Until this save is complete, no increment may be based on anything.
  last_checkpoint_step_ = -1;
  const FileBinding origin{options_.job_id, step, options_.rank, "", 0};
  std::vector<std::string> files;
  for (size_t t = 0; t < tables_.size(); ++t) {
    std::string name = TableFile(options_.rank, static_cast<int>(t));
    sparse_emb::EmbeddingTable::SaveOptions save;
    save.incremental = incremental;
    if (options_.checkpoint_chunk_copied) {
      save.after_chunk_copied = [this, t](int stripe) {
        options_.checkpoint_chunk_copied(static_cast<int>(t), stripe);
      };
    }
    TOWERPS_RETURN_IF_ERROR(tables_[t]->Save(dir + "/" + name, origin, save));
    files.push_back(name);
  }
  std::string name = DenseFile(options_.rank);
  TOWERPS_RETURN_IF_ERROR(dense_->Save(dir + "/" + name, origin));
  files.push_back(name);
  last_checkpoint_step_ = step;
  LOG(INFO) << options_.name << ": " << (incremental ? "incremental " : "") << "checkpoint of "
            << files.size() << " files written to " << dir
            << (incremental ? absl::StrCat(" (on step ", base_step, ")") : "");
  return files;
}

absl::Status ParameterServer::LoadCheckpoint(const std::string& dir, bool require_this_job) {
  absl::MutexLock lock(&checkpoint_mu_);
  // A restore named by a step (a resumed job, a restore order) stays under the root.
  if (require_this_job) TOWERPS_RETURN_IF_ERROR(RefuseSymlink(dir));
  TOWERPS_ASSIGN_OR_RETURN(std::vector<ChainLink> chain, ReadChain(dir));
  const CheckpointManifest& manifest = chain.back().manifest;
  if (require_this_job && manifest.job_id != options_.job_id) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: a checkpoint of job %016x; %s belongs to job %016x", dir,
                        manifest.job_id, options_.name, options_.job_id));
  }
  if (manifest.num_servers != options_.num_servers) {  // the same for every link
    return absl::InvalidArgumentError(absl::StrCat(dir, " was written by ", manifest.num_servers,
                                                   " servers; this job has ",
                                                   options_.num_servers));
  }
  // Pass 1, nothing changes: every file of this rank in every link is listed, intact
  // and bound to its link.
  std::vector<std::string> mine;
  for (size_t t = 0; t < tables_.size(); ++t) {
    mine.push_back(TableFile(options_.rank, static_cast<int>(t)));
  }
  mine.push_back(DenseFile(options_.rank));
  for (const ChainLink& link : chain) {
    const std::string& at = link.dir;
    for (const std::string& name : mine) {
      if (std::none_of(link.manifest.files.begin(), link.manifest.files.end(),
                       [&](const CheckpointFile& f) { return f.name == name; })) {
        return absl::DataLossError(absl::StrCat(at, ": its MANIFEST lists no ", name,
                                                " (a checkpoint of another model?)"));
      }
    }
    TOWERPS_RETURN_IF_ERROR(VerifyFiles(at, link.manifest, [&](const std::string& name) {
      return std::find(mine.begin(), mine.end(), name) != mine.end();
    }));
    const FileBinding expected{link.manifest.job_id, link.manifest.step, options_.rank, "", 0};
    for (size_t t = 0; t < tables_.size(); ++t) {
      TOWERPS_RETURN_IF_ERROR(tables_[t]->Verify(at + "/" + mine[t], &expected));
    }
    TOWERPS_RETURN_IF_ERROR(dense_->Verify(at + "/" + mine.back(), &expected));
  }
  // Pass 2 applies them: the root's tables (full), each increment on top, the dense
  // block of the last link (each load verifies its file again as it reads it).
  // TODO(perf): a file is read four times (checksum, verify, the load's own verify,
  // apply); verifying into memory once would halve restore I/O for big tables.
  last_checkpoint_step_ = -1;
  dedup_.RetireAll();  // pushes computed on the state being replaced are refused
  for (const ChainLink& link : chain) {
    const FileBinding expected{link.manifest.job_id, link.manifest.step, options_.rank, "", 0};
    for (size_t t = 0; t < tables_.size(); ++t) {
      absl::Status loaded = tables_[t]->Load(link.dir + "/" + mine[t], &expected);
      if (!loaded.ok()) {
        LOG(ERROR) << options_.name << ": " << link.dir << " changed after it was verified; "
                   << "shards partly restored: " << loaded;
        return loaded;
      }
    }
  }
  const FileBinding expected{manifest.job_id, manifest.step, options_.rank, "", 0};
  absl::Status loaded = dense_->Load(dir + "/" + mine.back(), &expected);
  if (!loaded.ok()) {
    LOG(ERROR) << options_.name << ": " << dir << " changed after it was verified; dense "
               << "block not restored: " << loaded;
    return loaded;
  }
  last_checkpoint_step_ = manifest.step;
  LOG(INFO) << options_.name << ": restored from " << dir
            << (chain.size() > 1 ? absl::StrCat(" (a chain of ", chain.size(), " links from ",
                                                chain.front().dir, ")")
                                 : "");
  return absl::OkStatus();
}

}  // namespace towerps::ps
