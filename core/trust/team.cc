// The device side of the signed device registry (enlace/registry.h) and of
// the team keys: trust/team_impl.h and the public enlace/team.h.
#include "enlace/team.h"

#include <algorithm>
#include <functional>

#include "base/codec.h"
#include "crypto/crypto.h"
#include "trust/team_impl.h"

namespace enlace::internal {

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

namespace {

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
  r.entries.push_back(EntryFor(a, joined_ms));
  std::sort(r.entries.begin(), r.entries.end(),
            [](const RegistryEntry& x, const RegistryEntry& y) { return x.device < y.device; });
}

std::string RegistryLinkName(uint64_t version) {
  std::string digits = std::to_string(version);
  // Zero-padded, so that the documents sort by version.
  return std::string(kDocRegistryLinkPrefix) + std::string(20 - digits.size(), '0') + digits;
}

Status StoreMembers(internal::Store& store, const Registry& registry,
                    const std::vector<Admission>& admissions) {
  ENLACE_RETURN_IF_ERROR(store.ReplaceMembers(EffectiveMembers(registry, admissions)));
  return store.SetMeta(internal::kMetaRegistryVersion, registry.version);
}

}  // namespace

// ---- the registry and keys over a replica's internals ------------------------------------

Result<std::optional<Registry>> LoadRegistry(const Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto doc, impl.store().GetDocument(kDocRegistry));
  if (!doc) return std::optional<Registry>();
  ENLACE_ASSIGN_OR_RETURN(Registry r, DecodeRegistry(*doc));
  return std::optional<Registry>(std::move(r));
}

Status AdoptAnchorRegistry(Replica::Impl& impl, const Registry& anchor) {
  const TeamId& team = impl.vault().secrets().team;
  if (!team.IsZero() && anchor.team != team) {
    return Status::PermissionDenied("the registry belongs to another team");
  }
  ENLACE_RETURN_IF_ERROR(CheckSelfSigned(anchor));
  const Bytes encoded = EncodeRegistry(anchor);
  ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(kDocRegistry, encoded));
  ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(RegistryLinkName(anchor.version), encoded));
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(impl.store()));
  return StoreMembers(impl.store(), anchor, admissions);
}

Status ApplyTrust(Replica::Impl& impl, const TrustUpdate& update) {
  if (update.version == 0) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry(impl));
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
    // A scope newly assigned to this device: its history is behind the cursor.
    const RegistryEntry* before = current->Find(impl.device());
    const RegistryEntry* after = next.Find(impl.device());
    if (after != nullptr && after->role != Role::kCoordinator) {
      for (const ScopeId& s : after->scopes) {
        if (before == nullptr || !before->InScope(s)) {
          ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(kMetaRescan, 1));
          break;
        }
      }
    }
    ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(kDocRegistry, EncodeRegistry(next)));
    // Each link FollowChain checked, kept for a hub that may lose it.
    for (const auto& bytes : update.registries) {
      auto link = DecodeRegistry(bytes);
      if (!link.ok() || link->version <= current->version || link->version > next.version) continue;
      ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(RegistryLinkName(link->version), bytes));
    }
  }
  ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(kDocAdmissions, EncodeList(update.admissions)));
  ENLACE_RETURN_IF_ERROR(StoreMembers(impl.store(), next, admissions));
  ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(kMetaMembersVersion, update.version));
  ENLACE_RETURN_IF_ERROR(ForgetScopesNotHeld(impl, next, admissions).status());
  // A registry this device signed is done once the team's is as new.
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, impl.store().GetDocument(kDocOutgoingRegistry));
  if (outgoing) {
    auto mine = DecodeRegistry(*outgoing);
    if (!mine.ok() || mine->version <= next.version) {
      ENLACE_RETURN_IF_ERROR(impl.store().DeleteDocument(kDocOutgoingRegistry));
    }
  }
  return Status::Ok();
}

Result<size_t> ForgetScopesNotHeld(Replica::Impl& impl, const Registry& registry,
                                   const std::vector<Admission>& admissions) {
  // (A coordinator admitted by invite is one before a registry lists it.)
  const RegistryEntry* self = registry.Find(impl.device());
  bool coordinator = self != nullptr && self->role == Role::kCoordinator;
  if (self == nullptr) {
    for (const Admission& a : admissions) {
      if (a.device == impl.device()) coordinator = a.grant.role == Role::kCoordinator;
    }
  }
  if (coordinator) return size_t{0};
  return impl.ForgetScopesNotHeld(self != nullptr ? self->scopes : std::vector<ScopeId>{});
}

