// For the serving tests (serve_test.cc, serve_http_test.cc): random unit vectors and
// exported embedding tables with raw ids "<prefix><row>", as `towerps export` writes;
// a free port for an HTTP server.
#ifndef TOWERPS_TESTS_INTEGRATION_SERVE_FIXTURE_H_
#define TOWERPS_TESTS_INTEGRATION_SERVE_FIXTURE_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/random_vectors.h"
#include "data/keys.h"
#include "gtest/gtest.h"
#include "index/embeddings.h"

namespace towerps::testing {

using ::towerps::RandomUnitRows;  // common/random_vectors.h

// Writes an embeddings file of n rows (values: n * dim) with ids prefix0, prefix1, ...
inline void WriteTable(const std::string& path, data::Side side, const std::string& prefix, int n,
                       int dim, const std::vector<float>& values) {
  std::vector<uint64_t> keys;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(absl::StrCat(prefix, i));
    keys.push_back(data::HashKey(ids.back()));
  }
  auto writer = index::EmbeddingWriter::Open(path, "", side, dim, n, 9);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(keys, ids, values).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
}

// A port below the kernel's ephemeral range (where other tests' port-0 listeners and
// outgoing connections take theirs) that nothing listens on now.
inline int PickPort(std::mt19937* rng) {
  int low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(range >> low) || low <= 12000) low = 32768;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = 10000 + static_cast<int>((*rng)() % static_cast<unsigned>(low - 10000));
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool taken = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (!taken) return port;
  }
  return 0;
}

}  // namespace towerps::testing

#endif  // TOWERPS_TESTS_INTEGRATION_SERVE_FIXTURE_H_
