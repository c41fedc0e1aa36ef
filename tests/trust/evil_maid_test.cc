// The evil maid (issue 14, item 4): someone alone with a locked device edits
// store.db while nobody has the passphrase, hoping the owner's next sync or
// edit trusts their keys. Every piece of local state that decides trust is
// sealed with a key only the unlocked vault holds; each test here is an
// edit of a closed device's files, which Replica::Open must refuse
// (kCorruption) instead of using.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "crypto/crypto.h"
#include "crypto/vault.h"
#include "enlace/registry.h"
#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"

namespace enlace {
namespace {

namespace fs = std::filesystem;
using testing::ExecSql;
using testing::HubTeam;
using testing::SyncAll;

constexpr char kPassphrase[] = "correct horse";  // testing::MakeReplica's

std::string StorePath(const Replica& r) { return r.options().dir + "/store.db"; }

std::string Hex(internal::ByteView bytes) { return "x'" + internal::ToHex(bytes) + "'"; }

// Closes `r` and opens its folder again, as the owner's next command would.
Result<std::unique_ptr<Replica>> Reopen(std::unique_ptr<Replica>& r) {
  const ReplicaOptions options = r->options();
  r.reset();
  return Replica::Open(options, kPassphrase);
}

// Closes `r`, or fails the test when it cannot be reopened.
void ReopenOk(std::unique_ptr<Replica>& r) {
  auto reopened = Reopen(r);
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  r = std::move(reopened).value();
}

// Removes what SQLite keeps beside a closed database file, so a copied
// store.db is the whole database.
void CopyStore(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(to + suffix);
}

// An outsider's own team registry: self-signed, valid, listing only them.
Registry AttackersRegistry(const TeamId& team, const DeviceId& attacker,
                           const internal::SigningKeyPair& keys) {
  Registry r;
  r.team = team;
  r.version = 1;
  RegistryEntry e;
  e.device = attacker;
  e.signing_key = keys.public_key;
  e.name = "oficina";
  e.role = Role::kCoordinator;
  r.entries = {e};
  r.signer = attacker;
  r.signature = internal::Sign(keys.secret_key, RegistrySigningInput(r));
  return r;
}

// A team on an in-process hub where the coordinator revoked beto and every
// device has synced since: each device holds a registry chain, members,
// and a revocation point.
struct SyncedTeam : HubTeam {
  SyncedTeam() {
    SyncAll(hub, *coord);  // hears of the devices that joined
    const Status revoked = RevokeDevice(*coord, b->device_id());
    REQUIRE_MESSAGE(revoked.ok(), revoked.ToString());
    SyncAll(hub, *coord);
    SyncAll(hub, *a);
  }
};

TEST_CASE("a device whose trust state nobody touched reopens after each legitimate change") {
  SyncedTeam t;
  ReopenOk(t.a);
  ReopenOk(t.coord);
  auto members = Members(*t.a);
  REQUIRE(members.ok());
  bool beto_revoked = false;
  for (const auto& m : *members) beto_revoked |= m.device == t.b->device_id() && m.revoked;
  CHECK(beto_revoked);

  // A key rotation queues grants on the coordinator; ana accepts hers.
  auto version = RotateTeamKey(*t.coord);
  REQUIRE(version.ok());
  ReopenOk(t.coord);
  SyncAll(t.hub, *t.coord);
  ReopenOk(t.coord);
  SyncAll(t.hub, *t.a);
  ReopenOk(t.a);
  CHECK(t.a->current_key_version() == *version);

  // A record written after all of that reads back after a reopen.
  auto id = t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(id.ok());
  SyncAll(t.hub, *t.a);
  SyncAll(t.hub, *t.coord);
  ReopenOk(t.coord);
  CHECK(t.coord->Get("cases", *id).ok());

  // A device trusted by hand.
  auto other = internal::SigningKeyPair::Generate();
  REQUIRE(TrustDevice(*t.a, DeviceId::Random(), DevicePublicKeys{other.public_key, {}}).ok());
  ReopenOk(t.a);
}

TEST_CASE("an edit of store.db's trust state while the device is locked is refused on open") {
  SyncedTeam t;
  const auto attacker_keys = internal::SigningKeyPair::Generate();
  const DeviceId attacker = DeviceId::Random();
  std::unique_ptr<Replica>* victim = &t.a;
  std::string sql;

  SUBCASE("the registry replaced by an outsider's own, validly signed") {
    sql = "UPDATE documents SET value = " +
          Hex(EncodeRegistry(AttackersRegistry(t.a->team(), attacker, attacker_keys))) +
          " WHERE name = 'registry'";
  }
  SUBCASE("the coordinator's signing key replaced by the attacker's") {
    sql = "UPDATE devices SET sign_pk = " + Hex(attacker_keys.public_key) +
          " WHERE device = " + Hex(t.coord->device_id().bytes);
  }
  SUBCASE("a field device made a coordinator") {
    sql = "UPDATE devices SET role = 1 WHERE device = " + Hex(t.a->device_id().bytes);
  }
  SUBCASE("a revocation undone") {
    sql = "UPDATE devices SET revoked = 0, revoked_after = 0, revoked_ms = 0 WHERE device = " +
          Hex(t.b->device_id().bytes);
  }
  SUBCASE("the attacker's device added as a member") {
    sql = "INSERT INTO devices(device, sign_pk, box_pk, name, role) VALUES(" + Hex(attacker.bytes) +
          ", " + Hex(attacker_keys.public_key) + ", " + Hex(attacker_keys.public_key) +
          ", 'oficina', 1)";
  }
  SUBCASE("a field device marked as the team's founder") {
    sql = "INSERT INTO meta(key, value) VALUES('team_founder', 1)";
  }
  SUBCASE("the registry version lowered") {
    sql = "UPDATE meta SET value = 1 WHERE key = 'registry_version'";
  }
  SUBCASE("a key grant the coordinator still has to send withheld") {
    REQUIRE(RotateTeamKey(*t.coord).ok());
    victim = &t.coord;
    sql = "DELETE FROM outgoing_key_grants";
  }
  SUBCASE("a queued key grant redirected") {
    REQUIRE(RotateTeamKey(*t.coord).ok());
    victim = &t.coord;
    sql = "UPDATE outgoing_key_grants SET recipient = " + Hex(attacker.bytes);
  }
  SUBCASE("a trigger that would rewrite the members on the owner's next edit") {
    sql = "CREATE TRIGGER later AFTER UPDATE ON meta BEGIN UPDATE devices SET sign_pk = " +
          Hex(attacker_keys.public_key) + " WHERE device = " + Hex(t.coord->device_id().bytes) +
          "; END";
  }

  const ReplicaOptions options = (*victim)->options();
  const std::string store = StorePath(**victim);
  victim->reset();
  ExecSql(store, sql);
  for (int attempt = 0; attempt < 2; ++attempt) {
    CAPTURE(attempt);
    auto opened = Replica::Open(options, kPassphrase);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.status().code() == StatusCode::kCorruption);
    CHECK(opened.status().message().find("store.db") != std::string::npos);
    CHECK(LocalTamperOf(opened.status()) == LocalTamper::kAltered);
  }
}

TEST_CASE("a refused store opens again once the owner restores it from a backup") {
  SyncedTeam t;
  const std::string store = StorePath(*t.a);
  const ReplicaOptions options = t.a->options();
  t.a.reset();
  const std::string backup = store + ".backup";
  CopyStore(store, backup);
  ExecSql(store, "UPDATE devices SET role = 1");
  CHECK(Replica::Open(options, kPassphrase).status().code() == StatusCode::kCorruption);
  CopyStore(backup, store);
  auto opened = Replica::Open(options, kPassphrase);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
}

TEST_CASE("deleting the seal is refused, not taken for a store from before the seal") {
  SyncedTeam t;
  const std::string store = StorePath(*t.a);
  const ReplicaOptions options = t.a->options();
  t.a.reset();
  std::string sql;
  SUBCASE("the seal's row deleted") { sql = "DELETE FROM trust_seal"; }
  SUBCASE("the seal's table dropped and the schema version set back") {
    sql = "DROP TABLE trust_seal; DROP TABLE sealed_settings; PRAGMA user_version = 5";
  }
  ExecSql(store, sql);
  auto opened = Replica::Open(options, kPassphrase);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == StatusCode::kCorruption);
  CHECK(opened.status().message().find("seal") != std::string::npos);
  CHECK(LocalTamperOf(opened.status()) == LocalTamper::kSealMissing);
}

