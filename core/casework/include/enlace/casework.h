// Case work on top of the schema pack: values typed by people or read from
// spreadsheets, values shown to people, exports (CSV, JSON, CTDC) and the
// rows that feed aggregated reports. Pure functions of the pack and records:
// no I/O, shared by the CLI and the C API.
#ifndef ENLACE_CASEWORK_H_
#define ENLACE_CASEWORK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/status.h"

namespace enlace::casework {

// ---- values ------------------------------------------------------------------------------

// `text` without leading and trailing spaces, tabs and line ends.
std::string Trim(std::string_view text);

// How a value typed by a person or found in a spreadsheet cell becomes the
// field's JSON value:
//   string/text  as is;  integer/number  a decimal number;
//   boolean      yes/no, sí/no, true/false, 1/0 (any case);
//   date         YYYY-MM-DD or DD/MM/YYYY (Mexican spreadsheets), a real date;
//   code         the code (any case), or its English or Spanish label; with
//                `allow_index`, also its 1-based number in the list; numeric
//                codes accept the number without leading zeros ("9" -> "09");
//   codes/strings  items separated by ',' or ';' (or '|');
//   ref          a 32-hex record id.
// An empty (blank) text gives "null". kInvalidArgument naming the field (and
// for codes the allowed values) when the text does not fit.
struct TextOptions {
  std::string_view language = "en";
  bool allow_index = false;
};
Result<std::string> ValueFromText(const SchemaPack& pack, const CollectionDef& collection,
                                  const FieldDef& field, std::string_view text,
                                  const TextOptions& options = {});

// True for well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF).
bool IsUtf8(std::string_view text);

// Text in Windows-1252 (what Excel writes as "CSV" on Windows in Mexico)
// converted to UTF-8; bytes that code page leaves undefined become U+FFFD.
std::string Windows1252ToUtf8(std::string_view text);

// A stored JSON value for people: code labels in `language`, dates as typed,
// lists joined with ", ", yes/no for booleans. Values that no longer fit the
// pack (an older version, a removed overlay) are shown raw, never dropped.
std::string ValueForPeople(const SchemaPack& pack, const FieldDef& field, std::string_view json,
                           std::string_view language);

// A stored JSON value as one spreadsheet cell: codes as codes, lists joined
// with ";", booleans true/false, null as "".
std::string ValueForCell(std::string_view json);

// ---- finding records -----------------------------------------------------------------------

// The record whose id starts with `prefix` (at least 6 hex characters, or the
// whole id). kNotFound when none, kInvalidArgument when several match or the
// prefix is not hex.
Result<RecordId> FindByPrefix(const std::vector<Record>& records, std::string_view prefix);

// `text` lower-cased with Spanish accents folded ("José" -> "jose"), for
// searches and matching typed names against labels.
std::string FoldForSearch(std::string_view text);

// Whether the record's id starts with `text` or one of its values contains
// it (FoldForSearch on both sides), codes matched on their labels too.
bool Matches(const SchemaPack& pack, const CollectionDef& collection, const Record& record,
             std::string_view text, std::string_view language);

// ---- exports -------------------------------------------------------------------------------

// The columns exported for a collection: "id", then every field of the pack
// in order, identifying ones only when `include_identifying`.
std::vector<const FieldDef*> ExportFields(const CollectionDef& collection,
                                          bool include_identifying);

// A CSV table (header of HTCDS field names) of `records`.
std::string ExportCsv(const CollectionDef& collection, const std::vector<Record>& records,
                      bool include_identifying);

// One JSON document: {"pack": {...name, version, overlay_version}, "exported_at": ...,
// "collections": {NAME: [{"id": ..., FIELD: value, ...}, ...]}}.
struct CollectionRecords {
  const CollectionDef* collection = nullptr;
  std::vector<Record> records;
};
std::string ExportJson(const SchemaPack& pack, const std::vector<CollectionRecords>& data,
                       bool include_identifying, std::string_view exported_at);

// The CTDC global dataset (Counter Trafficking Data Collaborative, codebook
// v6+) columns derived from persons, their cases and events: one row per
// person with a trafficking status of actual or possible victim.
struct CaseData {
  std::vector<Record> persons, cases, events;
};
std::vector<std::string> CtdcColumns();
std::vector<std::vector<std::string>> CtdcRows(const SchemaPack& pack, const CaseData& data);
// k-anonymity of the CTDC rows' quasi-identifiers: yearOfRegistration,
// gender, ageBroad, majorityStatus, majorityStatusAtExploit (both follow
// from the age), citizenship and CountryOfExploitation. While a row shares
// its quasi-identifiers with fewer than k-1 others, they are generalised,
// in every such row at once, one step at a time: citizenship, then the
// country of exploitation, then the age band (keeping minor/adult), then
// the minor/adult status, then gender, then the year, each to "" (CTDC's
// "not recorded"); rows still in a group under k are withheld (removed).
// Afterwards every group of equal quasi-identifiers has at least k rows.
struct CtdcProtection {
  size_t unsafe = 0;       // rows in groups under k before
  size_t generalised = 0;  // values set to ""
  size_t withheld = 0;     // rows removed
};
CtdcProtection ProtectCtdcRows(std::vector<std::vector<std::string>>& rows, uint32_t k);

// CTDC's age bands: 0--8, 9--17, 18--20, 21--23, 24--26, 27--29, 30--38,
// 39--47, 48+ ("" when unknown).
std::string CtdcAgeBroad(std::optional<int64_t> age);

// ---- report rows ---------------------------------------------------------------------------

// The report dimensions: federal_entity, exploitation, gender, age_band,
// citizenship, month, event_type.
std::vector<std::string> ReportDimensions();

// The category of a person with more than one value of a multi-valued
// field; labelled "More than one" ("Más de uno").
inline constexpr const char* kSeveralCategory = "Several";

struct ReportQuery {
  std::vector<std::string> dims;  // 1..3 of ReportDimensions()
  std::string from, to;           // YYYY-MM-DD, inclusive; empty = open
  std::string language = "en";
};
// Category codes and labels of a dimension, in the pack's order, with
// "Unknown" last.
struct DimensionCategories {
  std::string name;
  std::vector<std::string> codes, labels;
};
struct ReportRows {
  std::vector<DimensionCategories> dims;
  std::vector<std::vector<std::string>> rows;  // one code per dimension
  std::string unit;                            // "persons" or "events"
};
// One row per person (or per event when an event dimension is asked: its
// place, type or month). A person with several values of a multi-valued
// field (citizenship, exploitation) is one row with the category
// kSeveralCategory ("more than one"), so every total counts people, never
// mentions. Only persons whose status is actual or possible
// victim count. kInvalidArgument for an unknown dimension or a bad date.
Result<ReportRows> BuildReportRows(const SchemaPack& pack, const CaseData& data,
                                   const ReportQuery& query);

}  // namespace enlace::casework

#endif  // ENLACE_CASEWORK_H_
