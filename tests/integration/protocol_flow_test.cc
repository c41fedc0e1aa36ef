// The sync protocol end to end through the in-process hub (the real
// HubHandler and SQLite storage): merging, bootstrap, team isolation, what
// reaches the disks, lost responses and replays, wrong clocks, invites and
// registration (DESIGN §2-§4, SCENARIOS 1-3).
#include <doctest/doctest.h>
#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"
#include "trust/team_impl.h"

namespace enlace {
namespace {

using testing::FakeClock;
using testing::HubReply;
using testing::InProcessHub;
using testing::TempDir;
using testing::TestOptions;

constexpr uint64_t kHourMs = 3600ull * 1000;

std::string Dump(const Replica& r) {
  auto d = r.DumpState();
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  return *d;
}

uint64_t Pending(const Replica& r) {
  auto n = r.PendingCount();
  REQUIRE(n.ok());
  return *n;
}

uint64_t HubWrites(InProcessHub& hub) {
  auto c = hub.storage().Counts();
  REQUIRE(c.ok());
  return c->writes;
}

// Rows in the hub's write log, read through a separate read-only connection.
uint64_t HubLogRows(InProcessHub& hub) {
  const std::string path = hub.data_dir() + "/hub.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM writes", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const auto rows = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return rows;
}

Status ReplyStatus(const HubReply& reply) {
  return StatusFromHubResponse(reply.status, reply.body);
}

// Every regular file under `dir` (recursively) as (path, contents).
std::vector<std::pair<std::string, std::string>> FilesUnder(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    out.emplace_back(entry.path().string(), testing::ReadFile(entry.path().string()));
  }
  return out;
}

// True when `needle` occurs in any file under `dir`; names the file.
bool AnyFileContains(const std::string& dir, std::string_view needle,
                     std::string* where = nullptr) {
  REQUIRE(!needle.empty());
  for (const auto& [path, contents] : FilesUnder(dir)) {
    if (contents.find(needle) != std::string::npos) {
      if (where != nullptr) *where = path;
      return true;
    }
  }
  return false;
}

void CheckNoFileContains(const std::string& dir, std::string_view needle, const char* what) {
  std::string where;
  const bool found = AnyFileContains(dir, needle, &where);
  CHECK_MESSAGE(!found, what << " found in " << where);
}

// The invite code's raw bytes (base64url after the "enlace1." prefix): the
// secret is the last 32 bytes, the invite id the 16 before it.
Bytes DecodeInviteCodeBytes(const std::string& code) {
  const std::string prefix = "enlace1.";
  REQUIRE(code.rfind(prefix, 0) == 0);
  REQUIRE(sodium_init() >= 0);
  Bytes raw(code.size());
  size_t len = 0;
  REQUIRE(sodium_base642bin(raw.data(), raw.size(), code.data() + prefix.size(),
                            code.size() - prefix.size(), nullptr, &len, nullptr,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
  raw.resize(len);
  REQUIRE(raw.size() > 48);
  return raw;
}

// Decodes the encoded writes `replica` has in its outbox.
std::vector<Write> PendingDecoded(const Replica& replica) {
  auto pending = replica.PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  std::vector<Write> out;
  for (const auto& [counter, bytes] : *pending) {
    auto w = Write::Decode(bytes);
    REQUIRE(w.ok());
    out.push_back(std::move(*w));
  }
  return out;
}

using Team = testing::HubTeam;

// ---- merging ------------------------------------------------------------------------

TEST_CASE("edits of different fields by two devices merge without conflict in either sync order") {
  Team t;
  auto id = t.a->Put("cases", std::nullopt,
                     {{"status", "\"Active\""}, {"age", "30"}, {"state", "\"TLAX\""}});
  REQUIRE(id.ok());
  testing::SyncAll(t.hub, *t.a);
  testing::SyncAll(t.hub, *t.b);
  REQUIRE(t.b->Get("cases", *id).ok());

  // Offline: a changes the status, b the age and adds a referral.
  t.clock.now_ms += 60'000;
  REQUIRE(t.a->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  t.clock.now_ms += 60'000;
  REQUIRE(t.b->Put("cases", *id, {{"age", "31"}, {"referral", "\"DIF\""}}).ok());

  SUBCASE("a syncs first, then b") {
    testing::SyncAll(t.hub, *t.a);
    testing::SyncAll(t.hub, *t.b);
    testing::SyncAll(t.hub, *t.a);
  }
  SUBCASE("b syncs first, then a") {
    testing::SyncAll(t.hub, *t.b);
    testing::SyncAll(t.hub, *t.a);
    testing::SyncAll(t.hub, *t.b);
  }
  testing::SyncAll(t.hub, *t.coord);

  const std::string expected = Dump(*t.a);
  for (Replica* r : {t.coord.get(), t.a.get(), t.b.get()}) {
    CHECK(Dump(*r) == expected);
    auto conflicts = r->Conflicts();
    REQUIRE(conflicts.ok());
    CHECK(conflicts->empty());
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"FollowUp\"");
    CHECK(rec->fields.at("status").siblings.size() == 1);
    CHECK(rec->fields.at("age").value == "31");
    CHECK(rec->fields.at("age").siblings.size() == 1);
    CHECK(rec->fields.at("referral").value == "\"DIF\"");
    CHECK(rec->fields.at("state").value == "\"TLAX\"");
    CHECK(Pending(*r) == 0);
  }
}

// ---- bootstrap ----------------------------------------------------------------------

TEST_CASE("a device that joins later bootstraps everything over many small rounds") {
  Team t;
  for (int i = 0; i < 30; ++i) {
    t.clock.now_ms += 1000;
    REQUIRE(t.coord
                ->Put("encounters", std::nullopt,
                      {{"place", "\"Tenancingo\""}, {"n", std::to_string(i)}})
                .ok());
    REQUIRE(
        t.a->Put("encounters", std::nullopt, {{"place", "\"Apizaco\""}, {"n", std::to_string(i)}})
            .ok());
  }
  testing::SyncAll(t.hub, *t.coord);
  testing::SyncAll(t.hub, *t.a);
  testing::SyncAll(t.hub, *t.coord);
  REQUIRE(HubWrites(t.hub) == 60);

  auto late =
      testing::JoinDevice(t.hub, *t.coord, TestOptions(t.dir.File("late"), &t.clock), "carmen");
  SyncOptions small;
  small.max_pull_bytes = 2000;
  const SyncProgress p = testing::SyncAll(t.hub, *late, small);
  CHECK(p.received == 60);
  CHECK(p.ignored == 0);
  CHECK(p.refused == 0);
  CHECK(p.rounds > 1);

  // Every response stayed within the limit, so the rounds are at least the
  // bytes pulled over the limit.
  auto stored = late->StoredWrites();
  REQUIRE(stored.ok());
  CHECK(stored->size() == 60);
  size_t total = 0;
  for (const auto& w : *stored) total += w.size();
  REQUIRE(total > 2000);
  CHECK(p.rounds >= (total + 1999) / 2000);

  CHECK(Dump(*late) == Dump(*t.coord));
  CHECK(Dump(*late) == Dump(*t.a));
  auto list = late->List("encounters");
  REQUIRE(list.ok());
  CHECK(list->size() == 60);
}

// ---- team isolation --------------------------------------------------------------------

TEST_CASE("a device of another team on the same hub receives none of the first team's writes") {
  Team t;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  }
  testing::SyncAll(t.hub, *t.a);
  REQUIRE(HubWrites(t.hub) == 5);

  auto other =
      testing::InitCoordinator(t.hub, TestOptions(t.dir.File("other"), &t.clock), "Puebla");
  CHECK(other->team() != t.coord->team());
  const SyncProgress p = testing::SyncAll(t.hub, *other);
  CHECK(p.received == 0);
  CHECK(p.refused == 0);
  auto stored = other->StoredWrites();
  REQUIRE(stored.ok());
  CHECK(stored->empty());
  auto list = other->List("cases");
  REQUIRE(list.ok());
  CHECK(list->empty());
  // Nor does it learn the other team's members.
  auto status = GetSyncStatus(*other);
  REQUIRE(status.ok());
  for (const auto& m : status->members) {
    CHECK(m.device != t.coord->device_id());
    CHECK(m.device != t.a->device_id());
  }

  // And the other way round.
  REQUIRE(other->Put("cases", std::nullopt, {{"status", "\"Closed\""}}).ok());
  testing::SyncAll(t.hub, *other);
  const SyncProgress pb = testing::SyncAll(t.hub, *t.b);
  CHECK(pb.received == 5);
  CHECK(pb.refused == 0);
  auto b_stored = t.b->StoredWrites();
  REQUIRE(b_stored.ok());
  CHECK(b_stored->size() == 5);
}

// ---- nothing in the clear on disk ---------------------------------------------------------

TEST_CASE("no plaintext value reaches the hub's data folder or a device's folder") {
  Team t;
  const std::vector<std::string> secrets = {"Guadalupe-Xochitl-5512345678",
                                            "Calle-Matamoros-417-Tenancingo",
                                            "Nayeli-Cuauhtemoc-1998-03-14"};
  auto id =
      t.a->Put("cases", std::nullopt,
               {{"telefono", "\"" + secrets[0] + "\""}, {"domicilio", "\"" + secrets[1] + "\""}});
  REQUIRE(id.ok());
  testing::SyncAll(t.hub, *t.a);
  testing::SyncAll(t.hub, *t.b);
  REQUIRE(t.b->Put("cases", *id, {{"nombre", "\"" + secrets[2] + "\""}}).ok());
  for (Replica* r : {t.b.get(), t.a.get(), t.coord.get()}) testing::SyncAll(t.hub, *r);
  // Sanity: every device can read the values.
  auto rec = t.coord->Get("cases", *id);
  REQUIRE(rec.ok());
  REQUIRE(rec->fields.at("telefono").value == "\"" + secrets[0] + "\"");
  REQUIRE(rec->fields.at("nombre").value == "\"" + secrets[2] + "\"");

  // Positive controls: the scan does see what is stored in the clear.
  const auto a_id = t.a->device_id();
  const std::string a_id_bytes(a_id.bytes.begin(), a_id.bytes.end());
  REQUIRE(AnyFileContains(t.hub.data_dir(), a_id_bytes));
  REQUIRE(AnyFileContains(t.hub.data_dir(), "telefono"));  // field names are clear metadata
  for (const char* dev : {"coord", "a", "b"}) REQUIRE(AnyFileContains(t.dir.File(dev), "telefono"));

  for (const auto& value : secrets) {
    const std::string quoted = "\"" + value + "\"";
    CheckNoFileContains(t.hub.data_dir(), value, value.c_str());
    CheckNoFileContains(t.hub.data_dir(), quoted, quoted.c_str());
    for (const char* dev : {"coord", "a", "b"}) {
      CheckNoFileContains(t.dir.File(dev), value, value.c_str());
      CheckNoFileContains(t.dir.File(dev), quoted, quoted.c_str());
    }
  }
}

// ---- lost responses and replays -------------------------------------------------------

// Pushes a's pending writes and drops the hub's reply.
void PushAndLoseResponse(InProcessHub& hub, Replica& replica) {
  SyncSession session(replica);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const HubReply reply = hub.Send(*req);
  REQUIRE(reply.status == 200);
  // The response is lost on the way back: HandleResponse is never called.
}

TEST_CASE("a lost response costs nothing: the retry stores each write once") {
  Team t;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(t.a->Put("encounters", std::nullopt, {{"n", std::to_string(i)}}).ok());
  }
  REQUIRE(Pending(*t.a) == 5);
  PushAndLoseResponse(t.hub, *t.a);
  CHECK(HubLogRows(t.hub) == 5);  // the hub did store them
  CHECK(Pending(*t.a) == 5);      // the device does not know

  const SyncProgress retry = testing::SyncAll(t.hub, *t.a);
  CHECK(retry.sent == 5);
  CHECK(Pending(*t.a) == 0);
  CHECK(HubLogRows(t.hub) == 5);

  REQUIRE(t.a->Put("encounters", std::nullopt, {{"n", "5"}}).ok());
  testing::SyncAll(t.hub, *t.a);
  CHECK(HubLogRows(t.hub) == 6);

  const SyncProgress pb = testing::SyncAll(t.hub, *t.b);
  CHECK(pb.received == 6);
  CHECK(pb.ignored == 0);
  CHECK(pb.refused == 0);
  auto stored = t.b->StoredWrites();
  REQUIRE(stored.ok());
  CHECK(stored->size() == 6);
  std::set<uint64_t> counters;
  for (const auto& bytes : *stored) {
    auto w = Write::Decode(bytes);
    REQUIRE(w.ok());
    CHECK(w->dot.device == t.a->device_id());
    counters.insert(w->dot.counter);
  }
  CHECK(counters.size() == 6);
  auto conflicts = t.b->Conflicts();
  REQUIRE(conflicts.ok());
  CHECK(conflicts->empty());
  CHECK(Dump(*t.a) == Dump(*t.b));
}

TEST_CASE("the hub's write count is not inflated by a retried batch") {
  // HubCounts::writes (the enlace_log_writes gauge) must count the writes
  // in the log, however often a batch was retried.
  Team t;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(t.a->Put("encounters", std::nullopt, {{"n", std::to_string(i)}}).ok());
  }
  PushAndLoseResponse(t.hub, *t.a);
  CHECK(HubWrites(t.hub) == 5);
  testing::SyncAll(t.hub, *t.a);  // re-pushes the same five
  CHECK(HubWrites(t.hub) == 5);
  REQUIRE(t.a->Put("encounters", std::nullopt, {{"n", "5"}}).ok());
  testing::SyncAll(t.hub, *t.a);
  CHECK(HubLogRows(t.hub) == 6);
  CHECK(HubWrites(t.hub) == 6);
}

