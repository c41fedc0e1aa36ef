#include "replica/store.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "base/codec.h"

namespace enlace::internal {

namespace {

// Numbered migrations; entry i brings the schema from version i to i + 1.
// Never edit a released entry: append a new one.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE devices(
  device BLOB PRIMARY KEY, sign_pk BLOB NOT NULL, box_pk BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE writes(
  device BLOB NOT NULL, counter INTEGER NOT NULL,
  collection TEXT NOT NULL, record BLOB NOT NULL, kind INTEGER NOT NULL,
  encoded BLOB NOT NULL,
  PRIMARY KEY(device, counter)) WITHOUT ROWID;
CREATE TABLE records(
  collection TEXT NOT NULL, record BLOB NOT NULL, context BLOB NOT NULL,
  PRIMARY KEY(collection, record)) WITHOUT ROWID;
CREATE TABLE siblings(
  collection TEXT NOT NULL, record BLOB NOT NULL, field TEXT NOT NULL,
  device BLOB NOT NULL, counter INTEGER NOT NULL, hlc INTEGER NOT NULL,
  PRIMARY KEY(collection, record, field, device, counter)) WITHOUT ROWID;
CREATE TABLE outbox(counter INTEGER PRIMARY KEY);
)sql",
    // 2: what the hub says about each member, for display and status.
    R"sql(
ALTER TABLE devices ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN role INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3: the signed device registry (registry.h) and what it says of each
    // member; documents this device keeps or still has to send.
    R"sql(
ALTER TABLE devices ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN joined_ms INTEGER NOT NULL DEFAULT 0;
CREATE TABLE documents(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE outgoing_key_grants(
  recipient BLOB NOT NULL, version INTEGER NOT NULL, encoded BLOB NOT NULL,
  PRIMARY KEY(recipient, version)) WITHOUT ROWID;
)sql",
};

// 4: each record's registers in one blob of `records` (EncodeRegisters)
// instead of one `siblings` row per sibling: a save is one upsert, not a
// DELETE and an INSERT per field. `conflicted` (some field has two or more
// siblings) keeps RecordsWithSeveralSiblings an index lookup.
constexpr char kMigration4[] = R"sql(
ALTER TABLE records ADD COLUMN registers BLOB NOT NULL DEFAULT x'010000';
ALTER TABLE records ADD COLUMN conflicted INTEGER NOT NULL DEFAULT 0;
)sql";

// 5: `writes` as a rowid table with a unique (device, counter) key. As a
// WITHOUT ROWID table each ~1.2 KB encoded write overflowed its b-tree cell
// (an index cell keeps at most ~1 KB of a 4 KB page in place) and took a
// page of its own: 3.3x the file, the WAL and the checkpoints of a rowid
// table, where the row fits in place.
constexpr char kMigration5[] = R"sql(
CREATE TABLE writes_by_rowid(
  device BLOB NOT NULL, counter INTEGER NOT NULL,
  collection TEXT NOT NULL, record BLOB NOT NULL, kind INTEGER NOT NULL,
  encoded BLOB NOT NULL,
  PRIMARY KEY(device, counter));
INSERT INTO writes_by_rowid(device, counter, collection, record, kind, encoded)
  SELECT device, counter, collection, record, kind, encoded FROM writes ORDER BY device, counter;
DROP TABLE writes;
ALTER TABLE writes_by_rowid RENAME TO writes;
)sql";

// 6: pulled writes kept aside. `parked`: sealed under a team key version
// this device does not hold yet, applied when a grant brings it. `refetch`:
// log positions whose delivery failed its checks (altered on the way), asked
// for again on every sync until the genuine bytes arrive.
constexpr char kMigration6[] = R"sql(
CREATE TABLE parked(
  seq INTEGER PRIMARY KEY, key_version INTEGER NOT NULL, encoded BLOB NOT NULL);
CREATE TABLE refetch(seq INTEGER PRIMARY KEY);
)sql";

// 7: the trust seal (store.h, trust_seal.cc) and the sealed settings. One
// self-contained step: it only adds tables.
constexpr char kMigrationTrustSeal[] = R"sql(
CREATE TABLE trust_seal(
  id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE TABLE sealed_settings(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql";

// 8: gap detection (docs/PROTOCOL.md §6.11). `voids`: own write numbers
// sent as void writes (superseded or erased before a sync), until the hub
// acknowledges them. `writers_seen` and `write_gaps`: per other device, the
// numbers its format-3 writes account for and those not seen. Own numbers
// from the next one on are accounted for ("write_counter" is Replica's).
constexpr char kMigration8[] = R"sql(
CREATE TABLE voids(counter INTEGER PRIMARY KEY, encoded BLOB NOT NULL);
CREATE TABLE writers_seen(
  device BLOB PRIMARY KEY, low INTEGER NOT NULL, high INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE write_gaps(
  device BLOB NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
  PRIMARY KEY(device, lo)) WITHOUT ROWID;
INSERT INTO meta(key, value) SELECT 'accounted_from',
  coalesce((SELECT value FROM meta WHERE key = 'write_counter'), 0) + 1;
)sql";

// 9: scopes (docs/PROTOCOL.md §6.12). `scope_heads`: the last own write
// number in each scope; every own number so far is in the team's scope (the
// zero scope), from accounted_from on. `chain_heads` and `chain_gaps`: per
// other device and scope, the highest format-4 number seen and the numbers
// owed (a later write's scope_prev not seen), with their floors.
// `record_scopes`: the scope of each record not in the team's scope.
constexpr char kMigration9[] = R"sql(
CREATE TABLE record_scopes(
  collection TEXT NOT NULL, record BLOB NOT NULL, scope BLOB NOT NULL,
  PRIMARY KEY(collection, record)) WITHOUT ROWID;
CREATE INDEX record_scopes_by_scope ON record_scopes(scope);
CREATE TABLE scope_heads(scope BLOB PRIMARY KEY, counter INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE chain_heads(
  device BLOB NOT NULL, scope BLOB NOT NULL, head INTEGER NOT NULL,
  PRIMARY KEY(device, scope)) WITHOUT ROWID;
CREATE TABLE chain_gaps(
  device BLOB NOT NULL, scope BLOB NOT NULL, counter INTEGER NOT NULL, floor INTEGER NOT NULL,
  PRIMARY KEY(device, scope, counter)) WITHOUT ROWID;
INSERT INTO scope_heads(scope, counter) SELECT zeroblob(16), c.value FROM meta c
  JOIN meta a ON a.key = 'accounted_from' WHERE c.key = 'write_counter' AND c.value >= a.value;
)sql";

Status ConvertSiblingRows(Db& db);

}  // namespace

Bytes EncodeVersionVector(const VersionVector& vv) {
  Encoder e;
  e.U32(static_cast<uint32_t>(vv.size()));
  for (const auto& [device, counter] : vv.entries()) {
    e.Raw(device.bytes);
    e.U64(counter);
  }
  return e.Finish();
}

Result<VersionVector> DecodeVersionVector(ByteView bytes) {
  Decoder d(bytes);
  uint32_t n = 0;
  ENLACE_RETURN_IF_ERROR(d.Count(n, 1 << 20, 24, "version vector"));
  VersionVector vv;
  for (uint32_t i = 0; i < n; ++i) {
    Dot dot;
    ENLACE_RETURN_IF_ERROR(d.Raw(dot.device.bytes, "version vector device"));
    ENLACE_RETURN_IF_ERROR(d.U64(dot.counter, "version vector counter"));
    vv.Add(dot);
  }
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("version vector"));
  return vv;
}

