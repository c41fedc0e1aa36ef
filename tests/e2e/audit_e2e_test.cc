// Audit history and hub verification (issue 5, item 5), with the real
// enlace-hub and enlace binaries and real files: `enlace audit` shows the
// writes made, in order, with devices, values, a conflict and its
// resolution; a hub database altered while the hub is stopped (a flipped
// ciphertext byte, a changed metadata byte, two rows' writes swapped) is
// caught by `enlace-hub admin verify`, refused by every device that pulls
// it, and shown as FAILED by `enlace audit`.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "crypto/crypto.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::CliDevice;
using testing::HubProcess;
using testing::Office;
using testing::ReadOnlyDb;
using testing::RunResult;

std::string DeviceHex(const CliDevice& d) {
  return d.Json({"status"})["device"].get<std::string>();
}

std::string Put(const CliDevice& d, std::vector<std::string> args) {
  args.insert(args.begin(), "put");
  return d.Json(args)["id"].get<std::string>();
}

json Fields(const CliDevice& d, const std::string& collection, const std::string& id) {
  return d.Json({"get", collection, id})["fields"];
}

// Stops the hub, runs `edit` on its database, and leaves it stopped.
void StopHub(Office& o) {
  REQUIRE(o.hub->Stop() == 0);
  o.hub.reset();
}
void StartHub(Office& o, int port) {
  o.hub =
      std::make_unique<HubProcess>(testing::kHubBin, o.data, "127.0.0.1:" + std::to_string(port),
                                   std::vector<std::string>{"--quiet"});
}

// A writable connection to the stopped hub's database.
class WritableDb {
 public:
  explicit WritableDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~WritableDb() { sqlite3_close(db_); }
  Bytes Encoded(int64_t seq) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "SELECT encoded FROM writes WHERE seq = ?", -1, &st, nullptr) ==
            SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    Bytes out(p, p + sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    return out;
  }
  void SetEncoded(int64_t seq, const Bytes& bytes) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "UPDATE writes SET encoded = ? WHERE seq = ?", -1, &st,
                               nullptr) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    REQUIRE(sqlite3_changes(db_) == 1);
    sqlite3_finalize(st);
  }

 private:
  sqlite3* db_ = nullptr;
};

// The log position of write `counter` of device `device_hex`.
int64_t SeqOf(Office& o, const std::string& device_hex, int counter) {
  ReadOnlyDb hub(o.hub_db());
  return hub.Int("SELECT seq FROM writes WHERE device = x'" + device_hex +
                 "' AND counter = " + std::to_string(counter));
}

struct Verified {
  int exit_code = -1;
  std::set<int64_t> failed_seqs;
  std::string out;
};

// enlace-hub admin verify on the (stopped) hub's folder.
Verified AdminVerify(const Office& o) {
  const RunResult r = testing::Run({testing::kHubBin, "admin", "verify", "--data", o.data});
  Verified v{r.exit_code, {}, r.out + r.err};
  size_t at = 0;
  while ((at = r.out.find("FAILED seq ", at)) != std::string::npos) {
    at += 11;
    v.failed_seqs.insert(std::strtoll(r.out.c_str() + at, nullptr, 10));
  }
  return v;
}

// `enlace sync` on a device that pulls a tampered write: the write is
// refused, the rest applied, and sync says so and exits 5.
void ExpectSyncRefuses(const CliDevice& d) {
  const RunResult r = d.Run({"--json", "sync"});
  INFO("sync exit ", r.exit_code, " stdout: ", r.out, " stderr: ", r.err);
  CHECK(r.exit_code == 5);
  const json doc = json::parse(r.out, nullptr, false);
  if (doc.is_object() && doc.contains("refused")) {
    CHECK(doc["refused"].get<int>() >= 1);
  } else {
    CHECK(r.err.find("verification") != std::string::npos);
  }
}

json Audit(const CliDevice& d, const std::string& collection, const std::string& id,
           int expect_exit, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--json", "audit", collection, id};
  args.insert(args.end(), extra.begin(), extra.end());
  const RunResult r = d.Run(args);
  INFO("audit exit ", r.exit_code, " stdout: ", r.out, " stderr: ", r.err);
  CHECK(r.exit_code == expect_exit);
  const json doc = json::parse(r.out, nullptr, false);
  REQUIRE(doc.is_object());
  return doc;
}

// An office with two field devices, ana and beto, and their ids in hex.
struct TwoDevices {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");
  const std::string ana_hex = DeviceHex(ana);
  const std::string beto_hex = DeviceHex(beto);
};

