// The scheduler's status reply as `towerps ctl status --watch` reads it
// (scheduler/status_view.h): whatever answers on the scheduler's endpoint may send any
// bytes. A reply is refused or parsed; a parsed one renders as a screen and a progress
// line that carry no control character but '\n' (no terminal escape sequence from a
// peer reaches the operator's terminal).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "scheduler/status_view.h"

namespace {

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

void RequireNoControl(const std::string& text) {
  for (unsigned char c : text) Require(c >= 0x20 || c == '\n');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace towerps::scheduler;
  auto status = ParseStatusJson(towerps::fuzz::AsView(data, size));
  if (!status.ok()) return 0;
  RequireNoControl(RenderStatusScreen(*status));
  RequireNoControl(RenderStatusScreen(*status, 20));
  const std::string line = RenderStatusLine(*status);
  RequireNoControl(line);
  Require(line.find('\n') == std::string::npos || line.find('\n') == line.size() - 1);
  return 0;
}
