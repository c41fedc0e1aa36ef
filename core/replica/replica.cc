#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "base/codec.h"
#include "base/parallel.h"
#include "crypto/unlock_guard.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"

namespace enlace {

using internal::RecordKey;
using internal::RecordState;
using internal::SecretBytes;
using internal::Sibling;

namespace {

constexpr char kMetaCounter[] = "write_counter";
constexpr char kMetaHlc[] = "hlc";
constexpr char kTrue[] = "true";
constexpr char kFalse[] = "false";
constexpr char kNull[] = "null";

std::string VaultPath(const ReplicaOptions& o) {
  return (std::filesystem::path(o.dir) / "vault.bin").string();
}
std::string StorePath(const ReplicaOptions& o) {
  return o.in_memory_store ? ":memory:" : (std::filesystem::path(o.dir) / "store.db").string();
}

internal::PwhashParams ToParams(const KdfCost& c) { return {c.opslimit, c.memlimit}; }

// The store's trust seal (replica/store.h) under a key from `vault`'s local
// key. A store in memory (tests) cannot be edited behind the device's back
// and outlives no process: the vault records none of its generations.
internal::Store::SealOptions SealOptionsFor(internal::Vault& vault, const ReplicaOptions& o) {
  internal::Store::SealOptions seal;
  seal.key =
      internal::DeriveSubkey(vault.secrets().local_key, 1, "enlseal1", internal::kSealKeyBytes);
  seal.device = vault.secrets().device;
  if (!o.in_memory_store) {
    seal.vault_generation = vault.secrets().seal_generation;
    // Best effort: a vault that misses a generation catches up on the next
    // open (Store::CheckSeal).
    seal.on_sealed = [v = &vault](uint64_t generation) { (void)v->SetSealGeneration(generation); };
  }
  return seal;
}

Status EnsureDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("no folder given for the replica");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

// The existence register's value for a write of `kind`.
const char* ExistenceValue(WriteKind kind) { return kind == WriteKind::kPut ? kFalse : kTrue; }

std::vector<std::string> WithExistence(std::vector<std::string> fields) {
  fields.push_back(kDeletedField);
  return fields;
}

}  // namespace

Result<std::string> CanonicalValue(std::string_view json, std::string_view field) {
  const std::string where = "value of '" + std::string(field) + "'";
  if (json.size() > kMaxValueBytes) {
    return Status::InvalidArgument(where + " is longer than 64 KiB");
  }
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(where + " is not valid JSON");
  if (j.is_object()) return Status::InvalidArgument(where + " must be a scalar or an array");
  if (j.is_array()) {
    for (const auto& e : j) {
      if (e.is_object() || e.is_array()) {
        return Status::InvalidArgument(where + ": array elements must be scalars");
      }
    }
  }
  return j.dump();
}

// ---- Impl -----------------------------------------------------------------------------

Replica::Impl::Impl(ReplicaOptions options, std::unique_ptr<internal::Vault> vault,
                    std::unique_ptr<internal::Store> store, HlcTimestamp last_hlc)
    : options_(std::move(options)),
      vault_(std::move(vault)),
      store_(std::move(store)),
      clock_(options_.clock, last_hlc) {}

Result<const SecretBytes*> Replica::Impl::TeamKey(uint32_t version) const {
  const auto& keys = vault_->secrets().team_keys;
  auto it = keys.find(version);
  if (it == keys.end()) {
    return Status::DecryptFailed("this device does not hold team key version " +
                                 std::to_string(version));
  }
  return &it->second;
}

Result<const SecretBytes*> Replica::Impl::RecordIdKey() const {
  if (!record_id_key_) {
    const auto& keys = vault_->secrets().team_keys;
    if (keys.empty()) return Status::FailedPrecondition("this device has no team yet");
    record_id_key_ =
        internal::DeriveSubkey(keys.begin()->second, 1, "recordid", internal::kKdfKeyBytes);
  }
  return &*record_id_key_;
}

uint32_t Replica::Impl::CurrentKeyVersion() const {
  const auto& keys = vault_->secrets().team_keys;
  return keys.empty() ? 0 : keys.rbegin()->first;
}

Status Replica::Impl::PersistClock() { return store_->SetMeta(kMetaHlc, clock_.last().value); }

Status Replica::Impl::WriteLocal(const RecordKey& key, WriteKind kind,
                                 const std::vector<std::string>& fields,
                                 const std::vector<std::string>& values,
                                 const VersionVector* context, Dot* written,
                                 const ScopeId* new_scope) {
  const auto& secrets = vault_->secrets();
  if (secrets.team.IsZero() || secrets.team_keys.empty()) {
    return Status::FailedPrecondition("this device has no team yet");
  }
  ENLACE_ASSIGN_OR_RETURN(auto state, store_->LoadRecord(key));
  ENLACE_ASSIGN_OR_RETURN(uint64_t counter, store_->GetMeta(kMetaCounter));
  ++counter;

  Write w;
  w.team = secrets.team;
  w.collection = key.collection;
  w.record = key.record;
  w.dot = Dot{secrets.device, counter};
  w.hlc = clock_.Now();
  if (context != nullptr) {
    w.context = *context;
  } else if (state) {
    w.context = state->context;
  }
  w.fields = fields;
  w.kind = kind;
  w.key_version = CurrentKeyVersion();
  ENLACE_ASSIGN_OR_RETURN(w.accounted_from, AccountedFrom());
  // A record stays in the scope of its first write (§6.12).
  if (state) {
    w.scope = state->scope;
  } else if (new_scope != nullptr) {
    w.scope = *new_scope;
  }
  ENLACE_ASSIGN_OR_RETURN(w.scope_prev, store_->OwnScopeHead(w.scope));
  ENLACE_ASSIGN_OR_RETURN(const SecretBytes* team_key, TeamKey(w.key_version));
  ENLACE_RETURN_IF_ERROR(internal::SealWrite(w, values, *team_key, secrets.signing.secret_key));
  const Bytes encoded = w.Encode();

  ENLACE_RETURN_IF_ERROR(store_->SetMeta(kMetaCounter, counter));
  ENLACE_RETURN_IF_ERROR(store_->SetOwnScopeHead(w.scope, counter));
  ENLACE_RETURN_IF_ERROR(PersistClock());
  ENLACE_ASSIGN_OR_RETURN(ApplyOutcome outcome, Merge(w, encoded, &state));
  if (outcome != ApplyOutcome::kApplied) return Status::Internal("own write was not applied");
  if (written != nullptr) *written = w.dot;
  return store_->AddToOutbox(counter);
}

Result<uint64_t> Replica::Impl::AccountedFrom() const {
  if (accounted_from_ == 0) {
    ENLACE_ASSIGN_OR_RETURN(accounted_from_, store_->GetMeta(internal::kMetaAccountedFrom));
    if (accounted_from_ == 0)
      return Status::Corruption("the local store has no accounted-from number");
  }
  return accounted_from_;
}

Status Replica::Impl::VoidOwn(uint64_t counter, const ScopeId& scope, uint64_t scope_prev) {
  const auto& secrets = vault_->secrets();
  Write w;
  w.team = secrets.team;
  w.collection = kVoidCollection;
  w.dot = Dot{secrets.device, counter};
  w.hlc = clock_.Now();
  w.kind = WriteKind::kVoid;
  w.key_version = CurrentKeyVersion();
  ENLACE_ASSIGN_OR_RETURN(w.accounted_from, AccountedFrom());
  w.scope = scope;
  // A place before accounted_from promised nothing: the void promises
  // nothing either.
  w.scope_prev = scope_prev >= w.accounted_from && scope_prev < counter ? scope_prev : 0;
  ENLACE_ASSIGN_OR_RETURN(const SecretBytes* team_key, TeamKey(w.key_version));
  ENLACE_RETURN_IF_ERROR(internal::SealWrite(w, {}, *team_key, secrets.signing.secret_key));
  ENLACE_RETURN_IF_ERROR(PersistClock());
  ENLACE_RETURN_IF_ERROR(store_->PutVoid(counter, w.Encode()));
  return store_->AddToOutbox(counter);
}

Status Replica::Impl::VoidOwnAgain(uint64_t counter) {
  // The stored write or void of that number, whose place the void keeps.
  ENLACE_ASSIGN_OR_RETURN(auto bytes, store_->OwnEncoded(device(), counter));
  if (!bytes) return VoidOwn(counter);
  ENLACE_ASSIGN_OR_RETURN(Write old, Write::Decode(*bytes, options_.limits));
  return VoidOwn(counter, old.scope, old.scope_prev);
}

Result<size_t> Replica::Impl::ForgetScopesNotHeld(const std::vector<ScopeId>& held) {
  ENLACE_ASSIGN_OR_RETURN(auto scoped, store_->ScopedRecords());
  size_t forgotten = 0;
  for (const auto& [key, scope] : scoped) {
    if (std::find(held.begin(), held.end(), scope) != held.end()) continue;
    // Own unsent writes of the record keep their numbers' places as voids.
    ENLACE_ASSIGN_OR_RETURN(const std::vector<Dot> dots, store_->DotsOf(key));
    for (const Dot& dot : dots) {
      if (dot.device != device()) continue;
      ENLACE_ASSIGN_OR_RETURN(const bool unsent, store_->InOutbox(dot.counter));
      if (unsent) ENLACE_RETURN_IF_ERROR(VoidOwnAgain(dot.counter));
    }
    ENLACE_RETURN_IF_ERROR(store_->ForgetRecord(key));
    ++forgotten;
  }
  return forgotten;
}

Result<uint64_t> Replica::Impl::RequeueOwnAbove(uint64_t above) {
  ENLACE_ASSIGN_OR_RETURN(const uint64_t issued, store_->GetMeta(kMetaCounter));
  uint64_t requeued = 0;
  ENLACE_ASSIGN_OR_RETURN(auto missing,
                          store_->RequeueOwnAbove(device(), above, issued, &requeued));
  for (uint64_t counter : missing) ENLACE_RETURN_IF_ERROR(VoidOwn(counter));
  return requeued + missing.size();
}

Result<size_t> Replica::Impl::RestampFutureWrites(uint64_t margin_ms, bool stale_keys) {
  const uint64_t wall = clock_.WallMs();
  const uint64_t limit = wall + margin_ms;
  const uint32_t newest_key = CurrentKeyVersion();
  // No write of this device is stamped later than its clock has ever been:
  // when that is within the margin, there is nothing to scan (the common
  // case; scanning the whole outbox every round made pushing quadratic).
  if (!stale_keys && clock_.last().physical_ms() <= limit) return size_t{0};
  // Own unsent writes stamped in the future, grouped by record, in counter order.
  struct Stamped {
    std::set<Dot> dots;
    Dot last_dot;
    VersionVector last_context;
  };
  std::map<RecordKey, Stamped> future;
  std::vector<uint64_t> voids;
  ENLACE_ASSIGN_OR_RETURN(auto pending, store_->PendingWrites(device(), SIZE_MAX));
  for (const auto& [counter, bytes] : pending) {
    ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode(bytes, options_.limits));
    if (w.hlc.physical_ms() <= limit && !(stale_keys && w.key_version < newest_key)) continue;
    if (w.kind == WriteKind::kVoid) {
      voids.push_back(counter);  // made again under its own number
      continue;
    }
    Stamped& st = future[RecordKey{w.collection, w.record}];
    st.dots.insert(w.dot);
    st.last_dot = w.dot;
    st.last_context = std::move(w.context);
  }
  if (future.empty() && voids.empty()) return size_t{0};
  if (clock_.last().physical_ms() > limit) clock_.RewindTo(HlcTimestamp::From(wall, 0));

