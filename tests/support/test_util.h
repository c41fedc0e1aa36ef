// Shared fixtures for the core tests: temporary folders, a fake wall clock,
// and replicas created with the cheapest Argon2id cost.
#ifndef ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
#define ENLACE_TESTS_SUPPORT_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "enlace/replica.h"

namespace enlace::testing {

// A fresh, empty folder under $ENLACE_TEST_TMP (or the system temp folder),
// removed with everything in it on destruction.
class TempDir {
 public:
  // `in_memory_fs`: use /dev/shm when it exists (for tests that create many
  // short-lived vaults and do not test durability).
  explicit TempDir(bool in_memory_fs = false);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A manually advanced wall clock shared by reference.
struct FakeClock {
  uint64_t now_ms = 1'780'000'000'000;  // 2026
  WallClock AsWallClock() {
    return [this] { return now_ms; };
  }
};

// Options for a replica in `dir` with the minimum KDF cost and `clock`.
ReplicaOptions TestOptions(const std::string& dir, FakeClock* clock = nullptr,
                           bool in_memory = false);

// Creates a replica or fails the current test.
std::unique_ptr<Replica> MakeReplica(const ReplicaOptions& options,
                                     const std::string& passphrase = "correct horse");

// Makes `b` join `a`'s team: trust each other's keys both ways and hand over
// the team keys sealed to b. `a` must have a team.
void JoinTeam(Replica& a, Replica& b);

// Reads a whole file into a string ("" if missing).
std::string ReadFile(const std::string& path);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
