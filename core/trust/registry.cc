#include "enlace/registry.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "base/codec.h"
#include "crypto/crypto.h"
#include "trust/doc_codec.h"

namespace enlace {

using internal::Decoder;
using internal::Encoder;

namespace {

constexpr uint8_t kFormat = 1;
// Registry versions and the times and write numbers of entries fit SQLite's
// signed integers (the hub's and the device's stores).
constexpr uint64_t kMaxRegistryVersion = (uint64_t{1} << 62);
constexpr uint64_t kMaxStoredNumber = (uint64_t{1} << 63) - 1;
constexpr char kInviteKeyContext[9] = "enlinvky";
constexpr uint64_t kInviteKeySubkey = 1;

// Domain separation: a signature made for one kind of document never
// verifies as another.
constexpr std::string_view kRegistryDomain = "enlace registry v1\n";
constexpr std::string_view kGrantDomain = "enlace invite grant v1\n";
constexpr std::string_view kAdmissionDomain = "enlace admission v1\n";
constexpr std::string_view kKeyGrantDomain = "enlace key grant v1\n";

// A document starts with its format byte; `what` names it in the error.
Status ExpectFormat(Decoder& d, const std::string& what) {
  uint8_t format = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(format, (what + " format").c_str()));
  if (format != kFormat) return Status::Corruption("unknown " + what + " format");
  return Status::Ok();
}

void Domain(Encoder& e, std::string_view domain) { e.Raw(internal::AsBytes(domain)); }

void PutRegistryBody(Encoder& e, const Registry& r) {
  e.U8(r.format);
  e.Raw(r.team.bytes);
  e.U64(r.version);
  internal::PutBool(e, r.approval_required);
  e.U32(static_cast<uint32_t>(r.entries.size()));
  for (const auto& x : r.entries) {
    e.Raw(x.device.bytes);
    e.Raw(x.signing_key);
    e.Raw(x.encryption_key);
    e.String(x.name);
    internal::PutRole(e, x.role);
    e.Raw(x.invite);
    e.U64(x.joined_ms);
    e.U64(x.revoked_ms);
    e.U64(x.revoked_after);
    if (r.format >= 2) {
      e.U32(static_cast<uint32_t>(x.scopes.size()));
      for (const ScopeId& s : x.scopes) e.Raw(s.bytes);
    }
  }
  e.Raw(r.signer.bytes);
}

void PutGrantBody(Encoder& e, const InviteGrant& g) {
  e.U8(kFormat);
  e.Raw(g.team.bytes);
  e.Raw(g.invite);
  internal::PutRole(e, g.role);
  internal::PutBool(e, g.needs_approval);
  e.U64(g.expires_ms);
  e.Raw(g.invite_key);
  e.Raw(g.issuer.bytes);
}

Status GetGrantBody(Decoder& d, InviteGrant& g) {
  ENLACE_RETURN_IF_ERROR(ExpectFormat(d, "invite grant"));
  ENLACE_RETURN_IF_ERROR(d.Raw(g.team.bytes, "grant team"));
  ENLACE_RETURN_IF_ERROR(d.Raw(g.invite, "grant invite"));
  ENLACE_RETURN_IF_ERROR(internal::GetRole(d, g.role));
  ENLACE_RETURN_IF_ERROR(internal::GetBool(d, g.needs_approval, "grant approval"));
  ENLACE_RETURN_IF_ERROR(d.U64(g.expires_ms, "grant expiry"));
  ENLACE_RETURN_IF_ERROR(d.Raw(g.invite_key, "grant invite key"));
  return d.Raw(g.issuer.bytes, "grant issuer");
}

// What the invite key signs: the invite and the new device, not the grant
// (the new device first sees the grant in the hub's answer).
void PutBindingBody(Encoder& e, const Admission& a) {
  e.Raw(a.grant.invite);
  e.Raw(a.device.bytes);
  e.Raw(a.signing_key);
  e.Raw(a.encryption_key);
  e.String(a.name);
}

void PutKeyGrantBody(Encoder& e, const KeyGrant& g) {
  e.U8(kFormat);
  e.Raw(g.team.bytes);
  e.U32(g.version);
  e.Raw(g.recipient.bytes);
  e.Blob(g.sealed);
  e.Raw(g.issuer.bytes);
}

// A signed document's two encodings: what its signer signs (a domain, then
// the body) and how it travels and is stored (the body, then the signature).
template <typename Doc>
Bytes SigningInputOf(std::string_view domain, const Doc& doc,
                     void (*put_body)(Encoder&, const Doc&)) {
  Encoder e;
  Domain(e, domain);
  put_body(e, doc);
  return e.Finish();
}

template <typename Doc>
Bytes SignedEncodingOf(const Doc& doc, void (*put_body)(Encoder&, const Doc&)) {
  Encoder e;
  put_body(e, doc);
  e.Raw(doc.signature);
  return e.Finish();
}

template <typename T, typename F>
Result<T> DecodeDocument(std::span<const uint8_t> bytes, F&& read) {
  Decoder d(bytes);
  T out;
  ENLACE_RETURN_IF_ERROR(read(d, out));
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("document"));
  return out;
}

