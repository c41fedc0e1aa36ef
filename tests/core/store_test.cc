// The device's SQLite store (core/src/store.h) on real files: migrations,
// PRAGMAs, transactions, the tables' round trips, the outbox, and what a
// damaged file does to a replica.
#include "store.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "enlace/replica.h"
#include "test_util.h"

namespace enlace::internal {
namespace {

using testing::TempDir;

// The number of entries in store.cc's kMigrations. Appending a migration
// must update this on purpose.
constexpr int64_t kExpectedSchemaVersion = 3;

std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto s = Store::Open(path);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(s).value();
}

// Runs a one-row PRAGMA or query and returns its first column as text.
std::string QueryText(Db& db, const std::string& sql) {
  auto st = db.Prepare(sql);
  REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  auto row = st->Step();
  REQUIRE_MESSAGE(row.ok(), row.status().ToString());
  REQUIRE_MESSAGE(*row, sql << " returned no row");
  return st->ColumnText(0);
}

int64_t QueryInt(Db& db, const std::string& sql) { return std::stoll(QueryText(db, sql)); }

DeviceId Device(uint8_t b) {
  DeviceId d;
  d.bytes.fill(b);
  return d;
}

RecordId Rec(uint8_t b) {
  RecordId r;
  r.bytes.fill(b);
  return r;
}

// Stores a write of `size` encoded bytes for `dot` and queues it when
// `queue` (the store does not decode what it keeps).
void StoreWrite(Store& store, const Dot& dot, size_t size, bool queue = true) {
  Write w;
  w.collection = "cases";
  w.record = Rec(static_cast<uint8_t>(dot.counter));
  w.dot = dot;
  const Bytes encoded(size, static_cast<uint8_t>(dot.counter));
  REQUIRE(store.InsertWrite(w, encoded).ok());
  if (queue) REQUIRE(store.AddToOutbox(dot.counter).ok());
}

std::vector<uint64_t> PendingCounters(Store& store, const DeviceId& self, size_t max_bytes) {
  auto pending = store.PendingWrites(self, max_bytes);
  REQUIRE_MESSAGE(pending.ok(), pending.status().ToString());
  std::vector<uint64_t> out;
  for (const auto& [counter, bytes] : *pending) out.push_back(counter);
  return out;
}

// ---- schema and PRAGMAs ---------------------------------------------------------------

TEST_CASE("a fresh store is at the schema version of the last migration") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  auto v = store->SchemaVersion();
  REQUIRE(v.ok());
  CHECK(*v == kExpectedSchemaVersion);
  // Migration 2's columns exist.
  CHECK(QueryInt(store->db(),
                 "SELECT count(*) FROM pragma_table_info('devices') "
                 "WHERE name IN ('name', 'role', 'revoked')") == 3);
}

TEST_CASE("reopening a store keeps its data and does not run the migrations again") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    auto store = OpenStore(path);
    REQUIRE(store->SetMeta("probe", 42).ok());
    REQUIRE(store->PutDevice(Device(7), SignPublicKey{}, BoxPublicKey{}).ok());
  }
  // Re-running migration 1 would fail on CREATE TABLE, migration 2 on a
  // duplicate column; either way the reopen would fail or lose the rows.
  auto store = OpenStore(path);
  CHECK(*store->SchemaVersion() == kExpectedSchemaVersion);
  CHECK(*store->GetMeta("probe") == 42);
  auto key = store->GetSigningKey(Device(7));
  REQUIRE(key.ok());
  CHECK(key->has_value());
}

TEST_CASE("a store written by a newer version is refused with kFailedPrecondition") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  { auto store = OpenStore(path); }
  {
    auto db = Db::Open(path);
    REQUIRE(db.ok());
    REQUIRE((*db)
                ->ExecScript("PRAGMA user_version=" + std::to_string(kExpectedSchemaVersion + 1))
                .ok());
  }
  auto refused = Store::Open(path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("newer") != std::string::npos);

  // Nothing was downgraded.
  auto db = Db::Open(path);
  REQUIRE(db.ok());
  CHECK(QueryInt(**db, "PRAGMA user_version") == kExpectedSchemaVersion + 1);
}

TEST_CASE("the store runs in WAL mode with full sync, foreign keys and secure delete") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  CHECK(QueryText(store->db(), "PRAGMA journal_mode") == "wal");
  CHECK(QueryInt(store->db(), "PRAGMA secure_delete") == 1);
  CHECK(QueryInt(store->db(), "PRAGMA synchronous") == 2);  // FULL
  CHECK(QueryInt(store->db(), "PRAGMA foreign_keys") == 1);
  CHECK(std::filesystem::exists(dir.File("store.db-wal")));
}

