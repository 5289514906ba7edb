// The retrieval service as real processes on 127.0.0.1: two shard servers (each
// loading half of a 4-shard index) behind a router, and a query CLI. Exact (Flat)
// shards make the expected answers exact: the router's merge must equal a
// single-index search of the same data.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/keys.h"
#include "gtest/gtest.h"
#include "index/embeddings.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"
#include "net/transport.h"
#include "tests/integration/serve_fixture.h"
#include "tests/integration/subprocess.h"

namespace towerps {
namespace {

using testing::RandomUnitRows;
using testing::Subprocess;
using testing::WriteTable;
using namespace std::chrono_literals;

constexpr int kDim = 16;
constexpr int kItems = 3000;
constexpr int kUsers = 64;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    binary_ = new std::string(Env("TOWERPS_BINARY_DIR") + "/cmd/towerps");
    dir_ = new std::string(std::filesystem::path(::testing::TempDir()) /
                           ("serve_test_" + std::to_string(::getpid())));
    ASSERT_TRUE(RemoveAll(*dir_).ok());
    ASSERT_TRUE(CreateDirectories(*dir_ + "/emb").ok());
    items_ = new std::vector<float>(RandomUnitRows(kItems, kDim, 1));
    users_ = new std::vector<float>(RandomUnitRows(kUsers, kDim, 2));
    WriteTable(*dir_ + "/emb/items.emb", data::Side::kItem, "item", kItems, kDim, *items_);
    WriteTable(*dir_ + "/emb/users.emb", data::Side::kUser, "user", kUsers, kDim, *users_);
    auto table = index::EmbeddingTable::Read(*dir_ + "/emb/items.emb");
    ASSERT_TRUE(table.ok());
    index::IndexBuildOptions build;
    build.ann.factory = "Flat";
    build.shards = 4;
    ASSERT_TRUE(index::BuildShardedIndex(build, (*table)->keys, items_->data(), kDim, 9,
                                         *dir_ + "/index").ok());
    build.shards = 1;
    ASSERT_TRUE(index::BuildShardedIndex(build, (*table)->keys, items_->data(), kDim, 9,
                                         *dir_ + "/single").ok());
    auto single = index::ShardedIndex::Load(*dir_ + "/single");
    ASSERT_TRUE(single.ok());
    single_ = single->release();

    children_ = new std::vector<std::unique_ptr<Subprocess>>();
    std::string a = StartServer("shards01", {"--index_dir=" + *dir_ + "/index",
                                             "--serve_shards=0,1"});
    std::string b = StartServer("shards23", {"--index_dir=" + *dir_ + "/index",
                                             "--serve_shards=2,3"});
    ASSERT_FALSE(a.empty() || b.empty());
    router_ = new std::string(StartServer(
        "router", {"--route_to=" + a + "," + b, "--embeddings=" + *dir_ + "/emb", "--max_k=500"}));
    ASSERT_FALSE(router_->empty());
  }

  static void TearDownTestSuite() {
    delete children_;  // kills the servers
    children_ = nullptr;
  }

