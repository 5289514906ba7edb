#include "fuzz/fuzz_util.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "glog/logging.h"
#include "net/codec.h"

namespace towerps::fuzz {
namespace {

// Fuzzing feeds millions of bad inputs: warnings about them are noise that slows the
// run, so only FATAL reaches stderr. Set before main (libFuzzer's or the replay's).
const bool kQuietLogging = [] {
  FLAGS_minloglevel = google::GLOG_FATAL;
  FLAGS_logtostderr = true;
  return true;
}();

}  // namespace

std::vector<absl::string_view> SplitParts(absl::string_view input, size_t max_parts) {
  std::vector<absl::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t at = input.find(kPartSeparator);
    if (at == absl::string_view::npos) break;
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
  parts.push_back(input);
  return parts;
}

std::string JoinParts(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) absl::StrAppend(&out, kPartSeparator);
    absl::StrAppend(&out, parts[i]);
  }
  return out;
}

void ForEachRequest(absl::string_view input, size_t max_frames,
                    const std::function<void(const net::wire::Envelope::Reader&)>& handle) {
  net::CodecOptions codec;
  codec.traversal_limit_words = 1 << 12;
  codec.max_frame_bytes = 1 << 16;
  for (absl::string_view frame : SplitParts(input, max_frames)) {
    auto decoded = net::DecodeEnvelope(frame, codec);
    if (decoded.ok()) handle((*decoded)->envelope());
  }
}

ScratchDir& ScratchDir::Get() {
  static ScratchDir* dir = new ScratchDir();  // lives until exit; removed by atexit
  return *dir;
}

ScratchDir::ScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/towerps-fuzz-XXXXXX");
  CHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp " << pattern;
  path_ = pattern;
  static std::string* to_remove = new std::string(path_);
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(*to_remove, ec);
  });
}

std::string ScratchDir::File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

std::string ScratchDir::Write(absl::string_view name, absl::string_view bytes) const {
  std::string path = File(name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  CHECK(f != nullptr) << "open " << path;
  // An empty view may have no buffer at all (fwrite's pointer must not be null).
  if (!bytes.empty()) {
    CHECK_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size()) << "write " << path;
  }
  CHECK_EQ(std::fclose(f), 0) << "close " << path;
  return path;
}

void ScratchDir::Clear() const {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path_, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
}

std::string PrepareTinyDataset() {
  const ScratchDir& scratch = ScratchDir::Get();
  data::GenerateOptions generate;
  generate.output_dir = scratch.File("log");
  generate.users = 6;
  generate.items = 5;
  generate.interactions = 24;
  generate.clusters = 2;
  generate.content_dim = 2;
  auto generated = data::Generate(generate);
  CHECK(generated.ok()) << generated.status();
  data::PrepareOptions prepare;
  prepare.source.input = generate.output_dir;
  prepare.output_dir = scratch.File("dataset");
  prepare.num_shards = 1;
  prepare.history_length = 3;
  auto prepared = data::Prepare(prepare);
  CHECK(prepared.ok()) << prepared.status();
  return prepare.output_dir;
}

}  // namespace towerps::fuzz
