// A hub restored from a backup loses nothing (issue 15 item 1): the real
// enlace-hub (admin backup, admin restore, serve) and real devices. Before
// `admin restore` and the log identity, every write synced after the backup
// was gone and nobody was told: a device said "sent 0, received 0", a device
// that joined after the backup got "unknown device", `admin verify` passed.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_fixture.h"

namespace enlace::testing {
namespace {

using nlohmann::json;

std::string FirstId(const CliDevice& d, const std::string& collection) {
  const json listed = d.Json({"list", collection});
  REQUIRE(!listed.empty());
  return listed[0]["id"].get<std::string>();
}

// Stops the office's hub, runs `admin restore` (env: test hooks), and
// starts the hub again on the same port. Returns the restore's result.
RunResult StopAndRestore(Office& o, const std::string& backup,
                         const std::map<std::string, std::string>& env = {}) {
  const int port = o.hub->port();
  CHECK(o.hub->Stop() == 0);
  o.hub.reset();
  const RunResult r =
      Run({kHubBin, "admin", "restore", "--data", o.data, "--from", backup}, env, "", 60);
  o.hub = std::make_unique<HubProcess>(kHubBin, o.data, "127.0.0.1:" + std::to_string(port),
                                       std::vector<std::string>{"--quiet"});
  return r;
}

// The office after a backup: three devices keep writing (new records, edits
// of records from before the backup, a conflict) and a fourth joins, then
// everyone syncs until the team agrees. Returns the agreed encounters.
struct AfterBackup {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");
  std::string backup = o.dir.File("hub-backup.db");
  std::unique_ptr<CliDevice> caro;
  std::string open_code;  // an invite made after the backup, not used yet
  json agreed;

  AfterBackup() {
    ana.Ok(PutEncounter("antes de la copia"));
    ana.Sync();
    beto.Sync();
    o.coord.Sync();
    const RunResult b = Run({kHubBin, "admin", "backup", "--data", o.data, "--out", backup});
    REQUIRE_MESSAGE(b.exit_code == 0, b.err);

    const std::string first = FirstId(ana, "encounters");
    ana.Ok({"put", "encounters", first, "enc_Notes=editado por ana despues"});
    ana.Ok(PutEncounter("nuevo de ana", 2));
    beto.Ok({"put", "encounters", first, "enc_PeopleReached=7"});
    beto.Ok(PutEncounter("nuevo de beto", 3, "Huamantla"));
    o.coord.Ok(PutEncounter("nuevo de la coordinadora", 4));
    caro = std::make_unique<CliDevice>(o.Join("caro"));
    open_code = o.Invite();
    caro->Ok(PutEncounter("nuevo de caro", 5));
    for (int round = 0; round < 2; ++round) {
      for (const CliDevice* d : Devices()) d->Sync();
    }
    agreed = o.coord.Json({"list", "encounters"});
    REQUIRE(agreed.size() == 5);
    for (const CliDevice* d : Devices()) REQUIRE(d->Json({"list", "encounters"}) == agreed);
  }
  std::vector<const CliDevice*> Devices() const { return {&o.coord, &ana, &beto, caro.get()}; }

