// End to end with the real binaries: enlace-hub on 127.0.0.1 (port 0) and
// the enlace CLI, as a regional office and its field devices would run them
// (SCENARIOS 1, 2 and 8).
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "fault_proxy.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::BootstrapToken;
using testing::CliDevice;
using testing::HubProcess;
using testing::kHubBin;
using testing::Office;
using testing::Run;
using testing::RunResult;
using testing::TempDir;

// `enlace put` of a new outreach encounter that passes the schema: its
// required date and kind, a place, and `reached` people reached.
std::vector<std::string> PutEncounter(int reached) {
  return {"put",
          "encounters",
          "enc_Date=2026-10-02",
          "enc_Kind=Street",
          "enc_Place=Apizaco",
          "enc_PeopleReached=" + std::to_string(reached)};
}

bool FolderContains(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && testing::ReadFile(e.path()).find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_CASE("two field devices edit offline, see the same conflicts, resolve them and converge") {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");

  const std::string id = ana.Json({"put", "cases", "cas_Status=Active", "cas_Title=Tenancingo",
                                   "cas_CaseComment=primer contacto"})["id"];
  CHECK(ana.Sync()["sent"] == 1);
  CHECK(beto.Sync()["received"] == 1);

  // Offline: the same fields, and a field only one of them sets.
  ana.Ok({"put", "cases", id, "cas_Status=FollowUp", "cas_Title=Tenancingo, Tlax."});
  beto.Ok({"put", "cases", id, "cas_Status=ClosedReferred", "cas_Title=Tenancingo (DIF)",
           "cas_ReferredOrganisation=DIF"});

  SUBCASE("ana syncs first") {
    ana.Sync();
    beto.Sync();
    ana.Sync();
  }
  SUBCASE("beto syncs first") {
    beto.Sync();
    ana.Sync();
    beto.Sync();
  }
  o.coord.Sync();

  const json a = ana.Json({"get", "cases", id});
  const json b = beto.Json({"get", "cases", id});
  const json c = o.coord.Json({"get", "cases", id});
  CHECK(a == b);
  CHECK(b == c);
  CHECK(a["fields"]["cas_ReferredOrganisation"] == "DIF");
  CHECK(a["fields"]["cas_CaseComment"] == "primer contacto");
  CHECK(a["conflicts"].contains("cas_Status"));
  CHECK(a["conflicts"].contains("cas_Title"));
  CHECK_FALSE(a["conflicts"].contains("cas_ReferredOrganisation"));
  CHECK(a["conflicts"]["cas_Status"].size() == 2);
  CHECK(ana.Json({"conflicts"}) == o.coord.Json({"conflicts"}));

  o.coord.Ok({"resolve", "cases", id, "cas_Status", "ClosedReferred"});
  o.coord.Ok({"resolve", "cases", id, "cas_Title", "Tenancingo, Tlax."});
  o.coord.Sync();
  ana.Sync();
  beto.Sync();
  for (const CliDevice* d : {&ana, &beto, &o.coord}) {
    CHECK(d->Json({"conflicts"}).empty());
    const json r = d->Json({"get", "cases", id});
    CHECK(r["fields"]["cas_Status"] == "ClosedReferred");
    CHECK(r["fields"]["cas_Title"] == "Tenancingo, Tlax.");
  }
  CHECK(ana.Json({"list", "cases"}) == beto.Json({"list", "cases"}));
}

TEST_CASE("a device that joins later bootstraps everything; another team sees nothing") {
  Office o;
  CliDevice ana = o.Join("ana");
  for (int i = 0; i < 25; ++i) ana.Ok(PutEncounter(i));
  ana.Sync();
  CliDevice late = o.Join("late");
  const json moved = late.Sync();
  CHECK(moved["received"] == 25);
  CHECK(late.Json({"list", "encounters"}) == ana.Json({"list", "encounters"}));

  // A second team on the same hub.
  CliDevice other{o.dir.File("other")};
  REQUIRE(
      other.Init({"--hub", o.hub->url(), "--team", "Puebla"}, BootstrapToken(o.data)).exit_code ==
      0);
  CHECK(other.Sync()["received"] == 0);
  CHECK(other.Json({"list", "encounters"}).empty());
}

TEST_CASE("the hub's data folder holds none of the values written") {
  Office o;
  CliDevice ana = o.Join("ana");
  const std::string name = "Guadalupe Xochitl";
  const std::string phone = "2461234567";
  ana.Ok({"put", "persons", "prs_FirstName=" + name, "prs_LastName=Tlapaltotoli",
          "prs_MobilePhone=\"" + phone + "\""});
  ana.Sync();
  o.coord.Sync();
  const json fields = o.coord.Json({"list", "persons"})[0]["fields"];
  CHECK(fields["prs_FirstName"] == name);
  CHECK(fields["prs_LastName"] == "Tlapaltotoli");
  CHECK(fields["prs_MobilePhone"] == phone);
  o.hub->Stop();  // flush the WAL into the folder as it would sit on disk
  CHECK_FALSE(FolderContains(o.data, name));
  CHECK_FALSE(FolderContains(o.data, "Tlapaltotoli"));
  CHECK_FALSE(FolderContains(o.data, phone));
  // Nor does a device's folder: its store is encrypted too.
  CHECK_FALSE(FolderContains(ana.home, "Tlapaltotoli"));
}

TEST_CASE("a hub restarted mid-way loses no acknowledged write") {
  Office o;
  CliDevice ana = o.Join("ana");
  ana.Ok({"put", "cases", "cas_Status=Active"});
  ana.Sync();
  const int port = o.hub->port();
  CHECK(o.hub->Stop() == 0);  // SIGTERM: graceful
  o.hub.reset();
  o.hub = std::make_unique<HubProcess>(kHubBin, o.data, "127.0.0.1:" + std::to_string(port));
  ana.Ok({"put", "cases", "cas_Status=FollowUp"});
  ana.Sync();
  o.coord.Sync();
  CHECK(o.coord.Json({"list", "cases"}).size() == 2);

  // Even killed without warning, what it acknowledged is there.
  ana.Ok({"put", "cases", "cas_Status=Closed"});
  CHECK(ana.Sync()["sent"] == 1);
  o.RestartHub(/*kill=*/true);
  o.coord.Sync();
  CHECK(o.coord.Json({"list", "cases"}).size() == 3);
}

TEST_CASE("garbage, truncated and oversized requests get 4xx and the hub keeps serving") {
  Office o;
  const int port = o.hub->port();
  auto status_of = [](const std::string& reply) {
    return reply.size() >= 12 ? reply.substr(9, 3) : std::string("none");
  };
  CHECK(status_of(testing::RawExchange(port, "\x16\x03\x01garbage\r\n\r\n")) == "400");
  CHECK(status_of(testing::RawExchange(
            port, "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nENLC")) != "200");
  CHECK(status_of(testing::RawExchange(port,
                                       "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                       "999999999\r\n\r\n")) == "413");
  CHECK(status_of(testing::RawExchange(
            port, "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\ngarbage")) ==
        "401");
  CHECK(status_of(testing::RawExchange(
            port, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == "200");
  o.coord.Ok({"put", "cases", "cas_Status=Active"});
  CHECK(o.coord.Sync()["sent"] == 1);
}

TEST_CASE("an online backup taken while the hub serves holds every acknowledged write") {
  Office o;
  CliDevice ana = o.Join("ana");
  for (int i = 0; i < 10; ++i) ana.Ok(PutEncounter(i));
  CHECK(ana.Sync()["sent"] == 10);
  const std::string out = o.dir.File("backup.db");
  const RunResult backup = Run({kHubBin, "admin", "backup", "--data", o.data, "--out", out});
  INFO(backup.err);
  REQUIRE(backup.exit_code == 0);
  // Never over an existing file.
  CHECK(Run({kHubBin, "admin", "backup", "--data", o.data, "--out", out}).exit_code != 0);

  // A hub started from the copy serves the team as it was.
  const std::string restored = o.dir.File("restored");
  std::filesystem::create_directories(restored);
  std::filesystem::copy_file(out, restored + "/hub.db");
  o.hub->Stop();
  o.hub = std::make_unique<HubProcess>(kHubBin, restored);
  const std::string metrics = testing::HubMetrics(o.hub->port());
  CHECK(metrics.find("enlace_log_writes 10\n") != std::string::npos);
  CHECK(metrics.find("enlace_devices 2\n") != std::string::npos);
}

TEST_CASE("a sync whose responses are lost retries on its own and duplicates nothing") {
  Office o;
  CliDevice ana = o.Join("ana");
  for (int i = 0; i < 5; ++i) ana.Ok(PutEncounter(i));
  // The 3G link drops twice: each time the hub stored the batch, and the
  // connection dies before its answer reaches the device.
  testing::FaultProxy proxy(o.hub->port());
  proxy.LoseNextResponses(2);
  const RunResult r = ana.Run({"--json", "sync", "--hub", proxy.url()});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(proxy.stats().lost_responses == 2);
  CHECK(json::parse(r.out)["sent"] == 5);
  const json status = ana.Json({"status"});
  CHECK(status["pending"] == 0);
  o.coord.Sync();
  CHECK(o.coord.Json({"list", "encounters"}).size() == 5);
  // The hub holds each write once.
  CHECK(testing::HubMetrics(o.hub->port()).find("enlace_log_writes 5\n") != std::string::npos);
}

TEST_CASE("puts outside the schema exit 5 and nothing of them reaches the hub") {
  Office o;
  CliDevice ana = o.Join("ana");
  const std::string id = ana.Json({"put", "cases", "cas_Title=Apizaco"})["id"];
  CHECK(ana.Sync()["sent"] == 1);
  const std::vector<std::vector<std::string>> refused = {
      {"put", "cases", "status=Active", "age=16", "municipality=Tenancingo"},  // unknown fields
      {"put", "cases", id, "cas_Status=Open"},                                 // not in the list
      {"put", "cases", id, "cas_Status=FollowUp", "referral=DIF"},  // one bad field of two
      {"put", "encounters", "enc_Date=2026-10-02", "enc_Kind=Car"},
      {"put", "encounters", "enc_Place=Apizaco"},  // missing required fields
  };
  for (const auto& args : refused) {
    const RunResult r = ana.Run(args);
    INFO("enlace ", json(args).dump(), " stderr: ", r.err);
    CHECK(r.exit_code == 5);
    CHECK(r.err.find("enlace: ") == 0);
  }
  CHECK(ana.Json({"status"})["pending"] == 0);
  CHECK(ana.Sync()["sent"] == 0);
  o.coord.Sync();
  const json cases = o.coord.Json({"list", "cases"});
  REQUIRE(cases.size() == 1);
  CHECK(cases[0]["fields"] == json{{"cas_Title", "Apizaco"}, {"cas_Status", "Active"}});
  CHECK(o.coord.Json({"list", "encounters"}).empty());
  CHECK(testing::HubMetrics(o.hub->port()).find("enlace_log_writes 1\n") != std::string::npos);
}

TEST_CASE("exit codes: usage 1, wrong passphrase 2, hub unreachable 3, rejected 4") {
  Office o;
  CHECK(o.coord.Run({"frobnicate"}).exit_code == 1);
  CHECK(o.coord.Run({"put", "cases"}).exit_code == 1);
  CliDevice wrong = o.coord;
  wrong.passphrase = "not the passphrase";
  const RunResult locked = wrong.Run({"list", "cases"});
  CHECK(locked.exit_code == 2);
  CHECK(locked.err.find("passphrase") != std::string::npos);
  const int port = o.hub->port();
  o.hub->Stop();
  const RunResult down = o.coord.Run({"sync", "--max-attempts", "2"});
  CHECK(down.exit_code == 3);
  CHECK(down.err.find(std::to_string(port)) != std::string::npos);
  o.hub = std::make_unique<HubProcess>(kHubBin, o.data, "127.0.0.1:" + std::to_string(port));
  CliDevice stranger{o.dir.File("stranger")};
  const RunResult bad_token = stranger.Init({"--hub", o.hub->url(), "--team", "X"}, "not-a-token");
  CHECK(bad_token.exit_code == 4);
  CHECK_FALSE(std::filesystem::exists(stranger.home + "/vault.bin"));
  // A token in argv is refused before anything is made: ps shows argv to
  // every user of the machine.
  const std::string real = BootstrapToken(o.data);
  const RunResult in_argv =
      stranger.Run({"init", "--hub", o.hub->url(), "--team", "X", "--token", real});
  CHECK(in_argv.exit_code == 1);
  CHECK(in_argv.err.find("--token-file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(stranger.home + "/vault.bin"));
  // From a file it works, once.
  const std::string token_file = o.dir.File("token.txt");
  testing::WriteFile(token_file, real + "\n");
  CHECK(stranger.Run({"init", "--hub", o.hub->url(), "--team", "X", "--token-file", token_file})
            .exit_code == 0);
  // A bootstrap token lasts 72 hours unless the operator says otherwise;
  // an expired one is refused.
  {
    testing::ReadOnlyDb db(o.hub_db());
    CHECK(db.Int("SELECT expires_ms - created_ms FROM bootstrap_tokens ORDER BY created_ms DESC "
                 "LIMIT 1") == int64_t{72} * 3600 * 1000);
  }
  const std::string expired_token = BootstrapToken(o.data);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.hub_db().c_str(), &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    REQUIRE(sqlite3_exec(db, "UPDATE bootstrap_tokens SET expires_ms = 1 WHERE used_ms IS NULL",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  CliDevice late{o.dir.File("late-coordinator")};
  const RunResult expired = late.Init({"--hub", o.hub->url(), "--team", "Y"}, expired_token);
  CHECK(expired.exit_code == 4);
  CHECK(expired.err.find("expired") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(late.home + "/vault.bin"));
  const RunResult custom =
      Run({kHubBin, "admin", "bootstrap-token", "--data", o.data, "--valid-hours", "2"});
  REQUIRE(custom.exit_code == 0);
  {
    testing::ReadOnlyDb db(o.hub_db());
    CHECK(db.Int("SELECT expires_ms - created_ms FROM bootstrap_tokens ORDER BY created_ms DESC "
                 "LIMIT 1") == int64_t{2} * 3600 * 1000);
  }
}

TEST_CASE("with TLS, invite codes pin the hub's key and a different key is refused") {
  TempDir dir;
  auto make_cert = [&](const std::string& name) {
    const RunResult r =
        Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-keyout", dir.File(name + ".key"), "-out", dir.File(name + ".crt")});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  };
  make_cert("a");
  make_cert("b");
  const std::string data = dir.File("hub");
  auto hub = std::make_unique<HubProcess>(
      kHubBin, data, "127.0.0.1:0",
      std::vector<std::string>{"--tls-cert", dir.File("a.crt"), "--tls-key", dir.File("a.key")});
  REQUIRE(hub->url().rfind("https://", 0) == 0);
  REQUIRE(hub->pin().rfind("sha256//", 0) == 0);
  const RunResult pin = Run({kHubBin, "admin", "pin", "--tls-cert", dir.File("a.crt")});
  CHECK(pin.out.find(hub->pin()) == 0);

  CliDevice coord{dir.File("coord")};
  REQUIRE(coord
              .Init({"--hub", hub->url(), "--team", "Tlaxcala", "--pin", hub->pin()},
                    BootstrapToken(data))
              .exit_code == 0);
  CliDevice ana{dir.File("ana")};
  ana.Ok({"join", coord.Json({"invite"})["code"].get<std::string>(), "--name", "ana"});
  ana.Ok({"put", "cases", "cas_Status=Active"});
  CHECK(ana.Sync()["sent"] == 1);

  // The same address now answers with another key: refused, nothing sent.
  const int port = hub->port();
  hub->Stop();
  hub = std::make_unique<HubProcess>(
      kHubBin, data, "127.0.0.1:" + std::to_string(port),
      std::vector<std::string>{"--tls-cert", dir.File("b.crt"), "--tls-key", dir.File("b.key")});
  ana.Ok({"put", "cases", "cas_Status=FollowUp"});
  const RunResult refused = ana.Run({"sync"});
  CHECK(refused.exit_code == 4);
  CHECK(refused.err.find("pin") != std::string::npos);
  CHECK(ana.Json({"status"})["pending"] == 1);
}

}  // namespace
}  // namespace enlace
