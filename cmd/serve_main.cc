// `towerps serve`: a retrieval server. Loads index shards (all, or --serve_shards)
// and optionally the exported embeddings (user lookup, raw item ids), or with
// --route_to fans requests out to shard servers and merges. Serves TopK requests
// over ZeroMQ + Cap'n Proto until SIGINT / SIGTERM, and with --http_port also over
// HTTP/JSON (http/topk_server.h; GET /metrics on the same port).
// --index_dir may be an index root (CURRENT + v-<n>/ + deltas/): then the server
// applies item deltas and swaps to a new version without a restart, polling every
// --watch_index_ms and at once on SIGHUP (index/live_index.h, docs/index.md "Fresh
// items and new versions").

#include <cblas.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cmd/curve_flags.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/metrics_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/file_util.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "http/topk_server.h"
#include "index/retrieval_service.h"
#include "net/address.h"
#include "net/transport.h"

DEFINE_string(serve_bind, "tcp://127.0.0.1:0", "endpoint to serve on (port 0: any free port)");
DEFINE_string(serve_endpoint_file, "", "write the bound endpoint to this file once serving");
DEFINE_int32(serve_threads, 4, "handler threads answering queries");
DEFINE_string(serve_shards, "", "comma-separated shard numbers to load (empty: all)");
DEFINE_string(route_to, "",
              "router mode: comma-separated endpoints of shard servers to fan out to and merge "
              "(then --index_dir is not used)");
DEFINE_int32(max_k, 1000, "largest K a request may ask for");
DEFINE_int64(route_timeout_ms, 2000, "deadline of one fan-out request to a shard server");
DEFINE_int32(http_port, 0,
             "also serve the HTTP/JSON API (GET/POST /v1/topk, /healthz, /metrics) on this "
             "port of --serve_bind's host; 0 = off");
DEFINE_int32(http_threads, 4, "threads answering HTTP connections (one connection each)");
DEFINE_int64(http_max_body_bytes, 1 << 20, "largest HTTP request body (more: 413)");
DEFINE_int64(watch_index_ms, 1000,
             "an --index_dir with CURRENT (an index root): check CURRENT and deltas/ this "
             "often (SIGHUP: at once); 0 = only on SIGHUP");
DEFINE_int64(max_fresh_items, 100000,
             "most items added or changed by deltas over one index version (more: the delta "
             "is refused; publish a new version)");
DEFINE_int64(max_tombstones, 100000,
             "most items removed by deltas over one index version (more: refused)");
DEFINE_int32(search_threads, 0,
             "threads searching the local shards of queries at once, the caller's included "
             "(0: min(shards, cores); 1: on the caller)");
DEFINE_int32(max_batch, 1,
             "most waiting local queries searched as one batch (1, the default: no batching; "
             "an idle server never waits to fill a batch; BENCHMARKS.md \"serve\")");

