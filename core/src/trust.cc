// The device side of the signed device registry (enlace/registry.h): keeping
// the checked registry and admissions, deriving the members from them,
// signing new registry versions, and moving team keys by signed grants.
#include <algorithm>

#include "codec.h"
#include "replica_impl.h"

namespace enlace {

using internal::Decoder;
using internal::Encoder;
using internal::SecretBytes;

namespace {

Bytes EncodeList(const std::vector<Bytes>& docs) {
  Encoder e;
  e.U32(static_cast<uint32_t>(docs.size()));
  for (const auto& d : docs) e.Blob(d);
  return e.Finish();
}

Result<std::vector<Bytes>> DecodeList(internal::ByteView bytes) {
  Decoder d(bytes);
  uint32_t n = 0;
  const WireLimits limits;
  ENLACE_RETURN_IF_ERROR(d.Count(n, limits.max_documents, 4, "document list"));
  std::vector<Bytes> out(n);
  for (auto& x : out) ENLACE_RETURN_IF_ERROR(d.Blob(x, limits.max_document_bytes, "document"));
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("document list"));
  return out;
}

Result<std::vector<Admission>> LoadAdmissions(internal::Store& store) {
  ENLACE_ASSIGN_OR_RETURN(auto doc, store.GetDocument(internal::kDocAdmissions));
  std::vector<Admission> out;
  if (!doc) return out;
  ENLACE_ASSIGN_OR_RETURN(auto list, DecodeList(*doc));
  for (const auto& bytes : list) {
    ENLACE_ASSIGN_OR_RETURN(Admission a, DecodeAdmission(bytes));
    out.push_back(std::move(a));
  }
  return out;
}

// Lists the device `a` admitted as an entry of `r` (kept sorted).
void AddEntry(Registry& r, const Admission& a, uint64_t joined_ms) {
  RegistryEntry e;
  e.device = a.device;
  e.signing_key = a.signing_key;
  e.encryption_key = a.encryption_key;
  e.name = a.name;
  e.role = a.grant.role;
  e.invite = a.grant.invite;
  e.joined_ms = joined_ms;
  r.entries.push_back(std::move(e));
  std::sort(r.entries.begin(), r.entries.end(),
            [](const RegistryEntry& x, const RegistryEntry& y) { return x.device < y.device; });
}

Status StoreMembers(internal::Store& store, const Registry& registry,
                    const std::vector<Admission>& admissions) {
  ENLACE_RETURN_IF_ERROR(store.ReplaceMembers(EffectiveMembers(registry, admissions)));
  return store.SetMeta(internal::kMetaRegistryVersion, registry.version);
}

}  // namespace

// ---- Impl ---------------------------------------------------------------------------------

Result<std::optional<Registry>> Replica::Impl::LoadRegistry() const {
  ENLACE_ASSIGN_OR_RETURN(auto doc, store_->GetDocument(internal::kDocRegistry));
  if (!doc) return std::optional<Registry>();
  ENLACE_ASSIGN_OR_RETURN(Registry r, DecodeRegistry(*doc));
  return std::optional<Registry>(std::move(r));
}

Status Replica::Impl::AdoptAnchorRegistry(const Registry& anchor) {
  const TeamId& team = vault_->secrets().team;
  if (!team.IsZero() && anchor.team != team) {
    return Status::PermissionDenied("the registry belongs to another team");
  }
  ENLACE_RETURN_IF_ERROR(CheckSelfSigned(anchor));
  ENLACE_RETURN_IF_ERROR(store_->SetDocument(internal::kDocRegistry, EncodeRegistry(anchor)));
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(*store_));
  return StoreMembers(*store_, anchor, admissions);
}

Status Replica::Impl::ApplyTrust(const TrustUpdate& update) {
  if (update.version == 0) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry());
  if (!current) {
    return Status::FailedPrecondition(
        "this device has no registry to check the team's members against");
  }
  auto followed = FollowChain(*current, update.registries);
  if (!followed.ok()) return followed.status().WithContext("the hub's device registry is refused");
  Registry next = std::move(*followed);
  std::vector<Admission> admissions;
  for (const auto& bytes : update.admissions) {
    ENLACE_ASSIGN_OR_RETURN(Admission a, DecodeAdmission(bytes));
    admissions.push_back(std::move(a));
  }
  if (next.version != current->version) {
    ENLACE_RETURN_IF_ERROR(store_->SetDocument(internal::kDocRegistry, EncodeRegistry(next)));
  }
  ENLACE_RETURN_IF_ERROR(
      store_->SetDocument(internal::kDocAdmissions, EncodeList(update.admissions)));
  ENLACE_RETURN_IF_ERROR(StoreMembers(*store_, next, admissions));
  ENLACE_RETURN_IF_ERROR(store_->SetMeta(internal::kMetaMembersVersion, update.version));
  // A registry this device signed is done once the team's is as new.
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, store_->GetDocument(internal::kDocOutgoingRegistry));
  if (outgoing) {
    auto mine = DecodeRegistry(*outgoing);
    if (!mine.ok() || mine->version <= next.version) {
      ENLACE_RETURN_IF_ERROR(store_->DeleteDocument(internal::kDocOutgoingRegistry));
    }
  }
  return Status::Ok();
}

