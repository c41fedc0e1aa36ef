// The sync protocol's messages and request signatures (enlace/wire.h):
// round trips, every truncation, hostile lengths, trailing bytes, the
// signature headers, and a frozen encoding.
#include "enlace/wire.h"

#include <doctest/doctest.h>
#include <sodium.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "base/codec.h"
#include "base/compress.h"
#include "crypto/crypto.h"

// Tracks the largest single allocation, so the tests can show that a hostile
// length is refused before anything is allocated for it.
namespace {
std::atomic<size_t> g_largest_allocation{0};
}  // namespace

// GCC cannot see that these replacements pair malloc with free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  size_t prev = g_largest_allocation.load(std::memory_order_relaxed);
  while (size > prev && !g_largest_allocation.compare_exchange_weak(prev, size)) {
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace enlace {
namespace {

// The largest allocation made while running `fn`.
size_t LargestAllocationDuring(const std::function<void()>& fn) {
  g_largest_allocation = 0;
  fn();
  return g_largest_allocation.load();
}

std::string Hex(const Bytes& b) { return internal::ToHex(b); }

bool SameTrust(const TrustUpdate& a, const TrustUpdate& b) {
  return a.version == b.version && a.registries == b.registries && a.admissions == b.admissions;
}

template <size_t N>
std::array<uint8_t, N> Filled(uint8_t seed) {
  std::array<uint8_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(seed + 11 * i);
  return a;
}

SyncRequest SampleSyncRequest() {
  SyncRequest m;
  m.cursor = 0x0102030405060708ull;
  m.members_version = 42;
  m.registry_version = 7;
  m.key_version = 3;
  m.max_response_bytes = 123456;
  m.registry = Bytes(90, 0x21);
  m.key_grants = {Bytes(70, 0x22), Bytes{}};
  m.writes = {Bytes{1, 2, 3}, Bytes{}, Bytes(300, 0xab)};
  m.refetch = {12, 7000000000ull};
  DeviceId d;
  d.bytes.fill(0x31);
  m.wanted = {{d, 3, 9}, {d, 11, 11}};
  m.relay_registries = {Bytes(50, 0x41), Bytes(60, 0x42)};
  return m;
}

TrustUpdate SampleTrust(uint64_t version) {
  TrustUpdate t;
  t.version = version;
  t.registries = {Bytes(120, 0x11), Bytes(130, 0x12)};
  t.admissions = {Bytes(200, 0x13)};
  return t;
}

SyncResponse SampleSyncResponse() {
  SyncResponse m;
  m.hub_time_ms = 1'780'000'000'123ull;
  m.acked_up_to = 17;
  m.next_cursor = 99;
  m.more = true;
  m.trust = SampleTrust(5);
  m.registry_refused = "revocación rechazada";
  m.key_grants = {Bytes(60, 0x44)};
  m.needs_keys = {DeviceId{Filled<16>(60)}, DeviceId{Filled<16>(61)}};
  m.seqs = {1000, 1002};
  m.writes = {Bytes(40, 7), Bytes{9}};
  m.reseal_below = 3;
  m.cutoffs = {RevocationCutoff{DeviceId{Filled<16>(62)}, 4711}};
  m.log_end = 1003;
  m.registry_version = 12;
  m.out_of_scope = 77;
  return m;
}

RegisterTeamRequest SampleRegister() {
  RegisterTeamRequest m;
  m.team.bytes = Filled<16>(3);
  m.team_name = "Tlaxcala";
  m.bootstrap_token = "tok-0123456789";
  m.device_name = "oficina";
  m.signing_key = Filled<32>(4);
  m.encryption_key = Filled<32>(5);
  m.registry = Bytes(140, 0x77);
  return m;
}

CreateInviteRequest SampleInvite() {
  CreateInviteRequest m;
  m.invite_id = Filled<16>(6);
  m.verifier = Filled<32>(7);
  m.expires_ms = 1'780'000'360'000ull;
  m.role = Role::kCoordinator;
  m.envelope = Bytes(72, 0x5a);
  m.grant = Bytes(170, 0x66);
  return m;
}

JoinRequest SampleJoin() {
  JoinRequest m;
  m.invite_id = Filled<16>(8);
  m.verifier = Filled<32>(9);
  m.device_name = "teléfono de Beto";
  m.signing_key = Filled<32>(10);
  m.encryption_key = Filled<32>(11);
  m.binding = Filled<64>(12);
  return m;
}

JoinResponse SampleJoinResponse() {
  JoinResponse m;
  m.team.bytes = Filled<16>(12);
  m.role = Role::kField;
  m.envelope = Bytes(88, 0x33);
  m.trust = SampleTrust(3);
  return m;
}

MembersResponse SampleMembers() {
  MembersResponse m;
  m.trust = SampleTrust(9);
  return m;
}

// Every message, encoded, with a decoder that reports only the status.
struct Encoded {
  const char* name;
  Bytes bytes;
  std::function<Status(std::span<const uint8_t>, const WireLimits&)> decode;
};

template <typename F>
std::function<Status(std::span<const uint8_t>, const WireLimits&)> StatusOf(F f) {
  return [f](std::span<const uint8_t> b, const WireLimits& l) -> Status {
    auto r = f(b, l);
    return r.ok() ? Status::Ok() : r.status();
  };
}

std::vector<Encoded> AllMessages() {
  return {
      {"SyncRequest", Encode(SampleSyncRequest()), StatusOf(DecodeSyncRequest)},
      {"SyncResponse", Encode(SampleSyncResponse()), StatusOf(DecodeSyncResponse)},
      {"RegisterTeamRequest", Encode(SampleRegister()), StatusOf(DecodeRegisterTeamRequest)},
      {"CreateInviteRequest", Encode(SampleInvite()), StatusOf(DecodeCreateInviteRequest)},
      {"JoinRequest", Encode(SampleJoin()), StatusOf(DecodeJoinRequest)},
      {"JoinResponse", Encode(SampleJoinResponse()), StatusOf(DecodeJoinResponse)},
      {"MembersResponse", Encode(SampleMembers()), StatusOf(DecodeMembersResponse)},
      {"RevokedNotice", Encode(RevokedNotice{{Bytes(30, 1)}}), StatusOf(DecodeRevokedNotice)},
  };
}

void AppendU32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// The encoded list of `writes` as a write list carries it, uncompressed.
Bytes ListOf(const std::vector<Bytes>& writes) {
  internal::Encoder e;
  for (const auto& w : writes) e.Blob(w);
  return e.Finish();
}

// `empty_message` (whose last 4 bytes are its zero write count) with a
// write list of `count` writes whose encoded list is `raw`.
// An empty SyncRequest's encoding with its (empty) write list replaced: the
// list is followed by the refetch, admission, wanted and relayed registry
// counts, 16 bytes.
Bytes WithWriteList(Bytes empty_message, uint32_t count, const Bytes& raw) {
  constexpr size_t kAfterList = 16;  // refetch, admission, wanted and relay counts
  const Bytes tail(empty_message.end() - kAfterList, empty_message.end());
  empty_message.resize(empty_message.size() - kAfterList - 4);
  AppendU32(empty_message, count);
  AppendU32(empty_message, static_cast<uint32_t>(raw.size()));
  const Bytes frame = internal::Compress(raw);
  AppendU32(empty_message, static_cast<uint32_t>(frame.size()));
  empty_message.insert(empty_message.end(), frame.begin(), frame.end());
  empty_message.insert(empty_message.end(), tail.begin(), tail.end());
  return empty_message;
}

void PutU32(Bytes& b, size_t at, uint32_t v) {
  REQUIRE(at + 4 <= b.size());
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Offsets in the envelope: the archive's endianness byte, "ENLC", the u32
// version, the message type.
constexpr size_t kHeaderBytes = 1 + 4 + 4 + 1;

// ---- round trips ---------------------------------------------------------------------

TEST_CASE("every message decodes to what was encoded") {
  {
    const SyncRequest m = SampleSyncRequest();
    auto d = DecodeSyncRequest(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->cursor == m.cursor);
    CHECK(d->members_version == m.members_version);
    CHECK(d->registry_version == m.registry_version);
    CHECK(d->key_version == m.key_version);
    CHECK(d->max_response_bytes == m.max_response_bytes);
    CHECK(d->registry == m.registry);
    CHECK(d->key_grants == m.key_grants);
    CHECK(d->writes == m.writes);
    CHECK(d->refetch == m.refetch);
    CHECK(d->wanted == m.wanted);
    CHECK(d->relay_registries == m.relay_registries);
  }
  {
    const SyncResponse m = SampleSyncResponse();
    auto d = DecodeSyncResponse(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->hub_time_ms == m.hub_time_ms);
    CHECK(d->acked_up_to == m.acked_up_to);
    CHECK(d->next_cursor == m.next_cursor);
    CHECK(d->more == m.more);
    CHECK(SameTrust(d->trust, m.trust));
    CHECK(d->registry_refused == m.registry_refused);
    CHECK(d->key_grants == m.key_grants);
    CHECK(d->needs_keys == m.needs_keys);
    CHECK(d->seqs == m.seqs);
    CHECK(d->writes == m.writes);
    CHECK(d->reseal_below == m.reseal_below);
    CHECK(d->cutoffs == m.cutoffs);
    CHECK(d->log_end == m.log_end);
    CHECK(d->registry_version == m.registry_version);
    CHECK(d->out_of_scope == m.out_of_scope);
  }
  {
    const RegisterTeamRequest m = SampleRegister();
    auto d = DecodeRegisterTeamRequest(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->team == m.team);
    CHECK(d->team_name == m.team_name);
    CHECK(d->bootstrap_token == m.bootstrap_token);
    CHECK(d->device_name == m.device_name);
    CHECK(d->signing_key == m.signing_key);
    CHECK(d->encryption_key == m.encryption_key);
    CHECK(d->registry == m.registry);
  }
  {
    const CreateInviteRequest m = SampleInvite();
    auto d = DecodeCreateInviteRequest(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->invite_id == m.invite_id);
    CHECK(d->verifier == m.verifier);
    CHECK(d->expires_ms == m.expires_ms);
    CHECK(d->role == m.role);
    CHECK(d->envelope == m.envelope);
    CHECK(d->grant == m.grant);
  }
  {
    const JoinRequest m = SampleJoin();
    auto d = DecodeJoinRequest(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->invite_id == m.invite_id);
    CHECK(d->verifier == m.verifier);
    CHECK(d->device_name == m.device_name);
    CHECK(d->signing_key == m.signing_key);
    CHECK(d->encryption_key == m.encryption_key);
    CHECK(d->binding == m.binding);
  }
  {
    const JoinResponse m = SampleJoinResponse();
    auto d = DecodeJoinResponse(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->team == m.team);
    CHECK(d->role == m.role);
    CHECK(d->envelope == m.envelope);
    CHECK(SameTrust(d->trust, m.trust));
  }
  {
    const MembersResponse m = SampleMembers();
    auto d = DecodeMembersResponse(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(SameTrust(d->trust, m.trust));
  }
  {
    RevokedNotice m;
    m.registries = {Bytes(50, 1), Bytes(60, 2)};
    auto d = DecodeRevokedNotice(Encode(m));
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->registries == m.registries);
  }
}

TEST_CASE("empty messages round trip too") {
  auto sreq = DecodeSyncRequest(Encode(SyncRequest{}));
  REQUIRE(sreq.ok());
  CHECK(sreq->writes.empty());
  CHECK(sreq->max_response_bytes == SyncRequest{}.max_response_bytes);
  auto sresp = DecodeSyncResponse(Encode(SyncResponse{}));
  REQUIRE(sresp.ok());
  CHECK(!sresp->more);
  CHECK(sresp->trust.version == 0);
  CHECK(sresp->trust.registries.empty());
  auto members = DecodeMembersResponse(Encode(MembersResponse{}));
  REQUIRE(members.ok());
  CHECK(members->trust.admissions.empty());
}

TEST_CASE("an encoding is deterministic and starts with the versioned envelope") {
  for (const auto& m : AllMessages()) {
    CAPTURE(m.name);
    REQUIRE(m.bytes.size() > kHeaderBytes);
    CHECK(std::memcmp(m.bytes.data() + 1, "ENLC", 4) == 0);
    CHECK(m.bytes[5] == kProtocolVersion);
    CHECK(m.bytes[6] == 0);
  }
  CHECK(Encode(SampleSyncResponse()) == Encode(SampleSyncResponse()));
  CHECK(Encode(SampleJoinResponse()) == Encode(SampleJoinResponse()));
}

TEST_CASE("a sync request's encoding is frozen") {
  SyncRequest m;
  m.cursor = 7;
  m.members_version = 2;
  m.registry_version = 3;
  m.key_version = 4;
  m.max_response_bytes = 1024;
  m.writes = {Bytes{1, 2, 3}};
  // endianness marker, "ENLC", version 7 (u32 LE), type 1, cursor (u64 LE),
  // members version (u64 LE), registry version (u64 LE), key version (u32
  // LE), max response bytes (u32 LE), registry (u32 LE length + bytes), key
  // grant count (u32 LE), write count (u32 LE), the write list's size (u32
  // LE), then the list as one zstd frame (u32 LE length + bytes), then the
  // refetch count (u32 LE) and positions, then the admission count (u32 LE)
  // and admissions, then the wanted count (u32 LE) and ranges, then the
  // relayed registry count (u32 LE) and registries.
  const Bytes b = Encode(m);
  const std::string prefix =
      "01"
      "454e4c43"
      "07000000"
      "01"
      "0700000000000000"
      "0200000000000000"
      "0300000000000000"
      "04000000"
      "00040000"
      "00000000"
      "00000000"
      "01000000"
      "08000000";
  REQUIRE(b.size() > prefix.size() / 2 + 4);
  CHECK(Hex(Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(prefix.size() / 2))) ==
        prefix);
  // After the frame: the refetch, admission, wanted and relay counts (u32
  // LE), 0 here.
  REQUIRE(Hex(Bytes(b.end() - 16, b.end())) == "00000000000000000000000000000000");
  const Bytes frame(b.begin() + static_cast<std::ptrdiff_t>(prefix.size() / 2 + 4), b.end() - 16);
  uint32_t frame_len = 0;
  std::memcpy(&frame_len, b.data() + prefix.size() / 2, 4);
  CHECK(frame_len == frame.size());
  // The list inside: its own endianness marker, then each write as u32 LE
  // length + bytes.
  auto list = internal::Decompress(frame, 8);
  REQUIRE(list.ok());
  CHECK(Hex(*list) == "0103000000010203");
}

// ---- hostile input -------------------------------------------------------------------

TEST_CASE("every truncated prefix of every message is a corruption error") {
  for (const auto& m : AllMessages()) {
    CAPTURE(m.name);
    REQUIRE(m.decode(m.bytes, {}).ok());
    for (size_t len = 0; len < m.bytes.size(); ++len) {
      CAPTURE(len);
      const Status s = m.decode(std::span<const uint8_t>(m.bytes.data(), len), {});
      CHECK(s.code() == StatusCode::kCorruption);
    }
  }
}

TEST_CASE("trailing bytes after a message are an error") {
  for (const auto& m : AllMessages()) {
    CAPTURE(m.name);
    for (const Bytes& extra : {Bytes{0}, Bytes{0xff, 0xff, 0xff, 0xff}, Bytes(1000, 1)}) {
      Bytes longer = m.bytes;
      longer.insert(longer.end(), extra.begin(), extra.end());
      const Status s = m.decode(longer, {});
      CHECK(s.code() == StatusCode::kCorruption);
    }
  }
}

TEST_CASE("a message of one type does not decode as another") {
  const auto all = AllMessages();
  for (const auto& bytes_of : all) {
    for (const auto& decoder_of : all) {
      if (std::string(bytes_of.name) == decoder_of.name) continue;
      CAPTURE(bytes_of.name);
      CAPTURE(decoder_of.name);
      CHECK(!decoder_of.decode(bytes_of.bytes, {}).ok());
    }
  }
}

TEST_CASE("a wrong magic is corruption and a wrong protocol version says so") {
  for (const auto& m : AllMessages()) {
    CAPTURE(m.name);
    Bytes bad = m.bytes;
    bad[1] = 'X';
    CHECK(m.decode(bad, {}).code() == StatusCode::kCorruption);
    bad = m.bytes;
    PutU32(bad, 5, kProtocolVersion + 1);
    const Status s = m.decode(bad, {});
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(s.message().find("protocol version " + std::to_string(kProtocolVersion + 1)) !=
          std::string::npos);
    bad = m.bytes;
    bad[0] = 0;  // archive written big-endian: the numbers no longer match
    CHECK(!m.decode(bad, {}).ok());
  }
}

TEST_CASE("a bad boolean or role is corruption") {
  SUBCASE("more") {
    Bytes b = Encode(SampleSyncResponse());
    const size_t more_at = kHeaderBytes + 3 * 8;
    REQUIRE(b[more_at] == 1);
    b[more_at] = 2;
    CHECK(DecodeSyncResponse(b).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("invite role") {
    const Bytes good = Encode(SampleInvite());
    const size_t role_at = kHeaderBytes + 16 + 32 + 8;
    REQUIRE(good[role_at] == static_cast<uint8_t>(Role::kCoordinator));
    for (uint8_t role : {0, 3, 255}) {
      Bytes b = good;
      b[role_at] = role;
      CHECK(DecodeCreateInviteRequest(b).status().code() == StatusCode::kCorruption);
    }
    Bytes b = good;
    b[role_at + 1] = 2;
    CHECK(DecodeMembersResponse(b).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("invite role") {
    Bytes b = Encode(SampleInvite());
    const size_t role_at = kHeaderBytes + 16 + 32 + 8;
    REQUIRE(b[role_at] == static_cast<uint8_t>(Role::kCoordinator));
    b[role_at] = 7;
    CHECK(DecodeCreateInviteRequest(b).status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("a wanted range is 1 <= lo <= hi <= 2^63-1, and at most 64 of them") {
  DeviceId d;
  d.bytes.fill(0x31);
  const auto decode = [&](std::vector<SyncRequest::Wanted> wanted) {
    SyncRequest m;
    m.wanted = std::move(wanted);
    return DecodeSyncRequest(Encode(m)).status().code();
  };
  CHECK(decode({{d, 1, 1}}) == StatusCode::kOk);
  CHECK(decode({{d, 1, Write::kMaxCounter}}) == StatusCode::kOk);
  CHECK(decode({{d, 0, 1}}) == StatusCode::kCorruption);
  CHECK(decode({{d, 5, 4}}) == StatusCode::kCorruption);
  CHECK(decode({{d, 1, Write::kMaxCounter + 1}}) == StatusCode::kCorruption);
  CHECK(decode(std::vector<SyncRequest::Wanted>(kMaxWanted, {d, 1, 2})) == StatusCode::kOk);
  CHECK(decode(std::vector<SyncRequest::Wanted>(kMaxWanted + 1, {d, 1, 2})) ==
        StatusCode::kResourceExhausted);
}

TEST_CASE("a request relays at most 64 registry versions") {
  SyncRequest m;
  m.relay_registries = std::vector<Bytes>(kMaxRelayRegistries, Bytes{1, 2});
  CHECK(DecodeSyncRequest(Encode(m)).ok());
  m.relay_registries.push_back(Bytes{3});
  CHECK(DecodeSyncRequest(Encode(m)).status().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("the worked example of docs/PROTOCOL.md section 14 is what the encoder makes") {
  SyncRequest m;
  m.cursor = 42;
  m.members_version = 5;
  m.registry_version = 2;
  m.key_version = 1;
  m.max_response_bytes = 1 << 20;
  const Bytes b = Encode(m);
  CHECK(b.size() == 70);
  CHECK(Hex(b) ==
        "01454e4c4307000000012a0000000000000005000000000000000200000000000000010000000000"
        "100000000000000000000000000000000000000000000000000000000000");
  CHECK(internal::ToHex(internal::GenericHash(b)) ==
        "2db59b1eb4ecdc34235490d8075ae32a605b3a3fa54961df88714e34bb6738ad");
}

TEST_CASE("huge counts and lengths are refused before anything is allocated") {
  SUBCASE("write list count 0xFFFFFFFF in a request") {
    Bytes b = Encode(SyncRequest{});
    PutU32(b, b.size() - 20, 0xFFFFFFFFu);  // the write count, before 4 counts
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("write list count within the limit but beyond the input") {
    Bytes b = Encode(SyncRequest{});
    PutU32(b, b.size() - 20, 9999);
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b).status(); });
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("write list count 0xFFFFFFFF in a response") {
    Bytes b = Encode(SyncResponse{});
    // The write count, before reseal_below, the cut-off count, log_id,
    // log_end, registry_version and out_of_scope.
    PutU32(b, b.size() - 52, 0xFFFFFFFFu);
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncResponse(b).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("refetch and cut-off counts over their limits") {
    Bytes req = Encode(SyncRequest{});
    PutU32(req, req.size() - 16, static_cast<uint32_t>(kMaxRefetch + 1));
    CHECK(DecodeSyncRequest(req).status().code() == StatusCode::kResourceExhausted);
    PutU32(req, req.size() - 16, static_cast<uint32_t>(kMaxRefetch));  // within, beyond the input
    CHECK(DecodeSyncRequest(req).status().code() == StatusCode::kCorruption);
    Bytes resp = Encode(SyncResponse{});
    // The cut-off count, before log_id, log_end, registry_version and
    // out_of_scope.
    PutU32(resp, resp.size() - 44, 0xFFFFFFFFu);
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncResponse(resp).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);
    PutU32(resp, resp.size() - 44, 2);
    CHECK(DecodeSyncResponse(resp).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("document count huge") {
    for (const uint32_t n : {0xFFFFFFFFu, 10001u}) {
      CAPTURE(n);
      Bytes b = Encode(SyncResponse{});
      // ... needs-keys count, log positions count, write count (all empty),
      // reseal_below, cut-off count, log_id, log_end, registry_version,
      // out_of_scope
      PutU32(b, b.size() - 60, n);
      Status s;
      size_t largest = LargestAllocationDuring([&] { s = DecodeSyncResponse(b).status(); });
      CHECK(s.code() == StatusCode::kResourceExhausted);
      CHECK(largest < 64 * 1024);

      Bytes mb = Encode(MembersResponse{});
      PutU32(mb, mb.size() - 4, n);
      largest = LargestAllocationDuring([&] { s = DecodeMembersResponse(mb).status(); });
      CHECK(s.code() == StatusCode::kResourceExhausted);
      CHECK(largest < 64 * 1024);
    }
    Bytes mb = Encode(MembersResponse{});
    PutU32(mb, mb.size() - 4, 3000);  // within the limit, beyond the input
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeMembersResponse(mb).status(); });
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("write blob length huge") {
    // An empty request's write count (before its refetch count): replace
    // it by a list of one write whose length lies.
    internal::Encoder inner;
    inner.U32(0xFFFFFFFFu);
    inner.Raw(Bytes{1, 2, 3});
    const Bytes b = WithWriteList(Encode(SyncRequest{}), 1, inner.Finish());
    Status s;
    size_t largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);
    // With no length limit at all, the bytes actually present still bound it.
    WireLimits unlimited;
    unlimited.max_write_bytes = SIZE_MAX;
    largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b, unlimited).status(); });
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("write list size over the batch limit") {
    const Bytes raw = ListOf({Bytes(100, 7)});
    Bytes b = WithWriteList(Encode(SyncRequest{}), 1, raw);
    WireLimits l;
    l.max_batch_bytes = raw.size() - 1;
    CHECK(DecodeSyncRequest(b, l).status().code() == StatusCode::kResourceExhausted);
    l.max_batch_bytes = raw.size();
    CHECK(DecodeSyncRequest(b, l).ok());
    // A size claimed over the default 16 MiB is refused before decompressing.
    PutU32(b, Encode(SyncRequest{}).size() - 12, (16u << 20) + 1);  // the list's size
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("a compressed list that expands beyond its declared size") {
    // 8 MiB of zeros compress to a few hundred bytes; declared as 1,000.
    const Bytes bomb = internal::Compress(Bytes(8u << 20, 0), 3);
    REQUIRE(bomb.size() < 4096);
    Bytes b = Encode(SyncRequest{});
    b.resize(b.size() - 20);  // the write count, the refetch, admission, wanted and relay counts
    AppendU32(b, 1);
    AppendU32(b, 1000);
    AppendU32(b, static_cast<uint32_t>(bomb.size()));
    b.insert(b.end(), bomb.begin(), bomb.end());
    AppendU32(b, 0);
    AppendU32(b, 0);
    AppendU32(b, 0);
    AppendU32(b, 0);
    Status s;
    const size_t largest = LargestAllocationDuring([&] { s = DecodeSyncRequest(b).status(); });
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(largest < 64 * 1024);
  }
  SUBCASE("a list that does not match its count, or has bytes after it") {
    const Bytes one = ListOf({Bytes{1, 2, 3}});
    CHECK(DecodeSyncRequest(WithWriteList(Encode(SyncRequest{}), 1, one)).ok());
    CHECK(DecodeSyncRequest(WithWriteList(Encode(SyncRequest{}), 2, one)).status().code() ==
          StatusCode::kCorruption);
    Bytes longer = one;
    longer.push_back(9);
    CHECK(DecodeSyncRequest(WithWriteList(Encode(SyncRequest{}), 1, longer)).status().code() ==
          StatusCode::kCorruption);
  }
  SUBCASE("envelope length huge") {
    Bytes b = Encode(SampleInvite());
    PutU32(b, b.size() - SampleInvite().grant.size() - 4 - SampleInvite().envelope.size() - 4,
           0x7FFFFFFFu);
    Status s;
    const size_t largest =
        LargestAllocationDuring([&] { s = DecodeCreateInviteRequest(b).status(); });
    CHECK(s.code() == StatusCode::kResourceExhausted);
    CHECK(largest < 64 * 1024);

    Bytes jb = Encode(SampleJoinResponse());
    PutU32(jb, kHeaderBytes + 16 + 1, 0xFFFFFFFFu);
    CHECK(DecodeJoinResponse(jb).status().code() == StatusCode::kResourceExhausted);
  }
  SUBCASE("name length huge") {
    Bytes b = Encode(SampleJoin());
    PutU32(b, kHeaderBytes + 16 + 32, 0xFFFFFFFFu);
    CHECK(DecodeJoinRequest(b).status().code() == StatusCode::kResourceExhausted);
    PutU32(b, kHeaderBytes + 16 + 32, 300);  // over max_text_bytes (256)
    CHECK(DecodeJoinRequest(b).status().code() == StatusCode::kResourceExhausted);
  }
}

TEST_CASE("the limits passed to a decoder are applied") {
  const Bytes b = Encode(SampleSyncRequest());  // three writes, the largest 300 bytes
  WireLimits l;
  l.max_writes = 2;
  CHECK(DecodeSyncRequest(b, l).status().code() == StatusCode::kResourceExhausted);
  l = WireLimits{};
  l.max_write_bytes = 299;
  CHECK(DecodeSyncRequest(b, l).status().code() == StatusCode::kResourceExhausted);
  l.max_write_bytes = 300;
  CHECK(DecodeSyncRequest(b, l).ok());

  l = WireLimits{};
  l.max_members = 1;  // two devices need keys
  CHECK(DecodeSyncResponse(Encode(SampleSyncResponse()), l).status().code() ==
        StatusCode::kResourceExhausted);
  l = WireLimits{};
  l.max_documents = 1;  // two registries
  CHECK(DecodeSyncResponse(Encode(SampleSyncResponse()), l).status().code() ==
        StatusCode::kResourceExhausted);
  l = WireLimits{};
  l.max_envelope_bytes = 71;
  CHECK(DecodeCreateInviteRequest(Encode(SampleInvite()), l).status().code() ==
        StatusCode::kResourceExhausted);
  l = WireLimits{};
  l.max_text_bytes = 7;  // "Tlaxcala" is 8
  CHECK(DecodeRegisterTeamRequest(Encode(SampleRegister()), l).status().code() ==
        StatusCode::kResourceExhausted);
}

TEST_CASE("random bytes never crash a decoder") {
  REQUIRE(sodium_init() >= 0);
  const auto all = AllMessages();
  std::array<uint8_t, randombytes_SEEDBYTES> seed{};  // deterministic: reproducible failures
  for (int i = 0; i < 2000; ++i) {
    seed[0] = static_cast<uint8_t>(i);
    seed[1] = static_cast<uint8_t>(i >> 8);
    Bytes b(256);
    randombytes_buf_deterministic(b.data(), b.size(), seed.data());
    b.resize(b[0] % 200);
    if (b.size() > kHeaderBytes && (i % 2) == 0) {
      // Mostly a valid header, so the decoders get past the envelope.
      const auto& m = all[static_cast<size_t>(i / 2) % all.size()];
      std::memcpy(b.data(), m.bytes.data(), kHeaderBytes);
      CHECK(!m.decode(b, {}).ok());
    }
    for (const auto& m : all) (void)m.decode(b, {});
  }
  // Flipping any single byte of a valid message never crashes either.
  for (const auto& m : all) {
    for (size_t i = 0; i < m.bytes.size(); ++i) {
      Bytes b = m.bytes;
      b[i] ^= 0xff;
      (void)m.decode(b, {});
    }
  }
}

// ---- request signatures ------------------------------------------------------------------

std::map<std::string, std::string> ValidHeaders() {
  return {{kHeaderDevice, std::string(32, 'a')},
          {kHeaderTime, "1780000000000"},
          {kHeaderNonce, std::string(32, '0')},
          {kHeaderSignature, std::string(128, 'f')}};
}

Result<RequestSignature> Parse(const std::map<std::string, std::string>& headers) {
  return ParseRequestSignature([&](std::string_view name) {
    auto it = headers.find(std::string(name));
    return it == headers.end() ? std::string() : it->second;
  });
}

TEST_CASE("well-formed signature headers parse") {
  auto sig = Parse(ValidHeaders());
  REQUIRE_MESSAGE(sig.ok(), sig.status().ToString());
  CHECK(sig->device.ToHex() == std::string(32, 'a'));
  CHECK(sig->time_ms == 1780000000000ull);
  CHECK(sig->nonce == std::array<uint8_t, 16>{});
  for (uint8_t byte : sig->signature) CHECK(byte == 0xff);
}

TEST_CASE("missing or malformed signature headers are unauthenticated") {
  for (const char* header : {kHeaderDevice, kHeaderTime, kHeaderNonce, kHeaderSignature}) {
    CAPTURE(header);
    auto h = ValidHeaders();
    h.erase(header);
    CHECK(Parse(h).status().code() == StatusCode::kUnauthenticated);
    h[header] = "";
    CHECK(Parse(h).status().code() == StatusCode::kUnauthenticated);
  }
  const std::vector<std::pair<const char*, std::string>> bad = {
      {kHeaderDevice, "xyz"},
      {kHeaderDevice, std::string(31, 'a')},
      {kHeaderDevice, std::string(33, 'a')},
      {kHeaderDevice, std::string(32, 'g')},
      {kHeaderTime, "abc"},
      {kHeaderTime, "-1"},
      {kHeaderTime, "+5"},
      {kHeaderTime, " 5"},
      {kHeaderTime, "12a"},
      {kHeaderTime, "1e5"},
      {kHeaderTime, "99999999999999999999"},  // 20 digits: over u64
      {kHeaderTime, std::string(200, '9')},
      {kHeaderNonce, std::string(30, '0')},
      {kHeaderNonce, std::string(34, '0')},
      {kHeaderNonce, std::string(32, 'z')},
      {kHeaderSignature, std::string(126, 'f')},
      {kHeaderSignature, std::string(130, 'f')},
      {kHeaderSignature, std::string(128, 'x')},
  };
  for (const auto& entry : bad) {
    const auto& header = entry.first;  // clang 14 cannot capture a binding in CAPTURE
    const auto& value = entry.second;
    CAPTURE(header);
    CAPTURE(value);
    auto h = ValidHeaders();
    h[header] = value;
    CHECK(Parse(h).status().code() == StatusCode::kUnauthenticated);
  }
}

TEST_CASE("the signing input covers method, path, device, time, nonce and the body's hash") {
  const std::array<uint8_t, 16> nonce = Filled<16>(1);
  const Bytes body = {1, 2, 3, 4};
  DeviceId device;
  device.bytes = Filled<16>(9);
  const Bytes input = RequestSigningInput("POST", "/v1/sync", device, 1234, nonce, body);
  REQUIRE(sodium_init() >= 0);
  std::array<uint8_t, 32> hash{};
  crypto_generichash(hash.data(), hash.size(), body.data(), body.size(), nullptr, 0);
  const std::string expected = "enlace-request-v1\nPOST\n/v1/sync\n" + device.ToHex() + "\n1234\n" +
                               internal::ToHex(nonce) + "\n" + internal::ToHex(hash);
  CHECK(std::string(input.begin(), input.end()) == expected);
}

TEST_CASE("a request signature verifies only for exactly what was signed") {
  const auto keys = internal::SigningKeyPair::Generate();
  const auto other = internal::SigningKeyPair::Generate();
  const Bytes body = Encode(SampleSyncRequest());
  RequestSignature sig;
  sig.device.bytes = Filled<16>(2);
  sig.time_ms = 1'780'000'000'000ull;
  sig.nonce = Filled<16>(3);
  sig.signature = internal::Sign(
      keys.secret_key,
      RequestSigningInput("POST", kPathSync, sig.device, sig.time_ms, sig.nonce, body));
  REQUIRE(VerifyRequestSignature(sig, keys.public_key, "POST", kPathSync, body).ok());

  CHECK(VerifyRequestSignature(sig, other.public_key, "POST", kPathSync, body).code() ==
        StatusCode::kUnauthenticated);
  CHECK(VerifyRequestSignature(sig, keys.public_key, "GET", kPathSync, body).code() ==
        StatusCode::kUnauthenticated);
  CHECK(VerifyRequestSignature(sig, keys.public_key, "POST", kPathJoin, body).code() ==
        StatusCode::kUnauthenticated);
  CHECK(VerifyRequestSignature(sig, keys.public_key, "POST", "/v1/sync/", body).code() ==
        StatusCode::kUnauthenticated);
  {
    RequestSignature t = sig;
    t.time_ms += 1;
    CHECK(VerifyRequestSignature(t, keys.public_key, "POST", kPathSync, body).code() ==
          StatusCode::kUnauthenticated);
  }
  {
    RequestSignature d = sig;  // the same signature claimed by another device
    d.device.bytes[0] ^= 1;
    CHECK(VerifyRequestSignature(d, keys.public_key, "POST", kPathSync, body).code() ==
          StatusCode::kUnauthenticated);
  }
  {
    RequestSignature n = sig;
    n.nonce[15] ^= 1;
    CHECK(VerifyRequestSignature(n, keys.public_key, "POST", kPathSync, body).code() ==
          StatusCode::kUnauthenticated);
  }
  {
    RequestSignature s = sig;
    s.signature[0] ^= 1;
    CHECK(VerifyRequestSignature(s, keys.public_key, "POST", kPathSync, body).code() ==
          StatusCode::kUnauthenticated);
  }
  for (size_t i = 0; i < body.size(); i += 7) {
    Bytes changed = body;
    changed[i] ^= 0x01;
    CHECK(VerifyRequestSignature(sig, keys.public_key, "POST", kPathSync, changed).code() ==
          StatusCode::kUnauthenticated);
  }
  Bytes shorter(body.begin(), body.end() - 1);
  CHECK(VerifyRequestSignature(sig, keys.public_key, "POST", kPathSync, shorter).code() ==
        StatusCode::kUnauthenticated);
  CHECK(VerifyRequestSignature(sig, keys.public_key, "POST", kPathSync, {}).code() ==
        StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace enlace
