// Devices of one team sync through the real hub handler and storage, in
// process (the in-memory transport of DESIGN §1).
#include <doctest/doctest.h>

#include "enlace/team.h"
#include "hub_fixture.h"

namespace enlace {
namespace {

using testing::FakeClock;
using testing::InProcessHub;
using testing::TempDir;
using testing::TestOptions;

TEST_CASE("two devices that edit offline converge through the hub, conflicts included") {
  TempDir dir;
  FakeClock clock;
  InProcessHub hub(dir.File("hub"), &clock);
  auto coord = testing::InitCoordinator(hub, TestOptions(dir.File("coord"), &clock));
  auto a = testing::JoinDevice(hub, *coord, TestOptions(dir.File("a"), &clock), "ana");
  auto b = testing::JoinDevice(hub, *coord, TestOptions(dir.File("b"), &clock), "beto");

  auto id = a->Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", "30"}});
  REQUIRE(id.ok());
  testing::SyncAll(hub, *a);
  testing::SyncAll(hub, *b);
  REQUIRE(b->Get("cases", *id).ok());

  clock.now_ms += 1000;
  REQUIRE(a->Put("cases", *id, {{"status", "\"FollowUp\""}, {"age", "31"}}).ok());
  REQUIRE(b->Put("cases", *id,
                 {{"status", "\"ClosedReferred\""}, {"age", "32"}, {"referral", "\"DIF\""}})
              .ok());
  auto pa = testing::SyncAll(hub, *a);
  CHECK(pa.sent == 1);
  auto pb = testing::SyncAll(hub, *b);
  CHECK(pb.sent == 1);
  CHECK(pb.received == 1);
  testing::SyncAll(hub, *a);
  testing::SyncAll(hub, *coord);

  CHECK(*a->DumpState() == *b->DumpState());
  CHECK(*coord->DumpState() == *b->DumpState());
  auto conflicts = coord->Conflicts();
  REQUIRE(conflicts.ok());
  CHECK(conflicts->size() == 2);  // status and age

  REQUIRE(coord->Resolve("cases", *id, "status", "\"ClosedReferred\"").ok());
  REQUIRE(coord->Resolve("cases", *id, "age", "31").ok());
  for (Replica* r : {coord.get(), a.get(), b.get()}) testing::SyncAll(hub, *r);
  for (Replica* r : {coord.get(), a.get(), b.get()}) {
    CHECK(r->Conflicts()->empty());
    auto rec = r->Get("cases", *id);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"ClosedReferred\"");
    CHECK(rec->fields.at("referral").value == "\"DIF\"");
  }
  CHECK(*a->DumpState() == *coord->DumpState());
}

}  // namespace
}  // namespace enlace

namespace enlace {
namespace {

TEST_CASE("a team registration whose answer was lost can be retried by the same device only") {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::InProcessHub hub(dir.File("hub"), &clock);
  auto r = testing::MakeReplica(testing::TestOptions(dir.File("coord"), &clock));
  REQUIRE(CreateTeam(*r).ok());
  const std::string token = hub.NewBootstrapToken();
  auto first = BuildRegisterTeamRequest(*r, "Tlaxcala", "coord", token);
  REQUIRE(first.ok());
  REQUIRE(hub.Send(*first).status == 200);  // the answer is lost
  auto retry = BuildRegisterTeamRequest(*r, "Tlaxcala", "coord", token);
  REQUIRE(retry.ok());
  const testing::HubReply again = hub.Send(*retry);
  REQUIRE_MESSAGE(again.status == 200, again.body);
  REQUIRE(HandleMembersResponse(*r, again.bytes()).ok());

  // Another device with the used token is still refused.
  auto other = testing::MakeReplica(testing::TestOptions(dir.File("other"), &clock));
  REQUIRE(CreateTeam(*other).ok());
  auto stolen = BuildRegisterTeamRequest(*other, "X", "x", token);
  REQUIRE(stolen.ok());
  CHECK(hub.Send(*stolen).status == 403);
}

}  // namespace
}  // namespace enlace
