// A device's team: creating it, moving its keys, and the coordinators'
// changes to its signed device registry (enlace/registry.h). These act on a
// replica's vault and store; the sync engine (enlace/sync.h) carries the
// results to the hub and applies what other coordinators signed.
//
// Thread safety: as the Replica they are given (one thread at a time).
#ifndef ENLACE_TEAM_H_
#define ENLACE_TEAM_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "enlace/member.h"
#include "enlace/replica.h"
#include "enlace/status.h"
#include "enlace/types.h"

namespace enlace {

// The first coordinator: creates a team with a fresh key (version 1).
// kFailedPrecondition if this device already belongs to a team.
Result<TeamId> CreateTeam(Replica& replica);

// The team id and every team key this device holds, sealed (X25519 sealed
// box) to `recipient`: the way team keys travel to another device.
Result<Bytes> SealTeamKeysFor(Replica& replica, const PublicKey& recipient);
// Opens a bundle sealed to this device and adds its keys to the vault.
// kDecryptFailed if it was not sealed to this device; kPermissionDenied if
// it is for a different team than the one this device belongs to.
Status AcceptTeamKeys(Replica& replica, std::span<const uint8_t> sealed);

// Trusts `device`'s signing key for incoming writes. Writes from devices
// not trusted here are refused.
Status TrustDevice(Replica& replica, const DeviceId& device, const DevicePublicKeys& keys);

// The team's members as this device's checked registry and the invites it
// admitted make them; kept current by sync.
Result<std::vector<Member>> Members(Replica& replica);

// True when this device's checked registry lists it as an active
// coordinator: the only source of a device's role (a role written in a
// local file is not one; a coordinator admitted by invite becomes one once
// a registry lists it).
Result<bool> IsCoordinator(Replica& replica);

// Coordinator changes to the registry. Each signs the next registry version
// (with every device admitted by invite folded in) and keeps it to be sent
// by the next sync round, which stores it on the hub or reports why not
// (SyncProgress::registry_refused); until then nothing changes here.
// kPermissionDenied unless this device is an active coordinator;
// kFailedPrecondition before this device has a registry.
//
// Admits a device that joined by invite and waits for approval.
Status ApproveDevice(Replica& replica, const DeviceId& device);
// Revokes a device: its writes after the highest write number of it this
// device has seen are refused everywhere, the hub refuses its requests and
// answers them with a notice that makes it wipe itself.
Status RevokeDevice(Replica& replica, const DeviceId& device);
Status RenameDevice(Replica& replica, const DeviceId& device, std::string_view name);
// Whether devices joining by invite wait for a coordinator's approval.
Status SetApprovalRequired(Replica& replica, bool required);
// Assigns `scope` to a device, or takes it back (docs/PROTOCOL.md §6.12):
// the hub delivers a field device the writes of its scopes only, and
// takes its writes into them only. The team's scope (zero) is everyone's
// and cannot be assigned; a coordinator holds every scope already.
// kInvalidArgument for the zero scope, or over kMaxScopesPerDevice.
Status AssignScope(Replica& replica, const DeviceId& device, const ScopeId& scope);
Status UnassignScope(Replica& replica, const DeviceId& device, const ScopeId& scope);
// Whether a registry change signed here has not reached the hub yet.
Result<bool> RegistryChangePending(Replica& replica);

// Coordinator: makes a new team key version, used by every write from now
// on, and seals it (X25519) to every active member in a signed grant sent
// by the next sync. Revoked devices get nothing. Returns the new version.
Result<uint32_t> RotateTeamKey(Replica& replica);

}  // namespace enlace

#endif  // ENLACE_TEAM_H_
