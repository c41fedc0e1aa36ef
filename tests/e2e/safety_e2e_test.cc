// Local safety through the real `enlace` binary and real files (issue 5,
// items 4 and 6; issue 14, item 11): `enlace panic` leaves no readable
// record, the duress passphrase empties the device, `enlace passphrase
// change|duress|wipe-after`, the unlock back-off, bad command lines, and
// every file of a device folder is its owner's alone.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_fixture.h"

namespace enlace::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kDistinct[] = "Zyxwv-Quetzal-5531";
constexpr char kDuress[] = "frase de coaccion para e2e";

// Every file under `dir`, as (relative name, bytes).
std::vector<std::pair<std::string, std::string>> FilesUnder(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    out.emplace_back(fs::relative(e.path(), dir).string(), ReadFile(e.path().string()));
  }
  return out;
}

std::string RawId(const std::string& hex) {
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return raw;
}

// Whether any file under `dir` holds any of `needles`, and where.
std::string FindAny(const std::string& dir, const std::vector<std::string>& needles) {
  std::string found;
  for (const auto& [name, bytes] : FilesUnder(dir)) {
    for (const auto& n : needles) {
      if (bytes.find(n) != std::string::npos) found += name + " ";
    }
  }
  return found;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The permission bits of `path` (lstat: a link is not followed).
unsigned ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(path.c_str(), &st) == 0, path);
  return st.st_mode & 07777;
}

// "name mode" for each folder (`dir` included) under `dir` that is not 0700
// and each other entry that is not 0600.
std::string WiderThanOwner(const std::string& dir) {
  std::string wider;
  auto check = [&](const fs::path& p, bool folder) {
    const unsigned mode = ModeOf(p.string());
    if (mode != (folder ? 0700u : 0600u)) {
      char octal[8];
      std::snprintf(octal, sizeof octal, "%04o", mode);
      wider += p.string() + " " + octal + "; ";
    }
  };
  check(dir, true);
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    check(e.path(), e.is_directory() && !e.is_symlink());
  }
  return wider;
}

// Sets the process's umask for one test (the binaries it starts inherit it)
// and puts the old one back after.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

TEST_CASE("enlace panic leaves no readable record, no vault, no store and no config") {
  Office office;
  CliDevice field = office.Join("campo");
  const std::string synced = field.Json(PutEncounter(std::string("Synced") + kDistinct))["id"];
  field.Sync();
  const std::string unsent = field.Json(PutEncounter(std::string("Unsent") + kDistinct))["id"];
  const std::vector<std::string> needles = {kDistinct, synced, unsent, RawId(synced),
                                            RawId(unsent)};
  // The ids are in the clear in the store before: the check below can fail.
  REQUIRE_FALSE(FindAny(field.home, {RawId(synced), synced}).empty());

  SUBCASE("a wrong confirmation word destroys nothing") {
    const RunResult r = Run(field.Argv({"panic"}), field.Env(), "destroy please\n");
    CHECK(r.exit_code == 1);
    CHECK(Contains(r.err, "nothing was destroyed"));
    CHECK(fs::exists(field.home + "/vault.bin"));
    CHECK(field.Run({"get", "encounters", synced}).exit_code == 0);
  }
  SUBCASE("no confirmation at all (stdin closed) destroys nothing") {
    const RunResult r = Run(field.Argv({"panic"}), field.Env(), "");
    CHECK(r.exit_code == 1);
    CHECK(fs::exists(field.home + "/store.db"));
  }

  // No passphrase, no hub: panic needs neither.
  office.hub->Stop();
  std::map<std::string, std::string> env = field.Env();
  env.erase("ENLACE_PASSPHRASE");
  const RunResult r = Run(field.Argv({"panic"}), env, "DESTROY\n");
  INFO("stdout: ", r.out, " stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Contains(r.out, "vault.bin"));
  CHECK(Contains(r.out, "store.db"));
  CHECK(Contains(r.out, "config.json"));
  CHECK(Contains(r.out, "Unsent writes are lost"));

  CHECK(fs::is_directory(field.home));
  const auto left = FilesUnder(field.home);
  std::string names;
  for (const auto& [name, bytes] : left) names += name + " ";
  CHECK_MESSAGE(left.empty(), "left behind: ", names);
  CHECK_MESSAGE(FindAny(field.home, needles).empty(), "found in ", FindAny(field.home, needles));

  const RunResult list = field.Run({"list", "encounters"});
  CHECK(list.exit_code == 1);
  CHECK(Contains(list.err, "not initialised"));
  const RunResult again = field.Run({"panic", "--yes"});
  CHECK(again.exit_code == 0);
  CHECK(Contains(again.out, "Nothing to destroy"));
}

TEST_CASE("every file in a device folder is 0600 and every folder 0700, whatever the umask") {
  // The usual umask lets everyone read what a program makes: the modes must
  // come from enlace.
  const Umask lax(022);
  Office office;
  CliDevice field = office.Join("campo");
  const std::string overlay = office.dir.File("overlay.json");
  std::ofstream(overlay) << R"({"base": "enlace-htcds", "version": 1, "name": "T",
    "collections": [{"name": "encounters", "fields": [
      {"name": "tlx_Note", "type": "string", "label": "Note"}]}]})";
  office.coord.Ok({"schema", "--publish-overlay", overlay});
  office.coord.Sync();
  field.Json(PutEncounter("Private"));
  field.Sync();
  office.coord.Sync();
  field.Sync();
  // A wrong passphrase writes unlock.state.
  CliDevice wrong{field.home, "not the passphrase"};
  CHECK(wrong.Run({"list", "encounters"}).exit_code == 2);
  REQUIRE(fs::exists(field.home + "/unlock.state"));
  REQUIRE(fs::exists(field.home + "/overlay.write"));
  REQUIRE(fs::exists(office.coord.home + "/store.db"));
  for (const CliDevice* dev : {&office.coord, &field}) {
    CAPTURE(dev->home);
    CHECK(WiderThanOwner(dev->home) == "");
  }

  // Exports go where the user says, readable by the user alone.
  const std::string csv = office.dir.File("encounters.csv");
  std::ofstream(csv) << "an older, world-readable file\n";
  fs::permissions(csv, fs::perms(0644));
  office.coord.Ok({"export", "--format", "csv", "--collection", "encounters", "--output", csv});
  CHECK(ModeOf(csv) == 0600u);
  const std::string folder = office.dir.File("exports");
  office.coord.Ok({"export", "--format", "csv", "--output", folder});
  CHECK(WiderThanOwner(folder) == "");

  // A folder an older version left readable by others is narrowed when opened.
  fs::permissions(field.home, fs::perms(0755));
  for (const char* name : {"store.db", "overlay.write", "vault.bin"}) {
    fs::permissions(field.home + "/" + name, fs::perms(0644));
  }
  field.Ok({"list", "encounters"});
  CHECK(WiderThanOwner(field.home) == "");
}

