// The schema pack (enlace/schema.h): the built-in HTCDS-aligned pack, every
// validation error path, defaults, overlays as a pure operation, labels in
// Spanish and English with a complete catalogue, and validation inside
// Replica::Put (nothing written on error; old records stay readable).
#include "enlace/schema.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>

#include "enlace/i18n.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "enlace/write.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::MakeReplica;
using testing::ReadFile;
using testing::TempDir;
using testing::TestOptions;

// The repository root, from this file's path (tests/casework/schema_test.cc).
std::filesystem::path SourceRoot() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

const SchemaPack& Pack() { return SchemaPack::Builtin(); }

// The message of Validate's error, or "" when it passes.
std::string Error(std::string_view collection, const Fields& values, bool creating = false) {
  Status s = Pack().Validate(collection, values, creating);
  if (s.ok()) return "";
  CHECK(s.code() == StatusCode::kInvalidArgument);
  return s.message();
}

constexpr char kCaseId[] = "\"0123456789abcdef0123456789abcdef\"";

// ---- the built-in pack ------------------------------------------------------------------

TEST_CASE("the built-in pack is HTCDS-aligned and complete") {
  const SchemaPack& p = Pack();
  CHECK(p.name() == "enlace-htcds");
  CHECK(p.version() == 1);
  CHECK(p.overlay_version() == 0);
  for (const char* c : {"persons", "cases", "events", "encounters", "support_plans", "services"}) {
    CHECK_MESSAGE(p.FindCollection(c) != nullptr, c);
  }
  // Every field name is a valid write field name; every collection has a
  // title field and labels.
  for (const auto& c : p.collections()) {
    CHECK(ValidateName(c.name, "collection").ok());
    CHECK_FALSE(c.label.empty());
    CHECK(c.Find(c.title_field) != nullptr);
    for (const auto& f : c.fields) {
      CHECK_MESSAGE(ValidateName(f.name, "field").ok(), f.name);
      CHECK(f.collection == c.name);
      CHECK_FALSE(f.label.empty());
    }
  }
  const CollectionDef& persons = *p.FindCollection("persons");
  for (const char* f : {"prs_FirstName", "prs_LastName", "prs_MobilePhone", "prs_IdentityNumber",
                        "prs_MailingStreet"}) {
    REQUIRE(persons.Find(f) != nullptr);
    CHECK_MESSAGE(persons.Find(f)->identifying, f);
  }
  CHECK_FALSE(persons.Find("prs_Gender")->identifying);
  CHECK(persons.Find("vic_AgeWhenTrafficked")->min == 0);
  CHECK(persons.Find("vic_AgeWhenTrafficked")->max == 120);
  CHECK(persons.Find("prs_Citizenship")->type == FieldType::kCodes);
  CHECK(persons.Find("vic_RecruitmentWebsitesAndApps")->type == FieldType::kStrings);

  const FieldDef& status = *p.FindCollection("cases")->Find("cas_Status");
  CHECK(status.required);
  CHECK(status.default_value == "\"Active\"");
  CHECK(p.FindCollection("events")->Find("hte_Case")->ref_collection == "cases");

  const CodeList& countries = *p.FindCodeList("Country");
  CHECK(countries.values.size() == 249);
  std::set<std::string> alpha3;
  for (const auto& v : countries.values) {
    CHECK(v.code.size() == 2);
    REQUIRE_MESSAGE(v.attributes.contains("alpha3"), v.code);
    CHECK(v.attributes.at("alpha3").size() == 3);
    alpha3.insert(v.attributes.at("alpha3"));
  }
  CHECK(alpha3.size() == 249);
  CHECK(countries.Find("MX")->attributes.at("alpha3") == "MEX");
  CHECK(countries.Find("MX")->label == "Mexico");

  const CodeList& states = *p.FindCodeList("FederalEntity");
  REQUIRE(states.values.size() == 32);
  for (int i = 1; i <= 32; ++i) {
    const std::string code = (i < 10 ? "0" : "") + std::to_string(i);
    CHECK_MESSAGE(states.values[static_cast<size_t>(i - 1)].code == code, code);
  }
  CHECK(states.Find("01")->label == "Aguascalientes");
  CHECK(states.Find("09")->label == "Ciudad de México");
  CHECK(states.Find("29")->label == "Tlaxcala");
  CHECK(states.Find("32")->label == "Zacatecas");

  CHECK(p.FindCodeList("MethodOfControl")->Find("RestrictsMovement") != nullptr);
  CHECK(p.FindCodeList("CaseStatus")->values.size() == 4);
  for (const char* code : {"Recruitment", "Transit", "Exploitation", "Return"}) {
    CHECK(p.FindCodeList("EventType")->Find(code) != nullptr);
  }
  for (const char* code : {"Migrant", "AsylumSeeker", "Refugee", "Returnee", "UnaccompaniedChild",
                           "InternallyDisplaced", "None"}) {
    CHECK(p.FindCodeList("MigrationStatus")->Find(code) != nullptr);
  }
}