TEST_CASE_FIXTURE(
    TwoDevices,
    "enlace audit shows the writes made; a flipped ciphertext byte on the hub is caught") {
  // ana records an encounter; beto receives it.
  const std::string id =
      Put(ana, {"encounters", "enc_Date=2026-11-29", "enc_Kind=Street", "enc_Place=Apizaco",
                "enc_PeopleReached=2", "enc_Notes=primera"});
  ana.Sync();
  beto.Sync();
  // Offline, both change the notes; beto also the count.
  Put(ana, {"encounters", id, "enc_Notes=desde_ana"});
  Put(beto, {"encounters", id, "enc_Notes=desde_beto", "enc_PeopleReached=4"});
  ana.Sync();
  beto.Sync();  // beto pulls ana's edit: a conflict on enc_Notes
  REQUIRE(beto.Json({"get", "encounters", id})["conflicts"].contains("enc_Notes"));
  beto.Ok({"resolve", "encounters", id, "enc_Notes", "acordado"});
  beto.Sync();
  o.coord.Sync();

  // ---- the audit matches the writes made ----
  json doc = Audit(o.coord, "encounters", id, 0);
  CHECK(doc["source"] == "hub");
  CHECK(doc["partial"] == false);
  CHECK(doc["failed"] == 0);
  const json& w = doc["writes"];
  REQUIRE(w.size() == 4);
  for (const auto& e : w) {
    CHECK(e["existence_conflict"] == false);  // both edits keep the record
    CHECK(e["verified"] == true);
    CHECK_FALSE(e.contains("error"));
    CHECK(e["kind"] == "put");
  }
  CHECK(w[0]["device"] == ana_hex);
  CHECK(w[0]["name"] == "ana");
  CHECK(w[0]["counter"] == 1);
  CHECK(w[0]["fields"]["enc_Notes"] == "primera");
  CHECK(w[0]["fields"]["enc_PeopleReached"] == 2);
  CHECK(w[0]["fields"]["enc_Place"] == "Apizaco");
  CHECK(w[0]["conflicts"].empty());
  CHECK(w[1]["device"] == ana_hex);
  CHECK(w[1]["fields"] == json{{"enc_Notes", "desde_ana"}});
  CHECK(w[1]["conflicts"].empty());
  CHECK(w[2]["device"] == beto_hex);
  CHECK(w[2]["name"] == "beto");
  CHECK(w[2]["fields"] == json{{"enc_Notes", "desde_beto"}, {"enc_PeopleReached", 4}});
  CHECK(w[2]["conflicts"] == json::array({"enc_Notes"}));  // concurrent with ana's edit
  CHECK(w[2]["resolves"].empty());
  CHECK(w[3]["device"] == beto_hex);
  CHECK(w[3]["fields"] == json{{"enc_Notes", "acordado"}});
  CHECK(w[3]["resolves"] == json::array({"enc_Notes"}));
  CHECK(w[3]["conflicts"].empty());
  for (size_t i = 1; i < w.size(); ++i) CHECK(w[i - 1]["hlc"] < w[i]["hlc"]);
  // Every member sees the same history.
  CHECK(Audit(ana, "encounters", id, 0)["writes"] == w);

  // The table for people.
  {
    const RunResult r = o.coord.Run({"audit", "encounters", id});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("ana (" + ana_hex.substr(0, 8) + ")") != std::string::npos);
    CHECK(r.out.find("enc_Notes=desde_beto") != std::string::npos);
    CHECK(r.out.find("resolves a conflict") != std::string::npos);
    CHECK(r.out.find("verified") != std::string::npos);
    CHECK(r.out.find("FAILED") == std::string::npos);
  }
  // Offline: what this device still stores (superseded writes are purged).
  {
    json local = Audit(o.coord, "encounters", id, 0, {"--offline"});
    CHECK(local["source"] == "local");
    CHECK(local["partial"] == true);
    CHECK(local["failed"] == 0);
    CHECK(local["writes"].size() >= 1);
    CHECK(local["writes"].size() < w.size());
  }
  CHECK(AdminVerify(o).exit_code == 0);

  // ---- the hub's database is altered while it is stopped ----
  const int port = o.hub->port();
  StopHub(o);
  const int64_t victim = SeqOf(o, beto_hex, 1);  // beto's conflicting edit
  {
    WritableDb db(o.hub_db());
    Bytes bytes = db.Encoded(victim);
    bytes[bytes.size() - 64 - 3] ^= 0x40;  // inside the ciphertext, before the signature
    db.SetEncoded(victim, bytes);
  }
  {
    const Verified v = AdminVerify(o);
    INFO(v.out);
    CHECK(v.exit_code == 1);
    CHECK(v.failed_seqs == std::set<int64_t>{victim});
    CHECK(v.out.find("device " + beto_hex.substr(0, 8)) != std::string::npos);
    CHECK(v.out.find("1 failed") != std::string::npos);
  }
  StartHub(o, port);

  // A fresh device refuses the altered write: beto's count never arrives.
  CliDevice carla = o.Join("carla");
  ExpectSyncRefuses(carla);
  const json carla_fields = Fields(carla, "encounters", id);
  CHECK(carla_fields["enc_PeopleReached"] == 2);
  CHECK(carla_fields["enc_Notes"] == "acordado");
  // So does ana, who had not pulled it before.
  ExpectSyncRefuses(ana);
  CHECK(Fields(ana, "encounters", id)["enc_PeopleReached"] == 2);

  // The audit shows it as FAILED, with no value, and exits 5.
  doc = Audit(o.coord, "encounters", id, 5);
  CHECK(doc["failed"] == 1);
  REQUIRE(doc["writes"].size() == 4);
  const json& bad = doc["writes"][2];
  CHECK(bad["verified"] == false);
  CHECK(bad["device"] == beto_hex);
  CHECK(bad["fields"].empty());
  CHECK(bad["error"].get<std::string>().find("signature") != std::string::npos);
  {
    const RunResult r = o.coord.Run({"audit", "encounters", id});
    CHECK(r.exit_code == 5);
    CHECK(r.out.find("FAILED: ") != std::string::npos);
    CHECK(r.err.find("1 of 4 writes failed verification") != std::string::npos);
  }
}

