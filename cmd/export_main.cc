// `towerps export`: the two embedding dataflows - the user tower over every user
// and the item tower over every item of a prepared dataset - from a checkpoint or
// a running cluster, into <embeddings>/users.emb and items.emb (format:
// index/embeddings.h, docs/index.md) plus .npy copies.
// --items_only: the item dataflow alone (items.emb); with --since=<the previous
// export's embeddings dir> and --index_dir=<index root> it also writes the next
// item delta (items new or changed since, items gone) for a live `serve`
// (index/item_delta.h, docs/index.md "Fresh items and new versions").
#include <chrono>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cmd/curve_flags.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "common/file_util.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "index/embedder.h"
#include "index/embeddings.h"
#include "index/item_delta.h"
#include "models/two_tower.h"
#include "net/membership_client.h"
#include "ps/client.h"
#include "ps/shard_map.h"
#include "worker/model_config.h"

DEFINE_int32(export_batch, 2048, "entities per tower forward pass (bounds memory)");
DEFINE_bool(npy, true, "also write <side>.npy (float32 n x d) and <side>.keys.npy (uint64)");
DEFINE_int64(export_timeout_ms, 30000, "deadline of one request to the cluster");
DEFINE_bool(items_only, false, "export items.emb only (the item dataflow); see --since");
DEFINE_string(since, "",
              "--items_only: the previous export's embeddings dir; items whose vector "
              "differs from it (or are new) and items gone from the catalog since are "
              "written as the next delta of the index root --index_dir");
DEFINE_double(delta_tolerance, 1e-6,
              "--since: an item counts as changed when some component moved more than this");

namespace towerps::cmd {
namespace {

// A live cluster's parameters: scheduler view -> PsClient.
absl::StatusOr<std::unique_ptr<ps::PsClient>> ConnectCluster(const net::ZmqContext* ctx,
                                                             const worker::ModelConfig& config) {
  net::RpcClientOptions rpc;
  rpc.endpoint = FLAGS_scheduler;
  rpc.name = "export";
  rpc.timeout_ms = FLAGS_export_timeout_ms;
  auto keys = CurveKeysFromFlags(net::kOperatorIdentity);
  if (!keys.ok()) return keys.status();
  auto scheduler_curve = keys->ClientCurve(net::kSchedulerIdentity);
  if (!scheduler_curve.ok()) return scheduler_curve.status();
  rpc.curve = *scheduler_curve;
  auto scheduler = net::MembershipClient::Connect(ctx, rpc);
  if (!scheduler.ok()) return scheduler.status();
  auto view = (*scheduler)->Query(net::kRoleWorker, -1);
  if (!view.ok()) return view.status();
  if (view->server_endpoints.empty()) {
    return absl::FailedPreconditionError("the cluster has not finished registering");
  }
  auto map = ps::ShardMap::FromWire(view->shard_owners, view->num_servers);
  if (!map.ok()) return map.status();
  auto meta = data::LoadDatasetMeta(FLAGS_dataset);
  if (!meta.ok()) return meta.status();
  auto model = worker::BindModel(config, meta->schema);
  if (!model.ok()) return model.status();
  ps::PsClientOptions client;
  client.server_endpoints = view->server_endpoints;
  client.rpc = rpc;
  client.rpc.curve = keys->ServerCurve();
  auto server_keys = keys->ServerPublicKeys(view->num_servers);
  if (!server_keys.ok()) return server_keys.status();
  client.server_public_keys = *std::move(server_keys);
  client.client_id = 0xE0000000u;  // not a worker's id: export only reads
  client.dense_params = models::DenseParamCount(model->two_tower);
  return ps::PsClient::Create(ctx, client, *std::move(map));
}

// Streams one side into <dir>/<name>.emb (+ .npy), printing progress on stderr.
absl::Status ExportSide(index::TowerEmbedder* embedder, data::Side side, const std::string& dir) {
  const std::string name = side == data::Side::kUser ? "users" : "items";
  auto count = embedder->CountEntities(side);
  if (!count.ok()) return count.status();
  auto writer = index::EmbeddingWriter::Open(absl::StrCat(dir, "/", name, ".emb"),
                                             FLAGS_npy ? absl::StrCat(dir, "/", name) : "", side,
                                             embedder->dim(), *count, embedder->model_step());
  if (!writer.ok()) return writer.status();
  const auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  auto sink = [&](absl::Span<const uint64_t> keys, absl::Span<const std::string> raw_ids,
                  const models::Mat<float>& embedded) -> absl::Status {
    absl::Status status =
        (*writer)->Append(keys, raw_ids, absl::MakeConstSpan(embedded.data(), embedded.size()));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print > std::chrono::milliseconds(500) || (*writer)->rows() == *count) {
      last_print = now;
      const double s = std::chrono::duration<double>(now - start).count();
      const int64_t done = (*writer)->rows();
      std::fprintf(stderr, "\r%s: %ld / %ld (%.0f%%, %.0f/s)", name.c_str(),
                   static_cast<long>(done), static_cast<long>(*count),
                   *count > 0 ? 100.0 * done / *count : 100.0, s > 0 ? done / s : 0.0);
    }
    return status;
  };
  absl::Status status = embedder->EmbedAll(side, sink);
  std::fprintf(stderr, "\n");
  if (!status.ok()) return status;
  return (*writer)->Finish();
}

// --since: the items of --embeddings against those of --since, as the next delta
// of the index root --index_dir.
int WriteDelta() {
  auto before = index::EmbeddingTable::Read(FLAGS_since + "/items.emb");
  if (!before.ok()) return Fail("export", before.status());
  auto now = index::EmbeddingTable::Read(FLAGS_embeddings + "/items.emb");
  if (!now.ok()) return Fail("export", now.status());
  auto delta =
      index::DiffItemEmbeddings(**before, **now, static_cast<float>(FLAGS_delta_tolerance));
  if (!delta.ok()) return Fail("export", delta.status());
  const int64_t upserts = delta->upserts();
  const size_t removals = delta->removed_keys.size();
  auto seq = index::PublishItemDelta(FLAGS_index_dir, *std::move(delta));
  if (!seq.ok()) return Fail("export", seq.status());
  std::printf("delta %lu: %ld items new or changed, %zu removed since %s: %s\n",
              static_cast<unsigned long>(*seq), static_cast<long>(upserts), removals,
              FLAGS_since.c_str(), index::ItemDeltaPath(FLAGS_index_dir, *seq).c_str());
  return 0;
}

}  // namespace

