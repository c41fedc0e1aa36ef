// Attacks on a team's trust that go through the hub (issue 14): a hostile
// member, a breached hub or a tampered delivery, against the real hub
// handler and storage in process. Each test is an attack that worked before
// its defence.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/write_internal.h"
#include "trust/team_impl.h"

namespace enlace {
namespace {

using testing::HubTeam;
using testing::PushOf;
using testing::SyncAll;

// `device`'s oldest unsent write, decoded.
Write FirstPending(Replica& device) {
  auto pending = device.PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(!pending->empty());
  auto w = Write::Decode(pending->front().second);
  REQUIRE(w.ok());
  return *w;
}

// `w` sealed again by `writer` under `key` as key version `version`: a
// validly signed write that no team key opens.
Bytes Reseal(Replica& writer, Write w, uint32_t version, const internal::SecretBytes& key) {
  auto held = writer.impl().TeamKey(w.key_version);
  REQUIRE(held.ok());
  auto values = internal::OpenWritePayload(w, **held);
  REQUIRE(values.ok());
  w.key_version = version;
  REQUIRE(internal::SealWrite(w, *values, key, writer.impl().vault().secrets().signing.secret_key)
              .ok());
  return w.Encode();
}

// The key version of each write of `device` the hub stores, by counter.
std::vector<uint32_t> HubKeyVersionsOf(HubTeam& t, const DeviceId& device) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((t.hub.data_dir() + "/hub.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT encoded FROM writes WHERE device = ? ORDER BY counter", -1,
                             &st, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(st, 1, device.bytes.data(), 16, SQLITE_TRANSIENT);
  std::vector<uint32_t> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    auto w = Write::Decode(Bytes(p, p + sqlite3_column_bytes(st, 0)));
    REQUIRE(w.ok());
    out.push_back(w->key_version);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// ---- 1. one member's unreadable write must not freeze the team --------------------------

TEST_CASE("the hub refuses a write under a key version no coordinator has granted") {
  HubTeam t;
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  const Write honest = FirstPending(*t.a);
  const Bytes bogus = Reseal(*t.a, honest, 4000000000u, internal::SecretBytes::Random(32));
  const hub::HttpResponse refused = t.hub.Raw(PushOf(t, *t.a, {bogus}));
  CHECK(refused.status == 400);
  CHECK(testing::ErrorOf(refused).find("key version 4000000000") != std::string::npos);
  // Nothing of it was stored: the next version up is refused just the same,
  // and the honest device's write goes through.
  const Bytes next = Reseal(*t.a, honest, 2, internal::SecretBytes::Random(32));
  CHECK(t.hub.Raw(PushOf(t, *t.a, {next})).status == 400);
  // The next move: the member claims in its request to hold that key
  // version. A field device's claim grants nothing.
  SyncRequest claim;
  claim.key_version = 4000000000u;
  claim.max_response_bytes = 1 << 20;
  claim.writes = {bogus};
  CHECK(t.hub.Raw(testing::SignedSyncRequest(*t.a, Encode(claim), t.clock.now_ms)).status == 400);
  SyncAll(t.hub, *t.a);
  const SyncProgress b = SyncAll(t.hub, *t.b);
  CHECK(b.received == 1);
  CHECK(b.parked == 0);
}

TEST_CASE("a write no key opens is kept aside, the pull goes on past it, and it is retried") {
  HubTeam t;
  // A breached hub slips a write under key version 7 into the log, before
  // an honest write.
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  const Write w = FirstPending(*t.a);
  const Bytes bogus = Reseal(*t.a, w, 7, internal::SecretBytes::Random(32));
  testing::ExecSql(t.hub.data_dir() + "/hub.db",
                   "INSERT INTO writes(team, device, counter, encoded, received_ms, collection, "
                   "record) VALUES(X'" +
                       internal::ToHex(w.team.bytes) + "', X'" +
                       internal::ToHex(w.dot.device.bytes) + "', 1000, X'" +
                       internal::ToHex(bogus) + "', 1, 'cases', X'" +
                       internal::ToHex(w.record.bytes) + "')");
  auto second = t.b->Put("cases", std::nullopt, {{"status", "\"FollowUp\""}});
  REQUIRE(second.ok());
  SyncAll(t.hub, *t.b);

  const SyncProgress p = SyncAll(t.hub, *t.coord);
  CHECK(p.parked == 1);
  CHECK(p.waiting_for_key == 7);
  CHECK(p.received == 1);  // b's write, after the unreadable one
  CHECK(t.coord->Get("cases", *second).ok());
  // Kept aside, not forgotten: every sync says so again.
  const SyncProgress again = SyncAll(t.hub, *t.coord);
  CHECK(again.parked == 1);
}

TEST_CASE("writes under a key this device gets later are applied when the grant arrives") {
  HubTeam t;
  // An invite made before a rotation carries key 1 only.
  auto invite = PrepareInvite(*t.coord, "http://hub.test", "", Role::kField, 3600 * 1000);
  REQUIRE(invite.ok());
  REQUIRE(t.hub.Send(invite->request).status == 200);
  REQUIRE(RotateTeamKey(*t.coord).ok());
  auto id = t.coord->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.coord);

  auto late = testing::MakeReplica(testing::TestOptions(t.dir.File("late"), &t.clock));
  auto join = BuildJoinRequest(*late, invite->code, "tardía");
  REQUIRE(join.ok());
  const testing::HubReply joined = t.hub.Send(*join);
  REQUIRE(joined.status == 200);
  REQUIRE(HandleJoinResponse(*late, invite->code, joined.bytes()).ok());
  const SyncProgress first = SyncAll(t.hub, *late);
  CHECK(first.parked >= 1);
  CHECK(first.waiting_for_key == 2);
  CHECK(!late->Get("cases", *id).ok());

  SyncAll(t.hub, *t.coord);  // seals key 2 to the new device
  const SyncProgress second = SyncAll(t.hub, *late);
  CHECK(second.keys_received == 1);
  CHECK(second.parked == 0);
  auto record = late->Get("cases", *id);
  REQUIRE(record.ok());
  CHECK(record->fields.at("status").value == "\"Active\"");
}

// ---- 2. revocation cannot be outrun --------------------------------------------------

TEST_CASE("a revocation takes effect whatever the revoked device pushes meanwhile") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.a);
  SyncAll(t.hub, *t.coord);
  REQUIRE(RevokeDevice(*t.coord, t.a->device_id()).ok());
  // The target races the coordinator's sync with more writes.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(t.a->Put("cases", *id, {{"age", std::to_string(20 + i)}}).ok());
    SyncAll(t.hub, *t.a);
  }
  const SyncProgress p = SyncAll(t.hub, *t.coord);
  CHECK(p.registry_refused.empty());
  CHECK(p.registry_stored);
  // From now on the hub refuses the revoked device.
  REQUIRE(t.a->Put("cases", *id, {{"age", "99"}}).ok());
  const hub::HttpResponse late = t.hub.Raw(testing::NextSyncRequest(*t.a));
  CHECK(late.status == 403);
  // Every honest device agrees on what the revoked device wrote.
  SyncAll(t.hub, *t.b);
  SyncAll(t.hub, *t.coord);
  CHECK(*t.b->DumpState() == *t.coord->DumpState());
  CHECK(t.b->Get("cases", *id)->fields.at("age").value == "39");
}

