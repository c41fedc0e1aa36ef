// The device's local store: SQLite in WAL mode. It holds only what a hub
// could also see (ids, counters, field names, clocks) plus the encrypted
// writes; no plaintext value and no key is ever written here.
//
// Tables (migrations 1-6):
//   meta(key, value)            counters: next write counter, HLC, pull cursor
//   devices(device, sign_pk, box_pk, ...)     the devices this replica trusts
//   writes(device, counter, collection, record, kind, encoded)
//                               every write that still holds a current value;
//                               a rowid table, unique (device, counter)
//                               (migration 5; WITHOUT ROWID before)
//   records(collection, record, context, registers, conflicted)
//                               each record's causal context and its
//                               multi-value registers (field -> siblings) in
//                               one blob; conflicted = a field has 2+ siblings
//                               (until migration 4: a `siblings` table with
//                               one row per sibling)
//   outbox(counter)             own writes not yet acknowledged by a hub
//   documents, outgoing_key_grants            (migration 3)
//   parked(seq, key_version, encoded)         pulled writes under a key not held yet
//   refetch(seq)                log positions to ask the hub for again (migration 6)
//
// Not thread-safe. Callers group calls into a Transaction.
#ifndef ENLACE_CORE_REPLICA_STORE_H_
#define ENLACE_CORE_REPLICA_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/crypto.h"
#include "enlace/member.h"
#include "enlace/write.h"
#include "replica/merge.h"
#include "storage/sqlite.h"

namespace enlace::internal {

// Names of the meta counters.
inline constexpr std::string_view kMetaPullCursor = "pull_cursor";
inline constexpr std::string_view kMetaMembersVersion = "members_version";
inline constexpr std::string_view kMetaLastSyncMs = "last_sync_ms";
inline constexpr std::string_view kMetaRegistryVersion = "registry_version";
inline constexpr std::string_view kDocRegistry = "registry";      // the newest checked Registry
inline constexpr std::string_view kDocAdmissions = "admissions";  // checked Admissions (list)
inline constexpr std::string_view kDocOutgoingRegistry =
    "out_registry";  // signed here, not yet stored
inline constexpr std::string_view kMetaClockOffset =
    "clock_offset_ms";  // int64 as two's complement
// 1 when this device created the team: its first coordinator (enlace/team.h).
inline constexpr std::string_view kMetaTeamFounder = "team_founder";

// The query behind PendingWrites (for tests of its plan): ?1 is this device.
inline constexpr char kPendingWritesQuery[] =
    "SELECT o.counter, w.encoded FROM outbox o CROSS JOIN writes w "
    "ON w.device = ?1 AND w.counter = o.counter ORDER BY o.counter";

struct StoredWrite {
  WriteKind kind = WriteKind::kPut;
  Bytes encoded;
};

struct RecordKey {
  std::string collection;
  RecordId record;
  friend auto operator<=>(const RecordKey&, const RecordKey&) = default;
};

class Store {
 public:
  // Opens or creates the store at `path` (":memory:" for tests) and runs
  // pending migrations. kFailedPrecondition for a store newer than this code.
  static Result<std::unique_ptr<Store>> Open(const std::string& path);

  Db& db() { return *db_; }
  Result<std::unique_ptr<Transaction>> Begin() { return Transaction::Begin(*db_); }

  // The schema version after migrations.
  Result<int64_t> SchemaVersion();

  // ---- meta: named unsigned counters (0 when unset)
  Result<uint64_t> GetMeta(std::string_view key);
  Status SetMeta(std::string_view key, uint64_t value);

  // ---- devices
  Status PutDevice(const DeviceId& device, const SignPublicKey& sign_pk,
                   const BoxPublicKey& box_pk);
  // nullopt when the device is unknown.
  Result<std::optional<SignPublicKey>> GetSigningKey(const DeviceId& device);
  // Team members as the checked registry and admissions make them.
  Status PutMember(const Member& member);
  // Replaces every member (devices trusted by hand with PutDevice stay).
  Status ReplaceMembers(const std::vector<Member>& members);
  Result<std::vector<Member>> ListMembers();
  // What a write's verification needs to know of its writer.
  struct Writer {
    SignPublicKey signing_key{};
    bool member = false;  // listed by the registry (false: trusted by hand)
    bool revoked = false;
    uint64_t revoked_after = 0;
    bool pending = false;
  };
  Result<std::optional<Writer>> GetWriter(const DeviceId& device);

