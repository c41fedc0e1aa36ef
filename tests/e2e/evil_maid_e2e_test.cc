// The evil maid (issue 14, item 4), with the real binaries: someone alone
// with a locked phone edits its config.json or store.db so that the owner's
// next sync goes to their hub or trusts their keys. Every command must
// refuse the edited files (exit 5, saying what was altered and what to do)
// before anything is sent anywhere; the owner's own changes through enlace
// keep working.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_fixture.h"
#include "enlace/replica.h"

namespace enlace::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Sets `key` of the device's config.json to `value`, as a hand edit would.
void EditConfig(const CliDevice& d, const std::string& key, const std::string& value) {
  const std::string path = d.home + "/config.json";
  json config = json::parse(ReadFile(path));
  config[key] = value;
  WriteFile(path, config.dump(2));
}

// Runs one statement against a closed device's store.db.
void Execute(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, sql << ": " << message);
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Whether the hub at `port` was asked anything but its metrics.
bool HeardFromAnyone(int port) {
  std::istringstream lines(HubMetrics(port));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("enlace_requests_total{", 0) == 0 && !Has(line, "metrics")) return true;
  }
  return false;
}

TEST_CASE("a config.json pointed at another hub is refused, and that hub hears nothing") {
  Office office;
  CliDevice ana = office.Join("ana");
  ana.Ok(PutEncounter("AntesDelCambio"));
  ana.Sync();
  const std::string original = ReadFile(ana.home + "/config.json");

  // The attacker's hub, with a team of its own ready to hand out grants.
  TempDir elsewhere;
  HubProcess rogue(kHubBin, elsewhere.File("rogue"), "127.0.0.1:0", {"--quiet"});
  EditConfig(ana, "hub_url", rogue.url());
  for (const auto& args : std::vector<std::vector<std::string>>{{"sync"}, {"status"}}) {
    const RunResult r = ana.Run(args);
    INFO("enlace ", args[0], " stdout: ", r.out, " stderr: ", r.err);
    CHECK(r.exit_code == 5);
    CHECK(Has(r.err, "config.json"));
    CHECK(Has(r.err, rogue.url()));
    CHECK(Has(r.err, office.hub->url()));
  }
  CHECK_FALSE(HeardFromAnyone(rogue.port()));

  // Put back, everything works again and nothing was lost.
  WriteFile(ana.home + "/config.json", original);
  ana.Sync();
  CHECK(ana.Json({"status"})["hub"] == office.hub->url());
}

TEST_CASE("every command refuses an edited hub or pin, in Spanish too") {
  Office office;
  CliDevice ana = office.Join("ana");
  SUBCASE("hub_url") { EditConfig(ana, "hub_url", "http://127.0.0.1:9"); }
  SUBCASE("tls_pin") {
    EditConfig(ana, "tls_pin", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  }
  const RunResult listed = ana.Run({"list", "encounters"});
  CHECK(listed.exit_code == 5);
  CHECK(Has(listed.err, "config.json"));
  const RunResult put = ana.Run(PutEncounter("NoDebeGuardarse"));
  CHECK(put.exit_code == 5);
  const RunResult spanish = ana.Run({"status"}, {{"LANGUAGE", "es"}});
  CHECK(spanish.exit_code == 5);
  CHECK(Has(spanish.err, "config.json"));
  CHECK(Has(spanish.err, "alterad"));
}

TEST_CASE("config.json taken from a device of another team is refused") {
  Office office;
  Office other("Puebla");
  CliDevice ana = office.Join("ana");
  fs::copy_file(other.coord.home + "/config.json", ana.home + "/config.json",
                fs::copy_options::overwrite_existing);
  const RunResult r = ana.Run({"sync"});
  CHECK(r.exit_code == 5);
  CHECK(Has(r.err, "config.json"));
  CHECK(Has(r.err, other.hub->url()));
}

TEST_CASE("a member's key edited into store.db is refused by every command, in Spanish too") {
  Office office;
  CliDevice ana = office.Join("ana");
  ana.Sync();
  // The coordinator's signing key, replaced by one the attacker holds.
  const auto attacker = internal::SigningKeyPair::Generate();
  Execute(ana.home + "/store.db", "UPDATE devices SET sign_pk = x'" +
                                      internal::ToHex(attacker.public_key) +
                                      "' WHERE name = 'coordinadora'");
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"sync"}, {"status"}, {"list", "encounters"}}) {
    const RunResult r = ana.Run(args);
    INFO("enlace ", args[0], " stderr: ", r.err);
    CHECK(r.exit_code == 5);
    CHECK(Has(r.err, "store.db"));
    CHECK(Has(r.err, "backup"));
  }
  const RunResult spanish = ana.Run({"sync"}, {{"LANGUAGE", "es"}});
  CHECK(spanish.exit_code == 5);
  CHECK(Has(spanish.err, "store.db"));
  CHECK(Has(spanish.err, "respaldo"));
}

TEST_CASE("enlace config hub moves a device to another address of its hub, and sync follows") {
  Office office;
  CliDevice ana = office.Join("ana");
  ana.Ok(PutEncounter("AntesDeMudarse"));
  const std::string moved = "http://localhost:" + std::to_string(office.hub->port());
  ana.Ok({"config", "hub", moved});
  CHECK(json::parse(ReadFile(ana.home + "/config.json"))["hub_url"] == moved);
  CHECK(ana.Json({"status"})["hub"] == moved);
  CHECK(ana.Sync()["sent"] == 1);

  // A pin without https is refused, and changes nothing.
  const RunResult bad = ana.Run({"config", "hub", moved, "--pin", "sha256//AAAAAAAAAAAAAAAA"});
  CHECK(bad.exit_code == 1);
  CHECK(ana.Json({"status"})["hub"] == moved);

  // A hand edit that went wrong is repaired with the same command: the
  // owner's passphrase is what makes a change legitimate.
  EditConfig(ana, "hub_url", "http://127.0.0.1:9");
  CHECK(ana.Run({"status"}).exit_code == 5);
  ana.Ok({"config", "hub", office.hub->url()});
  CHECK(ana.Json({"status"})["hub"] == office.hub->url());
  ana.Sync();
}

TEST_CASE("a device set up before config.json was sealed has it sealed on its next command") {
  Office office;
  CliDevice ana = office.Join("ana");
  {
    // What an earlier version left: nothing of config.json sealed.
    ReplicaOptions o;
    o.dir = ana.home;
    o.kdf = KdfCost::Minimum();
    auto r = Replica::Open(o, ana.passphrase);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    REQUIRE((*r)->SetSealedSettings({}).ok());
  }
  CHECK(ana.Json({"status"})["hub"] == office.hub->url());
  EditConfig(ana, "hub_url", "http://127.0.0.1:9");
  const RunResult r = ana.Run({"sync"});
  CHECK(r.exit_code == 5);
  CHECK(Has(r.err, "config.json"));
}

}  // namespace
}  // namespace enlace::testing
