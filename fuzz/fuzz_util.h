// Helpers shared by the fuzz targets: a failed invariant aborts with a
// message (libFuzzer then saves the input as a crash), after removing the
// target's scratch folder if it has one.
#ifndef ENLACE_FUZZ_FUZZ_UTIL_H_
#define ENLACE_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "enlace/status.h"

namespace enlace::fuzz {

// Each target defines its name, for the messages:
//   const char kTargetName[] = "wire_fuzz";
extern const char kTargetName[];

// The folder a target keeps files in, if any: removed before an abort.
inline std::string scratch_dir;

[[noreturn]] inline void Fail(const std::string& what) {
  std::error_code ec;
  if (!scratch_dir.empty()) std::filesystem::remove_all(scratch_dir, ec);
  std::fprintf(stderr, "%s: invariant broken: %s\n", kTargetName, what.c_str());
  std::abort();
}

inline void Expect(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

// An error must say what is wrong.
inline void ExpectMessage(const Status& s, const char* what) {
  if (!s.ok()) Expect(!s.message().empty(), std::string(what) + ": an error without a message");
}

// The value of a step that must work, or Fail.
template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

inline void Must(const Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

// main() of a seed generator: `program <folder>` runs `run(folder)`.
inline int SeedsMain(int argc, char** argv, const char* usage, int (*run)(const std::string&)) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s\n", usage);
    return 2;
  }
  return run(argv[1]);
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace enlace::fuzz

#endif  // ENLACE_FUZZ_FUZZ_UTIL_H_
