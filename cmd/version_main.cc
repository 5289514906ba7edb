// `towerps version`: the towerps version and the versions of the linked libraries.
#include <capnp/common.h>
#include <cblas.h>
#include <faiss/Index.h>
#include <zmq.h>

#include <cstdio>
#include <string>

#include <Eigen/Core>

#include "cmd/subcommand.h"
#include "net/codec.h"

namespace towerps::cmd {

int RunVersion(int /*argc*/, char** /*argv*/) {
  int zmq_major, zmq_minor, zmq_patch;
  zmq_version(&zmq_major, &zmq_minor, &zmq_patch);
  std::printf("towerps 0.1.0\n");
  std::printf("zeromq %d.%d.%d\n", zmq_major, zmq_minor, zmq_patch);
  std::printf("capnproto %d.%d.%d\n", CAPNP_VERSION_MAJOR, CAPNP_VERSION_MINOR,
              CAPNP_VERSION_MICRO);
  std::printf("faiss %d.%d.%d\n", FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
  std::printf("openblas %s\n", openblas_get_config());
  std::printf("eigen %d.%d.%d\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
  // The wire version, after a round trip through the linked Cap'n Proto runtime.
  std::string frame = net::EncodeError("version", 0, absl::OkStatus());
  auto decoded = net::DecodeEnvelope(frame, net::CodecOptions());
  if (!decoded.ok()) {
    std::fprintf(stderr, "towerps version: wire codec self-check failed: %s\n",
                 std::string(decoded.status().message()).c_str());
    return 1;
  }
  std::printf("wire %u\n", (*decoded)->envelope().getVersion());
  return 0;
}

}  // namespace towerps::cmd
