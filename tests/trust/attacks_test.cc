// Attacks on a team's trust, in process (issue 14): each test is an attack
// that succeeded before its defence, tried against the core API.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "crypto/crypto.h"
#include "enlace/registry.h"
#include "enlace/team.h"
#include "storage/sqlite.h"
#include "test_util.h"
#include "trust/team_impl.h"

namespace enlace {
namespace {

using testing::MakeReplica;
using testing::TempDir;
using testing::TestOptions;

// ---- a key grant must not replace a key the device holds -------------------------------

// The team id and one key version, as a coordinator's grant would carry them
// (the bundle format of trust/team_impl.h: team | u32 count | u32 version | key).
Bytes SealedBundle(const TeamId& team, uint32_t version, const internal::SecretBytes& key,
                   const PublicKey& to) {
  internal::SecretBytes bundle(16 + 4 + 4 + key.size());
  uint8_t* p = bundle.data();
  std::copy(team.bytes.begin(), team.bytes.end(), p);
  p += 16;
  for (uint32_t v : {uint32_t{1}, version}) {
    for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(v >> (8 * i));
  }
  std::copy(key.data(), key.data() + key.size(), p);
  return internal::SealTo(to, bundle.view());
}

TEST_CASE("a grant carrying another key for a version the device holds is refused") {
  TempDir dir;
  auto ana = MakeReplica(TestOptions(dir.File("ana")));
  auto beto = MakeReplica(TestOptions(dir.File("beto")));
  REQUIRE(CreateTeam(*ana).ok());
  testing::JoinTeam(*ana, *beto);
  auto id = ana->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  testing::Deliver(*ana, *beto);

  // A rogue coordinator seals a different key 1 to beto.
  const Bytes rogue = SealedBundle(ana->team(), 1, internal::SecretBytes::Random(32),
                                   beto->public_keys().encryption);
  const Status s = AcceptTeamKeys(*beto, rogue);
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("version 1") != std::string::npos);
  // beto still reads what was written under its key, and writes ana can read.
  auto record = beto->Get("cases", *id);
  REQUIRE(record.ok());
  CHECK(record->fields.at("status").value == "\"Active\"");
  REQUIRE(beto->Put("cases", *id, {{"status", "\"FollowUp\""}}).ok());
  testing::Deliver(*beto, *ana);
  CHECK(ana->Get("cases", *id)->fields.at("status").value == "\"FollowUp\"");

  // The same key again (a grant retried) changes nothing and is accepted.
  auto same = SealTeamKeysFor(*ana, beto->public_keys().encryption);
  REQUIRE(same.ok());
  CHECK(AcceptTeamKeys(*beto, *same).ok());
}

// ---- registry versions follow one another ---------------------------------------------

struct Coordinator {
  DeviceId id = DeviceId::Random();
  internal::SigningKeyPair sign = internal::SigningKeyPair::Generate();
};

Registry Genesis(const Coordinator& c) {
  Registry r;
  r.team = TeamId::Random();
  r.version = 1;
  RegistryEntry e;
  e.device = c.id;
  e.signing_key = c.sign.public_key;
  e.name = "oficina";
  e.role = Role::kCoordinator;
  r.entries = {e};
  r.signer = c.id;
  r.signature = internal::Sign(c.sign.secret_key, RegistrySigningInput(r));
  return r;
}

Registry SignedVersion(const Registry& base, const Coordinator& c, uint64_t version) {
  Registry r = base;
  r.version = version;
  r.signer = c.id;
  r.signature = internal::Sign(c.sign.secret_key, RegistrySigningInput(r));
  return r;
}

TEST_CASE("a registry version that skips ahead is refused, so a coordinator cannot end the chain") {
  const Coordinator rogue;
  const Registry genesis = Genesis(rogue);
  CHECK(CheckSuccessor(genesis, SignedVersion(genesis, rogue, 2)).ok());
  for (uint64_t skip : {uint64_t{3}, uint64_t{1} << 62, (uint64_t{1} << 63) - 1}) {
    CAPTURE(skip);
    const Status s = CheckSuccessor(genesis, SignedVersion(genesis, rogue, skip));
    CHECK(s.code() == StatusCode::kPermissionDenied);
    CHECK(s.message().find("does not follow") != std::string::npos);
  }
  // A version past any SQLite integer does not even decode.
  const Registry huge = SignedVersion(genesis, rogue, (uint64_t{1} << 63) + 5);
  CHECK(DecodeRegistry(EncodeRegistry(huge)).status().code() == StatusCode::kCorruption);
  // A chain must be whole: 1 -> 3 is refused even when 3 is well signed.
  const Registry v2 = SignedVersion(genesis, rogue, 2);
  const Registry v3 = SignedVersion(v2, rogue, 3);
  CHECK(FollowChain(genesis, {EncodeRegistry(v3)}).status().code() ==
        StatusCode::kPermissionDenied);
  auto followed = FollowChain(genesis, {EncodeRegistry(v2), EncodeRegistry(v3)});
  REQUIRE(followed.ok());
  CHECK(followed->version == 3);
}

// ---- unsigned numbers never reach SQLite as negative ones -------------------------------

TEST_CASE("an unsigned number above 2^63-1 is refused by the store, never stored negative") {
  TempDir dir;
  auto db = internal::Db::Open(dir.File("t.db"));
  REQUIRE(db.ok());
  REQUIRE((*db)->ExecScript("CREATE TABLE t(v INTEGER NOT NULL);").ok());
  auto insert = (*db)->Prepare("INSERT INTO t(v) VALUES(?)");
  REQUIRE(insert.ok());
  const Status refused = insert->BindU64(1, (uint64_t{1} << 63)).Exec();
  CHECK(refused.code() == StatusCode::kInvalidArgument);
  CHECK(insert->BindU64(1, (uint64_t{1} << 63) - 1).Exec().ok());
  auto count = (*db)->Prepare("SELECT count(*), min(v) FROM t");
  REQUIRE(count.ok());
  REQUIRE(*count->Step());
  CHECK(count->ColumnInt(0) == 1);
  CHECK(count->ColumnInt(1) == INT64_MAX);
}

}  // namespace
}  // namespace enlace
