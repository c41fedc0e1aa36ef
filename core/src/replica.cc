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

#include "codec.h"
#include "parallel.h"
#include "replica_impl.h"
#include "unlock_guard.h"
#include "write_internal.h"

namespace enlace {

using internal::RecordKey;
using internal::RecordState;
using internal::SecretBytes;
using internal::Sibling;

namespace {

constexpr char kMetaCounter[] = "write_counter";
constexpr char kMetaHlc[] = "hlc";
// 1 when this device created the team: its first coordinator.
constexpr char kMetaTeamFounder[] = "team_founder";
// The overlay record's fields and the file that keeps the newest accepted overlay write.
constexpr char kOverlayField[] = "overlay";
constexpr char kOverlayVersionField[] = "version";
constexpr char kKeptOverlayFile[] = "overlay.write";
constexpr size_t kMaxValueBytes = 64 * 1024;
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

// The one record of the overlay collection: id 00..01.
RecordKey OverlayKey() {
  RecordId id;
  id.bytes.back() = 1;
  return RecordKey{kOverlayCollection, id};
}

// The overlay text and version held in an overlay field value (a JSON string).
Result<std::pair<std::string, uint32_t>> OverlayTextOf(std::string_view value) {
  nlohmann::json v = nlohmann::json::parse(value.begin(), value.end(), nullptr, false);
  if (!v.is_string()) return Status::InvalidArgument("the overlay record holds no overlay");
  std::string text = v.get<std::string>();
  nlohmann::json o = nlohmann::json::parse(text, nullptr, false);
  if (!o.is_object() || !o.contains("version") || !o["version"].is_number_unsigned() ||
      o["version"].get<uint64_t>() > UINT32_MAX) {
    return Status::InvalidArgument("the overlay has no valid version");
  }
  const auto version = static_cast<uint32_t>(o["version"].get<uint64_t>());
  return std::make_pair(std::move(text), version);
}

}  // namespace

KdfCost KdfCost::Interactive() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}
KdfCost KdfCost::Moderate() {
  return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
}
KdfCost KdfCost::Minimum() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

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
                                 const VersionVector* context, Dot* written) {
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
  ENLACE_ASSIGN_OR_RETURN(const SecretBytes* team_key, TeamKey(w.key_version));
  ENLACE_RETURN_IF_ERROR(internal::SealWrite(w, values, *team_key, secrets.signing.secret_key));
  const Bytes encoded = w.Encode();

  ENLACE_RETURN_IF_ERROR(store_->SetMeta(kMetaCounter, counter));
  ENLACE_RETURN_IF_ERROR(PersistClock());
  ENLACE_ASSIGN_OR_RETURN(ApplyOutcome outcome, Merge(w, encoded, &state));
  if (outcome != ApplyOutcome::kApplied) return Status::Internal("own write was not applied");
  if (written != nullptr) *written = w.dot;
  return store_->AddToOutbox(counter);
}

