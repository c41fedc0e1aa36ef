// The device's local store: SQLite in WAL mode. It holds only what a hub
// could also see (ids, counters, field names, clocks) plus the encrypted
// writes; no plaintext value and no key is ever written here.
//
// Tables (migrations 1-7):
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
//   trust_seal(id = 1, generation, mac)       the trust seal (migration 7)
//   sealed_settings(name, value)              the embedding app's settings
//                                             that decide where data goes
//
// The trust seal (trust_seal.cc). Everything here that decides whom this
// device trusts or where its data goes -- the schema itself, the devices
// table (members, their keys, roles and revocation points, devices trusted
// by hand), the documents (the checked registry, admissions, a registry to
// send), the key grants to send, the trust counters of meta (IsTrustMeta)
// and the sealed settings -- is digested, in one canonical order, and the
// digest is MACed (keyed BLAKE2b) with a key derived from the vault's
// local key, together with the device id and a generation that grows by
// one with every sealed change. A store opened with OpenSealed checks the
// MAC before it runs a migration or reads a row; from then on every
// transaction begun by Begin() that changed trust state re-seals before it
// commits, and each new generation is recorded in the vault after the
// commit (SealOptions::on_sealed). Open refuses (kCorruption) a seal that
// does not match (kSealAlteredMessage), a missing seal once the vault has
// recorded one (kSealMissingMessage), and a seal older than the vault's
// generation (kSealRolledBackMessage: a rolled-back store.db); a seal newer
// than the vault's is the vault missing the last commit, and the vault
// catches up. A store without a seal whose vault never recorded one (made
// before the seal existed) is sealed as it stands by the first commit:
// trust on first use, once. Changing the schema other than by a migration
// run by OpenSealed breaks the seal.
//
// Not thread-safe. Callers group calls into a Transaction.
#ifndef ENLACE_CORE_REPLICA_STORE_H_
#define ENLACE_CORE_REPLICA_STORE_H_

#include <array>
#include <functional>
#include <map>
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
// Every registry version this device checked is also kept under this prefix
// and its version (RegistryLinkName): the chain a hub restored from a
// backup may lack, relayed to it link by link (§9).
inline constexpr std::string_view kDocRegistryLinkPrefix = "registry.v";
// 1 when this device was assigned a scope it did not hold: the writes of
// that scope lie behind its cursor, so its next pull reads the log again
// from the start (writes held are recognised).
inline constexpr std::string_view kMetaRescan = "rescan";
// The newest registry version the hub said it stores (SyncResponse).
inline constexpr std::string_view kMetaHubRegistryVersion = "hub_registry_version";
inline constexpr std::string_view kDocOutgoingRegistry =
    "out_registry";  // signed here, not yet stored
// The newest KeyGrant made to this device, kept to send again to a hub
// restored from a backup (it proves a coordinator granted that key).
inline constexpr std::string_view kDocOwnKeyGrant = "own_key_grant";
// The invites this coordinator made that the hub stored (encoded
// CreateInviteRequests), to send again to a hub restored from a backup.
inline constexpr std::string_view kDocOpenInvites = "open_invites";
// The identity of the hub's log (SyncResponse::log_id) as last seen.
inline constexpr std::string_view kDocHubLogId = "hub_log_id";
// The highest own write counter a hub has acknowledged, and 1 while the
// trust documents are to be sent again to a hub found behind (§9).
inline constexpr std::string_view kMetaAckedHigh = "acked_high";
inline constexpr std::string_view kMetaRelayPending = "relay_pending";
inline constexpr std::string_view kMetaClockOffset =
    "clock_offset_ms";  // int64 as two's complement
// 1 when this device created the team: its first coordinator (enlace/team.h).
inline constexpr std::string_view kMetaTeamFounder = "team_founder";
// The first own write number of format 3 (Write::accounted_from): every own
// number from it on is a write or a void the hub gets (migration 8).
inline constexpr std::string_view kMetaAccountedFrom = "accounted_from";
// Whether a meta counter is trust state, covered by the trust seal.
bool IsTrustMeta(std::string_view key);