Store::Store(std::unique_ptr<Db> db) : db_(std::move(db)) {}
Store::~Store() = default;

Result<std::unique_ptr<Db>> Store::OpenDb(const std::string& path) {
  ENLACE_ASSIGN_OR_RETURN(auto db, Db::Open(path));
  // WAL: readers never block the writer and a crash never loses a committed
  // transaction. FULL sync: an acknowledged write survives power loss.
  // secure_delete: freed pages (purged writes) are zeroed, not left behind.
  ENLACE_RETURN_IF_ERROR(
      db->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                     "PRAGMA secure_delete=ON;"));
  return db;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  ENLACE_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  std::unique_ptr<Store> store(new Store(std::move(db)));
  ENLACE_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenSealed(const std::string& path, SealOptions seal) {
  if (seal.key.size() != kSealKeyBytes) return Status::Internal("the seal key has the wrong size");
  ENLACE_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  std::unique_ptr<Store> store(new Store(std::move(db)));
  store->seal_ = std::make_unique<Seal>();
  store->seal_->options = std::move(seal);
  // Before anything reads or changes a row: an edited schema could act on
  // what the migrations do.
  ENLACE_RETURN_IF_ERROR(store->CheckSeal());
  ENLACE_RETURN_IF_ERROR(store->Migrate());
  // A migration changes the schema, which the seal covers: the next commit
  // checks (and re-seals when it changed).
  store->trust_dirty_ = true;
  return store;
}

Result<int64_t> Store::SchemaVersion() { return internal::SchemaVersion(*db_); }

std::string StoreSchemaSql(int version) {
  std::string sql;
  for (int i = 0; i < version && i < static_cast<int>(std::size(kMigrations)); ++i) {
    sql += kMigrations[i];
  }
  return sql + "PRAGMA user_version=" + std::to_string(version) + ";";
}

Status Store::Migrate() {
  std::vector<Migration> steps;
  for (const char* sql : kMigrations) steps.push_back(Migration{sql, nullptr});
  steps.push_back(Migration{kMigration4, &ConvertSiblingRows});
  steps.push_back(Migration{kMigration5, nullptr});
  steps.push_back(Migration{kMigration6, nullptr});
  steps.push_back(Migration{kMigrationTrustSeal, nullptr});
  steps.push_back(Migration{kMigration8, nullptr});
  steps.push_back(Migration{kMigration9, nullptr});
  return RunMigrations(*db_, steps, "the local store");
}

// ---- meta ---------------------------------------------------------------------------

Result<uint64_t> Store::GetMeta(std::string_view key) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT value FROM meta WHERE key = ?"));
  st.Bind(1, key);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{0};
}

Status Store::SetMeta(std::string_view key, uint64_t value) {
  const auto set = [&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(Stmt st,
                            db_->Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    // Stored bit for bit: kMetaClockOffset holds a signed offset as two's
    // complement, and GetMeta reads it back the same way.
    return st.Bind(1, key).Bind(2, static_cast<int64_t>(value)).Exec();
  };
  return IsTrustMeta(key) ? ChangeTrust(set) : set();
}

// ---- devices ------------------------------------------------------------------------

Status Store::PutDevice(const DeviceId& device, const SignPublicKey& sign_pk,
                        const BoxPublicKey& box_pk) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("INSERT INTO devices(device, sign_pk, box_pk) VALUES(?, ?, ?) "
                              "ON CONFLICT(device) DO UPDATE SET sign_pk = excluded.sign_pk, "
                              "box_pk = excluded.box_pk"));
    return st.BindBlob(1, device.bytes).BindBlob(2, sign_pk).BindBlob(3, box_pk).Exec();
  });
}

Result<std::optional<SignPublicKey>> Store::GetSigningKey(const DeviceId& device) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT sign_pk FROM devices WHERE device = ?"));
  st.BindBlob(1, device.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<SignPublicKey>();
  if (st.ColumnBlob(0).size() != kSignPublicKeyBytes) {
    return Status::Corruption("stored signing key has the wrong size");
  }
  return std::optional<SignPublicKey>(FromBlob<SignPublicKey>(st.ColumnBlob(0)));
}

