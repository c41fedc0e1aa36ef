// The record history endpoint (POST /v1/history), the hub storage's record
// columns (migration 3 and the backfill of older rows) and `admin verify`'s
// checks, in process on the real handler and SQLite storage.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "enlace/audit.h"
#include "enlace/sync.h"
#include "enlace/wire.h"
#include "hub_fixture.h"
#include "hub_storage.h"
#include "hub_verify.h"

namespace enlace {
namespace {

using testing::HubTeam;
using testing::SyncAll;

std::vector<Bytes> History(testing::InProcessHub& hub, Replica& r, const std::string& collection,
                           const RecordId& id) {
  auto request = BuildHistoryRequest(r, collection, id);
  REQUIRE(request.ok());
  const auto reply = hub.Send(*request);
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  auto resp = DecodeHistoryResponse(reply.bytes());
  REQUIRE(resp.ok());
  return resp->writes;
}

struct Story {
  HubTeam t;
  RecordId id, other;
  Story() {
    auto made = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
    REQUIRE(made.ok());
    id = *made;
    SyncAll(t.hub, *t.a);
    SyncAll(t.hub, *t.b);
    REQUIRE(t.b->Put("cases", id, {{"status", "\"FollowUp\""}}).ok());
    SyncAll(t.hub, *t.b);
    auto second = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
    REQUIRE(second.ok());
    other = *second;
    SyncAll(t.hub, *t.a);
    SyncAll(t.hub, *t.coord);
  }
};

TEST_CASE("the history of a record is its team's writes of that record in log order") {
  Story s;
  const auto writes = History(s.t.hub, *s.t.coord, "cases", s.id);
  REQUIRE(writes.size() == 2);
  auto entries = AuditRecord(*s.t.coord, "cases", s.id, writes);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 2);
  CHECK((*entries)[0].dot.device == s.t.a->device_id());
  CHECK((*entries)[0].device_name == "ana");
  CHECK((*entries)[1].dot.device == s.t.b->device_id());
  CHECK((*entries)[1].device_name == "beto");
  for (const auto& e : *entries) CHECK(e.verified());
  CHECK(History(s.t.hub, *s.t.a, "cases", s.other).size() == 1);
  CHECK(History(s.t.hub, *s.t.a, "encounters", s.id).empty());
  CHECK(History(s.t.hub, *s.t.a, "cases", RecordId::Random()).empty());

  // Another team on the same hub asks for the same record: nothing.
  testing::TempDir dir;
  auto stranger =
      testing::InitCoordinator(s.t.hub, testing::TestOptions(dir.File("x"), &s.t.clock), "Puebla");
  CHECK(History(s.t.hub, *stranger, "cases", s.id).empty());

  // A bad collection name never leaves the device.
  CHECK(BuildHistoryRequest(*s.t.a, "no such", s.id).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("rows stored before the record columns are filled when the hub opens") {
  Story s;
  const std::string db = s.t.hub.data_dir() + "/hub.db";
  testing::ExecSql(db, "UPDATE writes SET collection = NULL, record = NULL");
  auto reopened = hub::OpenSqliteHubStorage(s.t.hub.data_dir());
  REQUIRE(reopened.ok());
  auto writes = (*reopened)->RecordHistory(s.t.coord->team(), "cases", s.id, 100);
  REQUIRE(writes.ok());
  CHECK(writes->size() == 2);
  auto verified = hub::VerifyStoredWrites(**reopened, [](const hub::VerifyFailure& f) {
    FAIL("unexpected failure at seq ", f.seq, ": ", f.reason);
  });
  REQUIRE(verified.ok());
  CHECK(verified->checked == 3);
  CHECK(verified->failed == 0);
}

TEST_CASE("admin verify names a device whose promised write numbers the hub lost") {
  Story s;
  auto verified = hub::VerifyStoredWrites(s.t.hub.storage(), [](const hub::VerifyFailure& f) {
    FAIL("unexpected failure at seq ", f.seq, ": ", f.reason);
  });
  REQUIRE(verified.ok());
  CHECK(verified->missing_numbers == 0);
  // a's first write goes (its second, number 2, promised it).
  testing::ExecSql(s.t.hub.data_dir() + "/hub.db", "DELETE FROM writes WHERE seq = 1");
  std::vector<hub::VerifyFailure> failures;
  verified = hub::VerifyStoredWrites(s.t.hub.storage(),
                                     [&](const hub::VerifyFailure& f) { failures.push_back(f); });
  REQUIRE(verified.ok());
  CHECK(verified->checked == 2);
  CHECK(verified->failed == 0);
  CHECK(verified->missing_numbers == 1);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].seq == 0);
  CHECK(failures[0].device == s.t.a->device_id());
  CHECK(failures[0].reason == "1 of its write numbers 1..2 are not stored (writes this hub lost)");
}

TEST_CASE("admin verify names every altered row and only those") {
  Story s;
  const std::string db = s.t.hub.data_dir() + "/hub.db";
  // seq 1: a flipped signature byte; seq 3: put in another record's row;
  // seq 2: its row's counter changed.
  testing::ExecSql(db,
                   "UPDATE writes SET encoded = substr(encoded, 1, length(encoded) - 1) || "
                   "CASE WHEN substr(encoded, -1) = x'00' THEN x'01' ELSE x'00' END WHERE seq = 1");
  testing::ExecSql(
      db, "UPDATE writes SET record = (SELECT record FROM writes WHERE seq = 1) WHERE seq = 3");
  testing::ExecSql(db, "UPDATE writes SET counter = counter + 100 WHERE seq = 2");
  std::set<uint64_t> failed;
  std::vector<std::string> reasons;
  auto verified = hub::VerifyStoredWrites(s.t.hub.storage(), [&](const hub::VerifyFailure& f) {
    failed.insert(f.seq);
    reasons.push_back(f.reason);
  });
  REQUIRE(verified.ok());
  CHECK(verified->checked == 3);
  CHECK(verified->failed == 3);
  CHECK(failed == std::set<uint64_t>{1, 2, 3});
  REQUIRE(reasons.size() == 3);
  CHECK(reasons[0].find("signature") != std::string::npos);
  CHECK(reasons[1].find("number") != std::string::npos);
  CHECK(reasons[2].find("record") != std::string::npos);
  // The device refuses the altered write the history returns.
  const auto writes = History(s.t.hub, *s.t.coord, "cases", s.id);
  auto entries = AuditRecord(*s.t.coord, "cases", s.id, writes);
  REQUIRE(entries.ok());
  size_t bad = 0;
  for (const auto& e : *entries) bad += e.verified() ? 0 : 1;
  CHECK(bad == 2);  // the flipped one, and another record's write in this record's rows
}

}  // namespace
}  // namespace enlace
