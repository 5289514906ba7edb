// Fresh items and version swaps in a real `towerps serve --index_dir=<root>` on
// 127.0.0.1: while threads query it over ZeroMQ and HTTP, the test applies 6 item
// deltas and publishes 6 new versions; afterwards every reply is checked: no error,
// every key of one reply from exactly one version, an added item found by its own
// vector (top-1), a removed item never returned once its delta was visible, a
// changed item only with its new vector's score. A second server (no polling) picks
// deltas up on SIGHUP and refuses a hostile one while serving on.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/keys.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "index/index_root.h"
#include "index/item_delta.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "tests/integration/serve_fixture.h"
#include "tests/integration/subprocess.h"

namespace towerps {
namespace {

using nlohmann::json;
using testing::PickPort;
using testing::RandomUnitRows;
using testing::Subprocess;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kDim = 16;
constexpr int kItems = 300;
constexpr int kRounds = 6;  // each: one delta, then one new version

uint64_t BaseKey(int version, int i) {
  return data::HashKey(absl::StrCat("v", version, "-item", i));
}
uint64_t FreshKey(int version) { return data::HashKey(absl::StrCat("v", version, "-fresh")); }

float Dot(const float* a, const float* b) {
  float s = 0;
  for (int c = 0; c < kDim; ++c) s += a[c] * b[c];
  return s;
}

struct Server {
  std::unique_ptr<Subprocess> process;
  std::string zmq;
  int http_port = 0;
};

// One reply of the concurrent run.
struct Reply {
  Clock::time_point sent;
  int query = 0;  // row of the query pool
  std::vector<index::Hit> hits;
};

class ServeFreshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("TOWERPS_BINARY_DIR");
    binary_ = std::string(bin ? bin : "") + "/cmd/towerps";
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("serve_fresh_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(dir_).ok());
    ASSERT_TRUE(CreateDirectories(dir_ + "/root").ok());
  }
  void TearDown() override {
    for (Server& s : servers_) s.process.reset();  // killed by PID (process group)
  }