TEST_CASE("a retried identical request is refused as a replay and changes nothing") {
  Team t;
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  SyncSession session(*t.a);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const HubReply first = t.hub.Send(*req);
  REQUIRE(first.status == 200);
  const uint64_t writes_before = HubWrites(t.hub);

  const HubReply replay = t.hub.Send(*req);
  CHECK(replay.status == 401);
  const Status s = ReplyStatus(replay);
  CHECK(s.code() == StatusCode::kUnauthenticated);
  CHECK(s.message().find("replay") != std::string::npos);
  CHECK(HubWrites(t.hub) == writes_before);

  // The original response still applies normally.
  auto more = session.HandleResponse(first.bytes());
  REQUIRE_MESSAGE(more.ok(), more.status().ToString());
  CHECK(Pending(*t.a) == 0);
  const SyncProgress pb = testing::SyncAll(t.hub, *t.b);
  CHECK(pb.received == 1);
}

// ---- wrong clocks -----------------------------------------------------------------------

// A device with its own clock, joined while its clock was right.
struct SkewedDevice {
  FakeClock clock;
  std::unique_ptr<Replica> replica;
  SkewedDevice(Team& t, const std::string& name, int64_t skew_ms) {
    clock.now_ms = t.clock.now_ms;
    replica = testing::JoinDevice(t.hub, *t.coord, TestOptions(t.dir.File(name), &clock), name);
    clock.now_ms = static_cast<uint64_t>(static_cast<int64_t>(clock.now_ms) + skew_ms);
  }
};