// ---- 6. a tampered delivery does not split the team ------------------------------------

TEST_CASE("a write refused once is asked for again and the team converges") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"FollowUp\""}}).ok());
  SyncAll(t.hub, *t.a);

  // One delivery to b is altered on the way.
  SyncSession session(*t.b);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const testing::HubReply reply = t.hub.Send(*req);
  REQUIRE(reply.status == 200);
  auto resp = DecodeSyncResponse(reply.bytes());
  REQUIRE(resp.ok());
  REQUIRE(resp->writes.size() == 2);
  resp->writes[0].back() ^= 1;
  REQUIRE(session.HandleResponse(Encode(*resp)).ok());
  CHECK(session.progress().refused == 1);
  CHECK(!t.b->Get("cases", *id).ok());

  // The next sync asks for the refused position again.
  const SyncProgress p = SyncAll(t.hub, *t.b);
  CHECK(p.received == 1);
  auto record = t.b->Get("cases", *id);
  REQUIRE(record.ok());
  CHECK(record->fields.at("status").value == "\"Active\"");
  SyncAll(t.hub, *t.coord);
  CHECK(*t.b->DumpState() == *t.coord->DumpState());
}

TEST_CASE("a full re-read repairs a device that gave up on a position") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.a);
  SyncSession session(*t.b);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  auto resp = DecodeSyncResponse(t.hub.Send(*req).bytes());
  REQUIRE(resp.ok());
  resp->writes[0].back() ^= 1;
  REQUIRE(session.HandleResponse(Encode(*resp)).ok());
  // Forget the refused positions (as a device of an older version would
  // have), then re-read the whole log.
  testing::ExecSql(t.dir.File("b") + "/store.db", "DELETE FROM refetch");
  SyncAll(t.hub, *t.b);
  CHECK(!t.b->Get("cases", *id).ok());
  REQUIRE(RereadLog(*t.b).ok());
  SyncAll(t.hub, *t.b);
  CHECK(t.b->Get("cases", *id).ok());
}

