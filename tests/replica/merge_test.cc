// Targeted merge cases of DESIGN §2 on real replicas (SQLite files).
#include <doctest/doctest.h>

#include <algorithm>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "replica/replica_impl.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::Deliver;
using testing::FakeClock;
using testing::MakeReplica;
using testing::TempDir;
using testing::TestOptions;

std::string Dump(const Replica& r) {
  auto d = r.DumpState();
  REQUIRE(d.ok());
  return *d;
}

// Three devices of one team, each in its own folder, sharing a fake clock.
struct Team : testing::ThreeDeviceTeam {
  // Everyone sends everything to everyone.
  void SyncAll() {
    for (Replica* from : {a.get(), b.get(), c.get()}) {
      for (Replica* to : {a.get(), b.get(), c.get()}) {
        if (from != to) Deliver(*from, *to);
      }
    }
  }
};

TEST_CASE("a put is readable back with canonical values") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", " 27 "}});
  REQUIRE(id.ok());
  auto rec = t.a->Get("cases", *id);
  REQUIRE(rec.ok());
  CHECK(rec->fields.at("status").value == "\"Active\"");
  CHECK(rec->fields.at("age").value == "27");
  CHECK_FALSE(rec->fields.at("age").conflict());
  CHECK_FALSE(rec->deleted);
}

TEST_CASE("concurrent edits of one field conflict on every replica with the same shown value") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  t.clock.now_ms += 10;
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  t.clock.now_ms += 10;
  REQUIRE(t.b->Put("cases", *id, {{"status", "\"ClosedReferred\""}}).ok());
  t.SyncAll();

  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    const auto& f = rec->fields.at("status");
    CHECK(f.conflict());
    CHECK(f.siblings.size() == 2);
    CHECK(f.value == "\"ClosedReferred\"");  // later HLC wins the display
    auto conflicts = r->Conflicts();
    REQUIRE(conflicts.ok());
    REQUIRE(conflicts->size() == 1);
    CHECK(conflicts->front().field == "status");
  }
  CHECK(Dump(*t.a) == Dump(*t.b));
  CHECK(Dump(*t.b) == Dump(*t.c));
}

TEST_CASE("sequential edits of one field do not conflict") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.b->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  t.SyncAll();
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"Closed\""}}).ok());
  t.SyncAll();
  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    CHECK_FALSE(rec->fields.at("status").conflict());
    CHECK(rec->fields.at("status").value == "\"Closed\"");
    CHECK(r->Conflicts()->empty());
  }
}

TEST_CASE("a lower HLC wins nothing but the display: the conflict is still detected") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"age", "30"}});
  REQUIRE(id.ok());
  t.SyncAll();
  t.clock.now_ms += 1000;
  REQUIRE(t.b->Put("cases", *id, {{"age", "31"}}).ok());
  t.clock.now_ms -= 500;  // a's edit happens "earlier" by wall clock
  REQUIRE(t.a->Put("cases", *id, {{"age", "32"}}).ok());
  t.SyncAll();
  auto rec = t.c->Get("cases", *id);
  REQUIRE(rec.ok());
  CHECK(rec->fields.at("age").conflict());
}

TEST_CASE("concurrent edits of different fields of one record merge without a conflict") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", "30"}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  REQUIRE(t.b->Put("cases", *id, {{"age", "31"}}).ok());
  t.SyncAll();
  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"FollowUp\"");
    CHECK(rec->fields.at("age").value == "31");
    CHECK_FALSE(rec->delete_conflict);
    CHECK(r->Conflicts()->empty());
  }
  CHECK(Dump(*t.a) == Dump(*t.c));
}

TEST_CASE("resolving a conflict makes it disappear on every replica") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  REQUIRE(t.b->Put("cases", *id, {{"status", "\"ClosedReferred\""}}).ok());
  t.SyncAll();
  REQUIRE(t.c->Conflicts()->size() == 1);
  REQUIRE(t.c->Resolve("cases", *id, "status", "\"FollowUp\"").ok());
  t.SyncAll();
  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    CHECK(r->Conflicts()->empty());
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"FollowUp\"");
    CHECK(rec->fields.at("status").siblings.size() == 1);
  }
  CHECK(Dump(*t.a) == Dump(*t.b));
}