// How Open refuses a store whose seal fails (kCorruption, the message
// starting with one of these; Replica's LocalTamperOf tells them apart).
inline constexpr std::string_view kSealAlteredMessage =
    "store.db was altered outside enlace: its trust state (members and their keys, the device "
    "registry, key grants, sealed settings) does not match its seal";
inline constexpr std::string_view kSealMissingMessage =
    "store.db has lost its seal: the seal was removed, or store.db was replaced by a copy from "
    "before the seal";
inline constexpr std::string_view kSealRolledBackMessage =
    "store.db is older than the vault: it was put back to an earlier copy of itself";
inline constexpr size_t kSealKeyBytes = 32;

// The query behind PendingWrites (for tests of its plan): ?1 is this device.
inline constexpr char kPendingWritesQuery[] =
    "SELECT o.counter, coalesce(w.encoded, v.encoded) FROM outbox o "
    "LEFT JOIN writes w ON w.device = ?1 AND w.counter = o.counter "
    "LEFT JOIN voids v ON v.counter = o.counter ORDER BY o.counter";

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
  // Such a store keeps no seal (tests of the store alone).
  static Result<std::unique_ptr<Store>> Open(const std::string& path);

  // Who seals the store and where its generations are recorded.
  struct SealOptions {
    SecretBytes key;  // kSealKeyBytes, derived from the vault's local key
    DeviceId device;  // the device the store belongs to
    // The last generation the vault recorded; 0 when it never recorded one.
    uint64_t vault_generation = 0;
    // Records a committed generation in the vault (may be empty: nothing
    // recorded, e.g. for a store in memory). Best effort: a vault that
    // misses one catches up on the next open.
    std::function<void(uint64_t)> on_sealed;
  };
  // Like Open, but checks the trust seal first, before any migration
  // (kCorruption as described above), and keeps it from then on.
  static Result<std::unique_ptr<Store>> OpenSealed(const std::string& path, SealOptions seal);
  ~Store();

  Db& db() { return *db_; }
  // A transaction; an outermost one re-seals the trust state before it
  // commits when it changed (a sealed store).
  Result<std::unique_ptr<Transaction>> Begin();
  // The generation of the seal the store holds (0: none yet, or unsealed).
  Result<uint64_t> SealGeneration() const;

  // The schema version after migrations.
  Result<int64_t> SchemaVersion();

  // ---- meta: named unsigned counters (0 when unset)
  Result<uint64_t> GetMeta(std::string_view key);
  Status SetMeta(std::string_view key, uint64_t value);

  // Every call below that changes trust state runs in the caller's
  // transaction (sealed when it commits) or, outside one, in its own.

  // ---- sealed settings (name -> value, all replaced at once)
  Result<std::map<std::string, std::string>> SealedSettings();
  Status ReplaceSealedSettings(const std::map<std::string, std::string>& settings);

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
  Status ClearRefetch();

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

  // ---- scopes of records (migration 9): a record keeps the scope of its
  // first write (LoadRecord gives it as RecordState::scope); zero (the
  // team's) unless a row says otherwise.
  Status SetRecordScope(const RecordKey& key, const ScopeId& scope);
  // Every record not in the team's scope, with its scope.
  Result<std::vector<std::pair<RecordKey, ScopeId>>> ScopedRecords();
  // The dots of the writes of a record this device stores.
  Result<std::vector<Dot>> DotsOf(const RecordKey& key);
  // Removes a record with its stored writes from this device (a scope
  // taken back from it).
  Status ForgetRecord(const RecordKey& key);

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
  // Puts every stored own write or void with counter in (above, up_to] back
  // in the outbox (the hub lacks them); returns the counters in that range
  // it holds neither of (to be voided), and adds to *requeued the entries
  // added.
  Result<std::vector<uint64_t>> RequeueOwnAbove(const DeviceId& self, uint64_t above,
                                                uint64_t up_to, uint64_t* requeued);
  // Removes every outbox entry and void with counter <= up_to.
  Status AcknowledgeUpTo(uint64_t up_to);
  Result<uint64_t> PendingCount();
  // Whether `counter` is in the outbox (an own write not yet acknowledged).
  Result<bool> InOutbox(uint64_t counter);
  // ---- voids (migration 8): own write numbers sent as kVoid writes
  Status PutVoid(uint64_t counter, const Bytes& encoded);
  // The stored own write or void of `counter`, if any.
  Result<std::optional<Bytes>> OwnEncoded(const DeviceId& self, uint64_t counter);
  // ---- own places in scopes (migration 9): the last own write number in
  // each scope (0: none), each write's scope_prev.
  Result<uint64_t> OwnScopeHead(const ScopeId& scope);
  Status SetOwnScopeHead(const ScopeId& scope, uint64_t counter);

  // ---- write numbers seen of other devices (migrations 8 and 9)
  // For each writer, the range [low, high] of write numbers its format-3
  // writes promised to account for, and the numbers in it not seen yet
  // (gaps: a hub withholding or losing writes, docs/PROTOCOL.md §6.11).
  // Format-4 writes chain within their scope instead: per (writer, scope)
  // the highest number seen, and each scope_prev not seen (owed) with the
  // number below which that scope's numbers are accounted (its floor).
  struct WriterSeen {
    DeviceId device;
    uint64_t counter = 0;         // a write number seen
    uint64_t accounted_from = 0;  // its write's promise, 0 for none
    uint8_t format = 3;           // its write's format
    ScopeId scope;                // format 4: its scope
    uint64_t scope_prev = 0;      // format 4: the writer's number before it there
  };
  // Records write numbers seen (any order, repeats allowed).
  Status NoteSeen(const std::vector<WriterSeen>& seen);
  // One format-4 number along its scope's chain; `range_high`: the highest
  // number the writer's format-3 ranges account for (0: none).
  Status NoteChained(const WriterSeen& w, uint64_t range_high);
  struct Gap {
    DeviceId device;
    uint64_t lo = 0, hi = 0;  // inclusive
    friend bool operator==(const Gap&, const Gap&) = default;
  };
  // The first `max` gaps, by device and number; and the write numbers in
  // all of them.
  Result<std::vector<Gap>> Gaps(size_t max);
  Result<uint64_t> MissingCount();

 private:
  // The seal as this store last checked or committed it.
  struct Seal {
    SealOptions options;
    bool present = false;  // the store holds a seal (false: none yet, first use)
    uint64_t generation = 0;
    std::array<uint8_t, kHashBytes> digest{};
    // Written by the transaction being committed; adopted once it is.
    struct Pending {
      uint64_t generation = 0;
      std::array<uint8_t, kHashBytes> digest{};
    };
    std::optional<Pending> pending;
    // The MAC of trust state `digest` at `generation` for this device.
    std::array<uint8_t, kHashBytes> Mac(uint64_t generation,
                                        const std::array<uint8_t, kHashBytes>& digest) const;
  };
  explicit Store(std::unique_ptr<Db> db);
  static Result<std::unique_ptr<Db>> OpenDb(const std::string& path);
  Status Migrate();
  // The trust seal (trust_seal.cc).
  Result<bool> HasTable(std::string_view name);
  Result<std::array<uint8_t, kHashBytes>> TrustDigest();
  Status CheckSeal();      // OpenSealed, before the migrations
  Status SealIfChanged();  // before an outermost commit
  void SealCommitted();    // after it
  // Runs `change` to trust state in the open transaction, or in one of its own.
  Status ChangeTrust(const std::function<Status()>& change);

  std::unique_ptr<Db> db_;
  std::unique_ptr<Seal> seal_;  // null: an unsealed store
  bool trust_dirty_ = false;    // trust state may differ from the seal
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
