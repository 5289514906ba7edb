// Plain values to and from bytes in host order, for the project's binary file headers
// (little-endian hosts only, as the file formats state). Thread-safe (pure functions).
#ifndef TOWERPS_COMMON_POD_BYTES_H_
#define TOWERPS_COMMON_POD_BYTES_H_

#include <cstring>
#include <string>
#include <type_traits>

namespace towerps {

// Appends the bytes of `v` to `out`.
template <typename T>
void AppendPod(std::string* out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Reads a T from `p` (sizeof(T) readable bytes; any alignment).
template <typename T>
T LoadPod(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_POD_BYTES_H_
