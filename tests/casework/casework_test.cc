// Case work over the built-in pack: typed values, CSV, the CTDC mapping on a
// fixture with known answers, export round trips and report rows.
#include "enlace/casework.h"

#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "enlace/csv.h"
#include "enlace/schema.h"

namespace enlace {
namespace {

using casework::TextOptions;
using casework::ValueFromText;
using nlohmann::json;

const SchemaPack& Pack() { return SchemaPack::Builtin(); }

Result<std::string> Typed(const char* collection, const char* field, std::string_view text,
                          TextOptions options = {}) {
  const CollectionDef* c = Pack().FindCollection(collection);
  REQUIRE(c != nullptr);
  const FieldDef* f = c->Find(field);
  REQUIRE(f != nullptr);
  return ValueFromText(Pack(), *c, *f, text, options);
}

Record Make(const char* collection, int n, const std::map<std::string, std::string>& values) {
  Record r;
  r.collection = collection;
  r.id.bytes[3] = static_cast<uint8_t>(n);
  r.id.bytes[0] = collection[0];
  for (const auto& [k, v] : values) r.fields[k].value = v;
  return r;
}

TEST_CASE("typed text becomes the field's JSON value, by field type") {
  CHECK(*Typed("persons", "prs_FirstName", "  María ") == "\"María\"");
  CHECK(*Typed("persons", "vic_AgeWhenTrafficked", "16") == "16");
  CHECK(*Typed("encounters", "enc_FollowUpNeeded", "Sí") == "true");
  CHECK(*Typed("encounters", "enc_FollowUpNeeded", "no") == "false");
  CHECK(*Typed("encounters", "enc_Date", "2026-02-28") == "\"2026-02-28\"");
  CHECK(*Typed("encounters", "enc_Date", "3/11/2026") == "\"2026-11-03\"");  // DD/MM/YYYY
  CHECK(*Typed("persons", "prs_Gender", "Feminine") == "\"Feminine\"");
  CHECK(*Typed("persons", "prs_Gender", "feminine") == "\"Feminine\"");
  CHECK(*Typed("persons", "prs_Gender", "Femenino") == "\"Feminine\"");  // Spanish label
  CHECK(*Typed("events", "hte_FederalEntity", "9") == "\"09\"");         // leading zero
  CHECK(*Typed("events", "hte_FederalEntity", "Tlaxcala") == "\"29\"");
  CHECK(*Typed("persons", "prs_Citizenship", "MX; Guatemala, mx") == R"(["MX","GT"])");
  CHECK(*Typed("persons", "vic_RecruitmentWebsitesAndApps", "Facebook, TikTok") ==
        R"(["Facebook","TikTok"])");
  CHECK(*Typed("persons", "prs_FirstName", "   ") == "null");
  // A number picks from the list only where people choose from a numbered list.
  CHECK_FALSE(Typed("persons", "prs_Gender", "1").ok());
  TextOptions numbered;
  numbered.allow_index = true;
  CHECK(*Typed("persons", "prs_Gender", "1", numbered) == "\"Feminine\"");
}

TEST_CASE("text that does not fit its field is refused with the field and what was expected") {
  auto age = Typed("persons", "vic_AgeWhenTrafficked", "quince");
  REQUIRE_FALSE(age.ok());
  CHECK(age.status().message().find("vic_AgeWhenTrafficked") != std::string::npos);
  CHECK_FALSE(Typed("encounters", "enc_Date", "2023-02-30").ok());
  CHECK_FALSE(Typed("encounters", "enc_Date", "30/02/2023").ok());
  CHECK_FALSE(Typed("encounters", "enc_Date", "ayer").ok());
  CHECK_FALSE(Typed("encounters", "enc_FollowUpNeeded", "quizá").ok());
  auto gender = Typed("persons", "prs_Gender", "X");
  REQUIRE_FALSE(gender.ok());
  CHECK(gender.status().message().find("Feminine") != std::string::npos);
  CHECK_FALSE(Typed("cases", "cas_Person", "not-an-id").ok());
  CHECK(*Typed("cases", "cas_Person", "0123456789ABCDEF0123456789abcdef") ==
        "\"0123456789abcdef0123456789abcdef\"");
}

TEST_CASE("text that is not UTF-8 is refused; Windows-1252 spreadsheets are converted") {
  CHECK(
      casework::IsUtf8("Mar\xC3\xAD"
                       "a"));
  CHECK_FALSE(
      casework::IsUtf8("Mar\xED"
                       "a"));                     // Latin-1
  CHECK_FALSE(casework::IsUtf8("\xC0\x80"));      // overlong
  CHECK_FALSE(casework::IsUtf8("\xED\xA0\x80"));  // a surrogate
  CHECK_FALSE(casework::IsUtf8("\xC3"));          // truncated
  auto latin = Typed("persons", "prs_FirstName",
                     "Mar\xED"
                     "a");
  REQUIRE_FALSE(latin.ok());
  CHECK(latin.status().message().find("UTF-8") != std::string::npos);
  CHECK(casework::Windows1252ToUtf8("Mar\xED"
                                    "a Pe\xF1"
                                    "a \x93"
                                    "ok\x94 \x80") ==
        "Mar\xC3\xAD"
        "a Pe\xC3\xB1"
        "a \xE2\x80\x9C"
        "ok\xE2\x80\x9D \xE2\x82\xAC");
  CHECK(casework::Windows1252ToUtf8("\x81") == "\xEF\xBF\xBD");
  CHECK(casework::IsUtf8(casework::Windows1252ToUtf8("any \xFF\x80\x9D bytes")));
}

TEST_CASE("stored values are shown with labels in the reader's language, unknown ones raw") {
  const FieldDef* gender = Pack().FindCollection("persons")->Find("prs_Gender");
  CHECK(casework::ValueForPeople(Pack(), *gender, "\"Feminine\"", "es") == "Femenino");
  CHECK(casework::ValueForPeople(Pack(), *gender, "\"Feminine\"", "en") == "Feminine");
  // A code from an older pack or a withdrawn overlay is kept, not dropped.
  CHECK(casework::ValueForPeople(Pack(), *gender, "\"Retired\"", "es") == "Retired");
  const FieldDef* follow = Pack().FindCollection("encounters")->Find("enc_FollowUpNeeded");
  CHECK(casework::ValueForPeople(Pack(), *follow, "true", "es") == "sí");
  CHECK(casework::ValueForCell(R"(["MX","GT"])") == "MX;GT");
  CHECK(casework::ValueForCell("null").empty());
}

TEST_CASE("records are found by an id prefix and searched without accents") {
  std::vector<Record> records = {Make("cases", 1, {{"cas_Title", "\"José, Apizaco\""}}),
                                 Make("cases", 2, {{"cas_Title", "\"Tenancingo\""}})};
  auto found = casework::FindByPrefix(records, records[1].id.ToHex().substr(0, 8));
  REQUIRE(found.ok());
  CHECK(*found == records[1].id);
  CHECK(casework::FindByPrefix(records, "zzzzzz").status().code() == StatusCode::kInvalidArgument);
  CHECK(casework::FindByPrefix(records, "abc").status().code() == StatusCode::kInvalidArgument);
  CHECK(casework::FindByPrefix(records, "ffffff").status().code() == StatusCode::kNotFound);
  // Both ids start with "630000": ambiguous.
  CHECK(casework::FindByPrefix(records, "630000").status().code() == StatusCode::kInvalidArgument);
  const CollectionDef& cases = *Pack().FindCollection("cases");
  CHECK(casework::Matches(Pack(), cases, records[0], "jose", "es"));
  CHECK(casework::Matches(Pack(), cases, records[0], "APIZACO", "es"));
  CHECK_FALSE(casework::Matches(Pack(), cases, records[1], "jose", "es"));
}

TEST_CASE("CSV: quotes, line breaks, semicolons, a byte-order mark and errors by line") {
  CsvReader reader(
      "\xEF\xBB\xBF"
      "a,b,c\r\n1,\"x, \"\"y\"\"\",3\n\n\"multi\nline\",,\n");
  std::vector<std::string> f;
  REQUIRE(*reader.Next(f));
  CHECK(f == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(*reader.Next(f));
  CHECK(f == std::vector<std::string>{"1", "x, \"y\"", "3"});
  CHECK(reader.line() == 2);
  REQUIRE(*reader.Next(f));
  CHECK(f == std::vector<std::string>{"multi\nline", "", ""});
  CHECK(reader.line() == 4);
  CHECK_FALSE(*reader.Next(f));

  CsvReader semicolons("a;b\n1,5;2\n");
  CHECK(semicolons.delimiter() == ';');
  REQUIRE(*semicolons.Next(f));
  REQUIRE(*semicolons.Next(f));
  CHECK(f == std::vector<std::string>{"1,5", "2"});

  CsvReader open_quote("a\n\"never closed\n");
  REQUIRE(*open_quote.Next(f));
  auto bad = open_quote.Next(f);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("line 2") != std::string::npos);
  CsvReader after_quote("\"a\"b\n");
  CHECK_FALSE(after_quote.Next(f).ok());

  // Exports never hand a spreadsheet a formula; negative numbers stay numbers.
  CHECK(CsvField("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"");
  CHECK(CsvField("@SUM(A1)") == "'@SUM(A1)");
  CHECK(CsvField("-12") == "-12");
  CHECK(CsvLine({"a", "b,c"}) == "a,\"b,c\"\r\n");
}

TEST_CASE("a CSV export reads back to the same values, identifying fields only when asked") {
  const CollectionDef& persons = *Pack().FindCollection("persons");
  std::vector<Record> records = {
      Make("persons", 1,
           {{"prs_FirstName", "\"Ana, \\\"la güera\\\"\""},
            {"prs_Gender", "\"Feminine\""},
            {"prs_Citizenship", R"(["MX","GT"])"},
            {"vic_AgeWhenTrafficked", "15"},
            {"con_Consent", "true"},
            {"con_ConsentDate", "\"2026-03-01\""}}),
      Make("persons", 2, {{"prs_Gender", "\"Masculine\""}, {"vic_AgeWhenTrafficked", "31"}})};
  const std::string without = casework::ExportCsv(persons, records, false);
  CHECK(without.find("prs_FirstName") == std::string::npos);
  CHECK(without.find("güera") == std::string::npos);
  const std::string with = casework::ExportCsv(persons, records, true);
  CsvReader reader(with);
  std::vector<std::string> header, row;
  REQUIRE(*reader.Next(header));
  CHECK(header[0] == "id");
  for (const Record& original : records) {
    REQUIRE(*reader.Next(row));
    REQUIRE(row.size() == header.size());
    CHECK(row[0] == original.id.ToHex());
    Fields back;
    for (size_t i = 1; i < header.size(); ++i) {
      const FieldDef* f = persons.Find(header[i]);
      REQUIRE(f != nullptr);
      auto v = ValueFromText(Pack(), persons, *f, row[i]);
      REQUIRE(v.ok());
      if (*v != "null") back[header[i]] = *v;
    }
    Fields expected;
    for (const auto& [k, v] : original.fields) expected[k] = json::parse(v.value).dump();
    CHECK(back == expected);
  }
}

// The fixture of the CTDC and report tests: three persons, two of them
// victims, with their cases and events.
casework::CaseData Fixture() {
  casework::CaseData d;
  d.persons = {
      Make("persons", 1,
           {{"vic_TraffickingStatus", "\"ActualVictimOfTrafficking\""},
            {"prs_Gender", "\"Feminine\""},
            {"prs_Birthdate", "\"2009-05-10\""},
            {"prs_Citizenship", R"(["GT","MX"])"},
            {"vic_MethodsOfControl", R"(["DebtBondage","RestrictsMovement"])"},
            {"vic_TypeOfExploitation", R"(["SexualExploitation","ForcedLabour"])"},
            {"vic_TypeOfSexExploitation", R"(["Prostitution"])"},
            {"vic_ForcedLabourIndustry", R"(["I_AccommodationAndFoodServiceActivities"])"},
            {"vic_MethodOfRecruitment", R"(["ThroughRomanticRelationship"])"},
            {"vic_RelationshipToTrafficker", "\"IntimatePartner\""}}),
      Make("persons", 2,
           {{"vic_TraffickingStatus", "\"PossibleVictimOfTrafficking\""},
            {"prs_Gender", "\"Masculine\""},
            {"vic_AgeWhenTrafficked", "34"},
            {"vic_TypeOfExploitation", R"(["ForcedLabour"])"},
            {"vic_ForcedLabourIndustry", R"(["A_AgricultureForestryAndFishing"])"}}),
      Make("persons", 3,
           {{"vic_TraffickingStatus", "\"NotAVictimOfTrafficking\""},
            {"prs_Gender", "\"Feminine\""}}),
  };
  d.cases = {
      Make("cases", 1,
           {{"cas_Person", json(d.persons[0].id.ToHex()).dump()},
            {"cas_OpenedDate", "\"2026-03-15\""}}),
      Make("cases", 2,
           {{"cas_Person", json(d.persons[1].id.ToHex()).dump()},
            {"cas_OpenedDate", "\"2025-12-01\""}}),
  };
  d.events = {
      Make("events", 1,
           {{"hte_Case", json(d.cases[0].id.ToHex()).dump()},
            {"hte_Type", "\"Recruitment\""},
            {"hte_Country", "\"GT\""},
            {"hte_Date", "\"2026-01-10\""}}),
      Make("events", 2,
           {{"hte_Case", json(d.cases[0].id.ToHex()).dump()},
            {"hte_Type", "\"Exploitation\""},
            {"hte_Country", "\"MX\""},
            {"hte_FederalEntity", "\"29\""},
            {"hte_Date", "\"2026-02-20\""}}),
      Make("events", 3,
           {{"hte_Case", json(d.cases[1].id.ToHex()).dump()},
            {"hte_Type", "\"Exploitation\""},
            {"hte_FederalEntity", "\"07\""},
            {"hte_Date", "\"2025-11-02\""}}),
  };
  return d;
}

TEST_CASE("CTDC columns are derived with known answers on a fixture") {
  const auto cols = casework::CtdcColumns();
  const auto rows = casework::CtdcRows(Pack(), Fixture());
  REQUIRE(rows.size() == 2);  // the person who is not a victim is left out
  auto cell = [&](size_t row, const std::string& column) {
    const auto it = std::find(cols.begin(), cols.end(), column);
    REQUIRE(it != cols.end());
    return rows[row][static_cast<size_t>(it - cols.begin())];
  };
  CHECK(cell(0, "yearOfRegistration") == "2026");
  CHECK(cell(0, "gender") == "Female");
  CHECK(cell(0, "ageBroad") == "9--17");  // 16 at registration
  CHECK(cell(0, "majorityStatus") == "Minor");
  CHECK(cell(0, "citizenship") == "GTM");  // the first citizenship, ISO alpha-3
  CHECK(cell(0, "CountryOfExploitation") == "MEX");
  CHECK(cell(0, "meansOfControlDebtBondage") == "1");
  CHECK(cell(0, "meansOfControlRestrictsMovement") == "1");
  CHECK(cell(0, "meansOfControlThreats") == "0");
  CHECK(cell(0, "meansOfControlGroupEconomic") == "1");
  CHECK(cell(0, "meansOfControlGroupRestriction") == "1");
  CHECK(cell(0, "meansOfControlGroupViolence") == "0");
  CHECK(cell(0, "meansOfControlNotSpecified") == "0");
  CHECK(cell(0, "isSexualExploit") == "1");
  CHECK(cell(0, "isForcedLabour") == "1");
  CHECK(cell(0, "isSexAndLabour") == "1");
  CHECK(cell(0, "typeOfSexProstitution") == "1");
  CHECK(cell(0, "typeOfLabourHospitality") == "1");
  CHECK(cell(0, "isAbduction") == "0");
  CHECK(cell(0, "recruiterRelationIntimatePartner") == "1");
  CHECK(cell(0, "recruiterRelationFamily") == "0");

  CHECK(cell(1, "yearOfRegistration") == "2025");
  CHECK(cell(1, "gender") == "Male");
  CHECK(cell(1, "ageBroad") == "30--38");
  CHECK(cell(1, "majorityStatusAtExploit") == "Adult");
  CHECK(cell(1, "citizenship").empty());
  CHECK(cell(1, "meansOfControlNotSpecified") == "1");
  CHECK(cell(1, "meansOfControlDebtBondage").empty());  // unknown, not "no"
  CHECK(cell(1, "isSexualExploit") == "0");
  CHECK(cell(1, "isSexAndLabour") == "0");
  CHECK(cell(1, "typeOfLabourAgriculture") == "1");
  CHECK(cell(1, "recruiterRelationUnknown").empty());

  CHECK(casework::CtdcAgeBroad(0) == "0--8");
  CHECK(casework::CtdcAgeBroad(17) == "9--17");
  CHECK(casework::CtdcAgeBroad(18) == "18--20");
  CHECK(casework::CtdcAgeBroad(48) == "48+");
  CHECK(casework::CtdcAgeBroad(std::nullopt).empty());
}

TEST_CASE("the CTDC rows' quasi-identifiers come in groups of at least k") {
  // 12 alike rows, 3 alike but for their citizenship, and 1 unique in
  // everything: the 3 join the 12 once the citizenship is blank; the unique
  // one is withheld.
  auto row = [](std::string year, std::string gender, std::string age, std::string cit) {
    std::vector<std::string> r = {year, "enlace", gender, age, "Adult", "Adult", cit, "MEX", "x"};
    return r;
  };
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < 12; ++i) rows.push_back(row("2025", "Female", "18--20", ""));
  for (int i = 0; i < 3; ++i) rows.push_back(row("2025", "Female", "18--20", "GTM"));
  rows.push_back(row("2019", "Male", "48+", "HND"));
  const casework::CtdcProtection p = casework::ProtectCtdcRows(rows, 11);
  CHECK(p.unsafe == 4);
  CHECK(p.withheld == 1);
  CHECK(p.generalised >= 4);
  REQUIRE(rows.size() == 15);
  std::map<std::string, size_t> groups;
  for (const auto& r : rows) {
    ++groups[r[0] + "|" + r[2] + "|" + r[3] + "|" + r[4] + "|" + r[5] + "|" + r[6] + "|" + r[7]];
  }
  for (const auto& group : groups) CHECK_MESSAGE(group.second >= 11, group.first);
  // Safe rows are left alone.
  std::vector<std::vector<std::string>> safe(rows.begin(), rows.begin() + 12);
  CHECK(casework::ProtectCtdcRows(safe, 11).unsafe == 0);
}

TEST_CASE("report rows count victims, or events when a place or event type is asked") {
  const casework::CaseData d = Fixture();
  casework::ReportQuery q;
  q.dims = {"gender", "exploitation"};
  auto rows = casework::BuildReportRows(Pack(), d, q);
  REQUIRE(rows.ok());
  CHECK(rows->unit == "persons");
  // One row per victim (person 3 is no victim): person 1, with two types of
  // exploitation, is one person under "Several", never two mentions, so
  // every total counts people.
  CHECK(rows->rows.size() == 2);
  REQUIRE(rows->dims.size() == 2);
  CHECK(rows->dims[0].codes == std::vector<std::string>{"Feminine", "Masculine"});
  CHECK(rows->dims[1].codes.back() == casework::kSeveralCategory);
  CHECK(rows->dims[1].labels.back() == "More than one");
  size_t several = 0;
  for (const auto& r : rows->rows) several += r[1] == casework::kSeveralCategory ? 1 : 0;
  CHECK(several == 1);

  q.dims = {"federal_entity", "event_type"};
  rows = casework::BuildReportRows(Pack(), d, q);
  REQUIRE(rows.ok());
  CHECK(rows->unit == "events");
  CHECK(rows->rows.size() == 3);
  CHECK(rows->dims[0].codes == std::vector<std::string>{"07", "29", "Unknown"});
  CHECK(rows->dims[0].labels[1] == "Tlaxcala");

  // Dates: events by their own date, persons by their case's opening.
  q.dims = {"month"};
  q.from = "2026-01-01";
  rows = casework::BuildReportRows(Pack(), d, q);
  REQUIRE(rows.ok());
  CHECK(rows->rows == std::vector<std::vector<std::string>>{{"2026-03"}});
  q.dims = {"event_type", "month"};
  rows = casework::BuildReportRows(Pack(), d, q);
  REQUIRE(rows.ok());
  CHECK(rows->rows.size() == 2);

  q.dims = {"colour"};
  CHECK(casework::BuildReportRows(Pack(), d, q).status().code() == StatusCode::kInvalidArgument);
  q.dims = {"gender", "gender"};
  CHECK_FALSE(casework::BuildReportRows(Pack(), d, q).ok());
  q.dims = {"gender", "month", "age_band", "citizenship"};
  CHECK_FALSE(casework::BuildReportRows(Pack(), d, q).ok());
  q.dims = {"gender"};
  q.from = "01/01/2026";
  CHECK_FALSE(casework::BuildReportRows(Pack(), d, q).ok());
}

}  // namespace
}  // namespace enlace