Result<size_t> ForgetScopesNotHeld(Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto registry, LoadRegistry(impl));
  if (!registry) return size_t{0};
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(impl.store()));
  return ForgetScopesNotHeld(impl, *registry, admissions);
}

void SignRegistry(const Replica::Impl& impl, Registry& next) {
  next.format = Registry::kNewestFormat;
  next.signer = impl.device();
  next.signature = Sign(impl.vault().secrets().signing.secret_key, RegistrySigningInput(next));
}

Result<size_t> AcceptKeyGrants(Replica::Impl& impl, const std::vector<Bytes>& grants) {
  if (grants.empty()) return size_t{0};
  ENLACE_ASSIGN_OR_RETURN(auto registry, LoadRegistry(impl));
  if (!registry) return size_t{0};
  size_t accepted = 0;
  for (const auto& bytes : grants) {
    auto g = DecodeKeyGrant(bytes);
    if (!g.ok() || g->recipient != impl.device() || !CheckKeyGrant(*g, *registry).ok()) continue;
    auto bundle = OpenSealed(impl.vault().secrets().box, g->sealed);
    if (!bundle.ok()) continue;
    if (!AdoptTeamKeyBundle(impl, *bundle).ok()) continue;
    if (!impl.TeamKey(g->version).ok()) continue;
    ++accepted;
    ENLACE_ASSIGN_OR_RETURN(auto kept, impl.store().GetDocument(kDocOwnKeyGrant));
    auto before = kept ? DecodeKeyGrant(*kept) : Result<KeyGrant>(Status::NotFound(""));
    if (!before.ok() || before->version <= g->version) {
      ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(kDocOwnKeyGrant, bytes));
    }
  }
  return accepted;
}

Result<RelayDocuments> DocumentsToRelay(Replica::Impl& impl) {
  RelayDocuments out;
  ENLACE_ASSIGN_OR_RETURN(auto admissions, impl.store().GetDocument(kDocAdmissions));
  if (admissions) {
    ENLACE_ASSIGN_OR_RETURN(out.admissions, DecodeList(*admissions));
  }
  ENLACE_ASSIGN_OR_RETURN(auto grant, impl.store().GetDocument(kDocOwnKeyGrant));
  if (grant) out.key_grants.push_back(std::move(*grant));
  return out;
}

Result<std::vector<Bytes>> RegistryChainAbove(Replica::Impl& impl, uint64_t hub_version,
                                              size_t max) {
  std::vector<Bytes> chain;
  ENLACE_ASSIGN_OR_RETURN(const uint64_t own, impl.store().GetMeta(kMetaRegistryVersion));
  for (uint64_t v = hub_version + 1; v <= own && chain.size() < max; ++v) {
    ENLACE_ASSIGN_OR_RETURN(auto link, impl.store().GetDocument(RegistryLinkName(v)));
    if (!link && v == own) {
      ENLACE_ASSIGN_OR_RETURN(link, impl.store().GetDocument(kDocRegistry));
    }
    if (!link) break;  // a hole: the hub could not check what follows
    chain.push_back(std::move(*link));
  }
  return chain;
}

namespace {

// Seals `bundle` to `to`, signs the grant for `device` and queues it.
Status QueueGrant(Replica::Impl& impl, const SecretBytes& bundle, const DeviceId& device,
                  const BoxPublicKey& to) {
  const uint32_t version = impl.CurrentKeyVersion();
  KeyGrant g;
  g.team = impl.vault().secrets().team;
  g.version = version;
  g.recipient = device;
  g.sealed = SealTo(to, bundle.view());
  g.issuer = impl.device();
  g.signature = Sign(impl.vault().secrets().signing.secret_key, KeyGrantSigningInput(g));
  return impl.store().QueueKeyGrant(device, version, EncodeKeyGrant(g));
}

}  // namespace

