// Shared fixtures for the core tests: temporary folders (temp_dir.h), a
// fake wall clock and test options (device_setup.h), and replicas created
// with the cheapest Argon2id cost, failing the current test when they cannot.
#ifndef ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
#define ENLACE_TESTS_SUPPORT_TEST_UTIL_H_

#include <memory>
#include <string>

#include "device_setup.h"
#include "enlace/replica.h"
#include "temp_dir.h"

namespace enlace::testing {

// Creates a replica or fails the current test.
std::unique_ptr<Replica> MakeReplica(const ReplicaOptions& options,
                                     const std::string& passphrase = "correct horse");

// Makes `b` join `a`'s team (TryJoinTeam) or fails the current test.
void JoinTeam(Replica& a, Replica& b);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
