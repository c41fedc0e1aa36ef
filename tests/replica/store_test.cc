// The device's SQLite store (core/replica/store.h) on real files: migrations,
// PRAGMAs, transactions, the tables' round trips, the outbox, and what a
// damaged file does to a replica.
#include "replica/store.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "test_util.h"

namespace enlace::internal {
namespace {

using testing::TempDir;

// The number of entries in store.cc's kMigrations. Appending a migration
// must update this on purpose.
constexpr int64_t kExpectedSchemaVersion = 9;

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
  CHECK(QueryInt(store->db(), "SELECT wr FROM pragma_table_list WHERE name = 'writes'") == 0);
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

TEST_CASE("a nested transaction is a savepoint: dropped alone, kept only with the outer one") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenStore(path);
  // Twice each way: the cached BEGIN/SAVEPOINT/RELEASE/ROLLBACK statements are reused.
  for (const bool commit_outer : {true, false, true, false}) {
    CAPTURE(commit_outer);
    REQUIRE(store->db().ExecScript("DELETE FROM meta").ok());
    {
      auto outer = store->Begin();
      REQUIRE(outer.ok());
      REQUIRE(store->SetMeta("outer", 1).ok());
      {
        auto kept = store->Begin();
        REQUIRE(kept.ok());
        REQUIRE(store->SetMeta("kept", 2).ok());
        REQUIRE((*kept)->Commit().ok());
      }
      {
        auto dropped = store->Begin();
        REQUIRE(dropped.ok());
        REQUIRE(store->SetMeta("dropped", 3).ok());
        REQUIRE(store->SetMeta("kept", 9).ok());
      }
      CHECK(*store->GetMeta("kept") == 2);  // only the dropped savepoint's part is undone
      CHECK(*store->GetMeta("dropped") == 0);
      CHECK(*store->GetMeta("outer") == 1);
      {
        auto next = store->Begin();  // the outer transaction goes on after that rollback
        REQUIRE(next.ok());
        REQUIRE(store->SetMeta("next", 4).ok());
        REQUIRE((*next)->Commit().ok());
      }
      if (commit_outer) REQUIRE((*outer)->Commit().ok());
    }
    auto other = OpenStore(path);  // what another connection sees
    CHECK(*other->GetMeta("outer") == (commit_outer ? 1 : 0));
    CHECK(*other->GetMeta("kept") == (commit_outer ? 2 : 0));
    CHECK(*other->GetMeta("next") == (commit_outer ? 4 : 0));
    CHECK(*other->GetMeta("dropped") == 0);
    CHECK(QueryInt(other->db(), "SELECT count(*) FROM meta") == (commit_outer ? 3 : 0));
  }
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
  CHECK(QueryInt(store->db(), "SELECT count(*) FROM meta WHERE key = 'pull_cursor'") == 1);
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

TEST_CASE("RecordsWithSeveralSiblings lists exactly the records with a conflicting field") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenStore(path);
  RecordState clean;
  clean.context.Add(Dot{Device(1), 1});
  clean.fields[kDeletedField] = {Sibling{Dot{Device(1), 1}, HlcTimestamp{1}}};
  clean.fields["age"] = {Sibling{Dot{Device(1), 1}, HlcTimestamp{1}}};
  RecordState conflicted = clean;
  conflicted.context.Add(Dot{Device(2), 1});
  conflicted.fields["age"].push_back(Sibling{Dot{Device(2), 1}, HlcTimestamp{2}});

  REQUIRE(store->SaveRecord(RecordKey{"cases", Rec(3)}, conflicted).ok());
  REQUIRE(store->SaveRecord(RecordKey{"cases", Rec(1)}, clean).ok());
  REQUIRE(store->SaveRecord(RecordKey{"cases", Rec(2)}, conflicted).ok());
  REQUIRE(store->SaveRecord(RecordKey{"alerts", Rec(9)}, conflicted).ok());
  auto listed = store->RecordsWithSeveralSiblings();
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<RecordKey>{RecordKey{"alerts", Rec(9)}, RecordKey{"cases", Rec(2)},
                                          RecordKey{"cases", Rec(3)}});

