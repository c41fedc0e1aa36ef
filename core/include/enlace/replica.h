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
#include "enlace/status.h"
#include "enlace/types.h"
#include "enlace/wire.h"
#include "enlace/write.h"

namespace enlace {

class SchemaPack;

// Argon2id cost of the passphrase. Interactive() is the default (64 MiB);
// Minimum() exists for tests only.
struct KdfCost {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;  // bytes
  static KdfCost Interactive();
  static KdfCost Moderate();
  static KdfCost Minimum();
};

struct ReplicaOptions {
  std::string dir;                       // created (mode 0700) if missing
  KdfCost kdf = KdfCost::Interactive();  // used when creating or re-keying the vault
  HlcOptions clock;                      // wall clock and future-drift limit
  bool in_memory_store = false;          // tests: keep store.db in memory
  WriteLimits limits;                    // applied to every incoming write
  // Put and Resolve check values against the effective schema pack (the
  // built-in pack plus the team's overlay) and fill defaults of new records.
  // Off for free-form records (core tests); the CLI and the C API turn it on.
  // Reading and ApplyRemote never validate.
  bool validate = false;
};

using PublicKey = std::array<uint8_t, 32>;

struct DevicePublicKeys {
  PublicKey signing{};     // Ed25519: verifies the device's writes and requests
  PublicKey encryption{};  // X25519: receives team keys sealed to it
};

// field -> JSON text
using Fields = std::map<std::string, std::string>;

// One current value of a field, with who wrote it and when.
struct SiblingValue {
  Dot dot;
  HlcTimestamp hlc;
  std::string value;  // canonical JSON; "null" once erased
};

struct FieldValue {
  std::string value;                   // the shown value (highest hlc, then device)
  std::vector<SiblingValue> siblings;  // every current value, sorted by dot
  bool conflict() const { return siblings.size() > 1; }
};

struct Record {
  std::string collection;
  RecordId id;
  std::map<std::string, FieldValue> fields;  // user fields only
  // The existence register (kDeletedField): deleted when every sibling says
  // so; a delete concurrent with an edit is a conflict.
  bool deleted = false;
  bool delete_conflict = false;
  std::vector<SiblingValue> existence;  // "true" = deleted, "false" = live
};

// A field of a record that has several current values; for a delete
// conflict, `field` is kDeletedField and the values are "true"/"false".
struct Conflict {
  std::string collection;
  RecordId id;
  std::string field;
  std::vector<SiblingValue> siblings;
  std::string shown;
};

enum class ApplyOutcome {
  kApplied,      // merged into the record
  kAlreadySeen,  // this write, or one that supersedes it, was already here
};

class Replica {
 public:
  // Creates a new device in `options.dir`: fresh device keys, a vault
  // wrapped under `passphrase`, an empty store. kAlreadyExists if a vault is
  // already there.
  static Result<std::unique_ptr<Replica>> Create(const ReplicaOptions& options,
                                                 std::string_view passphrase);

  // Opens an existing device. kWrongPassphrase (nothing changed),
  // kCorruption (vault damaged or tampered), kNotFound (no vault).
  static Result<std::unique_ptr<Replica>> Open(const ReplicaOptions& options,
                                               std::string_view passphrase);

  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Re-wraps the vault under a new passphrase; kWrongPassphrase if `current`
  // is wrong, in which case nothing changes.
  Status ChangePassphrase(std::string_view current, std::string_view next);

  // ---- identity and team ------------------------------------------------------
  DeviceId device_id() const;
  DevicePublicKeys public_keys() const;
  // Zero until CreateTeam or AcceptTeamKeys.
  TeamId team() const;
  // The newest team key version this device holds (0 when none).
  uint32_t current_key_version() const;

  // The first coordinator: creates a team with a fresh key (version 1).
  // kFailedPrecondition if this device already belongs to a team.
  Result<TeamId> CreateTeam();

  // The team id and every team key this device holds, sealed (X25519 sealed
  // box) to `recipient`: the way team keys travel to another device.
  Result<Bytes> SealTeamKeysFor(const PublicKey& recipient) const;
  // Opens a bundle sealed to this device and adds its keys to the vault.
  // kDecryptFailed if it was not sealed to this device; kPermissionDenied if
  // it is for a different team than the one this device belongs to.
  Status AcceptTeamKeys(std::span<const uint8_t> sealed);

  // Trusts `device`'s signing key for incoming writes. Writes from devices
  // not trusted here are refused.
  Status TrustDevice(const DeviceId& device, const DevicePublicKeys& keys);

  // ---- device registry (enlace/registry.h) -------------------------------------
  // The team's members as this device's checked registry and the invites it
  // admitted make them; kept current by sync.
  Result<std::vector<Member>> Members() const;