TEST_CASE("a device whose clock is two hours behind is told so and then follows the hub's clock") {
  Team t;
  SkewedDevice late(t, "late", -2 * static_cast<int64_t>(kHourMs));
  Replica& dev = *late.replica;

  SyncSession session(dev);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const HubReply refused = t.hub.Send(*req);
  CHECK(refused.status == 401);
  const Status s = ReplyStatus(refused);
  CHECK(s.code() == StatusCode::kUnauthenticated);
  CHECK_MESSAGE(s.message().find("time") != std::string::npos, s.message());
  REQUIRE(!refused.hub_time.empty());
  CHECK(refused.hub_time == std::to_string(t.clock.now_ms));

  const int64_t offset = FollowHubClock(dev, refused.hub_time);
  CHECK(offset > static_cast<int64_t>(2 * kHourMs) - 5000);
  CHECK(offset < static_cast<int64_t>(2 * kHourMs) + 5000);

  auto retry = session.NextRequest();
  REQUIRE(retry.ok());
  const HubReply ok = t.hub.Send(*retry);
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  auto more = session.HandleResponse(ok.bytes());
  REQUIRE_MESSAGE(more.ok(), more.status().ToString());

  auto status = GetSyncStatus(dev);
  REQUIRE(status.ok());
  CHECK(status->clock_offset_ms > static_cast<int64_t>(2 * kHourMs) - 5000);
  CHECK(status->clock_offset_ms < static_cast<int64_t>(2 * kHourMs) + 5000);

  // A write made now carries the hub's time, not the wrong wall clock.
  auto id = dev.Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  auto writes = PendingDecoded(dev);
  REQUIRE(writes.size() == 1);
  const uint64_t stamped = writes[0].hlc.physical_ms();
  CHECK(stamped + 5000 > t.clock.now_ms);
  CHECK(stamped < t.clock.now_ms + 5000);

  // The correction survives a restart.
  id = dev.Put("cases", std::nullopt, {{"status", "\"FollowUp\""}});
  REQUIRE(id.ok());
  late.replica.reset();
  auto reopened = Replica::Open(TestOptions(t.dir.File("late"), &late.clock), "correct horse");
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  CHECK((*reopened)->clock().wall_clock_offset_ms() == offset);

  // The team accepts its writes.
  testing::SyncAll(t.hub, **reopened);
  const SyncProgress pc = testing::SyncAll(t.hub, *t.coord);
  CHECK(pc.received == 2);
  CHECK(pc.refused == 0);
}