Status Store::PutMember(const Member& m) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st,
        db_->Prepare("INSERT INTO devices(device, sign_pk, box_pk, name, role, revoked, pending, "
                     "revoked_ms, revoked_after, joined_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT(device) DO UPDATE SET "
                     "sign_pk = excluded.sign_pk, box_pk = excluded.box_pk, "
                     "name = excluded.name, role = excluded.role, revoked = excluded.revoked, "
                     "pending = excluded.pending, revoked_ms = excluded.revoked_ms, "
                     "revoked_after = excluded.revoked_after, joined_ms = excluded.joined_ms"));
    return st.BindBlob(1, m.device.bytes)
        .BindBlob(2, m.signing_key)
        .BindBlob(3, m.encryption_key)
        .Bind(4, m.name)
        .Bind(5, static_cast<int64_t>(m.role))
        .Bind(6, int64_t{m.revoked ? 1 : 0})
        .Bind(7, int64_t{m.pending ? 1 : 0})
        .BindU64(8, m.revoked_ms)
        .BindU64(9, m.revoked_after)
        .BindU64(10, m.joined_ms)
        .Exec();
  });
}

Status Store::ReplaceMembers(const std::vector<Member>& members) {
  return ChangeTrust([&]() -> Status {
    // Devices trusted by hand (TrustDevice, role 0) are not members and stay.
    ENLACE_ASSIGN_OR_RETURN(Stmt clear, db_->Prepare("DELETE FROM devices WHERE role != 0"));
    ENLACE_RETURN_IF_ERROR(clear.Exec());
    for (const auto& m : members) ENLACE_RETURN_IF_ERROR(PutMember(m));
    return Status::Ok();
  });
}

Result<std::vector<Member>> Store::ListMembers() {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT device, sign_pk, box_pk, name, role, revoked, pending, "
                            "revoked_ms, revoked_after, joined_ms "
                            "FROM devices WHERE role != 0 ORDER BY name, device"));
  std::vector<Member> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    Member m;
    m.device = DeviceId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))};
    m.signing_key = FromBlob<PublicKey32>(st.ColumnBlob(1));
    m.encryption_key = FromBlob<PublicKey32>(st.ColumnBlob(2));
    m.name = st.ColumnText(3);
    m.role = st.ColumnInt(4) == 1 ? Role::kCoordinator : Role::kField;
    m.revoked = st.ColumnInt(5) != 0;
    m.pending = st.ColumnInt(6) != 0;
    m.revoked_ms = static_cast<uint64_t>(st.ColumnInt(7));
    m.revoked_after = static_cast<uint64_t>(st.ColumnInt(8));
    m.joined_ms = static_cast<uint64_t>(st.ColumnInt(9));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::optional<Store::Writer>> Store::GetWriter(const DeviceId& device) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT sign_pk, role, revoked, revoked_after, "
                                                "pending FROM devices WHERE device = ?"));
  st.BindBlob(1, device.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Writer>();
  if (st.ColumnBlob(0).size() != kSignPublicKeyBytes) {
    return Status::Corruption("stored signing key has the wrong size");
  }
  Writer w;
  w.signing_key = FromBlob<SignPublicKey>(st.ColumnBlob(0));
  w.member = st.ColumnInt(1) != 0;
  w.revoked = st.ColumnInt(2) != 0;
  w.revoked_after = static_cast<uint64_t>(st.ColumnInt(3));
  w.pending = st.ColumnInt(4) != 0;
  return std::optional<Writer>(w);
}

Result<std::optional<Bytes>> Store::GetDocument(std::string_view name) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT value FROM documents WHERE name = ?"));
  st.Bind(1, name);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Bytes>();
  const auto v = st.ColumnBlob(0);
  return std::optional<Bytes>(Bytes(v.begin(), v.end()));
}

Status Store::SetDocument(std::string_view name, ByteView value) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT INTO documents(name, value) VALUES(?, ?) "
                                                  "ON CONFLICT(name) DO UPDATE SET value = "
                                                  "excluded.value"));
    return st.Bind(1, name).BindBlob(2, value).Exec();
  });
}

Status Store::DeleteDocument(std::string_view name) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM documents WHERE name = ?"));
    return st.Bind(1, name).Exec();
  });
}

Status Store::QueueKeyGrant(const DeviceId& recipient, uint32_t version, ByteView encoded) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("INSERT OR REPLACE INTO outgoing_key_grants(recipient, version, "
                              "encoded) VALUES(?, ?, ?)"));
    return st.BindBlob(1, recipient.bytes).BindU64(2, version).BindBlob(3, encoded).Exec();
  });
}

Result<std::vector<Bytes>> Store::QueuedKeyGrants() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT encoded FROM outgoing_key_grants "
                                                "ORDER BY version, recipient"));
  return st.AllBlobs(0);
}

Result<uint64_t> Store::MaxCounterSeen(const DeviceId& device) {
  uint64_t best = 0;
  ENLACE_ASSIGN_OR_RETURN(Stmt w, db_->Prepare("SELECT coalesce(max(counter), 0) FROM writes "
                                               "WHERE device = ?"));
  w.BindBlob(1, device.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool row, w.Step());
  if (row) best = static_cast<uint64_t>(w.ColumnInt(0));
  // Superseded writes are purged, but every record's context remembers them.
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT context FROM records"));
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    ENLACE_ASSIGN_OR_RETURN(VersionVector vv, DecodeVersionVector(st.ColumnBlob(0)));
    best = std::max(best, vv.Get(device));
  }
  return best;
}

Status Store::ClearKeyGrants() {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM outgoing_key_grants"));
    return st.Exec();
  });
}

// ---- pulled writes kept aside ---------------------------------------------------------

Status Store::Park(uint64_t seq, uint32_t key_version, const Bytes& encoded) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT OR REPLACE INTO parked(seq, key_version, "
                                                "encoded) VALUES(?, ?, ?)"));
  return st.BindU64(1, seq).BindU64(2, key_version).BindBlob(3, encoded).Exec();
}