void Replica::Impl::SignRegistry(Registry& next) const {
  next.signer = device();
  next.signature = internal::Sign(vault_->secrets().signing.secret_key, RegistrySigningInput(next));
}

Result<size_t> Replica::Impl::AcceptKeyGrants(const std::vector<Bytes>& grants) {
  if (grants.empty()) return size_t{0};
  ENLACE_ASSIGN_OR_RETURN(auto registry, LoadRegistry());
  if (!registry) return size_t{0};
  size_t accepted = 0;
  for (const auto& bytes : grants) {
    auto g = DecodeKeyGrant(bytes);
    if (!g.ok() || g->recipient != device() || !CheckKeyGrant(*g, *registry).ok()) continue;
    auto bundle = internal::OpenSealed(vault_->secrets().box, g->sealed);
    if (!bundle.ok()) continue;
    if (!AdoptTeamKeyBundle(*bundle).ok()) continue;
    if (TeamKey(g->version).ok()) ++accepted;
  }
  return accepted;
}

Status Replica::Impl::QueueKeyGrantsFor(const std::vector<DeviceId>& devices) {
  if (devices.empty()) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto members, store_->ListMembers());
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle, TeamKeyBundle());
  const uint32_t version = CurrentKeyVersion();
  for (const DeviceId& d : devices) {
    auto it = std::find_if(members.begin(), members.end(),
                           [&d](const Member& m) { return m.device == d; });
    if (it == members.end() || it->revoked || it->pending || d == device()) continue;
    KeyGrant g;
    g.team = vault_->secrets().team;
    g.version = version;
    g.recipient = d;
    g.sealed = internal::SealTo(it->encryption_key, bundle.view());
    g.issuer = device();
    g.signature = internal::Sign(vault_->secrets().signing.secret_key, KeyGrantSigningInput(g));
    ENLACE_RETURN_IF_ERROR(store_->QueueKeyGrant(d, version, EncodeKeyGrant(g)));
  }
  return Status::Ok();
}

Result<Registry> Replica::Impl::DraftRegistry() {
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry());
  if (!current) {
    return Status::FailedPrecondition("this device has no device registry yet; sync first");
  }
  Registry base = std::move(*current);
  // Two changes before a sync: the second builds on the first.
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, store_->GetDocument(internal::kDocOutgoingRegistry));
  if (outgoing) {
    auto mine = DecodeRegistry(*outgoing);
    if (mine.ok() && mine->version > base.version) base = std::move(*mine);
  }
  const RegistryEntry* self = base.Find(device());
  if (self == nullptr || self->revoked() || self->role != Role::kCoordinator) {
    return Status::PermissionDenied("only a coordinator can change the team's devices");
  }
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(*store_));
  const Registry before = base;
  for (const Member& m : EffectiveMembers(before, admissions)) {
    if (m.pending || before.Find(m.device) != nullptr) continue;
    auto a = std::find_if(admissions.begin(), admissions.end(),
                          [&m](const Admission& x) { return x.device == m.device; });
    if (a != admissions.end()) AddEntry(base, *a, clock_.WallMs());
  }
  ++base.version;
  return base;
}

Result<bool> Replica::Impl::IsRegistryCoordinator() const {
  ENLACE_ASSIGN_OR_RETURN(auto registry, LoadRegistry());
  if (!registry) return false;
  const RegistryEntry* self = registry->Find(device());
  return self != nullptr && !self->revoked() && self->role == Role::kCoordinator;
}

Status Replica::Impl::FoldAdmissions() {
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, store_->GetDocument(internal::kDocOutgoingRegistry));
  if (outgoing) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(bool coordinator, IsRegistryCoordinator());
  if (!coordinator) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry());
  ENLACE_ASSIGN_OR_RETURN(Registry next, DraftRegistry());
  if (next.entries.size() == current->entries.size()) return Status::Ok();
  SignRegistry(next);
  ENLACE_RETURN_IF_ERROR(CheckSuccessor(*current, next));
  return store_->SetDocument(internal::kDocOutgoingRegistry, EncodeRegistry(next));
}

// ---- Replica: the registry ------------------------------------------------------------------