TEST_CASE("resolving a field that has no conflict or does not exist is refused cleanly") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  CHECK(t.a->Resolve("cases", *id, "nosuchfield", "1").code() == StatusCode::kNotFound);
  CHECK(t.a->Resolve("cases", RecordId::Random(), "status", "1").code() == StatusCode::kNotFound);
  CHECK(t.a->Resolve("cases", *id, "status", "{bad").code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a delete concurrent with an edit is a delete conflict until a person decides") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.a->Delete("cases", *id).ok());
  REQUIRE(t.b->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  t.SyncAll();

  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());  // still listed
    CHECK(rec->delete_conflict);
    CHECK_FALSE(rec->deleted);
    auto conflicts = r->Conflicts();
    REQUIRE(conflicts.ok());
    REQUIRE(conflicts->size() == 1);
    CHECK(conflicts->front().field == kDeletedField);
    CHECK(r->List("cases")->size() == 1);
    // Editing is refused until the delete conflict is settled.
    CHECK(r->Put("cases", *id, {{"age", "3"}}).status().code() == StatusCode::kFailedPrecondition);
  }

  SUBCASE("confirming the delete removes it everywhere") {
    REQUIRE(t.c->Resolve("cases", *id, kDeletedField, "true").ok());
    t.SyncAll();
    for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
      CHECK(r->Get("cases", *id).status().code() == StatusCode::kNotFound);
      CHECK(r->List("cases")->empty());
      CHECK(r->Conflicts()->empty());
    }
  }
  SUBCASE("restoring keeps the concurrent edit everywhere") {
    REQUIRE(t.c->Resolve("cases", *id, kDeletedField, "false").ok());
    t.SyncAll();
    for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
      auto rec = r->Get("cases", *id);
      REQUIRE(rec.ok());
      CHECK_FALSE(rec->delete_conflict);
      CHECK(rec->fields.at("status").value == "\"FollowUp\"");
      CHECK(r->Conflicts()->empty());
    }
  }
  CHECK(Dump(*t.a) == Dump(*t.b));
  CHECK(Dump(*t.b) == Dump(*t.c));
}

TEST_CASE("a delete that saw every edit is clean, and a deleted record can be restored") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.b->Delete("cases", *id).ok());
  CHECK(t.b->Delete("cases", *id).code() == StatusCode::kFailedPrecondition);
  t.SyncAll();
  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    CHECK(r->Get("cases", *id).status().code() == StatusCode::kNotFound);
    auto rec = r->Get("cases", *id, /*include_deleted=*/true);
    REQUIRE(rec.ok());
    CHECK(rec->deleted);
    CHECK(r->Conflicts()->empty());
    CHECK(r->Put("cases", *id, {{"status", "\"Closed\""}}).status().code() ==
          StatusCode::kFailedPrecondition);
  }
  REQUIRE(t.a->Restore("cases", *id).ok());
  t.SyncAll();
  auto rec = t.c->Get("cases", *id);
  REQUIRE(rec.ok());
  CHECK(rec->fields.at("status").value == "\"Active\"");
}

TEST_CASE("erase leaves no old value readable on any replica") {
  Team t;
  const std::string secret_name = "\"Mar\\u00eda Gonz\\u00e1lez\"";
  auto id = t.a->Put("persons", std::nullopt, {{"name", secret_name}, {"age", "17"}});
  REQUIRE(id.ok());
  REQUIRE(t.a->Put("persons", *id, {{"name", "\"Maria G.\""}}).ok());
  t.SyncAll();
  REQUIRE(t.b->Erase("persons", *id).ok());
  t.SyncAll();

  for (Replica* r : {t.a.get(), t.b.get(), t.c.get()}) {
    CHECK(r->Get("persons", *id).status().code() == StatusCode::kNotFound);
    auto rec = r->Get("persons", *id, true);
    REQUIRE(rec.ok());
    CHECK(rec->deleted);
    for (const auto& [field, fv] : rec->fields) {
      CHECK(fv.value == "null");
      CHECK(fv.siblings.size() == 1);
    }
    // No stored write still holds a value of the erased record: every write
    // left for it is the erase itself.
    auto writes = r->StoredWrites();
    REQUIRE(writes.ok());
    size_t for_record = 0;
    for (const auto& bytes : *writes) {
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      if (w->record == *id) {
        ++for_record;
        CHECK(w->kind == WriteKind::kErase);
      }
    }
    CHECK(for_record == 1);
    // And nothing of the erase's victims is pending to be sent.
    auto pending = r->PendingWrites(SIZE_MAX);
    REQUIRE(pending.ok());
    for (const auto& [counter, bytes] : *pending) {
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      if (w->record == *id) CHECK(w->kind == WriteKind::kErase);
    }
  }
  CHECK(Dump(*t.a) == Dump(*t.c));
}

TEST_CASE("an erase only covers what its writer had seen") {
  Team t;
  auto id = t.a->Put("persons", std::nullopt, {{"name", "\"Ana\""}});
  REQUIRE(id.ok());
  t.SyncAll();
  REQUIRE(t.a->Erase("persons", *id).ok());
  REQUIRE(t.b->Put("persons", *id, {{"phone", "\"555\""}}).ok());  // concurrent
  t.SyncAll();
  auto rec = t.c->Get("persons", *id, true);
  REQUIRE(rec.ok());
  CHECK(rec->delete_conflict);
  CHECK(rec->fields.at("name").value == "null");
  CHECK(rec->fields.at("phone").value == "\"555\"");
  CHECK(Dump(*t.a) == Dump(*t.b));
}

TEST_CASE("applying the same write twice changes nothing the second time") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  const Bytes write = testing::OnlyPendingWrite(*t.a);
  auto first = t.b->ApplyRemote(write);
  REQUIRE(first.ok());
  CHECK(*first == ApplyOutcome::kApplied);
  const std::string before = Dump(*t.b);
  auto second = t.b->ApplyRemote(write);
  REQUIRE(second.ok());
  CHECK(*second == ApplyOutcome::kAlreadySeen);
  CHECK(Dump(*t.b) == before);
}