  // Version n: kItems exact-searched items with keys BaseKey(n, i), vectors seed n.
  void Publish(int n) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < kItems; ++i) keys.push_back(BaseKey(n, i));
    index::IndexBuildOptions build;
    build.shards = 2;
    build.ann.engine = index::AnnEngine::kExact;
    const std::string version = absl::StrCat("v-", n);
    ASSERT_TRUE(index::BuildShardedIndex(build, keys, RandomUnitRows(kItems, kDim, n).data(), kDim,
                                         n, dir_ + "/root/" + version)
                    .ok());
    ASSERT_TRUE(index::SetCurrentVersion(dir_ + "/root", version).ok());
  }

  // Runs `towerps args...` to completion (2 minutes at most); its log is <dir>/<name>.log.
  void Run(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), binary_);
    Subprocess process(args, absl::StrCat(dir_, "/", name, ".log"));
    const std::optional<int> code = process.Wait(120s);
    ASSERT_TRUE(code.has_value() && *code == 0)
        << name << " failed; see " << process.log_path() << ": "
        << ReadFileToString(process.log_path()).value_or("");
  }

  Server* Start(const std::string& name, const std::vector<std::string>& flags,
                const std::string& root = "") {
    static std::mt19937 rng(::getpid());
    for (int attempt = 0; attempt < 5; ++attempt) {
      Server s;
      s.http_port = PickPort(&rng);
      const std::string endpoint_file = absl::StrCat(dir_, "/", name, attempt, ".endpoint");
      std::vector<std::string> argv = {binary_, "serve",
                                       "--index_dir=" + (root.empty() ? dir_ + "/root" : root),
                                       "--serve_endpoint_file=" + endpoint_file,
                                       absl::StrCat("--http_port=", s.http_port)};
      argv.insert(argv.end(), flags.begin(), flags.end());
      s.process =
          std::make_unique<Subprocess>(argv, absl::StrCat(dir_, "/", name, attempt, ".log"));
      const auto deadline = Clock::now() + 30s;
      while (Clock::now() < deadline) {
        auto endpoint = ReadFileToString(endpoint_file);
        if (endpoint.ok() && !endpoint->empty() && Health(s.http_port).is_object()) {
          s.zmq = *endpoint;
          servers_.push_back(std::move(s));
          return &servers_.back();
        }
        if (s.process->Wait(20ms)) break;  // exited: the port was taken?
      }
    }
    ADD_FAILURE() << name << " did not start";
    return nullptr;
  }

  static json Health(int port) {
    httplib::Client client("127.0.0.1", port);
    auto res = client.Get("/healthz");
    if (!res || res->status != 200) return json();
    return json::parse(res->body, nullptr, false);
  }

  // Waits (30 s at most) until the server serves version v with deltas through seq.
  static bool WaitFor(int port, int version, uint64_t seq) {
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      json h = Health(port);
      if (h.is_object() && h["version"] == version && h["delta_seq"] >= seq) return true;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "the server did not reach v-" << version << " seq " << seq << ": "
                  << Health(port).dump();
    return false;
  }

  static absl::StatusOr<std::vector<index::Hit>> AskHttp(httplib::Client* client, const float* q) {
    json body;
    body["vector"] = std::vector<float>(q, q + kDim);
    body["k"] = 10;
    auto res = client->Post("/v1/topk", body.dump(), "application/json");
    if (!res) return absl::UnavailableError(httplib::to_string(res.error()));
    if (res->status != 200) return absl::InternalError(res->body);
    std::vector<index::Hit> hits;
    const json doc = json::parse(res->body);
    for (const json& item : doc["items"]) {
      index::Hit hit;
      if (!absl::SimpleAtoi(item["key"].get<std::string>(), &hit.key)) {
        return absl::DataLossError(res->body);
      }
      hit.score = item["score"].get<float>();
      hits.push_back(hit);
    }
    return hits;
  }

  static absl::StatusOr<std::vector<index::Hit>> AskZmq(net::RpcClient* client, const float* q) {
    index::TopKQuery query;
    query.vector.assign(q, q + kDim);
    const uint64_t id = client->NextRequestId();
    auto reply = client->Call(id, index::EncodeTopKRequest("test", id, query), false);
    if (!reply.ok()) return reply.status();
    auto result = index::DecodeTopKReply(*reply);
    if (!result.ok()) return result.status();
    return result->hits;
  }

  std::string binary_, dir_;
  std::vector<Server> servers_;
  net::ZmqContext ctx_;
};