TEST_CASE("the pack file in core/casework/schema is the one built into the library") {
  const std::string text =
      ReadFile((SourceRoot() / "core/casework/schema/enlace-htcds.json").string());
  REQUIRE_FALSE(text.empty());
  auto parsed = SchemaPack::Parse(text);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
  REQUIRE(parsed->collections().size() == Pack().collections().size());
  for (size_t i = 0; i < Pack().collections().size(); ++i) {
    CHECK(parsed->collections()[i].fields.size() == Pack().collections()[i].fields.size());
  }
  CHECK(parsed->codelists().size() == Pack().codelists().size());
}

// ---- validation ---------------------------------------------------------------------------

TEST_CASE("a complete valid record of every collection passes") {
  CHECK(Error("persons",
              {{"prs_FirstName", "\"María José\""},
               {"prs_LastName", "\"Pérez\""},
               {"prs_SecondLastName", "\"Hernández\""},
               {"prs_Birthdate", "\"2006-02-28\""},
               {"prs_Gender", "\"Feminine\""},
               {"prs_MobilePhone", "\"+52 246 123 4567\""},
               {"prs_IdentityDocumentType", "\"CURP\""},
               {"prs_IdentityNumber", "\"PEHM060228MTLRRR09\""},
               {"prs_MailingState", "\"29\""},
               {"prs_MailingCountry", "\"MX\""},
               {"prs_Citizenship", "[\"MX\",\"GT\"]"},
               {"prs_PrimaryLanguage", "\"nah\""},
               {"vic_TraffickingStatus", "\"PossibleVictimOfTrafficking\""},
               {"vic_TraffickingStatusDecisionMakingOrg", "\"NGO\""},
               {"vic_RelationshipToTrafficker", "\"IntimatePartner\""},
               {"vic_AgeWhenTrafficked", "16"},
               {"vic_MethodOfRecruitment", "[\"ThroughRomanticRelationship\"]"},
               {"vic_MethodsOfControl", "[\"RestrictsMovement\",\"DebtBondage\"]"},
               {"vic_TypeOfExploitation", "[\"SexualExploitation\"]"},
               {"vic_TypeOfSexExploitation", "[\"Prostitution\"]"},
               {"vic_RecruitmentWebsitesAndApps", "[\"Facebook\",\"WhatsApp\"]"},
               {"vic_MigrationStatus", "[\"None\"]"},
               {"con_Consent", "true"},
               {"con_ConsentDate", "\"2026-05-01\""},
               {"con_ConsentScope", "[\"CaseManagement\",\"AnonymisedStatistics\"]"}},
              true) == "");
  CHECK(Error("cases",
              {{"cas_Title", "\"Tenancingo, first contact\""},
               {"cas_Status", "\"Active\""},
               {"cas_Person", kCaseId},
               {"cas_OpenedDate", "\"2026-05-01\""},
               {"cas_ReasonForOutgoingReferral", "\"AdditionalServicesRequired\""},
               {"cas_OutgoingReferralDetails", "\"Shelter in Puebla\\nwith legal aid\""}},
              true) == "");
  CHECK(Error("events",
              {{"hte_Case", kCaseId},
               {"hte_Type", "\"Recruitment\""},
               {"hte_Date", "\"2024-02-29\""},
               {"hte_Country", "\"MX\""},
               {"hte_FederalEntity", "\"21\""},
               {"hte_Municipality", "\"Puebla\""}},
              true) == "");
  CHECK(Error("encounters",
              {{"enc_Date", "\"2026-05-01\""},
               {"enc_Kind", "\"Street\""},
               {"enc_PeopleReached", "0"},
               {"enc_IndicatorsObserved", "[]"},
               {"enc_FollowUpNeeded", "false"}},
              true) == "");
  CHECK(Error("support_plans",
              {{"spl_Case", kCaseId},
               {"spl_SupportTypes", "[\"Accommodation\",\"LegalAssistance\"]"},
               {"spl_Status", "\"Planned\""}},
              true) == "");
  CHECK(Error("services",
              {{"svc_Case", kCaseId},
               {"svc_SupportType", "\"MedicalCare\""},
               {"svc_Status", "\"InProgress\""}},
              true) == "");
}

