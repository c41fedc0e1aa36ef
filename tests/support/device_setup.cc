#include "device_setup.h"

#include "enlace/team.h"
#include "enlace/types.h"

namespace enlace::testing {

ReplicaOptions TestOptions(const std::string& dir, FakeClock* clock, bool in_memory) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  if (clock != nullptr) o.clock.wall_clock = clock->AsWallClock();
  o.in_memory_store = in_memory;
  return o;
}

Status TryJoinTeam(Replica& a, Replica& b) {
  ENLACE_RETURN_IF_ERROR(TrustDevice(a, b.device_id(), b.public_keys()));
  ENLACE_RETURN_IF_ERROR(TrustDevice(b, a.device_id(), a.public_keys()));
  ENLACE_ASSIGN_OR_RETURN(const Bytes sealed, SealTeamKeysFor(a, b.public_keys().encryption));
  return AcceptTeamKeys(b, sealed);
}

Status TryFormTeam(Replica& founder, const std::vector<Replica*>& members) {
  ENLACE_RETURN_IF_ERROR(CreateTeam(founder).status());
  for (Replica* m : members) ENLACE_RETURN_IF_ERROR(TryJoinTeam(founder, *m));
  for (Replica* m : members) {
    for (Replica* other : members) {
      if (other != m)
        ENLACE_RETURN_IF_ERROR(TrustDevice(*m, other->device_id(), other->public_keys()));
    }
  }
  return Status::Ok();
}

}  // namespace enlace::testing
