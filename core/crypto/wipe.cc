// Destroying a replica's files: overwrite (random bytes, then zeros, same
// length), fsync, unlink, fsync the folder. See WipeReplicaFiles in
// enlace/replica.h and docs/THREAT_MODEL.md for what this does and does not
// reach (file-system journals, flash wear levelling, copies elsewhere).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/unlock_guard.h"
#include "crypto/vault.h"
#include "enlace/local_safety.h"

namespace enlace {

namespace {

constexpr size_t kChunk = 64 * 1024;

// Writes `size` bytes from `fill` (called per chunk) over the start of `fd`.
template <typename Fill>
bool Overwrite(int fd, uint64_t size, Fill fill) {
  if (::lseek(fd, 0, SEEK_SET) != 0) return false;
  std::vector<uint8_t> chunk(kChunk);
  uint64_t done = 0;
  while (done < size) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    fill(std::span<uint8_t>(chunk.data(), n));
    size_t written = 0;
    while (written < n) {
      const ssize_t w = ::write(fd, chunk.data() + written, n - written);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      written += static_cast<size_t>(w);
    }
    done += n;
  }
  return ::fsync(fd) == 0;
}

// Overwrites and unlinks one file. A missing file is fine; anything that is
// not a regular file (a symbolic link, a folder) is unlinked without
// following it, or left alone if it is a folder.
Status WipeOne(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IoError("cannot inspect " + path + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return Status::Ok();
  Status result = Status::Ok();
  if (S_ISREG(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      result = Status::IoError("cannot open " + path + " to overwrite it: " + std::strerror(errno));
    } else {
      const auto size = static_cast<uint64_t>(st.st_size);
      const bool ok =
          Overwrite(fd, size, [](std::span<uint8_t> out) { internal::RandomFill(out); }) &&
          Overwrite(fd, size,
                    [](std::span<uint8_t> out) { std::fill(out.begin(), out.end(), uint8_t{0}); });
      ::close(fd);
      if (!ok) result = Status::IoError("cannot overwrite " + path);
    }
  }
  // Unlinked even when the overwrite failed: the name at least goes.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && result.ok()) {
    result = Status::IoError("cannot delete " + path + ": " + std::strerror(errno));
  }
  return result;
}

const std::vector<std::string>& ReplicaFileNames() {
  static const std::vector<std::string> kNames = {"vault.bin",
                                                  "vault.bin.tmp",
                                                  "store.db",
                                                  "store.db-wal",
                                                  "store.db-shm",
                                                  "store.db-journal",
                                                  "overlay.write",
                                                  "overlay.write.tmp",
                                                  internal::kUnlockStateFile,
                                                  std::string(internal::kUnlockStateFile) + ".tmp"};
  return kNames;
}

}  // namespace

Status WipeFiles(const std::string& dir, const std::vector<std::string>& names) {
  if (dir.empty()) return Status::InvalidArgument("no folder given to wipe");
  Status first = Status::Ok();
  for (const std::string& name : names) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      if (first.ok()) first = Status::InvalidArgument("not a file name: " + name);
      continue;
    }
    // Every file is tried even after an error: leave as little as possible.
    Status s = WipeOne((std::filesystem::path(dir) / name).string());
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return first;
}

Status WipeReplicaFiles(const std::string& dir) { return WipeFiles(dir, ReplicaFileNames()); }

namespace internal {

void MakeReplicaFilesPrivate(const std::string& dir) {
  ::chmod(dir.c_str(), 0700);
  for (const std::string& name : ReplicaFileNames()) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((st.st_mode & 0777) != 0600) ::chmod(path.c_str(), 0600);
  }
}

}  // namespace internal

}  // namespace enlace