  // Starts `towerps serve` and returns its endpoint ("" after printing its log on
  // failure). Waits for the endpoint file with a deadline.
  static std::string StartServer(const std::string& name, std::vector<std::string> flags) {
    const std::string endpoint_file = *dir_ + "/" + name + ".endpoint";
    std::vector<std::string> argv = {*binary_, "serve", "--serve_endpoint_file=" + endpoint_file};
    argv.insert(argv.end(), flags.begin(), flags.end());
    children_->push_back(std::make_unique<Subprocess>(argv, *dir_ + "/" + name + ".log"));
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto endpoint = ReadFileToString(endpoint_file);
      if (endpoint.ok() && !endpoint->empty()) return *endpoint;
      if (children_->back()->Wait(20ms)) break;  // exited early
    }
    auto log = ReadFileToString(*dir_ + "/" + name + ".log");
    ADD_FAILURE() << name << " did not start:\n" << (log.ok() ? *log : "");
    return "";
  }

  // What the router must answer: the single exact index on the same data.
  static std::vector<index::Hit> Expected(int user, int k, const std::vector<uint64_t>& exclude) {
    auto hits = single_->Search(users_->data() + user * kDim, k, 0, exclude);
    EXPECT_TRUE(hits.ok()) << hits.status();
    return hits.ok() ? *hits : std::vector<index::Hit>{};
  }

  static absl::StatusOr<index::TopKResult> Ask(net::RpcClient* client,
                                               const index::TopKQuery& query) {
    const uint64_t id = client->NextRequestId();
    auto reply = client->Call(id, index::EncodeTopKRequest("test", id, query), false);
    if (!reply.ok()) return reply.status();
    return index::DecodeTopKReply(*reply);
  }

  std::unique_ptr<net::RpcClient> Connect(int64_t timeout_ms = 10000) {
    net::RpcClientOptions options;
    options.endpoint = *router_;
    options.timeout_ms = timeout_ms;
    options.max_attempts = 1;
    auto client = net::RpcClient::Connect(&ctx_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  static inline std::string* binary_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline std::string* router_ = nullptr;
  static inline std::vector<float>* items_ = nullptr;
  static inline std::vector<float>* users_ = nullptr;
  static inline index::ShardedIndex* single_ = nullptr;
  static inline std::vector<std::unique_ptr<Subprocess>>* children_ = nullptr;
  net::ZmqContext ctx_;
};

TEST_F(ServeTest, RouterMergeEqualsSingleIndexSearch) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int user = 0; user < kUsers; ++user) {
    index::TopKQuery query;
    query.user_id = absl::StrCat("user", user);
    query.k = 1 + user * 7;
    auto unfiltered = Expected(user, 3, {});
    query.exclude = {unfiltered[0].key, unfiltered[2].key, data::HashKey("not an item")};
    auto got = Ask(client.get(), query);
    ASSERT_TRUE(got.ok()) << got.status();
    auto want = Expected(user, query.k, query.exclude);
    ASSERT_EQ(got->hits.size(), want.size());
    for (size_t j = 0; j < want.size(); ++j) {
      EXPECT_EQ(got->hits[j].key, want[j].key) << "user " << user << " rank " << j;
      EXPECT_NEAR(got->hits[j].score, want[j].score, 1e-5);
      EXPECT_EQ(data::HashKey(got->raw_ids[j]), got->hits[j].key) << got->raw_ids[j];
    }
  }
  // A raw vector query: item 5's own vector finds item 5 first.
  index::TopKQuery by_vector;
  by_vector.vector.assign(items_->data() + 5 * kDim, items_->data() + 6 * kDim);
  by_vector.k = 3;
  auto got = Ask(client.get(), by_vector);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->raw_ids[0], "item5");
}

TEST_F(ServeTest, AnswersConcurrentQueries) {
  constexpr int kThreads = 8, kQueries = 40;
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = Connect();
      if (client == nullptr) return;
      for (int q = 0; q < kQueries; ++q) {
        const int user = (t * kQueries + q) % kUsers;
        index::TopKQuery query;
        query.user_id = absl::StrCat("user", user);
        query.k = 10;
        auto got = Ask(client.get(), query);
        if (!got.ok()) {
          ADD_FAILURE() << got.status();
          continue;
        }
        auto want = Expected(user, 10, {});
        bool same = got->hits.size() == want.size();
        for (size_t j = 0; same && j < want.size(); ++j) same = got->hits[j].key == want[j].key;
        correct += same;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), kThreads * kQueries);
}

