// Replica: one device's encrypted, conflict-aware copy of its team's records.
//
// A replica lives in one folder: `vault.bin` (the device and team keys,
// wrapped under the passphrase) and `store.db` (SQLite, WAL; only ciphertext
// and the metadata a hub also sees). Every change is a signed, encrypted
// write (enlace/write.h) merged with the multi-value-register rules of
// DESIGN §2. The replica does no I/O besides its own files: a sync engine
// moves PendingWrites() to a hub and feeds what it pulls to ApplyRemote().
//
// Values are JSON texts: a scalar (string, number, boolean, null) or an array.
// They are stored and compared in canonical form (no spaces, keys sorted).
//
// The replica's face is split by who uses it: this header holds opening,
// identity, the records API (its values in enlace/record.h), the outbox the
// sync engine drains, and the hook through which a layer above checks
// values; the team's membership and keys
// are in enlace/team.h (trust), the team's schema in enlace/team_schema.h
// (case work), wiping and the unlock back-off in enlace/local_safety.h.
//
// Thread safety: a Replica is not thread-safe; use one from one thread at a
// time. Two Replica objects must not open the same folder at once.
#ifndef ENLACE_REPLICA_H_
#define ENLACE_REPLICA_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/hlc.h"
#include "enlace/local_safety.h"
#include "enlace/member.h"
#include "enlace/record.h"
#include "enlace/status.h"
#include "enlace/types.h"
#include "enlace/write.h"

namespace enlace {

class Replica;
class ReplicaHook;

// Why Open() refused a folder whose local files were edited behind the
// device's back (kCorruption): every piece of store.db that decides whom
// the device trusts or where its data goes is sealed with a key only the
// unlocked vault holds (docs/THREAT_MODEL.md, "local file tamperer").
enum class LocalTamper {
  kNone,         // not a refused seal (another error, or none)
  kAltered,      // the trust state does not match its seal (or is another device's)
  kSealMissing,  // the seal is gone although the vault recorded one
  kRolledBack,   // store.db is older than the vault: an earlier copy put back
};
// What `open_status` (Replica::Open's error) says about the seal.
LocalTamper LocalTamperOf(const Status& open_status);

struct ReplicaOptions {
  std::string dir;                       // created (mode 0700) if missing
  KdfCost kdf = KdfCost::Interactive();  // used when creating or re-keying the vault
  HlcOptions clock;                      // wall clock and future-drift limit
  bool in_memory_store = false;          // tests: keep store.db in memory
  WriteLimits limits;                    // applied to every incoming write
  // Makes the replica's hook (called once by Create and Open; none when
  // empty): the layer above that checks values before Put and Resolve write
  // them. The CLI and the C API install case work's team schema
  // (enlace/team_schema.h: TeamSchemaHook), which checks values against the
  // effective schema pack and fills defaults of new records; core tests
  // leave it empty for free-form records. Reading and ApplyRemote never check.
  std::function<std::unique_ptr<ReplicaHook>()> hook;
};

// What a layer above the engine plugs into a replica: the engine asks "may
// these values be written?" and tells of writes to the reserved "enlace."
// collections, without knowing what a schema is. Case work's team schema
// (enlace/team_schema.h) is the one the CLI and the C API use.
class ReplicaHook {
 public:
  virtual ~ReplicaHook() = default;
  // Put and Resolve call this with canonical values before anything is
  // written; `creating` when the record is new here (the hook may add
  // default fields to `values`). An error refuses the write.
  virtual Status CheckValues(Replica& replica, std::string_view collection, bool creating,
                             Fields& values) = 0;
  // Called inside the transaction that merged `write` (own or pulled) into a
  // reserved collection, after it was stored. Best effort: it cannot refuse
  // the write.
  virtual void OnReservedWrite(Replica& replica, const Write& write,
                               std::span<const uint8_t> encoded) = 0;
};

class Replica {
 public:
  // Creates a new device in `options.dir`: fresh device keys, a vault
  // wrapped under `passphrase`, an empty store. kAlreadyExists if a vault is
  // already there.
  static Result<std::unique_ptr<Replica>> Create(const ReplicaOptions& options,
                                                 std::string_view passphrase);