bool Verify(const PublicKey32& key, const Bytes& input, const SignatureBytes& sig) {
  return internal::VerifySignature(key, input, sig);
}

// The signer's entry when it is a coordinator `r` lists and has not revoked.
const RegistryEntry* ActiveCoordinator(const Registry& r, const DeviceId& device) {
  const RegistryEntry* e = r.Find(device);
  if (e == nullptr || e->revoked() || e->role != Role::kCoordinator) return nullptr;
  return e;
}

Member MemberOf(const RegistryEntry& e) {
  Member m;
  m.device = e.device;
  m.signing_key = e.signing_key;
  m.encryption_key = e.encryption_key;
  m.name = e.name;
  m.role = e.role;
  m.revoked = e.revoked();
  m.revoked_ms = e.revoked_ms;
  m.revoked_after = e.revoked_after;
  m.joined_ms = e.joined_ms;
  return m;
}

Status CheckEntriesSorted(const Registry& r) {
  for (size_t i = 1; i < r.entries.size(); ++i) {
    if (!(r.entries[i - 1].device < r.entries[i].device)) {
      return Status::Corruption("registry entries are not sorted and unique");
    }
  }
  return Status::Ok();
}

// The invite's one-time Ed25519 key pair, derived from the invite code's
// secret: `pk` and, when wanted, the secret key.
Status InviteKeyPair(std::span<const uint8_t> invite_secret, PublicKey32& pk,
                     internal::SecretBytes& sk) {
  ENLACE_RETURN_IF_ERROR(internal::EnsureSodium());
  if (invite_secret.size() != crypto_kdf_KEYBYTES) {
    return Status::InvalidArgument("an invite secret is 32 bytes");
  }
  const internal::SecretBytes master(invite_secret.data(), invite_secret.size());
  const internal::SecretBytes seed =
      internal::DeriveSubkey(master, kInviteKeySubkey, kInviteKeyContext, crypto_sign_SEEDBYTES);
  sk = internal::SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  return Status::Ok();
}

}  // namespace

bool RegistryEntry::InScope(const ScopeId& scope) const {
  return scope.IsZero() || role == Role::kCoordinator ||
         std::binary_search(scopes.begin(), scopes.end(), scope);
}

const RegistryEntry* Registry::Find(const DeviceId& device) const {
  auto it =
      std::lower_bound(entries.begin(), entries.end(), device,
                       [](const RegistryEntry& e, const DeviceId& d) { return e.device < d; });
  return it != entries.end() && it->device == device ? &*it : nullptr;
}

// ---- encoding -------------------------------------------------------------------------

Bytes RegistrySigningInput(const Registry& r) {
  return SigningInputOf(kRegistryDomain, r, PutRegistryBody);
}

Bytes EncodeRegistry(const Registry& r) { return SignedEncodingOf(r, PutRegistryBody); }

