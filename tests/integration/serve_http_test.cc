// `towerps serve --http_port` as a real process on 127.0.0.1 over a small exact
// (Flat) index: every bad HTTP request gets its 4xx (or a router's 503) with a JSON
// error and the server keeps serving; `query --http` prints what ZeroMQ `query` prints;
// a router serves the same answers over HTTP. Ports are chosen at run time (below the
// ephemeral range, retried when taken); the servers are killed by PID at the end.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "http/test_http.h"
#include "httplib.h"
#include "index/embeddings.h"
#include "index/sharded_index.h"
#include "nlohmann/json.hpp"
#include "tests/integration/serve_fixture.h"
#include "tests/integration/subprocess.h"

namespace towerps {
namespace {

using http::ExpectJsonError;
using nlohmann::json;
using testing::PickPort;
using testing::RandomUnitRows;
using testing::Subprocess;
using testing::WriteTable;
using namespace std::chrono_literals;

constexpr int kDim = 16;
constexpr int kItems = 2000;
constexpr int kUsers = 32;

struct Server {
  std::string zmq;  // tcp://127.0.0.1:P
  int http_port = 0;
};

class ServeHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* bin = std::getenv("TOWERPS_BINARY_DIR");
    binary_ = new std::string(std::string(bin ? bin : "") + "/cmd/towerps");
    dir_ = new std::string(std::filesystem::path(::testing::TempDir()) /
                           ("serve_http_test_" + std::to_string(::getpid())));
    ASSERT_TRUE(RemoveAll(*dir_).ok());
    ASSERT_TRUE(CreateDirectories(*dir_ + "/emb").ok());
    const std::vector<float> items = RandomUnitRows(kItems, kDim, 3);
    WriteTable(*dir_ + "/emb/items.emb", data::Side::kItem, "item", kItems, kDim, items);
    WriteTable(*dir_ + "/emb/users.emb", data::Side::kUser, "user", kUsers, kDim,
               RandomUnitRows(kUsers, kDim, 4));
    auto table = index::EmbeddingTable::Read(*dir_ + "/emb/items.emb");
    ASSERT_TRUE(table.ok()) << table.status();
    index::IndexBuildOptions build;
    build.ann.factory = "Flat";
    build.shards = 2;
    ASSERT_TRUE(
        index::BuildShardedIndex(build, (*table)->keys, items.data(), kDim, 9, *dir_ + "/index")
            .ok());
    children_ = new std::vector<std::unique_ptr<Subprocess>>();
    local_ = new Server(
        Start("local", {"--index_dir=" + *dir_ + "/index", "--embeddings=" + *dir_ + "/emb",
                        "--http_max_body_bytes=65536", "--max_k=100"}));
  }

  static void TearDownTestSuite() {
    delete children_;  // kills every server by its PID (process group)
    children_ = nullptr;
  }

  // Starts `towerps serve --http_port=<a free port>` and waits (30 s at most) for its
  // endpoint file and GET /healthz. Another port when the chosen one was taken.
  static Server Start(const std::string& name, std::vector<std::string> flags) {
    static std::mt19937 rng(::getpid());
    for (int attempt = 0; attempt < 5; ++attempt) {
      const std::string endpoint_file = absl::StrCat(*dir_, "/", name, attempt, ".endpoint");
      const std::string log = absl::StrCat(*dir_, "/", name, attempt, ".log");
      const int port = PickPort(&rng);
      std::vector<std::string> argv = {*binary_, "serve", "--serve_endpoint_file=" + endpoint_file,
                                       absl::StrCat("--http_port=", port)};
      argv.insert(argv.end(), flags.begin(), flags.end());
      children_->push_back(std::make_unique<Subprocess>(argv, log));
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (std::chrono::steady_clock::now() < deadline) {
        auto endpoint = ReadFileToString(endpoint_file);
        if (endpoint.ok() && !endpoint->empty()) {
          httplib::Client client("127.0.0.1", port);
          auto res = client.Get("/healthz");
          if (res && res->status == 200) return {*endpoint, port};
        }
        if (children_->back()->Wait(20ms)) break;  // exited: the port was taken?
      }
      auto text = ReadFileToString(log);
      ADD_FAILURE() << name << " did not start on port " << port << ":\n"
                    << (text.ok() ? *text : "");
    }
    return {};
  }