  // Resolving (saving it clean again) takes a record off the list, across a reopen.
  REQUIRE(store->SaveRecord(RecordKey{"cases", Rec(2)}, clean).ok());
  store.reset();
  store = OpenStore(path);
  listed = store->RecordsWithSeveralSiblings();
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<RecordKey>{RecordKey{"alerts", Rec(9)}, RecordKey{"cases", Rec(3)}});
}

TEST_CASE("a record's siblings come back in dot order whatever order they were saved in") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const RecordKey key{"cases", Rec(5)};
  RecordState state;
  state.context.Add(Dot{Device(3), 7});
  state.context.Add(Dot{Device(1), 2});
  state.fields["age"] = {Sibling{Dot{Device(3), 7}, HlcTimestamp{1}},
                         Sibling{Dot{Device(1), 2}, HlcTimestamp{5}},
                         Sibling{Dot{Device(1), 1}, HlcTimestamp{9}}};
  REQUIRE(store->SaveRecord(key, state).ok());
  auto loaded = store->LoadRecord(key);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  const std::vector<Sibling> sorted = {Sibling{Dot{Device(1), 1}, HlcTimestamp{9}},
                                       Sibling{Dot{Device(1), 2}, HlcTimestamp{5}},
                                       Sibling{Dot{Device(3), 7}, HlcTimestamp{1}}};
  CHECK((*loaded)->fields.at("age") == sorted);
  CHECK((*loaded)->context == state.context);
}

TEST_CASE("stored registers that do not decode are reported as corruption, never a crash") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const RecordKey key{"cases", Rec(1)};
  RecordState state;
  state.context.Add(Dot{Device(1), 300});
  state.context.Add(Dot{Device(2), 1});
  state.fields[kDeletedField] = {Sibling{Dot{Device(1), 1}, HlcTimestamp{1}}};
  state.fields["age"] = {Sibling{Dot{Device(1), 300}, HlcTimestamp{UINT64_MAX}},
                         Sibling{Dot{Device(2), 1}, HlcTimestamp{3}}};
  state.fields["name"] = {Sibling{Dot{Device(1), 300}, HlcTimestamp{UINT64_MAX}}};
  REQUIRE(store->SaveRecord(key, state).ok());
  auto good_blob = [&] {
    auto st = store->db().Prepare("SELECT registers FROM records");
    REQUIRE(st.ok());
    REQUIRE(*st->Step());
    const auto b = st->ColumnBlob(0);
    return Bytes(b.begin(), b.end());
  }();
  auto set_blob = [&](const Bytes& blob) {
    auto st = store->db().Prepare("UPDATE records SET registers = ?");
    REQUIRE(st.ok());
    REQUIRE(st->BindBlob(1, blob).Exec().ok());
  };
  auto load = [&] { return store->LoadRecord(key); };

  // Every strict prefix and the blob with a byte more are refused.
  for (size_t n = 0; n < good_blob.size(); ++n) {
    CAPTURE(n);
    set_blob(Bytes(good_blob.begin(), good_blob.begin() + static_cast<std::ptrdiff_t>(n)));
    auto r = load();
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
  }
  Bytes longer = good_blob;
  longer.push_back(0);
  set_blob(longer);
  CHECK(load().status().code() == StatusCode::kCorruption);
  // A wrong format byte.
  Bytes format = good_blob;
  format[0] = 2;
  set_blob(format);
  CHECK(load().status().code() == StatusCode::kCorruption);
  // Huge counts are refused before allocating.
  set_blob(Bytes{1, 0xff, 0xff, 0xff, 0xff, 0x0f});
  CHECK(load().status().code() == StatusCode::kCorruption);
  set_blob(Bytes{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f});
  CHECK(load().status().code() == StatusCode::kCorruption);

  // Random changes decode or fail cleanly (run under the sanitizers).
  std::mt19937 rng(77);
  for (int i = 0; i < 3000; ++i) {
    Bytes b = good_blob;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    set_blob(b);
    auto r = load();
    if (!r.ok()) CHECK(r.status().code() == StatusCode::kCorruption);
  }

  set_blob(good_blob);
  auto back = load();
  REQUIRE(back.ok());
  REQUIRE(back->has_value());
  CHECK(**back == state);
}

