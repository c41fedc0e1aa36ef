// Bad input straight into the hub's request handler (hub.Raw: the pure
// HttpRequest -> HttpResponse function over the real SQLite storage). Every
// refusal is clear, changes nothing and leaves the hub serving (DESIGN §4,
// invariant 4).
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <array>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "enlace/registry.h"
#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"

namespace enlace {
namespace {

using testing::ErrorOf;
using testing::FakeClock;
using testing::InProcessHub;
using testing::NextSyncRequest;
using testing::PendingWritesOf;
using testing::SignRequest;
using testing::TempDir;
using testing::TestOptions;

struct Fixture : testing::HubTeam {
  // a puts a new record: its signed sync request pushing it.
  hub::HttpRequest NewRecordSync() {
    REQUIRE(a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
    return NextSyncRequest(*a);
  }

  // Calls the handler; every response must carry the hub's clock.
  hub::HttpResponse Call(const hub::HttpRequest& req) {
    hub::HttpResponse r = hub.Raw(req);
    auto it = r.headers.find(kHeaderHubTime);
    CHECK_MESSAGE(it != r.headers.end(), req.method << " " << req.target << " -> " << r.status);
    if (it != r.headers.end()) CHECK(it->second == std::to_string(clock.now_ms));
    return r;
  }

  // A sync request from `signer` with `body`, validly signed now.
  hub::HttpRequest SignedSync(Replica& signer, Bytes body) {
    return testing::SignedSyncRequest(signer, body, clock.now_ms);
  }

  hub::HubCounts Counts() {
    auto c = hub.storage().Counts();
    REQUIRE(c.ok());
    return *c;
  }

  // The hub still serves: a normal sync of a new write goes through.
  void CheckStillServing() {
    REQUIRE(a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
    const SyncProgress p = testing::SyncAll(hub, *a);
    CHECK(p.sent >= 1);
    auto pending = a->PendingCount();
    REQUIRE(pending.ok());
    CHECK(*pending == 0);
  }
};

bool SameCounts(const hub::HubCounts& x, const hub::HubCounts& y) {
  return x.teams == y.teams && x.devices == y.devices && x.writes == y.writes &&
         x.invites_open == y.invites_open;
}

// ---- authentication -----------------------------------------------------------------

TEST_CASE("an unsigned sync request is refused with 401") {
  Fixture f;
  hub::HttpRequest req = f.NewRecordSync();
  const auto before = f.Counts();
  for (const char* header : {kHeaderDevice, kHeaderTime, kHeaderNonce, kHeaderSignature}) {
    CAPTURE(header);
    hub::HttpRequest missing = req;
    missing.headers.erase(header);
    const auto r = f.Call(missing);
    CHECK(r.status == 401);
    CHECK(!ErrorOf(r).empty());
  }
  hub::HttpRequest bare = req;
  bare.headers.clear();
  CHECK(f.Call(bare).status == 401);
  CHECK(SameCounts(f.Counts(), before));
  // The signed original still works: the refusals did not burn its nonce.
  CHECK(f.Call(req).status == 200);
}

TEST_CASE("an altered signature, body, path or device is refused with 401") {
  Fixture f;
  const hub::HttpRequest req = f.NewRecordSync();
  const auto before = f.Counts();

  SUBCASE("signature") {
    hub::HttpRequest bad = req;
    std::string& sig = bad.headers[kHeaderSignature];
    sig[10] = sig[10] == '0' ? '1' : '0';
    const auto r = f.Call(bad);
    CHECK(r.status == 401);
    CHECK(ErrorOf(r).find("signature") != std::string::npos);
  }
  SUBCASE("malformed signature header") {
    hub::HttpRequest bad = req;
    bad.headers[kHeaderSignature] = "zz";
    CHECK(f.Call(bad).status == 401);
  }
  SUBCASE("body") {
    hub::HttpRequest bad = req;
    bad.body.back() = static_cast<char>(bad.body.back() ^ 1);
    CHECK(f.Call(bad).status == 401);
  }
  SUBCASE("time") {
    hub::HttpRequest bad = req;
    bad.headers[kHeaderTime] = std::to_string(f.clock.now_ms + 1);
    CHECK(f.Call(bad).status == 401);
  }
  SUBCASE("nonce") {
    hub::HttpRequest bad = req;
    std::string& nonce = bad.headers[kHeaderNonce];
    nonce[0] = nonce[0] == '0' ? '1' : '0';
    CHECK(f.Call(bad).status == 401);
  }
  SUBCASE("claimed by another member") {
    hub::HttpRequest bad = req;
    bad.headers[kHeaderDevice] = f.b->device_id().ToHex();
    CHECK(f.Call(bad).status == 401);
  }
  CHECK(SameCounts(f.Counts(), before));
  CHECK(f.Call(req).status == 200);
}

TEST_CASE("a request whose time is ten minutes off the hub's clock is refused with 401") {
  Fixture f;
  hub::HttpRequest req = f.NewRecordSync();
  const auto before = f.Counts();
  for (int64_t skew : {-10 * 60 * 1000, 10 * 60 * 1000}) {
    CAPTURE(skew);
    SignRequest(*f.a, req, static_cast<uint64_t>(static_cast<int64_t>(f.clock.now_ms) + skew));
    const auto r = f.Call(req);
    CHECK(r.status == 401);
    CHECK(ErrorOf(r).find("clock") != std::string::npos);
  }
  CHECK(SameCounts(f.Counts(), before));
  // Four minutes off is within the freshness window.
  SignRequest(*f.a, req, f.clock.now_ms - 4 * 60 * 1000);
  CHECK(f.Call(req).status == 200);
}

TEST_CASE("a validly signed request from an unregistered device is refused with 403") {
  Fixture f;
  auto stranger = testing::MakeReplica(TestOptions(f.dir.File("stranger"), &f.clock));
  REQUIRE(CreateTeam(*stranger).ok());
  REQUIRE(stranger->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  const auto before = f.Counts();
  const auto r = f.Call(NextSyncRequest(*stranger));
  CHECK(r.status == 403);
  CHECK(ErrorOf(r).find("unknown device") != std::string::npos);
  CHECK(SameCounts(f.Counts(), before));

  // Nor can it claim to be in the team by using the team's id.
  auto stranger2 = testing::MakeReplica(TestOptions(f.dir.File("stranger2"), &f.clock));
  auto sealed = SealTeamKeysFor(*f.coord, stranger2->public_keys().encryption);
  REQUIRE(sealed.ok());
  REQUIRE(AcceptTeamKeys(*stranger2, *sealed).ok());
  REQUIRE(stranger2->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  CHECK(f.Call(NextSyncRequest(*stranger2)).status == 403);
  CHECK(SameCounts(f.Counts(), before));
}

// ---- malformed bodies -------------------------------------------------------------------

TEST_CASE("malformed sync bodies from a registered device are refused with 400") {
  Fixture f;
  const hub::HttpRequest valid = f.NewRecordSync();
  const Bytes body(valid.body.begin(), valid.body.end());
  const auto before = f.Counts();

  SUBCASE("garbage") {
    for (const std::string& garbage :
         {std::string(), std::string("x"), std::string("GET / HTTP/1.1\r\n\r\n"),
          std::string(1000, '\xff'), std::string(37, '\0')}) {
      const auto r = f.Call(f.SignedSync(*f.a, Bytes(garbage.begin(), garbage.end())));
      CHECK(r.status == 400);
      CHECK(!ErrorOf(r).empty());
    }
  }
  SUBCASE("every truncation of a valid body") {
    REQUIRE(body.size() > 40);
    for (size_t len = 0; len < body.size(); ++len) {
      CAPTURE(len);
      const auto r = f.Call(f.SignedSync(*f.a, Bytes(body.begin(), body.begin() + len)));
      CHECK(r.status == 400);
    }
  }
  SUBCASE("trailing bytes") {
    Bytes longer = body;
    longer.push_back(0);
    CHECK(f.Call(f.SignedSync(*f.a, longer)).status == 400);
  }
  SUBCASE("wrong magic") {
    Bytes bad = body;
    bad[1] = 'X';  // byte 0 is the archive's endianness marker, then "ENLC"
    const auto r = f.Call(f.SignedSync(*f.a, bad));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("not an enlace message") != std::string::npos);
  }
  SUBCASE("wrong message type") {
    JoinRequest join;
    join.device_name = "x";
    CHECK(f.Call(f.SignedSync(*f.a, Encode(join))).status == 400);
  }
  SUBCASE("unsupported protocol version") {
    // The hub answers 409 (failed precondition) with a plain reason, which the
    // device maps to kFailedPrecondition: "upgrade", not "your data is bad".
    Bytes bad = body;
    bad[5] = kProtocolVersion + 1;  // little-endian version after the magic
    const auto r = f.Call(f.SignedSync(*f.a, bad));
    CHECK(r.status == 409);
    CHECK(ErrorOf(r).find("protocol version " + std::to_string(kProtocolVersion + 1)) !=
          std::string::npos);
    CHECK(StatusFromHubResponse(r.status, r.body).code() == StatusCode::kFailedPrecondition);
  }
  SUBCASE("a write that is not a write") {
    SyncRequest req;
    req.writes = {Bytes{1, 2, 3}};
    const auto r = f.Call(f.SignedSync(*f.a, Encode(req)));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("bad write") != std::string::npos);
  }
  SUBCASE("write count larger than the body") {
    SyncRequest req;
    Bytes bad = Encode(req);
    REQUIRE(bad.size() >= 4);
    for (size_t i = bad.size() - 4; i < bad.size(); ++i) bad[i] = 0xff;  // count = 0xFFFFFFFF
    const auto r = f.Call(f.SignedSync(*f.a, bad));
    CHECK(r.status == 413);
  }
  CHECK(SameCounts(f.Counts(), before));
  f.CheckStillServing();
}

// ---- writes the device may not push ---------------------------------------------------------

TEST_CASE("a device may push only its own, correctly signed writes of its own team") {
  Fixture f;
  REQUIRE(f.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  REQUIRE(f.b->Put("cases", std::nullopt, {{"status", "\"Closed\""}}).ok());
  const auto before = f.Counts();
  const Bytes a_write = PendingWritesOf(*f.a).at(0);

  SUBCASE("another device's write") {
    SyncRequest req;
    req.writes = PendingWritesOf(*f.b);
    const auto r = f.Call(f.SignedSync(*f.a, Encode(req)));
    CHECK(r.status == 403);
    CHECK(ErrorOf(r).find("own writes") != std::string::npos);
  }
  SUBCASE("own write followed by another device's") {
    SyncRequest req;
    req.writes = {a_write, PendingWritesOf(*f.b).at(0)};
    CHECK(f.Call(f.SignedSync(*f.a, Encode(req))).status == 403);
  }
  SUBCASE("a write with a tampered signature") {
    auto w = Write::Decode(a_write);
    REQUIRE(w.ok());
    w->signature[0] ^= 1;
    SyncRequest req;
    req.writes = {w->Encode()};
    const auto r = f.Call(f.SignedSync(*f.a, Encode(req)));
    CHECK(r.status == 400);
  }
  SUBCASE("a write with tampered metadata") {
    auto w = Write::Decode(a_write);
    REQUIRE(w.ok());
    w->dot.counter += 100;
    SyncRequest req;
    req.writes = {w->Encode()};
    CHECK(f.Call(f.SignedSync(*f.a, Encode(req))).status == 400);
  }
  SUBCASE("a correctly signed write for another team") {
    auto w = Write::Decode(a_write);
    REQUIRE(w.ok());
    w->team = TeamId::Random();
    w->signature =
        internal::Sign(f.a->impl().vault().secrets().signing.secret_key, w->SignedBytes());
    SyncRequest req;
    req.writes = {w->Encode()};
    const auto r = f.Call(f.SignedSync(*f.a, Encode(req)));
    CHECK(r.status == 403);
    CHECK(ErrorOf(r).find("another team") != std::string::npos);
  }
  SUBCASE("a write whose context claims another device's writes the hub never had") {
    // Re-sealed by a itself (a rogue member): well formed, well signed, but
    // it would make b's own later edits of the record look already seen.
    auto w = Write::Decode(a_write);
    REQUIRE(w.ok());
    const auto& secrets = f.a->impl().vault().secrets();
    auto values = internal::OpenWritePayload(*w, secrets.team_keys.at(1));
    REQUIRE(values.ok());
    w->context.Add(Dot{f.b->device_id(), 1'000'000});
    REQUIRE(
        internal::SealWrite(*w, *values, secrets.team_keys.at(1), secrets.signing.secret_key).ok());
    SyncRequest req;
    req.writes = {w->Encode()};
    const auto r = f.Call(f.SignedSync(*f.a, Encode(req)));
    CHECK(r.status == 400);
    CHECK(ErrorOf(r).find("never received") != std::string::npos);
  }
  CHECK(SameCounts(f.Counts(), before));
  f.CheckStillServing();
  // b's write was never stored on a's behalf: b still pushes it itself.
  const SyncProgress pb = testing::SyncAll(f.hub, *f.b);
  CHECK(pb.sent == 1);
}

// ---- routing and operations --------------------------------------------------------------

TEST_CASE("unknown paths get 404 and wrong methods 405") {
  Fixture f;
  hub::HttpRequest req;
  req.method = "GET";
  for (const char* target : {"/", "/v2/sync", "/v1/sync/extra", "/v1/syncx", "/admin"}) {
    CAPTURE(target);
    req.target = target;
    CHECK(f.Call(req).status == 404);
  }
  req.method = "POST";
  req.target = "/nope";
  CHECK(f.Call(req).status == 404);

  for (const char* method : {"GET", "PUT", "DELETE", "HEAD"}) {
    CAPTURE(method);
    req.method = method;
    for (const char* target : {kPathSync, kPathJoin, kPathCreateInvite, kPathRegisterTeam}) {
      CAPTURE(target);
      req.target = target;
      const auto r = f.Call(req);
      CHECK(r.status == 405);
      CHECK(!ErrorOf(r).empty());
    }
  }
  req.method = "POST";
  for (const char* target : {kPathHealth, kPathMetrics}) {
    req.target = target;
    CHECK(f.Call(req).status == 405);
  }
}

TEST_CASE("health answers 200 with JSON status ok") {
  Fixture f;
  hub::HttpRequest req;
  req.method = "GET";
  req.target = kPathHealth;
  const auto r = f.Call(req);
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["status"] == "ok");
  // A query string does not change the route.
  req.target = std::string(kPathHealth) + "?probe=1";
  CHECK(f.Call(req).status == 200);
}

TEST_CASE("metrics count requests and received writes") {
  Fixture f;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.a->Put("cases", std::nullopt, {{"n", std::to_string(i)}}).ok());
  }
  testing::SyncAll(f.hub, *f.a);
  hub::HttpRequest bad;
  bad.method = "POST";
  bad.target = kPathSync;
  CHECK(f.Call(bad).status == 401);

