#include "test_util.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <random>

namespace enlace::testing {

std::unique_ptr<Replica> MakeReplica(const ReplicaOptions& options, const std::string& passphrase) {
  auto r = Replica::Create(options, passphrase);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

void JoinTeam(Replica& a, Replica& b) {
  const Status s = TryJoinTeam(a, b);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

std::vector<Bytes> PendingWritesOf(const Replica& r) {
  auto pending = r.PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  std::vector<Bytes> out;
  for (auto& [counter, bytes] : *pending) out.push_back(std::move(bytes));
  return out;
}

Bytes OnlyPendingWrite(const Replica& r) {
  auto pending = r.PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  return pending->front().second;
}

Bytes NewestWrite(const Replica& r) {
  auto pending = r.PendingWrites(SIZE_MAX);
  REQUIRE(pending.ok());
  REQUIRE_FALSE(pending->empty());
  return pending->back().second;
}

void ApplyWrite(Replica& to, const Bytes& write) {
  auto applied = to.ApplyRemote(write);
  REQUIRE_MESSAGE(applied.ok(), applied.status().ToString());
}

void Deliver(const Replica& from, Replica& to) {
  for (const Bytes& write : PendingWritesOf(from)) ApplyWrite(to, write);
}

uint64_t CrashSeed() {
  if (const char* s = std::getenv("ENLACE_CRASH_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

ThreeDeviceTeam::ThreeDeviceTeam()
    : a(MakeReplica(TestOptions(dir.File("a"), &clock))),
      b(MakeReplica(TestOptions(dir.File("b"), &clock))),
      c(MakeReplica(TestOptions(dir.File("c"), &clock))) {
  const Status s = TryFormTeam(*a, {b.get(), c.get()});
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

}  // namespace enlace::testing