TEST_CASE("an unknown collection or field is refused, naming what exists") {
  CHECK(Error("victims", {{"x", "1"}}).starts_with("unknown collection 'victims'"));
  CHECK(Error("victims", {{"x", "1"}}).find("persons, cases, events") != std::string::npos);
  CHECK(Error("enlace.overlay", {{"overlay", "\"{}\""}}).starts_with("unknown collection"));
  const std::string e = Error("cases", {{"status", "\"Active\""}});
  CHECK(e.starts_with("cases.status: unknown field"));
  CHECK(e.find("cas_Status") != std::string::npos);
}

TEST_CASE("values of the wrong type are refused with the field named") {
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "\"16\""}}) ==
        "persons.vic_AgeWhenTrafficked: expected a whole number, got \"16\"");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "16.5"}}) ==
        "persons.vic_AgeWhenTrafficked: expected a whole number, got 16.5");
  CHECK(Error("persons", {{"prs_FirstName", "42"}}) ==
        "persons.prs_FirstName: expected a text, got 42");
  CHECK(Error("persons", {{"con_Consent", "\"yes\""}})
            .starts_with("persons.con_Consent: expected true or false"));
  CHECK(Error("persons", {{"prs_Gender", "[\"Feminine\"]"}}) ==
        "persons.prs_Gender: expected a code of Gender (a text), got a list");
  CHECK(Error("persons", {{"prs_Citizenship", "\"MX\""}}) ==
        "persons.prs_Citizenship: expected a list of codes of Country, got \"MX\"");
  CHECK(Error("persons", {{"vic_RecruitmentWebsitesAndApps", "[\"Facebook\", 3]"}}) ==
        "persons.vic_RecruitmentWebsitesAndApps: expected a list of texts, one item is 3");
  CHECK(Error("persons", {{"prs_FirstName", "not json"}}) ==
        "persons.prs_FirstName: not valid JSON");
}

TEST_CASE("integers outside their range are refused") {
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "121"}}) ==
        "persons.vic_AgeWhenTrafficked: 121 is out of range 0..120");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "-1"}}) ==
        "persons.vic_AgeWhenTrafficked: -1 is out of range 0..120");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "120"}}) == "");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "0"}}) == "");
  CHECK(Error("encounters", {{"enc_PeopleReached", "-3"}}) ==
        "encounters.enc_PeopleReached: -3 is out of range 0..100000");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "18446744073709551615"}}).find("too large") !=
        std::string::npos);
}

TEST_CASE("dates must be real calendar days written YYYY-MM-DD") {
  CHECK(Error("events", {{"hte_Date", "\"2023-02-30\""}}) ==
        "events.hte_Date: expected a calendar date YYYY-MM-DD, got \"2023-02-30\"");
  for (const char* bad : {"\"2023-02-29\"", "\"2023-13-01\"", "\"2023-04-31\"", "\"2023-00-10\"",
                          "\"30/01/2023\"", "\"2023-1-5\"", "\"0000-01-01\"", "20230101"}) {
    CHECK_MESSAGE(Error("events", {{"hte_Date", bad}})
                      .starts_with("events.hte_Date: expected a "
                                   "calendar date"),
                  bad);
  }
  for (const char* good :
       {"\"2024-02-29\"", "\"2000-02-29\"", "\"2023-12-31\"", "\"1999-01-01\""}) {
    CHECK_MESSAGE(Error("events", {{"hte_Date", good}}) == "", good);
  }
  CHECK(Error("events", {{"hte_Date", "\"1900-02-29\""}}) != "");
}

TEST_CASE("a code outside its list is refused, naming the allowed codes") {
  CHECK(Error("cases", {{"cas_Status", "\"Open\""}}) ==
        "cases.cas_Status: \"Open\" is not one of Active, FollowUp, Closed, ClosedReferred");
  // A near miss gets a suggestion (same code in another case, or its English label).
  CHECK(Error("cases", {{"cas_Status", "\"active\""}}).ends_with("(did you mean Active?)"));
  const std::string country = Error("events", {{"hte_Country", "\"Mexico\""}});
  CHECK(country.starts_with("events.hte_Country: \"Mexico\" is not one of AD, AE, AF"));
  CHECK(country.find("(249 codes in code list Country)") != std::string::npos);
  CHECK(country.ends_with("(did you mean MX?)"));
  CHECK(Error("events", {{"hte_FederalEntity", "\"9\""}})
            .starts_with("events.hte_FederalEntity: \"9\" is not one of 01, 02"));
}