TEST_CASE("store.db rolled back to an older copy of itself, with its seal, is refused") {
  SyncedTeam t;
  const std::string store = StorePath(*t.a);
  const std::string old_copy = store + ".old";
  ReopenOk(t.a);  // closes it first, so the file is whole
  const ReplicaOptions options = t.a->options();
  t.a.reset();
  CopyStore(store, old_copy);
  auto reopened = Replica::Open(options, kPassphrase);
  REQUIRE(reopened.ok());
  t.a = std::move(reopened).value();
  // A trust change after the copy: the coordinator revokes the device the
  // attacker holds, and ana learns of it.
  auto c = testing::JoinDevice(t.hub, *t.coord, testing::TestOptions(t.dir.File("c"), &t.clock),
                               "carla");
  SyncAll(t.hub, *t.coord);
  REQUIRE(RevokeDevice(*t.coord, c->device_id()).ok());
  SyncAll(t.hub, *t.coord);
  SyncAll(t.hub, *t.a);
  t.a.reset();

  CopyStore(old_copy, store);
  auto opened = Replica::Open(options, kPassphrase);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == StatusCode::kCorruption);
  CHECK(opened.status().message().find("older") != std::string::npos);
  CHECK(LocalTamperOf(opened.status()) == LocalTamper::kRolledBack);
}