// ---- migrations 4 and 5: one registers blob per record, writes by rowid -------------

// The local store as migrations 1-3 left it (released migrations never change).
const std::string kSchema3 = StoreSchemaSql(3);

// Random records as a device may hold them: several devices, conflicts,
// counters and clocks over the whole range (stored as signed integers).
std::map<RecordKey, RecordState> RandomRecords(std::mt19937_64& rng, int n) {
  const std::vector<std::string> collections = {"cases", "persons", "encounters"};
  const std::vector<std::string> names = {kDeletedField, "age", "prs_given_name",      "status",
                                          "sex",         "n",   std::string(300, 'f'), "ñandú"};
  std::map<RecordKey, RecordState> out;
  while (static_cast<int>(out.size()) < n) {
    RecordKey key{collections[rng() % collections.size()], RecordId{}};
    for (auto& b : key.record.bytes) b = static_cast<uint8_t>(rng());
    RecordState state;
    const Dot main_dot{Device(static_cast<uint8_t>(1 + rng() % 4)), 1 + rng() % 100000};
    const HlcTimestamp main_hlc{rng()};
    state.context.Add(main_dot);
    for (const auto& name : names) {
      if (name != kDeletedField && rng() % 3 == 0) continue;
      std::vector<Sibling> siblings = {Sibling{main_dot, main_hlc}};
      if (rng() % 4 == 0) {
        const int extra = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < extra; ++e) {
          const Dot dot{Device(static_cast<uint8_t>(1 + rng() % 6)),
                        rng() % 4 == 0 ? rng() >> 1 : rng() % 50};
          if (std::any_of(siblings.begin(), siblings.end(),
                          [&](const Sibling& s) { return s.dot == dot; })) {
            continue;
          }
          siblings.push_back(Sibling{dot, HlcTimestamp{rng()}});
          state.context.Add(dot);
        }
      }
      std::sort(siblings.begin(), siblings.end(),
                [](const Sibling& a, const Sibling& b) { return a.dot < b.dot; });
      state.fields[name] = std::move(siblings);
    }
    out.emplace(std::move(key), std::move(state));
  }
  return out;
}

// The device's own write still in the outbox in WriteSchema3's files.
constexpr uint64_t kQueuedCounter = uint64_t{1} << 40;