  // Every device syncs once (caro, unknown to the restored hub, may be
  // refused on its first try), then once more; all must agree with what
  // the team had before the restore, and so must a device that joins now.
  void RecoverAndCheck() {
    const RunResult caro_first = caro->Run({"--json", "sync"});
    INFO("caro's first sync: ", caro_first.exit_code, " ", caro_first.err);
    CHECK((caro_first.exit_code == 0 || caro_first.exit_code == 4));
    if (caro_first.exit_code == 4) {
      CHECK(caro_first.err.find("another device of the team") != std::string::npos);
    }
    const json ana_sync = ana.Sync();
    CHECK(ana_sync["hub_behind"] == true);
    CHECK(ana_sync["resent"].get<int>() >= 2);
    const std::string human = ana.Run({"sync"}).err;
    for (const CliDevice* d : {&beto, &o.coord, caro.get()}) d->Sync();
    for (const CliDevice* d : Devices()) d->Sync();
    for (const CliDevice* d : Devices()) {
      INFO("device ", d->home);
      CHECK(d->Json({"list", "encounters"}) == agreed);
    }
    CliDevice dani = o.Join("dani");
    dani.Sync();
    CHECK(dani.Json({"list", "encounters"}) == agreed);
    // The invite made after the backup was sent again by its coordinator:
    // its code still works.
    CliDevice eva{o.dir.File("eva")};
    const RunResult joined = eva.Run({"join", open_code, "--name", "eva"});
    CHECK_MESSAGE(joined.exit_code == 0, joined.err);
    if (joined.exit_code == 0) {
      eva.Sync();
      CHECK(eva.Json({"list", "encounters"}) == agreed);
    }
    // Writing goes on as before, for the device that joined after the backup too.
    caro->Ok(PutEncounter("despues de restaurar", 6));
    caro->Sync();
    ana.Sync();
    CHECK(ana.Json({"list", "encounters"}).size() == 6);
    const RunResult verify = Run({kHubBin, "admin", "verify", "--data", o.data});
    CHECK_MESSAGE(verify.exit_code == 0, verify.out);
  }
};

TEST_CASE("a hub restored from a backup gets back every write once each device has synced") {
  AfterBackup t;
  const RunResult restored = StopAndRestore(t.o, t.backup);
  REQUIRE_MESSAGE(restored.exit_code == 0, restored.err);
  CHECK(restored.err.find("kept as") != std::string::npos);
  t.RecoverAndCheck();
}

TEST_CASE("a backup copied back by hand, without admin restore, is noticed and repaired too") {
  AfterBackup t;
  const int port = t.o.hub->port();
  CHECK(t.o.hub->Stop() == 0);
  t.o.hub.reset();
  // What an operator without a guide did: the backup copied over hub.db.
  std::filesystem::remove(t.o.hub_db() + "-wal");
  std::filesystem::remove(t.o.hub_db() + "-shm");
  std::filesystem::copy_file(t.backup, t.o.hub_db(),
                             std::filesystem::copy_options::overwrite_existing);
  t.o.hub = std::make_unique<HubProcess>(kHubBin, t.o.data, "127.0.0.1:" + std::to_string(port),
                                         std::vector<std::string>{"--quiet"});
  t.RecoverAndCheck();
}

TEST_CASE("a restore killed at any step leaves a hub that serves, and running it again completes") {
  AfterBackup t;
  std::vector<std::string> kept_before;
  for (int step = 1; step <= 4; ++step) {
    CAPTURE(step);
    const RunResult killed =
        StopAndRestore(t.o, t.backup, {{"ENLACE_TEST_RESTORE_CRASH_AT", std::to_string(step)}});
    CHECK(killed.exit_code != 0);
    // The folder holds the old database, whole: the hub serves it and a
    // device that syncs finds nothing lost.
    const json s = t.ana.Sync();
    CHECK(s["hub_behind"] == false);
    {
      ReadOnlyDb db(t.o.hub_db());
      CHECK(db.IntegrityCheck() == "ok");
    }
  }
  const RunResult restored = StopAndRestore(t.o, t.backup);
  REQUIRE_MESSAGE(restored.exit_code == 0, restored.err);
  t.RecoverAndCheck();
}

TEST_CASE(
    "registry versions signed by a coordinator who joined after the backup reach the "
    "restored hub, and that coordinator goes on changing the registry") {
  Office o;
  CliDevice ana = o.Join("ana");
  ana.Sync();
  o.coord.Sync();
  const std::string backup = o.dir.File("hub-backup.db");
  REQUIRE(Run({kHubBin, "admin", "backup", "--data", o.data, "--out", backup}).exit_code == 0);
  // After the backup: a second coordinator joins, the first renames ana
  // (folding cora into the registry), then cora renames ana again: two
  // registry versions the backup lacks, the second signed by a coordinator
  // the backup does not know.
  CliDevice cora{o.dir.File("cora")};
  cora.Ok({"join", o.Invite("coordinator"), "--name", "cora"});
  cora.Sync();
  o.coord.Sync();
  const std::string ana_id = ana.Json({"status"})["device"].get<std::string>();
  o.coord.Ok({"devices", "rename", ana_id.substr(0, 8), "ana-1"});
  o.coord.Sync();
  cora.Sync();
  cora.Ok({"devices", "rename", ana_id.substr(0, 8), "ana-2"});
  cora.Sync();
  ana.Sync();
  o.coord.Sync();
  const json before = o.coord.Json({"devices", "list"})["devices"];

  REQUIRE(StopAndRestore(o, backup).exit_code == 0);
  for (int round = 0; round < 2; ++round) {
    for (const CliDevice* d : {&ana, &o.coord, &cora}) d->Sync();
  }
  // cora's next registry change is stored: the hub holds the chain again.
  const RunResult renamed = cora.Run({"devices", "rename", ana_id.substr(0, 8), "ana-3"});
  REQUIRE_MESSAGE(renamed.exit_code == 0, renamed.err);
  const RunResult synced = cora.Run({"--json", "sync"});
  CHECK_MESSAGE(synced.exit_code == 0, synced.err);
  ana.Sync();
  o.coord.Sync();
  for (const CliDevice* d : {&ana, &o.coord, &cora}) {
    INFO("device ", d->home);
    const json listed = d->Json({"devices", "list"})["devices"];
    REQUIRE(listed.size() == before.size());
    bool found = false;
    for (const auto& m : listed) {
      if (m["id"] == ana_id) found = m["name"] == "ana-3";
    }
    CHECK(found);
  }
  // A device joining the restored hub checks the whole chain.
  CliDevice dani = o.Join("dani");
  dani.Sync();
  bool dani_sees = false;
  const json dani_list = dani.Json({"devices", "list"});
  for (const auto& m : dani_list["devices"]) {
    if (m["id"] == ana_id) dani_sees = m["name"] == "ana-3";
  }
  CHECK_MESSAGE(dani_sees, dani_list.dump());
}

TEST_CASE("admin restore refuses a running hub, a missing file and a file that is no hub backup") {
  Office o;
  const std::string backup = o.dir.File("b.db");
  REQUIRE(Run({kHubBin, "admin", "backup", "--data", o.data, "--out", backup}).exit_code == 0);
  const RunResult running = Run({kHubBin, "admin", "restore", "--data", o.data, "--from", backup});
  CHECK(running.exit_code == 2);
  CHECK(running.err.find("stop it first") != std::string::npos);

  const RunResult missing =
      Run({kHubBin, "admin", "restore", "--data", o.data, "--from", o.dir.File("nada.db")});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("no backup file") != std::string::npos);

