// Local safety (issue 5, items 4 and 6) through the Replica API: the duress
// passphrase, wiping a replica's files, the unlock back-off, wipe after N
// failures, and raising the Argon2id cost on unlock.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/unlock_guard.h"
#include "crypto/vault.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "test_util.h"

namespace enlace {
namespace {

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::TempDir;

constexpr char kMain[] = "correct horse";
constexpr char kDuress[] = "battery staple";
constexpr char kSecretValue[] = "\"Lucia-Quetzal-8841\"";

// Every byte of every file under `dir`, concatenated.
std::string AllBytesUnder(const std::string& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) all += testing::ReadFile(e.path().string());
  }
  return all;
}

std::vector<std::string> NamesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The bytes still reachable through an open descriptor of an unlinked file.
std::string ReadFd(int fd) {
  std::string out;
  char buf[4096];
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A device with a team, one record holding a distinctive value, and a
// duress passphrase.
struct DeviceWithData {
  TempDir tmp;
  FakeClock clock;
  std::string dir = tmp.File("home");
  ReplicaOptions options = testing::TestOptions(dir, &clock);
  DeviceId device;
  RecordId record;

  explicit DeviceWithData(bool with_duress = true) {
    auto r = testing::MakeReplica(options, kMain);
    device = r->device_id();
    REQUIRE(CreateTeam(*r).ok());
    auto id = r->Put("cases", std::nullopt, {{"name", kSecretValue}});
    REQUIRE(id.ok());
    record = *id;
    if (with_duress) REQUIRE(r->SetDuressPassphrase(kDuress).ok());
  }

  StatusCode OpenCode(std::string_view passphrase) const {
    auto r = Replica::Open(options, passphrase);
    return r.ok() ? StatusCode::kOk : r.status().code();
  }
};

// ---- duress -------------------------------------------------------------------------

TEST_CASE("the duress passphrase destroys the data and opens a fresh, empty device") {
  DeviceWithData d;
  const std::string record_hex = d.record.ToHex();
  const std::string raw_id(reinterpret_cast<const char*>(d.record.bytes.data()), 16);
  {
    const std::string before = AllBytesUnder(d.dir);
    REQUIRE(
        (before.find(raw_id) != std::string::npos || before.find(record_hex) != std::string::npos));
  }
  // Keep the old files reachable through descriptors: after the wipe their
  // contents must be gone, not merely unlinked.
  const int old_store = ::open((d.dir + "/store.db").c_str(), O_RDONLY);
  const int old_vault = ::open((d.dir + "/vault.bin").c_str(), O_RDONLY);
  REQUIRE(old_store >= 0);
  REQUIRE(old_vault >= 0);
  const size_t store_size = ReadFd(old_store).size();
  REQUIRE(store_size > 0);

  auto r = Replica::Open(d.options, kDuress);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK((*r)->opened_under_duress());
  CHECK((*r)->device_id() != d.device);
  CHECK((*r)->team().IsZero());
  auto cases = (*r)->List("cases");
  REQUIRE(cases.ok());
  CHECK(cases->empty());
  CHECK((*r)->Get("cases", d.record).status().code() == StatusCode::kNotFound);
  CHECK(*(*r)->PendingCount() == 0);

  for (int fd : {old_store, old_vault}) {
    const std::string left = ReadFd(fd);
    CHECK(std::all_of(left.begin(), left.end(), [](char c) { return c == 0; }));
    ::close(fd);
  }
  CHECK(fs::file_size(d.dir + "/vault.bin") > 0);  // the fresh device's vault
  const std::string all = AllBytesUnder(d.dir);
  CHECK(all.find(raw_id) == std::string::npos);
  CHECK(all.find(record_hex) == std::string::npos);
  CHECK(all.find("Lucia-Quetzal") == std::string::npos);
  r->reset();

  // Later opens with the same passphrase keep working and show nothing; the
  // old passphrase opens nothing.
  auto again = Replica::Open(d.options, kDuress);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK_FALSE((*again)->opened_under_duress());
  CHECK((*again)->List("cases")->empty());
  again->reset();
  CHECK(d.OpenCode(kMain) == StatusCode::kWrongPassphrase);
}

TEST_CASE("with a duress passphrase set, a wrong passphrase is still only wrong") {
  DeviceWithData d;
  CHECK(d.OpenCode("battery stapler") == StatusCode::kWrongPassphrase);
  auto r = Replica::Open(d.options, kMain);
  REQUIRE(r.ok());
  CHECK_FALSE((*r)->opened_under_duress());
  CHECK((*r)->device_id() == d.device);
  CHECK((*r)->Get("cases", d.record).ok());
}

TEST_CASE("SetDuressPassphrase refuses an empty passphrase and the device passphrase") {
  DeviceWithData d(/*with_duress=*/false);
  auto r = Replica::Open(d.options, kMain);
  REQUIRE(r.ok());
  CHECK((*r)->SetDuressPassphrase("").code() == StatusCode::kInvalidArgument);
  CHECK((*r)->SetDuressPassphrase(kMain).code() == StatusCode::kInvalidArgument);
  REQUIRE((*r)->SetDuressPassphrase(kDuress).ok());
  CHECK((*r)->ChangePassphrase(kMain, kDuress).code() == StatusCode::kInvalidArgument);
}

// ---- wiping -------------------------------------------------------------------------

TEST_CASE("WipeReplicaFiles removes every replica file, keeps the folder and other files") {
  DeviceWithData d;
  // What the writers may leave behind, and a file that is not the replica's.
  for (const char* name : {"vault.bin.tmp", "store.db-journal", "unlock.state", "overlay.write"}) {
    std::ofstream(d.dir + "/" + name) << "left over Lucia-Quetzal";
  }
  std::ofstream(d.dir + "/notes.txt") << "mine";
  REQUIRE(WipeReplicaFiles(d.dir).ok());
  CHECK(fs::is_directory(d.dir));
  CHECK(NamesIn(d.dir) == std::vector<std::string>{"notes.txt"});
  CHECK(d.OpenCode(kMain) == StatusCode::kNotFound);
  // Nothing left to wipe is fine.
  CHECK(WipeReplicaFiles(d.dir).ok());
}

TEST_CASE("WipeFiles overwrites before unlinking and refuses names with a folder") {
  TempDir tmp;
  const std::string path = tmp.File("config.json");
  std::ofstream(path) << std::string(100000, 'x');
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(WipeFiles(tmp.path(), {"config.json", "absent"}).ok());
  CHECK_FALSE(fs::exists(path));
  const std::string left = ReadFd(fd);
  ::close(fd);
  CHECK(left.size() == 100000);
  CHECK(std::all_of(left.begin(), left.end(), [](char c) { return c == 0; }));
  CHECK(WipeFiles(tmp.path(), {"../x"}).code() == StatusCode::kInvalidArgument);
  CHECK(WipeFiles("", {"x"}).code() == StatusCode::kInvalidArgument);
}

// ---- back-off and wipe after N --------------------------------------------------------

TEST_CASE("after three wrong passphrases, early attempts are refused without Argon2id") {
  DeviceWithData d(/*with_duress=*/false);
  for (int i = 0; i < 3; ++i) CHECK(d.OpenCode("wrong") == StatusCode::kWrongPassphrase);
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).failures == 3);
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).wait_ms == 1000);

  // Too soon: even the right passphrase is refused, and no key is derived.
  const uint64_t derivations = internal::Vault::DerivationCount();
  auto early = Replica::Open(d.options, kMain);
  CHECK(early.status().code() == StatusCode::kWrongPassphrase);
  CHECK(early.status().message().find("wait 1 seconds") != std::string::npos);
  CHECK(internal::Vault::DerivationCount() == derivations);

  // After the wait a wrong one counts again and doubles the wait.
  d.clock.now_ms += 1000;
  CHECK(d.OpenCode("wrong") == StatusCode::kWrongPassphrase);
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).wait_ms == 2000);
  d.clock.now_ms += 1999;
  CHECK(d.OpenCode(kMain) == StatusCode::kWrongPassphrase);
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).failures == 4);  // refusals do not count
  d.clock.now_ms += 1;
  auto r = Replica::Open(d.options, kMain);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).failures == 0);  // a success resets
}

