// Addresses from outside (net/address.h): the scheduler's endpoint file that servers
// and workers read, and the --host / --advertise_host / --port of a job file. Any
// bytes are either refused or yield an endpoint that round-trips: a parsed endpoint
// has a valid host (never 0.0.0.0 when read as an endpoint file) and a port in
// 1..65535, and printing it parses back to the same parts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "net/address.h"

namespace {

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace towerps::net;
  const std::string text(towerps::fuzz::AsView(data, size));
  auto parsed = ParseTcpEndpoint(text);
  if (parsed.ok()) {
    Require(parsed->port >= 1 && parsed->port <= 65535);
    Require(IsIPv4Address(parsed->host) || IsHostName(parsed->host));
    const std::string canonical = absl::StrCat("tcp://", parsed->host, ":", parsed->port);
    auto again = ParseTcpEndpoint(canonical);
    Require(again.ok() && again->host == parsed->host && again->port == parsed->port);
    Require(WithSourceAddress(canonical, "127.0.0.5") ==
            absl::StrCat("tcp://127.0.0.5:0;", parsed->host, ":", parsed->port));
  }
  // The same bytes as the launch flags: Validate refuses or accepts, never crashes,
  // and what it accepts as a host is well-formed.
  NodeAddressOptions options;
  const size_t cut = text.find('\n');
  options.host = text.substr(0, cut);
  options.advertise_host = cut == std::string::npos ? "" : text.substr(cut + 1);
  options.port = static_cast<int>(size * 257 % 70000);
  if (options.Validate().ok()) {
    Require(options.port >= 0 && options.port <= 65535);
    Require(options.host.empty() || IsIPv4Address(options.host) || IsHostName(options.host));
  }
  return 0;
}
