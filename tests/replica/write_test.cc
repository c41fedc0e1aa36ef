// The write (enlace/write.h): its wire format (golden vector), strict
// decoding of hostile input, and the two independent bindings of its clear
// metadata: the writer's signature and the AEAD associated data.
#include "enlace/write.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "base/codec.h"
#include "base/compress.h"
#include "crypto/crypto.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"
#include "test_util.h"

// ---- Allocation watch -------------------------------------------------------------
// This executable replaces the global operator new to remember the largest
// single allocation, so "rejected before allocating" is checked, not assumed.
namespace {
std::atomic<size_t> g_largest_allocation{0};

void* AllocateTracked(std::size_t size) {
  size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
}  // namespace

// GCC cannot see that these replacements pair malloc with free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) { return AllocateTracked(size); }
void* operator new[](std::size_t size) { return AllocateTracked(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace enlace {
namespace {

using internal::AsBytes;
using internal::ByteView;
using internal::Encoder;
using testing::FakeClock;
using testing::MakeReplica;
using testing::TempDir;
using testing::TestOptions;

template <typename T>
T Filled(uint8_t first) {
  T out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

DeviceId DeviceFilled(uint8_t first) { return DeviceId{Filled<std::array<uint8_t, 16>>(first)}; }

// A write with fixed fields and no randomness: the golden vector's input.
Write GoldenWrite() {
  Write w;
  w.team = TeamId{Filled<std::array<uint8_t, 16>>(0x01)};
  w.collection = "cases";
  w.record = RecordId{Filled<std::array<uint8_t, 16>>(0x21)};
  w.dot = Dot{DeviceFilled(0x41), 3};
  w.hlc = HlcTimestamp::From(1'780'000'000'000, 2);
  w.context.Add(Dot{DeviceFilled(0x41), 2});
  w.context.Add(Dot{DeviceFilled(0x51), 5});
  w.fields = {"age", "status"};
  w.kind = WriteKind::kPut;
  w.key_version = 1;
  w.accounted_from = 2;
  w.scope = ScopeId{Filled<std::array<uint8_t, 16>>(0xc1)};
  w.scope_prev = 2;
  w.nonce = Filled<std::array<uint8_t, 24>>(0x61);
  w.ciphertext = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                  0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
  w.signature = Filled<std::array<uint8_t, 64>>(0x81);
  return w;
}

// The encoding of GoldenWrite(). Changing it is a wire-format change: every
// stored write and every hub holds bytes in this format.
constexpr char kGoldenHex[] =
    "01"                                                                // cereal: little endian
    "04"                                                                // format version
    "0102030405060708090a0b0c0d0e0f10"                                  // team
    "050000006361736573"                                                // "cases"
    "2122232425262728292a2b2c2d2e2f30"                                  // record
    "4142434445464748494a4b4c4d4e4f50"                                  // dot.device
    "0300000000000000"                                                  // dot.counter
    "0200008844709e01"                                                  // hlc
    "02000000"                                                          // context size
    "4142434445464748494a4b4c4d4e4f50"                                  // context[0].device
    "0200000000000000"                                                  // context[0].counter
    "5152535455565758595a5b5c5d5e5f60"                                  // context[1].device
    "0500000000000000"                                                  // context[1].counter
    "02000000"                                                          // field count
    "03000000616765"                                                    // "age"
    "06000000737461747573"                                              // "status"
    "01"                                                                // kind
    "01000000"                                                          // key version
    "0200000000000000"                                                  // accounted from
    "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0"                                  // scope
    "0200000000000000"                                                  // scope_prev
    "6162636465666768696a6b6c6d6e6f707172737475767778"                  // nonce
    "14000000deadbeef000102030405060708090a0b0c0d0e0f"                  // ciphertext
    "8182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0"  // signature
    "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";

// The same write in format 3 (no scope), as made before.
constexpr char kGoldenHexFormat3[] =
    "01"                                                                // cereal: little endian
    "03"                                                                // format version
    "0102030405060708090a0b0c0d0e0f10"                                  // team
    "050000006361736573"                                                // "cases"
    "2122232425262728292a2b2c2d2e2f30"                                  // record
    "4142434445464748494a4b4c4d4e4f50"                                  // dot.device
    "0300000000000000"                                                  // dot.counter
    "0200008844709e01"                                                  // hlc
    "02000000"                                                          // context size
    "4142434445464748494a4b4c4d4e4f50"                                  // context[0].device
    "0200000000000000"                                                  // context[0].counter
    "5152535455565758595a5b5c5d5e5f60"                                  // context[1].device
    "0500000000000000"                                                  // context[1].counter
    "02000000"                                                          // field count
    "03000000616765"                                                    // "age"
    "06000000737461747573"                                              // "status"
    "01"                                                                // kind
    "01000000"                                                          // key version
    "0200000000000000"                                                  // accounted from
    "6162636465666768696a6b6c6d6e6f707172737475767778"                  // nonce
    "14000000deadbeef000102030405060708090a0b0c0d0e0f"                  // ciphertext
    "8182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0"  // signature
    "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";

// The same write in format 2 (no accounted-from number), as made before.
constexpr char kGoldenHexFormat2[] =
    "01"                                                                // cereal: little endian
    "02"                                                                // format version
    "0102030405060708090a0b0c0d0e0f10"                                  // team
    "050000006361736573"                                                // "cases"
    "2122232425262728292a2b2c2d2e2f30"                                  // record
    "4142434445464748494a4b4c4d4e4f50"                                  // dot.device
    "0300000000000000"                                                  // dot.counter
    "0200008844709e01"                                                  // hlc
    "02000000"                                                          // context size
    "4142434445464748494a4b4c4d4e4f50"                                  // context[0].device
    "0200000000000000"                                                  // context[0].counter
    "5152535455565758595a5b5c5d5e5f60"                                  // context[1].device
    "0500000000000000"                                                  // context[1].counter
    "02000000"                                                          // field count
    "03000000616765"                                                    // "age"
    "06000000737461747573"                                              // "status"
    "01"                                                                // kind
    "01000000"                                                          // key version
    "6162636465666768696a6b6c6d6e6f707172737475767778"                  // nonce
    "14000000deadbeef000102030405060708090a0b0c0d0e0f"                  // ciphertext
    "8182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0"  // signature
    "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";

Bytes FromHex(std::string_view hex) {
  auto b = internal::FromHex(hex);
  REQUIRE(b.ok());
  return *b;
}

StatusCode DecodeCode(ByteView bytes, const WriteLimits& limits = {}) {
  auto w = Write::Decode(bytes, limits);
  return w.ok() ? StatusCode::kOk : w.status().code();
}

// Encodes a write field by field, like Write::Encode, but lets a test lie
// about any length or count, or write a non-canonical context.
struct Crafted {
  Write w = GoldenWrite();
  uint8_t version = Write::kFormatVersion;
  std::optional<uint32_t> collection_len;
  std::optional<uint32_t> context_count;
  std::optional<std::vector<Dot>> context_entries;  // written as given, in order
  std::optional<uint32_t> field_count;
  std::optional<uint8_t> kind;
  std::optional<uint32_t> ciphertext_len;
  bool stop_after_counts = false;  // omit everything after the lying count

  Bytes Encode() const {
    Encoder e;
    e.U8(version);
    e.Raw(w.team.bytes);
    e.U32(collection_len.value_or(static_cast<uint32_t>(w.collection.size())));
    e.Raw(AsBytes(w.collection));
    e.Raw(w.record.bytes);
    e.Raw(w.dot.device.bytes);
    e.U64(w.dot.counter);
    e.U64(w.hlc.value);
    std::vector<Dot> entries;
    if (context_entries) {
      entries = *context_entries;
    } else {
      for (const auto& [device, counter] : w.context.entries())
        entries.push_back({device, counter});
    }
    e.U32(context_count.value_or(static_cast<uint32_t>(entries.size())));
    if (context_count && stop_after_counts) return e.Finish();
    for (const Dot& d : entries) {
      e.Raw(d.device.bytes);
      e.U64(d.counter);
    }
    e.U32(field_count.value_or(static_cast<uint32_t>(w.fields.size())));
    if (field_count && stop_after_counts) return e.Finish();
    for (const auto& f : w.fields) e.String(f);
    e.U8(kind.value_or(static_cast<uint8_t>(w.kind)));
    e.U32(w.key_version);
    if (version >= 3) e.U64(w.accounted_from);
    if (version >= 4) {
      e.Raw(w.scope.bytes);
      e.U64(w.scope_prev);
    }
    e.Raw(w.nonce);
    e.U32(ciphertext_len.value_or(static_cast<uint32_t>(w.ciphertext.size())));
    if (ciphertext_len && stop_after_counts) return e.Finish();
    e.Raw(w.ciphertext);
    e.Raw(w.signature);
    return e.Finish();
  }
};

void CheckSameWrite(const Write& got, const Write& want) {
  CHECK(got.team == want.team);
  CHECK(got.collection == want.collection);
  CHECK(got.record == want.record);
  CHECK(got.dot == want.dot);
  CHECK(got.hlc == want.hlc);
  CHECK(got.context == want.context);
  CHECK(got.fields == want.fields);
  CHECK(got.kind == want.kind);
  CHECK(got.key_version == want.key_version);
  CHECK(got.accounted_from == want.accounted_from);
  CHECK(got.scope == want.scope);
  CHECK(got.scope_prev == want.scope_prev);
  CHECK(got.nonce == want.nonce);
  CHECK(got.ciphertext == want.ciphertext);
  CHECK(got.signature == want.signature);
}

// ---- Encoding -------------------------------------------------------------------------

TEST_CASE("a write's encoding matches the golden vector") {
  CHECK(internal::ToHex(GoldenWrite().Encode()) == kGoldenHex);
}

TEST_CASE("the golden vector decodes to the golden write") {
  const Bytes golden = FromHex(kGoldenHex);
  auto w = Write::Decode(golden);
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  CheckSameWrite(*w, GoldenWrite());
  CHECK(w->accounted_from == 2);
}

TEST_CASE("a format 3 write (no scope) still decodes and re-encodes the same") {
  Write w3 = GoldenWrite();
  w3.format = 3;
  w3.scope = ScopeId{};
  w3.scope_prev = 0;
  CHECK(internal::ToHex(w3.Encode()) == kGoldenHexFormat3);
  auto w = Write::Decode(FromHex(kGoldenHexFormat3));
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  CheckSameWrite(*w, w3);
  CHECK(w->format == 3);
  CHECK(w->scope.IsZero());
  CHECK(w->Encode() == FromHex(kGoldenHexFormat3));
}

TEST_CASE(
    "a format 4 write's previous number in its scope is below its own, 0 or from its promise") {
  for (uint64_t bad : {uint64_t{3}, uint64_t{4}, uint64_t{1}, UINT64_MAX}) {
    Crafted c;  // number 3, accounted from 2
    c.w.scope_prev = bad;
    CAPTURE(bad);
    CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
  }
  for (uint64_t good : {uint64_t{0}, uint64_t{2}}) {
    Crafted c;
    c.w.scope_prev = good;
    CAPTURE(good);
    CHECK(DecodeCode(c.Encode()) == StatusCode::kOk);
  }
}

TEST_CASE("a format 2 write (no accounted-from number) still decodes and re-encodes the same") {
  Write w2 = GoldenWrite();
  w2.format = 2;
  w2.accounted_from = 0;
  w2.scope_prev = 0;
  w2.scope = ScopeId{};
  CHECK(internal::ToHex(w2.Encode()) == kGoldenHexFormat2);
  auto w = Write::Decode(FromHex(kGoldenHexFormat2));
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  CheckSameWrite(*w, w2);
  CHECK(w->format == 2);
  CHECK(w->accounted_from == 0);
  CHECK(w->Encode() == FromHex(kGoldenHexFormat2));
  // Format 2 knows no void.
  Crafted c;
  c.version = 2;
  c.w = w2;
  c.kind = static_cast<uint8_t>(WriteKind::kVoid);
  CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("a format 3 write's accounted-from number must be a write number") {
  for (uint64_t bad : {uint64_t{0}, Write::kMaxCounter + 1, UINT64_MAX}) {
    Crafted c;
    c.w.accounted_from = bad;
    CAPTURE(bad);
    CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
  }
  Crafted ok;
  ok.w.accounted_from = Write::kMaxCounter;
  ok.w.scope_prev = 0;
  CHECK(DecodeCode(ok.Encode()) == StatusCode::kOk);
}

TEST_CASE("a void names no field, no context and no record, only its own number") {
  Write v = GoldenWrite();
  v.kind = WriteKind::kVoid;
  v.collection = kVoidCollection;
  v.record = RecordId{};
  v.fields.clear();
  v.context = VersionVector();
  auto decoded = Write::Decode(v.Encode());
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(decoded->kind == WriteKind::kVoid);
  SUBCASE("with a field") { v.fields = {"age"}; }
  SUBCASE("with a context") { v.context.Add(Dot{DeviceFilled(0x51), 5}); }
  SUBCASE("naming a record") { v.record = RecordId{Filled<std::array<uint8_t, 16>>(0x21)}; }
  SUBCASE("in another collection") { v.collection = "cases"; }
  if (v.fields.empty() && v.context.empty() && v.record.IsZero() &&
      v.collection == kVoidCollection) {
    return;  // the valid void, checked above
  }
  CHECK(DecodeCode(v.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("encode then decode returns the same write, and re-encodes to the same bytes") {
  Write w = GoldenWrite();
  SUBCASE("a put") {}
  SUBCASE("a delete: no fields, empty context") {
    w.kind = WriteKind::kDelete;
    w.fields.clear();
    w.context = VersionVector();
  }
  SUBCASE("an erase with an empty ciphertext") {
    w.kind = WriteKind::kErase;
    w.ciphertext.clear();
  }
  SUBCASE("extreme counters and clocks") {
    w.dot.counter = Write::kMaxCounter;
    w.hlc = HlcTimestamp{UINT64_MAX};
    w.key_version = UINT32_MAX;
    w.collection = std::string(64, 'c');
    w.fields = {"A", std::string(64, 'z')};
  }
  const Bytes encoded = w.Encode();
  auto decoded = Write::Decode(encoded);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CheckSameWrite(*decoded, w);
  CHECK(decoded->Encode() == encoded);
}

TEST_CASE(
    "the signature covers everything but itself, and the metadata everything before the "
    "nonce") {
  const Write w = GoldenWrite();
  const Bytes encoded = w.Encode();
  const Bytes signed_bytes = w.SignedBytes();
  const Bytes metadata = w.EncodeMetadata();
  REQUIRE(signed_bytes.size() + w.signature.size() == encoded.size());
  CHECK(std::equal(signed_bytes.begin(), signed_bytes.end(), encoded.begin()));
  REQUIRE(metadata.size() + w.nonce.size() + 4 + w.ciphertext.size() == signed_bytes.size());
  CHECK(std::equal(metadata.begin(), metadata.end(), signed_bytes.begin()));
}

TEST_CASE("every piece of clear metadata changes the associated data") {
  const Bytes base = GoldenWrite().EncodeMetadata();
  const std::vector<std::pair<std::string, std::function<void(Write&)>>> changes = {
      {"team", [](Write& w) { w.team.bytes[0] ^= 1; }},
      {"collection", [](Write& w) { w.collection = "cases2"; }},
      {"record", [](Write& w) { w.record.bytes[15] ^= 1; }},
      {"dot.device", [](Write& w) { w.dot.device.bytes[3] ^= 1; }},
      {"dot.counter", [](Write& w) { ++w.dot.counter; }},
      {"hlc", [](Write& w) { ++w.hlc.value; }},
      {"context counter",
       [](Write& w) {
         w.context.Add(Dot{DeviceFilled(0x51), 6});
       }},
      {"context entry",
       [](Write& w) {
         w.context.Add(Dot{DeviceFilled(0x71), 1});
       }},
      {"field name", [](Write& w) { w.fields[0] = "agf"; }},
      {"field list", [](Write& w) { w.fields.pop_back(); }},
      {"kind", [](Write& w) { w.kind = WriteKind::kErase; }},
      {"key version", [](Write& w) { w.key_version = 2; }},
  };
  for (const auto& entry : changes) {
    // Not a structured binding: clang 14 cannot capture one in doctest's lambdas.
    const auto& what = entry.first;
    const auto& change = entry.second;
    CAPTURE(what);
    Write w = GoldenWrite();
    change(w);
    CHECK(w.EncodeMetadata() != base);
  }
}

// ---- Decoding hostile input --------------------------------------------------------

TEST_CASE("every truncated prefix of an encoded write is kCorruption") {
  const Bytes encoded = GoldenWrite().Encode();
  for (size_t len = 0; len < encoded.size(); ++len) {
    CAPTURE(len);
    CHECK(DecodeCode(ByteView(encoded.data(), len)) == StatusCode::kCorruption);
  }
}

TEST_CASE("trailing bytes after a write are kCorruption") {
  Bytes encoded = GoldenWrite().Encode();
  encoded.push_back(0x00);
  CHECK(DecodeCode(encoded) == StatusCode::kCorruption);
  const Bytes twice = [] {
    Bytes b = GoldenWrite().Encode();
    const Bytes again = GoldenWrite().Encode();
    b.insert(b.end(), again.begin(), again.end());
    return b;
  }();
  CHECK(DecodeCode(twice) == StatusCode::kCorruption);
}

TEST_CASE("the crafting helper reproduces the real encoding") {
  CHECK(Crafted{}.Encode() == GoldenWrite().Encode());
}

TEST_CASE("huge lengths and counts are refused before anything is allocated") {
  struct Case {
    std::string what;
    Crafted crafted;
    StatusCode expected;
  };
  std::vector<Case> cases;
  for (bool stop : {false, true}) {
    Crafted c;
    c.stop_after_counts = stop;
    c.collection_len = 0xFFFFFFFF;
    cases.push_back({"collection length 0xFFFFFFFF", c, StatusCode::kResourceExhausted});
    c = Crafted{};
    c.stop_after_counts = stop;
    c.context_count = 0xFFFFFFFF;
    cases.push_back({"context count 0xFFFFFFFF", c, StatusCode::kResourceExhausted});
    c.context_count = 4096;  // at the limit, but the input holds two entries
    cases.push_back({"context count 4096", c, StatusCode::kCorruption});
    c = Crafted{};
    c.stop_after_counts = stop;
    c.field_count = 0xFFFFFFFF;
    cases.push_back({"field count 0xFFFFFFFF", c, StatusCode::kResourceExhausted});
    c.field_count = 512;
    cases.push_back({"field count 512", c, StatusCode::kCorruption});
    c = Crafted{};
    c.stop_after_counts = stop;
    c.ciphertext_len = 0xFFFFFFFF;
    cases.push_back({"ciphertext length 0xFFFFFFFF", c, StatusCode::kResourceExhausted});
    c.ciphertext_len = 1 << 20;  // at the limit, but only 20 bytes follow
    cases.push_back({"ciphertext length 1 MiB", c, StatusCode::kCorruption});
  }
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const Bytes input = c.crafted.Encode();
    g_largest_allocation = 0;
    const StatusCode code = DecodeCode(input);
    const size_t largest = g_largest_allocation;
    CHECK(code == c.expected);
    CHECK(largest < 64 * 1024);
  }
}

TEST_CASE("the decoding limits are the caller's") {
  const Bytes encoded = GoldenWrite().Encode();
  WriteLimits tight;
  tight.max_ciphertext_bytes = 19;  // the golden ciphertext has 20
  CHECK(DecodeCode(encoded, tight) == StatusCode::kResourceExhausted);
  tight = WriteLimits{};
  tight.max_fields = 1;
  CHECK(DecodeCode(encoded, tight) == StatusCode::kResourceExhausted);
  tight = WriteLimits{};
  tight.max_context_entries = 1;
  CHECK(DecodeCode(encoded, tight) == StatusCode::kResourceExhausted);
  tight = WriteLimits{};
  tight.max_name_bytes = 4;  // "cases" has 5
  CHECK(DecodeCode(encoded, tight) == StatusCode::kResourceExhausted);
  tight.max_name_bytes = 5;  // but "status" has 6
  CHECK(DecodeCode(encoded, tight) == StatusCode::kResourceExhausted);
  tight.max_name_bytes = 6;
  CHECK(DecodeCode(encoded, tight) == StatusCode::kOk);
}

TEST_CASE("a context that is not canonical is kCorruption") {
  const DeviceId low = DeviceFilled(0x41);
  const DeviceId high = DeviceFilled(0x51);
  Crafted c;
  SUBCASE("devices out of order") { c.context_entries = std::vector<Dot>{{high, 5}, {low, 2}}; }
  SUBCASE("a device twice") { c.context_entries = std::vector<Dot>{{low, 2}, {low, 3}}; }
  SUBCASE("a zero counter") { c.context_entries = std::vector<Dot>{{low, 0}, {high, 5}}; }
  SUBCASE("a lone zero counter") { c.context_entries = std::vector<Dot>{{low, 0}}; }
  CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("field names that are not sorted and unique are kCorruption") {
  Write w = GoldenWrite();
  SUBCASE("unsorted") { w.fields = {"status", "age"}; }
  SUBCASE("duplicated") { w.fields = {"age", "age"}; }
  SUBCASE("case orders upper before lower") { w.fields = {"b", "A"}; }
  CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("an unknown format version or kind is kCorruption") {
  for (uint8_t version : {uint8_t{0}, uint8_t{5}, uint8_t{255}}) {
    CAPTURE(static_cast<int>(version));
    Crafted c;
    c.version = version;
    CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
  }
  for (uint8_t kind : {uint8_t{0}, uint8_t{5}, uint8_t{255}}) {
    CAPTURE(static_cast<int>(kind));
    Crafted c;
    c.kind = kind;
    CHECK(DecodeCode(c.Encode()) == StatusCode::kCorruption);
  }
}

TEST_CASE("a delete that names fields, or a zero counter, is kCorruption") {
  Write w = GoldenWrite();
  w.kind = WriteKind::kDelete;
  CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
  w = GoldenWrite();
  w.dot.counter = 0;
  CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("bad collection or field names are kCorruption") {
  const std::vector<std::string> bad = {"",         "1cases", "_x",  "ca ses",
                                        "$deleted", "caña",   "a/b", std::string("a\0b", 3)};
  for (const std::string& name : bad) {
    CAPTURE(name);
    Write w = GoldenWrite();
    w.collection = name;
    CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
    w = GoldenWrite();
    w.fields = {name};
    CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
  }
  // The reserved existence field never travels in the field list.
  Write w = GoldenWrite();
  w.fields = {kDeletedField, "age"};
  CHECK(DecodeCode(w.Encode()) == StatusCode::kCorruption);
}

TEST_CASE("ValidateName accepts 1 to 64 of [A-Za-z0-9_.-] starting with a letter") {
  for (std::string_view good : {"a", "Z", "cases", "x_1", "a.b-c", "A9"}) {
    CAPTURE(std::string(good));
    CHECK(ValidateName(good, "field").ok());
  }
  CHECK(ValidateName(std::string(64, 'a'), "field").ok());
  CHECK(ValidateName(std::string(65, 'a'), "field").code() == StatusCode::kInvalidArgument);
  for (std::string_view bad : {"", "9a", "-a", ".a", "a b", "a$", "a\n", "$deleted"}) {
    CAPTURE(std::string(bad));
    CHECK(ValidateName(bad, "field").code() == StatusCode::kInvalidArgument);
  }
}

// ---- Tampering, at the replica level ----------------------------------------------

// Three devices of one team. b trusts a and c. `target` is a's second write
// on one record, not yet applied by b: it has a context entry and two fields.
struct TamperFixture {
  TempDir dir{/*in_memory_fs=*/true};
  FakeClock clock;
  std::unique_ptr<Replica> a, b, c;
  RecordId id;
  Bytes target;
  Write decoded;

  TamperFixture() {
    a = MakeReplica(TestOptions(dir.File("a"), &clock, /*in_memory=*/true));
    b = MakeReplica(TestOptions(dir.File("b"), &clock, true));
    c = MakeReplica(TestOptions(dir.File("c"), &clock, true));
    REQUIRE(CreateTeam(*a).ok());
    testing::JoinTeam(*a, *b);
    testing::JoinTeam(*a, *c);
    REQUIRE(TrustDevice(*b, c->device_id(), c->public_keys()).ok());

    auto put = a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
    REQUIRE(put.ok());
    id = *put;
    REQUIRE(b->ApplyRemote(testing::OnlyPendingWrite(*a)).ok());
    clock.now_ms += 10;
    REQUIRE(a->Put("cases", id, {{"status", "\"FollowUp\""}, {"age", "30"}}).ok());
    target = testing::NewestWrite(*a);  // the first write was superseded (a void before it)
    auto w = Write::Decode(target);
    REQUIRE(w.ok());
    decoded = std::move(w).value();
    REQUIRE(decoded.context.size() == 1);
    REQUIRE(decoded.fields == std::vector<std::string>{"age", "status"});
  }

  const internal::SecretBytes& SigningKey(Replica& r) {
    return r.impl().vault().secrets().signing.secret_key;
  }
  Bytes ReSigned(Write w, Replica& signer) {
    w.signature = internal::Sign(SigningKey(signer), w.SignedBytes());
    return w.Encode();
  }

  std::string Dump() const {
    auto d = b->DumpState();
    REQUIRE(d.ok());
    return *d;
  }
  size_t StoredCount() const {
    auto s = b->StoredWrites();
    REQUIRE(s.ok());
    return s->size();
  }

  // Offers `bytes` to b and checks it is refused with `expected`, changing
  // nothing.
  void ExpectRefused(const Bytes& bytes, StatusCode expected) {
    const std::string before = Dump();
    const size_t stored = StoredCount();
    const HlcTimestamp clock_before = b->clock().last();
    auto r = b->ApplyRemote(bytes);
    CHECK_MESSAGE(r.status().code() == expected, r.status().ToString());
    CHECK(Dump() == before);
    CHECK(StoredCount() == stored);
    CHECK(b->clock().last() == clock_before);
  }

  // Calls `check(w)` for each byte of the decoded write's `field`, with a
  // copy of the write whose byte is flipped.
  template <typename Field, typename Check>
  void ForEachFlippedByte(Field Write::*field, const Check& check) {
    testing::ForEachFlippedByte(decoded.*field, [&](const Field& bad) {
      Write w = decoded;
      w.*field = bad;
      check(w);
    });
  }

  // The untouched write still applies: what was refused was the tampering.
  void ExpectOriginalApplies() {
    auto r = b->ApplyRemote(target);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(*r == ApplyOutcome::kApplied);
    auto rec = b->Get("cases", id);
    REQUIRE(rec.ok());
    CHECK(rec->fields.at("status").value == "\"FollowUp\"");
    CHECK(rec->fields.at("age").value == "30");
  }
};

struct MetadataChange {
  std::string what;
  std::function<void(Write&, TamperFixture&)> apply;
  StatusCode unsigned_code;  // left with the original signature
  StatusCode resigned_code;  // re-signed with the writer's real key
};

std::vector<MetadataChange> MetadataChanges() {
  using S = StatusCode;
  return {
      {"team", [](Write& w, TamperFixture&) { w.team = TeamId::Random(); }, S::kPermissionDenied,
       S::kPermissionDenied},
      {"collection", [](Write& w, TamperFixture&) { w.collection = "referrals"; },
       S::kUnauthenticated, S::kDecryptFailed},
      {"record", [](Write& w, TamperFixture&) { w.record.bytes[0] ^= 0x01; }, S::kUnauthenticated,
       S::kDecryptFailed},
      {"dot.device (unknown)", [](Write& w, TamperFixture&) { w.dot.device = DeviceId::Random(); },
       S::kPermissionDenied, S::kPermissionDenied},
      {"dot.device (another member)",
       [](Write& w, TamperFixture& f) { w.dot.device = f.c->device_id(); }, S::kUnauthenticated,
       S::kUnauthenticated},
      {"dot.counter up", [](Write& w, TamperFixture&) { ++w.dot.counter; }, S::kUnauthenticated,
       S::kDecryptFailed},
      // Below the writer's own entry in its context: malformed whoever signs it.
      {"dot.counter down", [](Write& w, TamperFixture&) { --w.dot.counter; }, S::kCorruption,
       S::kCorruption},
      {"hlc", [](Write& w, TamperFixture&) { ++w.hlc.value; }, S::kUnauthenticated,
       S::kDecryptFailed},
      // Claiming the writer's own later writes: malformed whoever signs it.
      {"context counter",
       [](Write& w, TamperFixture& f) {
         w.context.Add(Dot{f.a->device_id(), 7});
       },
       S::kCorruption, S::kCorruption},
      {"context entry removed", [](Write& w, TamperFixture&) { w.context = VersionVector(); },
       S::kUnauthenticated, S::kDecryptFailed},
      {"context entry added",
       [](Write& w, TamperFixture& f) {
         w.context.Add(Dot{f.b->device_id(), 1});
       },
       S::kUnauthenticated, S::kDecryptFailed},
      {"field name", [](Write& w, TamperFixture&) { w.fields[0] = "agf"; }, S::kUnauthenticated,
       S::kDecryptFailed},
      {"kind", [](Write& w, TamperFixture&) { w.kind = WriteKind::kErase; }, S::kUnauthenticated,
       S::kDecryptFailed},
      {"key version", [](Write& w, TamperFixture&) { w.key_version = 2; }, S::kUnauthenticated,
       S::kDecryptFailed},
  };
}

TEST_CASE(
    "changing any clear metadata of a write breaks its signature, and the receiver changes "
    "nothing") {
  TamperFixture f;
  for (const MetadataChange& change : MetadataChanges()) {
    CAPTURE(change.what);
    Write w = f.decoded;
    change.apply(w, f);
    const Bytes tampered = w.Encode();
    // Well-formed unless the change itself is malformed: then only the
    // bindings can catch it.
    CHECK(Write::Decode(tampered).ok() == (change.unsigned_code != StatusCode::kCorruption));
    f.ExpectRefused(tampered, change.unsigned_code);
  }
  f.ExpectOriginalApplies();
}

TEST_CASE(
    "metadata changed and re-signed with the writer's real key is caught by the AEAD "
    "binding") {
  TamperFixture f;
  // The re-signing itself is sound: an unchanged write re-signed verifies.
  auto resigned = Write::Decode(f.ReSigned(f.decoded, *f.a));
  REQUIRE(resigned.ok());
  REQUIRE(internal::VerifyWriteSignature(*resigned, f.a->public_keys().signing).ok());
  for (const MetadataChange& change : MetadataChanges()) {
    CAPTURE(change.what);
    Write w = f.decoded;
    change.apply(w, f);
    f.ExpectRefused(f.ReSigned(w, *f.a), change.resigned_code);
  }
  f.ExpectOriginalApplies();
}

TEST_CASE("another team member cannot claim a write as their own by re-signing it") {
  TamperFixture f;
  Write w = f.decoded;
  w.dot.device = f.c->device_id();
  f.ExpectRefused(f.ReSigned(w, *f.c), StatusCode::kDecryptFailed);
  f.ExpectOriginalApplies();
}

TEST_CASE("the AEAD binds each piece of metadata on its own, without any signature") {
  TamperFixture f;
  auto key = f.b->impl().TeamKey(f.decoded.key_version);
  REQUIRE(key.ok());
  auto values = internal::OpenWritePayload(f.decoded, **key);
  REQUIRE_MESSAGE(values.ok(), values.status().ToString());
  CHECK(*values == std::vector<std::string>{"30", "\"FollowUp\""});
  for (const MetadataChange& change : MetadataChanges()) {
    CAPTURE(change.what);
    Write w = f.decoded;
    change.apply(w, f);
    CHECK(internal::OpenWritePayload(w, **key).status().code() == StatusCode::kDecryptFailed);
  }
}

TEST_CASE("a flipped ciphertext or nonce byte is refused even when re-signed") {
  TamperFixture f;
  f.ForEachFlippedByte(&Write::ciphertext, [&](const Write& w) {
    f.ExpectRefused(w.Encode(), StatusCode::kUnauthenticated);
    f.ExpectRefused(f.ReSigned(w, *f.a), StatusCode::kDecryptFailed);
  });
  f.ForEachFlippedByte(&Write::nonce, [&](const Write& w) {
    f.ExpectRefused(f.ReSigned(w, *f.a), StatusCode::kDecryptFailed);
  });
  SUBCASE("a truncated ciphertext") {
    Write w = f.decoded;
    w.ciphertext.pop_back();
    f.ExpectRefused(f.ReSigned(w, *f.a), StatusCode::kDecryptFailed);
    w.ciphertext.clear();
    f.ExpectRefused(f.ReSigned(w, *f.a), StatusCode::kDecryptFailed);
  }
  f.ExpectOriginalApplies();
}

TEST_CASE("a flipped signature byte is kUnauthenticated") {
  TamperFixture f;
  f.ForEachFlippedByte(&Write::signature, [&](const Write& w) {
    f.ExpectRefused(w.Encode(), StatusCode::kUnauthenticated);
  });
  f.ExpectOriginalApplies();
}

TEST_CASE("a malformed write is refused by the replica and changes nothing") {
  TamperFixture f;
  f.ExpectRefused(Bytes(f.target.begin(), f.target.end() - 1), StatusCode::kCorruption);
  f.ExpectRefused({}, StatusCode::kCorruption);
  Bytes longer = f.target;
  longer.push_back(0);
  f.ExpectRefused(longer, StatusCode::kCorruption);
  f.ExpectOriginalApplies();
}

TEST_CASE("a write stamped beyond the receiver's drift limit is refused and changes nothing") {
  TempDir dir(true);
  FakeClock clock_a;
  FakeClock clock_b;
  clock_a.now_ms += 24 * 60 * 60 * 1000;  // a's clock runs a day ahead
  auto a = MakeReplica(TestOptions(dir.File("a"), &clock_a, true));
  auto b = MakeReplica(TestOptions(dir.File("b"), &clock_b, true));
  REQUIRE(CreateTeam(*a).ok());
  testing::JoinTeam(*a, *b);
  auto id = a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  const Bytes write = testing::OnlyPendingWrite(*a);

  auto before = b->DumpState();
  REQUIRE(before.ok());
  const HlcTimestamp clock_before = b->clock().last();
  auto r = b->ApplyRemote(write);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(*b->DumpState() == *before);
  CHECK(b->clock().last() == clock_before);
  CHECK(b->Get("cases", *id).status().code() == StatusCode::kNotFound);

  // Once b's clock has caught up, the same bytes are accepted.
  clock_b.now_ms = clock_a.now_ms;
  auto later = b->ApplyRemote(write);
  REQUIRE_MESSAGE(later.ok(), later.status().ToString());
  CHECK(b->Get("cases", *id).ok());
}

}  // namespace
}  // namespace enlace

namespace enlace {
namespace {

TEST_CASE("counters beyond 2^63 - 1 and a big-endian archive marker are refused") {
  Write w = GoldenWrite();
  w.dot.counter = Write::kMaxCounter + 1;
  CHECK(Write::Decode(w.Encode()).status().code() == StatusCode::kCorruption);
  w = GoldenWrite();
  w.context.Add(Dot{DeviceId::Random(), UINT64_MAX});
  CHECK(Write::Decode(w.Encode()).status().code() == StatusCode::kCorruption);
  // cereal marks byte order in the first byte; only little endian (1) is ours,
  // so no write has a second valid encoding.
  Bytes encoded = GoldenWrite().Encode();
  REQUIRE(encoded[0] == 1);
  encoded[0] = 0;
  CHECK(Write::Decode(encoded).status().code() == StatusCode::kCorruption);
}

// ---- the payload: compressed before it is encrypted (format 2) -------------------------

struct PayloadKeys {
  internal::SecretBytes team = internal::SecretBytes::Random(internal::kAeadKeyBytes);
  internal::SigningKeyPair signer = internal::SigningKeyPair::Generate();
};

Write SealedWrite(const PayloadKeys& keys, const std::vector<std::string>& fields,
                  const std::vector<std::string>& values, uint8_t format = Write::kFormatVersion) {
  Write w = GoldenWrite();
  w.format = format;
  w.fields = fields;
  REQUIRE(internal::SealWrite(w, values, keys.team, keys.signer.secret_key).ok());
  return w;
}

// Seals a hand-made plaintext payload as a format 2 write.
Write SealedPlaintext(const PayloadKeys& keys, const Bytes& plain) {
  Write w = GoldenWrite();
  w.fields = {"notes"};
  w.nonce = internal::RandomNonce();
  w.ciphertext = internal::AeadSeal(keys.team, w.nonce, plain, w.EncodeMetadata());
  w.signature = internal::Sign(keys.signer.secret_key, w.SignedBytes());
  return w;
}

TEST_CASE("sealing refuses a format 3 write without its accounted-from number") {
  PayloadKeys keys;
  Write w = GoldenWrite();
  w.accounted_from = 0;
  CHECK(internal::SealWrite(w, {"1", "2"}, keys.team, keys.signer.secret_key).code() ==
        StatusCode::kInternal);
  w.accounted_from = 1;
  CHECK(internal::SealWrite(w, {"1", "2"}, keys.team, keys.signer.secret_key).ok());
}

TEST_CASE("a long payload is compressed before encryption and opens to the same values") {
  PayloadKeys keys;
  std::string narrative = "\"";
  for (int i = 0; i < 40; ++i) narrative += "refiere oferta de trabajo en Puebla; ";
  narrative += "\"";
  const std::vector<std::string> values = {narrative, "\"Apizaco\""};
  const Write compressed = SealedWrite(keys, {"notes", "place"}, values);
  const Write plain = SealedWrite(keys, {"notes", "place"}, values, 1);
  CHECK(compressed.ciphertext.size() * 4 < plain.ciphertext.size());
  auto decoded = Write::Decode(compressed.Encode());
  REQUIRE(decoded.ok());
  CHECK(decoded->format == Write::kFormatVersion);
  CHECK(decoded->Encode() == compressed.Encode());
  CHECK(internal::VerifyWriteSignature(*decoded, keys.signer.public_key).ok());
  auto opened = internal::OpenWritePayload(*decoded, keys.team);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK(*opened == values);
}

TEST_CASE("format 1 writes made before compression still decode, verify and open") {
  PayloadKeys keys;
  const std::vector<std::string> values = {"30", "\"FollowUp\""};
  const Write old = SealedWrite(keys, {"age", "status"}, values, 1);
  const Bytes encoded = old.Encode();
  CHECK(encoded[1] == 1);
  auto decoded = Write::Decode(encoded);
  REQUIRE(decoded.ok());
  CHECK(decoded->format == 1);
  CHECK(decoded->Encode() == encoded);
  CHECK(internal::VerifyWriteSignature(*decoded, keys.signer.public_key).ok());
  auto opened = internal::OpenWritePayload(*decoded, keys.team);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK(*opened == values);
  // The format byte is signed and bound to the payload: relabelled, it fails.
  Write relabelled = *decoded;
  relabelled.format = 2;
  CHECK(!internal::VerifyWriteSignature(relabelled, keys.signer.public_key).ok());
  CHECK(internal::OpenWritePayload(relabelled, keys.team).status().code() ==
        StatusCode::kDecryptFailed);
}

TEST_CASE("a short payload is stored plain, marked as such") {
  PayloadKeys keys;
  const Write w = SealedWrite(keys, {"age"}, {"3"});
  auto opened = internal::OpenWritePayload(w, keys.team);
  REQUIRE(opened.ok());
  CHECK(*opened == std::vector<std::string>{"3"});
}

TEST_CASE("a malformed compressed payload is kCorruption, whatever it claims") {
  PayloadKeys keys;
  Encoder values;
  values.U32(1);
  values.String("\"" + std::string(200, 'x') + "\"");
  const Bytes raw = values.Finish();
  const Bytes frame = internal::Compress(raw);
  auto payload = [&](uint8_t encoding, uint32_t size, const Bytes& body) {
    Encoder e;
    e.U8(encoding);
    if (encoding == 1) e.U32(size);
    e.Raw(body);
    return e.Finish();
  };
  // The well-formed one opens: the cases below differ from it in one thing.
  auto good = internal::OpenWritePayload(
      SealedPlaintext(keys, payload(1, static_cast<uint32_t>(raw.size()), frame)), keys.team);
  REQUIRE_MESSAGE(good.ok(), good.status().ToString());
  CHECK(good->at(0).size() == 202);

  Bytes plain;
  SUBCASE("an unknown encoding") { plain = payload(7, 0, raw); }
  SUBCASE("a declared size smaller than the data") {
    plain = payload(1, static_cast<uint32_t>(raw.size() - 1), frame);
  }
  SUBCASE("a declared size larger than the data") {
    plain = payload(1, static_cast<uint32_t>(raw.size() + 1), frame);
  }
  SUBCASE("a declared size over the 1 MiB payload limit (nothing allocated)") {
    plain = payload(1, (1u << 20) + 1, frame);
  }
  SUBCASE("a damaged frame") {
    Bytes bad = frame;
    bad[bad.size() / 2] ^= 0xff;
    plain = payload(1, static_cast<uint32_t>(raw.size()), bad);
  }
  SUBCASE("a truncated frame") {
    plain = payload(1, static_cast<uint32_t>(raw.size()), Bytes(frame.begin(), frame.end() - 3));
  }
  SUBCASE("bytes after the frame") {
    Bytes longer = frame;
    longer.push_back(0);
    plain = payload(1, static_cast<uint32_t>(raw.size()), longer);
  }
  SUBCASE("no encoding byte at all") { plain = Encoder().Finish(); }
  const auto opened = internal::OpenWritePayload(SealedPlaintext(keys, plain), keys.team);
  CHECK(opened.status().code() == StatusCode::kCorruption);
}

}  // namespace
}  // namespace enlace