  // Coordinator changes to the registry. Each signs the next registry version
  // (with every device admitted by invite folded in) and keeps it to be sent
  // by the next sync round, which stores it on the hub or reports why not
  // (SyncProgress::registry_refused); until then nothing changes here.
  // kPermissionDenied unless this device is an active coordinator;
  // kFailedPrecondition before this device has a registry.
  //
  // Admits a device that joined by invite and waits for approval.
  Status ApproveDevice(const DeviceId& device);
  // Revokes a device: its writes after the highest write number of it this
  // device has seen are refused everywhere, the hub refuses its requests and
  // answers them with a notice that makes it wipe itself.
  Status RevokeDevice(const DeviceId& device);
  Status RenameDevice(const DeviceId& device, std::string_view name);
  // Whether devices joining by invite wait for a coordinator's approval.
  Status SetApprovalRequired(bool required);
  // Whether a registry change signed here has not reached the hub yet.
  Result<bool> RegistryChangePending() const;

  // Coordinator: makes a new team key version, used by every write from now
  // on, and seals it (X25519) to every active member in a signed grant sent
  // by the next sync. Revoked devices get nothing. Returns the new version.
  Result<uint32_t> RotateTeamKey();

  // Checks the body of a hub's 403 (RevokedNotice): true only when it holds
  // a registry chain, from this device's own registry, that revokes this
  // device; a hub cannot forge one. The caller then wipes the device.
  Result<bool> CheckRevokedNotice(std::span<const uint8_t> body);

  // ---- records ----------------------------------------------------------------
  // Sets `values` on a record: a new one (random id) when `id` is empty, or
  // the given one, new or existing. kInvalidArgument for a bad name or
  // value, for a collection in the reserved "enlace." namespace, and (with
  // ReplicaOptions::validate) for values the effective schema refuses, in
  // which case nothing is written; creating a record then also fills the
  // schema's defaults. kFailedPrecondition if the record is deleted (Restore
  // first).
  Result<RecordId> Put(std::string_view collection, std::optional<RecordId> id,
                       const Fields& values);

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
  // With ReplicaOptions::validate, `value` is checked like a Put's.
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

  // ---- schema and team overlay ---------------------------------------------------
  // The effective schema pack: SchemaPack::Builtin() extended by the team's
  // overlay, when the overlay record holds a valid overlay last written by a
  // coordinator (per the members this device knows); otherwise the newest
  // valid overlay seen before, or the built-in pack. Cached; recomputed when
  // the overlay record or the members change. The pack is owned by the
  // Replica and stays valid for its life (a later call may return another).
  // kIoError/kCorruption only when the store fails.
  Result<const SchemaPack*> Schema();

  // Publishes `overlay_json` (docs/SCHEMA.md) to the team as an ordinary
  // signed, encrypted write of the reserved record that travels by sync.
  // kPermissionDenied unless this device is a coordinator (it created the
  // team, or the hub lists it as one); kInvalidArgument when the overlay does
  // not apply to the built-in pack or its version is not greater than the
  // current overlay's. Nothing is written on error.
  Status PublishOverlay(std::string_view overlay_json);

  // Why the team overlay is not (fully) in effect, e.g. "the overlay written
  // by device 3f2a... was ignored: that device is not a coordinator; using
  // overlay version 2"; empty when the effective pack is the latest overlay
  // (or the built-in pack and no overlay was ever published).
  std::string OverlayStatus();

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
  std::unique_ptr<Impl> impl_;
  bool opened_under_duress_ = false;  // local safety
};

// ---- local safety ----

// Destroys the files `names` (plain names, no '/') in `dir`: each regular
// file is overwritten with random bytes, then zeros (same length), fsynced
// and unlinked; then the folder is fsynced. Missing files are fine; a
// symbolic link is unlinked without following it; folders are left. Every
// name is tried even after an error; returns the first error (kIoError).
// Does not reach copies the file system or flash controller keeps (see
// docs/THREAT_MODEL.md).
Status WipeFiles(const std::string& dir, const std::vector<std::string>& names);

// WipeFiles on every file a replica keeps in `dir`: vault.bin, store.db and
// its -wal/-shm/-journal files, overlay.write, unlock.state, and the
// temporary files their writers leave (*.tmp). The folder stays. The
// Replica on `dir` must be closed (destroyed) first, or not open at all: no
// passphrase is needed.
Status WipeReplicaFiles(const std::string& dir);

// The unlock back-off state of the replica in `dir` (unauthenticated).
struct UnlockThrottle {
  uint32_t failures = 0;    // consecutive wrong passphrases
  uint32_t wipe_after = 0;  // 0: never
  uint64_t wait_ms = 0;     // until the next attempt is allowed (0: now)
};
// Reads it without a passphrase; `now_ms` as from ReplicaOptions::clock.
UnlockThrottle ReadUnlockThrottle(const std::string& dir, uint64_t now_ms);
// ---- end of local safety ----

}  // namespace enlace

#endif  // ENLACE_REPLICA_H_