// Writes `records` into an old-schema file: one `records` row each, one
// `siblings` row per sibling, the rows in a shuffled order, and a write of
// random bytes (between 1 and 3,000) for each dot. Returns the writes.
std::map<Dot, StoredWrite> WriteSchema3(const std::string& path,
                                        const std::map<RecordKey, RecordState>& records,
                                        std::mt19937_64& rng) {
  auto db = Db::Open(path);
  REQUIRE(db.ok());
  REQUIRE((*db)->ExecScript(kSchema3).ok());
  REQUIRE((*db)->ExecScript("BEGIN").ok());
  struct Row {
    const RecordKey* key;
    std::string field;
    Sibling sibling;
  };
  std::vector<Row> rows;
  for (const auto& [key, state] : records) {
    auto ins = (*db)->Prepare("INSERT INTO records(collection, record, context) VALUES(?, ?, ?)");
    REQUIRE(ins.ok());
    REQUIRE(ins->Bind(1, key.collection)
                .BindBlob(2, key.record.bytes)
                .BindBlob(3, EncodeVersionVector(state.context))
                .Exec()
                .ok());
    for (const auto& [field, siblings] : state.fields) {
      for (const auto& s : siblings) rows.push_back(Row{&key, field, s});
    }
  }
  std::map<Dot, StoredWrite> writes;
  std::map<Dot, const RecordKey*> owner;
  for (const auto& row : rows) owner.emplace(row.sibling.dot, row.key);
  owner.emplace(Dot{Device(1), kQueuedCounter}, &records.begin()->first);
  for (const auto& [dot, key] : owner) {
    StoredWrite w;
    w.kind = rng() % 5 == 0 ? WriteKind::kDelete : WriteKind::kPut;
    w.encoded.resize(1 + rng() % 3000);
    for (auto& b : w.encoded) b = static_cast<uint8_t>(rng());
    auto ins = (*db)->Prepare(
        "INSERT INTO writes(device, counter, collection, record, kind, encoded) "
        "VALUES(?, ?, ?, ?, ?, ?)");
    REQUIRE(ins.ok());
    REQUIRE(ins->BindBlob(1, dot.device.bytes)
                .Bind(2, static_cast<int64_t>(dot.counter))
                .Bind(3, key->collection)
                .BindBlob(4, key->record.bytes)
                .Bind(5, static_cast<int64_t>(w.kind))
                .BindBlob(6, w.encoded)
                .Exec()
                .ok());
    writes.emplace(dot, std::move(w));
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  for (const auto& row : rows) {
    auto ins = (*db)->Prepare(
        "INSERT INTO siblings(collection, record, field, device, counter, hlc) "
        "VALUES(?, ?, ?, ?, ?, ?)");
    REQUIRE(ins.ok());
    REQUIRE(ins->Bind(1, row.key->collection)
                .BindBlob(2, row.key->record.bytes)
                .Bind(3, row.field)
                .BindBlob(4, row.sibling.dot.device.bytes)
                .Bind(5, static_cast<int64_t>(row.sibling.dot.counter))
                .Bind(6, static_cast<int64_t>(row.sibling.hlc.value))
                .Exec()
                .ok());
  }
  REQUIRE((*db)
              ->ExecScript("INSERT INTO meta(key, value) VALUES('counter', " +
                           std::to_string(kQueuedCounter) +
                           "); INSERT INTO outbox(counter) VALUES(" +
                           std::to_string(kQueuedCounter) + "); COMMIT")
              .ok());
  return writes;
}

TEST_CASE("migrations 4 and 5 convert a schema-3 store: every record and write reads back") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  std::mt19937_64 rng(2026);
  auto records = RandomRecords(rng, 400);
  // A record whose siblings rows are all gone still has its context.
  RecordState bare;
  bare.context.Add(Dot{Device(9), 12});
  records.emplace(RecordKey{"cases", Rec(0x42)}, bare);
  const auto writes = WriteSchema3(path, records, rng);

  std::set<RecordKey> expected_conflicts;
  size_t conflicts_seen = 0;
  for (const auto& [key, state] : records) {
    for (const auto& [field, siblings] : state.fields) {
      if (siblings.size() > 1) expected_conflicts.insert(key);
    }
  }
  conflicts_seen = expected_conflicts.size();
  REQUIRE(conflicts_seen > 20);  // the random records do exercise conflicts
  REQUIRE(conflicts_seen < records.size());

  auto store = OpenStore(path);
  CHECK(*store->SchemaVersion() == kExpectedSchemaVersion);
  CHECK(QueryInt(store->db(),
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'siblings'") ==
        0);
  CHECK(QueryText(store->db(), "PRAGMA integrity_check") == "ok");
  // Encoded writes (~1.2 KB) fit in a rowid table's cells, not in a WITHOUT ROWID one's.
  CHECK(QueryInt(store->db(), "SELECT wr FROM pragma_table_list WHERE name = 'writes'") == 0);
  // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
  for (const auto& entry : records) {
    CAPTURE(entry.first.collection);
    auto loaded = store->LoadRecord(entry.first);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    REQUIRE(loaded->has_value());
    CHECK(**loaded == entry.second);
  }
  auto listed = store->RecordsWithSeveralSiblings();
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<RecordKey>(expected_conflicts.begin(), expected_conflicts.end()));
  auto all = store->ListRecords("");
  REQUIRE(all.ok());
  CHECK(all->size() == records.size());
  // Every write, byte for byte, in the rebuilt writes table.
  CHECK(*store->CountWrites() == static_cast<int64_t>(writes.size()));
  for (const auto& [dot, w] : writes) {
    auto got = store->GetWrite(dot);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK((*got)->kind == w.kind);
    CHECK((*got)->encoded == w.encoded);
  }
  auto all_writes = store->AllWrites();
  REQUIRE(all_writes.ok());
  REQUIRE(all_writes->size() == writes.size());
  CHECK(all_writes->front() == writes.begin()->second.encoded);  // (device, counter) order
  CHECK(all_writes->back() == writes.rbegin()->second.encoded);
  CHECK(*store->MaxCounterSeen(Device(1)) >= kQueuedCounter);
  // Meta and outbox are untouched.
  CHECK(*store->GetMeta("counter") == kQueuedCounter);
  CHECK(*store->PendingCount() == 1);
  auto pending = store->PendingWrites(Device(1), SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().first == kQueuedCounter);
  CHECK(pending->front().second == writes.at(Dot{Device(1), kQueuedCounter}).encoded);

  // The migrated store keeps working, and a reopen does not migrate again.
  const RecordKey first = records.begin()->first;
  RecordState next = records.begin()->second;
  next.fields["status"] = {Sibling{Dot{Device(7), 1}, HlcTimestamp{5}}};
  next.context.Add(Dot{Device(7), 1});
  REQUIRE(store->SaveRecord(first, next).ok());
  store.reset();
  store = OpenStore(path);
  CHECK(*store->SchemaVersion() == kExpectedSchemaVersion);
  CHECK(**store->LoadRecord(first) == next);
  CHECK(**store->LoadRecord(std::next(records.begin())->first) ==
        std::next(records.begin())->second);
}

