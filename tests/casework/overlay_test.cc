// Regional overlays of the schema pack travelling through sync
// (Replica::PublishOverlay, Replica::Schema, Replica::OverlayStatus): only a
// coordinator's valid, newer overlay takes effect; anything else is ignored
// and reported, and records written under a former overlay stay readable.
#include <doctest/doctest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::Deliver;
using testing::JoinTeam;
using testing::MakeReplica;
using testing::TempDir;
using testing::TestOptions;

// Version `version` of the Tlaxcala overlay: a field and a code value.
std::string TlaxcalaOverlay(uint32_t version, bool with_shelter_field = true) {
  std::string fields;
  if (with_shelter_field) {
    fields = R"(,"fields":[{"name":"tlx_Shelter","type":"string","label":"Shelter",
                            "labels":{"es":"Albergue"}}])";
  }
  return R"({"base":"enlace-htcds","version":)" + std::to_string(version) +
         R"(,"name":"Tlaxcala",
    "codelists":{"EncounterKind":[{"code":"Market","label":"Market","labels":{"es":"Mercado"}}]},
    "collections":[{"name":"encounters")" +
         fields + "}]}";
}

// Tells `at` the role of `who`, as the hub's member list would.
void SetRole(Replica& at, Replica& who, Role role, bool revoked = false) {
  Member m;
  m.device = who.device_id();
  m.signing_key = who.public_keys().signing;
  m.encryption_key = who.public_keys().encryption;
  m.name = role == Role::kCoordinator ? "coordinator" : "field";
  m.role = role;
  m.revoked = revoked;
  REQUIRE(at.impl().store().PutMember(m).ok());
}

ReplicaOptions Validating(const std::string& dir) {
  ReplicaOptions o = TestOptions(dir);
  o.hook = TeamSchemaHook();
  return o;
}

const SchemaPack& SchemaOf(Replica& r) {
  auto s = TeamSchema(r);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return **s;
}

// A coordinator (team creator) and a field device that knows its role.
struct Team {
  TempDir dir;
  std::unique_ptr<Replica> coord = MakeReplica(Validating(dir.File("coord")));
  std::unique_ptr<Replica> field = MakeReplica(Validating(dir.File("field")));
  Team() {
    REQUIRE(CreateTeam(*coord).ok());
    JoinTeam(*coord, *field);
    SetRole(*field, *coord, Role::kCoordinator);
    SetRole(*field, *field, Role::kField);
    SetRole(*coord, *field, Role::kField);
  }
};

Fields Encounter(std::string kind) {
  return {{"enc_Date", "\"2026-05-01\""}, {"enc_Kind", "\"" + kind + "\""}};
}

TEST_CASE("a coordinator's overlay reaches a field device, which can then use it") {
  Team t;
  Fields with_shelter = Encounter("Market");
  with_shelter["tlx_Shelter"] = "\"Casa Tlaxcala\"";
  auto before = t.field->Put("encounters", std::nullopt, with_shelter);
  REQUIRE_FALSE(before.ok());
  CHECK(before.status().message().starts_with("encounters.enc_Kind: \"Market\" is not one of"));
  CHECK(SchemaOf(*t.field).overlay_version() == 0);

  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(1)).ok());
  CHECK(SchemaOf(*t.coord).overlay_version() == 1);
  CHECK(*t.coord->PendingCount() == 1);
  Deliver(*t.coord, *t.field);

  const SchemaPack& pack = SchemaOf(*t.field);
  CHECK(pack.overlay_version() == 1);
  CHECK(pack.overlay_team_note() == "Tlaxcala");
  const FieldDef* shelter = pack.FindCollection("encounters")->Find("tlx_Shelter");
  REQUIRE(shelter != nullptr);
  CHECK(shelter->from_overlay);
  CHECK(pack.FieldLabel(*shelter, "es") == "Albergue");
  CHECK(OverlayStatus(*t.field) == "");

  auto after = t.field->Put("encounters", std::nullopt, with_shelter);
  REQUIRE_MESSAGE(after.ok(), after.status().ToString());
  CHECK(t.field->Get("encounters", *after)->fields.at("tlx_Shelter").value == "\"Casa Tlaxcala\"");
  // The overlay is a team record like any other, but not one a person edits.
  CHECK(t.field->Conflicts()->empty());
  CHECK(t.field->List(kOverlayCollection)->size() == 1);
}

TEST_CASE("an overlay that removes or retypes a base field is refused and nothing is written") {
  Team t;
  const std::string retype =
      R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
          "fields":[{"name":"vic_AgeWhenTrafficked","type":"string","label":"Age"}]}]})";
  Status s = PublishOverlay(*t.coord, retype);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("cannot change the type of a base field") != std::string::npos);
  const std::string remove =
      R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
          "fields":[{"name":"prs_Gender","remove":true}]}]})";
  s = PublishOverlay(*t.coord, remove);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("nothing can be removed") != std::string::npos);
  CHECK(PublishOverlay(*t.coord, "not json").code() == StatusCode::kInvalidArgument);
  CHECK(*t.coord->PendingCount() == 0);
  CHECK(SchemaOf(*t.coord).overlay_version() == 0);
}