Result<Registry> DecodeRegistry(std::span<const uint8_t> bytes, const WireLimits& l) {
  return DecodeDocument<Registry>(bytes, [&l](Decoder& d, Registry& r) -> Status {
    ENLACE_RETURN_IF_ERROR(d.U8(r.format, "registry format"));
    if (r.format < 1 || r.format > Registry::kNewestFormat) {
      return Status::Corruption("unknown registry format");
    }
    ENLACE_RETURN_IF_ERROR(d.Raw(r.team.bytes, "registry team"));
    ENLACE_RETURN_IF_ERROR(d.U64(r.version, "registry version"));
    if (r.version > kMaxRegistryVersion) {
      return Status::Corruption("registry version out of range");
    }
    ENLACE_RETURN_IF_ERROR(internal::GetBool(d, r.approval_required, "registry approval"));
    uint32_t n = 0;
    ENLACE_RETURN_IF_ERROR(
        d.Count(n, l.max_members, 16 + 32 + 32 + 4 + 1 + 16 + 24, "registry entries"));
    r.entries.resize(n);
    for (auto& x : r.entries) {
      ENLACE_RETURN_IF_ERROR(d.Raw(x.device.bytes, "entry device"));
      ENLACE_RETURN_IF_ERROR(d.Raw(x.signing_key, "entry signing key"));
      ENLACE_RETURN_IF_ERROR(d.Raw(x.encryption_key, "entry encryption key"));
      ENLACE_RETURN_IF_ERROR(d.String(x.name, l.max_text_bytes, "entry name"));
      ENLACE_RETURN_IF_ERROR(internal::GetRole(d, x.role));
      ENLACE_RETURN_IF_ERROR(d.Raw(x.invite, "entry invite"));
      ENLACE_RETURN_IF_ERROR(d.U64(x.joined_ms, "entry joined"));
      ENLACE_RETURN_IF_ERROR(d.U64(x.revoked_ms, "entry revoked"));
      ENLACE_RETURN_IF_ERROR(d.U64(x.revoked_after, "entry revoked after"));
      if (x.joined_ms > kMaxStoredNumber || x.revoked_ms > kMaxStoredNumber ||
          x.revoked_after > kMaxStoredNumber) {
        return Status::Corruption("registry entry number out of range");
      }
      if (r.format >= 2) {
        uint32_t k = 0;
        ENLACE_RETURN_IF_ERROR(d.Count(k, kMaxScopesPerDevice, 16, "entry scopes"));
        x.scopes.resize(k);
        for (size_t i = 0; i < x.scopes.size(); ++i) {
          ENLACE_RETURN_IF_ERROR(d.Raw(x.scopes[i].bytes, "entry scope"));
          // Sorted and unique; the team's scope is never listed.
          if (x.scopes[i].IsZero() || (i > 0 && !(x.scopes[i - 1] < x.scopes[i]))) {
            return Status::Corruption("registry entry scopes are not sorted, unique and named");
          }
        }
      }
    }
    ENLACE_RETURN_IF_ERROR(d.Raw(r.signer.bytes, "registry signer"));
    ENLACE_RETURN_IF_ERROR(d.Raw(r.signature, "registry signature"));
    return CheckEntriesSorted(r);
  });
}

Bytes InviteGrantSigningInput(const InviteGrant& g) {
  return SigningInputOf(kGrantDomain, g, PutGrantBody);
}

Bytes EncodeInviteGrant(const InviteGrant& g) { return SignedEncodingOf(g, PutGrantBody); }

Result<InviteGrant> DecodeInviteGrant(std::span<const uint8_t> bytes, const WireLimits&) {
  return DecodeDocument<InviteGrant>(bytes, [](Decoder& d, InviteGrant& g) -> Status {
    ENLACE_RETURN_IF_ERROR(GetGrantBody(d, g));
    return d.Raw(g.signature, "grant signature");
  });
}

Bytes AdmissionSigningInput(const Admission& a) {
  return SigningInputOf(kAdmissionDomain, a, PutBindingBody);
}

Bytes EncodeAdmission(const Admission& a) {
  Encoder e;
  e.Blob(EncodeInviteGrant(a.grant));
  e.Raw(a.device.bytes);
  e.Raw(a.signing_key);
  e.Raw(a.encryption_key);
  e.String(a.name);
  e.Raw(a.binding);
  return e.Finish();
}