TEST_CASE("migration 4 refuses siblings of a record that does not exist and changes nothing") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  std::mt19937_64 rng(5);
  WriteSchema3(path, RandomRecords(rng, 10), rng);
  {
    auto db = Db::Open(path);
    REQUIRE(db.ok());
    REQUIRE((*db)
                ->ExecScript(
                    "INSERT INTO siblings VALUES('cases', x'00112233445566778899aabbccddeeff', "
                    "'age', x'01010101010101010101010101010101', 1, 1)")
                .ok());
  }
  auto refused = Store::Open(path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kCorruption);

  auto db = Db::Open(path);
  REQUIRE(db.ok());
  CHECK(QueryInt(**db, "PRAGMA user_version") == 3);
  CHECK(QueryInt(**db, "SELECT count(*) FROM pragma_table_info('records')") == 3);
  CHECK(QueryInt(**db, "SELECT count(*) FROM siblings WHERE field = 'age'") >= 1);
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

TEST_CASE("PendingWrites walks the outbox in key order without sorting it") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  auto st = store->db().Prepare(std::string("EXPLAIN QUERY PLAN ") + kPendingWritesQuery);
  REQUIRE(st.ok());
  std::string plan;
  for (;;) {
    auto row = st->Step();
    REQUIRE(row.ok());
    if (!*row) break;
    plan += st->ColumnText(3) + "\n";
  }
  CAPTURE(plan);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  CHECK(plan.find("SCAN o") != std::string::npos);
  CHECK(plan.find("SEARCH w USING") != std::string::npos);
  CHECK(plan.find("(device=? AND counter=?)") != std::string::npos);
}

// SQLite virtual-machine instructions one PendingWrites call runs.
uint64_t InstructionsOfOneBatch(Store& store, const DeviceId& self, size_t max_bytes) {
  uint64_t count = 0;
  sqlite3_progress_handler(
      store.db().raw(), 1,
      [](void* p) {
        ++*static_cast<uint64_t*>(p);
        return 0;
      },
      &count);
  auto pending = store.PendingWrites(self, max_bytes);
  sqlite3_progress_handler(store.db().raw(), 0, nullptr, nullptr);
  REQUIRE(pending.ok());
  CHECK(pending->size() == 10);
  return count;
}