TEST_CASE("an overlay's version must grow") {
  Team t;
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(2)).ok());
  Status same = PublishOverlay(*t.coord, TlaxcalaOverlay(2));
  CHECK(same.code() == StatusCode::kInvalidArgument);
  CHECK(same.message() ==
        "the overlay's version 2 must be greater than the team's current "
        "overlay version 2");
  CHECK(PublishOverlay(*t.coord, TlaxcalaOverlay(1)).code() == StatusCode::kInvalidArgument);
  CHECK(*t.coord->PendingCount() == 1);
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(3)).ok());
  CHECK(SchemaOf(*t.coord).overlay_version() == 3);
  Deliver(*t.coord, *t.field);
  CHECK(SchemaOf(*t.field).overlay_version() == 3);
}

TEST_CASE("only a coordinator may publish an overlay") {
  Team t;
  Status s = PublishOverlay(*t.field, TlaxcalaOverlay(1));
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(*t.field->PendingCount() == 0);
  // A device that created no team and has no role is no coordinator either.
  TempDir dir;
  auto loner = MakeReplica(TestOptions(dir.path()));
  CHECK(PublishOverlay(*loner, TlaxcalaOverlay(1)).code() == StatusCode::kPermissionDenied);
}

// Writes an overlay into the reserved record the way a modified client on a
// field device could (Put refuses the reserved collection).
void RogueOverlayWrite(Replica& r, const std::string& overlay_json, uint32_t version) {
  auto& impl = r.impl();
  auto tx = impl.store().Begin();
  REQUIRE(tx.ok());
  RecordId id;
  id.bytes.back() = 1;
  const std::string value = nlohmann::json(overlay_json).dump();
  auto canonical = CanonicalValue(value, "overlay");
  REQUIRE_MESSAGE(canonical.ok(), canonical.status().ToString());
  REQUIRE(impl.WriteLocal(internal::RecordKey{kOverlayCollection, id}, WriteKind::kPut,
                          {"overlay", "version"}, {*canonical, std::to_string(version)})
              .ok());
  REQUIRE((*tx)->Commit().ok());
}

TEST_CASE("an overlay written by a field device is ignored by the devices that receive it") {
  Team t;
  TempDir dir;
  auto rogue = MakeReplica(Validating(dir.File("rogue")));
  JoinTeam(*t.coord, *rogue);
  REQUIRE(TrustDevice(*t.field, rogue->device_id(), rogue->public_keys()).ok());
  SetRole(*t.field, *rogue, Role::kField);
  SetRole(*rogue, *t.coord, Role::kCoordinator);

  SUBCASE("with no overlay before: the built-in pack stays") {
    RogueOverlayWrite(*rogue, TlaxcalaOverlay(1), 1);
    Deliver(*rogue, *t.field);
    CHECK(SchemaOf(*t.field).overlay_version() == 0);
    const std::string status = OverlayStatus(*t.field);
    CHECK(status.find("was ignored: that device is not a coordinator") != std::string::npos);
    CHECK(status.ends_with("using the built-in schema pack"));
    CHECK_FALSE(t.field->Put("encounters", std::nullopt, Encounter("Market")).ok());
  }

  SUBCASE("after a coordinator's overlay: that overlay stays, also after a restart") {
    REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(1)).ok());
    Deliver(*t.coord, *rogue);
    // The rogue write has seen the coordinator's: it supersedes it in the record.
    RogueOverlayWrite(*rogue, TlaxcalaOverlay(7, /*with_shelter_field=*/false), 7);
    Deliver(*t.coord, *t.field);
    Deliver(*rogue, *t.field);
    auto record = t.field->List(kOverlayCollection);
    REQUIRE(record.ok());
    REQUIRE(record->size() == 1);
    CHECK(record->front().fields.at("overlay").siblings.size() == 1);
    CHECK(record->front().fields.at("overlay").siblings[0].dot.device == rogue->device_id());

    CHECK(SchemaOf(*t.field).overlay_version() == 1);
    CHECK(OverlayStatus(*t.field).ends_with("using overlay version 1"));
    CHECK(t.field->Put("encounters", std::nullopt, Encounter("Market")).ok());

    // A new process on the same device: the overlay kept beside the store.
    t.field.reset();
    auto reopened = Replica::Open(Validating(t.dir.File("field")), "correct horse");
    REQUIRE(reopened.ok());
    CHECK(SchemaOf(**reopened).overlay_version() == 1);
    CHECK(SchemaOf(**reopened).FindCollection("encounters")->Find("tlx_Shelter") != nullptr);

    // The coordinator takes the record back with a newer overlay.
    REQUIRE(t.coord->ApplyRemote(rogue->PendingWrites(SIZE_MAX)->back().second).ok());
    REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(8)).ok());
    Deliver(*t.coord, **reopened);
    CHECK(SchemaOf(**reopened).overlay_version() == 8);
    CHECK(OverlayStatus(**reopened) == "");
  }
}