  size_t written = voids.size();
  for (uint64_t counter : voids) ENLACE_RETURN_IF_ERROR(VoidOwnAgain(counter));
  for (const auto& [key, st] : future) {
    ENLACE_ASSIGN_OR_RETURN(auto state, store_->LoadRecord(key));
    if (!state) continue;
    // The values this device's future-stamped writes still hold, re-written
    // as one write whose context covers exactly what they covered.
    OpenedWrites opened;
    std::vector<std::string> fields, values;
    std::optional<WriteKind> existence;
    for (const auto& [field, siblings] : state->fields) {
      for (const Sibling& sib : siblings) {
        if (!st.dots.contains(sib.dot)) continue;
        ENLACE_ASSIGN_OR_RETURN(std::string v, SiblingValueOf(field, sib, opened));
        if (field == kDeletedField) {
          existence = opened.at(sib.dot).kind;
        } else {
          fields.push_back(field);
          values.push_back(std::move(v));
        }
      }
    }
    if (!existence && fields.empty()) continue;
    VersionVector context = st.last_context;
    context.Add(st.last_dot);
    const WriteKind kind = existence.value_or(WriteKind::kPut);
    if (kind == WriteKind::kDelete) {
      // A delete carries no fields: put the live values first, then delete.
      if (!fields.empty()) {
        Dot put_dot;
        ENLACE_RETURN_IF_ERROR(
            WriteLocal(key, WriteKind::kPut, fields, values, &context, &put_dot));
        context.Add(put_dot);
        ++written;
      }
      ENLACE_RETURN_IF_ERROR(WriteLocal(key, WriteKind::kDelete, {}, {}, &context, nullptr));
    } else {
      ENLACE_RETURN_IF_ERROR(WriteLocal(key, kind, fields, values, &context, nullptr));
    }
    ++written;
  }
  ENLACE_RETURN_IF_ERROR(PersistClock());
  return written;
}