// ---- 6b. write numbers: a withheld write is noticed and asked for ---------------------------

// The (counter, kind) of each write of `device` the hub stores, by counter.
std::vector<std::pair<uint64_t, WriteKind>> HubWritesOf(HubTeam& t, const DeviceId& device) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((t.hub.data_dir() + "/hub.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT encoded FROM writes WHERE device = ? ORDER BY counter", -1,
                             &st, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(st, 1, device.bytes.data(), 16, SQLITE_TRANSIENT);
  std::vector<std::pair<uint64_t, WriteKind>> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    auto w = Write::Decode(Bytes(p, p + sqlite3_column_bytes(st, 0)));
    REQUIRE(w.ok());
    out.emplace_back(w->dot.counter, w->kind);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Three new cases by a (its writes 1, 2, 3), synced to the hub.
std::vector<RecordId> ThreeCasesSynced(HubTeam& t) {
  std::vector<RecordId> ids;
  for (const char* status : {"\"Active\"", "\"FollowUp\"", "\"Closed\""}) {
    auto id = t.a->Put("cases", std::nullopt, {{"status", status}});
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  SyncAll(t.hub, *t.a);
  return ids;
}

TEST_CASE("a write a breached hub withholds is noticed: the device says how many are missing") {
  HubTeam t;
  const std::vector<RecordId> ids = ThreeCasesSynced(t);
  // The hub drops a's second write from its log (or never stored it).
  testing::ExecSql(
      t.hub.data_dir() + "/hub.db",
      "DELETE FROM writes WHERE counter = 2 AND device = x'" + t.a->device_id().ToHex() + "'");
  SyncProgress p = SyncAll(t.hub, *t.b);
  CHECK(p.received == 2);
  CHECK(p.missing == 1);
  CHECK_FALSE(t.b->Get("cases", ids[1]).ok());
  // Asked for at every sync, and still missing while the hub holds it back.
  p = SyncAll(t.hub, *t.b);
  CHECK(p.missing == 1);
  // The next write of a does not hide the gap either.
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  SyncAll(t.hub, *t.a);
  p = SyncAll(t.hub, *t.b);
  CHECK(p.received == 1);
  CHECK(p.missing == 1);
}

TEST_CASE(
    "a reader lacks no write for what its writer wrote in other scopes, and notices a "
    "withheld write of its own scope") {
  HubTeam t;
  ScopeId other;
  other.bytes.fill(0x5c);
  // a coordinator assigns a a scope that b does not hold.
  for (Replica* d : {t.coord.get(), t.a.get(), t.b.get(), t.coord.get()}) SyncAll(t.hub, *d);
  REQUIRE(AssignScope(*t.coord, t.a->device_id(), other).ok());
  for (Replica* d : {t.coord.get(), t.a.get(), t.b.get()}) SyncAll(t.hub, *d);
  // a writes 1 (team scope), 2 (the other scope), 3 (team scope, after 1).
  auto first = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(first.ok());
  SyncAll(t.hub, *t.a);
  REQUIRE(t.hub.Raw(PushOf(t, *t.a, {testing::ScopedWrite(*t.a, other, 0)})).status == 200);
  auto third = t.a->Put("cases", std::nullopt, {{"status", "\"FollowUp\""}});
  REQUIRE(third.ok());
  SyncAll(t.hub, *t.a);
  REQUIRE(HubWritesOf(t, t.a->device_id()).size() == 3);
  // b is not in the other scope: the hub does not deliver number 2 to it.
  SyncProgress p = SyncAll(t.hub, *t.b);
  CHECK(p.received == 2);
  CHECK(p.missing == 0);
  // a's next write of the team's scope (4, after 3) is withheld: noticed
  // by its successor (5, after 4).
  REQUIRE(t.a->Put("cases", *first, {{"status", "\"Closed\""}}).ok());
  REQUIRE(t.a->Put("cases", *third, {{"status", "\"Closed\""}}).ok());
  SyncAll(t.hub, *t.a);
  testing::ExecSql(
      t.hub.data_dir() + "/hub.db",
      "DELETE FROM writes WHERE counter = 4 AND device = x'" + t.a->device_id().ToHex() + "'");
  p = SyncAll(t.hub, *t.b);
  CHECK(p.received == 1);
  CHECK(p.missing == 1);
  CHECK(t.b->Get("cases", *third)->fields.at("status").value == "\"Closed\"");
  CHECK(t.b->Get("cases", *first)->fields.at("status").value == "\"Active\"");
}

TEST_CASE("a write left out of a delivery is asked for by its number and arrives") {
  HubTeam t;
  const std::vector<RecordId> ids = ThreeCasesSynced(t);
  SyncSession session(*t.b);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  auto resp = DecodeSyncResponse(t.hub.Send(*req).bytes());
  REQUIRE(resp.ok());
  // The hub (or the path) leaves a's second write out of the answer.
  size_t dropped = 0;
  for (size_t i = 0; i < resp->writes.size(); ++i) {
    auto w = Write::Decode(resp->writes[i]);
    REQUIRE(w.ok());
    if (w->dot.device == t.a->device_id() && w->dot.counter == 2) {
      resp->writes.erase(resp->writes.begin() + static_cast<std::ptrdiff_t>(i));
      resp->seqs.erase(resp->seqs.begin() + static_cast<std::ptrdiff_t>(i));
      ++dropped;
      break;
    }
  }
  REQUIRE(dropped == 1);
  auto more = session.HandleResponse(Encode(*resp));
  REQUIRE(more.ok());
  CHECK(*more);  // a gap was seen: another round asks for it
  CHECK(session.progress().missing == 1);
  CHECK_FALSE(t.b->Get("cases", ids[1]).ok());
  auto again = session.NextRequest();
  REQUIRE(again.ok());
  auto decoded = DecodeSyncRequest(again->body);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->wanted.size() == 1);
  CHECK(decoded->wanted[0] == SyncRequest::Wanted{t.a->device_id(), 2, 2});
  auto answer = t.hub.Send(*again);
  REQUIRE(answer.status == 200);
  more = session.HandleResponse(answer.bytes());
  REQUIRE(more.ok());
  CHECK_FALSE(*more);
  CHECK(session.progress().missing == 0);
  CHECK(t.b->Get("cases", ids[1])->fields.at("status").value == "\"FollowUp\"");
  SyncAll(t.hub, *t.a);
  CHECK(*t.b->DumpState() == *t.a->DumpState());
}

TEST_CASE("the hub stores no write number above one its writer never sent") {
  HubTeam t;
  SyncAll(t.hub, *t.a);
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Closed\""}}).ok());
  auto pending = t.a->PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 2);
  // A member pushes its second write without the first: a gap it could
  // later blame on the hub, or a write it hides from the team.
  const hub::HttpResponse skipped = t.hub.Raw(PushOf(t, *t.a, {pending->back().second}));
  REQUIRE(skipped.status == 200);
  auto answer = DecodeSyncResponse(
      std::span(reinterpret_cast<const uint8_t*>(skipped.body.data()), skipped.body.size()));
  REQUIRE(answer.ok());
  CHECK(answer->acked_up_to == 0);
  CHECK(HubWritesOf(t, t.a->device_id()).empty());
  // The device's own sync sends both, in order.
  const SyncProgress p = SyncAll(t.hub, *t.a);
  CHECK(p.sent == 2);
  CHECK(HubWritesOf(t, t.a->device_id()) ==
        std::vector<std::pair<uint64_t, WriteKind>>{{1, WriteKind::kPut}, {2, WriteKind::kPut}});
}

