// Issue 5, end to end with the real binaries: the signed device registry,
// revocation with remote wipe, key rotation checked against the hub's own
// files, approval of joining devices, and a hub that forges the registry.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "enlace/registry.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "enlace/write.h"

namespace enlace::testing {
namespace {

namespace fs = std::filesystem;

// Every stored write of the hub, in log order.
std::vector<Bytes> HubWrites(const std::string& hub_db) {
  ReadOnlyDb db(hub_db);
  std::vector<Bytes> out;
  for (const auto& row : db.Rows("SELECT encoded FROM writes ORDER BY seq")) {
    auto raw = internal::FromHex(std::string_view(row[0]).substr(1));
    REQUIRE(raw.ok());
    out.push_back(*raw);
  }
  return out;
}

// Runs one statement against a stopped hub's database.
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

std::unique_ptr<Replica> OpenCopy(const std::string& dir, const std::string& passphrase) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  auto r = Replica::Open(o, passphrase);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

nlohmann::json DeviceNamed(const CliDevice& d, const std::string& name) {
  const nlohmann::json listed = d.Json({"devices", "list"});
  for (const auto& x : listed["devices"]) {
    if (x["name"] == name) return x;
  }
  return nullptr;
}

bool Lists(const CliDevice& d, const std::string& note) {
  const auto list = d.Json({"list", "encounters"});
  return list.dump().find(note) != std::string::npos;
}

TEST_CASE("a revoked device is wiped on contact and the rotated key opens nothing it can reach") {
  Office office;
  CliDevice ana = office.Join("ana");
  CliDevice beto = office.Join("beto");
  ana.Ok(PutEncounter("AntesDeRevocar"));
  ana.Sync();
  beto.Ok(PutEncounter("DeBetoAntes"));
  beto.Sync();
  office.coord.Sync();

  // A thief's copy of beto's phone, passphrase included, taken before the
  // coordinator hears of it.
  const std::string stolen = office.dir.File("beto-stolen");
  fs::copy(beto.home, stolen, fs::copy_options::recursive);

  const auto revoked = office.coord.Json({"devices", "revoke", "beto"});
  CHECK(revoked["name"] == "beto");
  CHECK(revoked["key_version"] == 2);
  const auto listed = DeviceNamed(office.coord, "beto");
  REQUIRE(listed.is_object());
  CHECK(listed["state"] == "revoked");

  // The remaining members get the new key and write under it.
  const auto got = ana.Sync();
  CHECK(got["keys_received"] == 1);
  ana.Ok(PutEncounter("DespuesDeRevocar"));
  ana.Sync();
  office.coord.Sync();
  CHECK(Lists(office.coord, "DespuesDeRevocar"));
  CHECK(Lists(office.coord, "DeBetoAntes"));  // its writes before the revocation stand
  CHECK(Lists(ana, "DeBetoAntes"));
  {
    const auto list = DeviceNamed(ana, "beto");
    REQUIRE(list.is_object());
    CHECK(list["state"] == "revoked");
  }

  SUBCASE("on contact the revoked device destroys itself") {
    const RunResult r = beto.Run({"sync"});
    INFO(r.err);
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("revoked") != std::string::npos);
    CHECK(!fs::exists(beto.home + "/vault.bin"));
    CHECK(!fs::exists(beto.home + "/store.db"));
    CHECK(!fs::exists(beto.home + "/config.json"));
    CHECK(beto.Run({"list", "encounters"}).exit_code == 1);  // not initialised
  }