  const int port = o.hub->port();
  CHECK(o.hub->Stop() == 0);
  const std::string junk = o.dir.File("junk.db");
  WriteFile(junk, std::string(8192, 'x'));
  const RunResult not_db = Run({kHubBin, "admin", "restore", "--data", o.data, "--from", junk});
  CHECK(not_db.exit_code == 2);
  const std::string other = o.dir.File("other.db");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(other.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x);", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const RunResult foreign = Run({kHubBin, "admin", "restore", "--data", o.data, "--from", other});
  CHECK(foreign.exit_code == 2);
  CHECK(foreign.err.find("not an enlace-hub database") != std::string::npos);
  // Nothing was replaced: the hub serves its own data.
  o.hub = std::make_unique<HubProcess>(kHubBin, o.data, "127.0.0.1:" + std::to_string(port),
                                       std::vector<std::string>{"--quiet"});
  CHECK(o.coord.Sync()["hub_behind"] == false);
}

TEST_CASE("an older hub refuses a database that a newer one has migrated, and changes nothing") {
  Office o;
  const int port = o.hub->port();
  CHECK(o.hub->Stop() == 0);
  o.hub.reset();
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.hub_db().c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const RunResult serve =
      Run({kHubBin, "serve", "--data", o.data, "--listen", "127.0.0.1:" + std::to_string(port)}, {},
          "", 30);
  CHECK(serve.exit_code == 2);
  CHECK(serve.err.find("newer enlace") != std::string::npos);
  const std::string backup = o.dir.File("b.db");
  const RunResult restore =
      Run({kHubBin, "admin", "restore", "--data", o.dir.File("new"), "--from", o.hub_db()});
  CHECK(restore.exit_code == 2);
  CHECK(restore.err.find("newer enlace") != std::string::npos);
  ReadOnlyDb db(o.hub_db());
  CHECK(db.Int("PRAGMA user_version") == 99);
}

}  // namespace
}  // namespace enlace::testing
