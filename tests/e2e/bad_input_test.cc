// Anyone on the internet can send the hub bytes. Against the real enlace-hub
// over raw TCP: malformed, truncated, oversized, replayed, mis-signed,
// stale, cross-team, unknown-device, wrong-method, wrong-path, bad-header,
// bad-JSON and bad-write requests, each answered with the right 4xx (or, for
// a request the client never finishes, a close without an answer); the hub
// keeps serving, and not one of them changes its database.
//
// Signed requests are built here with the core's signing input
// (RequestSigningInput) and keys the test holds, so every check behind the
// signature is reached.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli_fixture.h"
#include "crypto/crypto.h"
#include "enlace/registry.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/wire.h"
#include "enlace/write.h"
#include "fault_proxy.h"
#include "replica/write_internal.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::CliDevice;
using testing::HttpReply;
using testing::Office;
using testing::ReadOnlyDb;

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

using Nonce = std::array<uint8_t, 16>;
Nonce NewNonce() {
  Nonce n{};
  internal::RandomFill(n);
  return n;
}

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A device whose keys the test holds: it can sign anything.
struct RawDevice {
  DeviceId id = DeviceId::Random();
  internal::SigningKeyPair keys = internal::SigningKeyPair::Generate();
  PublicKey32 box{};
  TeamId team;
  internal::SecretBytes team_key = internal::SecretBytes::Random(32);
  RawDevice() { internal::RandomFill(box); }
};

struct SignOptions {
  std::optional<uint64_t> time;
  std::optional<Nonce> nonce;
  const internal::SecretBytes* key = nullptr;  // sign with this key instead
  std::string signed_method;                   // sign for another method or path
  std::string signed_path;
};

SignOptions AtTime(uint64_t t) {
  SignOptions o;
  o.time = t;
  return o;
}
SignOptions WithKey(const internal::SecretBytes& key) {
  SignOptions o;
  o.key = &key;
  return o;
}
SignOptions SignedFor(const std::string& method, const std::string& path) {
  SignOptions o;
  o.signed_method = method;
  o.signed_path = path;
  return o;
}

OutgoingRequest Signed(const RawDevice& d, const std::string& method, const std::string& path,
                       Bytes body, const SignOptions& o = {}) {
  const uint64_t time = o.time.value_or(NowMs());
  const Nonce nonce = o.nonce.value_or(NewNonce());
  const Bytes input =
      RequestSigningInput(o.signed_method.empty() ? method : o.signed_method,
                          o.signed_path.empty() ? path : o.signed_path, d.id, time, nonce, body);
  const auto signature = internal::Sign(o.key != nullptr ? *o.key : d.keys.secret_key, input);
  OutgoingRequest r;
  r.method = method;
  r.path = path;
  r.body = std::move(body);
  r.headers = {{kHeaderDevice, d.id.ToHex()},
               {kHeaderTime, std::to_string(time)},
               {kHeaderNonce, internal::ToHex(nonce)},
               {kHeaderSignature, internal::ToHex(signature)}};
  return r;
}

// `r` with header `name` set to `value`, or removed.
OutgoingRequest WithHeader(OutgoingRequest r, const std::string& name,
                           std::optional<std::string> value) {
  std::erase_if(r.headers, [&](const auto& h) { return h.first == name; });
  if (value) r.headers.emplace_back(name, *value);
  return r;
}