TEST_CASE("bad puts are refused and change nothing") {
  Team t;
  const std::string before = Dump(*t.a);
  CHECK(t.a->Put("cases", std::nullopt, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.a->Put("", std::nullopt, {{"a", "1"}}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t.a->Put("ca ses", std::nullopt, {{"a", "1"}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.a->Put("cases", std::nullopt, {{"$deleted", "true"}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.a->Put("cases", std::nullopt, {{"a", "{\"x\":1}"}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.a->Put("cases", std::nullopt, {{"a", "not json"}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.a->Put("cases", std::nullopt, {{"a", "[[1]]"}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(t.a->Put("cases", std::nullopt, {{"a", "\"" + std::string(70000, 'x') + "\""}})
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(Dump(*t.a) == before);
  CHECK(*t.a->PendingCount() == 0);
}

TEST_CASE("a device without a team cannot write") {
  TempDir dir;
  auto r = MakeReplica(TestOptions(dir.File("x")));
  CHECK(r->Put("cases", std::nullopt, {{"a", "1"}}).status().code() ==
        StatusCode::kFailedPrecondition);
}

TEST_CASE("writes from another team or an untrusted device are refused") {
  Team t;
  TempDir other_dir;
  FakeClock clock;
  auto other = MakeReplica(TestOptions(other_dir.File("o"), &clock));
  REQUIRE(CreateTeam(*other).ok());
  REQUIRE(other->Put("cases", std::nullopt, {{"a", "1"}}).ok());
  auto pending = other->PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  const std::string before = Dump(*t.a);
  CHECK(t.a->ApplyRemote(pending->front().second).status().code() == StatusCode::kPermissionDenied);

  // Same team, but a device nobody trusted.
  TempDir rogue_dir;
  auto rogue = MakeReplica(TestOptions(rogue_dir.File("r"), &t.clock));
  auto sealed = SealTeamKeysFor(*t.a, rogue->public_keys().encryption);
  REQUIRE(sealed.ok());
  REQUIRE(AcceptTeamKeys(*rogue, *sealed).ok());
  REQUIRE(rogue->Put("cases", std::nullopt, {{"a", "1"}}).ok());
  auto rogue_pending = rogue->PendingWrites(SIZE_MAX);
  REQUIRE(rogue_pending.ok());
  CHECK(t.b->ApplyRemote(rogue_pending->front().second).status().code() ==
        StatusCode::kPermissionDenied);
  CHECK(Dump(*t.a) == before);
}

TEST_CASE("the outbox holds own writes in counter order until acknowledged") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"a", "1"}});
  REQUIRE(id.ok());
  REQUIRE(t.a->Put("encounters", std::nullopt, {{"b", "2"}}).ok());
  REQUIRE(t.a->Put("cases", *id, {{"c", "3"}}).ok());
  auto pending = t.a->PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 3);
  CHECK((*pending)[0].first == 1);
  CHECK((*pending)[2].first == 3);
  auto one = t.a->PendingWrites(1);  // a tiny budget still yields one write
  REQUIRE(one.ok());
  CHECK(one->size() == 1);
  REQUIRE(t.a->AcknowledgeUpTo(2).ok());
  CHECK(*t.a->PendingCount() == 1);
  REQUIRE(t.a->AcknowledgeUpTo(3).ok());
  CHECK(*t.a->PendingCount() == 0);
}

TEST_CASE("a superseded own write that was never sent goes as a void, without its values") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt, {{"a", "1"}});
  REQUIRE(id.ok());
  REQUIRE(t.a->Put("cases", *id, {{"a", "2"}}).ok());
  auto pending = t.a->PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 2);
  CHECK(pending->front().first == 1);
  CHECK(pending->back().first == 2);
  // Number 1 is accounted for by a void: no record, no field, no value.
  auto void_write = Write::Decode(pending->front().second);
  REQUIRE(void_write.ok());
  CHECK(void_write->kind == WriteKind::kVoid);
  CHECK(void_write->collection == kVoidCollection);
  CHECK(void_write->record.IsZero());
  CHECK(void_write->fields.empty());
  CHECK(void_write->context.empty());
  CHECK(void_write->accounted_from == 1);
  CHECK(pending->front().second.size() == 241);  // docs/PROTOCOL.md §7
  // It keeps number 1's place in the team's scope: number 2 names it.
  CHECK(void_write->scope.IsZero());
  CHECK(void_write->scope_prev == 0);
  auto second = Write::Decode(pending->back().second);
  REQUIRE(second.ok());
  CHECK(second->scope_prev == 1);
  // The superseded write itself is gone from the device.
  CHECK_FALSE(t.a->impl().store().GetWrite(Dot{t.a->device_id(), 1})->has_value());
  Deliver(*t.a, *t.b);
  CHECK(Dump(*t.a) == Dump(*t.b));
  REQUIRE(t.a->AcknowledgeUpTo(2).ok());
  CHECK(t.a->PendingWrites(SIZE_MAX)->empty());
}

}  // namespace
}  // namespace enlace