  hub::HttpRequest req;
  req.method = "GET";
  req.target = kPathMetrics;
  req.from_loopback = true;
  const auto r = f.Call(req);
  CHECK(r.status == 200);
  CHECK(r.content_type.rfind("text/plain", 0) == 0);
  CHECK(r.body.find("enlace_requests_total") != std::string::npos);
  CHECK(r.body.find("enlace_requests_total{endpoint=\"/v1/sync\",status=\"200\"} 1\n") !=
        std::string::npos);
  CHECK(r.body.find("enlace_requests_total{endpoint=\"/v1/sync\",status=\"401\"} 1\n") !=
        std::string::npos);
  CHECK(r.body.find("\nenlace_writes_received_total 3\n") != std::string::npos);
  CHECK(r.body.find("\nenlace_devices 3\n") != std::string::npos);
  // No secret or value in the metrics.
  CHECK(r.body.find(f.a->device_id().ToHex()) == std::string::npos);
}

TEST_CASE("request bodies are limited to 8 MiB for sync and 64 KiB elsewhere") {
  Fixture f;
  hub::HubHandler handler(f.hub.storage(), hub::HubOptions{});
  CHECK(handler.MaxBodyBytes(kPathSync) == 8u * 1024 * 1024);
  CHECK(handler.MaxBodyBytes(std::string(kPathSync) + "?x=1") == 8u * 1024 * 1024);
  for (const char* target :
       {kPathJoin, kPathCreateInvite, kPathRegisterTeam, kPathHealth, kPathMetrics, "/other"}) {
    CAPTURE(target);
    CHECK(handler.MaxBodyBytes(target) == 64u * 1024);
  }
}

// ---- team isolation ------------------------------------------------------------------------

TEST_CASE("a sync response never includes another team's writes") {
  Fixture f;
  auto other =
      testing::InitCoordinator(f.hub, TestOptions(f.dir.File("other"), &f.clock), "Puebla");
  auto other_field =
      testing::JoinDevice(f.hub, *other, TestOptions(f.dir.File("other_field"), &f.clock), "eva");
  // Interleave both teams' writes in the hub's log.
  for (int i = 0; i < 4; ++i) {
    REQUIRE(f.a->Put("cases", std::nullopt, {{"n", std::to_string(i)}}).ok());
    testing::SyncAll(f.hub, *f.a);
    REQUIRE(other->Put("cases", std::nullopt, {{"n", std::to_string(i)}}).ok());
    testing::SyncAll(f.hub, *other);
  }

  struct Case {
    Replica* device;
    TeamId team;
    size_t expected;
  };
  for (const Case& c :
       {Case{f.b.get(), f.coord->team(), 4}, Case{other_field.get(), other->team(), 4},
        Case{f.a.get(), f.coord->team(), 0}, Case{other.get(), other->team(), 0}}) {
    // From the start of the log, asking for the member list too.
    SyncRequest from_start;
    const hub::HttpResponse r = f.Call(f.SignedSync(*c.device, Encode(from_start)));
    REQUIRE(r.status == 200);
    auto resp = DecodeSyncResponse(internal::AsBytes(r.body));
    REQUIRE(resp.ok());
    CHECK(resp->writes.size() == c.expected);
    CHECK(!resp->more);
    for (const auto& bytes : resp->writes) {
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      CHECK(w->team == c.team);
    }
    // The trust documents: the team's registry versions and admissions.
    REQUIRE(!resp->trust.registries.empty());
    std::set<DeviceId> members;
    for (const auto& bytes : resp->trust.registries) {
      auto registry = DecodeRegistry(bytes);
      REQUIRE(registry.ok());
      CHECK(registry->team == c.team);
      for (const auto& e : registry->entries) members.insert(e.device);
    }
    for (const auto& bytes : resp->trust.admissions) {
      auto a = DecodeAdmission(bytes);
      REQUIRE(a.ok());
      CHECK(a->grant.team == c.team);
      members.insert(a->device);
    }
    CHECK(members.count(c.device->device_id()) == 1);
    if (c.team == f.coord->team()) {
      CHECK(members.size() == 3);
      CHECK(members.count(other->device_id()) == 0);
      CHECK(members.count(other_field->device_id()) == 0);
    } else {
      CHECK(members.size() == 2);
      CHECK(members.count(f.a->device_id()) == 0);
      CHECK(members.count(f.coord->device_id()) == 0);
    }
  }
}

}  // namespace
}  // namespace enlace

