#include "net/codec.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace towerps::net {
namespace {

std::string PingFrame(uint64_t request_id, uint64_t nonce) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "worker/1", request_id);
  envelope.getBody().initPing().setNonce(nonce);
  return EncodeMessage(message);
}

TEST(CodecTest, RoundTrip) {
  std::string frame = PingFrame(17, 99);
  auto decoded = DecodeEnvelope(frame, CodecOptions());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto envelope = (*decoded)->envelope();
  EXPECT_EQ(envelope.getVersion(), kWireVersion);
  EXPECT_EQ(std::string(envelope.getSender().cStr()), "worker/1");
  EXPECT_EQ(envelope.getRequestId(), 17u);
  ASSERT_EQ(envelope.getBody().which(), wire::Envelope::Body::PING);
  EXPECT_EQ(envelope.getBody().getPing().getNonce(), 99u);
}

// A pull reply of `rows` floats built with FrameBuilder reserving `reserve` bytes.
std::string RowsFrame(size_t rows, size_t reserve) {
  FrameBuilder message(reserve);
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "ps/0", 5);
  auto part = envelope.getBody().initPullSparseReply().initTables(1)[0];
  part.setDim(4);
  auto data = part.initRows(rows * sizeof(float));
  for (size_t i = 0; i < rows; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(data.begin() + i * sizeof(float), &v, sizeof(v));
  }
  return message.Finish();
}

// Built in place when the reserve suffices, through a copy when it does not: the
// frame decodes to the same message either way.
TEST(CodecTest, FrameBuilderRoundTripsInPlaceAndOverflowing) {
  for (size_t reserve : {size_t{0}, size_t{4000 * 4}}) {
    std::string frame = RowsFrame(4000, reserve);
    auto decoded = DecodeEnvelope(frame, CodecOptions());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    auto reply = (*decoded)->envelope().getBody().getPullSparseReply();
    ASSERT_EQ(reply.getTables().size(), 1u);
    auto rows = reply.getTables()[0].getRows();
    ASSERT_EQ(rows.size(), 4000 * sizeof(float));
    float last;
    std::memcpy(&last, rows.end() - sizeof(float), sizeof(float));
    EXPECT_EQ(last, 3999.0f) << reserve;
    EXPECT_EQ((*decoded)->envelope().getRequestId(), 5u);
  }
}

TEST(CodecTest, UnalignedFrameIsCopied) {
  std::string frame = PingFrame(1, 2);
  std::string shifted = " " + frame;  // data() + 1 is not 8-byte aligned
  auto decoded = DecodeEnvelope(absl::string_view(shifted).substr(1), CodecOptions());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ((*decoded)->envelope().getBody().getPing().getNonce(), 2u);
}

TEST(CodecTest, TruncatedAndGarbageFramesAreDataLoss) {
  std::string frame = PingFrame(1, 2);
  for (size_t len = 0; len < frame.size(); len += 8) {
    auto decoded = DecodeEnvelope(absl::string_view(frame).substr(0, len), CodecOptions());
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << len;
  }
  EXPECT_EQ(DecodeEnvelope(frame.substr(0, frame.size() - 3), CodecOptions()).status().code(),
            absl::StatusCode::kDataLoss);
  std::string garbage(64, '\xff');
  EXPECT_EQ(DecodeEnvelope(garbage, CodecOptions()).status().code(),
            absl::StatusCode::kDataLoss);
}

// A corrupt pointer deep in the body (not just in the envelope's header) is found by
// the decoder, so no handler ever reads it.
TEST(CodecTest, CorruptPointerInsideBodyIsDataLoss) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "w", 1);
  envelope.getBody().initControl().setCommand("status");
  std::string frame = EncodeMessage(message);
  auto good = DecodeEnvelope(frame, CodecOptions());
  ASSERT_TRUE(good.ok());
  int corrupted = 0;
  // Overwrite each word after the envelope's own pointers with a far-out-of-bounds
  // struct pointer; every such frame must decode to DataLoss or to a valid message.
  for (size_t word = 4; word + 1 < frame.size() / 8; ++word) {
    std::string bad = frame;
    uint64_t pointer = (uint64_t{0x7fff} << 32) | (0x3fffffffu << 2);  // struct, huge offset
    std::memcpy(bad.data() + word * 8, &pointer, 8);
    auto decoded = DecodeEnvelope(bad, CodecOptions());
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
      ++corrupted;
      continue;
    }
    // Decoded: reading every field must not throw.
    auto body = (*decoded)->envelope().getBody();
    if (body.which() == wire::Envelope::Body::CONTROL) (void)body.getControl().getCommand();
  }
  EXPECT_GT(corrupted, 0);
}

// A pointer of the wrong kind or element size where the schema wants Data, or Text
// without its NUL, is DataLoss at decode: a handler's generated getter would throw on
// it (a fuzzed PullSparse whose keys were a list of u64 aborted a parameter server).
TEST(CodecTest, MistypedFieldIsDataLoss) {
  {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<wire::Envelope>();
    InitEnvelope(envelope, "w", 1);
    auto part = envelope.getBody().initPullSparse().initTables(1)[0];
    capnp::AnyStruct::Builder(kj::mv(part)).getPointerSection()[0].initAs<capnp::List<uint64_t>>(2);
    auto decoded = DecodeEnvelope(EncodeMessage(message), CodecOptions());
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
  }
  {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<wire::Envelope>();
    InitEnvelope(envelope, "w", 1);
    auto control = envelope.getBody().initControl();
    auto text = capnp::AnyStruct::Builder(kj::mv(control)).getPointerSection()[0].initAs<capnp::Data>(4);
    std::memcpy(text.begin(), "stop", 4);  // no NUL
    auto decoded = DecodeEnvelope(EncodeMessage(message), CodecOptions());
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
  }
}

// The decode walk spends the traversal budget; the handler still reads the whole
// message (a body of more than half the limit used to throw in the handler).
TEST(CodecTest, HandlerReadsWithAFullTraversalBudget) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "w", 1);
  auto part = envelope.getBody().initPullSparse().initTables(1)[0];
  part.initKeys(8 * 600);
  std::string frame = EncodeMessage(message);
  CodecOptions options;
  options.traversal_limit_words = 1000;
  auto decoded = DecodeEnvelope(frame, options);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto tables = (*decoded)->envelope().getBody().getPullSparse().getTables();
  EXPECT_EQ(tables[0].getKeys().size(), 8u * 600);
}

TEST(CodecTest, OversizedFrameRefused) {
  CodecOptions options;
  options.max_frame_bytes = 16;
  EXPECT_EQ(DecodeEnvelope(PingFrame(1, 2), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, ErrorReplyCarriesStatus) {
  std::string frame = EncodeError("ps/0", 5, absl::InvalidArgumentError("dim 3 != 64"));
  auto decoded = DecodeEnvelope(frame, CodecOptions());
  ASSERT_TRUE(decoded.ok());
  auto body = (*decoded)->envelope().getBody();
  ASSERT_EQ(body.which(), wire::Envelope::Body::ERROR);
  absl::Status status = StatusFromError(body.getError());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "dim 3 != 64");
}

}  // namespace
}  // namespace towerps::net