namespace {

// One incoming write after the checks that read this replica's state (run
// in order on the caller's thread), with what the remaining, state-free
// checks need. Their statuses are kept, not returned, so that every write
// fails with the first check it fails in the documented order.
struct IncomingCheck {
  Result<Write> write = Status::Internal("not decoded");
  internal::SignPublicKey signer{};
  Status drift;
  Result<const SecretBytes*> key = Status::Internal("no key looked up");
};

// Signature, then clock drift and key, then the payload: decrypts and
// checks every value is canonical JSON. Touches nothing shared.
Result<Write> FinishCheck(IncomingCheck& c) {
  if (!c.write.ok()) return c.write.status();
  Write& w = *c.write;
  ENLACE_RETURN_IF_ERROR(internal::VerifyWriteSignature(w, c.signer));
  ENLACE_RETURN_IF_ERROR(c.drift.WithContext("write refused"));
  if (!c.key.ok()) return c.key.status();
  ENLACE_ASSIGN_OR_RETURN(auto values, internal::OpenWritePayload(w, **c.key));
  for (size_t i = 0; i < values.size(); ++i) {
    auto canonical = CanonicalValue(values[i], w.fields[i]);
    if (!canonical.ok() || *canonical != values[i]) {
      return Status::Corruption("write holds a value that is not canonical JSON");
    }
    if (w.kind == WriteKind::kErase && values[i] != kNull) {
      return Status::Corruption("an erase write may only hold null values");
    }
  }
  return std::move(w);
}

// Below this many writes a second thread costs more than it saves.
constexpr size_t kParallelFrom = 32;

}  // namespace