  // Opens an existing device. kWrongPassphrase (nothing changed),
  // kCorruption (vault damaged or tampered, or store.db's trust state edited,
  // its seal removed or the file rolled back: LocalTamperOf), kNotFound (no
  // vault). A store.db from before the seal is sealed as it is on its first
  // open (trust on first use).
  static Result<std::unique_ptr<Replica>> Open(const ReplicaOptions& options,
                                               std::string_view passphrase);

  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Re-wraps the vault under a new passphrase; kWrongPassphrase if `current`
  // is wrong, in which case nothing changes.
  Status ChangePassphrase(std::string_view current, std::string_view next);

  // ---- identity ----------------------------------------------------------------
  DeviceId device_id() const;
  DevicePublicKeys public_keys() const;
  // Zero until CreateTeam or AcceptTeamKeys (enlace/team.h).
  TeamId team() const;
  // The newest team key version this device holds (0 when none).
  uint32_t current_key_version() const;

  // ---- records ----------------------------------------------------------------
  // Sets `values` on a record: a new one (random id) when `id` is empty, or
  // the given one, new or existing. kInvalidArgument for a bad name or
  // value, for a collection in the reserved "enlace." namespace, and for
  // values the hook refuses (ReplicaHook::CheckValues), in which case nothing
  // is written; creating a record lets the hook fill defaults. kFailedPrecondition if the record is
  // deleted (Restore first).
  Result<RecordId> Put(std::string_view collection, std::optional<RecordId> id,
                       const Fields& values);
  // The same, for a new record in `scope` (docs/PROTOCOL.md §6.12): every
  // later write of it stays there, and only the devices that hold the
  // scope get it. A record keeps the scope of its first write:
  // kInvalidArgument when `id` names a record of another scope.
  Result<RecordId> Put(std::string_view collection, std::optional<RecordId> id,
                       const Fields& values, const ScopeId& scope);
  // The scope a record this device holds is in (zero: the team's);
  // kNotFound for a record it does not hold.
  Result<ScopeId> ScopeOf(std::string_view collection, const RecordId& id);

  // Runs `body` in one store transaction, so every write it makes becomes
  // durable together (one fsync for a whole import batch) or, when `body`
  // returns an error, not at all. Each Put inside is a savepoint: a Put
  // refused inside the batch leaves the others. Returns body's status, or
  // the store's error.
  Status RunBatch(const std::function<Status()>& body);

  // A record id derived from `key` under the team's first key: the same on
  // every device of the team, and meaningless to whoever lacks the team key
  // (the hub sees record ids). Imports use it so that a spreadsheet row
  // imported twice, on any device, is one record. kFailedPrecondition
  // without a team.
  Result<RecordId> DeriveRecordId(std::string_view collection, std::string_view key) const;

  // The record with shown values and conflicts. kNotFound when it does not
  // exist or is deleted (unless `include_deleted`).
  Result<Record> Get(std::string_view collection, const RecordId& id,
                     bool include_deleted = false) const;

  // Records of `collection` that are not deleted (delete conflicts are
  // listed), sorted by id.
  Result<std::vector<Record>> List(std::string_view collection) const;

  // Every field in every collection with several current values.
  Result<std::vector<Conflict>> Conflicts() const;

  // Resolves a conflict with `value`, covering every sibling this device has
  // seen. For kDeletedField, "true" confirms the delete and "false" restores.
  // `value` is checked by the hook like a Put's.
  Status Resolve(std::string_view collection, const RecordId& id, std::string_view field,
                 std::string_view value);

