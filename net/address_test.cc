#include "net/address.h"

#include <sys/stat.h>
#include <zmq.h>

#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "net/transport.h"

namespace towerps::net {
namespace {

TEST(AddressTest, HostSyntax) {
  for (const char* ok : {"127.0.0.1", "0.0.0.0", "10.20.30.40", "255.255.255.255"}) {
    EXPECT_TRUE(IsIPv4Address(ok)) << ok;
    EXPECT_FALSE(IsHostName(ok)) << ok;
  }
  for (const char* name : {"localhost", "node-7", "ps-0.towerps-ps.default.svc.cluster.local",
                           "a1", "x.y2z"}) {
    EXPECT_TRUE(IsHostName(name)) << name;
    EXPECT_FALSE(IsIPv4Address(name)) << name;
  }
  for (const char* bad : {"", "10.0.1", "1.2.3.999", "256.1.1.1", "-node",
                          "node-", "a..b", ".a", "a.", "a b", "a_b", "::1", "[::1]", "a:80",
                          "tcp://a", "1234", "ä"}) {
    EXPECT_FALSE(IsIPv4Address(bad) || IsHostName(bad)) << bad;
  }
  EXPECT_FALSE(IsHostName(std::string(64, 'a')));
  EXPECT_TRUE(IsHostName(std::string(63, 'a')));
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  long_name += "d";
  EXPECT_FALSE(IsHostName(long_name));
}

TEST(AddressTest, ValidateRefusesBadOptions) {
  struct Case {
    NodeAddressOptions options;
    const char* says;
  } cases[] = {
      {{"", -1, ""}, "--port"},
      {{"", 65536, ""}, "--port"},
      {{"10.0.1", 0, ""}, "--host"},
      {{"a b", 0, ""}, "--host"},
      {{"0.0.0.0", 0, ""}, "--advertise_host"},
      {{"0.0.0.0", 7070, "0.0.0.0"}, "--advertise_host"},
      {{"127.0.0.2", 0, "bad name!"}, "--advertise_host"},
  };
  for (const Case& c : cases) {
    absl::Status status = c.options.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.options.host;
    EXPECT_NE(status.message().find(c.says), std::string::npos) << status;
  }
  EXPECT_TRUE((NodeAddressOptions{"0.0.0.0", 7070, "ps-0.svc"}).Validate().ok());
  EXPECT_TRUE((NodeAddressOptions{"", 65535, ""}).Validate().ok());
}

TEST(AddressTest, EmptyHostIsLoopbackWithTheSystemsSource) {
  auto address = ResolveNodeAddress({});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->BindEndpoint(), "tcp://127.0.0.1:0");
  EXPECT_EQ(address->advertise_host, "127.0.0.1");
  EXPECT_EQ(address->source_host, "");
}

TEST(AddressTest, HostIsBoundAdvertisedAndTheSource) {
  auto address = ResolveNodeAddress({"127.0.0.3", 7071, ""});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->BindEndpoint(), "tcp://127.0.0.3:7071");
  EXPECT_EQ(address->advertise_host, "127.0.0.3");
  EXPECT_EQ(address->source_host, "127.0.0.3");
  auto advertised = address->AdvertisedEndpoint("tcp://127.0.0.3:7071");
  ASSERT_TRUE(advertised.ok());
  EXPECT_EQ(*advertised, "tcp://127.0.0.3:7071");
}

TEST(AddressTest, EveryInterfaceAdvertisesTheGivenHostAndPicksNoSource) {
  auto address = ResolveNodeAddress({"0.0.0.0", 0, "ps-1.towerps-ps"});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->BindEndpoint(), "tcp://0.0.0.0:0");
  EXPECT_EQ(address->source_host, "");
  auto advertised = address->AdvertisedEndpoint("tcp://0.0.0.0:40123");
  ASSERT_TRUE(advertised.ok());
  EXPECT_EQ(*advertised, "tcp://ps-1.towerps-ps:40123");
  EXPECT_FALSE(address->AdvertisedEndpoint("inproc://x").ok());
  EXPECT_FALSE(address->AdvertisedEndpoint("tcp://0.0.0.0:0").ok());
}

TEST(AddressTest, HostNameIsResolvedOnce) {
  auto address = ResolveNodeAddress({"localhost", 0, ""});
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_TRUE(IsIPv4Address(address->bind_host)) << address->bind_host;
  // The resolved address, not the name, is advertised and used as the source.
  EXPECT_EQ(address->advertise_host, address->bind_host);
  EXPECT_EQ(address->source_host, address->bind_host);
}

TEST(AddressTest, UnresolvableHostIsOneClearError) {
  // RFC 6761: .invalid never resolves.
  auto address = ResolveNodeAddress({"no-such-host.invalid", 0, ""});
  ASSERT_FALSE(address.ok());
  EXPECT_TRUE(absl::IsNotFound(address.status()) || absl::IsUnavailable(address.status()))
      << address.status();
  EXPECT_NE(address.status().message().find("--host"), std::string::npos);
  EXPECT_NE(address.status().message().find("no-such-host.invalid"), std::string::npos);
  EXPECT_EQ(address.status().message().find('\n'), std::string::npos);
}