TEST_CASE(
    "writes made offline with a clock two hours ahead are re-stamped once the clock follows the "
    "hub") {
  Team t;
  SkewedDevice early(t, "early", 2 * static_cast<int64_t>(kHourMs));
  Replica& dev = *early.replica;
  // Offline, before the device ever hears the hub's time: a new case edited
  // twice, a second record, and a third one created then deleted.
  auto a = dev.Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", "16"}});
  REQUIRE(a.ok());
  REQUIRE(dev.Put("cases", *a, {{"status", "\"FollowUp\""}}).ok());
  auto b = dev.Put("encounters", std::nullopt, {{"n", "2"}});
  REQUIRE(b.ok());
  auto c = dev.Put("encounters", std::nullopt, {{"n", "3"}});
  REQUIRE(c.ok());
  REQUIRE(dev.Delete("encounters", *c).ok());
  const std::string before = *dev.DumpState();
  CHECK(before.find("FollowUp") != std::string::npos);

  SyncSession session(dev);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const HubReply stale = t.hub.Send(*req);
  CHECK(stale.status == 401);
  CHECK(ReplyStatus(stale).message().find("time") != std::string::npos);
  FollowHubClock(dev, stale.hub_time);
  CHECK(dev.clock().wall_clock_offset_ms() < -static_cast<int64_t>(2 * kHourMs) + 5000);

  // The retried round re-stamps the future writes and the hub takes them.
  auto retry = session.NextRequest();
  REQUIRE(retry.ok());
  CHECK(session.progress().restamped >= 3);
  for (const Write& w : PendingDecoded(dev)) {
    CHECK(w.hlc.physical_ms() < t.clock.now_ms + 5000);
  }
  const HubReply accepted = t.hub.Send(*retry);
  REQUIRE_MESSAGE(accepted.status == 200, accepted.body);
  REQUIRE(session.HandleResponse(accepted.bytes()).ok());
  testing::SyncAll(t.hub, dev);
  CHECK(Pending(dev) == 0);

  // Same values, no conflict, on the device and on the team.
  const SyncProgress pc = testing::SyncAll(t.hub, *t.coord);
  CHECK(pc.refused == 0);
  for (Replica* r : {&dev, t.coord.get()}) {
    auto rec = r->Get("cases", *a);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"FollowUp\"");
    CHECK(rec->fields.at("age").value == "16");
    CHECK_FALSE(rec->fields.at("status").conflict());
    CHECK(r->Get("encounters", *b).ok());
    CHECK(r->Get("encounters", *c).status().code() == StatusCode::kNotFound);
    CHECK(r->Conflicts()->empty());
  }
  CHECK(*dev.DumpState() == *t.coord->DumpState());
}