TEST_F(ServeFreshTest, SwapsAndDeltasUnderConcurrentQueriesLoseNone) {
  Publish(1);
  // Batching on: the batched search goes through each request's snapshot too.
  Server* server = Start(
      "live", {"--watch_index_ms=10", "--serve_threads=4", "--http_threads=4", "--max_batch=8"});
  ASSERT_NE(server, nullptr);
  // The plan, made up front so that the readers query every vector that matters:
  // round r serves v-(r+1); its delta adds FreshKey (vector fresh[r]), removes
  // BaseKey(n, 0) and changes BaseKey(n, 1) to changed[r].
  const std::vector<float> fresh = RandomUnitRows(kRounds, kDim, 100);
  const std::vector<float> changed = RandomUnitRows(kRounds, kDim, 200);
  std::vector<float> pool;  // the readers' queries
  absl::flat_hash_map<uint64_t, int> version_of;
  for (int r = 0; r < kRounds + 1; ++r) {
    const int n = r + 1;
    const std::vector<float> base = RandomUnitRows(kItems, kDim, n);
    for (int i = 0; i < kItems; ++i) version_of[BaseKey(n, i)] = n;
    version_of[FreshKey(n)] = n;
    pool.insert(pool.end(), base.begin(), base.begin() + 2 * kDim);  // removed, changed rows
    if (r < kRounds)
      pool.insert(pool.end(), fresh.begin() + r * kDim, fresh.begin() + (r + 1) * kDim);
  }
  const std::vector<float> random = RandomUnitRows(8, kDim, 300);
  pool.insert(pool.end(), random.begin(), random.end());
  const int pool_rows = static_cast<int>(pool.size() / kDim);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Reply> replies;
  std::vector<std::string> errors;
  auto reader = [&](bool http, int seed) {
    std::unique_ptr<httplib::Client> web;
    std::unique_ptr<net::RpcClient> zmq;
    if (http) {
      web = std::make_unique<httplib::Client>("127.0.0.1", server->http_port);
      web->set_read_timeout(10, 0);
    } else {
      net::RpcClientOptions options;
      options.endpoint = server->zmq;
      options.timeout_ms = 10000;
      options.max_attempts = 1;
      auto client = net::RpcClient::Connect(&ctx_, options);
      if (!client.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(client.status().ToString());
        return;
      }
      zmq = *std::move(client);
    }
    std::vector<Reply> mine;
    for (int i = seed; !stop.load(); ++i) {
      Reply reply;
      reply.query = i % pool_rows;
      reply.sent = Clock::now();
      const float* q = pool.data() + reply.query * kDim;
      auto hits = http ? AskHttp(web.get(), q) : AskZmq(zmq.get(), q);
      if (!hits.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(hits.status().ToString());
        continue;
      }
      reply.hits = *std::move(hits);
      mine.push_back(std::move(reply));
    }
    std::lock_guard<std::mutex> lock(mu);
    replies.insert(replies.end(), mine.begin(), mine.end());
  };
  std::vector<std::thread> threads;
  struct Joiner {  // stops and joins the readers on every way out (ASSERT too)
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~Joiner() {
      *stop = true;
      for (auto& t : *threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{&stop, &threads};
  for (int t = 0; t < 4; ++t) threads.emplace_back(reader, t % 2 == 0, t * 7);

  // When each delta became visible (healthz said so): replies sent later must see it.
  std::vector<Clock::time_point> visible(kRounds);
  for (int r = 0; r < kRounds; ++r) {
    const int n = r + 1;
    const std::vector<float> base = RandomUnitRows(kItems, kDim, n);
    index::ItemDelta delta;
    delta.dim = kDim;
    delta.upsert_keys = {FreshKey(n), BaseKey(n, 1)};
    delta.upsert_raw_ids = {absl::StrCat("v", n, "-fresh"), absl::StrCat("v", n, "-item1")};
    delta.upsert_vectors.assign(fresh.begin() + r * kDim, fresh.begin() + (r + 1) * kDim);
    delta.upsert_vectors.insert(delta.upsert_vectors.end(), changed.begin() + r * kDim,
                                changed.begin() + (r + 1) * kDim);
    delta.removed_keys = {BaseKey(n, 0)};
    auto seq = index::PublishItemDelta(dir_ + "/root", delta);
    ASSERT_TRUE(seq.ok()) << seq.status();
    ASSERT_TRUE(WaitFor(server->http_port, n, *seq));
    visible[r] = Clock::now();
    // The added item is top-1 for its own vector, over both APIs.
    httplib::Client web("127.0.0.1", server->http_port);
    auto top = AskHttp(&web, fresh.data() + r * kDim);
    ASSERT_TRUE(top.ok()) << top.status();
    EXPECT_EQ(top->at(0).key, FreshKey(n));
    std::this_thread::sleep_for(50ms);  // let the readers see this state for a while
    Publish(n + 1);
    ASSERT_TRUE(WaitFor(server->http_port, n + 1, 0));
  }
  std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();

  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors[0];
  ASSERT_GT(replies.size(), 100u);
  int fresh_top1 = 0;
  for (const Reply& reply : replies) {
    ASSERT_FALSE(reply.hits.empty());
    const float* q = pool.data() + reply.query * kDim;
    std::set<int> versions;
    for (const index::Hit& hit : reply.hits) {
      auto it = version_of.find(hit.key);
      ASSERT_NE(it, version_of.end()) << "unknown key " << hit.key;
      versions.insert(it->second);
      const int r = it->second - 1;
      if (r >= kRounds || reply.sent < visible[r]) continue;
      EXPECT_NE(hit.key, BaseKey(it->second, 0)) << "a removed item was returned";
      if (hit.key == BaseKey(it->second, 1)) {
        EXPECT_NEAR(hit.score, Dot(q, changed.data() + r * kDim), 1e-4) << "changed-away vector";
      }
    }
    EXPECT_EQ(versions.size(), 1u) << "one reply mixed versions";
    const int n = *versions.begin();
    if (n <= kRounds && reply.sent >= visible[n - 1] && reply.hits[0].key == FreshKey(n)) {
      ++fresh_top1;
    }
  }
  EXPECT_GT(fresh_top1, 0);
  // Counted: every swap (the first load too) and every delta.
  httplib::Client web("127.0.0.1", server->http_port);
  auto metrics = web.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("towerps_serve_deltas_applied_total{role=\"serve\",rank=\"0\"} 6"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("towerps_serve_index_swaps_total{role=\"serve\",rank=\"0\"} 7"),
            std::string::npos);
  std::printf("%zu replies over 6 deltas and 6 swaps, 0 errors expected (%zu)\n", replies.size(),
              errors.size());
}

TEST_F(ServeFreshTest, SighupAppliesDeltasAndHostileOnesAreRefused) {
  Publish(1);
  Server* server = Start("hup", {"--watch_index_ms=0"});
  ASSERT_NE(server, nullptr);
  // Garbage as delta 1: refused whole, the server keeps serving v-1 without it.
  ASSERT_TRUE(CreateDirectories(dir_ + "/root/deltas").ok());
  ASSERT_TRUE(WriteFileAtomically(index::ItemDeltaPath(dir_ + "/root", 1),
                                  std::string("TPDELTA1") + std::string(64, '\xff'))
                  .ok());
  server->process->Signal(SIGHUP);
  httplib::Client web("127.0.0.1", server->http_port);
  const auto deadline = Clock::now() + 30s;
  std::string body;
  while (Clock::now() < deadline) {
    auto res = web.Get("/metrics");
    if (res) body = res->body;
    if (body.find("towerps_serve_delta_errors_total{role=\"serve\",rank=\"0\"} 1") !=
        std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(body.find("towerps_serve_delta_errors_total{role=\"serve\",rank=\"0\"} 1"),
            std::string::npos)
      << body;
  EXPECT_EQ(Health(server->http_port)["delta_seq"], 0);
  // A good delta in its place: applied on the next SIGHUP.
  const std::vector<float> v = RandomUnitRows(1, kDim, 77);
  index::ItemDelta delta;
  delta.dim = kDim;
  delta.seq = 1;
  delta.base_version = "v-1";
  delta.upsert_keys = {FreshKey(1)};
  delta.upsert_raw_ids = {"v1-fresh"};
  delta.upsert_vectors = v;
  auto bytes = index::SerializeItemDelta(delta);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(WriteFileAtomically(index::ItemDeltaPath(dir_ + "/root", 1), *bytes).ok());
  server->process->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(server->http_port, 1, 1));
  auto top = AskHttp(&web, v.data());
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->at(0).key, FreshKey(1));
}

// The item dataflow end to end: a model trained on the whole catalog, exported for
// part of it (a k-core that drops rare items) and published as v-1 of an index root
// served live; `export --items_only --since` over the whole catalog writes a delta of
// exactly the items the first export lacked, and the live server returns each of them
// for its own vector; exporting the part again removes them, and then it never does.
TEST_F(ServeFreshTest, ExportItemsOnlyFeedsALiveServer) {
  const std::string d = dir_;
  Run("generate", {"generate", "--output_dir=" + d + "/logs", "--users=400", "--items=300",
                   "--interactions=12000", "--content_dim=0", "--seed=5"});
  Run("prepare_all", {"prepare", "--input=" + d + "/logs", "--output=" + d + "/all"});
  Run("prepare_part", {"prepare", "--input=" + d + "/logs", "--output=" + d + "/part",
                       "--min_item_interactions=25"});
  // Item vectors depend on the item_id row and the towers only (no dense area, whose
  // normalisation is per dataset).
  ASSERT_TRUE(WriteFileAtomically(d + "/model.conf", R"(
table item_id dim=16 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
feature user history table=item_id pooling=mean
feature item item_id table=item_id
dense user off
dense item off
tower user mlp=32 cross=1 out=16 activation=relu
tower item mlp=32 cross=1 out=16 activation=relu
loss kind=softmax temperature=0.1 logq=on
train batch=128 epochs=1 seed=1 dense_sync_every=1
)")
                  .ok());
  const std::string model = "--config=" + d + "/model.conf";
  const std::string checkpoint = "--checkpoint=" + d + "/run/checkpoint";
  Run("train", {"train", model, "--dataset=" + d + "/all", "--run_dir=" + d + "/run",
                "--threads=1"});
  Run("export_part", {"export", model, "--dataset=" + d + "/part", checkpoint,
                      "--embeddings=" + d + "/e1"});
  Run("build_index", {"build-index", "--embeddings=" + d + "/e1", "--index_root=" + d + "/flow",
                      "--shards=2"});
  Server* server = Start("flow", {"--watch_index_ms=20"}, d + "/flow");
  ASSERT_NE(server, nullptr);

  Run("export_all", {"export", "--items_only", model, "--dataset=" + d + "/all", checkpoint,
                     "--embeddings=" + d + "/e2", "--since=" + d + "/e1",
                     "--index_dir=" + d + "/flow"});
  auto part = index::EmbeddingTable::Read(d + "/e1/items.emb");
  auto all = index::EmbeddingTable::Read(d + "/e2/items.emb");
  ASSERT_TRUE(part.ok() && all.ok());
  absl::flat_hash_map<uint64_t, int64_t> in_part;
  for (size_t r = 0; r < (*part)->keys.size(); ++r) in_part[(*part)->keys[r]] = r;
  std::vector<int64_t> added;  // rows of `all`
  for (size_t r = 0; r < (*all)->keys.size(); ++r) {
    if (!in_part.contains((*all)->keys[r])) added.push_back(static_cast<int64_t>(r));
  }
  ASSERT_GE(added.size(), 5u) << "the k-core dropped too few items for the test";
  auto bytes = ReadFileToString(index::ItemDeltaPath(d + "/flow", 1));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto delta = index::ParseItemDelta(*bytes);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_EQ(delta->upsert_keys.size(), added.size()) << "only the new items, none changed";
  EXPECT_TRUE(delta->removed_keys.empty());

  ASSERT_TRUE(WaitFor(server->http_port, 1, 1));
  httplib::Client web("127.0.0.1", server->http_port);
  const int dim = (*all)->dim;
  auto ask = [&](int64_t row) {
    json body;
    body["vector"] = std::vector<float>((*all)->row(row), (*all)->row(row) + dim);
    body["k"] = 10;
    auto res = web.Post("/v1/topk", body.dump(), "application/json");
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no reply");
    std::vector<std::string> ids;
    if (res && res->status == 200) {
      const json doc = json::parse(res->body);
      for (const json& item : doc["items"]) ids.push_back(item["id"]);
    }
    return ids;
  };
  for (int64_t row : added) {
    const std::vector<std::string> ids = ask(row);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], (*all)->raw_ids[row]) << "a new item is its own vector's top-1";
  }

  // The part again: the added items are gone from the catalog, so removed.
  Run("export_part_again", {"export", "--items_only", model, "--dataset=" + d + "/part",
                            checkpoint, "--embeddings=" + d + "/e3", "--since=" + d + "/e2",
                            "--index_dir=" + d + "/flow"});
  ASSERT_TRUE(WaitFor(server->http_port, 1, 2));
  for (int64_t row : added) {
    for (const std::string& id : ask(row)) EXPECT_NE(id, (*all)->raw_ids[row]) << "removed";
  }
}

}  // namespace
}  // namespace towerps