Status QueueKeyGrantsFor(Replica::Impl& impl, const std::vector<DeviceId>& devices) {
  if (devices.empty()) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto members, impl.store().ListMembers());
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle, TeamKeyBundle(impl));
  for (const DeviceId& d : devices) {
    auto it = std::find_if(members.begin(), members.end(),
                           [&d](const Member& m) { return m.device == d; });
    if (it == members.end() || it->revoked || it->pending || d == impl.device()) continue;
    ENLACE_RETURN_IF_ERROR(QueueGrant(impl, bundle, d, it->encryption_key));
  }
  return Status::Ok();
}

Status QueueKeyGrantTo(Replica::Impl& impl, const DeviceId& device, const BoxPublicKey& to) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle, TeamKeyBundle(impl));
  return QueueGrant(impl, bundle, device, to);
}

Result<bool> ResignRevocations(Replica::Impl& impl, const std::vector<RevocationCutoff>& cutoffs) {
  if (cutoffs.empty()) return false;
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, impl.store().GetDocument(kDocOutgoingRegistry));
  if (!outgoing) return false;
  ENLACE_ASSIGN_OR_RETURN(Registry next, DecodeRegistry(*outgoing));
  bool changed = false;
  for (const RevocationCutoff& c : cutoffs) {
    for (auto& e : next.entries) {
      // Only a revocation this registry makes, and only later: a cut-off
      // never moves back.
      if (e.device != c.device || !e.revoked() || e.revoked_after >= c.counter) continue;
      e.revoked_after = c.counter;
      changed = true;
    }
  }
  if (!changed) return false;
  SignRegistry(impl, next);
  ENLACE_RETURN_IF_ERROR(impl.store().SetDocument(kDocOutgoingRegistry, EncodeRegistry(next)));
  return true;
}

Result<Registry> DraftRegistry(Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry(impl));
  if (!current) {
    return Status::FailedPrecondition("this device has no device registry yet; sync first");
  }
  Registry base = std::move(*current);
  // Two changes before a sync: the second builds on the first.
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, impl.store().GetDocument(kDocOutgoingRegistry));
  if (outgoing) {
    auto mine = DecodeRegistry(*outgoing);
    if (mine.ok() && mine->version > base.version) base = std::move(*mine);
  }
  const RegistryEntry* self = base.Find(impl.device());
  if (self == nullptr || self->revoked() || self->role != Role::kCoordinator) {
    return Status::PermissionDenied("only a coordinator can change the team's devices");
  }
  ENLACE_ASSIGN_OR_RETURN(auto admissions, LoadAdmissions(impl.store()));
  const Registry before = base;
  for (const Member& m : EffectiveMembers(before, admissions)) {
    if (m.pending || before.Find(m.device) != nullptr) continue;
    auto a = std::find_if(admissions.begin(), admissions.end(),
                          [&m](const Admission& x) { return x.device == m.device; });
    if (a != admissions.end()) AddEntry(base, *a, impl.clock().WallMs());
  }
  ++base.version;
  return base;
}

Result<bool> IsRegistryCoordinator(const Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto registry, LoadRegistry(impl));
  if (!registry) return false;
  const RegistryEntry* self = registry->Find(impl.device());
  return self != nullptr && !self->revoked() && self->role == Role::kCoordinator;
}

Status FoldAdmissions(Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, impl.store().GetDocument(kDocOutgoingRegistry));
  if (outgoing) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(bool coordinator, IsRegistryCoordinator(impl));
  if (!coordinator) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(auto current, LoadRegistry(impl));
  ENLACE_ASSIGN_OR_RETURN(Registry next, DraftRegistry(impl));
  if (next.entries.size() == current->entries.size()) return Status::Ok();
  SignRegistry(impl, next);
  ENLACE_RETURN_IF_ERROR(CheckSuccessor(*current, next));
  return impl.store().SetDocument(kDocOutgoingRegistry, EncodeRegistry(next));
}

Result<std::set<DeviceId>> Coordinators(Replica::Impl& impl) {
  ENLACE_ASSIGN_OR_RETURN(auto members, impl.store().ListMembers());
  std::set<DeviceId> out;
  bool self_listed = false;
  for (const Member& m : members) {
    if (m.device == impl.device()) self_listed = true;
    if (m.role == Role::kCoordinator && !m.revoked) out.insert(m.device);
  }
  if (!self_listed) {
    ENLACE_ASSIGN_OR_RETURN(uint64_t founder, impl.store().GetMeta(kMetaTeamFounder));
    if (founder != 0) out.insert(impl.device());
  }
  return out;
}