Result<size_t> Replica::Impl::RestampFutureWrites(uint64_t margin_ms) {
  const uint64_t wall = clock_.WallMs();
  const uint64_t limit = wall + margin_ms;
  // No write of this device is stamped later than its clock has ever been:
  // when that is within the margin, there is nothing to scan (the common
  // case; scanning the whole outbox every round made pushing quadratic).
  if (clock_.last().physical_ms() <= limit) return size_t{0};
  // Own unsent writes stamped in the future, grouped by record, in counter order.
  struct Stamped {
    std::set<Dot> dots;
    Dot last_dot;
    VersionVector last_context;
  };
  std::map<RecordKey, Stamped> future;
  ENLACE_ASSIGN_OR_RETURN(auto pending, store_->PendingWrites(device(), SIZE_MAX));
  for (const auto& [counter, bytes] : pending) {
    ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode(bytes, options_.limits));
    if (w.hlc.physical_ms() <= limit) continue;
    Stamped& st = future[RecordKey{w.collection, w.record}];
    st.dots.insert(w.dot);
    st.last_dot = w.dot;
    st.last_context = std::move(w.context);
  }
  if (future.empty()) return size_t{0};
  if (clock_.last().physical_ms() > limit) clock_.RewindTo(HlcTimestamp::From(wall, 0));

  size_t written = 0;
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
  RecordState state = *loaded ? std::move(**loaded) : RecordState{};
  const std::set<Dot> live_before = internal::LiveDots(state);
  if (!internal::ApplyToRecord(state, w.dot, w.hlc, w.context, WithExistence(w.fields))) {
    return ApplyOutcome::kAlreadySeen;
  }
  ENLACE_RETURN_IF_ERROR(store_->SaveRecord(key, state));
  ENLACE_RETURN_IF_ERROR(store_->InsertWrite(w, encoded));
  // A write none of whose values is current any more is dropped here: no
  // replica needs it (DESIGN §2), and an erased value must leave the device.
  const std::set<Dot> live_after = internal::LiveDots(state);
  for (const Dot& dot : live_before) {
    if (live_after.contains(dot)) continue;
    ENLACE_RETURN_IF_ERROR(store_->DeleteWrite(dot));
    if (dot.device == device()) ENLACE_RETURN_IF_ERROR(store_->RemoveFromOutbox(dot.counter));
  }
  if (w.collection == kOverlayCollection) NoteOverlayWrite(w, encoded);
  return ApplyOutcome::kApplied;
}

// ---- schema and overlay ---------------------------------------------------------------

Result<std::set<DeviceId>> Replica::Impl::Coordinators() {
  ENLACE_ASSIGN_OR_RETURN(auto members, store_->ListMembers());
  std::set<DeviceId> out;
  bool self_listed = false;
  for (const Member& m : members) {
    if (m.device == device()) self_listed = true;
    if (m.role == Role::kCoordinator && !m.revoked) out.insert(m.device);
  }
  if (!self_listed) {
    ENLACE_ASSIGN_OR_RETURN(uint64_t founder, store_->GetMeta(kMetaTeamFounder));
    if (founder != 0) out.insert(device());
  }
  return out;
}

Result<SchemaPack> Replica::Impl::OverlayFromWrite(const Write& w,
                                                   const std::set<DeviceId>& coordinators) {
  if (!coordinators.contains(w.dot.device)) {
    return Status::PermissionDenied("the overlay written by device " +
                                    w.dot.device.ToHex().substr(0, 8) +
                                    " was ignored: that device is not a coordinator");
  }
  ENLACE_ASSIGN_OR_RETURN(const SecretBytes* key, TeamKey(w.key_version));
  ENLACE_ASSIGN_OR_RETURN(auto values, internal::OpenWritePayload(w, *key));
  for (size_t i = 0; i < w.fields.size(); ++i) {
    if (w.fields[i] != kOverlayField) continue;
    ENLACE_ASSIGN_OR_RETURN(auto overlay, OverlayTextOf(values[i]));
    auto pack = SchemaPack::Builtin().WithOverlay(overlay.first);
    if (!pack.ok()) {
      return pack.status().WithContext("the overlay written by device " +
                                       w.dot.device.ToHex().substr(0, 8) + " was ignored");
    }
    return pack;
  }
  return Status::InvalidArgument("the overlay write holds no overlay");
}

Status Replica::Impl::KeepOverlayWrite(const Bytes& encoded, uint32_t version) {
  const std::filesystem::path path = std::filesystem::path(options_.dir) / kKeptOverlayFile;
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(encoded.data()),
              static_cast<std::streamsize>(encoded.size()));
    out.flush();
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot write " + path.string() + ": " + ec.message());
  kept_loaded_ = true;
  kept_overlay_ = encoded;
  kept_version_ = version;
  return Status::Ok();
}