TEST_F(ServeTest, BadRequestsGetClearErrorsAndTheServerKeepsServing) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  index::TopKQuery unknown;
  unknown.user_id = "nobody";
  EXPECT_EQ(Ask(client.get(), unknown).status().code(), absl::StatusCode::kNotFound);
  index::TopKQuery wrong_dim;
  wrong_dim.vector = {1, 2, 3};
  auto dim = Ask(client.get(), wrong_dim);
  EXPECT_EQ(dim.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dim.status().message().find("dim 3"), absl::string_view::npos) << dim.status();
  for (int k : {0, 501}) {
    index::TopKQuery bad_k;
    bad_k.user_id = "user1";
    bad_k.k = k;
    auto status = Ask(client.get(), bad_k).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find("k must be in [1, 500]"), absl::string_view::npos) << status;
  }
  index::TopKQuery bad_ef;
  bad_ef.user_id = "user1";
  bad_ef.ef_search = 1 << 20;
  EXPECT_EQ(Ask(client.get(), bad_ef).status().code(), absl::StatusCode::kInvalidArgument);
  // Not a Cap'n Proto message at all (its error reply cannot name the request id,
  // so this client sees its deadline pass).
  auto garbage = Connect(500);
  const uint64_t id = garbage->NextRequestId();
  EXPECT_FALSE(garbage->Call(id, "garbage bytes, not an envelope", false).ok());
  // Still serving.
  auto client2 = Connect();
  index::TopKQuery good;
  good.user_id = "user3";
  good.k = 5;
  auto got = Ask(client2.get(), good);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->hits.size(), 5u);
}

TEST_F(ServeTest, QueryCliPrintsJson) {
  Subprocess query({*binary_, "query", "--server=" + *router_, "--user=user7", "--k=4",
                    "--exclude=item1,item2"},
                   *dir_ + "/query.log");
  ASSERT_EQ(query.Wait(30s), std::optional<int>(0));
  auto out = ReadFileToString(*dir_ + "/query.log");
  ASSERT_TRUE(out.ok());
  auto want = Expected(7, 4, {data::HashKey("item1"), data::HashKey("item2")});
  EXPECT_NE(out->find("\"results\":4"), std::string::npos) << *out;
  EXPECT_NE(out->find(absl::StrCat("\"key\":", want[0].key)), std::string::npos) << *out;
  Subprocess bad({*binary_, "query", "--server=" + *router_, "--user=nobody"},
                 *dir_ + "/bad_query.log");
  EXPECT_EQ(bad.Wait(30s), std::optional<int>(1));
  auto err = ReadFileToString(*dir_ + "/bad_query.log");
  EXPECT_NE(err->find("unknown user 'nobody'"), std::string::npos) << *err;
}

// --curve_dir on serve and query: a secured router in front of a secured shard server
// answers the operator key's query; a query without keys gets no answer.
TEST_F(ServeTest, SecuredServingAnswersOnlyKeyedQueries) {
  const std::string keys = *dir_ + "/keys";
  Subprocess keygen({*binary_, "keygen", "--output_dir=" + keys}, *dir_ + "/keygen.log");
  ASSERT_EQ(keygen.Wait(30s), std::optional<int>(0));
  const std::string curve = "--curve_dir=" + keys;
  std::string shards = StartServer("secure_shards", {"--index_dir=" + *dir_ + "/index", curve});
  ASSERT_FALSE(shards.empty());
  std::string router = StartServer(
      "secure_router", {"--route_to=" + shards, "--embeddings=" + *dir_ + "/emb", curve});
  ASSERT_FALSE(router.empty());
  Subprocess keyed({*binary_, "query", "--server=" + router, "--user=user7", "--k=4", curve},
                   *dir_ + "/secure_query.log");
  ASSERT_EQ(keyed.Wait(30s), std::optional<int>(0));
  auto out = ReadFileToString(*dir_ + "/secure_query.log");
  auto want = Expected(7, 4, {});
  EXPECT_NE(out->find(absl::StrCat("\"key\":", want[0].key)), std::string::npos) << *out;
  Subprocess plain({*binary_, "query", "--server=" + router, "--user=user7",
                    "--query_timeout_ms=500"},
                   *dir_ + "/plain_query.log");
  EXPECT_EQ(plain.Wait(30s), std::optional<int>(1));
}

}  // namespace
}  // namespace towerps
