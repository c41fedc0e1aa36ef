// Shared fixtures for the core tests: temporary folders (temp_dir.h), a
// fake wall clock and test options (device_setup.h), and replicas created
// with the cheapest Argon2id cost, joined into teams and passing writes to
// each other, failing the current test when they cannot.
#ifndef ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
#define ENLACE_TESTS_SUPPORT_TEST_UTIL_H_

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device_setup.h"
#include "enlace/replica.h"
#include "enlace/types.h"
#include "temp_dir.h"

namespace enlace::testing {

// Creates a replica or fails the current test.
std::unique_ptr<Replica> MakeReplica(const ReplicaOptions& options,
                                     const std::string& passphrase = "correct horse");

// Makes `b` join `a`'s team (TryJoinTeam) or fails the current test.
void JoinTeam(Replica& a, Replica& b);

// `r`'s pending (unacknowledged) writes as they would travel, oldest first.
std::vector<Bytes> PendingWritesOf(const Replica& r);
// The one pending write of `r`; fails the test unless there is exactly one.
Bytes OnlyPendingWrite(const Replica& r);
// The newest write `r` made, as it would travel (take it at once: a later
// write may purge it from the outbox). Fails the test when there is none.
Bytes NewestWrite(const Replica& r);
// Applies `write` at `to` or fails the current test.
void ApplyWrite(Replica& to, const Bytes& write);
// Applies every pending write of `from` at `to`, oldest first (in causal
// order, as a hub would deliver them).
void Deliver(const Replica& from, Replica& to);

// The seed of a crash test's random kill points: ENLACE_CRASH_SEED when set,
// else a random one (the tests print it, so a run can be repeated).
uint64_t CrashSeed();

// Calls `check(copy)` for each byte of `original` in [from, to), with a copy
// whose byte has its lowest bit flipped; the byte's index is CAPTUREd.
template <typename Sequence, typename Check>
void ForEachFlippedByte(const Sequence& original, size_t from, size_t to, const Check& check) {
  for (size_t i = from; i < to; ++i) {
    CAPTURE(i);
    Sequence copy = original;
    copy[i] ^= 0x01;
    check(copy);
  }
}
// The same for every byte of `original`.
template <typename Sequence, typename Check>
void ForEachFlippedByte(const Sequence& original, const Check& check) {
  ForEachFlippedByte(original, 0, original.size(), check);
}

// Three devices of one team, each in its own folder, sharing a fake clock:
// `a` creates the team, `b` and `c` join it, and all three trust each other.
struct ThreeDeviceTeam {
  ThreeDeviceTeam();

  TempDir dir;
  FakeClock clock;
  std::unique_ptr<Replica> a, b, c;
};

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_TEST_UTIL_H_