Result<Admission> DecodeAdmission(std::span<const uint8_t> bytes, const WireLimits& l) {
  return DecodeDocument<Admission>(bytes, [&l](Decoder& d, Admission& a) -> Status {
    Bytes grant;
    ENLACE_RETURN_IF_ERROR(d.Blob(grant, 1024, "admission grant"));
    ENLACE_ASSIGN_OR_RETURN(a.grant, DecodeInviteGrant(grant, l));
    ENLACE_RETURN_IF_ERROR(d.Raw(a.device.bytes, "admission device"));
    ENLACE_RETURN_IF_ERROR(d.Raw(a.signing_key, "admission signing key"));
    ENLACE_RETURN_IF_ERROR(d.Raw(a.encryption_key, "admission encryption key"));
    ENLACE_RETURN_IF_ERROR(d.String(a.name, l.max_text_bytes, "admission name"));
    return d.Raw(a.binding, "admission binding");
  });
}

Bytes KeyGrantSigningInput(const KeyGrant& g) {
  return SigningInputOf(kKeyGrantDomain, g, PutKeyGrantBody);
}

Bytes EncodeKeyGrant(const KeyGrant& g) { return SignedEncodingOf(g, PutKeyGrantBody); }

Result<KeyGrant> DecodeKeyGrant(std::span<const uint8_t> bytes, const WireLimits& l) {
  return DecodeDocument<KeyGrant>(bytes, [&l](Decoder& d, KeyGrant& g) -> Status {
    ENLACE_RETURN_IF_ERROR(ExpectFormat(d, "key grant"));
    ENLACE_RETURN_IF_ERROR(d.Raw(g.team.bytes, "key grant team"));
    ENLACE_RETURN_IF_ERROR(d.U32(g.version, "key grant version"));
    ENLACE_RETURN_IF_ERROR(d.Raw(g.recipient.bytes, "key grant recipient"));
    ENLACE_RETURN_IF_ERROR(d.Blob(g.sealed, l.max_envelope_bytes, "key grant sealed keys"));
    ENLACE_RETURN_IF_ERROR(d.Raw(g.issuer.bytes, "key grant issuer"));
    return d.Raw(g.signature, "key grant signature");
  });
}

// ---- checks ---------------------------------------------------------------------------

Status CheckSelfSigned(const Registry& r) {
  ENLACE_RETURN_IF_ERROR(CheckEntriesSorted(r));
  const RegistryEntry* signer = ActiveCoordinator(r, r.signer);
  if (signer == nullptr) {
    return Status::PermissionDenied("the registry is not signed by a coordinator it lists");
  }
  if (!Verify(signer->signing_key, RegistrySigningInput(r), r.signature)) {
    return Status::PermissionDenied("the registry's signature does not verify");
  }
  return Status::Ok();
}

Status CheckGenesis(const Registry& r) {
  if (r.version != 1 || r.entries.size() != 1) {
    return Status::PermissionDenied("a team's first registry lists exactly its founder");
  }
  return CheckSelfSigned(r);
}

Status CheckSuccessor(const Registry& current, const Registry& next) {
  ENLACE_RETURN_IF_ERROR(CheckEntriesSorted(next));
  if (next.team != current.team) return Status::PermissionDenied("registry of another team");
  // Versions follow one another: a version that skips ahead (e.g. 2^63-1)
  // would leave no room for the next one, and a coordinator could make its
  // own registry the last the team can ever have.
  if (next.version != current.version + 1) {
    return Status::PermissionDenied("registry version " + std::to_string(next.version) +
                                    " does not follow " + std::to_string(current.version));
  }
  const RegistryEntry* signer = ActiveCoordinator(current, next.signer);
  if (signer == nullptr) {
    return Status::PermissionDenied(
        "registry signed by a device that is not an active coordinator of the team");
  }
  if (!Verify(signer->signing_key, RegistrySigningInput(next), next.signature)) {
    return Status::PermissionDenied("the registry's signature does not verify");
  }
  for (const auto& old : current.entries) {
    const RegistryEntry* now = next.Find(old.device);
    if (now == nullptr) return Status::PermissionDenied("a registry may not drop a device");
    if (now->signing_key != old.signing_key || now->encryption_key != old.encryption_key ||
        now->invite != old.invite || now->joined_ms != old.joined_ms) {
      return Status::PermissionDenied("a registry may not change a device's keys");
    }
    if (old.revoked() &&
        (now->revoked_ms != old.revoked_ms || now->revoked_after != old.revoked_after)) {
      return Status::PermissionDenied("a revocation cannot be undone or moved");
    }
  }
  return Status::Ok();
}