  // ---- documents: the checked registry, admissions, a registry to send
  Result<std::optional<Bytes>> GetDocument(std::string_view name);
  Status SetDocument(std::string_view name, ByteView value);
  Status DeleteDocument(std::string_view name);
  // Key grants a coordinator made that still have to reach the hub.
  Status QueueKeyGrant(const DeviceId& recipient, uint32_t version, ByteView encoded);
  Result<std::vector<Bytes>> QueuedKeyGrants();
  Status ClearKeyGrants();
  // ---- pulled writes kept aside (migration 6)
  // A write at log position `seq` sealed under a key version not held yet.
  Status Park(uint64_t seq, uint32_t key_version, const Bytes& encoded);
  // Parked writes whose key version is at most `key_version`, by position.
  Result<std::vector<std::pair<uint64_t, Bytes>>> ParkedUpTo(uint32_t key_version);
  // How many writes are parked, and the highest key version they wait for.
  Result<std::pair<uint64_t, uint32_t>> ParkedSummary();
  Status Unpark(uint64_t seq);
  // Log positions whose delivery failed its checks, to be asked for again.
  Status AddRefetch(uint64_t seq);
  Status RemoveRefetch(uint64_t seq);
  Result<std::vector<uint64_t>> RefetchPositions(size_t max);
  Result<uint64_t> RefetchCount();

  // The highest write counter of `device` this store has seen (stored
  // writes and every record's context).
  Result<uint64_t> MaxCounterSeen(const DeviceId& device);

  // ---- records
  // nullopt when the record has never been written here.
  Result<std::optional<RecordState>> LoadRecord(const RecordKey& key);
  Status SaveRecord(const RecordKey& key, const RecordState& state);
  // Record ids of a collection (or of all collections when empty), sorted.
  Result<std::vector<RecordKey>> ListRecords(std::string_view collection);
  // Records with a field that has two or more siblings.
  Result<std::vector<RecordKey>> RecordsWithSeveralSiblings();

  // ---- writes
  Status InsertWrite(const Write& write, const Bytes& encoded);
  Result<std::optional<StoredWrite>> GetWrite(const Dot& dot);
  Status DeleteWrite(const Dot& dot);
  Result<int64_t> CountWrites();
  // Every stored encoded write, ordered by (device, counter).
  Result<std::vector<Bytes>> AllWrites();

  // ---- outbox (own writes only, by counter)
  Status AddToOutbox(uint64_t counter);
  Status RemoveFromOutbox(uint64_t counter);
  // Encoded own writes in counter order, stopping before `max_bytes` would be
  // exceeded (but always at least one when any is pending). Reads only the
  // writes it returns (and the one that did not fit), whatever the outbox
  // holds.
  Result<std::vector<std::pair<uint64_t, Bytes>>> PendingWrites(const DeviceId& self,
                                                                size_t max_bytes);
  // Removes every outbox entry with counter <= up_to.
  Status AcknowledgeUpTo(uint64_t up_to);
  Result<uint64_t> PendingCount();

 private:
  explicit Store(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  Status Migrate();
  std::unique_ptr<Db> db_;
};

// The SQL of the store's first `version` migrations (at most 3: later ones
// convert rows in C++), then `PRAGMA user_version`. Released migrations never
// change, so this builds a store exactly as an older release left it (tests
// of the later migrations).
std::string StoreSchemaSql(int version);

// The canonical encoding of a version vector, as stored in records.context.
Bytes EncodeVersionVector(const VersionVector& vv);
Result<VersionVector> DecodeVersionVector(ByteView bytes);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_REPLICA_STORE_H_
