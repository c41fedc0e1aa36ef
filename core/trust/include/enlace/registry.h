// The team's device registry: who may write, signed by coordinators
// (docs/PROTOCOL.md §18, docs/THREAT_MODEL.md "Device registry").
//
// Membership is decided by signatures, never by the hub's word:
// - A Registry is a versioned list of devices (keys, name, role, revocation)
//   signed by a coordinator. Version 1 is signed by the team's founder; every
//   later version must be signed by a coordinator that the previous version
//   lists and has not revoked, must keep every device with its keys, and may
//   only add revocations. A device holds the newest version it has checked
//   and accepts only successors of it.
// - An invite carries an InviteGrant signed by the coordinator who made it,
//   naming a one-time Ed25519 key derived from the invite code's secret. The
//   new device signs its own keys with that key (an Admission), so it is a
//   member as soon as it joins, before any coordinator signs a new registry
//   version; or a pending one, when the team requires approval.
// - Writes are accepted only from members; from a revoked member only up to
//   the write counter its revocation names.
//
// Everything here is pure: encoding, signing and checking. The replica and
// the hub store the documents and call these functions.
#ifndef ENLACE_REGISTRY_H_
#define ENLACE_REGISTRY_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/limits.h"
#include "enlace/member.h"
#include "enlace/status.h"
#include "enlace/types.h"

namespace enlace {

// What changed in a team's trust documents since the version a device holds:
// the registry versions after the one it has (in order) and every admission
// no registry version lists yet. The device checks all of it (registry.h).
struct TrustUpdate {
  uint64_t version = 0;  // the hub's count of trust changes; 0: nothing to apply
  std::vector<Bytes> registries;
  std::vector<Bytes> admissions;
};

using InviteId = std::array<uint8_t, 16>;
using SignatureBytes = std::array<uint8_t, 64>;

struct RegistryEntry {
  DeviceId device;
  PublicKey32 signing_key{};
  PublicKey32 encryption_key{};
  std::string name;
  Role role = Role::kField;
  InviteId invite{};           // the invite it joined with (zero: founder, added by hand)
  uint64_t joined_ms = 0;      // as the admitting coordinator recorded it
  uint64_t revoked_ms = 0;     // 0: not revoked
  uint64_t revoked_after = 0;  // when revoked: its writes with counter <= this stand
  // The scopes a coordinator assigned it (sorted, unique; registry format
  // 2): besides the team's shared scope, which every member holds, the hub
  // delivers a field device only these scopes' writes and takes its writes
  // only into them. A coordinator holds every scope (docs/PROTOCOL.md §6.12).
  std::vector<ScopeId> scopes;
  bool revoked() const { return revoked_ms != 0; }
  bool InScope(const ScopeId& scope) const;
  friend bool operator==(const RegistryEntry&, const RegistryEntry&) = default;
};

// A revocation the hub could not store because the revoked device has sent
// writes after its cut-off: the hub stops taking that device's writes and
// names the highest one it stores, for the coordinator to sign again.
struct RevocationCutoff {
  DeviceId device;
  uint64_t counter = 0;
  friend bool operator==(const RevocationCutoff&, const RevocationCutoff&) = default;
};

// At most this many scopes assigned to one device.
inline constexpr size_t kMaxScopesPerDevice = 4096;

struct Registry {
  // 1: no scopes; 2: each entry lists its scopes. A version keeps the
  // format it was signed in; a coordinator signs new ones in the newest.
  static constexpr uint8_t kNewestFormat = 2;
  uint8_t format = kNewestFormat;
  TeamId team;
  uint64_t version = 0;
  bool approval_required = false;      // devices joining by invite wait for approval
  std::vector<RegistryEntry> entries;  // sorted by device id, unique
  DeviceId signer;
  SignatureBytes signature{};