TEST_CASE("the effective pack follows what the device learns about roles") {
  Team t;
  TempDir dir;
  auto newcomer = MakeReplica(Validating(dir.path()));
  JoinTeam(*t.coord, *newcomer);  // trusts the coordinator's key, knows no role yet
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(1)).ok());
  Deliver(*t.coord, *newcomer);
  CHECK(SchemaOf(*newcomer).overlay_version() == 0);
  CHECK(OverlayStatus(*newcomer).find("not a coordinator") != std::string::npos);

  SetRole(*newcomer, *t.coord, Role::kCoordinator);
  CHECK(SchemaOf(*newcomer).overlay_version() == 1);
  CHECK(OverlayStatus(*newcomer) == "");

  // A revoked coordinator's overlay no longer counts.
  SetRole(*newcomer, *t.coord, Role::kCoordinator, /*revoked=*/true);
  CHECK(SchemaOf(*newcomer).overlay_version() == 0);
}

TEST_CASE("records written under a former overlay stay readable") {
  Team t;
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(1)).ok());
  Deliver(*t.coord, *t.field);
  Fields with_shelter = Encounter("Market");
  with_shelter["tlx_Shelter"] = "\"Casa Tlaxcala\"";
  auto id = t.field->Put("encounters", std::nullopt, with_shelter);
  REQUIRE(id.ok());

  // Version 2 drops the field (overlay fields are the team's to change).
  const std::string v2 = R"({"base":"enlace-htcds","version":2})";
  REQUIRE(PublishOverlay(*t.coord, v2).ok());
  Deliver(*t.coord, *t.field);
  Deliver(*t.field, *t.coord);
  CHECK(SchemaOf(*t.field).overlay_version() == 2);

  for (Replica* r : {t.field.get(), t.coord.get()}) {
    auto rec = r->Get("encounters", *id);
    REQUIRE_MESSAGE(rec.ok(), rec.status().ToString());
    CHECK(rec->fields.at("tlx_Shelter").value == "\"Casa Tlaxcala\"");
    CHECK(rec->fields.at("enc_Kind").value == "\"Market\"");
    CHECK(r->List("encounters")->size() == 1);
  }
  // Edits validate only what they send.
  CHECK(t.field->Put("encounters", *id, {{"enc_PeopleReached", "3"}}).ok());
  CHECK_FALSE(t.field->Put("encounters", *id, {{"tlx_Shelter", "\"Otra\""}}).ok());
}

TEST_CASE("concurrent overlays of two coordinators: the newest version is in effect everywhere") {
  Team t;
  TempDir dir;
  auto coord2 = MakeReplica(Validating(dir.path()));
  JoinTeam(*t.coord, *coord2);
  REQUIRE(TrustDevice(*t.field, coord2->device_id(), coord2->public_keys()).ok());
  for (Replica* r : {t.coord.get(), t.field.get(), coord2.get()}) {
    SetRole(*r, *t.coord, Role::kCoordinator);
    SetRole(*r, *coord2, Role::kCoordinator);
  }
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(4)).ok());
  REQUIRE(PublishOverlay(*coord2, TlaxcalaOverlay(5, false)).ok());
  Deliver(*t.coord, *coord2);
  Deliver(*coord2, *t.coord);
  Deliver(*t.coord, *t.field);
  Deliver(*coord2, *t.field);
  for (Replica* r : {t.coord.get(), t.field.get(), coord2.get()}) {
    CHECK(SchemaOf(*r).overlay_version() == 5);
    CHECK(r->Conflicts()->empty());  // not a person's conflict to resolve
  }
  CHECK(*t.coord->DumpState() == *t.field->DumpState());
  REQUIRE(PublishOverlay(*t.coord, TlaxcalaOverlay(6)).ok());
  CHECK(SchemaOf(*t.coord).overlay_version() == 6);
}

TEST_CASE("an overlay travels through the real hub with the roles the hub lists") {
  testing::HubTeam team;
  auto& coord = *team.coord;
  auto& ana = *team.a;
  CHECK(PublishOverlay(ana, TlaxcalaOverlay(1)).code() == StatusCode::kPermissionDenied);
  REQUIRE(PublishOverlay(coord, TlaxcalaOverlay(1)).ok());
  testing::SyncAll(team.hub, coord);
  testing::SyncAll(team.hub, ana);
  auto pack = TeamSchema(ana);
  REQUIRE(pack.ok());
  CHECK((*pack)->overlay_version() == 1);
  CHECK((*pack)->FindCollection("encounters")->Find("tlx_Shelter") != nullptr);
  CHECK(OverlayStatus(ana) == "");
}

}  // namespace
}  // namespace enlace
