// The message decoder: any bytes either decode to an Envelope or return an error, and
// a decoded Envelope can be read whole (every field of every struct) without a crash.
#include <cstddef>
#include <cstdint>

#include "capnp/serialize.h"
#include "fuzz/fuzz_util.h"
#include "kj/string.h"
#include "net/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  towerps::net::CodecOptions options;
  // Small limits, so a message that outgrows them is reachable within -max_len.
  options.traversal_limit_words = 1 << 12;
  options.max_frame_bytes = 1 << 16;
  auto decoded = towerps::net::DecodeEnvelope(towerps::fuzz::AsView(data, size), options);
  if (!decoded.ok()) return 0;
  // Printing reads every field through the schema: DecodeEnvelope promises that this
  // cannot throw (an exception escaping here is a crash).
  (void)kj::str((*decoded)->envelope());
  return 0;
}