namespace enlace {
namespace {

TEST_CASE("a revoked device's requests are refused with 403 and the notice that revokes it") {
  Fixture f;
  // The coordinator revokes a with a new registry version, stored by its sync.
  testing::SyncAll(f.hub, *f.coord);
  REQUIRE(RevokeDevice(*f.coord, f.a->device_id()).ok());
  const SyncProgress p = testing::SyncAll(f.hub, *f.coord);
  CHECK(p.registry_refused.empty());

  const auto r = f.Call(f.SignedSync(*f.a, Encode(SyncRequest{})));
  CHECK(r.status == 403);
  // Not JSON: the registry chain, which a can check from its own registry.
  auto notice = DecodeRevokedNotice(internal::AsBytes(r.body));
  REQUIRE(notice.ok());
  REQUIRE(!notice->registries.empty());
  auto newest = DecodeRegistry(notice->registries.back());
  REQUIRE(newest.ok());
  const RegistryEntry* entry = newest->Find(f.a->device_id());
  REQUIRE(entry != nullptr);
  CHECK(entry->revoked());
  // An outsider is told nothing of the kind: a plain 403 in JSON.
  auto stranger = testing::MakeReplica(TestOptions(f.dir.File("stranger"), &f.clock));
  REQUIRE(CreateTeam(*stranger).ok());
  const auto outsider = f.Call(f.SignedSync(*stranger, Encode(SyncRequest{})));
  CHECK(outsider.status == 403);
  CHECK(ErrorOf(outsider).find("unknown device") != std::string::npos);
  // Others are served as before.
  REQUIRE(f.b->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  CHECK(testing::SyncAll(f.hub, *f.b).sent == 1);
}

}  // namespace
}  // namespace enlace