Result<Registry> FollowChain(const Registry& trusted, const std::vector<Bytes>& encoded,
                             const WireLimits& l) {
  Registry current = trusted;
  for (const auto& bytes : encoded) {
    ENLACE_ASSIGN_OR_RETURN(Registry next, DecodeRegistry(bytes, l));
    if (next.version <= current.version) continue;
    ENLACE_RETURN_IF_ERROR(CheckSuccessor(current, next));
    current = std::move(next);
  }
  return current;
}

Status CheckAdmission(const Admission& a, const Registry& registry) {
  const InviteGrant& g = a.grant;
  if (g.team != registry.team) return Status::PermissionDenied("admission for another team");
  const RegistryEntry* issuer = ActiveCoordinator(registry, g.issuer);
  if (issuer == nullptr) {
    return Status::PermissionDenied("the invite was not made by an active coordinator");
  }
  if (!Verify(issuer->signing_key, InviteGrantSigningInput(g), g.signature)) {
    return Status::PermissionDenied("the invite grant's signature does not verify");
  }
  if (!Verify(g.invite_key, AdmissionSigningInput(a), a.binding)) {
    return Status::PermissionDenied("the device was not admitted with the invite's key");
  }
  return Status::Ok();
}

Status CheckKeyGrant(const KeyGrant& g, const Registry& registry) {
  if (g.team != registry.team) return Status::PermissionDenied("key grant for another team");
  const RegistryEntry* issuer = ActiveCoordinator(registry, g.issuer);
  if (issuer == nullptr) {
    return Status::PermissionDenied("a team key came from a device that is not a coordinator");
  }
  if (!Verify(issuer->signing_key, KeyGrantSigningInput(g), g.signature)) {
    return Status::PermissionDenied("the key grant's signature does not verify");
  }
  return Status::Ok();
}

RegistryEntry EntryFor(const Admission& a, uint64_t joined_ms) {
  RegistryEntry e;
  e.device = a.device;
  e.signing_key = a.signing_key;
  e.encryption_key = a.encryption_key;
  e.name = a.name;
  e.role = a.grant.role;
  e.invite = a.grant.invite;
  e.joined_ms = joined_ms;
  return e;
}

std::vector<Member> EffectiveMembers(const Registry& registry,
                                     const std::vector<Admission>& admissions) {
  std::vector<Member> out;
  std::set<InviteId> used;
  std::set<InviteId> seen_twice;
  const InviteId none{};
  for (const auto& e : registry.entries) {
    if (e.invite != none) used.insert(e.invite);
  }
  {
    std::set<InviteId> seen;
    for (const auto& a : admissions) {
      if (!seen.insert(a.grant.invite).second) seen_twice.insert(a.grant.invite);
    }
  }
  for (const auto& e : registry.entries) out.push_back(MemberOf(e));
  for (const auto& a : admissions) {
    if (registry.Find(a.device) != nullptr) continue;  // already an entry
    if (used.contains(a.grant.invite) || seen_twice.contains(a.grant.invite)) continue;
    if (!CheckAdmission(a, registry).ok()) continue;
    Member m = MemberOf(EntryFor(a, 0));
    m.pending = a.grant.needs_approval;
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const Member& x, const Member& y) { return x.device < y.device; });
  return out;
}

bool MayWrite(const std::vector<Member>& members, const DeviceId& device, uint64_t counter) {
  for (const auto& m : members) {
    if (m.device != device) continue;
    if (m.pending) return false;
    return !m.revoked || counter <= m.revoked_after;
  }
  return false;
}

// ---- invite keys ------------------------------------------------------------------------

Result<PublicKey32> InvitePublicKey(std::span<const uint8_t> invite_secret) {
  PublicKey32 pk{};
  internal::SecretBytes sk;
  ENLACE_RETURN_IF_ERROR(InviteKeyPair(invite_secret, pk, sk));
  return pk;
}

Status SignAdmission(Admission& a, std::span<const uint8_t> invite_secret) {
  PublicKey32 pk{};
  internal::SecretBytes sk;
  ENLACE_RETURN_IF_ERROR(InviteKeyPair(invite_secret, pk, sk));
  a.binding = internal::Sign(sk, AdmissionSigningInput(a));
  return Status::Ok();
}

}  // namespace enlace