Result<std::vector<std::pair<uint64_t, Bytes>>> Store::ParkedUpTo(uint32_t key_version) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT seq, encoded FROM parked "
                                                "WHERE key_version <= ? ORDER BY seq"));
  st.BindU64(1, key_version);
  std::vector<std::pair<uint64_t, Bytes>> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    const auto blob = st.ColumnBlob(1);
    out.emplace_back(static_cast<uint64_t>(st.ColumnInt(0)), Bytes(blob.begin(), blob.end()));
  }
  return out;
}

Result<std::pair<uint64_t, uint32_t>> Store::ParkedSummary() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT count(*), coalesce(max(key_version), 0) "
                                                "FROM parked"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::pair<uint64_t, uint32_t>{0, 0};
  return std::pair<uint64_t, uint32_t>{static_cast<uint64_t>(st.ColumnInt(0)),
                                       static_cast<uint32_t>(st.ColumnInt(1))};
}

Status Store::Unpark(uint64_t seq) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM parked WHERE seq = ?"));
  return st.BindU64(1, seq).Exec();
}

Status Store::AddRefetch(uint64_t seq) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT OR IGNORE INTO refetch(seq) VALUES(?)"));
  return st.BindU64(1, seq).Exec();
}

Status Store::RemoveRefetch(uint64_t seq) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM refetch WHERE seq = ?"));
  return st.BindU64(1, seq).Exec();
}

Status Store::ClearRefetch() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM refetch"));
  return st.Exec();
}

Result<std::vector<uint64_t>> Store::RefetchPositions(size_t max) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT seq FROM refetch ORDER BY seq LIMIT ?"));
  st.BindU64(1, max);
  std::vector<uint64_t> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(static_cast<uint64_t>(st.ColumnInt(0)));
  }
  return out;
}

Result<uint64_t> Store::RefetchCount() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT count(*) FROM refetch"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{0};
}

// ---- records ------------------------------------------------------------------------

namespace {

// The registers blob (records.registers), format 1, little-endian; v = an
// unsigned LEB128 varint:
//   u8 format = 1
//   v  n_dots, then n_dots x (device[16], v counter, u64 hlc), sorted
//   v  n_fields, then n_fields x (v name_len, name, v n_siblings,
//                                 n_siblings x v index into the dots)
// Fields in name order, a field's siblings in dot order, as LoadRecord
// always returned them. A record's fields usually share one dot (one write
// set them all), so the dot is stored once.
constexpr uint8_t kRegistersFormat = 1;

void PutVarint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

class BlobReader {
 public:
  explicit BlobReader(ByteView in) : in_(in) {}
  size_t left() const { return in_.size() - pos_; }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const uint8_t b = in_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return shift < 63 || b <= 1;
    }
    return false;
  }
  bool U8(uint8_t& v) {
    if (left() < 1) return false;
    v = in_[pos_++];
    return true;
  }
  bool U64(uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool Raw(std::span<uint8_t> out) {
    if (left() < out.size()) return false;
    std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
    return true;
  }
  bool Text(std::string& out, uint64_t n) {
    if (left() < n) return false;
    out.assign(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  ByteView in_;
  size_t pos_ = 0;
};

// A (dot, hlc) pair; a dot always carries its write's one hlc, but the
// format keeps the pair so nothing a store holds is ever merged away.
using DotHlc = std::pair<Dot, uint64_t>;

Bytes EncodeRegisters(const std::map<std::string, std::vector<Sibling>>& fields) {
  std::vector<DotHlc> dots;
  for (const auto& [field, siblings] : fields) {
    for (const auto& s : siblings) dots.emplace_back(s.dot, s.hlc.value);
  }
  std::sort(dots.begin(), dots.end());
  dots.erase(std::unique(dots.begin(), dots.end()), dots.end());

  Bytes out;
  out.reserve(4 + dots.size() * 34 + fields.size() * 24);
  out.push_back(kRegistersFormat);
  PutVarint(out, dots.size());
  for (const auto& [dot, hlc] : dots) {
    out.insert(out.end(), dot.device.bytes.begin(), dot.device.bytes.end());
    PutVarint(out, dot.counter);
    PutU64(out, hlc);
  }
  PutVarint(out, fields.size());
  std::vector<uint64_t> index;
  for (const auto& [field, siblings] : fields) {
    PutVarint(out, field.size());
    out.insert(out.end(), field.begin(), field.end());
    index.clear();
    for (const auto& s : siblings) {
      const auto it = std::lower_bound(dots.begin(), dots.end(), DotHlc{s.dot, s.hlc.value});
      index.push_back(static_cast<uint64_t>(it - dots.begin()));
    }
    std::sort(index.begin(), index.end());
    PutVarint(out, index.size());
    for (uint64_t i : index) PutVarint(out, i);
  }
  return out;
}

Status DecodeRegisters(ByteView blob, std::map<std::string, std::vector<Sibling>>& fields) {
  const auto bad = [] { return Status::Corruption("a stored record's registers do not decode"); };
  BlobReader r(blob);
  uint8_t format = 0;
  if (!r.U8(format) || format != kRegistersFormat) return bad();
  uint64_t n_dots = 0;
  // Each dot takes at least 16 + 1 + 8 bytes: a count beyond that is refused
  // before anything is allocated.
  if (!r.Varint(n_dots) || n_dots > r.left() / 25) return bad();
  std::vector<Sibling> dots(static_cast<size_t>(n_dots));
  for (auto& d : dots) {
    if (!r.Raw(d.dot.device.bytes) || !r.Varint(d.dot.counter) || !r.U64(d.hlc.value)) {
      return bad();
    }
  }
  uint64_t n_fields = 0;
  if (!r.Varint(n_fields) || n_fields > r.left() / 2) return bad();
  fields.clear();
  for (uint64_t f = 0; f < n_fields; ++f) {
    uint64_t name_len = 0, n_siblings = 0;
    std::string name;
    if (!r.Varint(name_len) || name_len > r.left() || !r.Text(name, name_len)) return bad();
    // Strictly increasing names: the map's order, no field twice.
    if (!fields.empty() && !(std::prev(fields.end())->first < name)) return bad();
    if (!r.Varint(n_siblings) || n_siblings == 0 || n_siblings > r.left()) return bad();
    auto& siblings =
        fields.emplace_hint(fields.end(), std::move(name), std::vector<Sibling>())->second;
    siblings.reserve(static_cast<size_t>(n_siblings));
    for (uint64_t i = 0; i < n_siblings; ++i) {
      uint64_t index = 0;
      if (!r.Varint(index) || index >= dots.size()) return bad();
      siblings.push_back(dots[static_cast<size_t>(index)]);
    }
  }
  if (r.left() != 0) return bad();
  return Status::Ok();
}

bool HasSeveralSiblings(const std::map<std::string, std::vector<Sibling>>& fields) {
  return std::any_of(fields.begin(), fields.end(),
                     [](const auto& f) { return f.second.size() > 1; });
}

// Migration 4: every old `siblings` row into its record's registers blob,
// then the table goes. Rows come in primary-key order, so one record's rows
// are adjacent and each field's siblings already in dot order.
Status ConvertSiblingRows(Db& db) {
  ENLACE_ASSIGN_OR_RETURN(Stmt rows,
                          db.Prepare("SELECT collection, record, field, device, counter, hlc "
                                     "FROM siblings ORDER BY collection, record, field, device, "
                                     "counter"));
  ENLACE_ASSIGN_OR_RETURN(Stmt update,
                          db.Prepare("UPDATE records SET registers = ?, conflicted = ? "
                                     "WHERE collection = ? AND record = ?"));
  std::string collection;
  Bytes record;
  std::map<std::string, std::vector<Sibling>> fields;
  const auto flush = [&]() -> Status {
    if (fields.empty()) return Status::Ok();
    ENLACE_RETURN_IF_ERROR(update.BindBlob(1, EncodeRegisters(fields))
                               .Bind(2, int64_t{HasSeveralSiblings(fields) ? 1 : 0})
                               .Bind(3, collection)
                               .BindBlob(4, record)
                               .Exec());
    if (db.changes() != 1) {
      return Status::Corruption("the local store has siblings of a record it does not list");
    }
    fields.clear();
    return Status::Ok();
  };
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, rows.Step());
    if (!more) break;
    const auto rec = rows.ColumnBlob(1);
    std::string col = rows.ColumnText(0);
    if (col != collection || !std::equal(rec.begin(), rec.end(), record.begin(), record.end())) {
      ENLACE_RETURN_IF_ERROR(flush());
      collection = std::move(col);
      record.assign(rec.begin(), rec.end());
    }
    Sibling s;
    s.dot.device = DeviceId{FromBlob<std::array<uint8_t, 16>>(rows.ColumnBlob(3))};
    s.dot.counter = static_cast<uint64_t>(rows.ColumnInt(4));
    s.hlc.value = static_cast<uint64_t>(rows.ColumnInt(5));
    fields[rows.ColumnText(2)].push_back(s);
  }
  ENLACE_RETURN_IF_ERROR(flush());
  rows.Reset();  // no statement may still read the table that goes
  return db.ExecScript(
      "DROP TABLE siblings;"
      "CREATE INDEX records_conflicted ON records(collection, record) WHERE conflicted != 0;");
}

}  // namespace