TEST_CASE("the back-off doubles per failure up to 15 minutes") {
  CHECK(internal::UnlockDelayMs(2) == 0);
  CHECK(internal::UnlockDelayMs(3) == 1000);
  CHECK(internal::UnlockDelayMs(4) == 2000);
  CHECK(internal::UnlockDelayMs(12) == 512'000);
  CHECK(internal::UnlockDelayMs(13) == 900'000);
  CHECK(internal::UnlockDelayMs(4'000'000'000u) == 900'000);
  // A clock set back before the last failure does not skip the wait.
  internal::UnlockState s{5, 10'000'000, 0};
  CHECK(internal::UnlockWaitMs(s, 1'000) == 4000);
  CHECK(internal::UnlockWaitMs(s, 10'004'000) == 0);
}

TEST_CASE("wipe-after-N destroys the data at the N-th consecutive wrong passphrase") {
  DeviceWithData d(/*with_duress=*/false);
  {
    auto r = Replica::Open(d.options, kMain);
    REQUIRE(r.ok());
    CHECK((*r)->SetWipeAfterFailures(1).code() == StatusCode::kInvalidArgument);
    CHECK((*r)->SetWipeAfterFailures(2).code() == StatusCode::kInvalidArgument);
    REQUIRE((*r)->SetWipeAfterFailures(4).ok());
  }
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).wipe_after == 4);
  for (int i = 0; i < 3; ++i) CHECK(d.OpenCode("wrong") == StatusCode::kWrongPassphrase);
  CHECK(fs::exists(d.dir + "/vault.bin"));
  d.clock.now_ms += 1000;
  auto last = Replica::Open(d.options, "wrong");
  CHECK(last.status().code() == StatusCode::kWrongPassphrase);
  CHECK(last.status().message().find("destroyed") != std::string::npos);
  CHECK(NamesIn(d.dir).empty());
  CHECK(d.OpenCode(kMain) == StatusCode::kNotFound);
}

TEST_CASE("a success in between resets the count towards wipe-after-N") {
  DeviceWithData d(/*with_duress=*/false);
  {
    auto r = Replica::Open(d.options, kMain);
    REQUIRE(r.ok());
    REQUIRE((*r)->SetWipeAfterFailures(3).ok());
  }
  for (int round = 0; round < 3; ++round) {
    CHECK(d.OpenCode("wrong") == StatusCode::kWrongPassphrase);
    CHECK(d.OpenCode("wrong") == StatusCode::kWrongPassphrase);
    CHECK(d.OpenCode(kMain) == StatusCode::kOk);
  }
  CHECK(ReadUnlockThrottle(d.dir, d.clock.now_ms).wipe_after == 3);
  auto r = Replica::Open(d.options, kMain);
  REQUIRE(r.ok());
  CHECK((*r)->Get("cases", d.record).ok());
}

// ---- KDF cost -----------------------------------------------------------------------

TEST_CASE("opening with a stronger KDF cost re-wraps the vault; a weaker one never lowers it") {
  DeviceWithData d;
  const KdfCost min = KdfCost::Minimum();
  ReplicaOptions stronger = d.options;
  stronger.kdf = KdfCost{min.opslimit + 1, min.memlimit * 4};
  {
    auto r = Replica::Open(stronger, kMain);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK((*r)->device_id() == d.device);
  }
  auto read_params = [&d] {
    auto v = internal::Vault::Unlock(d.dir + "/vault.bin", kMain);
    REQUIRE(v.ok());
    return (*v)->params();
  };
  CHECK(read_params().opslimit == min.opslimit + 1);
  CHECK(read_params().memlimit == min.memlimit * 4);
  {
    auto r = Replica::Open(d.options, kMain);  // the weaker default of these tests
    REQUIRE(r.ok());
    CHECK((*r)->Get("cases", d.record).ok());
    // Changing the passphrase keeps the stronger cost too.
    REQUIRE((*r)->ChangePassphrase(kMain, "new horse").ok());
    REQUIRE((*r)->ChangePassphrase("new horse", kMain).ok());
  }
  CHECK(read_params().opslimit == min.opslimit + 1);
  CHECK(read_params().memlimit == min.memlimit * 4);
  // The duress passphrase still works after the raise.
  auto r = Replica::Open(d.options, kDuress);
  REQUIRE(r.ok());
  CHECK((*r)->opened_under_duress());
}

}  // namespace
}  // namespace enlace
