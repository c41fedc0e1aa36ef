// A member of a team as the engine knows it: who may write, with which keys,
// in which role, and up to which write number once revoked. The trust layer
// (enlace/registry.h, enlace/team.h) fills the replica's member table from
// the team's signed registry; the replica checks every incoming write's
// writer against it.
#ifndef ENLACE_MEMBER_H_
#define ENLACE_MEMBER_H_

#include <array>
#include <cstdint>
#include <string>

#include "enlace/types.h"

namespace enlace {

enum class Role : uint8_t { kCoordinator = 1, kField = 2 };
inline const char* RoleName(Role role) {
  return role == Role::kCoordinator ? "coordinator" : "field";
}

using PublicKey32 = std::array<uint8_t, 32>;

// A device's public keys.
using PublicKey = PublicKey32;

struct DevicePublicKeys {
  PublicKey signing{};     // Ed25519: verifies the device's writes and requests
  PublicKey encryption{};  // X25519: receives team keys sealed to it
};

// A device of a team, as the team's signed registry and the invites it
// admitted make it (enlace/registry.h, EffectiveMembers).
struct Member {
  DeviceId device;
  PublicKey32 signing_key{};
  PublicKey32 encryption_key{};
  std::string name;
  Role role = Role::kField;
  bool revoked = false;
  bool pending = false;        // joined by invite, waiting for a coordinator's approval
  uint64_t revoked_ms = 0;     // when revoked
  uint64_t revoked_after = 0;  // when revoked: its writes with counter <= this stand
  uint64_t joined_ms = 0;
  friend bool operator==(const Member&, const Member&) = default;
};

}  // namespace enlace

#endif  // ENLACE_MEMBER_H_
