// The signed device registry (enlace/registry.h): every rule that keeps a
// hub, or a rogue member, from deciding who belongs to a team.
#include "enlace/registry.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "crypto/crypto.h"

namespace enlace {
namespace {

struct Key {
  DeviceId id = DeviceId::Random();
  internal::SigningKeyPair sign = internal::SigningKeyPair::Generate();
  internal::BoxKeyPair box = internal::BoxKeyPair::Generate();
};

RegistryEntry EntryFor(const Key& k, const std::string& name, Role role) {
  RegistryEntry e;
  e.device = k.id;
  e.signing_key = k.sign.public_key;
  e.encryption_key = k.box.public_key;
  e.name = name;
  e.role = role;
  return e;
}

void Sort(Registry& r) {
  std::sort(r.entries.begin(), r.entries.end(),
            [](const RegistryEntry& a, const RegistryEntry& b) { return a.device < b.device; });
}

void SignBy(Registry& r, const Key& k) {
  r.signer = k.id;
  r.signature = internal::Sign(k.sign.secret_key, RegistrySigningInput(r));
}

struct Team {
  TeamId team = TeamId::Random();
  Key founder, field, second;
  Registry genesis;
  Team() {
    genesis.team = team;
    genesis.version = 1;
    genesis.entries = {EntryFor(founder, "oficina", Role::kCoordinator)};
    SignBy(genesis, founder);
  }
  // Version 2: adds a field device and a second coordinator.
  Registry Next() const {
    Registry r = genesis;
    r.version = 2;
    r.entries.push_back(EntryFor(field, "campo", Role::kField));
    r.entries.push_back(EntryFor(second, "segunda", Role::kCoordinator));
    Sort(r);
    SignBy(r, founder);
    return r;
  }
  Admission Admit(const Key& issuer, const Key& device, bool needs_approval,
                  const std::array<uint8_t, 32>& secret) const {
    Admission a;
    a.grant.team = team;
    a.grant.invite = InviteId{};
    a.grant.invite[0] = secret[0];
    a.grant.role = Role::kField;
    a.grant.needs_approval = needs_approval;
    a.grant.expires_ms = 99;
    a.grant.invite_key = *InvitePublicKey(secret);
    a.grant.issuer = issuer.id;
    a.grant.signature = internal::Sign(issuer.sign.secret_key, InviteGrantSigningInput(a.grant));
    a.device = device.id;
    a.signing_key = device.sign.public_key;
    a.encryption_key = device.box.public_key;
    a.name = "nuevo";
    REQUIRE(SignAdmission(a, secret).ok());
    return a;
  }
};

std::array<uint8_t, 32> Secret(uint8_t seed) {
  std::array<uint8_t, 32> s{};
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(seed * 13 + i);
  return s;
}

TEST_CASE("a registry round-trips and its genesis is checked") {
  Team t;
  auto decoded = DecodeRegistry(EncodeRegistry(t.genesis));
  REQUIRE(decoded.ok());
  CHECK(*decoded == t.genesis);
  CHECK(CheckGenesis(t.genesis).ok());

  Registry forged = t.genesis;
  forged.entries[0].name = "otra";
  CHECK(CheckGenesis(forged).code() == StatusCode::kPermissionDenied);

  Registry two = t.Next();
  CHECK(CheckGenesis(two).code() == StatusCode::kPermissionDenied);  // more than the founder

  Bytes truncated = EncodeRegistry(t.genesis);
  truncated.pop_back();
  CHECK(!DecodeRegistry(truncated).ok());
}

TEST_CASE("registry format 2 lists each device's scopes; format 1 still checks as signed") {
  Team t;
  Registry v2 = t.Next();
  ScopeId s1, s2;
  s1.bytes.fill(1);
  s2.bytes.fill(2);
  for (auto& e : v2.entries) {
    if (e.device == t.field.id) e.scopes = {s1, s2};
  }
  SignBy(v2, t.founder);
  auto decoded = DecodeRegistry(EncodeRegistry(v2));
  REQUIRE(decoded.ok());
  CHECK(*decoded == v2);
  CHECK(decoded->format == 2);
  CHECK(CheckSuccessor(t.genesis, *decoded).ok());
  const RegistryEntry* field = decoded->Find(t.field.id);
  CHECK(field->InScope(s2));
  CHECK(field->InScope(ScopeId{}));
  CHECK_FALSE(decoded->Find(t.founder.id)->scopes.size() > 0);
  CHECK(decoded->Find(t.founder.id)->InScope(s2));  // a coordinator holds every scope

  // A version signed in format 1 (before scopes) keeps its bytes, so its
  // signature still verifies.
  Registry old = t.Next();
  old.format = 1;
  SignBy(old, t.founder);
  const Bytes old_bytes = EncodeRegistry(old);
  auto old_decoded = DecodeRegistry(old_bytes);
  REQUIRE(old_decoded.ok());
  CHECK(old_decoded->format == 1);
  CHECK(EncodeRegistry(*old_decoded) == old_bytes);
  CHECK(CheckSuccessor(t.genesis, *old_decoded).ok());
  // A format-1 version cannot carry scopes, so a scope added under its
  // signature changes nothing signed: the format byte is signed too.
  Registry lie = *old_decoded;
  lie.format = 2;
  CHECK(CheckSuccessor(t.genesis, lie).code() == StatusCode::kPermissionDenied);

  // Unsorted, repeated or zero scopes, and unknown formats, are malformed.
  for (const std::vector<ScopeId>& bad :
       {std::vector<ScopeId>{s2, s1}, std::vector<ScopeId>{s1, s1},
        std::vector<ScopeId>{ScopeId{}}}) {
    Registry r = v2;
    for (auto& e : r.entries) {
      if (e.device == t.field.id) e.scopes = bad;
    }
    CHECK(DecodeRegistry(EncodeRegistry(r)).status().code() == StatusCode::kCorruption);
  }
  Bytes unknown = EncodeRegistry(v2);
  unknown[1] = 3;  // the format byte, after the archive marker
  CHECK(DecodeRegistry(unknown).status().code() == StatusCode::kCorruption);
}

TEST_CASE("a successor must be signed by an active coordinator of the current version") {
  Team t;
  const Registry v2 = t.Next();
  CHECK(CheckSuccessor(t.genesis, v2).ok());

  SUBCASE("a field device cannot sign") {
    Registry v3 = v2;
    v3.version = 3;
    v3.entries[0].name = "cambiado";
    SignBy(v3, t.field);
    CHECK(CheckSuccessor(v2, v3).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("a device added in the same version cannot sign it") {
    Registry v2b = v2;
    SignBy(v2b, t.second);  // second is a coordinator only from v2 on
    CHECK(CheckSuccessor(t.genesis, v2b).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("no going back, no dropping, no key swap, no un-revoking") {
    Registry same = v2;
    CHECK(CheckSuccessor(v2, same).code() == StatusCode::kPermissionDenied);  // not newer

    Registry drop = v2;
    drop.version = 3;
    drop.entries.erase(drop.entries.begin());
    SignBy(drop, t.founder);
    CHECK(CheckSuccessor(v2, drop).code() == StatusCode::kPermissionDenied);

    Registry swap = v2;
    swap.version = 3;
    for (auto& e : swap.entries) {
      if (e.device == t.field.id) e.signing_key = Key().sign.public_key;
    }
    SignBy(swap, t.founder);
    CHECK(CheckSuccessor(v2, swap).code() == StatusCode::kPermissionDenied);

    Registry revoked = v2;
    revoked.version = 3;
    for (auto& e : revoked.entries) {
      if (e.device == t.field.id) {
        e.revoked_ms = 5;
        e.revoked_after = 7;
      }
    }
    SignBy(revoked, t.founder);
    REQUIRE(CheckSuccessor(v2, revoked).ok());
    Registry undone = revoked;
    undone.version = 4;
    for (auto& e : undone.entries) {
      if (e.device == t.field.id) e.revoked_after = 70;  // moving it later is undoing it
    }
    SignBy(undone, t.founder);
    CHECK(CheckSuccessor(revoked, undone).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("a revoked coordinator signs nothing more") {
    Registry v3 = v2;
    v3.version = 3;
    for (auto& e : v3.entries) {
      if (e.device == t.founder.id) e.revoked_ms = 9;
    }
    SignBy(v3, t.second);
    REQUIRE(CheckSuccessor(v2, v3).ok());
    Registry v4 = v3;
    v4.version = 4;
    v4.entries[0].name = "x";
    SignBy(v4, t.founder);
    CHECK(CheckSuccessor(v3, v4).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("FollowChain checks every step and skips what is known") {
    Registry v3 = v2;
    v3.version = 3;
    SignBy(v3, t.second);
    auto newest = FollowChain(t.genesis, {EncodeRegistry(v2), EncodeRegistry(v3)});
    REQUIRE(newest.ok());
    CHECK(newest->version == 3);
    // Skipping v2 leaves v3 unverifiable: its signer is unknown at v1.
    CHECK(!FollowChain(t.genesis, {EncodeRegistry(v3)}).ok());
    auto known = FollowChain(v3, {EncodeRegistry(v2)});
    REQUIRE(known.ok());
    CHECK(known->version == 3);
  }
}

TEST_CASE("admissions make members only with a coordinator's grant and the invite's key") {
  Team t;
  const Registry v2 = t.Next();
  Key joiner;
  const auto secret = Secret(1);
  const Admission good = t.Admit(t.founder, joiner, false, secret);
  CHECK(CheckAdmission(good, v2).ok());
  auto round = DecodeAdmission(EncodeAdmission(good));
  REQUIRE(round.ok());
  CHECK(*round == good);

  auto members = EffectiveMembers(v2, {good});
  CHECK(members.size() == 4);
  CHECK(MayWrite(members, joiner.id, 1));

  SUBCASE("a field device cannot issue invites") {
    const Admission bad = t.Admit(t.field, joiner, false, secret);
    CHECK(CheckAdmission(bad, v2).code() == StatusCode::kPermissionDenied);
    CHECK(EffectiveMembers(v2, {bad}).size() == 3);
  }
  SUBCASE("the binding must come from the invite's key") {
    Admission bad = good;
    bad.signing_key = Key().sign.public_key;  // the hub swaps the device's key
    CHECK(CheckAdmission(bad, v2).code() == StatusCode::kPermissionDenied);
    Admission other = good;
    REQUIRE(SignAdmission(other, Secret(2)).ok());  // not this invite's secret
    CHECK(CheckAdmission(other, v2).code() == StatusCode::kPermissionDenied);
  }
  SUBCASE("one invite admits one device") {
    Key twin;
    const Admission second = t.Admit(t.founder, twin, false, secret);
    const auto both = EffectiveMembers(v2, {good, second});
    CHECK(both.size() == 3);  // neither: the invite was used twice
  }
  SUBCASE("approval: pending until a registry lists it") {
    const Admission waiting = t.Admit(t.founder, joiner, true, Secret(3));
    const auto m = EffectiveMembers(v2, {waiting});
    CHECK(!MayWrite(m, joiner.id, 1));
    Registry v3 = v2;
    v3.version = 3;
    RegistryEntry e = EntryFor(joiner, "nuevo", Role::kField);
    e.invite = waiting.grant.invite;
    v3.entries.push_back(e);
    Sort(v3);
    SignBy(v3, t.founder);
    REQUIRE(CheckSuccessor(v2, v3).ok());
    CHECK(MayWrite(EffectiveMembers(v3, {waiting}), joiner.id, 1));
  }
  SUBCASE("a revoked issuer's unlisted admissions lapse") {
    Registry v3 = v2;
    v3.version = 3;
    for (auto& e : v3.entries) {
      if (e.device == t.founder.id) e.revoked_ms = 1;
    }
    SignBy(v3, t.second);
    CHECK(!MayWrite(EffectiveMembers(v3, {good}), joiner.id, 1));
  }
}

TEST_CASE("a revoked device may write only up to its revocation point") {
  Team t;
  Registry v3 = t.Next();
  v3.version = 3;
  for (auto& e : v3.entries) {
    if (e.device == t.field.id) {
      e.revoked_ms = 1000;
      e.revoked_after = 12;
    }
  }
  SignBy(v3, t.founder);
  const auto members = EffectiveMembers(v3, {});
  CHECK(MayWrite(members, t.field.id, 12));
  CHECK(!MayWrite(members, t.field.id, 13));
  CHECK(!MayWrite(members, DeviceId::Random(), 1));
  CHECK(MayWrite(members, t.founder.id, 1'000'000));
}

TEST_CASE("key grants are signed by a coordinator") {
  Team t;
  const Registry v2 = t.Next();
  KeyGrant g;
  g.team = t.team;
  g.version = 2;
  g.recipient = t.field.id;
  g.sealed = Bytes(80, 1);
  g.issuer = t.second.id;
  g.signature = internal::Sign(t.second.sign.secret_key, KeyGrantSigningInput(g));
  CHECK(CheckKeyGrant(g, v2).ok());
  auto round = DecodeKeyGrant(EncodeKeyGrant(g));
  REQUIRE(round.ok());
  CHECK(*round == g);
  KeyGrant forged = g;
  forged.sealed[0] ^= 1;  // the hub swaps the sealed key
  CHECK(CheckKeyGrant(forged, v2).code() == StatusCode::kPermissionDenied);
  KeyGrant by_field = g;
  by_field.issuer = t.field.id;
  by_field.signature = internal::Sign(t.field.sign.secret_key, KeyGrantSigningInput(by_field));
  CHECK(CheckKeyGrant(by_field, v2).code() == StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace enlace