std::string HeaderOf(const OutgoingRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

Bytes SyncBody(std::vector<Bytes> writes = {}, uint64_t cursor = 0) {
  SyncRequest s;
  s.cursor = cursor;
  s.writes = std::move(writes);
  return Encode(s);
}

// A pull that carries a registry and key grants (a coordinator's sync).
Bytes TrustSyncBody(Bytes registry, std::vector<Bytes> key_grants = {}) {
  SyncRequest s;
  s.registry = std::move(registry);
  s.key_grants = std::move(key_grants);
  return Encode(s);
}

// The first registry of `team`: `d` alone, as coordinator.
Registry Genesis(const RawDevice& d, const TeamId& team) {
  Registry r;
  r.team = team;
  r.version = 1;
  RegistryEntry e;
  e.device = d.id;
  e.signing_key = d.keys.public_key;
  e.encryption_key = d.box;
  e.name = "fundadora";
  e.role = Role::kCoordinator;
  r.entries.push_back(std::move(e));
  r.signer = d.id;
  return r;
}

// `r` with its entries sorted, signed with `key` in the name of `signer`.
Bytes SignRegistry(Registry r, const DeviceId& signer, const internal::SecretBytes& key) {
  std::sort(r.entries.begin(), r.entries.end(),
            [](const RegistryEntry& x, const RegistryEntry& y) { return x.device < y.device; });
  r.signer = signer;
  r.signature = internal::Sign(key, RegistrySigningInput(r));
  return EncodeRegistry(r);
}
Bytes SignRegistry(Registry r, const RawDevice& signer) {
  return SignRegistry(std::move(r), signer.id, signer.keys.secret_key);
}

using InviteSecret = std::array<uint8_t, 32>;

// An invite made by hand: the request, with a grant signed by `coord`, and
// the secret its code would carry.
struct RawInvite {
  CreateInviteRequest req;
  InviteGrant grant;
  InviteSecret secret{};
};

Bytes SignGrant(InviteGrant g, const internal::SecretBytes& key) {
  g.signature = internal::Sign(key, InviteGrantSigningInput(g));
  return EncodeInviteGrant(g);
}

RawInvite MakeInvite(const RawDevice& coord, uint64_t expires_ms, Role role = Role::kField) {
  RawInvite i;
  internal::RandomFill(i.req.invite_id);
  internal::RandomFill(i.req.verifier);
  internal::RandomFill(i.secret);
  i.req.expires_ms = expires_ms;
  i.req.role = role;
  i.req.envelope = Bytes(96, 7);
  i.grant.team = coord.team;
  i.grant.invite = i.req.invite_id;
  i.grant.role = role;
  i.grant.expires_ms = expires_ms;
  auto key = InvitePublicKey(i.secret);
  REQUIRE(key.ok());
  i.grant.invite_key = *key;
  i.grant.issuer = coord.id;
  i.req.grant = SignGrant(i.grant, coord.keys.secret_key);
  return i;
}

// The admission `d` makes of itself with an invite.
Admission AdmissionOf(const std::array<uint8_t, 16>& invite, const RawDevice& d,
                      const std::string& name) {
  Admission a;
  a.grant.invite = invite;
  a.device = d.id;
  a.signing_key = d.keys.public_key;
  a.encryption_key = d.box;
  a.name = name;
  return a;
}

std::array<uint8_t, 64> Bind(Admission a, const InviteSecret& secret) {
  REQUIRE(SignAdmission(a, secret).ok());
  return a.binding;
}

JoinRequest JoinOf(const std::array<uint8_t, 16>& invite, const PublicKey32& verifier,
                   const RawDevice& d, const std::string& name, const InviteSecret& secret) {
  return JoinRequest{
      invite, verifier, name, d.keys.public_key, d.box, Bind(AdmissionOf(invite, d, name), secret)};
}

// The secret of an invite code ("enlace1." + base64url; the secret is its
// last 32 bytes).
InviteSecret SecretOfCode(const std::string& code) {
  const std::string b64 = code.substr(std::string("enlace1.").size());
  Bytes raw(b64.size());
  size_t len = 0;
  REQUIRE(sodium_base642bin(raw.data(), raw.size(), b64.data(), b64.size(), nullptr, &len, nullptr,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
  REQUIRE(len >= 32);
  InviteSecret s{};
  std::copy(raw.begin() + static_cast<std::ptrdiff_t>(len - 32),
            raw.begin() + static_cast<std::ptrdiff_t>(len), s.begin());
  return s;
}

Bytes Patched(Bytes b, size_t at, std::initializer_list<uint8_t> bytes) {
  for (uint8_t v : bytes) b.at(at++) = v;
  return b;
}

Bytes Le32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}

// A well-formed write of `d`, with `edit` applied before it is sealed.
Write MakeWrite(const RawDevice& d, uint64_t counter,
                const std::function<void(Write&)>& edit = nullptr) {
  Write w;
  w.team = d.team;
  w.collection = "encounters";
  w.record = RecordId::Random();
  w.dot = Dot{d.id, counter};
  w.hlc = HlcTimestamp::From(NowMs(), 0);
  w.fields = {"enc_Notes"};
  w.kind = WriteKind::kPut;
  w.key_version = 1;
  w.accounted_from = 1;
  if (edit) edit(w);
  std::vector<std::string> values(w.fields.size(), "\"x\"");
  REQUIRE(internal::SealWrite(w, values, d.team_key, d.keys.secret_key).ok());
  return w;
}

Bytes WriteBytes(const RawDevice& d, uint64_t counter,
                 const std::function<void(Write&)>& edit = nullptr) {
  return MakeWrite(d, counter, edit).Encode();
}

HttpReply Send(int port, const std::string& bytes) {
  auto raw = testing::TryExchange(port, bytes, 15000);
  REQUIRE(raw.has_value());
  return testing::ParseHttpReply(*raw);
}

HttpReply Post(int port, const OutgoingRequest& r) {
  return Send(port, testing::FormatHttpRequest(r));
}

// Sends `pieces` `gap_ms` apart and waits, up to `limit_ms`, for the hub to
// close. What came back, and whether the hub closed the connection.
struct SlowResult {
  std::string reply;
  bool closed = false;
};
SlowResult SlowClient(int port, const std::vector<std::string>& pieces, int gap_ms, int limit_ms) {
  SlowResult r;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  // Waits up to `ms` for bytes or the close; false once closed.
  auto wait = [&](int ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.closed = true;
      return false;
    }
    r.reply.append(buf, static_cast<size_t>(n));
    return true;
  };
  for (const auto& piece : pieces) {
    if (send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) {
      r.closed = true;
      break;
    }
    if (!wait(gap_ms)) break;
  }
  while (!r.closed && std::chrono::steady_clock::now() < deadline) {
    if (!wait(200)) break;
  }
  close(fd);
  return r;
}

// What a refusal's body must be.
enum class Answer {
  kError,            // JSON {"error": ...} (when the handler answered)
  kNotice,           // a RevokedNotice whose newest registry revokes `who`
  kRegistryRefused,  // a SyncResponse with registry_refused set
  kSyncOk,           // a SyncResponse, nothing refused (key grants dropped silently)
};

struct Case {
  std::string name;
  std::string bytes;
  int expect;  // 0: the hub closes without answering
  Answer answer = Answer::kError;
  DeviceId who{};
};

TEST_CASE("a hundred and more bad requests get the right 4xx and change nothing") {
  Office o;
  CliDevice ana = o.Join("ana");
  const int port = o.hub->port();
  for (int i = 0; i < 2; ++i) o.coord.Ok(testing::PutEncounter("coord" + std::to_string(i)));
  ana.Ok(testing::PutEncounter("ana"));
  o.coord.Sync();
  ana.Sync();
  const json coord_status = o.coord.Json({"status"});
  TeamId team_a = *TeamId::FromHex(coord_status["team"].get<std::string>());
  DeviceId coord_id = *DeviceId::FromHex(coord_status["device"].get<std::string>());

  // The slow clients take the hub's header timeout (5 s) or its body
  // timeout (10 s, then a minimum rate): they run beside everything else.
  const std::string partial_header = "POST /v1/sync HTTP/1.1\r\nHost: x\r\n";
  std::vector<std::string> drip;
  for (char c : std::string("POST /v1/sync HTTP/1.1\r\nHost: x\r\nX-Slow: ")) drip.push_back({c});
  for (int i = 0; i < 80; ++i) drip.push_back("a");
  auto silent = std::async(std::launch::async, SlowClient, port,
                           std::vector<std::string>{partial_header}, 0, 40000);
  auto dripping = std::async(std::launch::async, SlowClient, port, drip, 400, 40000);
  auto half_body = std::async(
      std::launch::async, SlowClient, port,
      std::vector<std::string>{"POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                               std::string(10, 'x')},
      0, 40000);

  // ---- devices the test holds the keys of --------------------------------------------------
  // Team A (the CLI's team): a field device and one that gets revoked, both
  // invited by the coordinator's own replica.
  // invited by the coordinator's own replica; the coordinator revokes the
  // second through the CLI (a registry version that revokes it).
  RawDevice field_a, revoked_a;
  field_a.team = team_a;
  revoked_a.team = team_a;
  PublicKey32 invite_verifier{};
  std::array<uint8_t, 16> used_invite{};
  {
    auto coord = Replica::Open(testing::TestOptions(o.coord.home), o.coord.passphrase);
    REQUIRE_MESSAGE(coord.ok(), coord.status().ToString());
    for (RawDevice* d : {&field_a, &revoked_a}) {
      auto invite = PrepareInvite(**coord, o.hub->url(), "", Role::kField, 3'600'000);
      REQUIRE(invite.ok());
      REQUIRE(Post(port, invite->request).status == 200);
      auto created = DecodeCreateInviteRequest(invite->request.body);
      REQUIRE(created.ok());
      const InviteSecret secret = SecretOfCode(invite->code);
      {
        auto grant = DecodeInviteGrant(created->grant);
        REQUIRE(grant.ok());
        REQUIRE(*InvitePublicKey(secret) == grant->invite_key);
      }
      const std::string name = d == &field_a ? "raw-field" : "raw-revoked";
      const JoinRequest join = JoinOf(created->invite_id, created->verifier, *d, name, secret);
      REQUIRE(Post(port, Signed(*d, "POST", kPathJoin, Encode(join))).status == 200);
      used_invite = created->invite_id;
      invite_verifier = created->verifier;
    }
  }
  o.coord.Ok({"devices", "revoke", "raw-revoked", "--no-rotate"});
  // Team B: a coordinator registered with a bootstrap token, with one stored
  // write and two open invites (one about to expire).
  // Team B, all by hand: its coordinator registers with a genesis registry
  // it signs, stores a write, invites two field devices (grants it signs;
  // they join with bindings made with the invites' keys), then signs
  // registry version 2, which lists both and revokes the second. Two invites
  // stay open (one about to expire).
  RawDevice coord_b, field_b, gone_b;
  coord_b.team = TeamId::Random();
  field_b.team = coord_b.team;
  gone_b.team = coord_b.team;
  const std::string used_token = testing::BootstrapToken(o.data);
  {
    RegisterTeamRequest reg{coord_b.team,
                            "Puebla",
                            used_token,
                            "raw-coord",
                            coord_b.keys.public_key,
                            coord_b.box,
                            SignRegistry(Genesis(coord_b, coord_b.team), coord_b)};
    REQUIRE(Post(port, Signed(coord_b, "POST", kPathRegisterTeam, Encode(reg))).status == 200);
  }
  REQUIRE(
      Post(port, Signed(coord_b, "POST", kPathSync, SyncBody({WriteBytes(coord_b, 1)}))).status ==
      200);
  Registry registry_b = Genesis(coord_b, coord_b.team);
  for (RawDevice* d : {&field_b, &gone_b}) {
    const RawInvite invite = MakeInvite(coord_b, NowMs() + 3'600'000);
    REQUIRE(Post(port, Signed(coord_b, "POST", kPathCreateInvite, Encode(invite.req))).status ==
            200);
    const JoinRequest join =
        JoinOf(invite.req.invite_id, invite.req.verifier, *d, "raw-field-b", invite.secret);
    REQUIRE(Post(port, Signed(*d, "POST", kPathJoin, Encode(join))).status == 200);
    RegistryEntry e;
    e.device = d->id;
    e.signing_key = d->keys.public_key;
    e.encryption_key = d->box;
    e.name = "raw-field-b";
    e.role = Role::kField;
    e.invite = invite.req.invite_id;
    e.joined_ms = NowMs();
    if (d == &gone_b) {
      e.revoked_ms = NowMs();
      e.revoked_after = 0;
    }
    registry_b.entries.push_back(std::move(e));
  }
  registry_b.version = 2;
  std::sort(registry_b.entries.begin(), registry_b.entries.end(),
            [](const RegistryEntry& x, const RegistryEntry& y) { return x.device < y.device; });
  {
    const HttpReply reply = Post(
        port, Signed(coord_b, "POST", kPathSync, TrustSyncBody(SignRegistry(registry_b, coord_b))));
    REQUIRE(reply.status == 200);
    auto resp = DecodeSyncResponse(
        {reinterpret_cast<const uint8_t*>(reply.body.data()), reply.body.size()});
    REQUIRE(resp.ok());
    REQUIRE_MESSAGE(resp->registry_refused.empty(), resp->registry_refused);
  }
  const RawInvite open = MakeInvite(coord_b, NowMs() + 3'600'000);
  const CreateInviteRequest& open_invite = open.req;
  REQUIRE(Post(port, Signed(coord_b, "POST", kPathCreateInvite, Encode(open_invite))).status ==
          200);
  const RawInvite expiring_invite = MakeInvite(coord_b, NowMs() + 1000);
  const CreateInviteRequest& expiring = expiring_invite.req;
  REQUIRE(Post(port, Signed(coord_b, "POST", kPathCreateInvite, Encode(expiring))).status == 200);
  RawDevice stranger;  // never registered
  stranger.team = team_a;
  const std::string fresh_token_1 = testing::BootstrapToken(o.data);
  const std::string fresh_token_2 = testing::BootstrapToken(o.data);
  const std::string fresh_token_3 = testing::BootstrapToken(o.data);
  // A valid pull, sent once now: the replay cases send it again.
  const OutgoingRequest original = Signed(field_a, "POST", kPathSync, SyncBody());
  REQUIRE(Post(port, original).status == 200);
  // One of team A's stored writes, for the cross-team cases.
  Bytes team_a_write;
  {
    ReadOnlyDb hub(o.hub_db());
    const auto rows =
        hub.Rows("SELECT hex(encoded) FROM writes WHERE team = x'" + team_a.ToHex() + "' LIMIT 1");
    REQUIRE(rows.size() == 1);
    auto bytes = internal::FromHex(rows[0][0]);
    REQUIRE(bytes.ok());
    team_a_write = *bytes;
  }
  while (NowMs() <= expiring.expires_ms + 50) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // The devices as the hub stores them, but for `frozen`: a coordinator's
  // revocation that its target's writes outran freezes the target (below).
  const std::string kDevicesButFrozen =
      "SELECT device, team, name, role, sign_pk, box_pk, joined_ms, revoked_ms, pending, "
      "revoked_after, key_version FROM devices ORDER BY device";
  std::map<std::string, std::string> before;
  std::vector<std::vector<std::string>> devices_before;
  {
    ReadOnlyDb hub(o.hub_db());
    before = hub.TableDigests({"nonces", "devices"});
    devices_before = hub.Rows(kDevicesButFrozen);
    CHECK(hub.Rows("SELECT count(*) FROM devices WHERE frozen != 0")[0][0] == "0");
  }

  // ---- the cases -------------------------------------------------------------------------
  std::vector<Case> cases;
  auto raw = [&](const std::string& name, std::string bytes, int expect) {
    cases.push_back({name, std::move(bytes), expect});
  };
  auto req = [&](const std::string& name, const OutgoingRequest& r, int expect,
                 const std::vector<std::string>& extra = {}) {
    cases.push_back({name, testing::FormatHttpRequest(r, extra), expect});
  };
  // A revoked device's signed request: 403 with the notice that revokes it.
  auto notice = [&](const std::string& name, const RawDevice& d, const OutgoingRequest& r) {
    cases.push_back({name, testing::FormatHttpRequest(r), 403, Answer::kNotice, d.id});
  };
  // A sync whose registry the hub refuses: 200, registry_refused set.
  auto refused = [&](const std::string& name, const OutgoingRequest& r) {
    cases.push_back({name, testing::FormatHttpRequest(r), 200, Answer::kRegistryRefused, {}});
  };
  // A sync served as usual, its bad key grants dropped without a word.
  auto served = [&](const std::string& name, const OutgoingRequest& r) {
    cases.push_back({name, testing::FormatHttpRequest(r), 200, Answer::kSyncOk, {}});
  };
  const std::string close = "Connection: close\r\n";
  auto get = [&](const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + close + "\r\n";
  };
  auto post_cl = [&](const std::string& path, const std::string& length) {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + "\r\n" + close +
           "\r\n";
  };

  // HTTP framing: the network layer answers 400, 413 or 431.
  raw("TLS handshake on the plain port",
      std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + std::string(64, 'r') +
          "\r\n\r\n",
      400);
  raw("not HTTP at all", "hello hub, are you there?\r\n\r\n", 400);
  raw("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400);
  raw("unknown HTTP version", "GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n", 400);
  raw("request line without a version", "GET /v1/health\r\nHost: x\r\n\r\n", 400);
  raw("space inside the target", "GET /v1/he alth HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  raw("header line without a colon", "GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n", 400);
  raw("space in a header name", "GET /v1/health HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400);
  raw("space before the colon", "GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n", 400);
  raw("NUL in a header value", std::string("GET /v1/health HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 37),
      400);
  raw("bare LF line ends", "GET /v1/health HTTP/1.1\nHost: x\n\n", 400);
  raw("non-numeric Content-Length", post_cl("/v1/sync", "ten"), 400);
  raw("negative Content-Length", post_cl("/v1/sync", "-1"), 400);
  raw("Content-Length over 2^64", post_cl("/v1/sync", "18446744073709551616"), 400);
  raw("two different Content-Lengths",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      400);
  raw("Content-Length and chunked together",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      400);
  raw("unknown transfer coding",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400);
  raw("bad chunk size",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      400);
  raw("chunk longer than announced",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
      400);
  raw("huge Content-Length on /v1/sync", post_cl("/v1/sync", "999999999"), 413);
  raw("Content-Length 8 MiB + 1 on /v1/sync", post_cl("/v1/sync", std::to_string((8 << 20) + 1)),
      413);
  raw("Content-Length 64 KiB + 1 on /v1/join", post_cl("/v1/join", "65537"), 413);
  raw("Content-Length 64 KiB + 1 on /v1/teams", post_cl("/v1/teams", "65537"), 413);
  raw("Content-Length 64 KiB + 1 on /v1/invites", post_cl("/v1/invites", "65537"), 413);
  raw("Content-Length 64 KiB + 1 on an unknown path", post_cl("/v1/nothing", "65537"), 413);
  raw("Content-Length 1 MiB on /v1/reports", post_cl("/v1/reports", "1048576"), 413);
  {
    std::string chunked = "POST /v1/join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i) chunked += "4000\r\n" + std::string(0x4000, 'j') + "\r\n";
    raw("chunked body over 64 KiB on /v1/join", chunked + "0\r\n\r\n", 413);
  }
  {
    std::string chunked = "POST /v1/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 9; ++i) chunked += "100000\r\n" + std::string(0x100000, 's') + "\r\n";
    raw("chunked body over 8 MiB on /v1/sync", chunked + "0\r\n\r\n", 413);
  }
  raw("one header of 20 KiB",
      "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 << 10, 'b') + "\r\n\r\n",
      431);
  {
    std::string many = "GET /v1/health HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 300; ++i)
      many += "X-H" + std::to_string(i) + ": " + std::string(80, 'h') + "\r\n";
    raw("300 headers, 25 KiB in all", many + "\r\n", 431);
  }
  raw("target of 17 KiB", get("/v1/" + std::string(17 << 10, 'p')), 431);
  raw("body cut short, then the client leaves",
      "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nENLC", 0);
  raw("header cut short, then the client leaves", "POST /v1/sync HTTP/1.1\r\nHost: x\r\nX-A: 1", 0);
  raw("connection closed at once", "", 0);

  // Paths and methods: 404 and 405 from the handler.
  raw("unknown path", get("/v1/nothing"), 404);
  raw("root path", get("/"), 404);
  raw("version 2 path", testing::FormatHttpRequest(Signed(field_a, "POST", "/v2/sync", SyncBody())),
      404);
  raw("trailing slash",
      testing::FormatHttpRequest(Signed(field_a, "POST", "/v1/sync/", SyncBody())), 404);
  raw("upper-case path",
      testing::FormatHttpRequest(Signed(field_a, "POST", "/V1/SYNC", SyncBody())), 404);
  raw("percent-encoded path",
      testing::FormatHttpRequest(Signed(field_a, "POST", "/v1/%73ync", SyncBody())), 404);
  raw("dot-dot path",
      testing::FormatHttpRequest(Signed(field_a, "POST", "/v1/../v1/sync", SyncBody())), 404);
  raw("absolute-form target",
      testing::FormatHttpRequest(Signed(field_a, "POST", "http://127.0.0.1/v1/sync", SyncBody())),
      404);
  raw("asterisk target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n" + close + "\r\n", 404);
  raw("8 KiB unknown path", get("/v1/" + std::string(8 << 10, 'q')), 404);
  raw("query string on an unknown path", get("/v1/nothing?x=1"), 404);
  raw("GET /v1/sync", get("/v1/sync"), 405);
  raw("GET /v1/join", get("/v1/join"), 405);
  raw("GET /v1/invites", get("/v1/invites"), 405);
  raw("GET /v1/teams", get("/v1/teams"), 405);
  raw("POST /v1/health", post_cl("/v1/health", "0"), 405);
  raw("POST /metrics", post_cl("/metrics", "0"), 405);
  raw("HEAD /v1/sync", "HEAD /v1/sync HTTP/1.1\r\nHost: x\r\n" + close + "\r\n", 405);
  raw("DELETE /v1/reports", "DELETE /v1/reports HTTP/1.1\r\nHost: x\r\n" + close + "\r\n", 405);
  {
    OutgoingRequest put = Signed(field_a, "PUT", kPathSync, SyncBody());
    req("PUT /v1/sync, signed", put, 405);
    OutgoingRequest patch = Signed(field_a, "PATCH", kPathJoin, SyncBody());
    req("PATCH /v1/join", patch, 405);
    OutgoingRequest del = Signed(coord_b, "DELETE", kPathRegisterTeam, {});
    req("DELETE /v1/teams", del, 405);
    OutgoingRequest lower = Signed(field_a, "post", kPathSync, SyncBody());
    req("lower-case method", lower, 405);
  }

  // Who is asking: /v1/sync checks the signature before anything else.
  const Bytes pull = SyncBody();
  const OutgoingRequest good = Signed(field_a, "POST", kPathSync, pull);
  {
    OutgoingRequest unsigned_request;
    unsigned_request.method = "POST";
    unsigned_request.path = kPathSync;
    unsigned_request.body = pull;
    req("unsigned sync", unsigned_request, 401);
  }
  for (const char* h : {kHeaderDevice, kHeaderTime, kHeaderNonce, kHeaderSignature}) {
    req(std::string("sync without ") + h,
        WithHeader(Signed(field_a, "POST", kPathSync, pull), h, std::nullopt), 401);
    req(std::string("sync with an empty ") + h,
        WithHeader(Signed(field_a, "POST", kPathSync, pull), h, ""), 401);
  }
  const auto with = [&](const char* h, const std::string& v) {
    return WithHeader(Signed(field_a, "POST", kPathSync, pull), h, v);
  };
  req("device id not hex", with(kHeaderDevice, std::string(32, 'g')), 401);
  req("device id of 31 hex", with(kHeaderDevice, field_a.id.ToHex().substr(1)), 401);
  req("device id of 34 hex", with(kHeaderDevice, field_a.id.ToHex() + "00"), 401);
  req("time with letters", with(kHeaderTime, "17644e8"), 401);
  req("negative time", with(kHeaderTime, "-1764400000000"), 401);
  req("time of 20 digits", with(kHeaderTime, "17644000000000000000"), 401);
  req("time with a fraction", with(kHeaderTime, "1764400000000.5"), 401);
  req("nonce of 30 hex", with(kHeaderNonce, std::string(30, 'a')), 401);
  req("nonce not hex", with(kHeaderNonce, std::string(32, 'z')), 401);
  req("signature of 126 hex", with(kHeaderSignature, std::string(126, 'a')), 401);
  req("signature not hex", with(kHeaderSignature, std::string(128, 'x')), 401);
  req("signature all zeros", with(kHeaderSignature, std::string(128, '0')), 401);
  req("device header twice", Signed(field_a, "POST", kPathSync, pull), 401,
      {std::string(kHeaderDevice) + ": " + coord_b.id.ToHex()});
  req("signature header twice", Signed(field_a, "POST", kPathSync, pull), 401,
      {std::string(kHeaderSignature) + ": " + HeaderOf(good, kHeaderSignature)});
  req("stale time, 10 minutes ago",
      Signed(field_a, "POST", kPathSync, pull, AtTime(NowMs() - 600'000)), 401);
  req("future time, 10 minutes ahead",
      Signed(field_a, "POST", kPathSync, pull, AtTime(NowMs() + 600'000)), 401);
  req("time zero", Signed(field_a, "POST", kPathSync, pull, AtTime(0)), 401);
  req("largest 19-digit time",
      Signed(field_a, "POST", kPathSync, pull, AtTime(9'999'999'999'999'999'999ull)), 401);
  req("unknown device", Signed(stranger, "POST", kPathSync, pull), 403);
  notice("revoked device", revoked_a, Signed(revoked_a, "POST", kPathSync, pull));
  notice("revoked device of a team made by hand", gone_b, Signed(gone_b, "POST", kPathSync, pull));
  req("an outsider claims a revoked device's id",
      Signed(revoked_a, "POST", kPathSync, pull, WithKey(stranger.keys.secret_key)), 401);
  req("signed with another device's key",
      Signed(field_a, "POST", kPathSync, pull, WithKey(stranger.keys.secret_key)), 401);
  {
    OutgoingRequest altered = Signed(field_a, "POST", kPathSync, pull);
    altered.body.back() ^= 1;
    req("body changed after signing", altered, 401);
    OutgoingRequest longer = Signed(field_a, "POST", kPathSync, pull);
    longer.body.push_back(0);
    req("byte added after signing", longer, 401);
  }
  req("signed for another path",
      Signed(field_a, "POST", kPathSync, pull, SignedFor("", kPathCreateInvite)), 401);
  req("signed for another method", Signed(field_a, "POST", kPathSync, pull, SignedFor("PUT", "")),
      401);
  req("device header names another registered device",
      WithHeader(Signed(field_a, "POST", kPathSync, pull), kHeaderDevice, coord_id.ToHex()), 401);
  req("replay of an answered request", original, 401);
  {
    std::string upper = HeaderOf(original, kHeaderNonce);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    req("replay with the nonce in upper case", WithHeader(original, kHeaderNonce, upper), 401);
    OutgoingRequest query = original;
    query.path += "?again=1";
    req("replay with a query string added", query, 401);
    std::string upper_device = HeaderOf(original, kHeaderDevice);
    for (auto& c : upper_device) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    req("replay with the device id in upper case",
        WithHeader(original, kHeaderDevice, upper_device), 401);
  }

  // The sync body, from a device that signs correctly.
  const auto sync_from = [&](const RawDevice& d, Bytes body) {
    return Signed(d, "POST", kPathSync, std::move(body));
  };
  req("empty sync body", sync_from(field_a, {}), 400);
  req("garbage sync body", sync_from(field_a, B("garbage, not an envelope")), 400);
  req("JSON sync body", sync_from(field_a, B(R"({"cursor": 0, "writes": []})")), 400);
  req("archive marker 0", sync_from(field_a, Patched(pull, 0, {0})), 400);
  req("archive marker 2 (big-endian)", sync_from(field_a, Patched(pull, 0, {2})), 400);
  req("wrong magic", sync_from(field_a, Patched(pull, 1, {'X'})), 400);
  req("protocol version 8", sync_from(field_a, Patched(pull, 5, {8})), 409);
  req("protocol version 6 (before relayed registry chains)",
      sync_from(field_a, Patched(pull, 5, {6})), 409);
  req("protocol version 5 (before write-number gaps were detected)",
      sync_from(field_a, Patched(pull, 5, {5})), 409);
  req("protocol version 4 (before restored-hub recovery)",
      sync_from(field_a, Patched(pull, 5, {4})), 409);
  req("protocol version 2 (before compressed write lists)",
      sync_from(field_a, Patched(pull, 5, {2})), 409);
  req("protocol version 1 (before the device registry)", sync_from(field_a, Patched(pull, 5, {1})),
      409);
  req("protocol version 0", sync_from(field_a, Patched(pull, 5, {0})), 409);
  req("a join request sent to /v1/sync", sync_from(field_a, Patched(pull, 9, {5})), 400);
  req("unknown message type", sync_from(field_a, Patched(pull, 9, {99})), 400);
  req("envelope only", sync_from(field_a, Bytes(pull.begin(), pull.begin() + 10)), 400);
  req("sync request cut in half", sync_from(field_a, Bytes(pull.begin(), pull.begin() + 17)), 400);
  {
    Bytes trailing = pull;
    trailing.push_back(0);
    req("trailing byte after the sync request", sync_from(field_a, trailing), 400);
  }
  // Envelope (10 bytes), cursor, members version, registry version (8 each),
  // key version, response limit (4 each), registry blob length, key grant
  // count (4 each), then the write count at 50, the write list's size at 54
  // and the compressed list's length at 58 (docs/PROTOCOL.md §6.10).
  req("write count 2^32-1", sync_from(field_a, Patched(pull, 50, {0xff, 0xff, 0xff, 0xff})), 413);
  req("write count 10 001", sync_from(field_a, Patched(pull, 50, {0x11, 0x27, 0, 0})), 413);
  const Bytes one_write = SyncBody({WriteBytes(field_a, 1)});
  req("write count 5, one write sent", sync_from(field_a, Patched(one_write, 50, {5})), 400);
  {
    Bytes big = one_write;
    const Bytes len = Le32(17 << 20);
    std::copy(len.begin(), len.end(), big.begin() + 54);
    req("write list of 17 MiB claimed", sync_from(field_a, big), 413);
    Bytes wrong = one_write;
    const Bytes len1 = Le32(static_cast<uint32_t>(WriteBytes(field_a, 1).size() + 100));
    std::copy(len1.begin(), len1.end(), wrong.begin() + 54);
    req("write list size not the one its frame declares", sync_from(field_a, wrong), 400);
    Bytes over = one_write;
    const Bytes len2 = Le32(static_cast<uint32_t>(one_write.size()));
    std::copy(len2.begin(), len2.end(), over.begin() + 58);
    req("compressed write list longer than the body", sync_from(field_a, over), 400);
    Bytes damaged = one_write;
    damaged[62] ^= 0x5a;  // the zstd frame's magic number
    req("write list that is not a zstd frame", sync_from(field_a, damaged), 400);
  }

  // Bad writes inside a well-formed, well-signed push.
  const auto push = [&](const RawDevice& d, std::vector<Bytes> writes) {
    return sync_from(d, SyncBody(std::move(writes)));
  };
  const Bytes valid = WriteBytes(field_a, 1);
  req("write that is not a write", push(field_a, {B("not a write at all")}), 400);
  req("empty write", push(field_a, {Bytes{}}), 400);
  req("write format version 5", push(field_a, {Patched(valid, 1, {5})}), 400);
  req("write format version 0", push(field_a, {Patched(valid, 1, {0})}), 400);
  req("write archive marker 0", push(field_a, {Patched(valid, 0, {0})}), 400);
  req("write cut in half", push(field_a, {Bytes(valid.begin(), valid.begin() + valid.size() / 2)}),
      400);
  {
    Bytes trailing = valid;
    trailing.push_back(0);
    req("write with a trailing byte", push(field_a, {trailing}), 400);
    Bytes flipped = valid;
    flipped[flipped.size() - 70] ^= 1;  // inside the ciphertext
    req("write ciphertext changed after signing", push(field_a, {flipped}), 400);
    Bytes sig = valid;
    sig.back() ^= 1;
    req("write signature changed", push(field_a, {sig}), 400);
  }
  {
    RawDevice impostor;
    impostor.id = field_a.id;
    impostor.team = team_a;
    req("write signed by another key", push(field_a, {WriteBytes(impostor, 1)}), 400);
  }
  req("write for another team",
      push(field_a, {WriteBytes(field_a, 1, [&](Write& w) { w.team = coord_b.team; })}), 403);
  req("write with another device's dot",
      push(field_a, {WriteBytes(field_a, 1, [&](Write& w) { w.dot.device = coord_id; })}), 403);
  req("another team's stored write pushed as one's own", push(coord_b, {team_a_write}), 403);
  req("own team's write of another device pushed", push(field_a, {team_a_write}), 403);
  req("write counter 0", push(field_a, {WriteBytes(field_a, 0)}), 400);
  req("write counter 2^63", push(field_a, {WriteBytes(field_a, uint64_t{1} << 63)}), 400);
  req("write stamped 10 minutes in the future",
      push(field_a,
           {WriteBytes(field_a, 1,
                       [](Write& w) { w.hlc = HlcTimestamp::From(NowMs() + 600'000, 0); })}),
      400);
  req("write claims writes the hub never received",
      push(field_a, {WriteBytes(field_a, 1,
                                [&](Write& w) {
                                  w.context.Add(Dot{coord_id, 999});
                                })}),
      400);
  req("write claims its writer's own later write",
      push(field_a, {WriteBytes(field_a, 1,
                                [&](Write& w) {
                                  w.context.Add(Dot{field_a.id, 5});
                                })}),
      400);
  {
    // Context entry with counter 0: patch the counter of the one entry.
    Bytes zero = WriteBytes(field_a, 2, [&](Write& w) { w.context.Add(Dot{coord_id, 1}); });
    const size_t counter_at = 1 + 1 + 16 + 4 + 10 + 16 + 16 + 8 + 8 + 4 + 16;
    req("write context entry with counter 0",
        push(field_a, {Patched(zero, counter_at, {0, 0, 0, 0, 0, 0, 0, 0})}), 400);
  }
  req("write collection name with a space",
      push(field_a, {WriteBytes(field_a, 1, [](Write& w) { w.collection = "bad name"; })}), 400);
  req("write collection name starting with a digit",
      push(field_a, {WriteBytes(field_a, 1, [](Write& w) { w.collection = "9lives"; })}), 400);
  req("write collection name of 65 bytes",
      push(field_a,
           {WriteBytes(field_a, 1, [](Write& w) { w.collection = std::string(65, 'c'); })}),
      413);
  req("write field names not sorted",
      push(field_a, {WriteBytes(field_a, 1,
                                [](Write& w) {
                                  w.fields = {"enc_b", "enc_a"};
                                })}),
      400);
  req("write field name twice",
      push(field_a, {WriteBytes(field_a, 1,
                                [](Write& w) {
                                  w.fields = {"enc_a", "enc_a"};
                                })}),
      400);
  req("write with 513 fields",
      push(field_a, {WriteBytes(field_a, 1,
                                [](Write& w) {
                                  w.fields.clear();
                                  for (int i = 0; i < 513; ++i) {
                                    w.fields.push_back("f" + std::to_string(1000 + i));
                                  }
                                })}),
      413);
  req("write of unknown kind",
      push(field_a, {WriteBytes(field_a, 1, [](Write& w) { w.kind = static_cast<WriteKind>(9); })}),
      400);
  req("delete that sets fields",
      push(field_a, {WriteBytes(field_a, 1, [](Write& w) { w.kind = WriteKind::kDelete; })}), 400);
  {
    const Write w = MakeWrite(field_a, 1);
    Bytes big = w.Encode();
    const size_t at = w.EncodeMetadata().size() + 24;
    const Bytes len = Le32(2 << 20);
    std::copy(len.begin(), len.end(), big.begin() + static_cast<std::ptrdiff_t>(at));
    req("write ciphertext length 2 MiB", push(field_a, {big}), 413);
  }
  req("a valid write batched with a bad one", push(field_a, {valid, B("bad")}), 400);
  req("a valid write batched with another team's",
      push(field_a, {valid, WriteBytes(field_a, 2, [&](Write& w) { w.team = coord_b.team; })}),
      403);
  req("write number reused for other content", push(coord_b, {WriteBytes(coord_b, 1)}), 409);

  // A registry in a sync is stored only when it may follow the team's newest
  // (version 2 here): otherwise the sync is served and says why not.
  {
    const auto send = [&](const RawDevice& d, Bytes registry) {
      return sync_from(d, TrustSyncBody(std::move(registry)));
    };
    const auto entry = [](Registry& r, const RawDevice& d) -> RegistryEntry& {
      for (auto& e : r.entries) {
        if (e.device == d.id) return e;
      }
      FAIL("no entry");
      return r.entries.front();
    };
    Registry next = registry_b;
    next.version = 3;
    refused("registry signed by a field device", send(field_b, SignRegistry(next, field_b)));
    refused("registry in the coordinator's name, signed with another key",
            send(coord_b, SignRegistry(next, coord_b.id, stranger.keys.secret_key)));
    {
      Bytes flipped = SignRegistry(next, coord_b);
      flipped.back() ^= 1;
      refused("registry whose signature is spoilt", send(coord_b, flipped));
    }
    Registry dropped = next;
    std::erase_if(dropped.entries, [&](const RegistryEntry& e) { return e.device == field_b.id; });
    refused("registry that drops a device", send(coord_b, SignRegistry(dropped, coord_b)));
    Registry unrevoked = next;
    entry(unrevoked, gone_b).revoked_ms = 0;
    refused("registry that un-revokes a device", send(coord_b, SignRegistry(unrevoked, coord_b)));
    Registry moved = next;
    entry(moved, gone_b).revoked_after = 5;
    refused("registry that moves a revocation", send(coord_b, SignRegistry(moved, coord_b)));
    Registry rekeyed = next;
    entry(rekeyed, field_b).signing_key = stranger.keys.public_key;
    refused("registry that changes a device's keys", send(coord_b, SignRegistry(rekeyed, coord_b)));
    Registry writer = next;
    entry(writer, coord_b).revoked_ms = NowMs();
    refused("registry revoking a device below its stored writes",
            send(coord_b, SignRegistry(writer, coord_b)));
    served("registry resent as stored (a retry)", send(coord_b, SignRegistry(registry_b, coord_b)));
    Registry same_version = registry_b;
    same_version.entries.front().name = "otra";
    refused("registry of the stored version with other content",
            send(coord_b, SignRegistry(same_version, coord_b)));
    Registry older = next;
    older.version = 1;
    refused("registry of an older version", send(coord_b, SignRegistry(older, coord_b)));
    Registry other_team = next;
    other_team.team = team_a;
    refused("registry of another team", send(coord_b, SignRegistry(other_team, coord_b)));
    Registry field_a_registry = other_team;  // a version above team A's
    field_a_registry.version = 1000;
    refused("registry signed by a field device of the other team",
            send(field_a, SignRegistry(field_a_registry, field_a)));
    refused("malformed registry", send(coord_b, B("not a registry")));
    {
      Bytes trailing = SignRegistry(next, coord_b);
      trailing.push_back(0);
      refused("registry with a trailing byte", send(coord_b, trailing));
      Registry unsorted = next;
      std::sort(unsorted.entries.begin(), unsorted.entries.end(),
                [](const RegistryEntry& x, const RegistryEntry& y) { return y.device < x.device; });
      unsorted.signature = internal::Sign(coord_b.keys.secret_key, RegistrySigningInput(unsorted));
      refused("registry with its devices out of order", send(coord_b, EncodeRegistry(unsorted)));
    }
    // (A registry signed by the coordinator and sent by a field device is
    // stored: any member may carry the team's registry to a hub that lacks
    // it, restored from a backup; tests/e2e/restore_e2e_test.)
  }
  // Key grants in a sync: only a coordinator's, validly signed, for an active
  // member of its team are kept; the rest are dropped without a word.
  {
    KeyGrant g;
    g.team = coord_b.team;
    g.version = 2;
    g.recipient = field_b.id;
    g.sealed = Bytes(80, 1);
    g.issuer = coord_b.id;
    const auto sign = [](KeyGrant k, const internal::SecretBytes& key) {
      k.signature = internal::Sign(key, KeyGrantSigningInput(k));
      return EncodeKeyGrant(k);
    };
    const auto grants = [&](const RawDevice& d, std::vector<Bytes> list) {
      return sync_from(d, TrustSyncBody({}, std::move(list)));
    };
    const internal::SecretBytes& own = coord_b.keys.secret_key;
    served("key grant signed by another key", grants(coord_b, {sign(g, stranger.keys.secret_key)}));
    {
      Bytes flipped = sign(g, own);
      flipped.back() ^= 1;
      served("key grant whose signature is spoilt", grants(coord_b, {flipped}));
    }
    KeyGrant by_field = g;
    by_field.issuer = field_b.id;
    served("key grant issued by a field device, sent by the coordinator",
           grants(coord_b, {sign(by_field, field_b.keys.secret_key)}));
    // A member may send again a grant made for itself (to a hub restored
    // from a backup), never one for another device.
    KeyGrant for_coord = g;
    for_coord.recipient = coord_b.id;
    served("key grant for another device, sent by a field device",
           grants(field_b, {sign(for_coord, own)}));
    KeyGrant to_revoked = g;
    to_revoked.recipient = gone_b.id;
    served("key grant for a revoked device", grants(coord_b, {sign(to_revoked, own)}));
    KeyGrant to_other = g;
    to_other.recipient = field_a.id;
    served("key grant for another team's device", grants(coord_b, {sign(to_other, own)}));
    KeyGrant to_stranger = g;
    to_stranger.recipient = stranger.id;
    served("key grant for an unknown device", grants(coord_b, {sign(to_stranger, own)}));
    KeyGrant other_team = g;
    other_team.team = team_a;
    served("key grant naming another team", grants(coord_b, {sign(other_team, own)}));
    served("malformed key grant", grants(coord_b, {B("keys for everyone")}));
  }
  // A revoked device's other requests get the notice too.
  notice(
      "invite by a revoked device", gone_b,
      Signed(gone_b, "POST", kPathCreateInvite, Encode(MakeInvite(gone_b, NowMs() + 60'000).req)));

  // /v1/invites: coordinators only, checked bodies.
  const auto invite_from = [&](const RawDevice& d, Bytes body) {
    return Signed(d, "POST", kPathCreateInvite, std::move(body));
  };
  const RawInvite fresh = MakeInvite(coord_b, NowMs() + 3'600'000);
  const CreateInviteRequest& fresh_invite = fresh.req;
  req("a field device invites", invite_from(field_a, Encode(fresh_invite)), 403);
  req("an unknown device invites", invite_from(stranger, Encode(fresh_invite)), 403);
  {
    OutgoingRequest unsigned_invite;
    unsigned_invite.method = "POST";
    unsigned_invite.path = kPathCreateInvite;
    unsigned_invite.body = Encode(fresh_invite);
    req("unsigned invite", unsigned_invite, 401);
  }
  req("garbage invite", invite_from(coord_b, B("invite me")), 400);
  {
    CreateInviteRequest expired = fresh_invite;
    expired.expires_ms = NowMs() - 1000;
    req("invite already expired", invite_from(coord_b, Encode(expired)), 400);
    Bytes role = Encode(fresh_invite);
    role[1 + 4 + 4 + 1 + 16 + 32 + 8] = 3;
    req("invite with role 3", invite_from(coord_b, role), 400);
    Bytes env = Encode(fresh_invite);
    const Bytes len = Le32(70'000);
    std::copy(len.begin(), len.end(), env.begin() + (1 + 4 + 4 + 1 + 16 + 32 + 8 + 1));
    req("invite envelope length 70 000", invite_from(coord_b, env), 413);
    Bytes trailing = Encode(fresh_invite);
    trailing.push_back(1);
    req("invite with a trailing byte", invite_from(coord_b, trailing), 400);
    req("invite id already in use", invite_from(coord_b, Encode(open_invite)), 409);
    req("invite as a sync body", invite_from(coord_b, pull), 400);
  }
  // The invite grant: the coordinator's own signature over what the request
  // says (team, invite id, issuer, role, expiry).
  {
    const auto with_grant = [&](const std::function<void(InviteGrant&)>& edit,
                                const internal::SecretBytes& key) {
      CreateInviteRequest r = fresh_invite;
      InviteGrant g = fresh.grant;
      edit(g);
      r.grant = SignGrant(g, key);
      return invite_from(coord_b, Encode(r));
    };
    const internal::SecretBytes& own = coord_b.keys.secret_key;
    req("invite grant signed by another key",
        with_grant([](InviteGrant&) {}, stranger.keys.secret_key), 400);
    req("invite grant issued and signed by a field device of the team",
        with_grant([&](InviteGrant& g) { g.issuer = field_b.id; }, field_b.keys.secret_key), 400);
    req("invite grant in another coordinator's name",
        with_grant([&](InviteGrant& g) { g.issuer = coord_id; }, own), 400);
    req("invite grant for another team", with_grant([&](InviteGrant& g) { g.team = team_a; }, own),
        400);
    req("invite grant for another invite id",
        with_grant([&](InviteGrant& g) { g.invite = open_invite.invite_id; }, own), 400);
    req("invite grant for the coordinator role",
        with_grant([](InviteGrant& g) { g.role = Role::kCoordinator; }, own), 400);
    req("invite grant with a later expiry",
        with_grant([](InviteGrant& g) { g.expires_ms += 86'400'000; }, own), 400);
    CreateInviteRequest r = fresh_invite;
    r.grant.clear();
    req("invite without a grant", invite_from(coord_b, Encode(r)), 400);
    r.grant = B("a grant, trust me");
    req("malformed invite grant", invite_from(coord_b, Encode(r)), 400);
    r.grant = fresh_invite.grant;
    r.grant.push_back(0);
    req("invite grant with a trailing byte", invite_from(coord_b, Encode(r)), 400);
    r.grant = fresh_invite.grant;
    r.grant.back() ^= 1;
    req("invite grant with a flipped signature bit", invite_from(coord_b, Encode(r)), 400);
    r.grant = Bytes(1025, 1);
    req("invite grant of 1025 bytes", invite_from(coord_b, Encode(r)), 413);
  }

  // /v1/join: decoded first, then signed by the key it registers.
  RawDevice joiner;
  const auto join_body = [&](const std::array<uint8_t, 16>& id, const PublicKey32& verifier,
                             const std::string& name = "nuevo") {
    return Encode(JoinOf(id, verifier, joiner, name, open.secret));
  };
  const auto join_from = [&](const RawDevice& d, Bytes body, const SignOptions& so = {}) {
    return Signed(d, "POST", kPathJoin, std::move(body), so);
  };
  req("garbage join", join_from(joiner, B("let me in")), 400);
  req("join of an unknown invite", join_from(joiner, join_body(fresh_invite.invite_id, {})), 403);
  {
    PublicKey32 wrong = open_invite.verifier;
    wrong[0] ^= 1;
    req("join with a wrong verifier", join_from(joiner, join_body(open_invite.invite_id, wrong)),
        403);
  }
  req("join of an expired invite",
      join_from(joiner, join_body(expiring.invite_id, expiring.verifier)), 403);
  req("join of a used invite", join_from(joiner, join_body(used_invite, invite_verifier)), 403);
  req("join by a device already registered",
      join_from(coord_b, Encode(JoinOf(open_invite.invite_id, open_invite.verifier, coord_b,
                                       "again", open.secret))),
      409);
  // The binding: the invite key's signature of the new device's id, keys
  // and name.
  {
    const std::string name = "nuevo";
    const auto bound = [&](const std::array<uint8_t, 64>& binding) {
      return join_from(joiner, Encode(JoinRequest{open_invite.invite_id, open_invite.verifier, name,
                                                  joiner.keys.public_key, joiner.box, binding}));
    };
    const Admission own = AdmissionOf(open_invite.invite_id, joiner, name);
    InviteSecret other_secret{};
    internal::RandomFill(other_secret);
    req("join without a binding", bound({}), 403);
    req("join with a binding made without the invite's key", bound(Bind(own, other_secret)), 403);
    req("join with a binding made with another invite's key",
        bound(Bind(own, expiring_invite.secret)), 403);
    Admission swapped = own;
    std::swap(swapped.signing_key, swapped.encryption_key);
    req("join with a binding over swapped keys", bound(Bind(swapped, open.secret)), 403);
    req("join with its keys swapped, as its binding says",
        join_from(joiner,
                  Encode(JoinRequest{open_invite.invite_id, open_invite.verifier, name, joiner.box,
                                     joiner.keys.public_key, Bind(swapped, open.secret)})),
        401);
    req("join with a binding made for another device",
        bound(Bind(AdmissionOf(open_invite.invite_id, stranger, name), open.secret)), 403);
    Admission renamed = own;
    renamed.name = "otro";
    req("join with a binding for another name", bound(Bind(renamed, open.secret)), 403);
    Admission other_invite = own;
    other_invite.grant.invite = expiring.invite_id;
    req("join with a binding for another invite", bound(Bind(other_invite, open.secret)), 403);
  }
  req("join signed by a key other than the one it registers",
      join_from(joiner, join_body(open_invite.invite_id, open_invite.verifier),
                WithKey(stranger.keys.secret_key)),
      401);
  req("join with a stale time",
      join_from(joiner, join_body(open_invite.invite_id, open_invite.verifier),
                AtTime(NowMs() - 600'000)),
      401);
  req("join with a device name of 300 bytes",
      join_from(joiner,
                join_body(open_invite.invite_id, open_invite.verifier, std::string(300, 'n'))),
      413);
  {
    Bytes trailing = join_body(open_invite.invite_id, open_invite.verifier);
    trailing.push_back(0);
    req("join with a trailing byte", join_from(joiner, trailing), 400);
    req("join in protocol version 8",
        join_from(joiner, Patched(join_body(open_invite.invite_id, open_invite.verifier), 5, {8})),
        409);
    OutgoingRequest unsigned_join;
    unsigned_join.method = "POST";
    unsigned_join.path = kPathJoin;
    unsigned_join.body = join_body(open_invite.invite_id, open_invite.verifier);
    req("unsigned join", unsigned_join, 401);
  }

  // /v1/teams: one-time bootstrap tokens.
  RawDevice founder;
  const auto team_body = [&](const TeamId& team, const std::string& token,
                             const RawDevice& d = RawDevice{}, const std::string& name = "Nueva",
                             std::optional<Bytes> registry = std::nullopt) {
    return Encode(RegisterTeamRequest{team, name, token, "fundadora", d.keys.public_key, d.box,
                                      registry ? *registry : SignRegistry(Genesis(d, team), d)});
  };
  const auto register_from = [&](const RawDevice& d, Bytes body, const SignOptions& so = {}) {
    return Signed(d, "POST", kPathRegisterTeam, std::move(body), so);
  };
  req("garbage registration", register_from(founder, B("a team, please")), 400);
  req("registration with an unknown token",
      register_from(founder, team_body(TeamId::Random(), "bt-not-a-token", founder)), 403);
  req("registration with a used token",
      register_from(founder, team_body(TeamId::Random(), used_token, founder)), 403);
  req("registration of team id zero",
      register_from(founder, team_body(TeamId{}, fresh_token_1, founder)), 400);
  req("registration of an existing team",
      register_from(founder, team_body(team_a, fresh_token_1, founder)), 409);
  req("registration by a registered device",
      register_from(field_a, team_body(TeamId::Random(), fresh_token_2, field_a)), 409);
  req("registration signed by another key",
      register_from(founder, team_body(TeamId::Random(), fresh_token_3, founder),
                    WithKey(stranger.keys.secret_key)),
      401);
  req("registration with a team name of 300 bytes",
      register_from(founder,
                    team_body(TeamId::Random(), fresh_token_3, founder, std::string(300, 't'))),
      413);
  req("registration with a token of 300 bytes",
      register_from(founder, team_body(TeamId::Random(), std::string(300, 'k'), founder)), 413);
  req("registration in protocol version 8",
      register_from(founder, Patched(team_body(TeamId::Random(), fresh_token_3, founder), 5, {8})),
      409);
  // The team's first registry: version 1, the registering device alone, as
  // coordinator, signed by it.
  {
    const TeamId t = TeamId::Random();
    const auto with_registry = [&](Bytes registry) {
      return register_from(founder, team_body(t, fresh_token_3, founder, "Nueva", registry));
    };
    const Registry g = Genesis(founder, t);
    req("registration without a registry", with_registry({}), 400);
    req("registration with a malformed registry", with_registry(B("our registry")), 400);
    Bytes trailing = SignRegistry(g, founder);
    trailing.push_back(0);
    req("registration with a registry and a trailing byte", with_registry(trailing), 400);
    Bytes flipped = SignRegistry(g, founder);
    flipped.back() ^= 1;
    req("registration with a registry whose signature is spoilt", with_registry(flipped), 403);
    req("registration with a registry signed by another key",
        with_registry(SignRegistry(g, founder.id, stranger.keys.secret_key)), 403);
    req("registration with a registry listing another device",
        with_registry(SignRegistry(Genesis(stranger, t), stranger)), 403);
    Registry v2 = g;
    v2.version = 2;
    req("registration with a registry of version 2", with_registry(SignRegistry(v2, founder)), 403);
    Registry v0 = g;
    v0.version = 0;
    req("registration with a registry of version 0", with_registry(SignRegistry(v0, founder)), 403);
    Registry two = g;
    two.entries.push_back(Genesis(stranger, t).entries[0]);
    req("registration with a registry of two devices", with_registry(SignRegistry(two, founder)),
        403);
    req("registration with another team's registry",
        with_registry(SignRegistry(Genesis(founder, team_a), founder)), 403);
    Registry field = g;
    field.entries[0].role = Role::kField;
    req("registration with a registry naming its founder a field device",
        with_registry(SignRegistry(field, founder)), 403);
    Registry revoked = g;
    revoked.entries[0].revoked_ms = 1;
    req("registration with a registry revoking its founder",
        with_registry(SignRegistry(revoked, founder)), 403);
    Registry rekeyed = g;
    rekeyed.entries[0].encryption_key[0] ^= 1;
    req("registration with a registry naming other keys",
        with_registry(SignRegistry(rekeyed, founder)), 403);
  }

  // Published reports: JSON bodies.
  const auto report_from = [&](const RawDevice& d, const std::string& body) {
    return Signed(d, "POST", "/v1/reports", B(body));
  };
  {
    OutgoingRequest unsigned_report;
    unsigned_report.method = "POST";
    unsigned_report.path = "/v1/reports";
    unsigned_report.body = B("{}");
    req("unsigned report", unsigned_report, 401);
    req("a report with a viewer token", unsigned_report, 403,
        {"Authorization: Bearer "
         "vt-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
  }
  req("a field device publishes a report", report_from(field_a, "{}"), 403);
  req("report that is not JSON", report_from(coord_b, "{\"title\": "), 400);
  req("report that is a JSON array", report_from(coord_b, "[1, 2, 3]"), 400);
  req("report with a NUL in its JSON", report_from(coord_b, std::string("{\"a\":\"\0\"}", 9)), 400);
  raw("reports with an unknown viewer token",
      "GET /v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer vt-nope\r\n" + close + "\r\n",
      401);
  raw("reports with a Basic authorization",
      "GET /v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\n" + close +
          "\r\n",
      401);
  req("report id that is not hex", Signed(field_a, "GET", "/v1/reports/zzzz", {}), 404);
  req("report that does not exist",
      Signed(field_a, "GET", "/v1/reports/" + RecordId::Random().ToHex(), {}), 404);

  // /v1/history (audit): signed like /v1/sync, an envelope with a collection
  // name and a record id.
  {
    const Bytes history = Encode(HistoryRequest{"encounters", RecordId::Random()});
    const auto history_from = [&](const RawDevice& d, Bytes body, const SignOptions& so = {}) {
      return Signed(d, "POST", kPathHistory, std::move(body), so);
    };
    OutgoingRequest unsigned_history;
    unsigned_history.method = "POST";
    unsigned_history.path = kPathHistory;
    unsigned_history.body = history;
    req("unsigned history", unsigned_history, 401);
    req("history by an unknown device", history_from(stranger, history), 403);
    notice("history by a revoked device", revoked_a, history_from(revoked_a, history));
    req("history signed by another key",
        history_from(field_a, history, WithKey(stranger.keys.secret_key)), 401);
    req("history with a stale time", history_from(field_a, history, AtTime(NowMs() - 600'000)),
        401);
    req("garbage history", history_from(field_a, B("who wrote what?")), 400);
    req("empty history body", history_from(field_a, {}), 400);
    req("history with a sync body", history_from(field_a, SyncBody()), 400);
    Bytes trailing = history;
    trailing.push_back(0);
    req("history with a trailing byte", history_from(field_a, trailing), 400);
    req("history cut inside the record id",
        history_from(field_a, Bytes(history.begin(), history.end() - 3)), 400);
    req("history in protocol version 8", history_from(field_a, Patched(history, 5, {8})), 409);
    req("history of a collection name of 65 bytes",
        history_from(field_a, Encode(HistoryRequest{std::string(65, 'c'), RecordId::Random()})),
        413);
    req("history of an empty collection name",
        history_from(field_a, Encode(HistoryRequest{"", RecordId::Random()})), 400);
    req("history of a collection name with a space",
        history_from(field_a, Encode(HistoryRequest{"bad name", RecordId::Random()})), 400);
    req("history with a collection length past the body",
        history_from(field_a, Patched(history, 10, {0x40, 0, 0, 0})), 400);
    raw("GET /v1/history", get("/v1/history"), 405);
    raw("Content-Length 64 KiB + 1 on /v1/history", post_cl("/v1/history", "65537"), 413);
  }

  CHECK(cases.size() >= 100);
  std::set<std::string> names;
  for (const Case& c : cases) {
    INFO("case \"", c.name, "\"");
    CHECK(names.insert(c.name).second);  // distinct
    const HttpReply reply = Send(port, c.bytes);
    INFO("answer: ", reply.raw.substr(0, 300));
    CHECK(reply.status == c.expect);
    if (std::getenv("ENLACE_BAD_INPUT_TRACE") != nullptr) {
      std::fprintf(stderr, "%-55s %d %s\n", c.name.c_str(), reply.status,
                   reply.body.substr(0, 160).c_str());
    }
    CHECK(reply.status < 500);
    const std::span<const uint8_t> body_bytes(reinterpret_cast<const uint8_t*>(reply.body.data()),
                                              reply.body.size());
    switch (c.answer) {
      case Answer::kError:
        if (reply.headers.contains(kHeaderHubTime) && c.bytes.rfind("HEAD", 0) != 0) {
          // The handler's errors say why, in JSON.
          const json body = json::parse(reply.body, nullptr, false);
          CHECK((body.is_object() && body.contains("error")));
        }
        break;
      case Answer::kNotice: {
        // The registry chain that proves the revocation, newest last.
        auto n = DecodeRevokedNotice(body_bytes);
        REQUIRE_MESSAGE(n.ok(), n.status().ToString());
        REQUIRE(!n->registries.empty());
        auto newest = DecodeRegistry(n->registries.back());
        REQUIRE(newest.ok());
        const RegistryEntry* e = newest->Find(c.who);
        REQUIRE(e != nullptr);
        CHECK(e->revoked());
        break;
      }
      case Answer::kRegistryRefused:
      case Answer::kSyncOk: {
        auto s = DecodeSyncResponse(body_bytes);
        REQUIRE_MESSAGE(s.ok(), s.status().ToString());
        INFO("registry refused: ", s->registry_refused);
        if (std::getenv("ENLACE_BAD_INPUT_TRACE") != nullptr) {
          std::fprintf(stderr, "%-55s refused: %s\n", c.name.c_str(), s->registry_refused.c_str());
        }
        CHECK(s->registry_refused.empty() == (c.answer == Answer::kSyncOk));
        CHECK(s->key_grants.empty());
        break;
      }
    }
  }
  MESSAGE(cases.size(), " bad requests sent");

  // Slow clients: the hub hangs up after its read timeout, without answering.
  for (auto* f : {&silent, &dripping, &half_body}) {
    const SlowResult r = f->get();
    CHECK(r.closed);
    CHECK(r.reply.empty());
  }

  // Another team's pull sees none of team A's writes.
  {
    const HttpReply reply = Post(port, Signed(coord_b, "POST", kPathSync, SyncBody()));
    REQUIRE(reply.status == 200);
    auto resp = DecodeSyncResponse(
        {reinterpret_cast<const uint8_t*>(reply.body.data()), reply.body.size()});
    REQUIRE(resp.ok());
    CHECK(resp->writes.empty());
  }

  // Not one of them changed the hub's data (request nonces aside), but for
  // the one device a refused revocation froze: the hub takes no more of its
  // writes, so that the same revocation signed again with the cut-off holds.
  {
    ReadOnlyDb hub(o.hub_db());
    const auto after = hub.TableDigests({"nonces", "devices"});
    CHECK(after == before);
    CHECK(hub.Rows(kDevicesButFrozen) == devices_before);
    const auto frozen = hub.Rows("SELECT device FROM devices WHERE frozen != 0");
    REQUIRE(frozen.size() == 1);
    CHECK(frozen[0][0] == "x" + coord_b.id.ToHex());
    CHECK(hub.IntegrityCheck() == "ok");
  }

  // And the hub serves as before.
  const HttpReply health = Send(port, get("/v1/health"));
  CHECK(health.status == 200);
  o.coord.Ok(testing::PutEncounter("after"));
  CHECK(o.coord.Sync()["sent"] == 1);
  CHECK(ana.Sync()["received"] == 1);
  CHECK(ana.Json({"list", "encounters"}) == o.coord.Json({"list", "encounters"}));
}

}  // namespace
}  // namespace enlace
