#include "temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "enlace/types.h"

namespace enlace::testing {

std::string TempRoot(const char* variable) {
  const char* root = std::getenv(variable);
  if (root != nullptr && *root != '\0') return root;
  return std::filesystem::temp_directory_path().string();
}

namespace {

TempDir::Under TestRoot(bool in_memory_fs) {
  std::error_code ec;
  if (in_memory_fs && std::filesystem::is_directory("/dev/shm", ec)) {
    return {"/dev/shm/enlace-tests"};
  }
  return {TempRoot()};
}

}  // namespace

TempDir::TempDir(bool in_memory_fs) : TempDir(TestRoot(in_memory_fs)) {}

TempDir::TempDir(const Under& under) {
  std::filesystem::create_directories(under.root);
  path_ =
      (std::filesystem::path(under.root) / (under.prefix + RecordId::Random().ToHex())).string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace enlace::testing
