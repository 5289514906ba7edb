// The one codec between Envelope structs and bytes on the wire.
//
// Encoding is Cap'n Proto's flat (unpacked) message format. Decoding reads in place
// when the frame is 8-byte aligned and copies otherwise (ZeroMQ frames may be
// unaligned). Cap'n Proto throws kj::Exception on malformed input; this file is
// the one adapter that catches it and returns DataLoss. Thread-safe (no state).
#ifndef TOWERPS_NET_CODEC_H_
#define TOWERPS_NET_CODEC_H_

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kj/array.h"
#include "net/towerps.capnp.h"

namespace towerps::net {

// Bumped when a change is not wire-compatible; peers with another version are refused.
inline constexpr uint32_t kWireVersion = 2;

// The largest Data blob (or list) one message can hold: Cap'n Proto counts list
// elements in 29 bits. A server derives its request limits from it so that no request
// it accepts asks for a reply the wire cannot carry.
inline constexpr uint64_t kMaxBlobBytes = (uint64_t{1} << 29) - 1;

// Error messages longer than this are cut (with "...") when encoded: one line.
inline constexpr size_t kMaxErrorMessageBytes = 1024;

struct CodecOptions {
  // Upper bound on a decoded message's size, in 8-byte words: Cap'n Proto's
  // traversal limit. The 64 MiB default is too small for big pulls. Default 1 GiB.
  uint64_t traversal_limit_words = (uint64_t{1} << 30) / 8;
  // Frames longer than this are refused before decoding. Default 1 GiB.
  uint64_t max_frame_bytes = uint64_t{1} << 30;

  absl::Status Validate() const;
};

// Serialises a built message to one contiguous frame.
std::string EncodeMessage(capnp::MessageBuilder& message);

// A MessageBuilder that builds in the buffer of the frame it becomes, so a big body (a
// pull's rows, a push's gradients) is written once, in place, and sent without
// another copy. `payload_bytes` is room for the Data blobs and lists the caller will
// add; the envelope's small fields fit in a fixed slack. A message that outgrows the
// buffer still encodes correctly, through one extra copy (EncodeMessage).
// Not thread-safe; Finish() once, then drop the builder.
class FrameBuilder : public capnp::MessageBuilder {
 public:
  explicit FrameBuilder(size_t payload_bytes);
  ~FrameBuilder() noexcept(false) override;
  FrameBuilder(const FrameBuilder&) = delete;
  FrameBuilder& operator=(const FrameBuilder&) = delete;

  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimum_size) override;
  // The finished frame (the builder is spent).
  std::string Finish();

 private:
  std::string frame_;         // segment table word + the first segment's room
  bool first_given_ = false;  // the first segment was handed out
  std::vector<kj::Array<capnp::word>> overflow_;
};

// A decoded envelope that keeps its bytes alive (borrowed or copied). Read-only.
class DecodedEnvelope {
 public:
  wire::Envelope::Reader envelope() const { return envelope_; }

 private:
  friend absl::StatusOr<std::unique_ptr<DecodedEnvelope>> DecodeEnvelope(
      absl::string_view frame, const CodecOptions& options);
  DecodedEnvelope() = default;

  kj::Array<capnp::word> copy_;  // owns the bytes when the frame was unaligned
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  wire::Envelope::Reader envelope_;
};

// Decodes and validates the frame: DataLoss for malformed or truncated bytes,
// InvalidArgument for a wrong version or a frame over max_frame_bytes. `frame` must
// outlive the result when it is 8-byte aligned (it is read in place).
absl::StatusOr<std::unique_ptr<DecodedEnvelope>> DecodeEnvelope(absl::string_view frame,
                                                                const CodecOptions& options);

// Fills `envelope` with the version, sender and request id of a new message.
void InitEnvelope(wire::Envelope::Builder envelope, absl::string_view sender,
                  uint64_t request_id);

// Builds a complete error-reply frame for `request_id`.
std::string EncodeError(absl::string_view sender, uint64_t request_id, const absl::Status& status);

// The Status carried by an error body.
absl::Status StatusFromError(wire::Error::Reader error);

}  // namespace towerps::net

#endif  // TOWERPS_NET_CODEC_H_
