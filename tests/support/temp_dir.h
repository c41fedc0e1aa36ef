// Temporary folders and whole-file reads for the tests, the benchmarks and
// the fuzzers. No doctest here (enlace_test_support_core): what can fail
// throws, as std::filesystem does.
#ifndef ENLACE_TESTS_SUPPORT_TEMP_DIR_H_
#define ENLACE_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace enlace::testing {

// Where temporary folders go: $`variable` when it is set and not empty, else
// the system temp folder.
std::string TempRoot(const char* variable = "ENLACE_TEST_TMP");

// A fresh, empty folder, removed with everything in it on destruction.
class TempDir {
 public:
  // A folder named `prefix` and 32 random hex digits in `root` (created when
  // missing).
  struct Under {
    std::string root;
    std::string prefix = "t-";
  };

  // Under TempRoot() ($ENLACE_TEST_TMP). `in_memory_fs`: under /dev/shm
  // when it exists (for tests that create many short-lived vaults and do not
  // test durability).
  explicit TempDir(bool in_memory_fs = false);
  explicit TempDir(const Under& under);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Reads a whole file into a string ("" if missing).
std::string ReadFile(const std::string& path);
// Replaces the file at `path` with `text`.
void WriteFile(const std::string& path, const std::string& text);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_TEMP_DIR_H_
