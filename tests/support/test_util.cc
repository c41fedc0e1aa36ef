#include "test_util.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "enlace/team.h"
#include "enlace/types.h"

namespace enlace::testing {

TempDir::TempDir(bool in_memory_fs) {
  const char* base = std::getenv("ENLACE_TEST_TMP");
  std::filesystem::path root = base != nullptr ? base : std::filesystem::temp_directory_path();
  std::error_code ec;
  if (in_memory_fs && std::filesystem::is_directory("/dev/shm", ec)) root = "/dev/shm/enlace-tests";
  std::filesystem::create_directories(root);
  path_ = (root / ("t-" + RecordId::Random().ToHex())).string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ReplicaOptions TestOptions(const std::string& dir, FakeClock* clock, bool in_memory) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  if (clock != nullptr) o.clock.wall_clock = clock->AsWallClock();
  o.in_memory_store = in_memory;
  return o;
}

std::unique_ptr<Replica> MakeReplica(const ReplicaOptions& options, const std::string& passphrase) {
  auto r = Replica::Create(options, passphrase);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

void JoinTeam(Replica& a, Replica& b) {
  REQUIRE(TrustDevice(a, b.device_id(), b.public_keys()).ok());
  REQUIRE(TrustDevice(b, a.device_id(), a.public_keys()).ok());
  auto sealed = SealTeamKeysFor(a, b.public_keys().encryption);
  REQUIRE_MESSAGE(sealed.ok(), sealed.status().ToString());
  auto s = AcceptTeamKeys(b, *sealed);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace enlace::testing
