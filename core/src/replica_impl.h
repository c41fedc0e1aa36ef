// Replica::Impl, shared by replica.cc and the modules built on it (the sync
// protocol). Everything here runs on the caller's thread.
#ifndef ENLACE_CORE_SRC_REPLICA_IMPL_H_
#define ENLACE_CORE_SRC_REPLICA_IMPL_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "enlace/registry.h"
#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/wire.h"
#include "merge.h"
#include "store.h"
#include "vault.h"

namespace enlace {

class Replica::Impl {
 public:
  Impl(ReplicaOptions options, std::unique_ptr<internal::Vault> vault,
       std::unique_ptr<internal::Store> store, HlcTimestamp last_hlc);

  const ReplicaOptions& options() const { return options_; }
  internal::Vault& vault() { return *vault_; }
  const internal::Vault& vault() const { return *vault_; }
  internal::Store& store() const { return *store_; }
  HybridClock& clock() { return clock_; }
  const DeviceId& device() const { return vault_->secrets().device; }

  // The team key of `version`, or kDecryptFailed naming the missing version.
  Result<const internal::SecretBytes*> TeamKey(uint32_t version) const;
  uint32_t CurrentKeyVersion() const;
  // The key of DeriveRecordId, derived from the first team key once (a
  // guarded allocation per row would dominate an import).
  Result<const internal::SecretBytes*> RecordIdKey() const;

  // Creates, seals, signs and merges one local write, and queues it in the
  // outbox. Must run inside a transaction. `values` are canonical JSON, one
  // per field of `fields` (sorted, unique).
  // `context` overrides the record's context (re-stamping); `written`
  // receives the new write's dot.
  Status WriteLocal(const internal::RecordKey& key, WriteKind kind,
                    const std::vector<std::string>& fields, const std::vector<std::string>& values,
                    const VersionVector* context = nullptr, Dot* written = nullptr);

  // A device whose clock ran ahead made writes that the hub and other
  // devices refuse as too far in the future. Once its clock is corrected
  // (FollowHubClock), this replaces every unsent own write stamped more than
  // `margin_ms` ahead with a fresh write of the values it still holds, whose
  // context covers exactly what the old writes covered; the old ones are then
  // superseded and leave the outbox. Nothing is lost and no conflict is
  // added or hidden. Must run inside a transaction. Returns writes made.
  Result<size_t> RestampFutureWrites(uint64_t margin_ms);

  // Checks and merges a decoded remote write. Must run inside a transaction.
  Result<ApplyOutcome> ApplyChecked(const Write& write, const Bytes& encoded);

  // Decodes and verifies an incoming write without changing anything.
  Result<Write> DecodeAndVerify(std::span<const uint8_t> encoded);
  // The same for a batch, one result per write in order; signatures and
  // payloads are checked on up to 4 threads when the batch is large.
  std::vector<Result<Write>> DecodeAndVerifyAll(const std::vector<Bytes>& encoded);

  // The team id and keys in one guarded buffer (how team keys travel), and
  // the inverse: adds a received bundle's keys to the vault.
  Result<internal::SecretBytes> TeamKeyBundle() const;
  Status AdoptTeamKeyBundle(const internal::SecretBytes& bundle);

  // Builds the public view of a record from its state (decrypting values).
  Result<Record> BuildRecord(const internal::RecordKey& key,
                             const internal::RecordState& state) const;