Result<std::optional<RecordState>> Store::LoadRecord(const RecordKey& key) {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT r.context, r.registers, s.scope FROM records r LEFT JOIN "
                            "record_scopes s ON s.collection = r.collection AND s.record = "
                            "r.record WHERE r.collection = ? AND r.record = ?"));
  st.Bind(1, key.collection).BindBlob(2, key.record.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<RecordState>();
  RecordState state;
  ENLACE_ASSIGN_OR_RETURN(state.context, DecodeVersionVector(st.ColumnBlob(0)));
  ENLACE_RETURN_IF_ERROR(DecodeRegisters(st.ColumnBlob(1), state.fields));
  if (!st.ColumnIsNull(2)) {
    state.scope = ScopeId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(2))};
  }
  return std::optional<RecordState>(std::move(state));
}

Status Store::SaveRecord(const RecordKey& key, const RecordState& state) {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("INSERT INTO records(collection, record, context, registers, "
                            "conflicted) VALUES(?, ?, ?, ?, ?) ON CONFLICT(collection, record) "
                            "DO UPDATE SET context = excluded.context, "
                            "registers = excluded.registers, conflicted = excluded.conflicted"));
  return st.Bind(1, key.collection)
      .BindBlob(2, key.record.bytes)
      .BindBlob(3, EncodeVersionVector(state.context))
      .BindBlob(4, EncodeRegisters(state.fields))
      .Bind(5, int64_t{HasSeveralSiblings(state.fields) ? 1 : 0})
      .Exec();
}

namespace {
Result<std::vector<RecordKey>> CollectKeys(Stmt& st) {
  std::vector<RecordKey> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    out.push_back(
        RecordKey{st.ColumnText(0), RecordId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(1))}});
  }
  return out;
}
}  // namespace

Result<std::vector<RecordKey>> Store::ListRecords(std::string_view collection) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT collection, record FROM records "
                                                "WHERE ?1 = '' OR collection = ?1 "
                                                "ORDER BY collection, record"));
  st.Bind(1, collection);
  return CollectKeys(st);
}

Result<std::vector<RecordKey>> Store::RecordsWithSeveralSiblings() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT collection, record FROM records "
                                                "WHERE conflicted != 0 "
                                                "ORDER BY collection, record"));
  return CollectKeys(st);
}