void Replica::Impl::LoadKeptOverlay() {
  if (kept_loaded_) return;
  kept_loaded_ = true;
  std::ifstream in(std::filesystem::path(options_.dir) / kKeptOverlayFile, std::ios::binary);
  if (!in) return;
  Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto w = DecodeAndVerify(bytes);
  if (!w.ok() || w->collection != kOverlayCollection) return;
  auto key = TeamKey(w->key_version);
  if (!key.ok()) return;
  auto values = internal::OpenWritePayload(*w, **key);
  if (!values.ok()) return;
  for (size_t i = 0; i < w->fields.size(); ++i) {
    if (w->fields[i] != kOverlayField) continue;
    auto overlay = OverlayTextOf((*values)[i]);
    if (!overlay.ok()) return;
    kept_overlay_ = std::move(bytes);
    kept_version_ = overlay->second;
    return;
  }
}

void Replica::Impl::NoteOverlayWrite(const Write& w, const Bytes& encoded) {
  LoadKeptOverlay();
  auto coordinators = Coordinators();
  if (!coordinators.ok()) return;
  auto pack = OverlayFromWrite(w, *coordinators);
  if (!pack.ok() || pack->overlay_version() <= kept_version_) return;
  (void)KeepOverlayWrite(encoded, pack->overlay_version());
}

Result<const SchemaPack*> Replica::Impl::EffectiveSchema() {
  LoadKeptOverlay();
  const RecordKey key = OverlayKey();
  ENLACE_ASSIGN_OR_RETURN(auto state, store_->LoadRecord(key));
  const std::vector<Sibling>* siblings = nullptr;
  if (state) {
    auto it = state->fields.find(kOverlayField);
    if (it != state->fields.end() && !it->second.empty()) siblings = &it->second;
  }
  if (siblings == nullptr && !kept_overlay_) {
    effective_ = &SchemaPack::Builtin();
    schema_fingerprint_.clear();
    overlay_status_.clear();
    return effective_;
  }
  ENLACE_ASSIGN_OR_RETURN(std::set<DeviceId> coordinators, Coordinators());
  // What the result depends on: the overlay siblings, the coordinators, the kept write.
  std::string fingerprint = "v" + std::to_string(kept_version_) + ";";
  for (const DeviceId& d : coordinators) fingerprint += d.ToHex() + ",";
  if (siblings != nullptr) {
    for (const Sibling& s : *siblings) {
      fingerprint += ";" + s.dot.device.ToHex() + ":" + std::to_string(s.dot.counter);
    }
  }
  if (effective_ != nullptr && fingerprint == schema_fingerprint_) return effective_;

  std::optional<SchemaPack> best;
  std::optional<Dot> best_dot;
  std::vector<std::string> problems;
  if (siblings != nullptr) {
    // Newest first: the shown sibling, then concurrent ones.
    std::vector<Sibling> ordered = *siblings;
    std::sort(ordered.begin(), ordered.end(), [](const Sibling& a, const Sibling& b) {
      return std::tie(a.hlc, a.dot.device) > std::tie(b.hlc, b.dot.device);
    });
    for (const Sibling& s : ordered) {
      auto stored = store_->GetWrite(s.dot);
      if (!stored.ok()) return stored.status();
      if (!*stored) return Status::Corruption("the overlay's write is missing from the store");
      ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode((*stored)->encoded, options_.limits));
      auto pack = OverlayFromWrite(w, coordinators);
      if (!pack.ok()) {
        problems.push_back(pack.status().message());
        continue;
      }
      if (!best || pack->overlay_version() > best->overlay_version()) {
        best = std::move(pack).value();
        best_dot = s.dot;
      }
    }
  }
  if (kept_overlay_ && (!best || kept_version_ > best->overlay_version())) {
    auto w = Write::Decode(*kept_overlay_, options_.limits);
    if (w.ok()) {
      auto pack = OverlayFromWrite(*w, coordinators);
      if (pack.ok() && (!best || pack->overlay_version() > best->overlay_version())) {
        best = std::move(pack).value();
        best_dot.reset();
      }
    }
  }
  if (best && best_dot && best->overlay_version() > kept_version_) {
    // A coordinator's overlay accepted only now (its role became known later).
    ENLACE_ASSIGN_OR_RETURN(auto stored, store_->GetWrite(*best_dot));
    if (stored) (void)KeepOverlayWrite(stored->encoded, best->overlay_version());
  }

  overlay_status_.clear();
  for (const std::string& p : problems) {
    overlay_status_ += (overlay_status_.empty() ? "" : "; ") + p;
  }
  if (!overlay_status_.empty()) {
    overlay_status_ += best ? "; using overlay version " + std::to_string(best->overlay_version())
                            : "; using the built-in schema pack";
  }
  if (best) {
    packs_.push_back(std::make_unique<const SchemaPack>(std::move(*best)));
    effective_ = packs_.back().get();
  } else {
    effective_ = &SchemaPack::Builtin();
  }
  schema_fingerprint_ = std::move(fingerprint);
  return effective_;
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

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;