TEST_CASE("join refuses a weak passphrase with exit 1 and leaves the invite unused") {
  Office office;
  const std::string code = office.Invite();
  CliDevice weak{office.dir.File("campo"), "482915"};
  const RunResult r = weak.Run({"join", code, "--name", "campo"});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.err, "too short"));
  CHECK(Contains(r.err, "four or more words"));
  CHECK_FALSE(fs::exists(weak.home));
  // The same code still works with a strong passphrase: nothing reached the hub.
  CliDevice strong{weak.home};
  strong.Ok({"join", code, "--name", "campo"});
}

TEST_CASE("enlace panic --json names what it destroyed") {
  Office office;
  const RunResult r = office.coord.Run({"--json", "panic", "--yes"});
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  const auto destroyed = doc["destroyed"].get<std::vector<std::string>>();
  CHECK(std::find(destroyed.begin(), destroyed.end(), "vault.bin") != destroyed.end());
  CHECK(std::find(destroyed.begin(), destroyed.end(), "config.json") != destroyed.end());
  CHECK(doc["unsent_writes"] == "lost");
  CHECK_FALSE(fs::exists(office.coord.home + "/vault.bin"));
}

TEST_CASE("the duress passphrase through the CLI: the records are gone, the device is empty") {
  Office office;
  CliDevice field = office.Join("campo");
  const std::string id = field.Json(PutEncounter(std::string("Before") + kDistinct))["id"];
  field.Sync();
  {
    const RunResult r =
        field.Run({"passphrase", "duress"}, {{"ENLACE_DURESS_PASSPHRASE", kDuress}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  // The device still opens normally with its own passphrase.
  CHECK(field.Run({"get", "encounters", id}).exit_code == 0);

  CliDevice forced{field.home, kDuress};
  const nlohmann::json listed = forced.Json({"list", "encounters"});
  CHECK(listed.empty());
  CHECK(forced.Run({"get", "encounters", id}).exit_code == 5);
  CHECK(FindAny(field.home, {id, RawId(id), kDistinct}).empty());
  const auto config = nlohmann::json::parse(ReadFile(field.home + "/config.json"));
  CHECK(config["team_name"] == "");
  CHECK(config["role"] == "field");

  // The same passphrase keeps opening the empty device; the old one opens nothing.
  CHECK(forced.Json({"list", "encounters"}).empty());
  const RunResult old = field.Run({"list", "encounters"});
  CHECK(old.exit_code == 2);
}

TEST_CASE("enlace init --duress sets a duress passphrase at init") {
  TempDir dir;
  HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0", {"--quiet"});
  CliDevice coord{dir.File("coord")};
  {
    const RunResult same =
        coord.Init({"--duress", "--hub", hub.url(), "--team", "T"}, BootstrapToken(dir.File("hub")),
                   {{"ENLACE_DURESS_PASSPHRASE", coord.passphrase}});
    CHECK(same.exit_code == 1);
    CHECK_FALSE(fs::exists(coord.home + "/vault.bin"));
  }
  {
    const RunResult r =
        coord.Init({"--duress", "--hub", hub.url(), "--team", "T"}, BootstrapToken(dir.File("hub")),
                   {{"ENLACE_DURESS_PASSPHRASE", kDuress}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  const std::string id = coord.Json(PutEncounter("CoordRecord"))["id"];
  CliDevice forced{coord.home, kDuress};
  CHECK(forced.Json({"list", "encounters"}).empty());
  CHECK(coord.Run({"get", "encounters", id}).exit_code == 2);
}

TEST_CASE("enlace passphrase change: the new passphrase opens the device, the old does not") {
  Office office;
  CliDevice& dev = office.coord;
  const std::string id = dev.Json(PutEncounter("Kept"))["id"];
  REQUIRE(dev.Run({"passphrase", "duress"}, {{"ENLACE_DURESS_PASSPHRASE", kDuress}}).exit_code ==
          0);
  SUBCASE("not to the duress passphrase") {
    const RunResult r = dev.Run({"passphrase", "change"}, {{"ENLACE_NEW_PASSPHRASE", kDuress}});
    CHECK(r.exit_code == 1);
    CHECK(dev.Run({"get", "encounters", id}).exit_code == 0);
  }
  SUBCASE("from a file") {
    const std::string file = office.dir.File("new-pass");
    std::ofstream(file) << "una frase nueva y larga\n";
    const RunResult r = dev.Run({"passphrase", "change", "--new-passphrase-file", file});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(dev.Run({"get", "encounters", id}).exit_code == 2);
    CliDevice renewed{dev.home, "una frase nueva y larga"};
    CHECK(renewed.Run({"get", "encounters", id}).exit_code == 0);
  }
  SUBCASE("no new passphrase anywhere and no terminal") {
    const RunResult r = dev.Run({"passphrase", "change"});
    CHECK(r.exit_code == 2);
    CHECK(Contains(r.err, "ENLACE_NEW_PASSPHRASE"));
  }
}

TEST_CASE("enlace passphrase wipe-after N destroys the data at the N-th wrong passphrase") {
  Office office;
  CliDevice& dev = office.coord;
  CHECK(dev.Run({"passphrase", "wipe-after", "2"}).exit_code == 1);
  REQUIRE(dev.Run({"passphrase", "wipe-after", "3"}).exit_code == 0);
  CliDevice wrong{dev.home, "not the passphrase"};
  CHECK(wrong.Run({"list", "encounters"}).exit_code == 2);
  CHECK(wrong.Run({"list", "encounters"}).exit_code == 2);
  CHECK(fs::exists(dev.home + "/vault.bin"));
  const RunResult last = wrong.Run({"list", "encounters"});
  CHECK(last.exit_code == 2);
  CHECK(Contains(last.err, "destroyed"));
  CHECK(FilesUnder(dev.home).empty());
  CHECK(dev.Run({"list", "encounters"}).exit_code == 1);  // not initialised
}

TEST_CASE("after many wrong passphrases the CLI says how long to wait, even for the right one") {
  Office office;
  CliDevice& dev = office.coord;
  // Ten failures, the last one now (as the core writes it): 512 s to wait.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::ofstream(dev.home + "/unlock.state")
      << "enlace-unlock-state 1\nfailures 10\nlast_failure_ms " << now_ms << "\nwipe_after 0\n";
  const RunResult r = dev.Run({"list", "encounters"});
  CHECK(r.exit_code == 2);
  CHECK(Contains(r.err, "wait"));
  CHECK(Contains(r.err, "10 wrong passphrases"));
  // Deleting the (unauthenticated) file lifts the wait: documented.
  fs::remove(dev.home + "/unlock.state");
  CHECK(dev.Run({"list", "encounters"}).exit_code == 0);
}

TEST_CASE("bad safety command lines are usage errors that change nothing") {
  Office office;
  CliDevice& dev = office.coord;
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"passphrase"},
                                             {"passphrase", "wipe-after"},
                                             {"passphrase", "wipe-after", "many"},
                                             {"passphrase", "wipe-after", "-1"},
                                             {"passphrase", "wipe-after", "1"},
                                             {"passphrase", "frobnicate"},
                                             {"panic", "--force"},
                                             {"panic", "extra"}}) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    CAPTURE(line);
    const RunResult r = dev.Run(args);
    CHECK(r.exit_code == 1);
  }
  CHECK(fs::exists(dev.home + "/vault.bin"));
  CHECK(fs::exists(dev.home + "/config.json"));
  // No duress passphrase from anywhere, stdin not a terminal: locked, nothing set.
  const RunResult none = dev.Run({"passphrase", "duress"});
  CHECK(none.exit_code == 2);
  CHECK(Contains(none.err, "ENLACE_DURESS_PASSPHRASE"));
  CHECK(
      dev.Run({"passphrase", "duress"}, {{"ENLACE_DURESS_PASSPHRASE", dev.passphrase}}).exit_code ==
      1);
}

}  // namespace
}  // namespace enlace::testing