// ---- invites ------------------------------------------------------------------------------

Result<PreparedInvite> Invite(Replica& by, uint64_t valid_for_ms = kHourMs,
                              Role role = Role::kField) {
  return PrepareInvite(by, "https://hub.test", "", role, valid_for_ms);
}

// Redeems `code` with a fresh device; returns the hub's reply.
HubReply TryJoin(Team& t, const std::string& folder, const std::string& code, FakeClock* clock,
                 std::unique_ptr<Replica>* out = nullptr) {
  auto r = testing::MakeReplica(TestOptions(t.dir.File(folder), clock));
  auto join = BuildJoinRequest(*r, code, folder);
  REQUIRE_MESSAGE(join.ok(), join.status().ToString());
  HubReply reply = t.hub.Send(*join);
  if (reply.status == 200) {
    const Status s = HandleJoinResponse(*r, code, reply.bytes());
    REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  if (out != nullptr) *out = std::move(r);
  return reply;
}

TEST_CASE("an invite code can be redeemed only once") {
  Team t;
  auto invite = Invite(*t.coord);
  REQUIRE(invite.ok());
  REQUIRE(t.hub.Send(invite->request).status == 200);

  std::unique_ptr<Replica> first;
  const HubReply ok = TryJoin(t, "first", invite->code, &t.clock, &first);
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  CHECK(first->team() == t.coord->team());

  std::unique_ptr<Replica> second;
  const HubReply again = TryJoin(t, "second", invite->code, &t.clock, &second);
  CHECK(again.status == 403);
  CHECK(ReplyStatus(again).code() == StatusCode::kPermissionDenied);
  CHECK(second->team().IsZero());
  // The refused device is not a member.
  auto found = t.hub.storage().FindDevice(second->device_id());
  REQUIRE(found.ok());
  CHECK(!found->has_value());
}

TEST_CASE("an expired invite is refused by the hub") {
  Team t;
  auto invite = Invite(*t.coord, /*valid_for_ms=*/60'000);
  REQUIRE(invite.ok());
  REQUIRE(t.hub.Send(invite->request).status == 200);

  SUBCASE("the device's clock is still before the expiry: the hub refuses") {
    FakeClock device_clock;
    device_clock.now_ms = t.clock.now_ms + 30'000;
    t.clock.now_ms += 120'000;
    const HubReply reply = TryJoin(t, "late", invite->code, &device_clock);
    CHECK(reply.status == 403);
    CHECK(ReplyStatus(reply).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("a new phone whose clock runs a day fast still joins with a valid code") {
    FakeClock device_clock;
    device_clock.now_ms = t.clock.now_ms + 24 * kHourMs;
    auto r = testing::MakeReplica(TestOptions(t.dir.File("fast"), &device_clock));
    auto join = BuildJoinRequest(*r, invite->code, "fast");
    REQUIRE(join.ok());  // expiry is the hub's to judge, on its clock
    const HubReply stale = t.hub.Send(*join);
    CHECK(stale.status == 401);  // the request's time is a day off: follow the hub
    FollowHubClock(*r, stale.hub_time);
    join = BuildJoinRequest(*r, invite->code, "fast");
    REQUIRE(join.ok());
    const HubReply reply = t.hub.Send(*join);
    CHECK(reply.status == 200);
    CHECK(HandleJoinResponse(*r, invite->code, reply.bytes()).ok());
  }
}

TEST_CASE("a coordinator keeps only the invites still open, and sends again those nobody used") {
  Team t;
  const auto kept_count = [&] {
    auto doc = t.coord->impl().store().GetDocument(internal::kDocOpenInvites);
    REQUIRE(doc.ok());
    REQUIRE(doc->has_value());
    auto list = internal::DecodeList(**doc);
    REQUIRE(list.ok());
    return list->size();
  };
  auto hour = Invite(*t.coord, kHourMs);
  auto day = Invite(*t.coord, 24 * kHourMs);
  REQUIRE(hour.ok());
  REQUIRE(day.ok());
  REQUIRE(t.hub.Send(day->request).status == 200);
  REQUIRE(KeepInvite(*t.coord, *hour).ok());
  REQUIRE(KeepInvite(*t.coord, *day).ok());
  CHECK(kept_count() == 2);
  // Two hours later the first has expired: keeping a third drops it, so the
  // list is never longer than the invites still open.
  t.clock.now_ms += 2 * kHourMs;
  auto third = Invite(*t.coord, kHourMs);
  REQUIRE(third.ok());
  REQUIRE(KeepInvite(*t.coord, *third).ok());
  CHECK(kept_count() == 2);
  // One is used: the other is sent again to a hub that lost it.
  std::unique_ptr<Replica> joined;
  REQUIRE(TryJoin(t, "joined", day->code, &t.clock, &joined).status == 200);
  testing::SyncAll(t.hub, *t.coord);
  auto again = InvitesToSendAgain(*t.coord);
  REQUIRE(again.ok());
  REQUIRE(again->size() == 1);
  CHECK(again->front().body == third->request.body);
  CHECK(kept_count() == 1);
}

TEST_CASE("an invite code with a damaged secret is refused and the genuine code still works") {
  Team t;
  auto invite = Invite(*t.coord);
  REQUIRE(invite.ok());
  REQUIRE(t.hub.Send(invite->request).status == 200);

  // The last 43 characters encode the secret; flip one inside it.
  std::string damaged = invite->code;
  const size_t pos = damaged.size() - 10;
  damaged[pos] = damaged[pos] == 'A' ? 'B' : 'A';
  REQUIRE(damaged != invite->code);
  // Same invite id, different secret.
  const Bytes good_raw = DecodeInviteCodeBytes(invite->code);
  const Bytes bad_raw = DecodeInviteCodeBytes(damaged);
  REQUIRE(good_raw.size() == bad_raw.size());
  REQUIRE(std::equal(good_raw.begin(), good_raw.end() - 32, bad_raw.begin()));

  auto r = testing::MakeReplica(TestOptions(t.dir.File("mallory"), &t.clock));
  auto join = BuildJoinRequest(*r, damaged, "mallory");
  if (join.ok()) {
    const HubReply reply = t.hub.Send(*join);
    CHECK(reply.status == 403);
    CHECK(ReplyStatus(reply).code() == StatusCode::kPermissionDenied);
  } else {
    CHECK(join.status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(r->team().IsZero());

  // The failed attempt did not use the invite up.
  std::unique_ptr<Replica> genuine;
  const HubReply ok = TryJoin(t, "genuine", invite->code, &t.clock, &genuine);
  CHECK_MESSAGE(ok.status == 200, ok.body);
  CHECK(genuine->team() == t.coord->team());
}

TEST_CASE("a field device cannot create invites") {
  Team t;
  auto counts_before = t.hub.storage().Counts();
  REQUIRE(counts_before.ok());
  auto invite = Invite(*t.a);  // a is a field device
  REQUIRE(invite.ok());
  const HubReply reply = t.hub.Send(invite->request);
  CHECK(reply.status == 403);
  CHECK(ReplyStatus(reply).code() == StatusCode::kPermissionDenied);
  auto counts_after = t.hub.storage().Counts();
  REQUIRE(counts_after.ok());
  CHECK(counts_after->invites_open == counts_before->invites_open);

  // Its code is worthless.
  auto r = testing::MakeReplica(TestOptions(t.dir.File("x"), &t.clock));
  auto join = BuildJoinRequest(*r, invite->code, "x");
  REQUIRE(join.ok());
  CHECK(t.hub.Send(*join).status == 403);
}

TEST_CASE("garbage is not an invite code") {
  for (const std::string& code :
       {std::string(), std::string("hello"), std::string("enlace1."), std::string("enlace1.!!!!"),
        std::string("enlace2.AAAAAAAA"), std::string("enlace1.AAAA"),
        std::string("enlace1.") + std::string(5000, 'A')}) {
    CAPTURE(code.substr(0, 40));
    auto info = ParseInviteCode(code);
    CHECK(!info.ok());
    CHECK(info.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("an invite code survives stray whitespace and tells its hub and expiry") {
  Team t;
  auto invite = Invite(*t.coord, 2 * kHourMs);
  REQUIRE(invite.ok());
  std::string pasted = " " + invite->code.substr(0, 20) + "\n" + invite->code.substr(20) + "\r\n";
  auto info = ParseInviteCode(pasted);
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  CHECK(info->hub_url == "https://hub.test");
  CHECK(info->expires_ms == t.clock.now_ms + 2 * kHourMs);
  CHECK(info->expires_ms == invite->expires_ms);
}

TEST_CASE("the hub stores neither the team key nor the invite secret") {
  Team t;
  auto invite = Invite(*t.coord);
  REQUIRE(invite.ok());
  REQUIRE(t.hub.Send(invite->request).status == 200);
  auto sent = DecodeCreateInviteRequest(invite->request.body);
  REQUIRE(sent.ok());

  const Bytes raw = DecodeInviteCodeBytes(invite->code);
  const std::string secret(raw.end() - 32, raw.end());
  const std::string invite_id(raw.end() - 48, raw.end() - 32);
  REQUIRE(std::string(sent->invite_id.begin(), sent->invite_id.end()) == invite_id);

  // Positive controls: the invite id and the opaque envelope are stored.
  const std::string envelope(sent->envelope.begin(), sent->envelope.end());
  REQUIRE(AnyFileContains(t.hub.data_dir(), invite_id));
  REQUIRE(AnyFileContains(t.hub.data_dir(), envelope));

  CheckNoFileContains(t.hub.data_dir(), secret, "invite secret");
  CheckNoFileContains(t.hub.data_dir(), invite->code, "invite code");
  const auto& keys = t.coord->impl().vault().secrets().team_keys;
  REQUIRE(!keys.empty());
  for (const auto& [version, key] : keys) {
    REQUIRE(key.size() == 32);
    const std::string key_bytes(key.data(), key.data() + key.size());
    CheckNoFileContains(t.hub.data_dir(), key_bytes, "team key");
    CHECK(envelope.find(key_bytes) == std::string::npos);
  }
  // Still true after the invite is redeemed.
  std::unique_ptr<Replica> joined;
  REQUIRE(TryJoin(t, "joined", invite->code, &t.clock, &joined).status == 200);
  CheckNoFileContains(t.hub.data_dir(), secret, "invite secret");
  for (const auto& [version, key] : keys) {
    CheckNoFileContains(t.hub.data_dir(), std::string(key.data(), key.data() + key.size()),
                        "team key");
  }
}

// ---- registration -------------------------------------------------------------------------

TEST_CASE("a bootstrap token registers one team only, and an unknown token none") {
  TempDir dir;
  FakeClock clock;
  InProcessHub hub(dir.File("hub"), &clock);
  const std::string token = hub.NewBootstrapToken();

  auto first = testing::MakeReplica(TestOptions(dir.File("first"), &clock));
  REQUIRE(CreateTeam(*first).ok());
  auto req = BuildRegisterTeamRequest(*first, "Tlaxcala", "coordinator", token);
  REQUIRE(req.ok());
  const HubReply ok = hub.Send(*req);
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  REQUIRE(HandleMembersResponse(*first, ok.bytes()).ok());

  auto second = testing::MakeReplica(TestOptions(dir.File("second"), &clock));
  REQUIRE(CreateTeam(*second).ok());
  auto again = BuildRegisterTeamRequest(*second, "Puebla", "coordinator", token);
  REQUIRE(again.ok());
  const HubReply reused = hub.Send(*again);
  CHECK(reused.status == 403);
  CHECK(ReplyStatus(reused).code() == StatusCode::kPermissionDenied);

  auto unknown = BuildRegisterTeamRequest(*second, "Puebla", "coordinator", "tok-made-up");
  REQUIRE(unknown.ok());
  const HubReply refused = hub.Send(*unknown);
  CHECK(refused.status == 403);
  CHECK(ReplyStatus(refused).code() == StatusCode::kPermissionDenied);

  auto counts = hub.storage().Counts();
  REQUIRE(counts.ok());
  CHECK(counts->teams == 1);
  CHECK(counts->devices == 1);
  auto found = hub.storage().FindDevice(second->device_id());
  REQUIRE(found.ok());
  CHECK(!found->has_value());
}

}  // namespace
}  // namespace enlace

namespace enlace {
namespace {

TEST_CASE("a device restored from an old backup cannot reuse a write number on the hub") {
  Team t;
  // Back up a's folder, then a writes and syncs.
  t.a.reset();
  std::filesystem::copy(t.dir.File("a"), t.dir.File("a-backup"),
                        std::filesystem::copy_options::recursive);
  auto a = Replica::Open(TestOptions(t.dir.File("a"), &t.clock), "correct horse");
  REQUIRE(a.ok());
  auto first = (*a)->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(first.ok());
  testing::SyncAll(t.hub, **a);
  const uint64_t before = HubLogRows(t.hub);

  // The restored copy makes a different write with the same counter.
  auto restored = Replica::Open(TestOptions(t.dir.File("a-backup"), &t.clock), "correct horse");
  REQUIRE(restored.ok());
  REQUIRE((*restored)->Put("cases", std::nullopt, {{"status", "\"Closed\""}}).ok());
  SyncSession session(**restored);
  auto req = session.NextRequest();
  REQUIRE(req.ok());
  const HubReply reply = t.hub.Send(*req);
  CHECK(reply.status == 409);
  CHECK(ReplyStatus(reply).message().find("backup") != std::string::npos);
  CHECK(HubLogRows(t.hub) == before);
  CHECK(Pending(**restored) == 1);  // not acknowledged, not silently dropped
  // The team still sees only the original write.
  testing::SyncAll(t.hub, *t.b);
  CHECK(t.b->Get("cases", *first).ok());
  CHECK(t.b->List("cases")->size() == 1);
}

}  // namespace
}  // namespace enlace