TEST_CASE("a PendingWrites batch costs the same with 20 or 20,000 writes queued") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  {
    auto tx = store->Begin();
    REQUIRE(tx.ok());
    for (uint64_t c = 1; c <= 20; ++c) StoreWrite(*store, Dot{self, c}, 100);
    REQUIRE((*tx)->Commit().ok());
  }
  (void)InstructionsOfOneBatch(*store, self, 1000);  // warm the statement cache
  const uint64_t small = InstructionsOfOneBatch(*store, self, 1000);
  {
    auto tx = store->Begin();
    REQUIRE(tx.ok());
    // Another device's writes interleave in the writes table.
    for (uint64_t c = 21; c <= 20000; ++c) {
      StoreWrite(*store, Dot{self, c}, 100);
      if (c % 7 == 0) StoreWrite(*store, Dot{Device(2), c}, 100, /*queue=*/false);
    }
    REQUIRE((*tx)->Commit().ok());
  }
  const uint64_t large = InstructionsOfOneBatch(*store, self, 1000);
  CAPTURE(small);
  CAPTURE(large);
  CHECK(small > 0);
  // Reading the whole outbox (a sort of 20,000 rows) would cost ~1000x more.
  CHECK(large < 2 * small);
  CHECK(PendingCounters(*store, self, 1000) ==
        std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  REQUIRE(store->AcknowledgeUpTo(19990).ok());
  CHECK(PendingCounters(*store, self, 1000) == std::vector<uint64_t>{19991, 19992, 19993, 19994,
                                                                     19995, 19996, 19997, 19998,
                                                                     19999, 20000});
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

TEST_CASE("voids are pending in their number's place and leave when acknowledged") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  StoreWrite(*store, Dot{self, 1}, 10);
  REQUIRE(store->PutVoid(2, Bytes(7, 2)).ok());
  REQUIRE(store->AddToOutbox(2).ok());
  StoreWrite(*store, Dot{self, 3}, 10);
  CHECK(PendingCounters(*store, self, SIZE_MAX) == std::vector<uint64_t>{1, 2, 3});
  auto pending = store->PendingWrites(self, SIZE_MAX);
  REQUIRE(pending.ok());
  CHECK((*pending)[1].second == Bytes(7, 2));
  CHECK(*store->InOutbox(2));
  REQUIRE(store->AcknowledgeUpTo(2).ok());
  CHECK_FALSE(*store->InOutbox(2));
  CHECK(QueryInt(store->db(), "SELECT count(*) FROM voids") == 0);
  CHECK(PendingCounters(*store, self, SIZE_MAX) == std::vector<uint64_t>{3});
}

TEST_CASE("migration 8 accounts for own numbers from the next one a device will use") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    auto store = OpenStore(path);
    CHECK(*store->GetMeta(kMetaAccountedFrom) == 1);  // a new device: from its first write
    REQUIRE(store->SetMeta("write_counter", 41).ok());
    // As release 7 left it.
    REQUIRE(store->db()
                .ExecScript("DROP TABLE voids; DROP TABLE writers_seen; DROP TABLE write_gaps; "
                            "DROP TABLE scope_heads; DROP TABLE chain_heads; "
                            "DROP TABLE chain_gaps; DROP TABLE record_scopes; "
                            "DELETE FROM meta WHERE key = 'accounted_from'; "
                            "PRAGMA user_version = 7")
                .ok());
  }
  auto store = OpenStore(path);
  CHECK(*store->SchemaVersion() == kExpectedSchemaVersion);
  CHECK(*store->GetMeta(kMetaAccountedFrom) == 42);
  CHECK(store->Gaps(10)->empty());
  // Migration 9 ran after it: no own number is accounted yet, so the
  // team's scope has no place before 42.
  CHECK(*store->OwnScopeHead(ScopeId{}) == 0);
}