TEST_CASE("a codes list must hold distinct known codes") {
  CHECK(Error("persons", {{"prs_Citizenship", "[\"MX\",\"MX\"]"}}) ==
        "persons.prs_Citizenship: \"MX\" appears more than once");
  CHECK(
      Error("persons", {{"vic_MethodsOfControl", "[\"DebtBondage\",\"Threats\"]"}})
          .starts_with("persons.vic_MethodsOfControl: \"Threats\" is not one of PhysicalThreats"));
  CHECK(Error("persons", {{"vic_MethodsOfControl", "[\"DebtBondage\", 7]"}})
            .starts_with("persons.vic_MethodsOfControl: expected a code of MethodOfControl"));
  CHECK(Error("persons", {{"vic_MethodsOfControl", "[]"}}) == "");
}

TEST_CASE("a reference must be a 32-hex record id") {
  CHECK(Error("events", {{"hte_Case", "\"abc\""}}) ==
        "events.hte_Case: expected the id of a record of cases (32 lower-case hex characters), "
        "got a text of 3 characters");
  CHECK(Error("events", {{"hte_Case", "\"0123456789ABCDEF0123456789ABCDEF\""}}) != "");
  CHECK(Error("events", {{"hte_Case", "\"0123456789abcdef0123456789abcdeg\""}}) != "");
  CHECK(Error("events", {{"hte_Case", "12"}}) != "");
  CHECK(Error("events", {{"hte_Case", kCaseId}}) == "");
}

TEST_CASE("texts longer than their field allows are refused, counting characters") {
  CHECK(Error("persons", {{"prs_FirstName", "\"" + std::string(201, 'a') + "\""}}) ==
        "persons.prs_FirstName: is 201 characters long; at most 200 are allowed");
  std::string accented;
  for (int i = 0; i < 200; ++i) accented += "é";  // 400 bytes, 200 characters
  CHECK(Error("persons", {{"prs_FirstName", "\"" + accented + "\""}}) == "");
  CHECK(Error("persons", {{"prs_MobilePhone", "\"" + std::string(33, '1') + "\""}}) ==
        "persons.prs_MobilePhone: is 33 characters long; at most 32 are allowed");
  CHECK(Error("cases", {{"cas_CaseComment", "\"" + std::string(10000, 'x') + "\""}}) == "");
  CHECK(Error("cases", {{"cas_CaseComment", "\"" + std::string(10001, 'x') + "\""}}) != "");
}

TEST_CASE("error messages never quote free text typed in the wrong field") {
  // A name typed where a date belongs must not end up in a message (or a log).
  const std::string e = Error("persons", {{"prs_Birthdate", "\"Maria Lopez\""}});
  CHECK(e ==
        "persons.prs_Birthdate: expected a calendar date YYYY-MM-DD, got a text of 11 "
        "characters");
  CHECK(Error("persons", {{"vic_AgeWhenTrafficked", "\"Juana\""}}).find("Juana") ==
        std::string::npos);
}

TEST_CASE("required fields: missing when creating, fine when editing, never null or empty") {
  CHECK(Error("events", {{"hte_Date", "\"2024-01-01\""}}, true) ==
        "events.hte_Case: is required (also missing: hte_Type)");
  CHECK(Error("events", {{"hte_Case", kCaseId}}, true) == "events.hte_Type: is required");
  // Editing an existing record sends only what changes.
  CHECK(Error("events", {{"hte_Date", "\"2024-01-01\""}}, false) == "");
  CHECK(Error("cases", {{"cas_Status", "null"}}) ==
        "cases.cas_Status: is required and cannot be cleared");
  CHECK(Error("support_plans", {{"spl_SupportTypes", "[]"}}) ==
        "support_plans.spl_SupportTypes: is required and cannot be empty");
  // null clears an optional field.
  CHECK(Error("persons", {{"prs_Gender", "null"}, {"vic_AgeWhenTrafficked", "null"}}) == "");
}

TEST_CASE("defaults fill missing fields of new records and never override") {
  Fields values{{"cas_Title", "\"x\""}};
  CHECK(Error("cases", values, true) == "cases.cas_Status: is required");
  Pack().FillDefaults("cases", values);
  CHECK(values.at("cas_Status") == "\"Active\"");
  CHECK(Error("cases", values, true) == "");

  Fields given{{"cas_Status", "\"FollowUp\""}};
  Pack().FillDefaults("cases", given);
  CHECK(given.at("cas_Status") == "\"FollowUp\"");

  Fields service{{"svc_Case", kCaseId}, {"svc_SupportType", "\"LegalAssistance\""}};
  Pack().FillDefaults("services", service);
  CHECK(service.at("svc_Status") == "\"Referred\"");
  Fields unknown;
  Pack().FillDefaults("nowhere", unknown);
  CHECK(unknown.empty());
}

