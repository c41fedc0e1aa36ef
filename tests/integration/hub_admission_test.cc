// What the hub's handler decides from a request's head, before the body:
// whether a big body may be read (AdmitBody, asked by the network layer
// before reading more than its unverified budget).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "enlace/team.h"
#include "hub_fixture.h"

namespace enlace {
namespace {

using testing::TestOptions;

// `request` without its body, as the network layer asks about it.
hub::HttpRequest HeadOf(hub::HttpRequest request) {
  request.body.clear();
  return request;
}

TEST_CASE("AdmitBody admits the signature headers of a device registered on the hub") {
  testing::HubTeam f;
  hub::HubOptions options;
  options.clock = f.clock.AsWallClock();
  hub::HubHandler handler(f.hub.storage(), options);
  const Bytes body(200 * 1024, 0x5a);  // the body is not looked at
  const hub::HttpRequest a = HeadOf(testing::SignedSyncRequest(*f.a, body, f.clock.now_ms));
  CHECK(handler.AdmitBody(a));
  // The other endpoints a registered device signs.
  for (const char* path : {kPathCreateInvite, kPathHistory, kReportsPath}) {
    CAPTURE(path);
    hub::HttpRequest other = a;
    other.target = path;
    CHECK(handler.AdmitBody(other));
  }
  // Its time is not judged here: a device whose clock is off gets its 401
  // with the hub's time from Handle, and retries.
  CHECK(handler.AdmitBody(HeadOf(
      testing::SignedSyncRequest(*f.a, body, f.clock.now_ms - 3'600'000))));

  SUBCASE("registration, join, other paths and other methods are never admitted") {
    for (const char* path : {kPathRegisterTeam, kPathJoin, kPathHealth, "/other"}) {
      CAPTURE(path);
      hub::HttpRequest other = a;
      other.target = path;
      CHECK_FALSE(handler.AdmitBody(other));
    }
    hub::HttpRequest get = a;
    get.method = "GET";
    CHECK_FALSE(handler.AdmitBody(get));
  }
  SUBCASE("a device the hub does not know is not admitted") {
    auto stranger = testing::MakeReplica(TestOptions(f.dir.File("stranger"), &f.clock));
    REQUIRE(CreateTeam(*stranger).ok());
    CHECK_FALSE(handler.AdmitBody(
        HeadOf(testing::SignedSyncRequest(*stranger, body, f.clock.now_ms))));
  }
  SUBCASE("missing or malformed signature headers are not admitted") {
    for (const char* header : {kHeaderDevice, kHeaderTime, kHeaderNonce, kHeaderSignature}) {
      CAPTURE(header);
      hub::HttpRequest missing = a;
      missing.headers.erase(header);
      CHECK_FALSE(handler.AdmitBody(missing));
      hub::HttpRequest malformed = a;
      malformed.headers[header] = "zz";
      CHECK_FALSE(handler.AdmitBody(malformed));
    }
    hub::HttpRequest unsigned_request;
    unsigned_request.method = "POST";
    unsigned_request.target = kPathSync;
    CHECK_FALSE(handler.AdmitBody(unsigned_request));
  }
  SUBCASE("a revoked device is admitted: its big push must reach the notice that wipes it") {
    testing::SyncAll(f.hub, *f.coord);
    REQUIRE(RevokeDevice(*f.coord, f.a->device_id()).ok());
    testing::SyncAll(f.hub, *f.coord);
    const hub::HttpRequest revoked = testing::SignedSyncRequest(*f.a, body, f.clock.now_ms);
    CHECK(handler.AdmitBody(HeadOf(revoked)));
    CHECK(handler.Handle(revoked).status == 403);
  }
}

}  // namespace
}  // namespace enlace
