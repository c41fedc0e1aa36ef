// The device side of the signed device registry (enlace/registry.h), over a
// replica's internals: keeping the checked registry and admissions, deriving
// the members from them, signing new registry versions, and moving team keys
// in bundles and signed grants. The public face is enlace/team.h; the sync
// engine (sync/sync.cc) calls these while it applies a hub's answer.
// Functions that change state must run inside a store transaction.
#ifndef ENLACE_CORE_TRUST_TEAM_IMPL_H_
#define ENLACE_CORE_TRUST_TEAM_IMPL_H_

#include <optional>
#include <set>
#include <vector>

#include "enlace/registry.h"
#include "replica/replica_impl.h"

namespace enlace::internal {

// The newest registry this device checked; nullopt before it has one.
Result<std::optional<Registry>> LoadRegistry(const Replica::Impl& impl);
// Makes `anchor` this device's first registry, without a chain: the
// founder's own genesis, or the one a coordinator put in an invite
// envelope (which the hub cannot read or change). It must be signed by a
// coordinator it lists. In a transaction.
Status AdoptAnchorRegistry(Replica::Impl& impl, const Registry& anchor);
// Checks and applies a trust update (registry chain, admissions) and
// recomputes the members. In a transaction.
Status ApplyTrust(Replica::Impl& impl, const TrustUpdate& update);
// A field device keeps only the scopes its registry entry lists (§6.12):
// a scope taken back leaves the device, as a revocation's wipe would
// (Impl::ForgetScopesNotHeld). Nothing for a coordinator. In a transaction.
// Against `registry` and `admissions` when the caller has them decoded,
// else against those the device stores.
Result<size_t> ForgetScopesNotHeld(Replica::Impl& impl, const Registry& registry,
                                   const std::vector<Admission>& admissions);
Result<size_t> ForgetScopesNotHeld(Replica::Impl& impl);
// Signs `next` with this device's key (next.signer = this device).
void SignRegistry(const Replica::Impl& impl, Registry& next);
// Opens the key grants addressed to this device and adds their keys to the
// vault; grants that fail the checks are skipped (returns how many).
Result<size_t> AcceptKeyGrants(Replica::Impl& impl, const std::vector<Bytes>& grants);

// The trust documents this device holds that a hub restored from a backup
// may lack (docs/PROTOCOL.md §9): the admissions of its last trust update
// and the newest key grant made to it.
struct RelayDocuments {
  std::vector<Bytes> admissions;
  std::vector<Bytes> key_grants;
};
Result<RelayDocuments> DocumentsToRelay(Replica::Impl& impl);
// The registry versions above `hub_version` this device holds, ascending
// and without a hole, at most `max` (the newest alone when the links were
// not kept: a store from before they were).
Result<std::vector<Bytes>> RegistryChainAbove(Replica::Impl& impl, uint64_t hub_version,
                                              size_t max);

// A list of documents as one document (u32 count, then each as a blob).
Bytes EncodeList(const std::vector<Bytes>& docs);
Result<std::vector<Bytes>> DecodeList(internal::ByteView bytes);
// Seals every team key this device holds to each of `devices` that is an
// active member, signs a grant per device and queues it for the hub.
Status QueueKeyGrantsFor(Replica::Impl& impl, const std::vector<DeviceId>& devices);
// The same for one device, to its encryption key (a device being approved,
// not yet an active member).
Status QueueKeyGrantTo(Replica::Impl& impl, const DeviceId& device, const BoxPublicKey& to);
// The hub refused the registry this device queued because revoked devices
// had sent writes after their cut-offs, and named the highest write it
// stores of each (it takes no more of theirs). Signs the same registry
// version again with those cut-offs and queues it. False, changing
// nothing, when the refusal names no cut-off this registry can take. In a
// transaction.
Result<bool> ResignRevocations(Replica::Impl& impl, const std::vector<RevocationCutoff>& cutoffs);
// The registry a coordinator would sign next: the current one with every
// valid, non-pending admission folded in as an entry.
Result<Registry> DraftRegistry(Replica::Impl& impl);
// True when this device's registry lists it as an active coordinator (a
// coordinator admitted by invite becomes one once a registry lists it).
Result<bool> IsRegistryCoordinator(const Replica::Impl& impl);
// A registry coordinator folds the devices admitted by invite (not those
// waiting for approval) into a new registry version, to be sent by the
// next round; nothing when none is new or a change is already queued.
// In a transaction.
Status FoldAdmissions(Replica::Impl& impl);
// The devices whose word counts as a coordinator's for team-wide settings
// (case work's schema overlay): coordinators the members table lists and
// does not mark revoked, and this device when it created the team.
Result<std::set<DeviceId>> Coordinators(Replica::Impl& impl);

// The team id and keys in one guarded buffer (how team keys travel):
// team id | u32 count | (u32 version | key[32])*; and the inverse, which
// adds a received bundle's keys to the vault.
Result<SecretBytes> TeamKeyBundle(const Replica::Impl& impl);
// The same with no key (count 0): the team id alone, for an invite that
// waits for a coordinator's approval.
Result<SecretBytes> TeamIdBundle(const Replica::Impl& impl);
Status AdoptTeamKeyBundle(Replica::Impl& impl, const SecretBytes& bundle);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_TRUST_TEAM_IMPL_H_
