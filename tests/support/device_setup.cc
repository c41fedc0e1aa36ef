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

}  // namespace enlace::testing