std::vector<Result<Write>> Replica::Impl::DecodeAndVerifyAll(const std::vector<Bytes>& encoded) {
  std::vector<IncomingCheck> checks(encoded.size());
  std::map<DeviceId, Result<std::optional<internal::Store::Writer>>> writers;
  const auto& secrets = vault_->secrets();
  for (size_t i = 0; i < encoded.size(); ++i) {
    IncomingCheck& c = checks[i];
    c.write = [&]() -> Result<Write> {
      ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode(encoded[i], options_.limits));
      if (secrets.team.IsZero() || w.team != secrets.team) {
        return Status::PermissionDenied("write belongs to another team");
      }
      auto found = writers.find(w.dot.device);
      if (found == writers.end()) {
        found = writers.emplace(w.dot.device, store_->GetWriter(w.dot.device)).first;
      }
      if (!found->second.ok()) return found->second.status();
      const auto& writer = *found->second;
      if (!writer) {
        return Status::PermissionDenied("write from an unknown device " + w.dot.device.ToHex());
      }
      if (writer->member && writer->pending) {
        return Status::PermissionDenied("write from device " + w.dot.device.ToHex().substr(0, 8) +
                                        ", which waits for a coordinator's approval");
      }
      if (writer->member && writer->revoked && w.dot.counter > writer->revoked_after) {
        return Status::PermissionDenied("write from device " + w.dot.device.ToHex().substr(0, 8) +
                                        " after its revocation");
      }
      c.signer = writer->signing_key;
      c.drift = clock_.CheckDrift(w.hlc);
      c.key = TeamKey(w.key_version);
      return w;
    }();
  }
  std::vector<Result<Write>> out(encoded.size(), Status::Internal("not checked"));
  internal::ParallelFor(checks.size(), kParallelFrom, 4,
                        [&](size_t i) { out[i] = FinishCheck(checks[i]); });
  return out;
}

Result<Write> Replica::Impl::DecodeAndVerify(std::span<const uint8_t> encoded) {
  auto all = DecodeAndVerifyAll({Bytes(encoded.begin(), encoded.end())});
  return std::move(all.front());
}

Result<ApplyOutcome> Replica::Impl::ApplyChecked(const Write& w, const Bytes& encoded) {
  // A write may not claim to have seen writes this device never made: that
  // would make every later local edit of the record look already seen.
  ENLACE_ASSIGN_OR_RETURN(uint64_t issued, store_->GetMeta(kMetaCounter));
  if (w.dot.device != device() && w.context.Get(device()) > issued) {
    return Status::Corruption("write claims to have seen writes this device never made");
  }
  // A void changes no record: its number is accounted for (the caller
  // notes it), whatever this device holds under that number.
  if (w.kind == WriteKind::kVoid) return ApplyOutcome::kAlreadySeen;
  // One dot, one write: a device restored from an old backup may reuse a
  // counter for different content, which must not be merged.
  ENLACE_ASSIGN_OR_RETURN(auto stored, store_->GetWrite(w.dot));
  if (stored && stored->encoded != encoded) {
    return Status::Corruption("write number " + w.dot.device.ToHex().substr(0, 8) + ":" +
                              std::to_string(w.dot.counter) +
                              " was reused for different content (a device restored from an "
                              "old backup?)");
  }
  ENLACE_RETURN_IF_ERROR(clock_.Observe(w.hlc));
  ENLACE_ASSIGN_OR_RETURN(ApplyOutcome outcome, Merge(w, encoded));
  if (outcome == ApplyOutcome::kApplied) {
    ENLACE_RETURN_IF_ERROR(PersistClock());
    if (w.dot.device == device()) {
      // Our own write coming back (e.g. after a restore): never reuse its dot.
      ENLACE_ASSIGN_OR_RETURN(uint64_t counter, store_->GetMeta(kMetaCounter));
      if (w.dot.counter > counter)
        ENLACE_RETURN_IF_ERROR(store_->SetMeta(kMetaCounter, w.dot.counter));
    }
  }
  return outcome;
}

Result<ApplyOutcome> Replica::Impl::Merge(const Write& w, const Bytes& encoded,
                                          std::optional<RecordState>* loaded) {
  const RecordKey key{w.collection, w.record};
  std::optional<RecordState> own_load;
  if (loaded == nullptr) {
    ENLACE_ASSIGN_OR_RETURN(own_load, store_->LoadRecord(key));
    loaded = &own_load;
  }
  // A record keeps the scope of its first write: a write naming another
  // would reach other readers than the record's (§6.12).
  if (*loaded) {
    const ScopeId& held = (*loaded)->scope;
    if (held != w.scope) {
      return Status::Corruption("the write is in scope " + w.scope.ToHex().substr(0, 8) +
                                " but its record is in scope " + held.ToHex().substr(0, 8));
    }
  } else if (!w.scope.IsZero()) {
    ENLACE_RETURN_IF_ERROR(store_->SetRecordScope(key, w.scope));
  }
  RecordState state;
  if (*loaded) {
    state = std::move(**loaded);
  } else {
    state.scope = w.scope;
  }
  const std::set<Dot> live_before = internal::LiveDots(state);
  if (state.context.Covers(w.dot)) {
    // Seen, superseded, or late: a write that was kept aside (for its key,
    // or asked for again after an altered delivery) while writes that had
    // seen it were merged. Only a write never stored here can be late.
    ENLACE_ASSIGN_OR_RETURN(auto stored, store_->GetWrite(w.dot));
    if (stored) return ApplyOutcome::kAlreadySeen;
    std::map<Dot, std::optional<VersionVector>> contexts;
    Status failed;
    const auto saw = [&](const internal::Sibling& s, const Dot& dot) {
      auto it = contexts.find(s.dot);
      if (it == contexts.end()) {
        std::optional<VersionVector> context;
        auto sibling = store_->GetWrite(s.dot);
        if (!sibling.ok()) {
          failed = sibling.status();
        } else if (*sibling) {
          auto decoded = Write::Decode((*sibling)->encoded, options_.limits);
          if (decoded.ok()) context = std::move(decoded->context);
        }
        it = contexts.emplace(s.dot, std::move(context)).first;
      }
      return it->second && it->second->Covers(dot);
    };
    const bool changed =
        internal::ApplyLate(state, w.dot, w.hlc, w.context, WithExistence(w.fields), saw);
    ENLACE_RETURN_IF_ERROR(failed);
    if (!changed) return ApplyOutcome::kAlreadySeen;
  } else if (!internal::ApplyToRecord(state, w.dot, w.hlc, w.context, WithExistence(w.fields))) {
    return ApplyOutcome::kAlreadySeen;
  }
  ENLACE_RETURN_IF_ERROR(store_->SaveRecord(key, state));
  ENLACE_RETURN_IF_ERROR(store_->InsertWrite(w, encoded));
  // A write none of whose values is current any more is dropped here: no
  // replica needs it (DESIGN §2), and an erased value must leave the device.
  const std::set<Dot> live_after = internal::LiveDots(state);
  for (const Dot& dot : live_before) {
    if (live_after.contains(dot)) continue;
    ENLACE_ASSIGN_OR_RETURN(const bool unsent,
                            dot.device == device() ? store_->InOutbox(dot.counter) : false);
    if (unsent) {
      // An own write never sent: its number goes to the hub as a void, in
      // the write's place in its scope, so that every number this device
      // used reaches the hub (§6.11).
      ENLACE_RETURN_IF_ERROR(VoidOwnAgain(dot.counter));
    }
    ENLACE_RETURN_IF_ERROR(store_->DeleteWrite(dot));
  }
  if (hook_ && IsReservedCollection(w.collection)) hook_->OnReservedWrite(*owner_, w, encoded);
  return ApplyOutcome::kApplied;
}