// ---- parsing --------------------------------------------------------------------------------

std::string ParseError(const std::string& json) {
  auto p = SchemaPack::Parse(json);
  if (p.ok()) return "";
  CHECK(p.status().code() == StatusCode::kInvalidArgument);
  return p.status().message();
}

std::string MiniPack(const std::string& fields, const std::string& extra_lists = "") {
  return R"({"pack":"mini","version":1,"codelists":{"Color":[{"code":"Red","label":"Red"}])" +
         extra_lists + R"(},"collections":[{"name":"things","label":"Thing","fields":[)" + fields +
         "]}]}";
}

TEST_CASE("a malformed pack is refused with the offending entry named") {
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"string","label":"A"})")) == "");
  CHECK(ParseError("{") == "the schema pack is not valid JSON");
  CHECK(ParseError("[]") == "the schema pack must be a JSON object");
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"strng","label":"A"})"))
            .starts_with("field things.a: unknown type 'strng'"));
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"code","codelist":"Colour","label":"A"})")) ==
        "pack mini: field things.a: unknown code list 'Colour'");
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"code","label":"A"})")) ==
        "field things.a: a code field needs a 'codelist'");
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"ref","collection":"nowhere","label":"A"})")) ==
        "pack mini: field things.a: unknown collection 'nowhere'");
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"string","label":"A","requird":true})")) ==
        "field things.a: unknown key 'requird'");
  CHECK(ParseError(MiniPack(R"({"name":"1a","type":"string","label":"A"})"))
            .starts_with("field things.1a: field name must start with a letter"));
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"string","label":"A"},)"
                            R"({"name":"a","type":"text","label":"B"})")) ==
        "field things.a is defined twice");
  CHECK(
      ParseError(MiniPack(R"({"name":"a","type":"code","codelist":"Color","label":"A",)"
                          R"("default":"Blue"})"))
          .starts_with("pack mini: field things.a: bad default: things.a: \"Blue\" is not one of"));
  CHECK(ParseError(MiniPack(R"({"name":"a","type":"integer","label":"A","min":5,"max":1})")) ==
        "field things.a: 'min' is greater than 'max'");
  CHECK(
      ParseError(MiniPack(R"({"name":"a","type":"string","label":"A"})",
                          R"(,"Size":[{"code":"S","label":"S"},{"code":"S","label":"Small"}])")) ==
      "code list Size: code 'S' appears twice");
  CHECK(ParseError(R"({"pack":"mini","version":0,"collections":[]})") ==
        "pack mini: 'version' must be a whole number >= 1");
}

// ---- overlays (pure) --------------------------------------------------------------------------

std::string OverlayError(const std::string& json) {
  auto p = Pack().WithOverlay(json);
  if (p.ok()) return "";
  CHECK(p.status().code() == StatusCode::kInvalidArgument);
  return p.status().message();
}

TEST_CASE("an overlay adds fields, codes, code lists, collections and labels") {
  auto p = Pack().WithOverlay(R"({
    "base": "enlace-htcds", "version": 3, "name": "Tlaxcala",
    "codelists": {
      "EncounterKind": [{"code": "Market", "label": "Market", "labels": {"es": "Mercado"}},
                        {"code": "Street", "labels": {"es": "Vía pública"}}],
      "Shelter": [{"code": "CasaA", "label": "Casa A"}]
    },
    "collections": [
      {"name": "encounters", "labels": {"es": "Contacto"}, "fields": [
        {"name": "tlx_Shelter", "type": "code", "codelist": "Shelter", "label": "Shelter",
         "labels": {"es": "Albergue de Tlaxcala"}},
        {"name": "enc_Kind", "labels": {"es": "Modalidad"}, "type": "code", "required": true}
      ]},
      {"name": "trainings", "label": "Training", "title_field": "trn_Topic", "fields": [
        {"name": "trn_Topic", "type": "string", "label": "Topic", "required": true},
        {"name": "trn_Case", "type": "ref", "collection": "cases", "label": "Case"}
      ]}
    ]})");
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->overlay_version() == 3);
  CHECK(p->overlay_team_note() == "Tlaxcala");
  CHECK(p->version() == 1);
  const CollectionDef& enc = *p->FindCollection("encounters");
  REQUIRE(enc.Find("tlx_Shelter") != nullptr);
  CHECK(enc.Find("tlx_Shelter")->from_overlay);
  CHECK_FALSE(enc.Find("enc_Kind")->from_overlay);
  const CodeList& kinds = *p->FindCodeList("EncounterKind");
  CHECK(kinds.Find("Market")->from_overlay);
  CHECK(kinds.values.size() == Pack().FindCodeList("EncounterKind")->values.size() + 1);
  CHECK(p->FindCollection("trainings")->from_overlay);

  CHECK(p->Validate("encounters",
                    {{"enc_Date", "\"2026-05-01\""},
                     {"enc_Kind", "\"Market\""},
                     {"tlx_Shelter", "\"CasaA\""}},
                    true)
            .ok());
  CHECK(p->Validate("trainings", {{"trn_Topic", "\"Indicators\""}}, true).ok());
  CHECK(p->Validate("trainings", {{"trn_Case", kCaseId}}, true).message() ==
        "trainings.trn_Topic: is required");
  // The base pack itself is unchanged.
  CHECK(Error("encounters", {{"enc_Kind", "\"Market\""}}) != "");
  CHECK(Error("encounters", {{"tlx_Shelter", "\"CasaA\""}}) != "");

  // Labels: the overlay's own language labels come first.
  CHECK(p->CollectionLabel(enc, "es") == "Contacto");
  CHECK(p->FieldLabel(*enc.Find("enc_Kind"), "es") == "Modalidad");
  CHECK(p->FieldLabel(*enc.Find("enc_Kind"), "en") == "Kind of encounter");
  CHECK(p->CodeLabel(kinds, *kinds.Find("Market"), "es") == "Mercado");
  CHECK(p->CodeLabel(kinds, *kinds.Find("Street"), "es") == "Vía pública");
  CHECK(p->CodeLabel(kinds, *kinds.Find("Street"), "en") == "Street");
  // An overlay item without a Spanish label shows in English.
  const CollectionDef& trainings = *p->FindCollection("trainings");
  CHECK(p->FieldLabel(*trainings.Find("trn_Topic"), "es") == "Topic");
}

