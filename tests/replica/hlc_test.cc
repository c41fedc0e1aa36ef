// The hybrid logical clock (enlace/hlc.h) with an injected wall clock: it
// never goes backwards (wall clock jumps, counter overflow, restarts) and it
// refuses remote timestamps too far in the future.
#include "enlace/hlc.h"

#include <doctest/doctest.h>

#include <memory>
#include <optional>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "enlace/write.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::FakeClock;

constexpr uint64_t kMinute = 60 * 1000;
constexpr uint64_t kHour = 60 * kMinute;

// A clock over `fake` with the default drift limit (5 minutes).
HybridClock MakeClock(FakeClock& fake, HlcTimestamp last = {}) {
  HlcOptions o;
  o.wall_clock = fake.AsWallClock();
  return HybridClock(o, last);
}

TEST_CASE("Now follows the wall clock when it moves forward") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  const HlcTimestamp t1 = clock.Now();
  CHECK(t1 == HlcTimestamp::From(fake.now_ms, 0));
  fake.now_ms += 5;
  const HlcTimestamp t2 = clock.Now();
  CHECK(t2 == HlcTimestamp::From(fake.now_ms, 0));
  CHECK(clock.last() == t2);
  CHECK(clock.WallMs() == fake.now_ms);
}

TEST_CASE("Now is strictly increasing while the wall clock stands still") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  HlcTimestamp previous = clock.Now();
  for (int i = 1; i <= 1000; ++i) {
    const HlcTimestamp t = clock.Now();
    REQUIRE(t > previous);
    CHECK(t.physical_ms() == fake.now_ms);
    CHECK(t.logical() == i);
    previous = t;
  }
}

TEST_CASE("Now keeps increasing when the wall clock jumps back") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  const uint64_t start = fake.now_ms;
  const HlcTimestamp before = clock.Now();
  fake.now_ms -= kHour;
  const HlcTimestamp after = clock.Now();
  CHECK(after > before);
  CHECK(after.physical_ms() == start);  // the clock waits for the wall to catch up
  CHECK(after.logical() == 1);
  fake.now_ms = start + 1;
  CHECK(clock.Now() == HlcTimestamp::From(start + 1, 0));
}

TEST_CASE("a logical counter overflow rolls into the physical part") {
  FakeClock fake;
  const uint64_t p = fake.now_ms;
  SUBCASE("from a restored last timestamp") {
    HybridClock clock = MakeClock(fake, HlcTimestamp::From(p, 0xffff));
    const HlcTimestamp t = clock.Now();
    CHECK(t == HlcTimestamp::From(p + 1, 0));
    CHECK(t > HlcTimestamp::From(p, 0xffff));
  }
  SUBCASE("by issuing 65536 timestamps in one millisecond") {
    HybridClock clock = MakeClock(fake);
    HlcTimestamp previous = clock.Now();
    for (int i = 0; i < 0xffff; ++i) {
      const HlcTimestamp t = clock.Now();
      REQUIRE(t > previous);
      previous = t;
    }
    CHECK(previous == HlcTimestamp::From(p, 0xffff));
    const HlcTimestamp next = clock.Now();
    CHECK(next == HlcTimestamp::From(p + 1, 0));
    CHECK(next > previous);
  }
}

TEST_CASE(
    "a clock restored with a last timestamp ahead of the wall never issues anything below "
    "it") {
  FakeClock fake;
  const HlcTimestamp last = HlcTimestamp::From(fake.now_ms + kHour, 42);
  HybridClock clock = MakeClock(fake, last);
  CHECK(clock.last() == last);
  CHECK(clock.Now() == HlcTimestamp::From(fake.now_ms + kHour, 43));
}

TEST_CASE("observing a remote timestamp ahead within the drift limit moves the clock past it") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  (void)clock.Now();
  const HlcTimestamp remote = HlcTimestamp::From(fake.now_ms + 4 * kMinute, 7);
  REQUIRE(clock.Observe(remote).ok());
  CHECK(clock.last() == remote);
  const HlcTimestamp next = clock.Now();
  CHECK(next > remote);
  CHECK(next == HlcTimestamp::From(fake.now_ms + 4 * kMinute, 8));
}