Result<std::string> Replica::Impl::SiblingValueOf(const std::string& field, const Sibling& s,
                                                  OpenedWrites& opened) const {
  auto it = opened.find(s.dot);
  if (it == opened.end()) {
    ENLACE_ASSIGN_OR_RETURN(auto stored, store_->GetWrite(s.dot));
    if (!stored) return Status::Corruption("a current value's write is missing from the store");
    ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode(stored->encoded, options_.limits));
    ENLACE_ASSIGN_OR_RETURN(const SecretBytes* key, TeamKey(w.key_version));
    ENLACE_ASSIGN_OR_RETURN(auto values, internal::OpenWritePayload(w, *key));
    it = opened.emplace(s.dot, OpenedWrite{w.kind, std::move(w.fields), std::move(values)}).first;
  }
  const OpenedWrite& ow = it->second;
  if (field == kDeletedField) return std::string(ExistenceValue(ow.kind));
  for (size_t i = 0; i < ow.fields.size(); ++i) {
    if (ow.fields[i] == field) return ow.values[i];
  }
  return Status::Corruption("a sibling's write does not set its field");
}

Result<Record> Replica::Impl::BuildRecord(const RecordKey& key, const RecordState& state) const {
  Record r;
  r.collection = key.collection;
  r.id = key.record;
  OpenedWrites opened;
  for (const auto& [field, siblings] : state.fields) {
    FieldValue fv;
    for (const Sibling& s : siblings) {
      ENLACE_ASSIGN_OR_RETURN(std::string v, SiblingValueOf(field, s, opened));
      fv.siblings.push_back(SiblingValue{s.dot, s.hlc, std::move(v)});
    }
    const Sibling& shown = internal::ShownSibling(siblings);
    for (const auto& sv : fv.siblings) {
      if (sv.dot == shown.dot) fv.value = sv.value;
    }
    if (field == kDeletedField) {
      r.existence = std::move(fv.siblings);
      const bool any_deleted = std::any_of(r.existence.begin(), r.existence.end(),
                                           [](const SiblingValue& v) { return v.value == kTrue; });
      const bool any_live = std::any_of(r.existence.begin(), r.existence.end(),
                                        [](const SiblingValue& v) { return v.value == kFalse; });
      r.deleted = any_deleted && !any_live;
      r.delete_conflict = any_deleted && any_live;
    } else {
      r.fields.emplace(field, std::move(fv));
    }
  }
  return r;
}

// ---- Replica --------------------------------------------------------------------------

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->set_owner(this);
  if (impl_->options().hook) impl_->set_hook(impl_->options().hook());
}
Replica::~Replica() = default;

ReplicaHook* Replica::hook() const { return impl_->hook(); }
void Replica::SetHook(std::unique_ptr<ReplicaHook> hook) { impl_->set_hook(std::move(hook)); }
const ReplicaOptions& Replica::options() const { return impl_->options(); }

Result<std::unique_ptr<Replica>> Replica::Create(const ReplicaOptions& options,
                                                 std::string_view passphrase) {
  ENLACE_RETURN_IF_ERROR(internal::EnsureSodium());
  ENLACE_RETURN_IF_ERROR(EnsureDir(options.dir));
  internal::VaultSecrets secrets;
  secrets.device = DeviceId::Random();
  secrets.signing = internal::SigningKeyPair::Generate();
  secrets.box = internal::BoxKeyPair::Generate();
  secrets.local_key = SecretBytes::Random(internal::kLocalKeyBytes);
  ENLACE_ASSIGN_OR_RETURN(
      auto vault, internal::Vault::Create(VaultPath(options), passphrase, ToParams(options.kdf),
                                          std::move(secrets)));
  ENLACE_ASSIGN_OR_RETURN(
      auto store, internal::Store::OpenSealed(StorePath(options), SealOptionsFor(*vault, options)));
  const auto& s = vault->secrets();
  ENLACE_RETURN_IF_ERROR(store->PutDevice(s.device, s.signing.public_key, s.box.public_key));
  return std::unique_ptr<Replica>(new Replica(
      std::make_unique<Impl>(options, std::move(vault), std::move(store), HlcTimestamp{})));
}

