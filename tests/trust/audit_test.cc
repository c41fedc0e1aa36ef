// The audit of a record's history (enlace/audit.h) on real replicas: every
// write verified as ApplyRemote verifies it, values decrypted only for
// verified writes, and conflicts and resolutions found by replaying the
// multi-value registers of DESIGN §2.
#include "enlace/audit.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::ApplyWrite;
using testing::MakeReplica;
using testing::NewestWrite;
using testing::TempDir;
using testing::TestOptions;

// Two field devices and an auditor (the third device) of one team, sharing a
// fake clock.
struct Team : testing::ThreeDeviceTeam {
  Replica* const auditor = c.get();
  void Tick() { clock.now_ms += 1000; }
};

const AuditField* FieldOf(const AuditEntry& e, const std::string& name) {
  for (const auto& f : e.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// a: status=Active; b (having seen it) and a edit concurrently; a resolves.
struct ConflictStory {
  Team t;
  RecordId id;
  std::vector<Bytes> log;  // hub log order

  ConflictStory() {
    auto made = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", "30"}});
    REQUIRE(made.ok());
    id = *made;
    log.push_back(NewestWrite(*t.a));
    ApplyWrite(*t.b, log[0]);
    t.Tick();
    REQUIRE(t.a->Put("cases", id, {{"status", "\"FollowUp\""}}).ok());
    log.push_back(NewestWrite(*t.a));
    t.Tick();
    REQUIRE(t.b->Put("cases", id, {{"status", "\"ClosedReferred\""}, {"age", "31"}}).ok());
    log.push_back(NewestWrite(*t.b));
    ApplyWrite(*t.a, log[2]);
    ApplyWrite(*t.b, log[1]);
    t.Tick();
    REQUIRE(t.a->Resolve("cases", id, "status", "\"ClosedReferred\"").ok());
    log.push_back(NewestWrite(*t.a));
  }
};

TEST_CASE("an audit lists every write with its values, the conflict it made and its resolution") {
  ConflictStory s;
  auto entries = AuditRecord(*s.t.auditor, "cases", s.id, s.log);
  REQUIRE_MESSAGE(entries.ok(), entries.status().ToString());
  REQUIRE(entries->size() == 4);
  for (const auto& e : *entries) {
    CHECK(e.verified());
    CHECK(e.decoded);
    CHECK(e.kind == AuditKind::kPut);
  }
  const auto& e = *entries;
  CHECK(e[0].dot.device == s.t.a->device_id());
  CHECK(e[0].dot.counter == 1);
  CHECK(FieldOf(e[0], "status")->value == "\"Active\"");
  CHECK(FieldOf(e[0], "age")->value == "30");
  CHECK_FALSE(FieldOf(e[0], "status")->conflict);
  // a's edit comes first in the log: nothing concurrent yet.
  CHECK(FieldOf(e[1], "status")->value == "\"FollowUp\"");
  CHECK_FALSE(FieldOf(e[1], "status")->conflict);
  // b's edit had not seen a's: status conflicts; age was a clean edit.
  CHECK(e[2].dot.device == s.t.b->device_id());
  CHECK(FieldOf(e[2], "status")->conflict);
  CHECK_FALSE(FieldOf(e[2], "status")->resolved);
  CHECK_FALSE(FieldOf(e[2], "age")->conflict);
  // a's resolution covers both values.
  CHECK(FieldOf(e[3], "status")->value == "\"ClosedReferred\"");
  CHECK(FieldOf(e[3], "status")->resolved);
  CHECK_FALSE(FieldOf(e[3], "status")->conflict);
  // Concurrent edits both keep the record: no delete conflict.
  for (const auto& x : e) {
    CHECK_FALSE(x.existence_conflict);
    CHECK_FALSE(x.existence_resolved);
  }
  for (const auto& x : e) CHECK_FALSE(x.erased);
  CHECK(e[0].hlc < e[1].hlc);
  CHECK(e[1].hlc < e[2].hlc);
  CHECK(e[2].hlc < e[3].hlc);
}

TEST_CASE("local writes audited by clock in any given order classify as in log order") {
  ConflictStory s;
  std::vector<Bytes> shuffled = s.log;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::reverse(shuffled.begin(), shuffled.end());
  auto by_log = AuditRecord(*s.t.auditor, "cases", s.id, s.log);
  auto by_clock = AuditRecord(*s.t.auditor, "cases", s.id, shuffled, AuditOrder::kByClock);
  REQUIRE(by_log.ok());
  REQUIRE(by_clock.ok());
  REQUIRE(by_clock->size() == by_log->size());
  for (size_t i = 0; i < by_log->size(); ++i) {
    CHECK((*by_clock)[i].dot == (*by_log)[i].dot);
    REQUIRE((*by_clock)[i].fields.size() == (*by_log)[i].fields.size());
    for (size_t f = 0; f < (*by_log)[i].fields.size(); ++f) {
      CHECK((*by_clock)[i].fields[f].conflict == (*by_log)[i].fields[f].conflict);
      CHECK((*by_clock)[i].fields[f].resolved == (*by_log)[i].fields[f].resolved);
    }
  }
}

TEST_CASE("a tampered write is listed as failed, without values, and left out of the replay") {
  ConflictStory s;
  std::vector<Bytes> log = s.log;
  // One bit of b's conflicting write, inside its ciphertext (the bytes
  // before the 64-byte signature at the end).
  Bytes& victim = log[2];
  victim[victim.size() - 64 - 5] ^= 0x01;
  auto entries = AuditRecord(*s.t.auditor, "cases", s.id, log);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 4);
  const AuditEntry& bad = (*entries)[2];
  CHECK_FALSE(bad.verified());
  CHECK(bad.decoded);  // the clear metadata still reads: who it claims to be
  CHECK(bad.dot.device == s.t.b->device_id());
  CHECK(bad.fields.empty());
  CHECK(bad.verification.code() == StatusCode::kUnauthenticated);
  CHECK((*entries)[0].verified());
  CHECK((*entries)[1].verified());
  CHECK((*entries)[3].verified());
  // Without b's write, a's last write covers one value only.
  CHECK_FALSE(FieldOf((*entries)[3], "status")->resolved);
  // And the device itself refuses the very same bytes.
  CHECK_FALSE(s.t.auditor->ApplyRemote(victim).ok());
}

TEST_CASE("writes from unknown devices, of other records, garbage and repeats are caught") {
  ConflictStory s;
  TempDir other_dir;
  auto stranger = MakeReplica(TestOptions(other_dir.File("x"), &s.t.clock));
  REQUIRE(CreateTeam(*stranger).ok());
  REQUIRE(stranger->Put("cases", s.id, {{"status", "\"Active\""}}).ok());
  const Bytes foreign_team = NewestWrite(*stranger);

  auto other = s.t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(other.ok());
  const Bytes other_record = NewestWrite(*s.t.a);

  std::vector<Bytes> log = s.log;
  log.push_back(foreign_team);
  log.push_back(other_record);
  log.push_back(Bytes{'E', 'N', 'L', 'C', 0, 1});
  log.push_back(s.log[0]);  // the same write twice: listed once
  auto entries = AuditRecord(*s.t.auditor, "cases", s.id, log);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 7);
  CHECK((*entries)[4].verification.code() == StatusCode::kPermissionDenied);
  CHECK_FALSE((*entries)[5].verified());
  CHECK((*entries)[5].verification.message().find("another record") != std::string::npos);
  CHECK_FALSE((*entries)[6].verified());
  CHECK_FALSE((*entries)[6].decoded);
  for (size_t i = 4; i < 7; ++i) CHECK((*entries)[i].fields.empty());
}