TEST_CASE("migration 9 puts a device's accounted numbers so far in the team's scope") {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    auto store = OpenStore(path);
    REQUIRE(store->SetMeta("write_counter", 57).ok());
    REQUIRE(store->SetMeta(kMetaAccountedFrom, 12).ok());
    // As release 8 left it.
    REQUIRE(
        store->db()
            .ExecScript("DROP TABLE scope_heads; DROP TABLE chain_heads; "
                        "DROP TABLE chain_gaps; DROP TABLE record_scopes; PRAGMA user_version = 8")
            .ok());
  }
  auto store = OpenStore(path);
  CHECK(*store->SchemaVersion() == kExpectedSchemaVersion);
  CHECK(*store->OwnScopeHead(ScopeId{}) == 57);
  ScopeId other;
  other.bytes.fill(1);
  CHECK(*store->OwnScopeHead(other) == 0);
  REQUIRE(store->SetOwnScopeHead(other, 58).ok());
  CHECK(*store->OwnScopeHead(other) == 58);
  CHECK(*store->OwnScopeHead(ScopeId{}) == 57);
}

TEST_CASE("RequeueOwnAbove queues what it holds above the hub's number and names the rest") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId self = Device(1);
  // Held: writes 1, 2, 5 (acknowledged), a void 6; 3, 4 and 7 are gone.
  for (uint64_t c : {1, 2, 5}) StoreWrite(*store, Dot{self, c}, 10, /*queue=*/false);
  REQUIRE(store->PutVoid(6, Bytes(5, 6)).ok());
  StoreWrite(*store, Dot{Device(2), 4}, 10, /*queue=*/false);  // another device's number 4
  uint64_t requeued = 0;
  auto missing = store->RequeueOwnAbove(self, 1, 8, &requeued);
  REQUIRE(missing.ok());
  CHECK(*missing == std::vector<uint64_t>{3, 4, 7, 8});
  CHECK(requeued == 3);
  CHECK(PendingCounters(*store, self, SIZE_MAX) == std::vector<uint64_t>{2, 5, 6});
  // Again: nothing new to queue, the same numbers missing.
  requeued = 0;
  CHECK(*store->RequeueOwnAbove(self, 1, 8, &requeued) == std::vector<uint64_t>{3, 4, 7, 8});
  CHECK(requeued == 0);
  CHECK(store->RequeueOwnAbove(self, 8, 8, &requeued)->empty());
}

// A format-3 write number seen, with its promise (0: formats 1 and 2).
Store::WriterSeen S3(const DeviceId& d, uint64_t counter, uint64_t from) {
  Store::WriterSeen w;
  w.device = d;
  w.counter = counter;
  w.accounted_from = from;
  return w;
}

// A format-4 write number seen in `scope`, after `prev` there.
Store::WriterSeen S4(const DeviceId& d, uint64_t counter, const ScopeId& scope, uint64_t prev) {
  Store::WriterSeen w = S3(d, counter, 1);
  w.format = 4;
  w.scope = scope;
  w.scope_prev = prev;
  return w;
}

TEST_CASE("NoteSeen keeps, per writer, the numbers its promises owe and those not seen") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId x = Device(7), y = Device(8);
  using Gap = Store::Gap;
  // Formats 1 and 2 promise nothing: no gap however far apart.
  REQUIRE(store->NoteSeen({S3(x, 3, 0), S3(x, 9, 0)}).ok());
  CHECK(store->Gaps(100)->empty());
  // x promises from 10 on; 10 and 14 seen: 11..13 owed.
  REQUIRE(store->NoteSeen({S3(x, 14, 10), S3(x, 10, 10)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 11, 13}});
  CHECK(*store->MissingCount() == 3);
  // 12 arrives: the gap splits.
  REQUIRE(store->NoteSeen({S3(x, 12, 10)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 11, 11}, {x, 13, 13}});
  // y's first write seen is 4, promising from 1: 1..3 owed.
  REQUIRE(store->NoteSeen({S3(y, 4, 1)}).ok());
  CHECK(store->Gaps(100)->size() == 3);
  CHECK(*store->Gaps(1) == std::vector<Gap>{{x, 11, 11}});
  // Seen again, out of order, repeated: filled exactly.
  REQUIRE(
      store->NoteSeen({S3(y, 3, 1), S3(x, 13, 10), S3(y, 1, 1), S3(y, 3, 1), S3(x, 11, 10)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{y, 2, 2}});
  // A promise reaching lower than before owes the numbers in between.
  REQUIRE(store->NoteSeen({S3(x, 15, 8)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 8, 9}, {y, 2, 2}});
  // A number past the highest seen leaves the numbers between it owed.
  REQUIRE(store->NoteSeen({S3(y, 2, 1), S3(y, 1000, 1)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 8, 9}, {y, 5, 999}});
  // A writer's huge numbers cannot overflow the count.
  REQUIRE(store->NoteSeen({S3(y, Write::kMaxCounter, 1)}).ok());
  CHECK(*store->MissingCount() > 1000000000);
}

