// Replica::Impl, shared by replica.cc and the layers built on it: trust
// (trust/team_impl.h), the sync protocol and case work's team schema.
// Everything here runs on the caller's thread.
#ifndef ENLACE_CORE_REPLICA_REPLICA_IMPL_H_
#define ENLACE_CORE_REPLICA_REPLICA_IMPL_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/vault.h"
#include "enlace/replica.h"
#include "replica/merge.h"
#include "replica/store.h"

namespace enlace {

class Replica::Impl {
 public:
  Impl(ReplicaOptions options, std::unique_ptr<internal::Vault> vault,
       std::unique_ptr<internal::Store> store, HlcTimestamp last_hlc);

  // The Replica this belongs to (handed to the hook) and its hook, or null.
  Replica& owner() const { return *owner_; }
  void set_owner(Replica* owner) { owner_ = owner; }
  ReplicaHook* hook() const { return hook_.get(); }
  void set_hook(std::unique_ptr<ReplicaHook> hook) { hook_ = std::move(hook); }

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
  // receives the new write's dot. The write is in the record's scope; a
  // new record's is `new_scope` (the team's when null).
  Status WriteLocal(const internal::RecordKey& key, WriteKind kind,
                    const std::vector<std::string>& fields, const std::vector<std::string>& values,
                    const VersionVector* context = nullptr, Dot* written = nullptr,
                    const ScopeId* new_scope = nullptr);
  // A field device keeps no record of a scope its registry entry does not
  // list (`held`; the team's scope is always held): each such record leaves
  // the device with its writes, and own unsent writes of it become voids.
  // Must run inside a transaction. Returns the records removed.
  Result<size_t> ForgetScopesNotHeld(const std::vector<ScopeId>& held);

  // A device whose clock ran ahead made writes that the hub and other
  // devices refuse as too far in the future. Once its clock is corrected
  // (FollowHubClock), this replaces every unsent own write stamped more than
  // `margin_ms` ahead with a fresh write of the values it still holds, whose
  // context covers exactly what the old writes covered; the old ones are then
  // superseded and leave the outbox. Nothing is lost and no conflict is
  // added or hidden. With `stale_keys`, writes sealed under a team key older
  // than the newest held are made again the same way (sealed under it).
  // Must run inside a transaction. Returns writes made.
  Result<size_t> RestampFutureWrites(uint64_t margin_ms, bool stale_keys = false);

  // The first own write number this device accounts for (kMetaAccountedFrom).
  Result<uint64_t> AccountedFrom() const;
  // Makes, stores and queues the void write of own number `counter` (an own
  // write never sent, or one the hub lacks and this device no longer
  // holds). It keeps the place of the write it replaces in that write's
  // scope (`scope`, `scope_prev`); a number this device no longer holds
  // goes in the team's scope. Must run inside a transaction.
  Status VoidOwn(uint64_t counter, const ScopeId& scope = {}, uint64_t scope_prev = 0);
  // VoidOwn in the place of the own write or void of `counter` this device
  // stores (the team's scope when it stores neither).
  Status VoidOwnAgain(uint64_t counter);
  // The hub holds only this device's numbers up to `above`: queues again
  // every own write and void above it, and voids the numbers this device
  // no longer holds. Must run inside a transaction. Returns the entries
  // queued.
  Result<uint64_t> RequeueOwnAbove(uint64_t above);

  // Checks and merges a decoded remote write. Must run inside a transaction.
  Result<ApplyOutcome> ApplyChecked(const Write& write, const Bytes& encoded);

  // Decodes and verifies an incoming write without changing anything.
  Result<Write> DecodeAndVerify(std::span<const uint8_t> encoded);
  // The same for a batch, one result per write in order; signatures and
  // payloads are checked on up to 4 threads when the batch is large.
  std::vector<Result<Write>> DecodeAndVerifyAll(const std::vector<Bytes>& encoded);

  // Builds the public view of a record from its state (decrypting values).
  Result<Record> BuildRecord(const internal::RecordKey& key,
                             const internal::RecordState& state) const;

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

  ReplicaOptions options_;
  mutable std::optional<internal::SecretBytes> record_id_key_;
  mutable uint64_t accounted_from_ = 0;  // cached kMetaAccountedFrom
  std::unique_ptr<internal::Vault> vault_;
  std::unique_ptr<internal::Store> store_;
  HybridClock clock_;
  Replica* owner_ = nullptr;
  std::unique_ptr<ReplicaHook> hook_;
};

// The longest value a field may hold, as JSON text.
inline constexpr size_t kMaxValueBytes = 64 * 1024;

// Parses a JSON text and returns its canonical form; kInvalidArgument unless
// it is a scalar or an array of scalars no longer than kMaxValueBytes.
Result<std::string> CanonicalValue(std::string_view json, std::string_view field);

}  // namespace enlace

#endif  // ENLACE_CORE_REPLICA_REPLICA_IMPL_H_
