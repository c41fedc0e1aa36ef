// What the hub's handler decides from a request's head and its peer, before
// or without the body: whether a big body may be read (AdmitBody, asked by
// the network layer before reading more than its unverified budget), and
// who may read /metrics (loopback, or a bearer token).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "enlace/team.h"
#include "hub_fixture.h"

namespace enlace {
namespace {

using testing::ErrorOf;
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
  CHECK(handler.AdmitBody(
      HeadOf(testing::SignedSyncRequest(*f.a, body, f.clock.now_ms - 3'600'000))));

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
    CHECK_FALSE(
        handler.AdmitBody(HeadOf(testing::SignedSyncRequest(*stranger, body, f.clock.now_ms))));
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

struct MetricsFixture {
  static constexpr char kToken[] = "metrics-token-0123456789abcdef";

  explicit MetricsFixture(bool with_token = true, bool from_loopback_allowed = true) {
    hub::HubOptions options;
    if (with_token) options.metrics_token_hash = hub::HashToken(kToken);
    options.metrics_from_loopback = from_loopback_allowed;
    options.extra_metrics = [] { return std::string("enlace_net_connections 7\n"); };
    options.log = [this](const std::string& line) { log.push_back(line); };
    handler = std::make_unique<hub::HubHandler>(f.hub.storage(), options);
  }

  hub::HttpResponse Get(bool loopback, const std::string& authorization = "") {
    hub::HttpRequest request;
    request.method = "GET";
    request.target = kPathMetrics;
    request.remote = loopback ? "127.0.0.1:5000" : "203.0.113.9:5000";
    request.from_loopback = loopback;
    if (!authorization.empty()) request.headers[kHeaderAuthorization] = authorization;
    return handler->Handle(request);
  }

  testing::HubTeam f;
  std::vector<std::string> log;
  std::unique_ptr<hub::HubHandler> handler;
};

bool HasMetrics(const hub::HttpResponse& r) {
  return r.body.find("enlace_requests_total") != std::string::npos ||
         r.body.find("enlace_devices") != std::string::npos;
}

TEST_CASE("metrics are served to loopback, and from elsewhere only with the right token") {
  MetricsFixture m;
  const std::string right = std::string("Bearer ") + MetricsFixture::kToken;

  const hub::HttpResponse local = m.Get(/*loopback=*/true);
  CHECK(local.status == 200);
  CHECK(HasMetrics(local));
  CHECK(local.body.find("\nenlace_net_connections 7\n") != std::string::npos);

  const hub::HttpResponse missing = m.Get(/*loopback=*/false);
  CHECK(missing.status == 401);
  CHECK(missing.headers.at("www-authenticate").find("Bearer") == 0);
  CHECK_FALSE(HasMetrics(missing));

  for (const std::string& wrong : {std::string("Bearer metrics-token-0123456789abcdeF"),
                                   std::string("Bearer x"), right + "0"}) {
    CAPTURE(wrong);
    const hub::HttpResponse r = m.Get(/*loopback=*/false, wrong);
    CHECK(r.status == 403);
    CHECK_FALSE(HasMetrics(r));
  }
  const hub::HttpResponse basic = m.Get(/*loopback=*/false, "Basic dXNlcjpwYXNz");
  CHECK(basic.status == 401);
  CHECK_FALSE(HasMetrics(basic));

  const hub::HttpResponse remote = m.Get(/*loopback=*/false, right);
  CHECK(remote.status == 200);
  CHECK(HasMetrics(remote));
  CHECK(m.Get(/*loopback=*/false, "bearer  " + std::string(MetricsFixture::kToken)).status == 200);

  // A wrong token is refused from loopback too.
  CHECK(m.Get(/*loopback=*/true, "Bearer wrong-token-0123456789").status == 403);

  // The token never reaches the log.
  REQUIRE_FALSE(m.log.empty());
  for (const std::string& line : m.log) CHECK(line.find("metrics-token") == std::string::npos);
}

TEST_CASE("with metrics_from_loopback off, loopback needs the token too") {
  MetricsFixture m(/*with_token=*/true, /*from_loopback_allowed=*/false);
  const hub::HttpResponse local = m.Get(/*loopback=*/true);
  CHECK(local.status == 401);
  CHECK_FALSE(HasMetrics(local));
  CHECK(m.Get(/*loopback=*/true, std::string("Bearer ") + MetricsFixture::kToken).status == 200);
}

TEST_CASE("without a metrics token, metrics are served to loopback only") {
  MetricsFixture m(/*with_token=*/false);
  CHECK(m.Get(/*loopback=*/true).status == 200);
  const hub::HttpResponse remote = m.Get(/*loopback=*/false);
  CHECK(remote.status == 403);
  CHECK(ErrorOf(remote).find("loopback") != std::string::npos);
  CHECK_FALSE(HasMetrics(remote));
  CHECK(m.Get(/*loopback=*/false, std::string("Bearer ") + MetricsFixture::kToken).status == 403);
}

}  // namespace
}  // namespace enlace
