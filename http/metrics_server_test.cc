#include "http/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace towerps::http {
namespace {

using ::testing::HasSubstr;

MetricsServerOptions TestOptions() {
  MetricsServerOptions options;
  options.target = {"worker", 3};
  return options;
}

TEST(MetricsServerOptionsTest, Validate) {
  EXPECT_TRUE(TestOptions().Validate().ok());
  auto bad = [](auto mutate) {
    MetricsServerOptions o = TestOptions();
    mutate(o);
    return o.Validate().code();
  };
  EXPECT_EQ(bad([](auto& o) { o.host = "localhost"; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.host = ""; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.port = 65536; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.port = -1; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.num_threads = 0; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.max_headers = 0; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.read_timeout_ms = 0; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.keep_alive_timeout_s = 0; }), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](auto& o) { o.target.role = ""; }), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerTest, ServesMetricsAndHealth) {
  MetricsRegistry registry;
  registry.GetCounter("towerps_ps_pulled_keys_total")->Increment(5);
  auto server = MetricsServer::Create(TestOptions(), &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusTextContentType);
  EXPECT_THAT(res->body, HasSubstr("towerps_ps_pulled_keys_total{role=\"worker\",rank=\"3\"} 5\n"));
  // The process's resident memory is refreshed before every render.
  EXPECT_THAT(res->body, HasSubstr("# TYPE towerps_process_resident_memory_bytes gauge\n"
                                   "towerps_process_resident_memory_bytes{role=\"worker\","));
  EXPECT_GT(registry.GetGauge("towerps_process_resident_memory_bytes")->value(), 0);
  // Values are read at each scrape.
  registry.GetCounter("towerps_ps_pulled_keys_total")->Increment(1);
  res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("rank=\"3\"} 6\n"));
  res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
}

TEST(MetricsServerTest, RefusesOtherPathsMethodsAndTooManyHeaders) {
  MetricsRegistry registry;
  auto server = MetricsServer::Create(TestOptions(), &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Get("/metrics/../etc/passwd");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->status == 405 || res->status == 413) << res->status;
  res = client.Delete("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  httplib::Headers headers;
  for (int i = 0; i < 100; ++i) headers.emplace("X-Filler-" + std::to_string(i), "v");
  res = client.Get("/metrics", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 431);
  // A header line over the library's 8 KiB bound: the request is refused, the server lives.
  httplib::Headers huge{{"X-Huge", std::string(10000, 'a')}};
  res = client.Get("/metrics", huge);
  EXPECT_TRUE(!res || res->status >= 400);
  httplib::Client again("127.0.0.1", (*server)->port());
  res = again.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(MetricsServerTest, PortInUseIsUnavailable) {
  MetricsRegistry registry;
  auto first = MetricsServer::Create(TestOptions(), &registry);
  ASSERT_TRUE(first.ok()) << first.status();
  MetricsServerOptions options = TestOptions();
  options.port = (*first)->port();
  auto second = MetricsServer::Create(options, &registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

TEST(MetricsServerTest, StopIsIdempotentAndClosesThePort) {
  MetricsRegistry registry;
  auto server = MetricsServer::Create(TestOptions(), &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  (*server)->Stop();
  (*server)->Stop();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  EXPECT_FALSE(client.Get("/healthz"));
  // Stop right after Create (the accept loop may not have started yet) returns.
  auto quick = MetricsServer::Create(TestOptions(), &registry);
  ASSERT_TRUE(quick.ok());
  quick->reset();
}

// A client that connects and sends nothing holds a worker until the read timeout;
// Stop() still returns, and the idle connections do not keep it waiting longer.
TEST(MetricsServerTest, StopWithSilentConnections) {
  MetricsRegistry registry;
  MetricsServerOptions options = TestOptions();
  options.read_timeout_ms = 200;
  options.keep_alive_timeout_s = 1;
  auto server = MetricsServer::Create(options, &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {  // more than num_threads
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>((*server)->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    fds.push_back(fd);
  }
  const absl::Time start = absl::Now();
  (*server)->Stop();
  // Bounded by the keep-alive and read timeouts, not by the clients (a bound, not a
  // speed figure: generous for a loaded machine).
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  for (int fd : fds) ::close(fd);
}

}  // namespace
}  // namespace towerps::http