// ---- writes -------------------------------------------------------------------------

Status Store::InsertWrite(const Write& write, const Bytes& encoded) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT OR IGNORE INTO writes(device, counter, "
                                                "collection, record, kind, encoded) "
                                                "VALUES(?, ?, ?, ?, ?, ?)"));
  return st.BindBlob(1, write.dot.device.bytes)
      .BindU64(2, write.dot.counter)
      .Bind(3, write.collection)
      .BindBlob(4, write.record.bytes)
      .Bind(5, static_cast<int64_t>(write.kind))
      .BindBlob(6, encoded)
      .Exec();
}

Result<std::optional<StoredWrite>> Store::GetWrite(const Dot& dot) {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT kind, encoded FROM writes WHERE device = ? AND counter = ?"));
  st.BindBlob(1, dot.device.bytes).BindU64(2, dot.counter);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<StoredWrite>();
  StoredWrite w;
  w.kind = static_cast<WriteKind>(st.ColumnInt(0));
  const auto blob = st.ColumnBlob(1);
  w.encoded.assign(blob.begin(), blob.end());
  return std::optional<StoredWrite>(std::move(w));
}

Status Store::SetRecordScope(const RecordKey& key, const ScopeId& scope) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT OR REPLACE INTO record_scopes(collection, "
                                                "record, scope) VALUES(?, ?, ?)"));
  return st.Bind(1, key.collection).BindBlob(2, key.record.bytes).BindBlob(3, scope.bytes).Exec();
}

Result<std::vector<std::pair<RecordKey, ScopeId>>> Store::ScopedRecords() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT collection, record, scope FROM "
                                                "record_scopes ORDER BY scope, collection, "
                                                "record"));
  std::vector<std::pair<RecordKey, ScopeId>> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.emplace_back(
        RecordKey{st.ColumnText(0), RecordId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(1))}},
        ScopeId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(2))});
  }
  return out;
}

Result<std::vector<Dot>> Store::DotsOf(const RecordKey& key) {
  ENLACE_ASSIGN_OR_RETURN(Stmt dots, db_->Prepare("SELECT device, counter FROM writes WHERE "
                                                  "collection = ? AND record = ?"));
  dots.Bind(1, key.collection).BindBlob(2, key.record.bytes);
  std::vector<Dot> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, dots.Step());
    if (!row) break;
    out.push_back(Dot{DeviceId{FromBlob<std::array<uint8_t, 16>>(dots.ColumnBlob(0))},
                      static_cast<uint64_t>(dots.ColumnInt(1))});
  }
  return out;
}

Status Store::ForgetRecord(const RecordKey& key) {
  for (const char* sql : {"DELETE FROM writes WHERE collection = ?1 AND record = ?2",
                          "DELETE FROM records WHERE collection = ?1 AND record = ?2",
                          "DELETE FROM record_scopes WHERE collection = ?1 AND record = ?2"}) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(sql));
    ENLACE_RETURN_IF_ERROR(st.Bind(1, key.collection).BindBlob(2, key.record.bytes).Exec());
  }
  return Status::Ok();
}

Status Store::DeleteWrite(const Dot& dot) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st,
                          db_->Prepare("DELETE FROM writes WHERE device = ? AND counter = ?"));
  return st.BindBlob(1, dot.device.bytes).BindU64(2, dot.counter).Exec();
}

Result<int64_t> Store::CountWrites() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT count(*) FROM writes"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt(0) : 0;
}

Result<std::vector<Bytes>> Store::AllWrites() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st,
                          db_->Prepare("SELECT encoded FROM writes ORDER BY device, counter"));
  return st.AllBlobs(0);
}

// ---- outbox -------------------------------------------------------------------------

Status Store::AddToOutbox(uint64_t counter) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT OR IGNORE INTO outbox(counter) VALUES(?)"));
  return st.BindU64(1, counter).Exec();
}

Status Store::RemoveFromOutbox(uint64_t counter) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM outbox WHERE counter = ?"));
  return st.BindU64(1, counter).Exec();
}

Result<std::vector<std::pair<uint64_t, Bytes>>> Store::PendingWrites(const DeviceId& self,
                                                                     size_t max_bytes) {
  // CROSS JOIN keeps `outbox` the outer loop: it is walked in its primary key
  // (counter) order and each write fetched by key, with no sort, so a call
  // reads only the batch it returns (kPendingWritesQuery).
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(kPendingWritesQuery));
  st.BindBlob(1, self.bytes);
  std::vector<std::pair<uint64_t, Bytes>> out;
  size_t total = 0;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    const auto blob = st.ColumnBlob(1);
    if (blob.empty()) continue;  // neither a write nor a void (another device's view)
    if (!out.empty() && total + blob.size() > max_bytes) break;
    total += blob.size();
    out.emplace_back(static_cast<uint64_t>(st.ColumnInt(0)), Bytes(blob.begin(), blob.end()));
  }
  return out;
}

Result<std::vector<uint64_t>> Store::RequeueOwnAbove(const DeviceId& self, uint64_t above,
                                                     uint64_t up_to, uint64_t* requeued) {
  above = std::min<uint64_t>(above, Write::kMaxCounter);
  up_to = std::min<uint64_t>(up_to, Write::kMaxCounter);
  std::vector<uint64_t> missing;
  if (up_to <= above) return missing;
  ENLACE_ASSIGN_OR_RETURN(
      Stmt held, db_->Prepare("SELECT counter FROM writes WHERE device = ?1 AND counter > ?2 AND "
                              "counter <= ?3 UNION SELECT counter FROM voids WHERE counter > ?2 "
                              "AND counter <= ?3 ORDER BY 1"));
  held.BindBlob(1, self.bytes).BindU64(2, above).BindU64(3, up_to);
  ENLACE_ASSIGN_OR_RETURN(Stmt add,
                          db_->Prepare("INSERT OR IGNORE INTO outbox(counter) VALUES(?)"));
  uint64_t next = above + 1;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, held.Step());
    const uint64_t counter = row ? static_cast<uint64_t>(held.ColumnInt(0)) : up_to + 1;
    for (; next < counter; ++next) missing.push_back(next);
    if (!row) break;
    next = counter + 1;
    ENLACE_RETURN_IF_ERROR(add.BindU64(1, counter).Exec());
    add.Reset();
    *requeued += static_cast<uint64_t>(db_->changes());
  }
  return missing;
}