  SUBCASE("with the hub's files in hand, the stolen keys open nothing written after rotation") {
    auto thief = OpenCopy(stolen, beto.passphrase);
    CHECK(thief->current_key_version() == 1);
    size_t opened = 0, refused_v2 = 0;
    for (const Bytes& w : HubWrites(office.hub_db())) {
      auto decoded = Write::Decode(w);
      REQUIRE(decoded.ok());
      auto applied = thief->ApplyRemote(w);
      if (decoded->key_version >= 2) {
        CHECK(!applied.ok());
        CHECK(applied.status().code() == StatusCode::kDecryptFailed);
        ++refused_v2;
      } else if (applied.ok()) {
        ++opened;
      }
    }
    CHECK(refused_v2 >= 1);  // ana's write after the rotation
    CHECK(opened >= 1);      // old writes: the price of having held the old key
    // The new key travels only sealed to the remaining members.
    ReadOnlyDb hub(office.hub_db());
    const auto grants = hub.Rows("SELECT encoded FROM key_grants");
    CHECK(!grants.empty());
    for (const auto& row : grants) {
      auto raw = internal::FromHex(std::string_view(row[0]).substr(1));
      REQUIRE(raw.ok());
      auto grant = DecodeKeyGrant(*raw);
      REQUIRE(grant.ok());
      CHECK(grant->recipient != thief->device_id());
      CHECK(!AcceptTeamKeys(*thief, grant->sealed).ok());
    }
    CHECK(thief->current_key_version() == 1);

    // A write the stolen copy makes now is refused by every member.
    REQUIRE(thief->Put("encounters", std::nullopt, {{"enc_Notes", "\"Falsa\""}}).ok());
    auto pending = thief->PendingWrites(1 << 20);
    REQUIRE(pending.ok());
    REQUIRE(!pending->empty());
    auto member = OpenCopy(ana.home, ana.passphrase);
    auto applied = member->ApplyRemote(pending->back().second);
    CHECK(applied.status().code() == StatusCode::kPermissionDenied);
    CHECK(applied.status().message().find("after its revocation") != std::string::npos);
  }
}

TEST_CASE("a revocation must cover every write the hub holds from the device") {
  Office office;
  CliDevice ana = office.Join("ana");
  office.coord.Sync();
  // ana pushes after the coordinator last pulled: the coordinator's revocation
  // is refused by the hub until it has seen them, and `devices revoke` syncs
  // first, so it covers them.
  ana.Ok(PutEncounter("UltimaDeAna"));
  ana.Sync();
  office.coord.Ok({"devices", "revoke", "ana", "--no-rotate"});
  CHECK(Lists(office.coord, "UltimaDeAna"));
  const auto listed = DeviceNamed(office.coord, "ana");
  REQUIRE(listed.is_object());
  CHECK(listed["revoked_after"].get<uint64_t>() >= 1);
  const RunResult r = ana.Run({"sync"});
  CHECK(r.exit_code == 4);
  CHECK(!fs::exists(ana.home + "/vault.bin"));
}

TEST_CASE("with approval required, a joined device waits until a coordinator approves it") {
  Office office;
  office.coord.Ok({"devices", "require-approval", "on"});
  office.coord.Ok(PutEncounter("ParaCarla"));
  office.coord.Sync();
  CliDevice carla = office.Join("carla");
  const RunResult waiting = carla.Run({"sync"});
  CHECK(waiting.exit_code == 4);
  CHECK(waiting.err.find("approval") != std::string::npos);

  office.coord.Sync();
  const auto pending = DeviceNamed(office.coord, "carla");
  REQUIRE(pending.is_object());
  CHECK(pending["state"] == "pending");
  office.coord.Ok({"devices", "approve", "carla"});
  CHECK(DeviceNamed(office.coord, "carla")["state"] == "active");
  carla.Sync();
  CHECK(Lists(carla, "ParaCarla"));
  // A field device cannot change the registry.
  const RunResult field = carla.Run({"devices", "revoke", "coordinadora"});
  CHECK(field.exit_code == 5);
  CHECK(field.err.find("coordinator") != std::string::npos);
}

TEST_CASE("a device that joined with an invite older than the key waits for it, then reads") {
  Office office;
  const std::string old_code = office.Invite();
  office.coord.Ok({"devices", "rotate-key"});
  office.coord.Ok(PutEncounter("ConLlaveNueva"));
  office.coord.Sync();
  CliDevice dana{office.dir.File("dana")};
  dana.Ok({"join", old_code, "--name", "dana"});
  const auto first = dana.Sync();
  CHECK(first["waiting_for_key"] == 2);
  CHECK(!Lists(dana, "ConLlaveNueva"));
  office.coord.Sync();  // seals the newest key to dana
  const auto second = dana.Sync();
  CHECK(second["keys_received"] == 1);
  CHECK(Lists(dana, "ConLlaveNueva"));
}

TEST_CASE("a hub that forges the registry is refused by the devices") {
  Office office;
  CliDevice ana = office.Join("ana");
  office.coord.Ok({"devices", "rename", "ana", "ana-campo"});
  const int port = office.hub->port();
  office.hub->Stop();
  office.hub.reset();
  // The hub rewrites the newest registry (here: its signature's last byte;
  // any change, such as promoting ana, breaks the signature the same way).
  Execute(office.hub_db(),
          "UPDATE registries SET encoded = substr(encoded, 1, length(encoded) - 1) || "
          "CASE WHEN substr(encoded, -1) = x'00' THEN x'01' ELSE x'00' END "
          "WHERE version = (SELECT max(version) FROM registries)");
  office.hub =
      std::make_unique<HubProcess>(kHubBin, office.data, "127.0.0.1:" + std::to_string(port),
                                   std::vector<std::string>{"--quiet"});
  const RunResult r = ana.Run({"sync"});
  INFO(r.err);
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("registry") != std::string::npos);
}

