// Where a cluster process listens, what address its peers use, and where its own
// connections leave from (the launch flags --host, --port, --advertise_host of
// cmd/launch_flags.cc, turned into endpoints here so that mains stay thin).
//
// IPv4 only. A host name is resolved once, at ResolveNodeAddress (getaddrinfo); the
// advertised host is not resolved here (peers resolve it: a Kubernetes pod's stable
// DNS name may be the right thing to hand out).
//
// The scheduler's endpoint file (<run_dir>/scheduler.endpoint, written by the
// scheduler, read by the ps and worker processes that were given no --scheduler) is
// outside input: ParseTcpEndpoint checks it before anything connects to it.
//
// Free functions and plain structs; thread-safe (getaddrinfo is reentrant).
#ifndef TOWERPS_NET_ADDRESS_H_
#define TOWERPS_NET_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/cancellation.h"

namespace towerps::net {

// The listen address used when no host is given.
inline constexpr char kDefaultHost[] = "127.0.0.1";
// Every interface: only when asked, and never handed to peers.
inline constexpr char kAnyHost[] = "0.0.0.0";
// Endpoint files and endpoints longer than this are refused (a host name is at most
// 253 characters).
inline constexpr size_t kMaxEndpointBytes = 300;

struct NodeAddressOptions {
  // Address to bind and to connect from: "" (listen on 127.0.0.1, connect from the
  // system's choice), an IPv4 address, "0.0.0.0" (listen on every interface, connect
  // from the system's choice; needs advertise_host) or a host name resolving to an
  // IPv4 address.
  std::string host;
  // Port to listen on, 0..65535; 0 = any free port.
  int port = 0;
  // Host peers use to reach this process: an IPv4 address or a host name (not
  // 0.0.0.0). Empty: the resolved host (127.0.0.1 when host is empty).
  std::string advertise_host;

  // InvalidArgument for a port out of range, a host or advertise_host that is neither
  // an IPv4 address nor a well-formed host name, 0.0.0.0 without advertise_host, or
  // an advertised 0.0.0.0. Does not resolve anything.
  absl::Status Validate() const;
};

// A resolved NodeAddressOptions.
struct NodeAddress {
  // IPv4 address to listen on ("127.0.0.1", "0.0.0.0", "10.1.2.3").
  std::string bind_host = kDefaultHost;
  // Port to listen on; 0 = any free one.
  int port = 0;
  // Host written into the endpoints peers use (never 0.0.0.0).
  std::string advertise_host = kDefaultHost;
  // IPv4 address outgoing connections leave from (RpcClientOptions::source_host);
  // empty = the system's choice (no host given, or 0.0.0.0).
  std::string source_host;

  // "tcp://<bind_host>:<port>".
  std::string BindEndpoint() const;
  // "tcp://<advertise_host>:<port of bound_endpoint>" (bound_endpoint: a listener's
  // real endpoint, e.g. RpcServer::endpoint()). InvalidArgument when bound_endpoint
  // is not tcp://host:port with a port in 1..65535.
  absl::StatusOr<std::string> AdvertisedEndpoint(absl::string_view bound_endpoint) const;
};

// Validates `options` and resolves its host. Errors: InvalidArgument (see Validate),
// NotFound for a host name that does not resolve to an IPv4 address, Unavailable when
// the resolver fails for a temporary reason. Each error names the host.
absl::StatusOr<NodeAddress> ResolveNodeAddress(const NodeAddressOptions& options);

// True for a dotted-quad IPv4 address ("10.0.0.1").
bool IsIPv4Address(absl::string_view host);
// True for an RFC 1123 host name: labels of letters, digits and '-' (not at either end),
// 1..63 characters each, at most 253 in all, the last one not all digits (so neither
// an IPv4 address nor a malformed one like "10.0.1" passes).
bool IsHostName(absl::string_view host);

// `host` as an IPv4 address: itself when it is one, else the first IPv4 address
// getaddrinfo gives. Errors as ResolveNodeAddress.
absl::StatusOr<std::string> ResolveIPv4(absl::string_view host);

// A TCP endpoint split into its parts.
struct TcpEndpoint {
  std::string host;
  int port = 0;
};

// Parses "tcp://<host>:<port>" where host is an IPv4 address or a host name and port
// is 1..65535 (decimal, no sign). Surrounding whitespace (a trailing newline) is
// ignored; nothing else may follow. InvalidArgument otherwise, or when it is longer
// than kMaxEndpointBytes.
absl::StatusOr<TcpEndpoint> ParseTcpEndpoint(absl::string_view text);

// `endpoint` with a source address for ZeroMQ's connect: "tcp://<source>:0;<host>:<port>"
// for a tcp:// endpoint and a non-empty source; `endpoint` unchanged otherwise
// (inproc://, or no source).
std::string WithSourceAddress(absl::string_view endpoint, absl::string_view source_host);

// Reads the scheduler's endpoint file: its one endpoint ("tcp://host:port"; host not
// 0.0.0.0). NotFound when the file does not exist; InvalidArgument (naming the path)
// when it is larger than kMaxEndpointBytes + 1 or does not hold a valid endpoint;
// other read errors as ReadFileToString.
absl::StatusOr<std::string> ReadEndpointFile(const std::string& path);

// Polls ReadEndpointFile every poll_ms until the file exists, for at most timeout_ms
// (> 0). Returns the endpoint; DeadlineExceeded (naming the path) when it did not
// appear in time; the error of a file that exists but is invalid at once; cancel's
// reason once `cancel` (borrowed, may be null) is cancelled. Blocks the caller.
absl::StatusOr<std::string> WaitForEndpointFile(const std::string& path, int64_t timeout_ms,
                                                int64_t poll_ms = 100,
                                                const Cancellation* cancel = nullptr);

}  // namespace towerps::net

#endif  // TOWERPS_NET_ADDRESS_H_