  const RegistryEntry* Find(const DeviceId& device) const;
  friend bool operator==(const Registry&, const Registry&) = default;
};

// A coordinator's authorisation of one invite: whoever holds the secret of
// `invite_key` may add one device with `role`.
struct InviteGrant {
  TeamId team;
  InviteId invite{};
  Role role = Role::kField;
  bool needs_approval = false;
  uint64_t expires_ms = 0;
  PublicKey32 invite_key{};  // Ed25519, derived from the invite code's secret
  DeviceId issuer;
  SignatureBytes signature{};
  friend bool operator==(const InviteGrant&, const InviteGrant&) = default;
};

// A device added by an invite: the grant and the device's keys; `binding`
// is the invite key's signature of the invite id and the device's id, keys
// and name (AdmissionSigningInput).
struct Admission {
  InviteGrant grant;
  DeviceId device;
  PublicKey32 signing_key{};
  PublicKey32 encryption_key{};
  std::string name;
  SignatureBytes binding{};
  friend bool operator==(const Admission&, const Admission&) = default;
};

// A team key version sealed (X25519) to one member, signed by a coordinator.
struct KeyGrant {
  TeamId team;
  uint32_t version = 0;
  DeviceId recipient;
  Bytes sealed;  // crypto_box_seal of the team-key bundle holding `version`
  DeviceId issuer;
  SignatureBytes signature{};
  friend bool operator==(const KeyGrant&, const KeyGrant&) = default;
};

// ---- encoding (bounded, canonical; kCorruption / kResourceExhausted) ----
Bytes EncodeRegistry(const Registry& r);
Result<Registry> DecodeRegistry(std::span<const uint8_t> bytes, const WireLimits& l = {});
Bytes EncodeInviteGrant(const InviteGrant& g);
Result<InviteGrant> DecodeInviteGrant(std::span<const uint8_t> bytes, const WireLimits& l = {});
Bytes EncodeAdmission(const Admission& a);
Result<Admission> DecodeAdmission(std::span<const uint8_t> bytes, const WireLimits& l = {});
Bytes EncodeKeyGrant(const KeyGrant& g);
Result<KeyGrant> DecodeKeyGrant(std::span<const uint8_t> bytes, const WireLimits& l = {});

// The bytes each signature covers (everything but the signature itself,
// with a domain-separating prefix).
Bytes RegistrySigningInput(const Registry& r);
Bytes InviteGrantSigningInput(const InviteGrant& g);
Bytes AdmissionSigningInput(const Admission& a);
Bytes KeyGrantSigningInput(const KeyGrant& g);

// ---- checks -----------------------------------------------------------------------------

// kPermissionDenied unless `r` is signed by a coordinator it lists and has
// not revoked (how a device checks the registry an invite carried).
Status CheckSelfSigned(const Registry& r);

// Version 1 of a team's registry: one coordinator, not revoked, who signed it.
Status CheckGenesis(const Registry& r);

// kPermissionDenied unless `next` may follow `current`: same team, a higher
// version, signed by a coordinator `current` lists and has not revoked, every
// device of `current` still there with the same keys, invite and join time,
// and every revocation kept as it was. Entries sorted and unique.
Status CheckSuccessor(const Registry& current, const Registry& next);

// Checks a chain of encoded registries that follow `trusted` (versions not
// above trusted.version are skipped) and returns the newest; `trusted` when
// none is newer.
Result<Registry> FollowChain(const Registry& trusted, const std::vector<Bytes>& encoded,
                             const WireLimits& l = {});

// kPermissionDenied unless the grant's issuer is a coordinator `registry`
// lists and has not revoked, its signature holds, it is for registry's
// team, and the binding is the invite key's signature.
Status CheckAdmission(const Admission& a, const Registry& registry);

// kPermissionDenied unless the key grant's issuer is a non-revoked
// coordinator of `registry` and its signature holds.
Status CheckKeyGrant(const KeyGrant& g, const Registry& registry);

// The registry entry of the device `a` admitted (not revoked).
RegistryEntry EntryFor(const Admission& a, uint64_t joined_ms);

// The team's members: the registry's entries, then every valid admission of
// a device the registry does not list (pending when its grant needs
// approval). Admissions that fail CheckAdmission, or that reuse an invite
// (of an entry or of another admission), are left out.
std::vector<Member> EffectiveMembers(const Registry& registry,
                                     const std::vector<Admission>& admissions);

// True when a write by `device` with `counter` stands under `members`:
// the device is a member, not pending, and not revoked before it.
bool MayWrite(const std::vector<Member>& members, const DeviceId& device, uint64_t counter);

// ---- invite keys ------------------------------------------------------------------------

// The Ed25519 public key of the invite key derived from an invite secret.
Result<PublicKey32> InvitePublicKey(std::span<const uint8_t> invite_secret);
// Signs an admission's binding with the invite key of `invite_secret`.
Status SignAdmission(Admission& a, std::span<const uint8_t> invite_secret);

}  // namespace enlace

#endif  // ENLACE_REGISTRY_H_