TEST_CASE("NoteSeen follows format-4 numbers along their scope's chain") {
  TempDir dir;
  auto store = OpenStore(dir.File("store.db"));
  const DeviceId x = Device(7), y = Device(8);
  using Gap = Store::Gap;
  const ScopeId team;
  ScopeId other;
  other.bytes.fill(5);
  // x writes 1 (team), 2 (other), 3 (team), 4 (other), 5 (team): a reader
  // of the team's scope sees 1, 3 and 5 and lacks nothing.
  REQUIRE(store->NoteSeen({S4(x, 1, team, 0), S4(x, 3, team, 1), S4(x, 5, team, 3)}).ok());
  CHECK(store->Gaps(100)->empty());
  // The hub withholds 7 (team, after 5) and delivers 9 (after 7): 7 owed.
  REQUIRE(store->NoteSeen({S4(x, 9, team, 7)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 7, 7}});
  CHECK(*store->MissingCount() == 1);
  REQUIRE(store->NoteSeen({S4(x, 7, team, 5)}).ok());
  CHECK(store->Gaps(100)->empty());
  // Two withheld in a row (11 and 13): 13 is owed first, then 11 once 13
  // arrives and names it; a repeat changes nothing.
  REQUIRE(store->NoteSeen({S4(x, 15, team, 13)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 13, 13}});
  REQUIRE(store->NoteSeen({S4(x, 13, team, 11), S4(x, 15, team, 13)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 11, 11}});
  REQUIRE(store->NoteSeen({S4(x, 11, team, 9)}).ok());
  CHECK(store->Gaps(100)->empty());
  // The other scope's first number seen names 2 before it: 2 owed there,
  // whatever the team's scope holds.
  REQUIRE(store->NoteSeen({S4(x, 4, other, 2)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{x, 2, 2}});
  REQUIRE(store->NoteSeen({S4(x, 2, other, 0)}).ok());
  CHECK(store->Gaps(100)->empty());
  // y wrote format 3 from 1 to 6 (4 not seen), then format 4: 8 after 6
  // owes nothing new (6 is in y's promised range), 10 after 9 owes 9.
  REQUIRE(store->NoteSeen({S3(y, 1, 1), S3(y, 2, 1), S3(y, 3, 1), S3(y, 5, 1), S3(y, 6, 1)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{y, 4, 4}});
  REQUIRE(store->NoteSeen({S4(y, 8, team, 6), S4(y, 10, team, 9)}).ok());
  CHECK(*store->Gaps(100) == std::vector<Gap>{{y, 4, 4}, {y, 9, 9}});
  CHECK(*store->MissingCount() == 2);
  // A format-4 void of 4 (an unsent write voided after the upgrade) fills
  // the format-3 gap, and a format-4 number does not stretch y's range.
  REQUIRE(store->NoteSeen({S4(y, 4, team, 0), S4(y, 9, team, 8)}).ok());
  CHECK(store->Gaps(100)->empty());
  REQUIRE(store->NoteSeen({S4(y, 30, other, 0)}).ok());
  CHECK(store->Gaps(100)->empty());
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
  REQUIRE(CreateTeam(*r).ok());
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
