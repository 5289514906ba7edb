#include "net/address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status.h"

namespace towerps::net {
namespace {

constexpr absl::string_view kTcpScheme = "tcp://";

// A host as it may appear in a flag or an endpoint, quoted for error messages (a
// hostile value is cut, never printed whole).
std::string Quoted(absl::string_view host) {
  constexpr size_t kMaxShown = 64;
  std::string shown(host.substr(0, kMaxShown));
  for (char& c : shown) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) c = '?';
  }
  return absl::StrCat("'", shown, host.size() > kMaxShown ? "...'" : "'");
}

absl::Status CheckHost(absl::string_view flag, absl::string_view host) {
  if (IsIPv4Address(host) || IsHostName(host)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      flag, " ", Quoted(host), " is neither an IPv4 address nor a host name"));
}

}  // namespace

bool IsIPv4Address(absl::string_view host) {
  // inet_pton accepts exactly the dotted quad (no octal, no short forms).
  if (host.empty() || host.size() > 15) return false;
  in_addr addr;
  return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
}

bool IsHostName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  absl::string_view last;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    last = label;
  }
  // An all-digit last label is a mistyped address ("10.0.1", "1.2.3.999"), which
  // getaddrinfo would turn into some other address.
  return !absl::c_all_of(last, absl::ascii_isdigit);
}

absl::Status NodeAddressOptions::Validate() const {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port ", port, " is not in 0..65535"));
  }
  if (!host.empty()) TOWERPS_RETURN_IF_ERROR(CheckHost("--host", host));
  if (!advertise_host.empty()) {
    TOWERPS_RETURN_IF_ERROR(CheckHost("--advertise_host", advertise_host));
    if (advertise_host == kAnyHost) {
      return absl::InvalidArgumentError(
          "--advertise_host 0.0.0.0 is no address a peer can connect to");
    }
  }
  if (host == kAnyHost && advertise_host.empty()) {
    return absl::InvalidArgumentError(
        "--host=0.0.0.0 listens on every interface and needs --advertise_host (the address "
        "peers should use)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveIPv4(absl::string_view host) {
  if (IsIPv4Address(host)) return std::string(host);
  if (!IsHostName(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(host), " is neither an IPv4 address nor a host name"));
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(std::string(host).c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    const std::string why =
        rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc != 0 ? rc : EAI_NONAME);
    const std::string message =
        absl::StrCat("cannot resolve host ", Quoted(host), " to an IPv4 address: ", why);
    if (found != nullptr) freeaddrinfo(found);
    return rc == EAI_AGAIN ? absl::UnavailableError(message) : absl::NotFoundError(message);
  }
  char text[INET_ADDRSTRLEN] = {};
  const auto* addr = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  const bool ok = inet_ntop(AF_INET, &addr->sin_addr, text, sizeof(text)) != nullptr;
  freeaddrinfo(found);
  if (!ok) return absl::InternalError(absl::StrCat("inet_ntop for ", Quoted(host)));
  return std::string(text);
}

absl::StatusOr<NodeAddress> ResolveNodeAddress(const NodeAddressOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  NodeAddress address;
  address.port = options.port;
  if (!options.host.empty()) {
    absl::StatusOr<std::string> resolved = ResolveIPv4(options.host);
    if (!resolved.ok()) return Annotate(resolved.status(), "--host");
    address.bind_host = *std::move(resolved);
    // Connections leave from the node's own address, except with every interface.
    if (address.bind_host != kAnyHost) address.source_host = address.bind_host;
  }
  address.advertise_host =
      options.advertise_host.empty() ? address.bind_host : options.advertise_host;
  return address;
}

std::string NodeAddress::BindEndpoint() const {
  return absl::StrCat(kTcpScheme, bind_host, ":", port);
}

absl::StatusOr<std::string> NodeAddress::AdvertisedEndpoint(
    absl::string_view bound_endpoint) const {
  TOWERPS_ASSIGN_OR_RETURN(TcpEndpoint bound, ParseTcpEndpoint(bound_endpoint));
  return absl::StrCat(kTcpScheme, advertise_host, ":", bound.port);
}

absl::StatusOr<TcpEndpoint> ParseTcpEndpoint(absl::string_view text) {
  if (text.size() > kMaxEndpointBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("an endpoint of ", text.size(), " bytes (at most ", kMaxEndpointBytes, ")"));
  }
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  const std::string bad = absl::StrCat("bad endpoint ", Quoted(rest), " (want tcp://host:port)");
  if (!absl::ConsumePrefix(&rest, kTcpScheme)) return absl::InvalidArgumentError(bad);
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return absl::InvalidArgumentError(bad);
  TcpEndpoint endpoint;
  endpoint.host = std::string(rest.substr(0, colon));
  absl::string_view port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !absl::c_all_of(port, absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) {
    return absl::InvalidArgumentError(bad);
  }
  if (!IsIPv4Address(endpoint.host) && !IsHostName(endpoint.host)) {
    return absl::InvalidArgumentError(bad);
  }
  return endpoint;
}

std::string WithSourceAddress(absl::string_view endpoint, absl::string_view source_host) {
  if (source_host.empty() || !absl::StartsWith(endpoint, kTcpScheme)) {
    return std::string(endpoint);
  }
  return absl::StrCat(kTcpScheme, source_host, ":0;", endpoint.substr(kTcpScheme.size()));
}

absl::StatusOr<std::string> ReadEndpointFile(const std::string& path) {
  // Non-blocking open and a regular-file check: a FIFO or a device planted at the
  // path must not hang or flood the reader.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  char buffer[kMaxEndpointBytes + 2];
  size_t size = 0;
  while (size < sizeof(buffer)) {
    const ssize_t n = read(fd, buffer + size, sizeof(buffer) - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return ErrnoToStatus(error, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  close(fd);
  if (size > kMaxEndpointBytes + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": over ", kMaxEndpointBytes + 1, " bytes, not an endpoint file"));
  }
  absl::StatusOr<TcpEndpoint> endpoint = ParseTcpEndpoint(absl::string_view(buffer, size));
  if (!endpoint.ok()) return Annotate(endpoint.status(), path);
  if (endpoint->host == kAnyHost) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 0.0.0.0 is no address to connect to"));
  }
  return absl::StrCat(kTcpScheme, endpoint->host, ":", endpoint->port);
}

absl::StatusOr<std::string> WaitForEndpointFile(const std::string& path, int64_t timeout_ms,
                                                int64_t poll_ms, const Cancellation* cancel) {
  if (timeout_ms <= 0 || poll_ms <= 0) {
    return absl::InvalidArgumentError("timeout_ms and poll_ms must be > 0");
  }
  const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  while (true) {
    absl::StatusOr<std::string> endpoint = ReadEndpointFile(path);
    if (!absl::IsNotFound(endpoint.status())) return endpoint;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no scheduler endpoint in ", path, " after ", timeout_ms,
                       " ms (is a scheduler running with this --run_dir?)"));
    }
    const absl::Duration pause = std::min(left, absl::Milliseconds(poll_ms));
    if (cancel != nullptr) {
      if (cancel->WaitFor(pause)) return cancel->reason();
    } else {
      absl::SleepFor(pause);
    }
  }
}

}  // namespace towerps::net