Result<std::unique_ptr<Replica>> Replica::Create(const ReplicaOptions& options,
                                                 std::string_view passphrase) {
  ENLACE_RETURN_IF_ERROR(internal::EnsureSodium());
  ENLACE_RETURN_IF_ERROR(EnsureDir(options.dir));
  internal::VaultSecrets secrets;
  secrets.device = DeviceId::Random();
  secrets.signing = internal::SigningKeyPair::Generate();
  secrets.box = internal::BoxKeyPair::Generate();
  ENLACE_ASSIGN_OR_RETURN(
      auto vault, internal::Vault::Create(VaultPath(options), passphrase, ToParams(options.kdf),
                                          std::move(secrets)));
  ENLACE_ASSIGN_OR_RETURN(auto store, internal::Store::Open(StorePath(options)));
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
  // A stronger cost than the stored one re-wraps the vault now. Best effort:
  // on failure the file is intact and the raise is tried on the next unlock.
  (void)vault->RaiseParams(passphrase, ToParams(options.kdf), nullptr);
  ENLACE_ASSIGN_OR_RETURN(auto store, internal::Store::Open(StorePath(options)));
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

Result<TeamId> Replica::CreateTeam() {
  const auto& current = impl_->vault().secrets();
  if (!current.team.IsZero()) return Status::FailedPrecondition("this device already has a team");
  internal::VaultSecrets next = current.Clone();
  next.team = TeamId::Random();
  next.team_keys.emplace(1, SecretBytes::Random(internal::kAeadKeyBytes));
  const TeamId team = next.team;
  ENLACE_RETURN_IF_ERROR(impl_->vault().Update(std::move(next)));
  // The team's creator is its first coordinator (Impl::Coordinators).
  ENLACE_RETURN_IF_ERROR(impl_->store().SetMeta(kMetaTeamFounder, 1));
  return team;
}

// Team-key bundle: team id | u32 count | (u32 version | key[32])*
Result<SecretBytes> Replica::Impl::TeamKeyBundle() const {
  const auto& s = vault_->secrets();
  if (s.team.IsZero()) return Status::FailedPrecondition("this device has no team yet");
  const size_t entry = 4 + internal::kAeadKeyBytes;
  SecretBytes bundle(16 + 4 + s.team_keys.size() * entry);
  uint8_t* p = bundle.data();
  std::copy(s.team.bytes.begin(), s.team.bytes.end(), p);
  p += 16;
  auto put_u32 = [&p](uint32_t v) {
    for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(v >> (8 * i));
  };
  put_u32(static_cast<uint32_t>(s.team_keys.size()));
  for (const auto& [version, key] : s.team_keys) {
    put_u32(version);
    std::copy(key.data(), key.data() + key.size(), p);
    p += key.size();
  }
  return bundle;
}

Status Replica::Impl::AdoptTeamKeyBundle(const SecretBytes& bundle) {
  const auto& current = vault_->secrets();
  const size_t entry = 4 + internal::kAeadKeyBytes;
  if (bundle.size() < 20 || (bundle.size() - 20) % entry != 0) {
    return Status::Corruption("team key bundle is malformed");
  }
  const uint8_t* p = bundle.data();
  TeamId team;
  std::copy(p, p + 16, team.bytes.begin());
  p += 16;
  auto get_u32 = [&p]() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(*p++) << (8 * i);
    return v;
  };
  const uint32_t n = get_u32();
  if (n == 0 || n != (bundle.size() - 20) / entry) {
    return Status::Corruption("team key bundle is malformed");
  }
  if (!current.team.IsZero() && current.team != team) {
    return Status::PermissionDenied("these keys belong to another team");
  }
  internal::VaultSecrets next = current.Clone();
  next.team = team;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t version = get_u32();
    next.team_keys.insert_or_assign(version, SecretBytes(p, internal::kAeadKeyBytes));
    p += internal::kAeadKeyBytes;
  }
  return vault_->Update(std::move(next));
}