namespace towerps::cmd {

int RunServe(int /*argc*/, char** /*argv*/) {
  if (FLAGS_index_dir.empty() == FLAGS_route_to.empty()) {
    std::fprintf(stderr, "towerps serve: exactly one of --index_dir or --route_to is required\n");
    return 2;
  }
  index::RetrievalServiceOptions options;
  options.max_k = FLAGS_max_k;
  options.default_ef_search = FLAGS_ef_search;
  options.rpc.timeout_ms = FLAGS_route_timeout_ms;
  options.max_batch = FLAGS_max_batch;
  index::ShardedIndexOptions index_options;
  index_options.search_threads = FLAGS_search_threads;
  openblas_set_num_threads(1);  // batched exact search: parallel over shards, not in sgemm
  auto keys = CurveKeysFromFlags(net::kServeIdentity);
  if (!keys.ok()) return Fail("serve", keys.status());
  auto shard_curve = keys->ClientCurve(net::kServeIdentity);  // a router's shard servers
  if (!shard_curve.ok()) return Fail("serve", shard_curve.status());
  options.rpc.curve = *shard_curve;
  for (absl::string_view e : absl::StrSplit(FLAGS_route_to, ',', absl::SkipEmpty())) {
    options.shard_endpoints.emplace_back(e);
  }
  std::vector<int> shards;
  for (absl::string_view s : absl::StrSplit(FLAGS_serve_shards, ',', absl::SkipEmpty())) {
    int shard;
    if (!absl::SimpleAtoi(s, &shard)) {
      std::fprintf(stderr, "towerps serve: bad --serve_shards entry '%s'\n",
                   std::string(s).c_str());
      return 2;
    }
    shards.push_back(shard);
  }
  if (absl::Status valid = options.Validate(); !valid.ok()) return Fail("serve", valid);
  if (FLAGS_http_port < 0 || FLAGS_http_port > 65535) {
    std::fprintf(stderr, "towerps serve: --http_port must be 0 (off) or 1..65535\n");
    return 2;
  }
  // The metrics registry first: the live index counts its swaps and deltas in it.
  MetricsRegistry metrics;
  std::unique_ptr<index::LiveIndex> local;
  http::ServeInfo info;  // what GET /healthz reports (items, version: live)
  if (!FLAGS_index_dir.empty()) {
    index::LiveIndexOptions live;
    live.dir = FLAGS_index_dir;
    live.shards = shards;
    live.max_fresh_items = FLAGS_max_fresh_items;
    live.max_tombstones = FLAGS_max_tombstones;
    live.sharded = index_options;
    // The watcher thread also serves SIGHUP; with 0 it only wakes on a signal.
    live.watch_interval_ms = FLAGS_watch_index_ms > 0 ? FLAGS_watch_index_ms : 24 * 3600 * 1000;
    auto loaded = index::LiveIndex::Open(live, &metrics);
    if (!loaded.ok()) return Fail("serve", loaded.status());
    local = *std::move(loaded);
    const auto snapshot = local->Current();
    info.items = snapshot->items();
    info.shards = static_cast<int>(snapshot->base().loaded_shards().size());
    if (local->is_root()) {
      LOG(INFO) << "serve: index root " << FLAGS_index_dir << ", version " << snapshot->version()
                << " (deltas through seq " << snapshot->applied_delta_seq() << "; checking every "
                << FLAGS_watch_index_ms << " ms and on SIGHUP)";
    }
  } else {
    info.shards = static_cast<int>(options.shard_endpoints.size());
  }
  std::unique_ptr<index::EmbeddingTable> users, items;
  if (!FLAGS_embeddings.empty()) {
    auto u = index::EmbeddingTable::Read(FLAGS_embeddings + "/users.emb");
    if (!u.ok()) return Fail("serve", u.status());
    auto i = index::EmbeddingTable::Read(FLAGS_embeddings + "/items.emb");
    if (!i.ok()) return Fail("serve", i.status());
    users = *std::move(u);
    items = *std::move(i);
    if (local == nullptr) info.items = items->size();
  }
  // SIGINT / SIGTERM stop the server (WaitForStopSignal below).
  CatchStopSignals();

  net::ZmqContext ctx;
  auto zap = StartZapIfSecure(&ctx, *keys, &metrics);
  if (!zap.ok()) return Fail("serve", zap.status());
  auto service = index::RetrievalService::Create(&ctx, options, std::move(local), std::move(users),
                                                 std::move(items));
  if (!service.ok()) return Fail("serve", service.status());
  std::unique_ptr<ReloadSignalWatcher> reload;
  if (index::LiveIndex* live = (*service)->live_index(); live != nullptr && live->is_root()) {
    reload = std::make_unique<ReloadSignalWatcher>([live] { live->Wake(); });
  }
  net::RpcServerOptions server_options;
  server_options.bind_endpoint = FLAGS_serve_bind;
  server_options.handler_threads = FLAGS_serve_threads;
  server_options.name = options.shard_endpoints.empty() ? "serve" : "router";
  server_options.curve = keys->ServerCurve();
  index::RetrievalService* handler = service->get();
  auto server = net::RpcServer::Start(
      &ctx, server_options,
      // Any authenticated peer may ask for top-K (ZAP already refused the others).
      [handler](const net::Peer&, const net::wire::Envelope::Reader& request) {
        return handler->Handle(request);
      },
      &metrics);
  if (!server.ok()) return Fail("serve", server.status());
  // /metrics listens where the retrieval socket does (--serve_bind's host).
  auto bound = net::ParseTcpEndpoint((*server)->endpoint());
  if (!bound.ok()) return Fail("serve", bound.status());
  auto exporter = StartMetricsServerFromFlags("serve", 0, bound->host, &metrics);
  if (!exporter.ok()) return Fail("serve", exporter.status());
  std::unique_ptr<http::TopKApi> api;
  std::unique_ptr<http::TopKServer> http_server;
  if (FLAGS_http_port != 0) {
    info.dim = (*service)->dim();
    api = std::make_unique<http::TopKApi>(service->get(), info);
    http::TopKServerOptions http_options;
    http_options.listen.host = bound->host;
    http_options.listen.port = FLAGS_http_port;
    http_options.listen.num_threads = FLAGS_http_threads;
    http_options.max_body_bytes = FLAGS_http_max_body_bytes;
    http_options.target = {"serve", 0};
    auto started = http::TopKServer::Create(http_options, api.get(), &metrics);
    if (!started.ok()) return Fail("serve", started.status());
    http_server = *std::move(started);
  }
  LOG(INFO) << server_options.name << ": serving on " << (*server)->endpoint() << " (dim "
            << (*service)->dim() << ")";
  if (!FLAGS_serve_endpoint_file.empty()) {
    absl::Status written = WriteFileAtomically(FLAGS_serve_endpoint_file, (*server)->endpoint());
    if (!written.ok()) return Fail("serve", written);
  }
  std::printf("serving on %s\n", (*server)->endpoint().c_str());
  if (http_server) std::printf("http on http://%s:%d\n", bound->host.c_str(), http_server->port());
  std::fflush(stdout);
  const int signal_number = WaitForStopSignal();
  LOG(INFO) << server_options.name << ": signal " << signal_number << ", stopping";
  reload.reset();
  if (auto* live = (*service)->live_index()) live->Stop();
  if (http_server) http_server->Stop();
  if (*exporter) (*exporter)->Stop();
  (*server)->Stop();
  return 0;
}

}  // namespace towerps::cmd
