// The CTDC export and the rows of aggregated reports (enlace/casework.h).
//
// Both read persons (victim context), their cases (cas_Person) and the
// trafficking events of those cases (hte_Case). Only persons whose
// vic_TraffickingStatus is ActualVictimOfTrafficking or
// PossibleVictimOfTrafficking are counted or exported.
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "enlace/casework.h"
#include "enlace/i18n.h"

namespace enlace::internal {
extern const unsigned char kCtdcMappingJson[];
extern const std::size_t kCtdcMappingJsonSize;
}  // namespace enlace::internal

namespace enlace::casework {
namespace {

using nlohmann::json;

// The shown value of a field as JSON (null when absent).
json FieldJson(const Record& r, const char* field) {
  auto it = r.fields.find(field);
  if (it == r.fields.end()) return nullptr;
  json j = json::parse(it->second.value, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

std::string FieldString(const Record& r, const char* field) {
  json j = FieldJson(r, field);
  return j.is_string() ? j.get<std::string>() : "";
}

std::vector<std::string> FieldStrings(const Record& r, const char* field) {
  json j = FieldJson(r, field);
  std::vector<std::string> out;
  if (j.is_string()) out.push_back(j.get<std::string>());
  if (j.is_array()) {
    for (const json& item : j) {
      if (item.is_string()) out.push_back(item.get<std::string>());
    }
  }
  return out;
}

std::optional<int64_t> FieldInt(const Record& r, const char* field) {
  json j = FieldJson(r, field);
  if (j.is_number_integer()) return j.get<int64_t>();
  return std::nullopt;
}

bool Counted(const Record& person) {
  const std::string status = FieldString(person, "vic_TraffickingStatus");
  return status == "ActualVictimOfTrafficking" || status == "PossibleVictimOfTrafficking";
}

// Whole years between two YYYY-MM-DD dates, or nullopt.
std::optional<int64_t> YearsBetween(const std::string& from, const std::string& to) {
  int y1 = 0, m1 = 0, d1 = 0, y2 = 0, m2 = 0, d2 = 0;
  if (std::sscanf(from.c_str(), "%d-%d-%d", &y1, &m1, &d1) != 3 ||
      std::sscanf(to.c_str(), "%d-%d-%d", &y2, &m2, &d2) != 3) {
    return std::nullopt;
  }
  int64_t years = y2 - y1;
  if (m2 < m1 || (m2 == m1 && d2 < d1)) --years;
  if (years < 0 || years > 130) return std::nullopt;
  return years;
}

// Cases of each person and events of each case.
struct Links {
  std::map<std::string, std::vector<const Record*>> cases_of_person;
  std::map<std::string, std::vector<const Record*>> events_of_case;
  std::map<std::string, const Record*> case_by_id;
  std::map<std::string, const Record*> person_by_id;
};

Links Link(const CaseData& data) {
  Links l;
  for (const Record& p : data.persons) l.person_by_id[p.id.ToHex()] = &p;
  for (const Record& c : data.cases) {
    l.case_by_id[c.id.ToHex()] = &c;
    const std::string person = FieldString(c, "cas_Person");
    if (!person.empty()) l.cases_of_person[person].push_back(&c);
  }
  for (const Record& e : data.events) {
    const std::string c = FieldString(e, "hte_Case");
    if (!c.empty()) l.events_of_case[c].push_back(&e);
  }
  return l;
}

// The earliest case opening date of a person ("" when none).
std::string RegistrationDate(const Links& links, const Record& person) {
  std::string first;
  auto it = links.cases_of_person.find(person.id.ToHex());
  if (it == links.cases_of_person.end()) return first;
  for (const Record* c : it->second) {
    const std::string d = FieldString(*c, "cas_OpenedDate");
    if (!d.empty() && (first.empty() || d < first)) first = d;
  }
  return first;
}

std::vector<const Record*> EventsOf(const Links& links, const Record& person) {
  std::vector<const Record*> out;
  auto it = links.cases_of_person.find(person.id.ToHex());
  if (it == links.cases_of_person.end()) return out;
  for (const Record* c : it->second) {
    auto ev = links.events_of_case.find(c->id.ToHex());
    if (ev != links.events_of_case.end())
      out.insert(out.end(), ev->second.begin(), ev->second.end());
  }
  return out;
}

// Age used for bands: age when trafficked, else age at registration.
std::optional<int64_t> AgeOf(const Links& links, const Record& person) {
  if (auto age = FieldInt(person, "vic_AgeWhenTrafficked")) return age;
  const std::string birth = FieldString(person, "prs_Birthdate");
  const std::string registered = RegistrationDate(links, person);
  if (birth.empty() || registered.empty()) return std::nullopt;
  return YearsBetween(birth, registered);
}

std::string CtdcGender(const std::string& code) {
  if (code == "Feminine") return "Female";
  if (code == "Masculine") return "Male";
  if (code == "TransgenderFeminine" || code == "TransgenderMasculine" || code == "NonConforming") {
    return "Transgender/NonConforming";
  }
  return "";
}

std::string Alpha3(const SchemaPack& pack, const std::string& alpha2) {
  const CodeList* countries = pack.FindCodeList("Country");
  if (countries == nullptr) return "";
  const CodeValue* v = countries->Find(alpha2);
  if (v == nullptr) return "";
  auto it = v->attributes.find("alpha3");
  return it == v->attributes.end() ? "" : it->second;
}

// A CTDC flag column and the HTCDS codes that set it to 1.
struct Mapping {
  std::string column;
  std::vector<std::string> codes;
};

// The flag columns of the CTDC dataset, from the built-in
// schema/ctdc-mapping.json (a test checks it parses and matches
// ../shared/ctdc-columns.txt), in column order.
struct CtdcMapping {
  std::vector<Mapping> control;         // means of control, one per HTCDS method
  std::vector<Mapping> control_groups;  // enlace's grouping (docs/SCHEMA.md)
  std::vector<Mapping> exploit;
  std::vector<Mapping> labour;
  std::vector<Mapping> sex;
  std::vector<Mapping> recruiter;
};

std::vector<Mapping> MappingTable(const json& doc, const char* name) {
  std::vector<Mapping> out;
  for (const json& row : doc.at(name)) {
    out.push_back({row.at(0).get<std::string>(), row.at(1).get<std::vector<std::string>>()});
  }
  return out;
}

const CtdcMapping& Ctdc() {
  static const CtdcMapping kMapping = [] {
    const json doc = json::parse(internal::kCtdcMappingJson,
                                 internal::kCtdcMappingJson + internal::kCtdcMappingJsonSize);
    return CtdcMapping{MappingTable(doc, "means_of_control"),
                       MappingTable(doc, "means_of_control_groups"),
                       MappingTable(doc, "type_of_exploitation"),
                       MappingTable(doc, "type_of_labour"),
                       MappingTable(doc, "type_of_sexual_exploitation"),
                       MappingTable(doc, "recruiter_relation")};
  }();
  return kMapping;
}

bool AnyOf(const std::vector<std::string>& values, const std::vector<std::string>& codes) {
  for (const std::string& c : codes) {
    if (std::find(values.begin(), values.end(), c) != values.end()) return true;
  }
  return false;
}

// "1"/"0" per column, or "" for every column when nothing was recorded.
void AddFlags(std::vector<std::string>& row, const std::vector<Mapping>& columns,
              const std::vector<std::string>& values) {
  for (const Mapping& m : columns)
    row.push_back(values.empty() ? "" : AnyOf(values, m.codes) ? "1" : "0");
}

std::string Joined(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) out += (out.empty() ? "" : ";") + v;
  return out;
}

}  // namespace

std::string CtdcAgeBroad(std::optional<int64_t> age) {
  if (!age || *age < 0) return "";
  if (*age <= 8) return "0--8";
  if (*age <= 17) return "9--17";
  if (*age <= 20) return "18--20";
  if (*age <= 23) return "21--23";
  if (*age <= 26) return "24--26";
  if (*age <= 29) return "27--29";
  if (*age <= 38) return "30--38";
  if (*age <= 47) return "39--47";
  return "48+";
}

std::vector<std::string> CtdcColumns() {
  std::vector<std::string> cols = {
      "yearOfRegistration", "Datasource",           "gender",
      "ageBroad",           "majorityStatus",       "majorityStatusAtExploit",
      "citizenship",        "CountryOfExploitation"};
  for (const auto* group : {&Ctdc().control, &Ctdc().control_groups}) {
    for (const Mapping& m : *group) cols.push_back(m.column);
  }
  cols.push_back("meansOfControlNotSpecified");
  cols.push_back("meansOfControlConcatenated");
  for (const Mapping& m : Ctdc().exploit) cols.push_back(m.column);
  cols.push_back("isSexAndLabour");
  cols.push_back("typeOfExploitConcatenated");
  for (const Mapping& m : Ctdc().labour) cols.push_back(m.column);
  cols.push_back("typeOfLabourOther");
  for (const Mapping& m : Ctdc().sex) cols.push_back(m.column);
  cols.push_back("isAbduction");
  for (const Mapping& m : Ctdc().recruiter) cols.push_back(m.column);
  return cols;
}

std::vector<std::vector<std::string>> CtdcRows(const SchemaPack& pack, const CaseData& data) {
  const Links links = Link(data);
  std::vector<std::vector<std::string>> rows;
  for (const Record& person : data.persons) {
    if (!Counted(person)) continue;
    std::vector<std::string> row;
    const std::string registered = RegistrationDate(links, person);
    row.push_back(registered.size() >= 4 ? registered.substr(0, 4) : "");
    row.push_back("enlace");
    row.push_back(CtdcGender(FieldString(person, "prs_Gender")));
    const std::optional<int64_t> age = AgeOf(links, person);
    row.push_back(CtdcAgeBroad(age));
    std::optional<int64_t> age_now;
    const std::string birth = FieldString(person, "prs_Birthdate");
    if (!birth.empty() && !registered.empty()) age_now = YearsBetween(birth, registered);
    if (!age_now) age_now = age;
    row.push_back(!age_now ? "" : *age_now >= 18 ? "Adult" : "Minor");
    const auto at_exploit = FieldInt(person, "vic_AgeWhenTrafficked");
    row.push_back(!at_exploit ? "" : *at_exploit >= 18 ? "Adult" : "Minor");
    const auto citizenship = FieldStrings(person, "prs_Citizenship");
    row.push_back(citizenship.empty() ? "" : Alpha3(pack, citizenship.front()));
    std::string exploitation_country;
    for (const Record* e : EventsOf(links, person)) {
      if (FieldString(*e, "hte_Type") == "Exploitation") {
        exploitation_country = Alpha3(pack, FieldString(*e, "hte_Country"));
        if (!exploitation_country.empty()) break;
      }
    }
    row.push_back(exploitation_country);

    const auto control = FieldStrings(person, "vic_MethodsOfControl");
    AddFlags(row, Ctdc().control, control);
    AddFlags(row, Ctdc().control_groups, control);
    row.push_back(control.empty() ? "1" : "0");
    row.push_back(Joined(control));

    const auto exploit = FieldStrings(person, "vic_TypeOfExploitation");
    AddFlags(row, Ctdc().exploit, exploit);
    const bool sex = AnyOf(exploit, {"SexualExploitation"});
    const bool labour = AnyOf(exploit, {"ForcedLabour", "ChildLabour"});
    row.push_back(exploit.empty() ? "" : sex && labour ? "1" : "0");
    row.push_back(Joined(exploit));

    const auto industries = FieldStrings(person, "vic_ForcedLabourIndustry");
    AddFlags(row, Ctdc().labour, industries);
    bool other_industry = false;
    for (const std::string& i : industries) {
      bool mapped = false;
      for (const Mapping& m : Ctdc().labour) mapped = mapped || AnyOf({i}, m.codes);
      other_industry = other_industry || !mapped;
    }
    row.push_back(industries.empty() ? "" : other_industry ? "1" : "0");
    AddFlags(row, Ctdc().sex, FieldStrings(person, "vic_TypeOfSexExploitation"));
    const auto recruitment = FieldStrings(person, "vic_MethodOfRecruitment");
    row.push_back(recruitment.empty() ? "" : AnyOf(recruitment, {"Abduction"}) ? "1" : "0");
    const std::string relation = FieldString(person, "vic_RelationshipToTrafficker");
    AddFlags(row, Ctdc().recruiter,
             relation.empty() ? std::vector<std::string>{} : std::vector<std::string>{relation});
    rows.push_back(std::move(row));
  }
  return rows;
}

CtdcProtection ProtectCtdcRows(std::vector<std::vector<std::string>>& rows, uint32_t k) {
  // Columns of CtdcColumns(): 0 year, 2 gender, 3 ageBroad, 4 majorityStatus,
  // 5 majorityStatusAtExploit, 6 citizenship, 7 CountryOfExploitation.
  static const std::vector<size_t> kKey = {0, 2, 3, 4, 5, 6, 7};
  static const std::vector<std::vector<size_t>> kSteps = {{6}, {7}, {3}, {4, 5}, {2}, {0}};
  auto key_of = [](const std::vector<std::string>& row) {
    std::string key;
    for (size_t c : kKey) key += row[c] + '\x1f';
    return key;
  };
  auto small_rows = [&] {
    std::map<std::string, size_t> groups;
    for (const auto& row : rows) ++groups[key_of(row)];
    std::vector<size_t> out;
    for (size_t r = 0; r < rows.size(); ++r) {
      if (groups[key_of(rows[r])] < k) out.push_back(r);
    }
    return out;
  };
  CtdcProtection out;
  std::vector<size_t> unsafe = small_rows();
  out.unsafe = unsafe.size();
  for (const auto& step : kSteps) {
    if (unsafe.empty()) break;
    for (size_t r : unsafe) {
      for (size_t c : step) {
        if (!rows[r][c].empty()) {
          rows[r][c].clear();
          ++out.generalised;
        }
      }
    }
    unsafe = small_rows();
  }
  out.withheld = unsafe.size();
  for (size_t i = unsafe.size(); i-- > 0;) {
    rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(unsafe[i]));
  }
  return out;
}

// ---- report rows --------------------------------------------------------------------------------

std::vector<std::string> ReportDimensions() {
  return {"federal_entity", "exploitation", "gender",    "age_band",
          "citizenship",    "month",        "event_type"};
}

Result<ReportRows> BuildReportRows(const SchemaPack& pack, const CaseData& data,
                                   const ReportQuery& query) {
  const auto known = ReportDimensions();
  if (query.dims.empty() || query.dims.size() > 3) {
    return Status::InvalidArgument(i18n::Translate("a report has 1 to 3 dimensions"));
  }
  std::set<std::string> seen_dims;
  bool by_event = false;
  for (const std::string& d : query.dims) {
    if (std::find(known.begin(), known.end(), d) == known.end()) {
      std::string all;
      for (const std::string& k : known) all += (all.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(i18n::Format(
          i18n::Translate("unknown report dimension \"{0}\"; use one of {1}"), {d, all}));
    }
    if (!seen_dims.insert(d).second) {
      return Status::InvalidArgument(
          i18n::Format(i18n::Translate("dimension \"{0}\" is given twice"), {d}));
    }
    by_event = by_event || d == "federal_entity" || d == "event_type";
  }
  for (const std::string* date : {&query.from, &query.to}) {
    int y = 0, m = 0, dd = 0;
    if (!date->empty() &&
        (date->size() != 10 || std::sscanf(date->c_str(), "%4d-%2d-%2d", &y, &m, &dd) != 3)) {
      return Status::InvalidArgument(
          i18n::Format(i18n::Translate("\"{0}\" is not a date (YYYY-MM-DD)"), {*date}));
    }
  }
  const Links links = Link(data);
  const auto in_range = [&](const std::string& date) {
    if (query.from.empty() && query.to.empty()) return true;
    if (date.empty()) return false;
    return (query.from.empty() || date >= query.from) && (query.to.empty() || date <= query.to);
  };

  ReportRows out;
  out.unit = by_event ? "events" : "persons";
  std::map<std::string, std::set<std::string>> observed;
  const std::string kUnknown = "Unknown";
  // The values of one dimension for a person (and event).
  auto values_of = [&](const std::string& dim, const Record& person, const Record* event,
                       const std::string& date) -> std::vector<std::string> {
    std::vector<std::string> v;
    if (dim == "federal_entity") {
      if (event != nullptr) v.push_back(FieldString(*event, "hte_FederalEntity"));
    } else if (dim == "event_type") {
      if (event != nullptr) v.push_back(FieldString(*event, "hte_Type"));
    } else if (dim == "exploitation") {
      v = FieldStrings(person, "vic_TypeOfExploitation");
    } else if (dim == "gender") {
      v.push_back(FieldString(person, "prs_Gender"));
    } else if (dim == "age_band") {
      v.push_back(CtdcAgeBroad(AgeOf(links, person)));
    } else if (dim == "citizenship") {
      v = FieldStrings(person, "prs_Citizenship");
    } else if (dim == "month") {
      v.push_back(date.size() >= 7 ? date.substr(0, 7) : "");
    }
    if (v.empty()) v.push_back("");
    // One person, one row: several values are one category.
    if (v.size() > 1) v = {kSeveralCategory};
    for (std::string& s : v) {
      if (s.empty()) s = kUnknown;
    }
    return v;
  };
  auto emit = [&](const Record& person, const Record* event, const std::string& date) {
    // The cross product of the dimensions' values.
    std::vector<std::vector<std::string>> partial{{}};
    for (const std::string& dim : query.dims) {
      std::vector<std::vector<std::string>> next;
      for (const std::string& value : values_of(dim, person, event, date)) {
        observed[dim].insert(value);
        for (const auto& p : partial) {
          next.push_back(p);
          next.back().push_back(value);
        }
      }
      partial = std::move(next);
    }
    out.rows.insert(out.rows.end(), partial.begin(), partial.end());
  };
  for (const Record& person : data.persons) {
    if (!Counted(person)) continue;
    if (by_event) {
      for (const Record* e : EventsOf(links, person)) {
        const std::string date = FieldString(*e, "hte_Date");
        if (in_range(date)) emit(person, e, date);
      }
    } else {
      const std::string date = RegistrationDate(links, person);
      if (in_range(date)) emit(person, nullptr, date);
    }
  }

  // Categories: the observed values in the pack's order, Unknown last.
  const std::map<std::string, std::string> codelist_of = {{"federal_entity", "FederalEntity"},
                                                          {"exploitation", "TypeOfExploitation"},
                                                          {"gender", "Gender"},
                                                          {"citizenship", "Country"},
                                                          {"event_type", "EventType"}};
  for (const std::string& dim : query.dims) {
    DimensionCategories cats;
    cats.name = dim;
    const std::set<std::string>& values = observed[dim];
    auto add = [&](const std::string& code, const std::string& label) {
      cats.codes.push_back(code);
      cats.labels.push_back(label);
    };
    auto it = codelist_of.find(dim);
    const CodeList* list = it == codelist_of.end() ? nullptr : pack.FindCodeList(it->second);
    std::set<std::string> placed;
    if (list != nullptr) {
      for (const CodeValue& v : list->values) {
        if (values.contains(v.code)) {
          add(v.code, pack.CodeLabel(*list, v, query.language));
          placed.insert(v.code);
        }
      }
    } else if (dim == "age_band") {
      for (const char* band :
           {"0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+"}) {
        if (values.contains(band)) {
          add(band, band);
          placed.insert(band);
        }
      }
    }
    // Months sort as text; codes no longer in the pack are kept as they are.
    for (const std::string& v : values) {
      if (!placed.contains(v) && v != kUnknown && v != kSeveralCategory) add(v, v);
    }
    if (values.contains(kSeveralCategory)) {
      add(kSeveralCategory, query.language == "es" ? "Más de uno" : "More than one");
    }
    if (values.contains(kUnknown)) {
      add(kUnknown, query.language == "es" ? "Desconocido" : "Unknown");
    }
    out.dims.push_back(std::move(cats));
  }
  return out;
}

}  // namespace enlace::casework