TEST_CASE("another device's store.db, with its own seal, is refused") {
  SyncedTeam t;
  const std::string store = StorePath(*t.a);
  const std::string other = StorePath(*t.coord);
  const ReplicaOptions options = t.a->options();
  t.a.reset();
  t.coord.reset();
  CopyStore(other, store);
  auto opened = Replica::Open(options, kPassphrase);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == StatusCode::kCorruption);
  CHECK(LocalTamperOf(opened.status()) == LocalTamper::kAltered);
}

// ---- sealed settings, the vault's generation, devices from before the seal ------------------

uint64_t VaultGeneration(Replica& r) { return r.impl().vault().secrets().seal_generation; }
uint64_t StoreGeneration(Replica& r) {
  auto g = r.impl().store().SealGeneration();
  REQUIRE(g.ok());
  return *g;
}

// Rewrites `dir`'s vault (closed) with the same secrets but `generation`,
// as a vault that missed commits, or one from before the seal (0), holds it.
void RewriteVault(const ReplicaOptions& options, uint64_t generation) {
  const std::string path = options.dir + "/vault.bin";
  auto vault = internal::Vault::Unlock(path, kPassphrase);
  REQUIRE(vault.ok());
  internal::VaultSecrets secrets = (*vault)->secrets().Clone();
  secrets.seal_generation = generation;
  vault->reset();
  fs::remove(path);
  REQUIRE(internal::Vault::Create(path, kPassphrase, {options.kdf.opslimit, options.kdf.memlimit},
                                  std::move(secrets))
              .ok());
}

TEST_CASE("sealed settings survive a reopen, and an edit of them is refused") {
  SyncedTeam t;
  const std::map<std::string, std::string> settings = {{"hub_url", "https://hub.example:8443"},
                                                       {"tls_pin", "sha256//abc"}};
  REQUIRE(t.a->SetSealedSettings(settings).ok());
  ReopenOk(t.a);
  CHECK(*t.a->SealedSettings() == settings);
  REQUIRE(t.a->SetSealedSettings({{"hub_url", "https://hub2.example:8443"}}).ok());
  ReopenOk(t.a);
  CHECK(t.a->SealedSettings()->size() == 1);

  const ReplicaOptions options = t.a->options();
  const std::string store = StorePath(*t.a);
  t.a.reset();
  ExecSql(store,
          "UPDATE sealed_settings SET value = 'https://evil.example' WHERE name = 'hub_url'");
  const Status s = Replica::Open(options, kPassphrase).status();
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(LocalTamperOf(s) == LocalTamper::kAltered);
}