Result<SecretBytes> TeamKeyBundle(const Replica::Impl& impl) {
  const auto& s = impl.vault().secrets();
  if (s.team.IsZero()) return Status::FailedPrecondition("this device has no team yet");
  const size_t entry = 4 + kAeadKeyBytes;
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

Result<SecretBytes> TeamIdBundle(const Replica::Impl& impl) {
  const auto& s = impl.vault().secrets();
  if (s.team.IsZero()) return Status::FailedPrecondition("this device has no team yet");
  SecretBytes bundle(16 + 4);
  std::copy(s.team.bytes.begin(), s.team.bytes.end(), bundle.data());
  std::fill(bundle.data() + 16, bundle.data() + 20, uint8_t{0});
  return bundle;
}

Status AdoptTeamKeyBundle(Replica::Impl& impl, const SecretBytes& bundle) {
  const auto& current = impl.vault().secrets();
  const size_t entry = 4 + kAeadKeyBytes;
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
  // n == 0: the team alone (an invite waiting for approval).
  if (n != (bundle.size() - 20) / entry) {
    return Status::Corruption("team key bundle is malformed");
  }
  if (!current.team.IsZero() && current.team != team) {
    return Status::PermissionDenied("these keys belong to another team");
  }
  VaultSecrets next = current.Clone();
  next.team = team;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t version = get_u32();
    SecretBytes key(p, kAeadKeyBytes);
    if (version == 0) return Status::Corruption("team key bundle holds key version 0");
    // A key version, once held, never changes: a bundle that would replace
    // it (a rogue coordinator's grant) would make everything written under
    // it unreadable here.
    if (auto held = next.team_keys.find(version); held != next.team_keys.end()) {
      if (!held->second.ConstantTimeEquals(key)) {
        return Status::PermissionDenied("a key grant would replace team key version " +
                                        std::to_string(version) + ", which this device holds");
      }
    } else {
      next.team_keys.emplace(version, std::move(key));
    }
    p += kAeadKeyBytes;
  }
  return impl.vault().Update(std::move(next));
}

}  // namespace enlace::internal

namespace enlace {

using internal::AddEntry;
using internal::LoadAdmissions;
using internal::SecretBytes;

// ---- enlace/team.h ------------------------------------------------------------------------------

namespace {

// Signs `next` and keeps it to be sent with the next sync.
Status QueueRegistry(Replica::Impl& impl, Registry& next) {
  internal::SignRegistry(impl, next);
  ENLACE_ASSIGN_OR_RETURN(auto current, internal::LoadRegistry(impl));
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

Result<TeamId> CreateTeam(Replica& replica) {
  const auto& current = replica.impl().vault().secrets();
  if (!current.team.IsZero()) return Status::FailedPrecondition("this device already has a team");
  internal::VaultSecrets next = current.Clone();
  next.team = TeamId::Random();
  next.team_keys.emplace(1, SecretBytes::Random(internal::kAeadKeyBytes));
  const TeamId team = next.team;
  ENLACE_RETURN_IF_ERROR(replica.impl().vault().Update(std::move(next)));
  // The team's creator is its first coordinator (internal::Coordinators).
  ENLACE_RETURN_IF_ERROR(replica.impl().store().SetMeta(internal::kMetaTeamFounder, 1));
  return team;
}

Result<Bytes> SealTeamKeysFor(Replica& replica, const PublicKey& recipient) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle, internal::TeamKeyBundle(replica.impl()));
  return internal::SealTo(recipient, bundle.view());
}

Status AcceptTeamKeys(Replica& replica, std::span<const uint8_t> sealed) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes bundle,
                          internal::OpenSealed(replica.impl().vault().secrets().box, sealed));
  return internal::AdoptTeamKeyBundle(replica.impl(), bundle);
}

Status TrustDevice(Replica& replica, const DeviceId& device, const DevicePublicKeys& keys) {
  return replica.impl().store().PutDevice(device, keys.signing, keys.encryption);
}

Result<bool> IsCoordinator(Replica& replica) {
  return internal::IsRegistryCoordinator(replica.impl());
}