TEST_CASE("an overlay may never remove or retype a base field") {
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"vic_AgeWhenTrafficked","type":"string","label":"Age"}]}]})") ==
        "overlay: field persons.vic_AgeWhenTrafficked: an overlay cannot change the type of a "
        "base field");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"prs_Gender","remove":true}]}]})") ==
        "overlay: field persons.prs_Gender: nothing can be removed from the pack");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "remove":true}]})") == "overlay: collection persons: nothing can be removed from the pack");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"codelists":{"Gender":[
        {"code":"Feminine","removed":true}]}})") ==
        "overlay: code list Gender, code Feminine: nothing can be removed from the pack");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"prs_Gender","codelist":"Country"}]}]})")
            .ends_with("cannot change the code list of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"events",
        "fields":[{"name":"hte_Case","collection":"persons"}]}]})")
            .ends_with("cannot change the referenced collection of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"cases",
        "fields":[{"name":"cas_Status","required":false}]}]})")
            .ends_with("cannot change the 'required' flag of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"prs_FirstName","identifying":false}]}]})")
            .ends_with("cannot change the 'identifying' flag of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"vic_AgeWhenTrafficked","max":99}]}]})")
            .ends_with("cannot change the maximum of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"cases",
        "fields":[{"name":"cas_Status","default":"FollowUp"}]}]})")
            .ends_with("cannot change the default value of a base field"));
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"cases",
        "fields":[{"name":"cas_Status","label":"State"}]}]})")
            .find("cannot change the English label") != std::string::npos);
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"codelists":{"Gender":[
        {"code":"Feminine","label":"Woman"}]}})")
            .find("cannot change the English label of a base code") != std::string::npos);
  // Restating a base field's definition unchanged is fine.
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"cases",
        "fields":[{"name":"cas_Status","type":"code","codelist":"CaseStatus","required":true,
        "default":"Active","label":"Status"}]}]})") == "");
}

TEST_CASE("an overlay is refused when malformed, naming the entry") {
  CHECK(OverlayError("{") == "the overlay is not valid JSON");
  CHECK(OverlayError(R"({"base":"other","version":1})") ==
        "overlay: it extends pack 'other', not 'enlace-htcds'");
  CHECK(OverlayError(R"({"base":"enlace-htcds"})") ==
        "overlay: 'version' must be a whole number >= 1");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"tlx_x","type":"code","codelist":"Nope","label":"X"}]}]})") ==
        "overlay: field persons.tlx_x: unknown code list 'Nope'");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"enlace.x",
        "label":"X","fields":[{"name":"a","type":"string","label":"A"}]}]})")
            .find("reserved") != std::string::npos);
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"collections":[{"name":"persons",
        "fields":[{"name":"tlx_x","type":"string","label":"X"},{"name":"tlx_x","type":"string",
        "label":"X"}]}]})") == "overlay: collection persons: field tlx_x appears twice");
  CHECK(OverlayError(R"({"base":"enlace-htcds","version":1,"extra":1})") ==
        "overlay: unknown key 'extra'");
}