Result<Bytes> Replica::SealTeamKeysFor(const PublicKey& recipient) const {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle, impl_->TeamKeyBundle());
  return internal::SealTo(recipient, bundle.view());
}

Status Replica::AcceptTeamKeys(std::span<const uint8_t> sealed) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle,
                          internal::OpenSealed(impl_->vault().secrets().box, sealed));
  return impl_->AdoptTeamKeyBundle(bundle);
}

Status Replica::TrustDevice(const DeviceId& device, const DevicePublicKeys& keys) {
  return impl_->store().PutDevice(device, keys.signing, keys.encryption);
}

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
    ENLACE_ASSIGN_OR_RETURN(Record r, impl_->BuildRecord(key, *state));
    if (r.deleted) return Status::FailedPrecondition("the record is deleted; restore it first");
    if (r.delete_conflict) {
      return Status::FailedPrecondition(
          "the record was deleted on one device and edited on another; confirm the delete or "
          "restore it first");
    }
  }
  if (impl_->options().validate) {
    const bool creating = !state;
    ENLACE_ASSIGN_OR_RETURN(const SchemaPack* pack, impl_->EffectiveSchema());
    if (creating) pack->FillDefaults(collection, canonical_values);
    ENLACE_RETURN_IF_ERROR(pack->Validate(collection, canonical_values, creating));
  }
  std::vector<std::string> fields;
  std::vector<std::string> canonical;
  for (auto& [field, value] : canonical_values) {
    fields.push_back(field);
    canonical.push_back(std::move(value));
  }
  ENLACE_RETURN_IF_ERROR(impl_->WriteLocal(key, WriteKind::kPut, fields, canonical));
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
    // overlay covers them (Replica::Schema picks the newest valid one).
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
// Loads a record for a tombstone or restore; kNotFound if never written here.
Result<Record> LoadForChange(Replica::Impl& impl, const RecordKey& key, RecordState& state) {
  ENLACE_ASSIGN_OR_RETURN(auto loaded, impl.store().LoadRecord(key));
  if (!loaded) return Status::NotFound("no record " + key.record.ToHex() + " in " + key.collection);
  state = std::move(*loaded);
  return impl.BuildRecord(key, state);
}
}  // namespace

Status Replica::Delete(std::string_view collection, const RecordId& id) {
  ENLACE_RETURN_IF_ERROR(CheckWritableCollection(collection));
  const RecordKey key{std::string(collection), id};
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  RecordState state;
  ENLACE_ASSIGN_OR_RETURN(Record r, LoadForChange(*impl_, key, state));
  if (r.deleted) return Status::FailedPrecondition("the record is already deleted");
  ENLACE_RETURN_IF_ERROR(impl_->WriteLocal(key, WriteKind::kDelete, {}, {}));
  return tx->Commit();
}