// ---- transactions ---------------------------------------------------------------------

TEST_CASE("a transaction rolls back in its destructor unless committed") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenStore(path);
  {
    auto tx = store->Begin();
    REQUIRE(tx.ok());
    REQUIRE(store->SetMeta("dropped", 5).ok());
    CHECK(*store->GetMeta("dropped") == 5);  // visible inside the transaction
  }
  CHECK(QueryInt(store->db(), "SELECT count(*) FROM meta WHERE key = 'dropped'") == 0);
  CHECK(*store->GetMeta("dropped") == 0);

  {
    auto tx = store->Begin();
    REQUIRE(tx.ok());
    REQUIRE(store->SetMeta("kept", 6).ok());
    REQUIRE((*tx)->Commit().ok());
  }
  store.reset();
  store = OpenStore(path);
  CHECK(*store->GetMeta("kept") == 6);
  CHECK(QueryInt(store->db(), "SELECT count(*) FROM meta WHERE key = 'dropped'") == 0);
}

TEST_CASE("a transaction that is not committed leaves nothing for another connection") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenStore(path);
  auto other = OpenStore(path);
  {
    auto tx = store->Begin();
    REQUIRE(tx.ok());
    StoreWrite(*store, Dot{Device(1), 1}, 10);
    CHECK(*other->CountWrites() == 0);  // not visible before commit
  }
  CHECK(*other->CountWrites() == 0);
  CHECK(*other->PendingCount() == 0);
  // The dropped transaction released its lock: the other connection can write.
  REQUIRE(other->SetMeta("after", 1).ok());
  CHECK(*store->GetMeta("after") == 1);
}

// ---- meta -----------------------------------------------------------------------------

TEST_CASE("meta counters read 0 when unset and keep the full uint64 range") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  CHECK(*store->GetMeta(kMetaPullCursor) == 0);
  REQUIRE(store->SetMeta(kMetaPullCursor, 17).ok());
  CHECK(*store->GetMeta(kMetaPullCursor) == 17);
  REQUIRE(store->SetMeta(kMetaPullCursor, 18).ok());  // overwrite, no duplicate key
  CHECK(*store->GetMeta(kMetaPullCursor) == 18);
  CHECK(QueryInt(store->db(), "SELECT count(*) FROM meta") == 1);
  // A negative clock offset is kept as two's complement.
  REQUIRE(store->SetMeta(kMetaClockOffset, UINT64_MAX).ok());
  CHECK(*store->GetMeta(kMetaClockOffset) == UINT64_MAX);
  REQUIRE(store->SetMeta(kMetaLastSyncMs, uint64_t{1} << 63).ok());
  CHECK(*store->GetMeta(kMetaLastSyncMs) == uint64_t{1} << 63);
  CHECK(*store->GetMeta(kMetaPullCursor) == 18);
}

// ---- records --------------------------------------------------------------------------

TEST_CASE("a record's context and siblings round-trip through SaveRecord and LoadRecord") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  const RecordKey key{"cases", Rec(0xab)};
  RecordState state;
  state.context.Add(Dot{Device(1), 3});
  state.context.Add(Dot{Device(2), 9});
  state.context.Add(Dot{Device(0xff), UINT64_MAX >> 1});
  state.fields[kDeletedField] = {Sibling{Dot{Device(1), 3}, HlcTimestamp{100}}};
  state.fields["age"] = {Sibling{Dot{Device(1), 2}, HlcTimestamp{90}},
                         Sibling{Dot{Device(2), 9}, HlcTimestamp{95}}};
  state.fields["status"] = {Sibling{Dot{Device(2), 4}, HlcTimestamp{50}}};
  {
    auto store = OpenStore(path);
    auto missing = store->LoadRecord(key);
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
    REQUIRE(store->SaveRecord(key, state).ok());
  }
  auto store = OpenStore(path);
  auto loaded = store->LoadRecord(key);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK(**loaded == state);

  // The same id in another collection is another record.
  auto other = store->LoadRecord(RecordKey{"encounters", key.record});
  REQUIRE(other.ok());
  CHECK_FALSE(other->has_value());

  // Saving again replaces the siblings instead of adding to them.
  RecordState next = state;
  next.fields["age"] = {Sibling{Dot{Device(3), 1}, HlcTimestamp{200}}};
  next.fields.erase("status");
  next.context.Add(Dot{Device(3), 1});
  REQUIRE(store->SaveRecord(key, next).ok());
  loaded = store->LoadRecord(key);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK(**loaded == next);
  auto keys = store->ListRecords("");
  REQUIRE(keys.ok());
  CHECK(keys->size() == 1);
}

