// Replicas for the tests, the benchmarks and the fuzzers, without doctest
// (enlace_test_support_core): a manually advanced wall clock, options with
// the cheapest Argon2id cost, and a device joining a team by hand.
#ifndef ENLACE_TESTS_SUPPORT_DEVICE_SETUP_H_
#define ENLACE_TESTS_SUPPORT_DEVICE_SETUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "enlace/replica.h"
#include "enlace/status.h"

namespace enlace::testing {

// A manually advanced wall clock shared by reference.
struct FakeClock {
  uint64_t now_ms = 1'780'000'000'000;  // 2026
  WallClock AsWallClock() {
    return [this] { return now_ms; };
  }
};

// Options for a replica in `dir` with the minimum KDF cost and `clock`.
ReplicaOptions TestOptions(const std::string& dir, FakeClock* clock = nullptr,
                           bool in_memory = false);

// Makes `b` join `a`'s team: trust each other's keys both ways and hand over
// the team keys sealed to b. `a` must have a team. The first failure.
Status TryJoinTeam(Replica& a, Replica& b);

// `founder` creates a team and each of `members` joins it (TryJoinTeam);
// the members also trust each other's keys. The first failure.
Status TryFormTeam(Replica& founder, const std::vector<Replica*>& members);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_DEVICE_SETUP_H_