Status Replica::Restore(std::string_view collection, const RecordId& id) {
  ENLACE_RETURN_IF_ERROR(CheckWritableCollection(collection));
  const RecordKey key{std::string(collection), id};
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  RecordState state;
  ENLACE_ASSIGN_OR_RETURN(Record r, LoadForChange(*impl_, key, state));
  if (!r.deleted && !r.delete_conflict)
    return Status::FailedPrecondition("the record is not deleted");
  ENLACE_RETURN_IF_ERROR(impl_->WriteLocal(key, WriteKind::kPut, {}, {}));
  return tx->Commit();
}

Status Replica::Erase(std::string_view collection, const RecordId& id) {
  ENLACE_RETURN_IF_ERROR(CheckWritableCollection(collection));
  const RecordKey key{std::string(collection), id};
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  RecordState state;
  ENLACE_ASSIGN_OR_RETURN(Record r, LoadForChange(*impl_, key, state));
  std::vector<std::string> fields;
  for (const auto& [field, fv] : r.fields) fields.push_back(field);
  const std::vector<std::string> nulls(fields.size(), kNull);
  ENLACE_RETURN_IF_ERROR(impl_->WriteLocal(key, WriteKind::kErase, fields, nulls));
  return tx->Commit();
}

Result<ApplyOutcome> Replica::ApplyRemote(std::span<const uint8_t> encoded_write) {
  ENLACE_ASSIGN_OR_RETURN(Write w, impl_->DecodeAndVerify(encoded_write));
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  ENLACE_ASSIGN_OR_RETURN(ApplyOutcome outcome, impl_->ApplyChecked(w, Bytes(encoded_write.begin(),
                                                                             encoded_write.end())));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return outcome;
}

Result<const SchemaPack*> Replica::Schema() { return impl_->EffectiveSchema(); }

std::string Replica::OverlayStatus() {
  auto pack = impl_->EffectiveSchema();
  if (!pack.ok()) return pack.status().ToString();
  return impl_->overlay_status();
}

Status Replica::PublishOverlay(std::string_view overlay_json) {
  ENLACE_ASSIGN_OR_RETURN(std::set<DeviceId> coordinators, impl_->Coordinators());
  if (!coordinators.contains(impl_->device())) {
    return Status::PermissionDenied("only a coordinator can publish the team's overlay");
  }
  ENLACE_ASSIGN_OR_RETURN(SchemaPack next, SchemaPack::Builtin().WithOverlay(overlay_json));
  ENLACE_ASSIGN_OR_RETURN(const SchemaPack* current, impl_->EffectiveSchema());
  if (next.overlay_version() <= current->overlay_version()) {
    return Status::InvalidArgument("the overlay's version " +
                                   std::to_string(next.overlay_version()) +
                                   " must be greater than the team's current overlay version " +
                                   std::to_string(current->overlay_version()));
  }
  // Stored compact: a JSON string holding the overlay's JSON text.
  const std::string text =
      nlohmann::json::parse(overlay_json.begin(), overlay_json.end(), nullptr, false).dump();
  const std::string value = nlohmann::json(text).dump();
  if (value.size() > kMaxValueBytes) {
    return Status::InvalidArgument("the overlay is larger than 64 KiB");
  }
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl_->store().Begin());
  ENLACE_RETURN_IF_ERROR(impl_->WriteLocal(OverlayKey(), WriteKind::kPut,
                                           {kOverlayField, kOverlayVersionField},
                                           {value, std::to_string(next.overlay_version())}));
  return tx->Commit();
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

UnlockThrottle ReadUnlockThrottle(const std::string& dir, uint64_t now_ms) {
  const internal::UnlockState state = internal::LoadUnlockState(dir);
  return UnlockThrottle{state.failures, state.wipe_after, internal::UnlockWaitMs(state, now_ms)};
}

}  // namespace enlace