TEST_CASE("a stored context that does not decode is reported as corruption") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const RecordKey key{"cases", Rec(1)};
  RecordState state;
  state.context.Add(Dot{Device(1), 1});
  state.fields[kDeletedField] = {Sibling{Dot{Device(1), 1}, HlcTimestamp{1}}};
  REQUIRE(store->SaveRecord(key, state).ok());
  REQUIRE(store->db().ExecScript("UPDATE records SET context = x'0500000001'").ok());
  auto loaded = store->LoadRecord(key);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.status().code() == StatusCode::kCorruption);
}

// ---- outbox ---------------------------------------------------------------------------

TEST_CASE("PendingWrites returns own writes in counter order within the byte budget") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  auto none = store->PendingWrites(self, SIZE_MAX);
  REQUIRE(none.ok());
  CHECK(none->empty());

  for (uint64_t c = 5; c >= 1; --c) StoreWrite(*store, Dot{self, c}, 100);  // inserted backwards
  StoreWrite(*store, Dot{Device(2), 6}, 100, /*queue=*/false);  // another device's write
  CHECK(*store->PendingCount() == 5);

  CHECK(PendingCounters(*store, self, SIZE_MAX) == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(PendingCounters(*store, self, 300) == std::vector<uint64_t>{1, 2, 3});  // exactly fits
  CHECK(PendingCounters(*store, self, 299) == std::vector<uint64_t>{1, 2});
  CHECK(PendingCounters(*store, self, 0) == std::vector<uint64_t>{1});  // always at least one

  auto pending = store->PendingWrites(self, 150);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().second == Bytes(100, 1));

  // Another device's outbox view does not see this device's writes.
  CHECK(PendingCounters(*store, Device(2), SIZE_MAX).empty());
}

TEST_CASE("PendingWrites stops at the first write that does not fit, keeping counter order") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  StoreWrite(*store, Dot{self, 1}, 100);
  StoreWrite(*store, Dot{self, 2}, 300);
  StoreWrite(*store, Dot{self, 3}, 50);
  CHECK(PendingCounters(*store, self, 200) == std::vector<uint64_t>{1});
  CHECK(PendingCounters(*store, self, 10) ==
        std::vector<uint64_t>{1});  // too big alone: sent anyway
  CHECK(PendingCounters(*store, self, 450) == std::vector<uint64_t>{1, 2, 3});
}

TEST_CASE("AcknowledgeUpTo drops exactly the outbox entries up to the counter") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  for (uint64_t c = 1; c <= 5; ++c) StoreWrite(*store, Dot{self, c}, 10);

  REQUIRE(store->AcknowledgeUpTo(0).ok());
  CHECK(*store->PendingCount() == 5);
  REQUIRE(store->AcknowledgeUpTo(3).ok());
  CHECK(*store->PendingCount() == 2);
  CHECK(PendingCounters(*store, self, SIZE_MAX) == std::vector<uint64_t>{4, 5});
  REQUIRE(store->AcknowledgeUpTo(2).ok());  // acknowledging the past again is harmless
  CHECK(*store->PendingCount() == 2);
  // The writes themselves stay in the store; only the outbox marks go.
  CHECK(*store->CountWrites() == 5);
  REQUIRE(store->AcknowledgeUpTo(5).ok());
  CHECK(*store->PendingCount() == 0);
  CHECK(PendingCounters(*store, self, SIZE_MAX).empty());
}

TEST_CASE("AcknowledgeUpTo with the largest counter acknowledges everything") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  for (uint64_t c = 1; c <= 3; ++c) StoreWrite(*store, Dot{self, c}, 10);
  REQUIRE(store->AcknowledgeUpTo(UINT64_MAX).ok());
  CHECK(*store->PendingCount() == 0);
}

// ---- version vectors ------------------------------------------------------------------

TEST_CASE("a version vector round-trips through its canonical encoding") {
  VersionVector vv;
  CHECK(*DecodeVersionVector(EncodeVersionVector(vv)) == vv);
  vv.Add(Dot{Device(3), 1});
  vv.Add(Dot{Device(1), UINT64_MAX});
  vv.Add(Dot{Device(2), 77});
  auto decoded = DecodeVersionVector(EncodeVersionVector(vv));
  REQUIRE(decoded.ok());
  CHECK(*decoded == vv);
}