Result<std::unique_ptr<Replica>> Replica::Open(const ReplicaOptions& options,
                                               std::string_view passphrase) {
  ENLACE_RETURN_IF_ERROR(internal::EnsureSodium());
  if (options.dir.empty()) return Status::InvalidArgument("no folder given for the replica");
  // Local safety: back-off, wipe-after-N and duress (unlock_guard.h).
  const uint64_t now_ms =
      options.clock.wall_clock ? options.clock.wall_clock() : SystemWallClockMs();
  internal::UnlockOutcome outcome = internal::UnlockOutcome::kOpened;
  ENLACE_ASSIGN_OR_RETURN(auto vault,
                          internal::UnlockGuarded(options.dir, passphrase, now_ms, outcome));
  if (outcome == internal::UnlockOutcome::kDuress) {
    ENLACE_RETURN_IF_ERROR(WipeReplicaFiles(options.dir));
    ENLACE_ASSIGN_OR_RETURN(auto fresh, Create(options, passphrase));
    fresh->opened_under_duress_ = true;
    return fresh;
  }
  // Files an older version left readable by others become the owner's alone.
  internal::MakeReplicaFilesPrivate(options.dir);
  // A stronger cost than the stored one re-wraps the vault now. Best effort:
  // on failure the file is intact and the raise is tried on the next unlock.
  (void)vault->RaiseParams(passphrase, ToParams(options.kdf), nullptr);
  // A vault from before the trust seal gets its local key on disk before
  // anything is sealed with it.
  ENLACE_RETURN_IF_ERROR(vault->EnsureLocalKey());
  ENLACE_ASSIGN_OR_RETURN(
      auto store, internal::Store::OpenSealed(StorePath(options), SealOptionsFor(*vault, options)));
  const auto& s = vault->secrets();
  ENLACE_RETURN_IF_ERROR(store->PutDevice(s.device, s.signing.public_key, s.box.public_key));
  ENLACE_ASSIGN_OR_RETURN(uint64_t hlc, store->GetMeta(kMetaHlc));
  ENLACE_ASSIGN_OR_RETURN(uint64_t offset, store->GetMeta(internal::kMetaClockOffset));
  auto impl =
      std::make_unique<Impl>(options, std::move(vault), std::move(store), HlcTimestamp{hlc});
  impl->clock().SetWallClockOffsetMs(static_cast<int64_t>(offset));
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

Status Replica::ChangePassphrase(std::string_view current, std::string_view next) {
  // Never weaker than the stored cost.
  const internal::PwhashParams stored = impl_->vault().params();
  const internal::PwhashParams wanted = ToParams(impl_->options().kdf);
  return impl_->vault().ChangePassphrase(
      current, next,
      {std::max(stored.opslimit, wanted.opslimit), std::max(stored.memlimit, wanted.memlimit)});
}

DeviceId Replica::device_id() const { return impl_->device(); }

DevicePublicKeys Replica::public_keys() const {
  const auto& s = impl_->vault().secrets();
  return DevicePublicKeys{s.signing.public_key, s.box.public_key};
}

TeamId Replica::team() const { return impl_->vault().secrets().team; }
uint32_t Replica::current_key_version() const { return impl_->CurrentKeyVersion(); }
HybridClock& Replica::clock() { return impl_->clock(); }

namespace {
Status CheckCollection(std::string_view collection) {
  return ValidateName(collection, "collection");
}

// Collections that records may be written to by hand: valid, not reserved.
Status CheckWritableCollection(std::string_view collection) {
  ENLACE_RETURN_IF_ERROR(CheckCollection(collection));
  if (IsReservedCollection(collection)) {
    return Status::InvalidArgument("collection '" + std::string(collection) +
                                   "' is reserved for enlace itself");
  }
  return Status::Ok();
}
}  // namespace

Result<RecordId> Replica::Put(std::string_view collection, std::optional<RecordId> id,
                              const Fields& values) {
  return PutIn(collection, id, values, nullptr);
}

Result<RecordId> Replica::Put(std::string_view collection, std::optional<RecordId> id,
                              const Fields& values, const ScopeId& scope) {
  return PutIn(collection, id, values, &scope);
}

Result<ScopeId> Replica::ScopeOf(std::string_view collection, const RecordId& id) {
  ENLACE_ASSIGN_OR_RETURN(auto state, impl_->store().LoadRecord({std::string(collection), id}));
  if (!state) return Status::NotFound("no such record on this device");
  return state->scope;
}

Result<RecordId> Replica::PutIn(std::string_view collection, std::optional<RecordId> id,
                                const Fields& values, const ScopeId* scope) {
  ENLACE_RETURN_IF_ERROR(CheckWritableCollection(collection));
  if (values.empty()) return Status::InvalidArgument("nothing to write: no fields given");
  Fields canonical_values;
  for (const auto& [field, value] : values) {
    ENLACE_RETURN_IF_ERROR(ValidateName(field, "field"));
    ENLACE_ASSIGN_OR_RETURN(std::string v, CanonicalValue(value, field));
    canonical_values.emplace(field, std::move(v));
  }
  const RecordKey key{std::string(collection), id ? *id : RecordId::Random()};
  auto& store = impl_->store();
  ENLACE_ASSIGN_OR_RETURN(auto tx, store.Begin());
  ENLACE_ASSIGN_OR_RETURN(auto state, store.LoadRecord(key));
  if (state) {
    if (scope != nullptr && state->scope != *scope) {
      return Status::InvalidArgument("the record is in another scope; a record keeps its scope");
    }
    ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
    if (r.deleted) return Status::FailedPrecondition("the record is deleted; restore it first");
    if (r.delete_conflict) {
      return Status::FailedPrecondition(
          "the record was deleted on one device and edited on another; confirm the delete or "
          "restore it first");
    }
  }
  if (ReplicaHook* hook = impl_->hook()) {
    ENLACE_RETURN_IF_ERROR(hook->CheckValues(*this, collection, !state, canonical_values));
  }
  std::vector<std::string> fields;
  std::vector<std::string> canonical;
  for (auto& [field, value] : canonical_values) {
    fields.push_back(field);
    canonical.push_back(std::move(value));
  }
  ENLACE_RETURN_IF_ERROR(
      impl_->WriteLocal(key, WriteKind::kPut, fields, canonical, nullptr, nullptr, scope));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return key.record;
}

Status Replica::RunBatch(const std::function<Status()>& body) {
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  ENLACE_RETURN_IF_ERROR(body());
  return tx->Commit();
}

Result<RecordId> Replica::DeriveRecordId(std::string_view collection, std::string_view key) const {
  ENLACE_ASSIGN_OR_RETURN(const SecretBytes* subkey, impl_->RecordIdKey());
  std::string message(collection);
  message.push_back('\0');
  message.append(key);
  const auto digest = internal::GenericHash(internal::AsBytes(message), subkey->view());
  RecordId id;
  std::copy_n(digest.begin(), id.bytes.size(), id.bytes.begin());
  return id;
}

Result<Record> Replica::Get(std::string_view collection, const RecordId& id,
                            bool include_deleted) const {
  const RecordKey key{std::string(collection), id};
  ENLACE_ASSIGN_OR_RETURN(auto state, impl_->store().LoadRecord(key));
  if (!state) return Status::NotFound("no record " + id.ToHex() + " in " + key.collection);
  ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
  if (r.deleted && !include_deleted) {
    return Status::NotFound("record " + id.ToHex() + " is deleted");
  }
  return r;
}

Result<std::vector<Record>> Replica::List(std::string_view collection) const {
  ENLACE_RETURN_IF_ERROR(CheckCollection(collection));
  ENLACE_ASSIGN_OR_RETURN(auto keys, impl_->store().ListRecords(collection));
  std::vector<Record> out;
  for (const auto& key : keys) {
    ENLACE_ASSIGN_OR_RETURN(auto state, impl_->store().LoadRecord(key));
    if (!state) continue;
    ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
    if (!r.deleted) out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Conflict>> Replica::Conflicts() const {
  ENLACE_ASSIGN_OR_RETURN(auto keys, impl_->store().RecordsWithSeveralSiblings());
  std::vector<Conflict> out;
  for (const auto& key : keys) {
    // Concurrent overlays are not for a person to resolve: publishing a new
    // overlay covers them (case work's TeamSchema picks the newest valid one).
    if (IsReservedCollection(key.collection)) continue;
    ENLACE_ASSIGN_OR_RETURN(auto state, impl_->store().LoadRecord(key));
    if (!state) continue;
    ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
    if (r.delete_conflict) {
      Conflict c{key.collection, key.record, kDeletedField, r.existence, {}};
      const Sibling& shown = internal::ShownSibling(state->fields[kDeletedField]);
      for (const auto& sv : r.existence) {
        if (sv.dot == shown.dot) c.shown = sv.value;
      }
      out.push_back(std::move(c));
    }
    for (auto& [field, fv] : r.fields) {
      if (fv.conflict())
        out.push_back(Conflict{key.collection, key.record, field, fv.siblings, fv.value});
    }
  }
  return out;
}

Status Replica::Resolve(std::string_view collection, const RecordId& id, std::string_view field,
                        std::string_view value) {
  if (field == kDeletedField) {
    ENLACE_ASSIGN_OR_RETURN(std::string v, CanonicalValue(value, field));
    if (v == kTrue) return Delete(collection, id);
    if (v == kFalse) return Restore(collection, id);
    return Status::InvalidArgument(
        "a delete conflict resolves to true (delete) or false (restore)");
  }
  ENLACE_ASSIGN_OR_RETURN(Record r, Get(collection, id, /*include_deleted=*/true));
  if (r.fields.find(std::string(field)) == r.fields.end()) {
    return Status::NotFound("record has no field '" + std::string(field) + "'");
  }
  ENLACE_RETURN_IF_ERROR(
      Put(collection, id, Fields{{std::string(field), std::string(value)}}).status());
  return Status::Ok();
}

namespace {
// A tombstone, restore or erase of an existing record, in one transaction:
// `write` sees the record as it is and writes (or refuses). kNotFound if the
// record was never written here.
template <typename F>
Status ChangeRecord(Replica::Impl& impl, std::string_view collection, const RecordId& id,
                    F&& write) {
  ENLACE_RETURN_IF_ERROR(CheckWritableCollection(collection));
  const RecordKey key{std::string(collection), id};
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(auto state, impl.store().LoadRecord(key));
  if (!state) return Status::NotFound("no record " + key.record.ToHex() + " in " + key.collection);
  ENLACE_ASSIGN_OR_RETURN(Record r, impl.BuildRecord(key, *state));
  ENLACE_RETURN_IF_ERROR(write(key, r));
  return tx->Commit();
}
}  // namespace

Status Replica::Delete(std::string_view collection, const RecordId& id) {
  return ChangeRecord(*impl_, collection, id, [this](const RecordKey& key, const Record& r) {
    if (r.deleted) return Status::FailedPrecondition("the record is already deleted");
    return impl_->WriteLocal(key, WriteKind::kDelete, {}, {});
  });
}

Status Replica::Restore(std::string_view collection, const RecordId& id) {
  return ChangeRecord(*impl_, collection, id, [this](const RecordKey& key, const Record& r) {
    if (!r.deleted && !r.delete_conflict) {
      return Status::FailedPrecondition("the record is not deleted");
    }
    return impl_->WriteLocal(key, WriteKind::kPut, {}, {});
  });
}

Status Replica::Erase(std::string_view collection, const RecordId& id) {
  return ChangeRecord(*impl_, collection, id, [this](const RecordKey& key, const Record& r) {
    std::vector<std::string> fields;
    for (const auto& [field, fv] : r.fields) fields.push_back(field);
    const std::vector<std::string> nulls(fields.size(), kNull);
    return impl_->WriteLocal(key, WriteKind::kErase, fields, nulls);
  });
}

Result<ApplyOutcome> Replica::ApplyRemote(std::span<const uint8_t> encoded_write) {
  ENLACE_ASSIGN_OR_RETURN(Write w, impl_->DecodeAndVerify(encoded_write));
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  ENLACE_ASSIGN_OR_RETURN(ApplyOutcome outcome, impl_->ApplyChecked(w, Bytes(encoded_write.begin(),
                                                                             encoded_write.end())));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return outcome;
}

Result<std::vector<std::pair<uint64_t, Bytes>>> Replica::PendingWrites(size_t max_bytes) const {
  return impl_->store().PendingWrites(impl_->device(), max_bytes);
}

Result<uint64_t> Replica::PendingCount() const { return impl_->store().PendingCount(); }

Status Replica::AcknowledgeUpTo(uint64_t up_to) { return impl_->store().AcknowledgeUpTo(up_to); }

Result<std::string> Replica::DumpState() const {
  ENLACE_ASSIGN_OR_RETURN(auto keys, impl_->store().ListRecords(""));
  std::ostringstream out;
  for (const auto& key : keys) {
    ENLACE_ASSIGN_OR_RETURN(auto state, impl_->store().LoadRecord(key));
    if (!state) continue;
    ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
    out << "record " << key.collection << ' ' << key.record.ToHex() << " context";
    for (const auto& [device, counter] : state->context.entries()) {
      out << ' ' << device.ToHex() << ':' << counter;
    }
    out << '\n';
    auto dump_field = [&out](const std::string& name, const std::vector<SiblingValue>& siblings) {
      out << "  " << name;
      for (const auto& s : siblings) {
        out << ' ' << s.dot.device.ToHex() << ':' << s.dot.counter << '@' << s.hlc.value << '='
            << s.value;
      }
      out << '\n';
    };
    dump_field(kDeletedField, r.existence);
    for (const auto& [field, fv] : r.fields) dump_field(field, fv.siblings);
  }
  return out.str();
}

Result<std::vector<Bytes>> Replica::StoredWrites() const { return impl_->store().AllWrites(); }

// ---- sealed settings ----------------------------------------------------------------------

Result<std::map<std::string, std::string>> Replica::SealedSettings() const {
  return impl_->store().SealedSettings();
}

Status Replica::SetSealedSettings(const std::map<std::string, std::string>& settings) {
  return impl_->store().ReplaceSealedSettings(settings);
}

LocalTamper LocalTamperOf(const Status& open_status) {
  if (open_status.code() != StatusCode::kCorruption) return LocalTamper::kNone;
  const std::string_view m = open_status.message();
  if (m.starts_with(internal::kSealAlteredMessage)) return LocalTamper::kAltered;
  if (m.starts_with(internal::kSealMissingMessage)) return LocalTamper::kSealMissing;
  if (m.starts_with(internal::kSealRolledBackMessage)) return LocalTamper::kRolledBack;
  return LocalTamper::kNone;
}

// ---- local safety -----------------------------------------------------------------------

Status Replica::SetDuressPassphrase(std::string_view duress) {
  return impl_->vault().SetDuress(duress);
}

Status Replica::SetWipeAfterFailures(uint32_t n) {
  if (n != 0 && n < internal::kFreeAttempts) {
    return Status::InvalidArgument("wipe-after must be 0 (off) or at least 3");
  }
  internal::UnlockState state = internal::LoadUnlockState(impl_->options().dir);
  state.wipe_after = n;
  return internal::SaveUnlockState(impl_->options().dir, state);
}

}  // namespace enlace
