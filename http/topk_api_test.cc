#include "http/topk_api.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/test_service.h"
#include "http/topk_client.h"
#include "nlohmann/json.hpp"

namespace towerps::http {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class TopKApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { service_ = TestService().release(); }
  static void TearDownTestSuite() { delete service_; }

  // The user's vector as a JSON array.
  static std::string UserVector(int user) {
    auto users = TestTable(data::Side::kUser);
    std::string out = "[";
    for (int d = 0; d < kDim; ++d) {
      absl::StrAppend(&out, d ? "," : "", absl::StrFormat("%.9g", users->row(user)[d]));
    }
    return out + "]";
  }

  // Checks an error reply: status, JSON error code, and a message fragment.
  static void ExpectError(const HttpReply& reply, int status, const std::string& code,
                          const std::string& message) {
    EXPECT_EQ(reply.status, status) << reply.body;
    json doc = json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << reply.body;
    EXPECT_EQ(doc["error"]["code"], code) << reply.body;
    EXPECT_THAT(doc["error"]["message"].get<std::string>(), HasSubstr(message)) << reply.body;
  }

  static inline index::RetrievalService* service_ = nullptr;
  ServeInfo info_{kItems, kDim, 2};
};

TEST_F(TopKApiTest, GetAnswersWhatTheServiceAnswers) {
  TopKApi api(service_, info_);
  HttpReply reply = api.Get({{"user", "u3"}, {"k", "5"}, {"exclude", "i1,i2"}, {"ef", "32"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  json doc = json::parse(reply.body, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << reply.body;
  EXPECT_EQ(doc["user"], "u3");
  EXPECT_EQ(doc["k"], 5);
  EXPECT_TRUE(doc["took_us"].is_number_integer());
  index::TopKQuery query;
  query.user_id = "u3";
  query.k = 5;
  query.exclude = {data::HashKey("i1"), data::HashKey("i2")};
  auto want = service_->Search(query);
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(doc["items"].size(), want->hits.size());
  for (size_t i = 0; i < want->hits.size(); ++i) {
    EXPECT_EQ(doc["items"][i]["id"], want->raw_ids[i]);
    EXPECT_EQ(doc["items"][i]["key"], absl::StrCat(want->hits[i].key));  // a string
    EXPECT_NEAR(doc["items"][i]["score"].get<double>(), want->hits[i].score, 1e-4);
  }
  // The client's reader gives back the same result.
  auto parsed = ParseTopKReply(reply.status, reply.body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->raw_ids, want->raw_ids);
}

TEST_F(TopKApiTest, PostByVectorEqualsGetByUser) {
  TopKApi api(service_, info_);
  HttpReply get = api.Get({{"user", "u4"}, {"k", "7"}});
  HttpReply post = api.Post(absl::StrCat(R"({"vector":)", UserVector(4), R"(,"k":7})"));
  ASSERT_EQ(post.status, 200) << post.body;
  json g = json::parse(get.body), p = json::parse(post.body);
  EXPECT_FALSE(p.contains("user"));
  EXPECT_EQ(g["items"], p["items"]);
  // "user" in a POST body (for exclusion lists too long for a URI).
  HttpReply by_user = api.Post(R"({"user":"u4","k":7,"exclude":[]})");
  ASSERT_EQ(by_user.status, 200) << by_user.body;
  EXPECT_EQ(json::parse(by_user.body)["items"], g["items"]);
}

TEST_F(TopKApiTest, GetErrors) {
  TopKApi api(service_, info_);
  struct Case {
    QueryParams params;
    int status;
    std::string code, message;
  };
  const std::vector<Case> cases = {
      {{}, 400, "invalid_argument", "user is required"},
      {{{"user", "nobody"}}, 404, "not_found", "unknown user 'nobody'"},
      {{{"user", "u1"}, {"k", "0"}}, 400, "invalid_argument", "k must be in [1, 50], got 0"},
      {{{"user", "u1"}, {"k", "51"}}, 400, "invalid_argument", "k must be in [1, 50]"},
      {{{"user", "u1"}, {"k", "99999999999"}}, 400, "invalid_argument", "32-bit integer"},
      {{{"user", "u1"}, {"k", "ten"}}, 400, "invalid_argument", "k must be a 32-bit integer"},
      {{{"user", "u1"}, {"ef", "100000"}}, 400, "invalid_argument", "ef_search must be in"},
      {{{"user", "u1"}, {"ef", "-1"}}, 400, "invalid_argument", "ef_search must be in"},
      {{{"user", "u1"}, {"exclude", "a,b,c,d,e,f,g,h,i"}},
       400,
       "invalid_argument",
       "more than 8 exclusions"},
      {{{"user", "u1"}, {"user", "u2"}}, 400, "invalid_argument", "repeated parameter 'user'"},
      {{{"user", "u1"}, {"kk", "3"}}, 400, "invalid_argument", "unknown parameter"},
      {{{"user", "u\xff"}}, 400, "invalid_argument", "not valid UTF-8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    ExpectError(api.Get(c.params), c.status, c.code, c.message);
  }
}

TEST_F(TopKApiTest, PostErrors) {
  TopKApi api(service_, info_);
  const std::string good_vector = UserVector(1);
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "malformed JSON"},
      {"{\"vector\":[1,2", "malformed JSON"},
      {"{\"vector\":[NaN,1,1,1,1,1,1,1]}", "malformed JSON"},
      {"[1,2,3]", "must be a JSON object"},
      {"{\"vector\":[1,2,3]}", "the query vector has dim 3, the index 8"},
      {"{\"vector\":[1e39,1,1,1,1,1,1,1]}", "non-finite query vector"},
      {"{\"vector\":[\"1\",1,1,1,1,1,1,1]}", "numbers only"},
      {"{\"vector\":5}", "\"vector\" must be an array"},
      {"{\"vector\":[]}", "the query vector has dim 0"},
      {"{\"k\":3}", "exactly one of \"vector\" or \"user\""},
      {absl::StrCat("{\"vector\":", good_vector, ",\"user\":\"u1\"}"), "exactly one of"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"k\":1e9}"), "\"k\" must be a 32-bit integer"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"k\":4294967296}"), "32-bit integer"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"k\":100000}"), "k must be in [1, 50]"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"ef\":\"16\"}"), "\"ef\" must be a 32-bit"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"exclude\":[1]}"), "must hold strings"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"exclude\":\"i1\"}"), "must be an array"},
      {absl::StrCat("{\"vector\":", good_vector,
                    ",\"exclude\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}"),
       "more than 8 exclusions"},
      {absl::StrCat("{\"vector\":", good_vector, ",\"extra\":1}"), "unknown key"},
      {"{\"user\":\"\"}", "\"user\" is empty"},
      {"{\"user\":7}", "\"user\" must be a string"},
      {std::string(100000, '[') + std::string(100000, ']'), "nested too deep"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 80));
    ExpectError(api.Post(c.body), 400, "invalid_argument", c.message);
  }
  ExpectError(api.Post(R"({"user":"nobody"})"), 404, "not_found", "unknown user");
}

TEST_F(TopKApiTest, Health) {
  TopKApi api(service_, info_);
  HttpReply reply = api.Health();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"status":"ok","items":200,"dim":8,"shards":2,"version":0,"delta_seq":0})");
}

TEST(TopKApiStatusTest, OneMapFromStatusToHttp) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDataLoss), 500);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 500);
  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code) << ErrorCodeName(code);
  }
  EXPECT_EQ(ErrorCodeName(absl::StatusCode::kInvalidArgument), "invalid_argument");
  HttpReply reply = ErrorReply(absl::UnavailableError("shard \"a\" down"));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.body, R"({"error":{"code":"unavailable","message":"shard \"a\" down"}})");
  // The client reads an error back as the same Status.
  auto back = ParseTopKReply(reply.status, reply.body);
  EXPECT_EQ(back.status(), absl::UnavailableError("shard \"a\" down"));
  EXPECT_EQ(ParseTopKReply(502, "<html>").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseTopKReply(200, R"({"items":[{"id":"a","key":7,"score":1}]})").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace towerps::http
