#include "net/codec.h"

#include <capnp/any.h>
#include <capnp/dynamic.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kj/exception.h"
#include "kj/io.h"

namespace towerps::net {
namespace {

void ReadStruct(capnp::DynamicStruct::Reader s);

// Reads one field as its schema type: Cap'n Proto checks the pointer's kind and element
// size (and a Text's NUL) on that read and throws on a mismatch, which the generated
// getters a handler calls would otherwise do later.
void ReadValue(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT:
      ReadStruct(value.as<capnp::DynamicStruct>());
      break;
    case capnp::DynamicValue::LIST: {
      auto list = value.as<capnp::DynamicList>();
      switch (list.getSchema().whichElementType()) {
        case capnp::schema::Type::TEXT:
        case capnp::schema::Type::DATA:
        case capnp::schema::Type::LIST:
        case capnp::schema::Type::STRUCT:
          for (auto element : list) ReadValue(element);
          break;
        default:  // primitives: the list read checked the element size
          break;
      }
      break;
    }
    default:
      break;
  }
}

// Every non-union field and the active union member (what handlers may read).
void ReadStruct(capnp::DynamicStruct::Reader s) {
  for (auto field : s.getSchema().getNonUnionFields()) ReadValue(s.get(field));
  KJ_IF_MAYBE(field, s.which()) { ReadValue(s.get(*field)); }
}

}  // namespace

absl::Status CodecOptions::Validate() const {
  if (traversal_limit_words == 0) {
    return absl::InvalidArgumentError("traversal_limit_words must be > 0");
  }
  if (max_frame_bytes < 8) return absl::InvalidArgumentError("max_frame_bytes must be >= 8");
  return absl::OkStatus();
}

std::string EncodeMessage(capnp::MessageBuilder& message) {
  // One copy: the segments go straight into the string's buffer (resize zero-fills
  // it first; for a 1 MiB reply that is cheaper than a second full copy).
  std::string out(capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, message);
  return out;
}

namespace {
// Room for everything but the payloads: envelope, sender name, small fields, list
// headers (a few words each).
constexpr size_t kFrameSlackWords = 256;
}  // namespace

FrameBuilder::FrameBuilder(size_t payload_bytes)
    // One word of segment table (one segment: count - 1 = 0, then its size), then the
    // segment. Zero-filled, as Cap'n Proto requires of fresh segments.
    : frame_(sizeof(capnp::word) * (1 + kFrameSlackWords + (payload_bytes + 7) / 8), '\0') {}

FrameBuilder::~FrameBuilder() noexcept(false) = default;

kj::ArrayPtr<capnp::word> FrameBuilder::allocateSegment(unsigned minimum_size) {
  const size_t room = frame_.size() / sizeof(capnp::word) - 1;
  if (!first_given_ && minimum_size <= room) {
    first_given_ = true;
    return kj::arrayPtr(reinterpret_cast<capnp::word*>(frame_.data()) + 1, room);
  }
  first_given_ = true;
  overflow_.push_back(kj::heapArray<capnp::word>(std::max<size_t>(minimum_size, 1024)));
  std::memset(overflow_.back().begin(), 0, overflow_.back().size() * sizeof(capnp::word));
  return overflow_.back().asPtr();
}

std::string FrameBuilder::Finish() {
  auto segments = getSegmentsForOutput();
  const bool in_place = segments.size() == 1 &&
                        segments[0].begin() == reinterpret_cast<capnp::word*>(frame_.data()) + 1;
  if (!in_place) return EncodeMessage(*this);
  const uint32_t table[2] = {0, static_cast<uint32_t>(segments[0].size())};
  std::memcpy(frame_.data(), table, sizeof(table));
  frame_.resize(sizeof(capnp::word) * (1 + segments[0].size()));
  return std::move(frame_);
}

absl::StatusOr<std::unique_ptr<DecodedEnvelope>> DecodeEnvelope(absl::string_view frame,
                                                                const CodecOptions& options) {
  if (frame.size() > options.max_frame_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("frame of ", frame.size(),
                                                   " bytes exceeds the limit of ",
                                                   options.max_frame_bytes));
  }
  if (frame.size() < 8 || frame.size() % 8 != 0) {
    return absl::DataLossError(
        absl::StrCat("frame of ", frame.size(), " bytes is not a whole Cap'n Proto message"));
  }
  std::unique_ptr<DecodedEnvelope> decoded(new DecodedEnvelope());
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(frame.data()), frame.size() / 8);
  } else {
    decoded->copy_ = kj::heapArray<capnp::word>(frame.size() / 8);
    std::memcpy(decoded->copy_.begin(), frame.data(), frame.size());
    words = kj::arrayPtr(decoded->copy_.begin(), decoded->copy_.size());
  }
  capnp::ReaderOptions reader_options;
  reader_options.traversalLimitInWords = options.traversal_limit_words;
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&] {
                capnp::FlatArrayMessageReader check(words, reader_options);
                if (check.getEnd() != words.end()) {
                  KJ_FAIL_REQUIRE("trailing bytes after the message");
                }
                // Read every field a handler may read, as its schema type (bounds,
                // segment ids, pointer kinds, element sizes, Text NULs, the
                // traversal limit): a corrupt or mistyped field anywhere in the body
                // fails here, in the one adapter, never later inside a handler.
                ReadStruct(capnp::toDynamic(check.getRoot<wire::Envelope>()));
                // The handler reads through a fresh reader: the walk spent the
                // traversal budget, and the handler's reads must not fail on it.
                decoded->reader_ =
                    std::make_unique<capnp::FlatArrayMessageReader>(words, reader_options);
                decoded->envelope_ = decoded->reader_->getRoot<wire::Envelope>();
              })) {
    return absl::DataLossError(
        absl::StrCat("malformed message: ", exception->getDescription().cStr()));
  }
  uint32_t version = decoded->envelope_.getVersion();
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("wire version ", version, " is not supported (expected ", kWireVersion, ")"));
  }
  return decoded;
}

void InitEnvelope(wire::Envelope::Builder envelope, absl::string_view sender,
                  uint64_t request_id) {
  envelope.setVersion(kWireVersion);
  envelope.setSender(kj::StringPtr(std::string(sender).c_str()));
  envelope.setRequestId(request_id);
}

std::string EncodeError(absl::string_view sender, uint64_t request_id,
                        const absl::Status& status) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, sender, request_id);
  auto error = envelope.getBody().initError();
  error.setCode(static_cast<uint32_t>(status.code()));
  std::string text(status.message().substr(0, kMaxErrorMessageBytes));
  if (text.size() < status.message().size()) text += "...";
  error.setMessage(text.c_str());
  return EncodeMessage(message);
}

absl::Status StatusFromError(wire::Error::Reader error) {
  uint32_t code = error.getCode();
  if (code == 0 || code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<uint32_t>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), error.getMessage().cStr());
}

}  // namespace towerps::net