TEST_CASE("the vault records each sealed change, and ordinary edits and syncs change no seal") {
  SyncedTeam t;
  const uint64_t sealed = StoreGeneration(*t.a);
  CHECK(sealed > 0);
  CHECK(VaultGeneration(*t.a) == sealed);
  // Records and syncs that bring no trust change leave the seal alone.
  REQUIRE(t.a->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  SyncAll(t.hub, *t.a);
  SyncAll(t.hub, *t.a);
  ReopenOk(t.a);
  CHECK(StoreGeneration(*t.a) == sealed);
  // A trust change is one more generation, in the store and the vault.
  REQUIRE(t.a->SetSealedSettings({{"hub_url", "https://hub.example"}}).ok());
  CHECK(StoreGeneration(*t.a) == sealed + 1);
  CHECK(VaultGeneration(*t.a) == sealed + 1);
  // A refused trust change (not a coordinator) seals nothing.
  CHECK_FALSE(RenameDevice(*t.a, t.a->device_id(), "x").ok());
  CHECK(StoreGeneration(*t.a) == sealed + 1);
}

TEST_CASE("a vault that missed the last seal catches up; one ahead of the store refuses it") {
  SyncedTeam t;
  const uint64_t sealed = StoreGeneration(*t.a);
  REQUIRE(sealed > 1);
  const ReplicaOptions options = t.a->options();
  t.a.reset();
  // The process ended between the store's commit and the vault's write.
  RewriteVault(options, sealed - 1);
  auto opened = Replica::Open(options, kPassphrase);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK(VaultGeneration(**opened) == sealed);
  opened->reset();
  // A vault ahead of its store: the store was put back.
  RewriteVault(options, sealed + 5);
  const Status s = Replica::Open(options, kPassphrase).status();
  CHECK(LocalTamperOf(s) == LocalTamper::kRolledBack);
}

TEST_CASE("a device from before the seal is sealed as it is on its first open, then guarded") {
  SyncedTeam t;
  const ReplicaOptions options = t.a->options();
  const std::string store = StorePath(*t.a);
  auto members_before = Members(*t.a);
  REQUIRE(members_before.ok());
  t.a.reset();
  // What an earlier version left: a store at schema 6 (parked writes, no
  // seal) and a vault that never recorded a seal.
  ExecSql(store,
          "DROP TABLE trust_seal; DROP TABLE sealed_settings; DROP TABLE voids; DROP TABLE "
          "writers_seen; DROP TABLE write_gaps; DROP TABLE scope_heads; DROP TABLE chain_heads; "
          "DROP TABLE chain_gaps; DROP TABLE record_scopes; DELETE FROM meta WHERE key = "
          "'accounted_from'; "
          "PRAGMA user_version = 6");
  RewriteVault(options, 0);
  {
    auto opened = Replica::Open(options, kPassphrase);
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    CHECK(*Members(**opened) == *members_before);
    CHECK(StoreGeneration(**opened) == 1);
    CHECK(VaultGeneration(**opened) == 1);
  }
  auto again = Replica::Open(options, kPassphrase);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  again->reset();
  ExecSql(store, "UPDATE devices SET role = 1");
  CHECK(LocalTamperOf(Replica::Open(options, kPassphrase).status()) == LocalTamper::kAltered);
  ExecSql(store, "DELETE FROM trust_seal");
  CHECK(LocalTamperOf(Replica::Open(options, kPassphrase).status()) == LocalTamper::kSealMissing);
}

}  // namespace
}  // namespace enlace
