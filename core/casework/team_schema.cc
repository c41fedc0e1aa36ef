// The team's schema (enlace/team_schema.h): the overlay record, the kept
// overlay write, and the hook that validates a replica's Put and Resolve.
#include "enlace/team_schema.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/vault.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"
#include "trust/team_impl.h"

namespace enlace {

using internal::RecordKey;

namespace {

// The overlay record's fields and the file that keeps the newest accepted overlay write.
constexpr char kOverlayField[] = "overlay";
constexpr char kOverlayVersionField[] = "version";
constexpr char kKeptOverlayFile[] = "overlay.write";

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

// A replica's team schema: the packs computed for it, the kept overlay
// write (`overlay.write` beside the store), and, with `validate`, the check
// of every Put and Resolve.
class TeamSchemaCheck final : public ReplicaHook {
 public:
  explicit TeamSchemaCheck(bool validate) : validate_(validate) {}

  Status CheckValues(Replica& replica, std::string_view collection, bool creating,
                     Fields& values) override {
    if (!validate_) return Status::Ok();
    ENLACE_ASSIGN_OR_RETURN(const SchemaPack* pack, Effective(replica.impl()));
    if (creating) pack->FillDefaults(collection, values);
    return pack->Validate(collection, values, creating);
  }

  void OnReservedWrite(Replica& replica, const Write& write,
                       std::span<const uint8_t> encoded) override {
    if (write.collection != kOverlayCollection) return;
    NoteOverlayWrite(replica.impl(), write, Bytes(encoded.begin(), encoded.end()));
  }

  // The effective pack, recomputed when the overlay record, the coordinators
  // or the kept overlay change; also sets overlay_status().
  Result<const SchemaPack*> Effective(Replica::Impl& impl);
  const std::string& overlay_status() const { return overlay_status_; }

 private:
  // A merged write of the overlay record: when it comes from a coordinator
  // and holds a valid overlay newer than the kept one, keeps its encoded
  // bytes (ciphertext, as the hub stores it) in `overlay.write` beside the
  // store, so that a later write by a non-coordinator, which supersedes it in
  // the record, cannot take the team back to the base pack. Best effort.
  void NoteOverlayWrite(Replica::Impl& impl, const Write& write, const Bytes& encoded);
  // The overlay of a kept or stored write: verified, from a coordinator,
  // applied to the built-in pack. kPermissionDenied / kInvalidArgument say why not.
  Result<SchemaPack> OverlayFromWrite(Replica::Impl& impl, const Write& write,
                                      const std::set<DeviceId>& coordinators);
  Status KeepOverlayWrite(Replica::Impl& impl, const Bytes& encoded, uint32_t version);
  // Loads `overlay.write` once.
  void LoadKeptOverlay(Replica::Impl& impl);