namespace {

// Signs `next` and keeps it to be sent with the next sync.
Status QueueRegistry(Replica::Impl& impl, Registry& next) {
  impl.SignRegistry(next);
  ENLACE_ASSIGN_OR_RETURN(auto current, impl.LoadRegistry());
  if (current) ENLACE_RETURN_IF_ERROR(CheckSuccessor(*current, next));
  return impl.store().SetDocument(internal::kDocOutgoingRegistry, EncodeRegistry(next));
}

RegistryEntry* FindEntry(Registry& r, const DeviceId& device) {
  for (auto& e : r.entries) {
    if (e.device == device) return &e;
  }
  return nullptr;
}

Status NoSuchDevice(const DeviceId& device) {
  return Status::NotFound("device " + device.ToHex().substr(0, 8) + " is not on this team");
}

}  // namespace

Result<std::vector<Member>> Replica::Members() const { return impl_->store().ListMembers(); }

Result<bool> Replica::RegistryChangePending() const {
  ENLACE_ASSIGN_OR_RETURN(auto doc, impl_->store().GetDocument(internal::kDocOutgoingRegistry));
  return doc.has_value();
}

Status Replica::ApproveDevice(const DeviceId& device) {
  auto& impl = *impl_;
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, impl.DraftRegistry());
  if (next.Find(device) != nullptr) {
    return Status::FailedPrecondition("device " + device.ToHex().substr(0, 8) +
                                      " is already a member");
  }
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(impl.store()));
  const Admission* found = nullptr;
  for (const auto& a : admissions) {
    if (a.device == device && CheckAdmission(a, next).ok()) found = &a;
  }
  if (found == nullptr) return NoSuchDevice(device);
  AddEntry(next, *found, impl.clock().WallMs());
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Status Replica::RevokeDevice(const DeviceId& device) {
  auto& impl = *impl_;
  if (device == impl.device()) return Status::InvalidArgument("a device cannot revoke itself");
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, impl.DraftRegistry());
  RegistryEntry* e = FindEntry(next, device);
  if (e == nullptr) {
    // A pending device is refused by listing it as revoked from the start.
    ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(impl.store()));
    auto a = std::find_if(admissions.begin(), admissions.end(),
                          [&device](const Admission& x) { return x.device == device; });
    if (a == admissions.end()) return NoSuchDevice(device);
    AddEntry(next, *a, 0);
    e = FindEntry(next, device);
  }
  if (e->revoked()) {
    return Status::FailedPrecondition("device " + device.ToHex().substr(0, 8) +
                                      " is already revoked");
  }
  e->revoked_ms = std::max<uint64_t>(impl.clock().WallMs(), 1);
  ENLACE_ASSIGN_OR_RETURN(e->revoked_after, impl.store().MaxCounterSeen(device));
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Status Replica::RenameDevice(const DeviceId& device, std::string_view name) {
  if (name.empty() || name.size() > WireLimits{}.max_text_bytes) {
    return Status::InvalidArgument("a device name is 1 to 256 bytes");
  }
  auto& impl = *impl_;
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, impl.DraftRegistry());
  RegistryEntry* e = FindEntry(next, device);
  if (e == nullptr) return NoSuchDevice(device);
  e->name = name;
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Status Replica::SetApprovalRequired(bool required) {
  auto& impl = *impl_;
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, impl.DraftRegistry());
  next.approval_required = required;
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Result<uint32_t> Replica::RotateTeamKey() {
  auto& impl = *impl_;
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  // Only a coordinator (DraftRegistry checks) hands out keys.
  ENLACE_RETURN_IF_ERROR(impl.DraftRegistry().status());
  const auto& current = impl.vault().secrets();
  internal::VaultSecrets next = current.Clone();
  const uint32_t version = impl.CurrentKeyVersion() + 1;
  next.team_keys.emplace(version, SecretBytes::Random(internal::kAeadKeyBytes));
  ENLACE_RETURN_IF_ERROR(impl.vault().Update(std::move(next)));
  ENLACE_ASSIGN_OR_RETURN(auto members, impl.store().ListMembers());
  std::vector<DeviceId> to;
  for (const auto& m : members) to.push_back(m.device);
  ENLACE_RETURN_IF_ERROR(impl.QueueKeyGrantsFor(to));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return version;
}

Result<bool> Replica::CheckRevokedNotice(std::span<const uint8_t> body) {
  auto& impl = *impl_;
  ENLACE_ASSIGN_OR_RETURN(RevokedNotice notice, DecodeRevokedNotice(body));
  ENLACE_ASSIGN_OR_RETURN(auto current, impl.LoadRegistry());
  if (!current) return false;
  auto newest = FollowChain(*current, notice.registries);
  if (!newest.ok()) return false;
  const RegistryEntry* self = newest->Find(impl.device());
  return self != nullptr && self->revoked();
}

}  // namespace enlace