TEST_CASE("a value overwritten or erased before a sync never reaches the hub; its number does") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}, {"name", "\"Lupita\""}});
  REQUIRE(id.ok());
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  REQUIRE(t.a->Erase("cases", *id).ok());
  SyncProgress p = SyncAll(t.hub, *t.a);
  CHECK(p.sent == 3);
  // Numbers 1 and 2 reach the hub as voids, the erase as itself: no gap, no value.
  CHECK(HubWritesOf(t, t.a->device_id()) ==
        std::vector<std::pair<uint64_t, WriteKind>>{
            {1, WriteKind::kVoid}, {2, WriteKind::kVoid}, {3, WriteKind::kErase}});
  p = SyncAll(t.hub, *t.b);
  CHECK(p.missing == 0);
  CHECK(*t.b->DumpState() == *t.a->DumpState());
}

TEST_CASE("a hub that lost writes gets back the numbers a device no longer holds, as voids") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.a);
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  SyncAll(t.hub, *t.a);  // a no longer holds its first write: superseded
  SyncAll(t.hub, *t.b);
  // The hub loses both (a backup from before them put back by hand).
  testing::ExecSql(t.hub.data_dir() + "/hub.db",
                   "DELETE FROM writes WHERE device = x'" + t.a->device_id().ToHex() + "'");
  const SyncProgress p = SyncAll(t.hub, *t.a);
  CHECK(p.hub_behind);
  CHECK(HubWritesOf(t, t.a->device_id()) ==
        std::vector<std::pair<uint64_t, WriteKind>>{{1, WriteKind::kVoid}, {2, WriteKind::kPut}});
  // A device that joins now reads no gap and the same record.
  auto c = testing::JoinDevice(t.hub, *t.coord, testing::TestOptions(t.dir.File("c"), &t.clock),
                               "carla");
  const SyncProgress pc = SyncAll(t.hub, *c);
  CHECK(pc.missing == 0);
  CHECK(c->Get("cases", *id)->fields.at("status").value == "\"FollowUp\"");
}