  // Runs `towerps query ...` and returns its output (stdout and stderr), checking its
  // exit code.
  static std::string Query(const std::string& name, std::vector<std::string> flags,
                           int want_exit = 0) {
    std::vector<std::string> argv = {*binary_, "query"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    Subprocess query(argv, *dir_ + "/" + name + ".log");
    EXPECT_EQ(query.Wait(30s), std::optional<int>(want_exit)) << name;
    auto out = ReadFileToString(*dir_ + "/" + name + ".log");
    return out.ok() ? *out : "";
  }

  // kDim comma-separated numbers, the first one `first` (as written), the others 0.5.
  static std::string Numbers(const std::string& first) {
    std::string out = first;
    for (int c = 1; c < kDim; ++c) absl::StrAppend(&out, ",0.5");
    return out;
  }

  static inline std::string* binary_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline Server* local_ = nullptr;
  static inline std::vector<std::unique_ptr<Subprocess>>* children_ = nullptr;
};

TEST_F(ServeHttpTest, BadRequestsGetJsonErrorsAndTheServerKeepsServing) {
  ASSERT_GT(local_->http_port, 0);
  auto client = std::make_unique<httplib::Client>("127.0.0.1", local_->http_port);
  auto post = [&](const std::string& body) {
    return client->Post("/v1/topk", body, "application/json");
  };
  ExpectJsonError(post("{\"vector\":[1,2,"), 400, "invalid_argument", "malformed JSON");
  ExpectJsonError(post("{\"vector\":[1,2,3]}"), 400, "invalid_argument", "wrong dim");
  ExpectJsonError(post("{\"vector\":[" + Numbers("NaN") + "]}"), 400, "invalid_argument",
                  "NaN (not JSON)");
  ExpectJsonError(post("{\"vector\":[" + Numbers("1e39") + "]}"), 400, "invalid_argument",
                  "a value beyond float: infinite");
  ExpectJsonError(client->Get("/v1/topk?user=user1&k=1000000"), 400, "invalid_argument", "huge k");
  ExpectJsonError(client->Get("/v1/topk?user=user1&k=99999999999999999999"), 400,
                  "invalid_argument", "k beyond 32 bits");
  ExpectJsonError(client->Get("/v1/topk?user=nobody"), 404, "not_found", "unknown user");
  ExpectJsonError(client->Get("/v1/topk?user=user1&exclude=" + std::string(10000, 'x')), 414,
                  "invalid_argument", "too long URI");
  client = std::make_unique<httplib::Client>("127.0.0.1", local_->http_port);
  ExpectJsonError(post(std::string(70000, ' ') + "{}"), 413, "invalid_argument", "too big body");
  client = std::make_unique<httplib::Client>("127.0.0.1", local_->http_port);
  auto put = client->Put("/v1/topk", "{}", "application/json");
  ExpectJsonError(put, 405, "invalid_argument", "wrong method");
  EXPECT_EQ(put->get_header_value("Allow"), "GET, HEAD, POST");
  ExpectJsonError(client->Get("/v2/topk"), 404, "not_found", "unknown path");
  httplib::Headers headers;
  for (int i = 0; i < 100; ++i) headers.emplace(absl::StrCat("X-Header-", i), "v");
  ExpectJsonError(client->Get("/v1/topk?user=user1", headers), 431, "invalid_argument",
                  "too many headers");
  // Still serving, on a fresh connection and on the same one.
  for (int i = 0; i < 2; ++i) {
    auto res = client->Get("/v1/topk?user=user5&k=7");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    EXPECT_EQ(doc["user"], "user5");
    EXPECT_EQ(doc["items"].size(), 7u);
  }
  auto health = client->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body,
            absl::StrCat(R"({"status":"ok","items":)", kItems, R"(,"dim":16,"shards":2,"version":0,"delta_seq":0})"));
  auto metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("towerps_serve_http_errors_total{role=\"serve\",rank=\"0\"}"),
            std::string::npos);
}

TEST_F(ServeHttpTest, QueryOverHttpPrintsWhatZeroMqQueryPrints) {
  ASSERT_GT(local_->http_port, 0);
  const std::string http = absl::StrCat("--http=http://127.0.0.1:", local_->http_port);
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--user=user7", "--k=5", "--exclude=item1,item2"},
        std::vector<std::string>{"--vector=" + Numbers("0.25"), "--k=3", "--ef_search=64"}}) {
    std::vector<std::string> over_http = flags, over_zmq = flags;
    over_http.push_back(http);
    over_zmq.push_back("--server=" + local_->zmq);
    const std::string a = Query("query_http", over_http), b = Query("query_zmq", over_zmq);
    EXPECT_NE(a.find("\"results\":"), std::string::npos) << a;
    EXPECT_EQ(a, b);
  }
  const std::string unknown = Query("query_http_unknown", {http, "--user=nobody"}, 1);
  EXPECT_NE(unknown.find("unknown user 'nobody'"), std::string::npos) << unknown;
}

TEST_F(ServeHttpTest, RouterServesHttpAndAnswers503WhenItsShardsAreDown) {
  ASSERT_FALSE(local_->zmq.empty());
  Server router = Start("router", {"--route_to=" + local_->zmq, "--embeddings=" + *dir_ + "/emb"});
  ASSERT_GT(router.http_port, 0);
  httplib::Client via_router("127.0.0.1", router.http_port);
  httplib::Client direct("127.0.0.1", local_->http_port);
  auto a = via_router.Get("/v1/topk?user=user9&k=10"), b = direct.Get("/v1/topk?user=user9&k=10");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_EQ(json::parse(a->body)["items"], json::parse(b->body)["items"]);
  auto health = via_router.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body,
            absl::StrCat(R"({"status":"ok","items":)", kItems, R"(,"dim":16,"shards":1,"version":0,"delta_seq":0})"));
  // A router whose shard server does not answer: 503, and again after.
  Server orphan = Start("orphan", {"--route_to=tcp://127.0.0.1:9", "--route_timeout_ms=300",
                                   "--embeddings=" + *dir_ + "/emb"});
  ASSERT_GT(orphan.http_port, 0);
  httplib::Client to_orphan("127.0.0.1", orphan.http_port);
  for (int i = 0; i < 2; ++i) {
    ExpectJsonError(to_orphan.Get("/v1/topk?user=user1"), 503, "deadline_exceeded", "shards down");
  }
}

}  // namespace
}  // namespace towerps