TEST_CASE("observing a remote timestamp behind the clock changes nothing") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  const HlcTimestamp mine = clock.Now();
  REQUIRE(clock.Observe(HlcTimestamp::From(fake.now_ms - kHour, 9)).ok());
  CHECK(clock.last() == mine);
  CHECK(clock.Now() == HlcTimestamp{mine.value + 1});
}

TEST_CASE(
    "a remote timestamp beyond the drift limit is kInvalidArgument and leaves the clock "
    "unchanged") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  const HlcTimestamp mine = clock.Now();
  const uint64_t limit = HlcOptions().max_future_drift_ms;
  for (const HlcTimestamp remote :
       {HlcTimestamp::From(fake.now_ms + limit + 1, 0), HlcTimestamp::From(fake.now_ms + kHour, 0),
        HlcTimestamp::From(fake.now_ms + 24 * kHour, 0xffff), HlcTimestamp{UINT64_MAX}}) {
    CAPTURE(remote.value);
    const Status s = clock.Observe(remote);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(s.message().empty());
    CHECK(clock.last() == mine);
  }
  CHECK(clock.Now() == HlcTimestamp{mine.value + 1});
}

TEST_CASE("the drift limit is inclusive and configurable") {
  FakeClock fake;
  HlcOptions o;
  o.wall_clock = fake.AsWallClock();
  o.max_future_drift_ms = 1000;
  HybridClock clock(o);
  CHECK(clock.Observe(HlcTimestamp::From(fake.now_ms + 1000, 0xffff)).ok());
  CHECK(clock.Observe(HlcTimestamp::From(fake.now_ms + 1001, 0)).code() ==
        StatusCode::kInvalidArgument);
  o.max_future_drift_ms = 0;
  HybridClock strict(o);
  CHECK(strict.Observe(HlcTimestamp::From(fake.now_ms, 5)).ok());
  CHECK(strict.Observe(HlcTimestamp::From(fake.now_ms + 1, 0)).code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("CheckDrift answers like Observe without moving the clock") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  const HlcTimestamp mine = clock.Now();
  const HlcTimestamp near = HlcTimestamp::From(fake.now_ms + kMinute, 0);
  const HlcTimestamp far = HlcTimestamp::From(fake.now_ms + kHour, 0);
  CHECK(clock.CheckDrift(near).ok());
  CHECK(clock.CheckDrift(far).code() == StatusCode::kInvalidArgument);
  CHECK(clock.CheckDrift(HlcTimestamp{}).ok());
  CHECK(clock.last() == mine);
  // The same remote becomes acceptable once the wall clock has caught up.
  fake.now_ms += kHour;
  CHECK(clock.CheckDrift(far).ok());
}

TEST_CASE("a wall clock offset shifts Now, WallMs and the drift window") {
  FakeClock fake;
  HybridClock clock = MakeClock(fake);
  CHECK(clock.wall_clock_offset_ms() == 0);
  const HlcTimestamp far = HlcTimestamp::From(fake.now_ms + kHour, 0);
  REQUIRE(clock.CheckDrift(far).code() == StatusCode::kInvalidArgument);

  SUBCASE("a device whose clock is an hour behind the hub") {
    clock.SetWallClockOffsetMs(static_cast<int64_t>(kHour));
    CHECK(clock.wall_clock_offset_ms() == static_cast<int64_t>(kHour));
    CHECK(clock.WallMs() == fake.now_ms + kHour);
    CHECK(clock.CheckDrift(far).ok());
    CHECK(clock.Now() == HlcTimestamp::From(fake.now_ms + kHour, 0));
  }
  SUBCASE("a device whose clock is an hour ahead of the hub") {
    const HlcTimestamp first = clock.Now();
    clock.SetWallClockOffsetMs(-static_cast<int64_t>(kHour));
    CHECK(clock.WallMs() == fake.now_ms - kHour);
    // Accepts less of the future than before...
    CHECK(clock.CheckDrift(HlcTimestamp::From(fake.now_ms, 0)).code() ==
          StatusCode::kInvalidArgument);
    // ...and still never goes back below what it already issued.
    CHECK(clock.Now() > first);
  }
  SUBCASE("a negative offset larger than the wall clock saturates at zero") {
    clock.SetWallClockOffsetMs(-static_cast<int64_t>(fake.now_ms) - 1);
    CHECK(clock.WallMs() == 0);
  }
}

TEST_CASE("a clock without an injected wall clock uses the system clock") {
  HybridClock clock(HlcOptions{});
  const uint64_t before = SystemWallClockMs();
  const HlcTimestamp t = clock.Now();
  const uint64_t after = SystemWallClockMs();
  CHECK(t.physical_ms() >= before);
  CHECK(t.physical_ms() <= after);
}

TEST_CASE("HlcTimestamp packs 48 physical and 16 logical bits and orders as an integer") {
  const HlcTimestamp t = HlcTimestamp::From(0x123456789abc, 0xdef0);
  CHECK(t.value == 0x123456789abcdef0ULL);
  CHECK(t.physical_ms() == 0x123456789abc);
  CHECK(t.logical() == 0xdef0);
  CHECK(HlcTimestamp::From(5, 0xffff) < HlcTimestamp::From(6, 0));
  CHECK(HlcTimestamp::From(5, 1) > HlcTimestamp::From(5, 0));
}

// ---- Persistence across restarts (Replica level) --------------------------------------

// The one pending write of `r`, decoded.
Write OnlyPendingWrite(const Replica& r) {
  auto w = Write::Decode(testing::OnlyPendingWrite(r));
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  return std::move(w).value();
}

TEST_CASE("the HLC survives a restart with the wall clock set back an hour") {
  testing::TempDir dir;
  FakeClock fake;
  const ReplicaOptions options = testing::TestOptions(dir.File("r"), &fake);
  RecordId id;
  Write first;
  {
    auto r = testing::MakeReplica(options, "correct horse");
    REQUIRE(CreateTeam(*r).ok());
    auto put = r->Put("cases", std::nullopt, {{"status", "\"Active\""}});
    REQUIRE(put.ok());
    id = *put;
    first = OnlyPendingWrite(*r);
    CHECK(first.hlc.physical_ms() == fake.now_ms);
  }  // closed

  fake.now_ms -= kHour;
  auto reopened = Replica::Open(options, "correct horse");
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  Replica& r = **reopened;
  CHECK(r.clock().last() >= first.hlc);
  REQUIRE(r.Put("cases", id, {{"status", "\"FollowUp\""}}).ok());

  // The first write was superseded before it was sent: its number goes as a
  // void, then the second, with a later HLC and a context covering the first.
  const auto pending = testing::PendingWritesOf(r);
  REQUIRE(pending.size() == 2);
  CHECK(Write::Decode(pending[0])->kind == WriteKind::kVoid);
  auto decoded = Write::Decode(pending[1]);
  REQUIRE(decoded.ok());
  const Write second = *decoded;
  CHECK(second.dot.counter == first.dot.counter + 1);
  CHECK(second.hlc > first.hlc);
  CHECK(second.context.Covers(first.dot));

  auto rec = r.Get("cases", id);
  REQUIRE(rec.ok());
  const FieldValue& status = rec->fields.at("status");
  CHECK_FALSE(status.conflict());
  REQUIRE(status.siblings.size() == 1);
  CHECK(status.siblings.front().dot == second.dot);
  CHECK(status.value == "\"FollowUp\"");
  auto conflicts = r.Conflicts();
  REQUIRE(conflicts.ok());
  CHECK(conflicts->empty());
}

TEST_CASE("a remote timestamp observed by a replica survives a restart") {
  testing::TempDir dir;
  FakeClock clock_a;
  FakeClock clock_b;
  clock_a.now_ms += 4 * kMinute;  // a runs ahead, within b's drift limit
  const ReplicaOptions options_b = testing::TestOptions(dir.File("b"), &clock_b);
  auto a = testing::MakeReplica(testing::TestOptions(dir.File("a"), &clock_a));
  REQUIRE(CreateTeam(*a).ok());
  HlcTimestamp remote;
  {
    auto b = testing::MakeReplica(options_b);
    testing::JoinTeam(*a, *b);
    auto id = a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
    REQUIRE(id.ok());
    const Bytes write = testing::OnlyPendingWrite(*a);
    remote = Write::Decode(write)->hlc;
    REQUIRE(b->ApplyRemote(write).ok());
  }
  auto b = Replica::Open(options_b, "correct horse");
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK((*b)->clock().last() >= remote);
  REQUIRE((*b)->Put("cases", std::nullopt, {{"status", "\"New\""}}).ok());
  CHECK(OnlyPendingWrite(**b).hlc > remote);
}

}  // namespace
}  // namespace enlace