Result<std::vector<Member>> Members(Replica& replica) {
  return replica.impl().store().ListMembers();
}

Result<bool> RegistryChangePending(Replica& replica) {
  ENLACE_ASSIGN_OR_RETURN(auto doc,
                          replica.impl().store().GetDocument(internal::kDocOutgoingRegistry));
  return doc.has_value();
}

Status ApproveDevice(Replica& replica, const DeviceId& device) {
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, internal::DraftRegistry(impl));
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
  // Its invite carried no key (approval required): the keys go with the
  // approval, sealed to the device's own key.
  ENLACE_RETURN_IF_ERROR(internal::QueueKeyGrantTo(impl, device, found->encryption_key));
  return tx->Commit();
}

Status RevokeDevice(Replica& replica, const DeviceId& device) {
  auto& impl = replica.impl();
  if (device == impl.device()) return Status::InvalidArgument("a device cannot revoke itself");
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, internal::DraftRegistry(impl));
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

namespace {

// Drafts the next registry version, lets `edit` change `device`'s entry,
// and queues the version signed when `edit` says it changed something.
Status EditEntry(Replica& replica, const DeviceId& device,
                 const std::function<Result<bool>(RegistryEntry&)>& edit) {
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, internal::DraftRegistry(impl));
  RegistryEntry* e = FindEntry(next, device);
  if (e == nullptr) return NoSuchDevice(device);
  ENLACE_ASSIGN_OR_RETURN(const bool changed, edit(*e));
  if (!changed) return Status::Ok();
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Status ChangeScopes(Replica& replica, const DeviceId& device, const ScopeId& scope, bool assign) {
  if (scope.IsZero()) {
    return Status::InvalidArgument("the team's shared scope belongs to every member");
  }
  return EditEntry(replica, device, [&](RegistryEntry& e) -> Result<bool> {
    auto at = std::lower_bound(e.scopes.begin(), e.scopes.end(), scope);
    const bool held = at != e.scopes.end() && *at == scope;
    if (assign == held) return false;  // nothing to change
    if (!assign) {
      e.scopes.erase(at);
    } else if (e.scopes.size() >= kMaxScopesPerDevice) {
      return Status::InvalidArgument("a device holds at most " +
                                     std::to_string(kMaxScopesPerDevice) + " scopes");
    } else {
      e.scopes.insert(at, scope);
    }
    return true;
  });
}

}  // namespace

Status RenameDevice(Replica& replica, const DeviceId& device, std::string_view name) {
  if (name.empty() || name.size() > WireLimits{}.max_text_bytes) {
    return Status::InvalidArgument("a device name is 1 to 256 bytes");
  }
  return EditEntry(replica, device, [&](RegistryEntry& e) -> Result<bool> {
    e.name = name;
    return true;
  });
}

Status AssignScope(Replica& replica, const DeviceId& device, const ScopeId& scope) {
  return ChangeScopes(replica, device, scope, true);
}

Status UnassignScope(Replica& replica, const DeviceId& device, const ScopeId& scope) {
  return ChangeScopes(replica, device, scope, false);
}

Status SetApprovalRequired(Replica& replica, bool required) {
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_ASSIGN_OR_RETURN(Registry next, internal::DraftRegistry(impl));
  next.approval_required = required;
  ENLACE_RETURN_IF_ERROR(QueueRegistry(impl, next));
  return tx->Commit();
}

Result<uint32_t> RotateTeamKey(Replica& replica) {
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  // Only a coordinator (DraftRegistry checks) hands out keys.
  ENLACE_RETURN_IF_ERROR(internal::DraftRegistry(impl).status());
  const auto& current = impl.vault().secrets();
  internal::VaultSecrets next = current.Clone();
  const uint32_t version = impl.CurrentKeyVersion() + 1;
  next.team_keys.emplace(version, SecretBytes::Random(internal::kAeadKeyBytes));
  ENLACE_RETURN_IF_ERROR(impl.vault().Update(std::move(next)));
  ENLACE_ASSIGN_OR_RETURN(auto members, impl.store().ListMembers());
  std::vector<DeviceId> to;
  for (const auto& m : members) to.push_back(m.device);
  ENLACE_RETURN_IF_ERROR(internal::QueueKeyGrantsFor(impl, to));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return version;
}

}  // namespace enlace