int RunExport(int /*argc*/, char** /*argv*/) {
  if (!FLAGS_since.empty() && (!FLAGS_items_only || FLAGS_index_dir.empty())) {
    std::fprintf(stderr,
                 "towerps export: --since needs --items_only and --index_dir (an index root "
                 "with CURRENT, where the delta goes)\n");
    return 2;
  }
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_embeddings.empty() ||
      FLAGS_checkpoint.empty() == FLAGS_scheduler.empty()) {
    std::fprintf(stderr,
                 "towerps export: --config, --dataset, --embeddings (output directory) and "
                 "exactly one of --checkpoint or --scheduler are required\n");
    return 2;
  }
  auto config = worker::LoadModelConfig(FLAGS_config);
  if (!config.ok()) return Fail("export", config.status());
  index::EmbedderOptions options;
  options.dataset_dir = FLAGS_dataset;
  options.batch = FLAGS_export_batch;
  net::ZmqContext ctx;
  std::unique_ptr<ps::PsClient> cluster;
  if (!FLAGS_checkpoint.empty()) {
    auto checkpoint = ResolveCheckpoint(FLAGS_checkpoint);
    if (!checkpoint.ok()) return Fail("export", checkpoint.status());
    options.checkpoint_dir = *checkpoint;
  } else {
    auto client = ConnectCluster(&ctx, *config);
    if (!client.ok()) return Fail("export", client.status());
    cluster = *std::move(client);
  }
  auto embedder = index::TowerEmbedder::Create(options, *config, cluster.get());
  if (!embedder.ok()) return Fail("export", embedder.status());
  absl::Status status = CreateDirectories(FLAGS_embeddings);
  for (data::Side side : {data::Side::kItem, data::Side::kUser}) {
    if (FLAGS_items_only && side == data::Side::kUser) continue;
    if (status.ok()) status = ExportSide(embedder->get(), side, FLAGS_embeddings);
  }
  if (!status.ok()) return Fail("export", status);
  std::printf("exported %s (dim %d, model step %ld) to %s\n",
              FLAGS_items_only ? "items.emb" : "users.emb and items.emb", (*embedder)->dim(),
              static_cast<long>((*embedder)->model_step()), FLAGS_embeddings.c_str());
  if (!FLAGS_since.empty()) return WriteDelta();
  return 0;
}

}  // namespace towerps::cmd