TEST_CASE_FIXTURE(TwoDevices,
                  "a changed metadata byte and two swapped rows are reported by admin verify") {
  const std::string first = Put(ana, {"encounters", "enc_Date=2026-11-29", "enc_Kind=Street",
                                      "enc_Place=Tlaxco", "enc_PeopleReached=3"});
  const std::string second = Put(beto, {"encounters", "enc_Date=2026-11-28", "enc_Kind=Street",
                                        "enc_Place=Huamantla", "enc_PeopleReached=5"});
  Put(ana, {"encounters", first, "enc_PeopleReached=9"});
  ana.Sync();
  beto.Sync();
  o.coord.Sync();
  CHECK(AdminVerify(o).exit_code == 0);

  const int port = o.hub->port();
  StopHub(o);
  const int64_t ana1 = SeqOf(o, ana_hex, 1);
  const int64_t ana2 = SeqOf(o, ana_hex, 2);
  const int64_t beto1 = SeqOf(o, beto_hex, 1);
  {
    WritableDb db(o.hub_db());
    // A metadata byte: the first letter of the collection name in ana's edit.
    Bytes edit = db.Encoded(ana2);
    const std::string name = "encounters";
    auto at = std::search(edit.begin(), edit.end(), name.begin(), name.end());
    REQUIRE(at != edit.end());
    *at = 'f';
    db.SetEncoded(ana2, edit);
    // Two rows' writes swapped: each is genuine, but not the row's.
    const Bytes a = db.Encoded(ana1);
    const Bytes b = db.Encoded(beto1);
    db.SetEncoded(ana1, b);
    db.SetEncoded(beto1, a);
  }
  {
    const Verified v = AdminVerify(o);
    INFO(v.out);
    CHECK(v.exit_code == 1);
    CHECK(v.failed_seqs == std::set<int64_t>{ana1, ana2, beto1});
    CHECK(v.out.find("3 failed") != std::string::npos);
  }
  StartHub(o, port);

  // A fresh device refuses the altered edit; the swapped genuine writes
  // still verify, so both records arrive with their first values.
  CliDevice carla = o.Join("carla");
  ExpectSyncRefuses(carla);
  CHECK(Fields(carla, "encounters", first)["enc_PeopleReached"] == 3);
  CHECK(Fields(carla, "encounters", second)["enc_PeopleReached"] == 5);
  // The audit of the first record shows the altered write as FAILED.
  const json doc = Audit(o.coord, "encounters", first, 5);
  CHECK(doc["failed"].get<int>() >= 1);
  bool altered_listed = false;
  for (const auto& e : doc["writes"]) {
    if (e["device"] == ana_hex && e["counter"] == 2) {
      altered_listed = true;
      CHECK(e["verified"] == false);
      CHECK(e["fields"].empty());
    }
  }
  CHECK(altered_listed);
}

}  // namespace
}  // namespace enlace
