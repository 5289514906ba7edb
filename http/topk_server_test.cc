#include "http/topk_server.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/test_http.h"
#include "http/test_service.h"
#include "http/topk_client.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace towerps::http {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class TopKServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = TestService();
    ASSERT_NE(service_, nullptr);
    api_ = std::make_unique<TopKApi>(service_.get(), ServeInfo{kItems, kDim, 2});
    TopKServerOptions options;
    options.max_body_bytes = 4096;
    options.max_headers = 16;
    options.target = {"serve", 0};
    auto server = TopKServer::Create(options, api_.get(), &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  void ExpectStillServing() {
    auto res = client_->Get("/v1/topk?user=u2&k=3");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(json::parse(res->body)["items"].size(), 3u);
  }

  MetricsRegistry registry_;
  std::unique_ptr<index::RetrievalService> service_;
  std::unique_ptr<TopKApi> api_;
  std::unique_ptr<TopKServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(TopKServerTest, ServesTopKHealthAndMetrics) {
  auto res = client_->Get("/v1/topk?user=u1&k=4&exclude=i3,i4");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto get = ParseTopKReply(res->status, res->body);
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->hits.size(), 4u);
  // The same through the client, by GET and (a vector) by POST.
  auto client = TopKHttpClient::Create(absl::StrCat("http://127.0.0.1:", server_->port()), 5000);
  ASSERT_TRUE(client.ok()) << client.status();
  TopKHttpRequest request;
  request.user = "u1";
  request.k = 4;
  request.exclude = {"i3", "i4"};
  auto by_user = (*client)->Search(request);
  ASSERT_TRUE(by_user.ok()) << by_user.status();
  EXPECT_EQ(by_user->raw_ids, get->raw_ids);
  auto users = TestTable(data::Side::kUser);
  request.user.clear();
  request.vector.assign(users->row(1), users->row(1) + kDim);
  auto by_vector = (*client)->Search(request);
  ASSERT_TRUE(by_vector.ok()) << by_vector.status();
  EXPECT_EQ(by_vector->raw_ids, get->raw_ids);
  request.vector.clear();
  request.user = "nobody";
  EXPECT_EQ((*client)->Search(request).status().code(), absl::StatusCode::kNotFound);

  res = client_->Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"status":"ok","items":200,"dim":8,"shards":2,"version":0,"delta_seq":0})");
  res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusTextContentType);
  EXPECT_THAT(res->body, HasSubstr("towerps_serve_http_requests_total{role=\"serve\",rank=\"0\"}"));
  EXPECT_THAT(res->body, HasSubstr("towerps_serve_http_latency_seconds_bucket"));
  EXPECT_GE(registry_.GetCounter("towerps_serve_http_errors_total")->value(), 1);
}

TEST_F(TopKServerTest, EveryErrorIsJsonAndTheServerKeepsServing) {
  ExpectJsonError(client_->Get("/v1/topk?user=nobody"), 404, "not_found");
  ExpectJsonError(client_->Get("/v1/topk?user=u1&k=100000"), 400, "invalid_argument");
  ExpectJsonError(client_->Post("/v1/topk", "{\"vector\":[1,2", "application/json"), 400,
                  "invalid_argument");
  ExpectJsonError(client_->Post("/v1/topk", "{\"vector\":[1,2,3]}", "application/json"), 400,
                  "invalid_argument");
  ExpectJsonError(client_->Get("/nothing/here"), 404, "not_found");
  auto res = client_->Delete("/v1/topk");
  ExpectJsonError(res, 405, "invalid_argument");
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD, POST");
  res = client_->Post("/healthz", "{}", "application/json");
  ExpectJsonError(res, 405, "invalid_argument");
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  ExpectStillServing();
  // Over max_body_bytes (4096).
  ExpectJsonError(client_->Post("/v1/topk", std::string(5000, ' ') + "{}", "application/json"), 413,
                  "invalid_argument");
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  ExpectStillServing();
  // A request line over cpp-httplib's 8 KiB bound.
  ExpectJsonError(client_->Get("/v1/topk?user=u1&exclude=" + std::string(9000, 'x')), 414,
                  "invalid_argument");
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  // More than max_headers (16) headers.
  httplib::Headers headers;
  for (int i = 0; i < 20; ++i) headers.emplace(absl::StrCat("X-H", i), "v");
  ExpectJsonError(client_->Get("/v1/topk?user=u1", headers), 431, "invalid_argument");
  ExpectStillServing();
}

TEST_F(TopKServerTest, OptionsAreValidated) {
  TopKServerOptions options;
  options.target = {"serve", 0};
  EXPECT_TRUE(options.Validate().ok());
  options.max_body_bytes = 0;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.max_body_bytes = 1024;
  options.listen.num_threads = 0;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.listen.num_threads = 8;
  options.listen.host = "localhost";
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.listen.host = "127.0.0.1";
  options.max_headers = 0;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  // A port in use: Unavailable.
  options.max_headers = 16;
  options.listen.port = server_->port();
  EXPECT_EQ(TopKServer::Create(options, api_.get(), &registry_).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace towerps::http
