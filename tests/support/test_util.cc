#include "test_util.h"

#include <doctest/doctest.h>

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

}  // namespace enlace::testing
