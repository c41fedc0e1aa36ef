// Helpers shared by the fuzz targets: a failed invariant aborts with a
// message (libFuzzer then saves the input as a crash).
#ifndef ENLACE_FUZZ_FUZZ_UTIL_H_
#define ENLACE_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "enlace/status.h"

namespace enlace::fuzz {

[[noreturn]] inline void Abort(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: invariant broken: %s\n", target, what.c_str());
  std::abort();
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace enlace::fuzz

#endif  // ENLACE_FUZZ_FUZZ_UTIL_H_