Status Store::AcknowledgeUpTo(uint64_t up_to) {
  const auto bound = static_cast<int64_t>(std::min<uint64_t>(up_to, Write::kMaxCounter));
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM outbox WHERE counter <= ?"));
  ENLACE_RETURN_IF_ERROR(st.Bind(1, bound).Exec());
  ENLACE_ASSIGN_OR_RETURN(Stmt voids, db_->Prepare("DELETE FROM voids WHERE counter <= ?"));
  return voids.Bind(1, bound).Exec();
}

Result<bool> Store::InOutbox(uint64_t counter) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT 1 FROM outbox WHERE counter = ?"));
  st.BindU64(1, counter);
  return st.Step();
}

Status Store::PutVoid(uint64_t counter, const Bytes& encoded) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT INTO voids(counter, encoded) VALUES(?, ?) "
                                                "ON CONFLICT(counter) DO UPDATE SET encoded = "
                                                "excluded.encoded"));
  return st.BindU64(1, counter).BindBlob(2, encoded).Exec();
}

Result<std::optional<Bytes>> Store::OwnEncoded(const DeviceId& self, uint64_t counter) {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT coalesce((SELECT encoded FROM writes WHERE device = ?1 AND "
                            "counter = ?2), (SELECT encoded FROM voids WHERE counter = ?2))"));
  st.BindBlob(1, self.bytes).BindU64(2, counter);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.ColumnIsNull(0)) return std::optional<Bytes>();
  const auto blob = st.ColumnBlob(0);
  return std::optional<Bytes>(Bytes(blob.begin(), blob.end()));
}

Result<uint64_t> Store::OwnScopeHead(const ScopeId& scope) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT counter FROM scope_heads WHERE scope = ?"));
  st.BindBlob(1, scope.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{0};
}

Status Store::SetOwnScopeHead(const ScopeId& scope, uint64_t counter) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st,
                          db_->Prepare("INSERT INTO scope_heads(scope, counter) VALUES(?, ?) ON "
                                       "CONFLICT(scope) DO UPDATE SET counter = excluded.counter"));
  return st.BindBlob(1, scope.bytes).BindU64(2, counter).Exec();
}

Status Store::NoteChained(const WriterSeen& w, uint64_t range_high) {
  ENLACE_ASSIGN_OR_RETURN(Stmt owed,
                          db_->Prepare("SELECT floor FROM chain_gaps WHERE device = ? AND "
                                       "scope = ? AND counter = ?"));
  owed.BindBlob(1, w.device.bytes).BindBlob(2, w.scope.bytes).BindU64(3, w.counter);
  ENLACE_ASSIGN_OR_RETURN(bool was_owed, owed.Step());
  ENLACE_ASSIGN_OR_RETURN(
      Stmt add, db_->Prepare("INSERT OR IGNORE INTO chain_gaps(device, scope, counter, floor) "
                             "VALUES(?, ?, ?, ?)"));
  const auto owe = [&](uint64_t counter, uint64_t floor) {
    return add.BindBlob(1, w.device.bytes)
        .BindBlob(2, w.scope.bytes)
        .BindU64(3, counter)
        .BindU64(4, floor)
        .Exec();
  };
  if (was_owed) {
    // A number owed arrives: the numbers between its floor and it were
    // unknown; its own scope_prev, if there, is owed now.
    const uint64_t floor = static_cast<uint64_t>(owed.ColumnInt(0));
    owed.Reset();
    ENLACE_ASSIGN_OR_RETURN(Stmt drop, db_->Prepare("DELETE FROM chain_gaps WHERE device = ? AND "
                                                    "scope = ? AND counter = ?"));
    ENLACE_RETURN_IF_ERROR(
        drop.BindBlob(1, w.device.bytes).BindBlob(2, w.scope.bytes).BindU64(3, w.counter).Exec());
    if (w.scope_prev > floor) return owe(w.scope_prev, floor);
    return Status::Ok();
  }
  owed.Reset();
  ENLACE_ASSIGN_OR_RETURN(Stmt get, db_->Prepare("SELECT head FROM chain_heads WHERE device = ? "
                                                 "AND scope = ?"));
  get.BindBlob(1, w.device.bytes).BindBlob(2, w.scope.bytes);
  ENLACE_ASSIGN_OR_RETURN(bool tracked, get.Step());
  // Untracked: the writer's format-3 numbers up to range_high are
  // accounted by their ranges; below, nothing is known.
  const uint64_t head = tracked ? static_cast<uint64_t>(get.ColumnInt(0)) : range_high;
  get.Reset();
  if (tracked && w.counter <= head) return Status::Ok();  // seen, or a repeat
  if (w.scope_prev > head) ENLACE_RETURN_IF_ERROR(owe(w.scope_prev, head));
  ENLACE_ASSIGN_OR_RETURN(
      Stmt put, db_->Prepare("INSERT INTO chain_heads(device, scope, head) VALUES(?, ?, ?) ON "
                             "CONFLICT(device, scope) DO UPDATE SET head = excluded.head"));
  return put.BindBlob(1, w.device.bytes)
      .BindBlob(2, w.scope.bytes)
      .BindU64(3, std::max(w.counter, head))
      .Exec();
}