  // Tombstones the record; covers only what this device has seen.
  Status Delete(std::string_view collection, const RecordId& id);
  // Makes a deleted record live again with the values it had.
  Status Restore(std::string_view collection, const RecordId& id);
  // Tombstones the record and overwrites every field it has with null; once
  // merged, the old values are purged from this replica's storage.
  Status Erase(std::string_view collection, const RecordId& id);

  // Verifies (team, trusted signer, signature, clock drift, payload) and
  // merges an encoded write from another device. Bad input changes nothing.
  Result<ApplyOutcome> ApplyRemote(std::span<const uint8_t> encoded_write);

  // The layer above's hook (ReplicaOptions::hook), or null. SetHook
  // replaces it (a layer that needs one on a replica opened without it).
  ReplicaHook* hook() const;
  void SetHook(std::unique_ptr<ReplicaHook> hook);

  const ReplicaOptions& options() const;

  // ---- sealed settings ----------------------------------------------------------
  // The embedding app's settings that decide where data goes (the CLI
  // keeps its hub URL and TLS pin here), name -> value: stored in store.db
  // under the trust seal, so that Open() refuses them once edited behind
  // the device's back. Empty until set.
  Result<std::map<std::string, std::string>> SealedSettings() const;
  // Replaces every sealed setting at once.
  Status SetSealedSettings(const std::map<std::string, std::string>& settings);

  // ---- outbox -----------------------------------------------------------------
  // Own writes not yet acknowledged by a hub, in counter order, as
  // (counter, encoded write), at most `max_bytes` in all (at least one).
  Result<std::vector<std::pair<uint64_t, Bytes>>> PendingWrites(size_t max_bytes) const;
  Result<uint64_t> PendingCount() const;
  // Drops own writes with counter <= `up_to` from the outbox.
  Status AcknowledgeUpTo(uint64_t up_to);

  // ---- diagnostics ------------------------------------------------------------
  // A canonical text of every record's context, siblings and values. Two
  // replicas that have seen the same writes return the same text. Contains
  // plaintext: for tests and local diagnostics only.
  Result<std::string> DumpState() const;

  // Encoded writes currently stored (own and others'), for tests and audits.
  Result<std::vector<Bytes>> StoredWrites() const;

  // The clock (exposed for hub-time correction by the sync engine).
  HybridClock& clock();

  // ---- local safety ----
  // Open() also: refuses, without running Argon2id, an attempt made too soon
  // after 3 or more consecutive wrong passphrases (kWrongPassphrase saying
  // how long to wait: 2^(n-3) s after the n-th failure, at most 15 min);
  // wipes the folder (WipeReplicaFiles) when the count reaches the
  // SetWipeAfterFailures threshold (kWrongPassphrase saying so); opened with
  // the duress passphrase, wipes the folder and returns a fresh, empty
  // replica (new device keys, no team) under that passphrase; re-wraps the
  // vault with options.kdf when it is stronger than the stored cost (never
  // weaker). The failure count lives in the unauthenticated file
  // `unlock.state`: whoever can edit the folder can reset it.

  // Sets the duress passphrase. kInvalidArgument when empty or equal to the
  // device passphrase. Replaces any earlier duress passphrase.
  Status SetDuressPassphrase(std::string_view duress);

  // Wipe the folder after `n` consecutive wrong passphrases (0: never).
  // kInvalidArgument for 1 or 2 (too easy to trigger by a typo).
  Status SetWipeAfterFailures(uint32_t n);

  // True when Open() was given the duress passphrase: the folder's old data
  // was destroyed and this is a fresh, empty replica. The embedding app
  // should make its own files look fresh too.
  bool opened_under_duress() const { return opened_under_duress_; }
  // ---- end of local safety ----

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Replica(std::unique_ptr<Impl> impl);
  Result<RecordId> PutIn(std::string_view collection, std::optional<RecordId> id,
                         const Fields& values, const ScopeId* scope);
  std::unique_ptr<Impl> impl_;
  bool opened_under_duress_ = false;  // local safety
};

}  // namespace enlace

#endif  // ENLACE_REPLICA_H_