  const bool validate_;
  // Every pack Effective computed (pointers handed out stay valid).
  std::vector<std::unique_ptr<const SchemaPack>> packs_;
  const SchemaPack* effective_ = nullptr;
  std::string schema_fingerprint_;
  std::string overlay_status_;
  bool kept_loaded_ = false;
  std::optional<Bytes> kept_overlay_;  // the encoded write in overlay.write
  uint32_t kept_version_ = 0;          // its overlay version (0: none, or unusable)
};

Result<SchemaPack> TeamSchemaCheck::OverlayFromWrite(Replica::Impl& impl, const Write& w,
                                                     const std::set<DeviceId>& coordinators) {
  if (!coordinators.contains(w.dot.device)) {
    return Status::PermissionDenied("the overlay written by device " +
                                    w.dot.device.ToHex().substr(0, 8) +
                                    " was ignored: that device is not a coordinator");
  }
  ENLACE_ASSIGN_OR_RETURN(const internal::SecretBytes* key, impl.TeamKey(w.key_version));
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

Status TeamSchemaCheck::KeepOverlayWrite(Replica::Impl& impl, const Bytes& encoded,
                                         uint32_t version) {
  // Mode 0600, like every file of the replica's folder.
  const std::filesystem::path path = std::filesystem::path(impl.options().dir) / kKeptOverlayFile;
  ENLACE_RETURN_IF_ERROR(internal::WriteFileAtomically(path.string(), encoded));
  kept_loaded_ = true;
  kept_overlay_ = encoded;
  kept_version_ = version;
  return Status::Ok();
}

void TeamSchemaCheck::LoadKeptOverlay(Replica::Impl& impl) {
  if (kept_loaded_) return;
  kept_loaded_ = true;
  std::ifstream in(std::filesystem::path(impl.options().dir) / kKeptOverlayFile, std::ios::binary);
  if (!in) return;
  Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto w = impl.DecodeAndVerify(bytes);
  if (!w.ok() || w->collection != kOverlayCollection) return;
  auto key = impl.TeamKey(w->key_version);
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

void TeamSchemaCheck::NoteOverlayWrite(Replica::Impl& impl, const Write& w, const Bytes& encoded) {
  LoadKeptOverlay(impl);
  auto coordinators = internal::Coordinators(impl);
  if (!coordinators.ok()) return;
  auto pack = OverlayFromWrite(impl, w, *coordinators);
  if (!pack.ok() || pack->overlay_version() <= kept_version_) return;
  (void)KeepOverlayWrite(impl, encoded, pack->overlay_version());
}

Result<const SchemaPack*> TeamSchemaCheck::Effective(Replica::Impl& impl) {
  LoadKeptOverlay(impl);
  const RecordKey key = OverlayKey();
  ENLACE_ASSIGN_OR_RETURN(auto state, impl.store().LoadRecord(key));
  const std::vector<internal::Sibling>* siblings = nullptr;
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
  ENLACE_ASSIGN_OR_RETURN(std::set<DeviceId> coordinators, internal::Coordinators(impl));
  // What the result depends on: the overlay siblings, the coordinators, the kept write.
  std::string fingerprint = "v" + std::to_string(kept_version_) + ";";
  for (const DeviceId& d : coordinators) fingerprint += d.ToHex() + ",";
  if (siblings != nullptr) {
    for (const internal::Sibling& s : *siblings) {
      fingerprint += ";" + s.dot.device.ToHex() + ":" + std::to_string(s.dot.counter);
    }
  }
  if (effective_ != nullptr && fingerprint == schema_fingerprint_) return effective_;

  std::optional<SchemaPack> best;
  std::optional<Dot> best_dot;
  std::vector<std::string> problems;
  if (siblings != nullptr) {
    // Newest first: the shown sibling, then concurrent ones.
    std::vector<internal::Sibling> ordered = *siblings;
    std::sort(ordered.begin(), ordered.end(),
              [](const internal::Sibling& a, const internal::Sibling& b) {
                return std::tie(a.hlc, a.dot.device) > std::tie(b.hlc, b.dot.device);
              });
    for (const internal::Sibling& s : ordered) {
      auto stored = impl.store().GetWrite(s.dot);
      if (!stored.ok()) return stored.status();
      if (!*stored) return Status::Corruption("the overlay's write is missing from the store");
      ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode((*stored)->encoded, impl.options().limits));
      auto pack = OverlayFromWrite(impl, w, coordinators);
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
    auto w = Write::Decode(*kept_overlay_, impl.options().limits);
    if (w.ok()) {
      auto pack = OverlayFromWrite(impl, *w, coordinators);
      if (pack.ok() && (!best || pack->overlay_version() > best->overlay_version())) {
        best = std::move(pack).value();
        best_dot.reset();
      }
    }
  }
  if (best && best_dot && best->overlay_version() > kept_version_) {
    // A coordinator's overlay accepted only now (its role became known later).
    ENLACE_ASSIGN_OR_RETURN(auto stored, impl.store().GetWrite(*best_dot));
    if (stored) (void)KeepOverlayWrite(impl, stored->encoded, best->overlay_version());
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

// The replica's team schema: its hook, or a non-validating one installed now.
TeamSchemaCheck& StateOf(Replica& replica) {
  if (auto* state = dynamic_cast<TeamSchemaCheck*>(replica.hook())) return *state;
  auto fresh = std::make_unique<TeamSchemaCheck>(/*validate=*/false);
  TeamSchemaCheck& state = *fresh;
  replica.SetHook(std::move(fresh));
  return state;
}

}  // namespace

std::function<std::unique_ptr<ReplicaHook>()> TeamSchemaHook(bool validate) {
  return [validate]() -> std::unique_ptr<ReplicaHook> {
    return std::make_unique<TeamSchemaCheck>(validate);
  };
}

Result<const SchemaPack*> TeamSchema(Replica& replica) {
  return StateOf(replica).Effective(replica.impl());
}

std::string OverlayStatus(Replica& replica) {
  TeamSchemaCheck& state = StateOf(replica);
  auto pack = state.Effective(replica.impl());
  if (!pack.ok()) return pack.status().ToString();
  return state.overlay_status();
}

Status PublishOverlay(Replica& replica, std::string_view overlay_json) {
  Replica::Impl& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(std::set<DeviceId> coordinators, internal::Coordinators(impl));
  if (!coordinators.contains(impl.device())) {
    return Status::PermissionDenied("only a coordinator can publish the team's overlay");
  }
  ENLACE_ASSIGN_OR_RETURN(SchemaPack next, SchemaPack::Builtin().WithOverlay(overlay_json));
  ENLACE_ASSIGN_OR_RETURN(const SchemaPack* current, TeamSchema(replica));
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
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_RETURN_IF_ERROR(impl.WriteLocal(OverlayKey(), WriteKind::kPut,
                                         {kOverlayField, kOverlayVersionField},
                                         {value, std::to_string(next.overlay_version())}));
  return tx->Commit();
}

}  // namespace enlace