Status Store::NoteSeen(const std::vector<WriterSeen>& seen) {
  if (seen.empty()) return Status::Ok();
  // Per writer: its numbers in order (each with whether it may extend the
  // promised range: format 3 only), and the lowest format-3 promise.
  std::map<DeviceId, std::pair<uint64_t, std::vector<std::pair<uint64_t, bool>>>> by_writer;
  for (const WriterSeen& w : seen) {
    auto& [from, counters] = by_writer[w.device];
    const bool ranged = w.format < 4;
    if (ranged && w.accounted_from != 0 && (from == 0 || w.accounted_from < from)) {
      from = w.accounted_from;
    }
    counters.push_back({w.counter, ranged});
  }
  ENLACE_ASSIGN_OR_RETURN(Stmt get,
                          db_->Prepare("SELECT low, high FROM writers_seen WHERE device = ?"));
  ENLACE_ASSIGN_OR_RETURN(
      Stmt put, db_->Prepare("INSERT INTO writers_seen(device, low, high) VALUES(?, ?, ?) ON "
                             "CONFLICT(device) DO UPDATE SET low = excluded.low, high = "
                             "excluded.high"));
  ENLACE_ASSIGN_OR_RETURN(Stmt gaps,
                          db_->Prepare("SELECT lo, hi FROM write_gaps WHERE device = ?"));
  ENLACE_ASSIGN_OR_RETURN(Stmt drop, db_->Prepare("DELETE FROM write_gaps WHERE device = ?"));
  ENLACE_ASSIGN_OR_RETURN(Stmt add,
                          db_->Prepare("INSERT INTO write_gaps(device, lo, hi) VALUES(?, ?, ?)"));
  for (auto& [device, entry] : by_writer) {
    auto& [from, counters] = entry;
    std::sort(counters.begin(), counters.end());
    get.BindBlob(1, device.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool known, get.Step());
    bool tracked = known;
    uint64_t low = known ? static_cast<uint64_t>(get.ColumnInt(0)) : 0;
    uint64_t high = known ? static_cast<uint64_t>(get.ColumnInt(1)) : 0;
    get.Reset();
    // The gaps as a map lo -> hi, changed in memory, written back whole.
    std::map<uint64_t, uint64_t> holes;
    gaps.BindBlob(1, device.bytes);
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool row, gaps.Step());
      if (!row) break;
      holes[static_cast<uint64_t>(gaps.ColumnInt(0))] = static_cast<uint64_t>(gaps.ColumnInt(1));
    }
    gaps.Reset();
    bool changed = false;
    if (from != 0 && !tracked) {
      // The first promise of this writer: owed from `from` on, none seen yet.
      tracked = true;
      low = from;
      high = from - 1;
      changed = true;
    } else if (from != 0 && from < low) {
      // A promise reaching lower: the numbers in between are owed too.
      holes[from] = low - 1;
      low = from;
      changed = true;
    }
    if (!tracked) continue;  // no promise from this writer (formats 1 and 2)
    for (const auto& [c, ranged] : counters) {
      if (c > high) {
        if (!ranged) continue;  // format 4 chains in its scope, below
        if (c > high + 1) holes[high + 1] = c - 1;
        high = c;
        changed = true;
        continue;
      }
      // Inside what is owed: fills a gap if it is one.
      auto it = holes.upper_bound(c);
      if (it == holes.begin()) continue;
      --it;
      const uint64_t lo = it->first, hi = it->second;
      if (c > hi) continue;
      holes.erase(it);
      if (lo < c) holes[lo] = c - 1;
      if (c < hi) holes[c + 1] = hi;
      changed = true;
    }
    if (!changed) continue;
    ENLACE_RETURN_IF_ERROR(put.BindBlob(1, device.bytes).BindU64(2, low).BindU64(3, high).Exec());
    put.Reset();
    ENLACE_RETURN_IF_ERROR(drop.BindBlob(1, device.bytes).Exec());
    drop.Reset();
    for (const auto& [lo, hi] : holes) {
      ENLACE_RETURN_IF_ERROR(add.BindBlob(1, device.bytes).BindU64(2, lo).BindU64(3, hi).Exec());
      add.Reset();
    }
  }
  // Format-4 numbers, in the order they arrived, along their scopes' chains.
  std::map<DeviceId, uint64_t> range_high;
  for (const WriterSeen& w : seen) {
    if (w.format < 4) continue;
    auto it = range_high.find(w.device);
    if (it == range_high.end()) {
      get.BindBlob(1, w.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool known, get.Step());
      it = range_high.emplace(w.device, known ? static_cast<uint64_t>(get.ColumnInt(1)) : 0).first;
      get.Reset();
    }
    ENLACE_RETURN_IF_ERROR(NoteChained(w, it->second));
  }
  return Status::Ok();
}

Result<std::vector<Store::Gap>> Store::Gaps(size_t max) {
  // Numbers owed along a scope's chain are gaps of one.
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT device, lo, hi FROM (SELECT device, lo, hi FROM write_gaps "
                            "UNION SELECT device, counter, counter FROM chain_gaps) "
                            "ORDER BY device, lo LIMIT ?"));
  st.Bind(1, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
  std::vector<Gap> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Gap g;
    g.device = DeviceId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))};
    g.lo = static_cast<uint64_t>(st.ColumnInt(1));
    g.hi = static_cast<uint64_t>(st.ColumnInt(2));
    out.push_back(g);
  }
  return out;
}

Result<uint64_t> Store::MissingCount() {
  // Each gap counted up to a billion: a hostile writer's numbers cannot
  // overflow the sum.
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT coalesce(sum(min(hi - lo + 1, 1000000000)), 0) + (SELECT "
                            "count(*) FROM (SELECT DISTINCT device, counter FROM chain_gaps)) "
                            "FROM write_gaps"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{0};
}

Result<uint64_t> Store::PendingCount() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT count(*) FROM outbox"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{0};
}

}  // namespace enlace::internal