TEST_CASE("delete, a concurrent edit, restore and erase are told apart") {
  Team t;
  auto made = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(made.ok());
  const RecordId id = *made;
  std::vector<Bytes> log{NewestWrite(*t.a)};
  ApplyWrite(*t.b, log[0]);
  t.Tick();
  REQUIRE(t.a->Delete("cases", id).ok());
  log.push_back(NewestWrite(*t.a));
  t.Tick();
  REQUIRE(t.b->Put("cases", id, {{"status", "\"FollowUp\""}}).ok());
  log.push_back(NewestWrite(*t.b));
  ApplyWrite(*t.a, log[2]);
  ApplyWrite(*t.b, log[1]);
  t.Tick();
  REQUIRE(t.a->Restore("cases", id).ok());
  log.push_back(NewestWrite(*t.a));
  ApplyWrite(*t.b, log[3]);
  t.Tick();
  REQUIRE(t.b->Erase("cases", id).ok());
  log.push_back(NewestWrite(*t.b));

  auto entries = AuditRecord(*t.auditor, "cases", id, log);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 5);
  const auto& e = *entries;
  for (const auto& x : e) CHECK(x.verified());
  CHECK(e[0].kind == AuditKind::kPut);
  CHECK(e[1].kind == AuditKind::kDelete);
  CHECK(e[1].fields.empty());
  CHECK_FALSE(e[1].existence_conflict);
  CHECK(e[2].kind == AuditKind::kPut);
  CHECK(e[2].existence_conflict);  // deleted on one device, edited on another
  CHECK(e[3].kind == AuditKind::kRestore);
  CHECK(e[3].existence_resolved);
  CHECK(e[4].kind == AuditKind::kErase);
  REQUIRE(FieldOf(e[4], "status") != nullptr);
  CHECK(FieldOf(e[4], "status")->value == "null");
  // The erase covered every earlier write: their values are withheld, the
  // erasure shows (the right to be forgotten, SCENARIOS 5).
  for (size_t i = 0; i < 4; ++i) {
    CHECK(e[i].erased);
    for (const auto& f : e[i].fields) CHECK(f.value.empty());
  }
  CHECK(FieldOf(e[2], "status") != nullptr);
  CHECK_FALSE(e[4].erased);
  CHECK(std::string(AuditKindName(AuditKind::kRestore)) == "restore");
}

TEST_CASE("a device without a team cannot audit") {
  TempDir dir;
  auto lone = MakeReplica(TestOptions(dir.File("lone")));
  auto r = AuditRecord(*lone, "cases", RecordId::Random(), {});
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace enlace