TEST_CASE("a truncated, extended or garbage version vector is an error, not a crash") {
  VersionVector vv;
  for (uint8_t i = 1; i <= 3; ++i) vv.Add(Dot{Device(i), i * 10u});
  const Bytes good = EncodeVersionVector(vv);
  // cereal's endianness marker, the u32 count, then (device, counter) entries.
  REQUIRE(good.size() == 1 + 4 + 3 * 24);

  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    auto r = DecodeVersionVector(ByteView(good.data(), n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
  }
  Bytes longer = good;
  longer.push_back(0);
  CHECK_FALSE(DecodeVersionVector(longer).ok());

  // A count far beyond the bytes present is refused before allocating.
  const Bytes huge_count = {1, 0xff, 0xff, 0xff, 0x7f};
  auto r = DecodeVersionVector(huge_count);
  REQUIRE_FALSE(r.ok());
  CHECK((r.status().code() == StatusCode::kCorruption ||
         r.status().code() == StatusCode::kResourceExhausted));

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> len(0, 220);
  for (int i = 0; i < 2000; ++i) {
    Bytes garbage(len(rng));
    for (auto& b : garbage) b = static_cast<uint8_t>(byte(rng));
    // Only the size decides success: a little-endian marker, a count n < 9,
    // then exactly n * 24 bytes of anything.
    if (garbage.size() >= 5) {
      garbage[0] = 1;
      garbage[1] = static_cast<uint8_t>(garbage[1] % 9);
      garbage[2] = garbage[3] = garbage[4] = 0;
    }
    auto decoded = DecodeVersionVector(garbage);
    const bool well_sized = garbage.size() >= 5 && garbage.size() == 5 + garbage[1] * 24u;
    CAPTURE(i);
    CHECK(decoded.ok() == well_sized);
  }
}

// ---- damaged files --------------------------------------------------------------------

// Fills a replica with enough records that store.db spans many pages.
void FillReplica(const ReplicaOptions& options) {
  auto r = testing::MakeReplica(options);
  REQUIRE(r->CreateTeam().ok());
  for (int i = 0; i < 60; ++i) {
    auto id = r->Put("cases", std::nullopt,
                     {{"n", std::to_string(i)}, {"note", "\"" + std::string(300, 'x') + "\""}});
    REQUIRE_MESSAGE(id.ok(), id.status().ToString());
  }
}

void OverwriteWithGarbage(const std::string& path, size_t from, size_t to, uint32_t seed) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  std::mt19937 rng(seed);
  std::string garbage(to - from, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  f.seekp(static_cast<std::streamoff>(from));
  f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  REQUIRE(f.good());
}

bool IsClearStorageError(const Status& s) {
  return (s.code() == StatusCode::kCorruption || s.code() == StatusCode::kIoError) &&
         !s.message().empty();
}

// Opens the replica and reads everything; returns the first error.
Status OpenAndReadAll(const ReplicaOptions& options) {
  auto r = Replica::Open(options, "correct horse");
  if (!r.ok()) return r.status();
  auto dump = (*r)->DumpState();
  if (!dump.ok()) return dump.status();
  auto list = (*r)->List("cases");
  if (!list.ok()) return list.status();
  auto pending = (*r)->PendingWrites(SIZE_MAX);
  if (!pending.ok()) return pending.status();
  return Status::Ok();
}

TEST_CASE("a store file with garbage in the middle gives a clear storage error, no crash") {
  TempDir dir;
  const auto options = testing::TestOptions(dir.path());
  FillReplica(options);
  const std::string path = dir.File("store.db");
  REQUIRE_FALSE(std::filesystem::exists(dir.File("store.db-wal")));  // checkpointed on close
  const size_t size = std::filesystem::file_size(path);
  const size_t page = 4096;
  REQUIRE(size >= 8 * page);
  // Every page but the first (header and schema) and the last.
  OverwriteWithGarbage(path, page, size - page, 99);

  const Status s = OpenAndReadAll(options);
  CAPTURE(s.ToString());
  CHECK(IsClearStorageError(s));
}

TEST_CASE("a store file with a garbage header is refused on open as corruption") {
  TempDir dir;
  const auto options = testing::TestOptions(dir.path());
  FillReplica(options);
  OverwriteWithGarbage(dir.File("store.db"), 0, 100, 7);
  auto r = Replica::Open(options, "correct horse");
  REQUIRE_FALSE(r.ok());
  CAPTURE(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kCorruption);
}

}  // namespace
}  // namespace enlace::internal