TEST_CASE("a write the hub holds back is reported in Spanish, exit 5, until it arrives") {
  Office office;
  CliDevice ana = office.Join("ana");
  CliDevice beto = office.Join("beto");
  for (const char* note : {"Primera", "Segunda", "Tercera"}) ana.Ok(PutEncounter(note));
  ana.Sync();
  // Runs `sql` on the hub's database while it is stopped.
  const auto with_hub_stopped = [&](const std::string& sql) {
    const int port = office.hub->port();
    office.hub->Stop();
    office.hub.reset();
    Execute(office.hub_db(), sql);
    office.hub =
        std::make_unique<HubProcess>(kHubBin, office.data, "127.0.0.1:" + std::to_string(port),
                                     std::vector<std::string>{"--quiet"});
  };
  // The hub's operator (or an intruder) moves ana's second write aside.
  const std::string device = ana.Json({"status"})["device"].get<std::string>();
  with_hub_stopped(
      "CREATE TABLE held AS SELECT * FROM writes WHERE counter = 2 AND hex(device) = upper('" +
      device + "'); DELETE FROM writes WHERE counter = 2 AND hex(device) = upper('" + device +
      "')");
  const RunResult r = beto.Run({"sync"}, {{"LANGUAGE", "es"}, {"LANG", "es_MX.UTF-8"}});
  INFO(r.err);
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("Falta 1 cambio de otro dispositivo") != std::string::npos);
  CHECK(Lists(beto, "Primera"));
  CHECK_FALSE(Lists(beto, "Segunda"));
  CHECK(Lists(beto, "Tercera"));
  const RunResult json = beto.Run({"--json", "sync"});
  CHECK(json.exit_code == 5);
  // The sync's document first, then the error's.
  std::istringstream documents(json.out);
  nlohmann::json first;
  documents >> first;
  CHECK(first["missing"] == 1);
  CHECK(beto.Json({"status"})["missing"] == 1);
  const RunResult status = beto.Run({"status"}, {{"LANGUAGE", "es"}, {"LANG", "es_MX.UTF-8"}});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("faltan") != std::string::npos);
  // Put back, it is asked for by its number and arrives: exit 0.
  with_hub_stopped("INSERT INTO writes SELECT * FROM held; DROP TABLE held");
  const RunResult again = beto.Run({"--json", "sync"});
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(nlohmann::json::parse(again.out)["missing"] == 0);
  CHECK(beto.Json({"status"})["missing"] == 0);
  CHECK(Lists(beto, "Segunda"));
}

TEST_CASE("devices commands refuse bad command lines") {
  Office office;
  CHECK(office.coord.Run({"devices"}).exit_code == 1);
  CHECK(office.coord.Run({"devices", "revoke"}).exit_code == 1);
  CHECK(office.coord.Run({"devices", "revoke", "zzzz-nobody"}).exit_code == 1);
  CHECK(office.coord.Run({"devices", "require-approval", "maybe"}).exit_code == 1);
  CHECK(office.coord.Run({"devices", "revoke", "coordinadora"}).exit_code == 1);  // itself
  CHECK(office.coord.Run({"devices", "rename", "coordinadora", ""}).exit_code == 1);
}

}  // namespace
}  // namespace enlace::testing