  // ---- device registry (trust.cc) ----
  // The newest registry this device checked; nullopt before it has one.
  Result<std::optional<Registry>> LoadRegistry() const;
  // Makes `anchor` this device's first registry, without a chain: the
  // founder's own genesis, or the one a coordinator put in an invite
  // envelope (which the hub cannot read or change). It must be signed by a
  // coordinator it lists. Must run inside a transaction.
  Status AdoptAnchorRegistry(const Registry& anchor);
  // Checks and applies a trust update (registry chain, admissions) and
  // recomputes the members. Must run inside a transaction.
  Status ApplyTrust(const TrustUpdate& update);
  // Signs `next` with this device's key (next.signer = this device).
  void SignRegistry(Registry& next) const;
  // Opens the key grants addressed to this device and adds their keys to the
  // vault; grants that fail the checks are skipped (returns how many).
  Result<size_t> AcceptKeyGrants(const std::vector<Bytes>& grants);
  // Seals every team key this device holds to each of `devices` that is an
  // active member, signs a grant per device and queues it for the hub.
  Status QueueKeyGrantsFor(const std::vector<DeviceId>& devices);
  // The registry a coordinator would sign next: the current one with every
  // valid, non-pending admission folded in as an entry.
  Result<Registry> DraftRegistry();
  // True when this device's registry lists it as an active coordinator (a
  // coordinator admitted by invite becomes one once a registry lists it).
  Result<bool> IsRegistryCoordinator() const;
  // A registry coordinator folds the devices admitted by invite (not those
  // waiting for approval) into a new registry version, to be sent by the
  // next round; nothing when none is new or a change is already queued.
  // Must run inside a transaction.
  Status FoldAdmissions();

  // ---- schema (see Replica::Schema) ----
  // The devices whose overlay writes count: coordinators the members table
  // lists and does not mark revoked, and this device when it created the team.
  Result<std::set<DeviceId>> Coordinators();
  // The effective pack, recomputed when the overlay record, the coordinators
  // or the kept overlay change; also sets overlay_status().
  Result<const SchemaPack*> EffectiveSchema();
  const std::string& overlay_status() const { return overlay_status_; }

 private:
  // Merges `write` into its record, stores it, purges what it superseded.
  // `loaded`: the record's state when the caller has just read it (taken).
  Result<ApplyOutcome> Merge(const Write& write, const Bytes& encoded,
                             std::optional<internal::RecordState>* loaded = nullptr);
  // Writes decrypted while building one record, by dot.
  struct OpenedWrite {
    WriteKind kind;
    std::vector<std::string> fields;
    std::vector<std::string> values;
  };
  using OpenedWrites = std::map<Dot, OpenedWrite>;
  // The value a sibling holds for `field` (decrypting its write once).
  Result<std::string> SiblingValueOf(const std::string& field, const internal::Sibling& s,
                                     OpenedWrites& opened) const;
  Status PersistClock();

  // A merged write of the overlay record: when it comes from a coordinator
  // and holds a valid overlay newer than the kept one, keeps its encoded
  // bytes (ciphertext, as the hub stores it) in `overlay.write` beside the
  // store, so that a later write by a non-coordinator, which supersedes it in
  // the record, cannot take the team back to the base pack. Best effort.
  void NoteOverlayWrite(const Write& write, const Bytes& encoded);
  // The overlay of a kept or stored write: verified, from a coordinator,
  // applied to the built-in pack. kPermissionDenied / kInvalidArgument say why not.
  Result<SchemaPack> OverlayFromWrite(const Write& write, const std::set<DeviceId>& coordinators);
  Status KeepOverlayWrite(const Bytes& encoded, uint32_t version);
  // Loads `overlay.write` once.
  void LoadKeptOverlay();

  ReplicaOptions options_;
  mutable std::optional<internal::SecretBytes> record_id_key_;
  std::unique_ptr<internal::Vault> vault_;
  std::unique_ptr<internal::Store> store_;
  HybridClock clock_;

  // Every pack EffectiveSchema computed (pointers handed out stay valid).
  std::vector<std::unique_ptr<const SchemaPack>> packs_;
  const SchemaPack* effective_ = nullptr;
  std::string schema_fingerprint_;
  std::string overlay_status_;
  bool kept_loaded_ = false;
  std::optional<Bytes> kept_overlay_;  // the encoded write in overlay.write
  uint32_t kept_version_ = 0;          // its overlay version (0: none, or unusable)
};

// Parses a JSON text and returns its canonical form; kInvalidArgument unless
// it is a scalar or an array of scalars no longer than 64 KiB.
Result<std::string> CanonicalValue(std::string_view json, std::string_view field);

}  // namespace enlace

#endif  // ENLACE_CORE_SRC_REPLICA_IMPL_H_