// ---- 7. an edit after a rotation is sealed under the new key ------------------------------

TEST_CASE("an unsent write is sealed again under the newest key before the hub takes it") {
  HubTeam t;
  SyncAll(t.hub, *t.a);
  SyncAll(t.hub, *t.b);
  SyncAll(t.hub, *t.coord);
  REQUIRE(RevokeDevice(*t.coord, t.a->device_id()).ok());
  REQUIRE(RotateTeamKey(*t.coord).ok());
  SyncAll(t.hub, *t.coord);
  // b has not synced since the rotation: its edit is sealed under key 1,
  // which the revoked device holds.
  auto id = t.b->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  const Write before = FirstPending(*t.b);
  CHECK(before.key_version == 1);
  // The hub will not store it under key 1 once key 2 was granted to b.
  const hub::HttpResponse stale = t.hub.Raw(PushOf(t, *t.b, {before.Encode()}));
  REQUIRE(stale.status == 200);
  auto answer = DecodeSyncResponse(
      std::span(reinterpret_cast<const uint8_t*>(stale.body.data()), stale.body.size()));
  REQUIRE(answer.ok());
  CHECK(answer->acked_up_to < before.dot.counter);
  CHECK(answer->reseal_below == 2);

  const SyncProgress p = SyncAll(t.hub, *t.b);
  CHECK(p.resealed == 1);
  // The edit reached the hub once, under key 2 only, with a new number; its
  // old number went as a void (no value), also under key 2.
  CHECK(p.sent == 2);
  CHECK(HubKeyVersionsOf(t, t.b->device_id()) == std::vector<uint32_t>{2, 2});
  SyncAll(t.hub, *t.coord);
  CHECK(t.coord->Get("cases", *id)->fields.at("status").value == "\"Active\"");
}