// ---- labels -------------------------------------------------------------------------------------

TEST_CASE("labels read in Spanish from the schema catalogue and in English from the pack") {
  const SchemaPack& p = Pack();
  const CollectionDef& events = *p.FindCollection("events");
  CHECK(p.CollectionLabel(events, "es") == "Evento de trata");
  CHECK(p.CollectionLabel(events, "en") == "Trafficking event");
  CHECK(p.FieldLabel(*events.Find("hte_FederalEntity"), "es") == "Entidad federativa");
  CHECK(p.FieldLabel(*events.Find("hte_FederalEntity"), "es_MX.UTF-8") == "Entidad federativa");
  CHECK(p.FieldLabel(*events.Find("hte_FederalEntity"), "en") == "Federal entity");
  CHECK(p.FieldLabel(*events.Find("hte_FederalEntity"), "fr") == "Federal entity");
  const CodeList& types = *p.FindCodeList("TypeOfExploitation");
  CHECK(p.CodeLabel(types, *types.Find("SexualExploitation"), "es") == "Explotación sexual");
  CHECK(p.CodeLabel(types, *types.Find("SexualExploitation"), "en") == "Sexual exploitation");
  const CodeList& countries = *p.FindCodeList("Country");
  CHECK(p.CodeLabel(countries, *countries.Find("MX"), "es") == "México");
  CHECK(p.CodeLabel(countries, *countries.Find("US"), "es") == "Estados Unidos");
  const FieldDef& age = *p.FindCollection("persons")->Find("vic_AgeWhenTrafficked");
  CHECK(p.FieldHelp(age, "en") == age.help);
  CHECK(p.FieldHelp(age, "es") == "En años, cuando comenzó la situación de trata.");
  CHECK(p.FieldHelp(*events.Find("hte_Date"), "es") == "");
}

// Every label and help text of the built-in pack, as (msgctxt, English).
std::set<std::pair<std::string, std::string>> PackLabels() {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& c : Pack().collections()) {
    out.emplace("collections", c.label);
    for (const auto& f : c.fields) {
      out.emplace("field:" + c.name + "." + f.name, f.label);
      if (!f.help.empty()) out.emplace("help:" + c.name + "." + f.name, f.help);
    }
  }
  for (const auto& l : Pack().codelists()) {
    for (const auto& v : l.values) out.emplace("code:" + l.name, v.label);
  }
  return out;
}

TEST_CASE("every label of the pack has a Spanish translation in po/schema.es.po") {
  const std::string po = ReadFile((SourceRoot() / "po/schema.es.po").string());
  REQUIRE_FALSE(po.empty());
  auto entries = i18n::ParsePo(po);
  REQUIRE_MESSAGE(entries.ok(), entries.status().ToString());
  std::map<std::pair<std::string, std::string>, std::string> translations;
  for (const auto& e : *entries) {
    CHECK_MESSAGE(!e.fuzzy, e.context << " " << e.msgid);
    translations[{e.context, e.msgid}] = e.msgstr;
  }
  const auto labels = PackLabels();
  CHECK(labels.size() > 500);
  for (const auto& key : labels) {
    auto it = translations.find(key);
    REQUIRE_MESSAGE(it != translations.end(),
                    "no translation for " << key.first << " / " << key.second);
    CHECK_MESSAGE(!it->second.empty(),
                  "empty translation for " << key.first << " / " << key.second);
  }
  // No stale entries: the catalogue and the template hold exactly the pack's labels.
  CHECK(translations.size() == labels.size());
  auto pot = i18n::ParsePo(ReadFile((SourceRoot() / "po/schema.pot").string()));
  REQUIRE_MESSAGE(pot.ok(), pot.status().ToString());
  std::set<std::pair<std::string, std::string>> template_keys;
  for (const auto& e : *pot) template_keys.emplace(e.context, e.msgid);
  CHECK(template_keys == labels);
}

// ---- validation in Replica::Put
// -------------------------------------------------------------------

struct ValidatingReplica {
  TempDir dir;
  std::unique_ptr<Replica> replica;
  explicit ValidatingReplica(bool validate = true) {
    ReplicaOptions o = TestOptions(dir.path());
    o.hook = TeamSchemaHook(validate);
    replica = MakeReplica(o);
    REQUIRE(CreateTeam(*replica).ok());
  }
};