TEST(AddressTest, ParseTcpEndpoint) {
  auto parsed = ParseTcpEndpoint("tcp://10.1.2.3:7070\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "10.1.2.3");
  EXPECT_EQ(parsed->port, 7070);
  parsed = ParseTcpEndpoint("  tcp://scheduler.towerps:65535 ");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "scheduler.towerps");
  for (const char* bad :
       {"", "\n", "tcp://", "tcp://host", "tcp://host:", "tcp://:7070", "tcp://host:0",
        "tcp://host:65536", "tcp://host:+80", "tcp://host:-1", "tcp://host:080000",
        "tcp://host:80 x", "tcp://host:80\ntcp://b:81", "udp://host:80", "inproc://x",
        "tcp://a b:80", "tcp://10.0.1:80", "tcp://host:80;other:81", "tcp://[::1]:80",
        "TCP://host:80", "tcp://host:8a"}) {
    EXPECT_EQ(ParseTcpEndpoint(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseTcpEndpoint("tcp://" + std::string(400, 'a') + ":80").ok());
}

TEST(AddressTest, WithSourceAddress) {
  EXPECT_EQ(WithSourceAddress("tcp://127.0.0.3:7071", "127.0.0.5"),
            "tcp://127.0.0.5:0;127.0.0.3:7071");
  EXPECT_EQ(WithSourceAddress("tcp://127.0.0.3:7071", ""), "tcp://127.0.0.3:7071");
  EXPECT_EQ(WithSourceAddress("inproc://x", "127.0.0.5"), "inproc://x");
}

TEST(EndpointFileTest, ReadsOneValidatedEndpoint) {
  const std::string dir = FreshTestDir("endpoint_file", /*create=*/true);
  const std::string path = dir + "/scheduler.endpoint";
  EXPECT_TRUE(absl::IsNotFound(ReadEndpointFile(path).status()));
  ASSERT_TRUE(WriteFileAtomically(path, "tcp://127.0.0.2:40123\n").ok());
  auto endpoint = ReadEndpointFile(path);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(*endpoint, "tcp://127.0.0.2:40123");

  for (const std::string& bad :
       {std::string(""), std::string("garbage"), std::string("tcp://0.0.0.0:7070\n"),
        std::string("tcp://127.0.0.2:40123\nextra\n"), std::string(5000, 'x'),
        "tcp://127.0.0.2:40123" + std::string(400, ' ')}) {
    ASSERT_TRUE(WriteFileAtomically(path, bad).ok());
    auto read = ReadEndpointFile(path);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << bad.substr(0, 40);
    EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status();
  }
  // Neither a directory nor a FIFO is read (a FIFO would block the reader).
  ASSERT_TRUE(RemoveAll(path).ok());
  ASSERT_TRUE(CreateDirectories(path).ok());
  EXPECT_EQ(ReadEndpointFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(RemoveAll(path).ok());
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  EXPECT_EQ(ReadEndpointFile(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EndpointFileTest, WaitsForTheFileUntilItsDeadline) {
  const std::string dir = FreshTestDir("endpoint_wait", /*create=*/true);
  const std::string path = dir + "/scheduler.endpoint";
  auto late = WaitForEndpointFile(path, /*timeout_ms=*/200, /*poll_ms=*/10);
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.status())) << late.status();
  EXPECT_NE(late.status().message().find(path), std::string::npos);

  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_TRUE(WriteFileAtomically(path, "tcp://127.0.0.2:7070\n").ok());
  });
  auto endpoint = WaitForEndpointFile(path, /*timeout_ms=*/30000, /*poll_ms=*/10);
  writer.join();
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(*endpoint, "tcp://127.0.0.2:7070");

  // A bad file is an error at once, not a wait.
  ASSERT_TRUE(WriteFileAtomically(path, "tcp://nope\n").ok());
  EXPECT_EQ(WaitForEndpointFile(path, 30000, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EndpointFileTest, CancelledWaitReturnsTheReason) {
  const std::string dir = FreshTestDir("endpoint_cancel", /*create=*/true);
  Cancellation cancel;
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(50));
    cancel.Cancel(absl::CancelledError("stopped by SIGTERM"));
  });
  auto endpoint = WaitForEndpointFile(dir + "/scheduler.endpoint", 60000, 10, &cancel);
  stopper.join();
  EXPECT_TRUE(absl::IsCancelled(endpoint.status())) << endpoint.status();
}

// A client with a source host connects from it: the server sees that peer address.
TEST(SourceAddressTest, ClientLeavesFromItsSourceHost) {
  ZmqContext ctx;
  void* router = zmq_socket(ctx.get(), ZMQ_ROUTER);
  ASSERT_EQ(zmq_bind(router, "tcp://127.0.0.3:0"), 0) << zmq_strerror(zmq_errno());
  char bound[256];
  size_t size = sizeof(bound);
  ASSERT_EQ(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, bound, &size), 0);
  int timeout_ms = 10000;
  zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));

  RpcClientOptions options;
  options.endpoint = bound;
  options.source_host = "127.0.0.5";
  auto client = RpcClient::Connect(&ctx, options);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Send((*client)->NextRequestId(), "hello", /*retry=*/false).ok());
  zmq_msg_t identity, payload;
  zmq_msg_init(&identity);
  zmq_msg_init(&payload);
  ASSERT_GE(zmq_msg_recv(&identity, router, 0), 0) << zmq_strerror(zmq_errno());
  ASSERT_GE(zmq_msg_recv(&payload, router, 0), 0);
  const char* peer = zmq_msg_gets(&payload, "Peer-Address");
  ASSERT_NE(peer, nullptr);
  EXPECT_STREQ(peer, "127.0.0.5");
  zmq_msg_close(&identity);
  zmq_msg_close(&payload);
  zmq_close(router);
}

TEST(SourceAddressTest, OptionsRefuseANonAddressSource) {
  RpcClientOptions options;
  options.endpoint = "tcp://127.0.0.1:1";
  for (const char* bad : {"0.0.0.0", "localhost", "10.0.1"}) {
    options.source_host = bad;
    EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  options.source_host = "127.0.0.9";
  EXPECT_TRUE(options.Validate().ok());
}

}  // namespace
}  // namespace towerps::net