// ---- 8. with approval required, the invite carries no key ------------------------------

TEST_CASE("a device waiting for approval holds no team key until a coordinator approves it") {
  HubTeam t;
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.a);
  REQUIRE(SetApprovalRequired(*t.coord, true).ok());
  SyncAll(t.hub, *t.coord);

  auto pending = testing::JoinDevice(t.hub, *t.coord,
                                     testing::TestOptions(t.dir.File("p"), &t.clock), "pendiente");
  CHECK(pending->current_key_version() == 0);
  CHECK(!pending->team().IsZero());
  CHECK(!pending->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());

  SyncAll(t.hub, *t.coord);  // learns of the admission
  REQUIRE(ApproveDevice(*t.coord, pending->device_id()).ok());
  SyncAll(t.hub, *t.coord);
  const SyncProgress p = SyncAll(t.hub, *pending);
  CHECK(p.keys_received == 1);
  CHECK(pending->current_key_version() == 1);
  auto record = pending->Get("cases", *id);
  REQUIRE(record.ok());
  CHECK(record->fields.at("status").value == "\"Active\"");
}

// ---- relayed registry chains (a hub restored from a backup, §9) --------------------------

// The hub's answer to `device` relaying `chain`: its registry version after.
uint64_t RelayChain(HubTeam& t, Replica& device, std::vector<Bytes> chain) {
  SyncRequest req;
  req.key_version = device.current_key_version();
  req.max_response_bytes = 1 << 20;
  req.relay_registries = std::move(chain);
  const hub::HttpResponse r =
      t.hub.Raw(testing::SignedSyncRequest(device, Encode(req), t.clock.now_ms));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto resp = DecodeSyncResponse(internal::AsBytes(r.body));
  REQUIRE(resp.ok());
  return resp->registry_version;
}

TEST_CASE("a member cannot slip a registry version of its own into the hub by relaying it") {
  HubTeam t;
  SyncAll(t.hub, *t.coord);
  SyncAll(t.hub, *t.a);
  auto current = internal::LoadRegistry(t.a->impl());
  REQUIRE(current.ok());
  REQUIRE(current->has_value());
  const Registry base = **current;
  REQUIRE(base.Find(t.a->device_id()) != nullptr);
  // Field device ana makes itself coordinator and signs the next version:
  // as a relayed link it is checked like any other and refused.
  Registry forged = base;
  forged.version = base.version + 1;
  for (auto& e : forged.entries) {
    if (e.device == t.a->device_id()) e.role = Role::kCoordinator;
  }
  internal::SignRegistry(t.a->impl(), forged);
  CHECK(RelayChain(t, *t.a, {EncodeRegistry(forged)}) == base.version);
  // A coordinator's genuine next version, relayed behind the forged one, is
  // not stored either: a chain ends at its first bad link.
  Registry honest = base;
  honest.version = base.version + 1;
  for (auto& e : honest.entries) {
    if (e.device == t.b->device_id()) e.name = "beto renombrado";
  }
  internal::SignRegistry(t.coord->impl(), honest);
  CHECK(RelayChain(t, *t.a, {EncodeRegistry(forged), EncodeRegistry(honest)}) == base.version);
  // A link skipping a version is refused too.
  Registry skipping = honest;
  skipping.version = base.version + 2;
  internal::SignRegistry(t.coord->impl(), skipping);
  CHECK(RelayChain(t, *t.a, {EncodeRegistry(skipping)}) == base.version);
  // The genuine one, carried by a field device, is stored: its signer decides.
  CHECK(RelayChain(t, *t.a, {EncodeRegistry(honest)}) == base.version + 1);
  SyncAll(t.hub, *t.b);
  auto seen = internal::LoadRegistry(t.b->impl());
  REQUIRE(seen.ok());
  REQUIRE(seen->has_value());
  CHECK((*seen)->Find(t.b->device_id())->name == "beto renombrado");
  CHECK((*seen)->Find(t.a->device_id())->role == Role::kField);
}

}  // namespace
}  // namespace enlace
