// The hub's per-request work (issue 6, hub speed): a sync's replay nonce is
// stored in the sync's own transaction, device lookups are remembered but
// follow every registry change at once, and a large push verifies its
// writes' signatures in parallel yet answers the same first error as a
// serial check would.
#include <doctest/doctest.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"

namespace enlace {
namespace {

using testing::ErrorOf;
using testing::InProcessHub;
using testing::NextSyncRequest;
using testing::TestOptions;

struct Fixture : testing::HubTeam {
  uint64_t HubWrites() {
    auto c = hub.storage().Counts();
    REQUIRE(c.ok());
    return c->writes;
  }

  // A sync request from `signer` carrying `writes`, validly signed now.
  hub::HttpRequest SignedPush(Replica& signer, const std::vector<Bytes>& writes) {
    SyncRequest body;
    body.writes = writes;
    return testing::SignedSyncRequest(signer, Encode(body), clock.now_ms);
  }

  // `n` new records on `device`, returned as its encoded pending writes.
  std::vector<Bytes> NewWrites(Replica& device, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(device.Put("encounters", std::nullopt, {{"n", std::to_string(i)}}).ok());
    }
    std::vector<Bytes> out = testing::PendingWritesOf(device);
    REQUIRE(out.size() == n);
    return out;
  }
};

Bytes WithBadSignature(const Bytes& encoded) {
  auto w = Write::Decode(encoded);
  REQUIRE(w.ok());
  w->signature[7] ^= 0x01;
  return w->Encode();
}

Bytes ForOtherTeam(const Bytes& encoded) {
  auto w = Write::Decode(encoded);
  REQUIRE(w.ok());
  w->team = TeamId::Random();
  return w->Encode();
}

// Re-signed by `signer` with a context that claims `claimed` of `other`.
Bytes ClaimingUnseen(Replica& signer, const Bytes& encoded, const DeviceId& other,
                     uint64_t claimed) {
  auto w = Write::Decode(encoded);
  REQUIRE(w.ok());
  w->context.Add(Dot{other, claimed});
  w->signature =
      internal::Sign(signer.impl().vault().secrets().signing.secret_key, w->SignedBytes());
  return w->Encode();
}

// ---- one commit per sync, replays still refused ------------------------------------------

TEST_CASE("a sync's nonce is stored with its writes: replayed after a hub restart it is refused") {
  Fixture f;
  REQUIRE(f.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  const hub::HttpRequest req = NextSyncRequest(*f.a);
  REQUIRE(f.hub.Raw(req).status == 200);
  const uint64_t stored = f.HubWrites();
  CHECK(stored == 1);

  // A second hub on the same folder: nothing remembered in memory.
  InProcessHub again(f.hub.data_dir(), &f.clock);
  const auto replay = again.Raw(req);
  CHECK(replay.status == 401);
  CHECK(ErrorOf(replay).find("replay") != std::string::npos);
  CHECK(f.HubWrites() == stored);
}

TEST_CASE("a sync refused before storage keeps nothing; its retry with a new nonce is served") {
  Fixture f;
  auto writes = f.NewWrites(*f.a, 3);
  std::vector<Bytes> bad = writes;
  bad[1] = WithBadSignature(bad[1]);
  const auto refused = f.hub.Raw(f.SignedPush(*f.a, bad));
  CHECK(refused.status == 400);
  CHECK(f.HubWrites() == 0);
  const auto ok = f.hub.Raw(f.SignedPush(*f.a, writes));
  CHECK(ok.status == 200);
  CHECK(f.HubWrites() == 3);
}

// ---- remembered devices follow the registry -----------------------------------------------

TEST_CASE("a device revoked after the hub looked it up is refused at once, and its replay too") {
  Fixture f;
  REQUIRE(f.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  testing::SyncAll(f.hub, *f.a);  // the hub has looked `a` up
  testing::SyncAll(f.hub, *f.coord);
  REQUIRE(RevokeDevice(*f.coord, f.a->device_id()).ok());
  const SyncProgress p = testing::SyncAll(f.hub, *f.coord);
  REQUIRE(p.registry_stored);

  const hub::HttpRequest req = NextSyncRequest(*f.a);
  const auto revoked = f.hub.Raw(req);
  CHECK(revoked.status == 403);
  CHECK(revoked.content_type == "application/octet-stream");  // the RevokedNotice
  const auto replay = f.hub.Raw(req);
  CHECK(replay.status == 401);
  CHECK(ErrorOf(replay).find("replay") != std::string::npos);
}

TEST_CASE("a pending device the hub looked up may sync once a coordinator approves it") {
  Fixture f;
  REQUIRE(SetApprovalRequired(*f.coord, true).ok());
  REQUIRE(testing::SyncAll(f.hub, *f.coord).registry_stored);
  auto c = testing::JoinDevice(f.hub, *f.coord, TestOptions(f.dir.File("c"), &f.clock), "carla");
  const auto waiting = f.hub.Raw(NextSyncRequest(*c));
  CHECK(waiting.status == 403);
  CHECK(ErrorOf(waiting).find("approval") != std::string::npos);

  testing::SyncAll(f.hub, *f.coord);  // learns of c's admission
  REQUIRE(ApproveDevice(*f.coord, c->device_id()).ok());
  REQUIRE(testing::SyncAll(f.hub, *f.coord).registry_stored);
  CHECK(f.hub.Raw(NextSyncRequest(*c)).status == 200);
}

// ---- parallel signature checks, serial answers --------------------------------------------

TEST_CASE("a large push is checked in parallel and answers the first bad write in order") {
  Fixture f;
  constexpr size_t kWrites = 100;  // above the parallel threshold
  const auto writes = f.NewWrites(*f.a, kWrites);

  SUBCASE("a bad signature before a write for another team: the signature answers") {
    auto bad = writes;
    bad[70] = WithBadSignature(bad[70]);
    bad[80] = ForOtherTeam(bad[80]);
    const auto r = f.hub.Raw(f.SignedPush(*f.a, bad));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("another team") == std::string::npos);
  }
  SUBCASE("a write for another team before a bad signature: the team answers") {
    auto bad = writes;
    bad[40] = ForOtherTeam(bad[40]);
    bad[90] = WithBadSignature(bad[90]);
    const auto r = f.hub.Raw(f.SignedPush(*f.a, bad));
    CHECK(r.status == 403);
    CHECK(ErrorOf(r).find("another team") != std::string::npos);
  }
  SUBCASE("a bad signature before an undecodable write: the signature answers") {
    auto bad = writes;
    bad[3] = WithBadSignature(bad[3]);
    bad[60] = Bytes{1, 2, 3};
    const auto r = f.hub.Raw(f.SignedPush(*f.a, bad));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("bad write") == std::string::npos);
  }
  SUBCASE("an undecodable write before a bad signature: the decoding answers") {
    auto bad = writes;
    bad[10] = Bytes{1, 2, 3};
    bad[50] = WithBadSignature(bad[50]);
    const auto r = f.hub.Raw(f.SignedPush(*f.a, bad));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("bad write") != std::string::npos);
  }
  SUBCASE("a context claiming writes the hub never received is refused, late in the batch") {
    auto bad = writes;
    bad[95] = ClaimingUnseen(*f.a, bad[95], f.b->device_id(), 7);
    const auto r = f.hub.Raw(f.SignedPush(*f.a, bad));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("never received") != std::string::npos);
  }
  SUBCASE("a context claiming writes the hub holds is accepted") {
    REQUIRE(f.b->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
    testing::SyncAll(f.hub, *f.b);
    auto good = writes;
    good[95] = ClaimingUnseen(*f.a, good[95], f.b->device_id(), 1);
    const auto r = f.hub.Raw(f.SignedPush(*f.a, good));
    CHECK(r.status == 200);
    CHECK(f.HubWrites() == kWrites + 1);
    return;
  }
  // Every refusal above stored nothing, and the good batch then goes through.
  CHECK(f.HubWrites() == 0);
  const auto r = f.hub.Raw(f.SignedPush(*f.a, writes));
  CHECK(r.status == 200);
  CHECK(f.HubWrites() == kWrites);
}

}  // namespace
}  // namespace enlace