TEST_CASE("a refused put writes nothing") {
  ValidatingReplica v;
  Replica& r = *v.replica;
  auto bad = r.Put("cases", std::nullopt, {{"cas_Status", "\"Open\""}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() ==
        "cases.cas_Status: \"Open\" is not one of Active, FollowUp, Closed, ClosedReferred");
  CHECK(*r.PendingCount() == 0);
  CHECK(r.List("cases")->empty());
  CHECK(r.StoredWrites()->empty());
  CHECK_FALSE(r.Put("nowhere", std::nullopt, {{"a", "1"}}).ok());
  CHECK_FALSE(r.Put("events", std::nullopt, {{"hte_Type", "\"Transit\""}}).ok());
  CHECK(*r.PendingCount() == 0);
}

TEST_CASE("a validated put fills defaults on creation and checks only what an edit sends") {
  ValidatingReplica v;
  Replica& r = *v.replica;
  auto id = r.Put("cases", std::nullopt, {{"cas_Title", "\"First contact\""}});
  REQUIRE_MESSAGE(id.ok(), id.status().ToString());
  auto rec = r.Get("cases", *id);
  REQUIRE(rec.ok());
  CHECK(rec->fields.at("cas_Status").value == "\"Active\"");
  // An edit: required fields need not be sent again, but may not be cleared.
  CHECK(r.Put("cases", *id, {{"cas_OpenedDate", "\"2026-05-01\""}}).ok());
  CHECK(r.Put("cases", *id, {{"cas_Status", "null"}}).status().message() ==
        "cases.cas_Status: is required and cannot be cleared");
  // A given id that does not exist yet is a creation.
  RecordId fresh = RecordId::Random();
  CHECK(r.Put("events", fresh, {{"hte_Date", "\"2026-05-01\""}}).status().message() ==
        "events.hte_Case: is required (also missing: hte_Type)");
  CHECK(
      r.Put("events", fresh, {{"hte_Case", "\"" + id->ToHex() + "\""}, {"hte_Type", "\"Transit\""}})
          .ok());
  CHECK(*r.PendingCount() == 3);
  // Resolve goes through the same checks.
  CHECK(r.Resolve("cases", *id, "cas_Status", "\"Shut\"").code() == StatusCode::kInvalidArgument);
}

TEST_CASE("the reserved enlace. collections refuse ordinary writes, validated or not") {
  for (bool validate : {false, true}) {
    ValidatingReplica v(validate);
    Replica& r = *v.replica;
    auto put = r.Put(kOverlayCollection, std::nullopt, {{"overlay", "\"{}\""}});
    REQUIRE_FALSE(put.ok());
    CHECK(put.status().code() == StatusCode::kInvalidArgument);
    CHECK(put.status().message().find("reserved") != std::string::npos);
    CHECK_FALSE(r.Put("enlace.other", std::nullopt, {{"a", "1"}}).ok());
    CHECK(r.Delete(kOverlayCollection, RecordId::Random()).code() == StatusCode::kInvalidArgument);
    CHECK(r.Erase(kOverlayCollection, RecordId::Random()).code() == StatusCode::kInvalidArgument);
    CHECK(*r.PendingCount() == 0);
  }
}

TEST_CASE("records written before validation or under an older pack stay readable") {
  TempDir dir;
  RecordId id;
  {
    // Free-form writes: an unknown field and a code the pack does not have
    // (as a record of an older pack version would hold).
    auto r = MakeReplica(TestOptions(dir.path()));
    REQUIRE(CreateTeam(*r).ok());
    auto put =
        r->Put("cases", std::nullopt, {{"cas_Status", "\"Open\""}, {"legacy_field", "\"kept\""}});
    REQUIRE(put.ok());
    id = *put;
  }
  ReplicaOptions o = TestOptions(dir.path());
  o.hook = TeamSchemaHook();
  auto opened = Replica::Open(o, "correct horse");
  REQUIRE(opened.ok());
  Replica& r = **opened;
  auto rec = r.Get("cases", id);
  REQUIRE_MESSAGE(rec.ok(), rec.status().ToString());
  CHECK(rec->fields.at("cas_Status").value == "\"Open\"");
  CHECK(rec->fields.at("legacy_field").value == "\"kept\"");
  auto list = r.List("cases");
  REQUIRE(list.ok());
  CHECK(list->size() == 1);
  // Editing another field only validates what is sent.
  CHECK(r.Put("cases", id, {{"cas_Title", "\"Migrated\""}}).ok());
  // Fixing the old code goes through validation like any edit.
  CHECK_FALSE(r.Put("cases", id, {{"cas_Status", "\"Open\""}}).ok());
  CHECK(r.Put("cases", id, {{"cas_Status", "\"FollowUp\""}}).ok());
}

}  // namespace
}  // namespace enlace
