// The case-data schema pack: collections, typed fields and code lists that
// validate writes before they are created (docs/SCHEMA.md).
//
// The default pack, "enlace-htcds" (core/schema/enlace-htcds.json), follows the
// Human Trafficking Case Data Standard (HTCDS 2.0, IOM) and adds what field
// work in Mexico needs. It is compiled into the library. A team's coordinator
// may extend it with a regional overlay (extra fields, code values, labels)
// that reaches the team's devices through sync (Replica::PublishOverlay); an
// overlay can add but never remove or retype a base field.
//
// Validation applies to writes only: reading never validates, so records
// written under an older pack or a former overlay stay readable.
//
// Thread safety: a SchemaPack is immutable after construction; const methods
// may be called from any thread. Builtin() is thread-safe.
#ifndef ENLACE_SCHEMA_H_
#define ENLACE_SCHEMA_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace {

namespace internal {
class SchemaParser;
}

// field -> JSON text (the same alias as in enlace/replica.h).
using Fields = std::map<std::string, std::string>;

// Where a team's overlay travels: one record with fields "version" and
// "overlay", in the reserved "enlace." namespace (enlace/write.h).
inline constexpr char kOverlayCollection[] = "enlace.overlay";

// Value types and the JSON each accepts (null clears a field):
//   kString   a JSON string of at most max_length characters (default 200)
//   kText     a JSON string of at most max_length characters (default 10000)
//   kInteger  a JSON integer within [min, max] when given
//   kNumber   a JSON number within [min, max] when given
//   kBoolean  true or false
//   kDate     "YYYY-MM-DD", a real calendar date
//   kCode     one code of the field's code list, as a JSON string
//   kCodes    a JSON array of distinct codes of the field's code list
//   kStrings  a JSON array of strings, each at most max_length (default 200)
//   kRef      a record id of `ref_collection`: 32 lower-case hex characters
enum class FieldType {
  kString,
  kText,
  kInteger,
  kNumber,
  kBoolean,
  kDate,
  kCode,
  kCodes,
  kStrings,
  kRef
};

// "string", "text", ..., "ref" (the names used in the JSON).
const char* FieldTypeName(FieldType type);

struct CodeValue {
  std::string code;
  std::string label;                              // English
  std::map<std::string, std::string> labels;      // language -> label, e.g. from an overlay
  std::map<std::string, std::string> attributes;  // other string members, e.g. "alpha3"
  bool from_overlay = false;
};

struct CodeList {
  std::string name;
  std::vector<CodeValue> values;  // in the pack's order
  // The value with `code`, or nullptr.
  const CodeValue* Find(std::string_view code) const;
};

struct FieldDef {
  std::string name;
  FieldType type = FieldType::kString;
  std::string label;  // English
  std::map<std::string, std::string> labels;
  std::string help;                 // English; may be empty
  std::string codelist;             // kCode / kCodes
  std::string ref_collection;       // kRef
  bool required = false;            // must be present when a record is created; never null
  bool identifying = false;         // identifies a person: left out of exports by default
  std::optional<int64_t> min, max;  // kInteger / kNumber
  size_t max_length = 0;            // kString / kText / kStrings (items); 0 for other types
  std::string default_value;        // canonical JSON text, or empty for none
  bool from_overlay = false;
  std::string collection;  // the collection this field belongs to
};

struct CollectionDef {
  std::string name;
  std::string label;  // English
  std::map<std::string, std::string> labels;
  std::string title_field;  // the field that names a record in lists; may be empty
  std::vector<FieldDef> fields;
  bool from_overlay = false;
  // The field named `name`, or nullptr.
  const FieldDef* Find(std::string_view name) const;
};

class SchemaPack {
 public:
  SchemaPack() = default;

  // Parses a pack (the JSON format of docs/SCHEMA.md). kInvalidArgument with
  // a message naming the offending entry, e.g. "collections[2].fields[3]
  // (events.hte_Type): unknown code list 'EventTypes'".
  static Result<SchemaPack> Parse(std::string_view json);

  // The built-in pack (core/schema/enlace-htcds.json), parsed once.
  static const SchemaPack& Builtin();

  std::string_view name() const { return name_; }
  uint32_t version() const { return version_; }
  std::string_view standard() const { return standard_; }
  // The overlay's version, 0 without overlay.
  uint32_t overlay_version() const { return overlay_version_; }
  // The overlay's optional "name", e.g. "Tlaxcala"; empty without overlay.
  std::string_view overlay_team_note() const { return overlay_name_; }

  const std::vector<CollectionDef>& collections() const { return collections_; }
  const std::vector<CodeList>& codelists() const { return codelists_; }
  // nullptr when unknown.
  const CollectionDef* FindCollection(std::string_view name) const;
  const CodeList* FindCodeList(std::string_view name) const;

  // A copy of this pack extended by `overlay_json` (docs/SCHEMA.md, "Regional
  // overlays"). An overlay may add collections, fields, code values and code
  // lists, and labels (also per-language labels of existing items); it may
  // never remove a base collection, field or code, nor change a base field's
  // type, code list, reference, required/identifying flags, limits or
  // default. Meant for a pack without overlay (a team has one overlay at a
  // time, each version a complete document); on a pack that has one, the new
  // overlay is applied on top and the first one's items count as base.
  // kInvalidArgument naming the offending entry.
  Result<SchemaPack> WithOverlay(std::string_view overlay_json) const;

  // Validates the values of one Put: every field known, every value of the
  // right type, range and code list; when `creating`, every required field
  // present (call FillDefaults first). "null" clears a field and is allowed
  // except for required fields. kInvalidArgument, the message naming the
  // collection, the field and, for codes, the allowed values:
  //   cases.cas_Status: "Open" is not one of Active, FollowUp, Closed, ClosedReferred
  Status Validate(std::string_view collection, const Fields& values, bool creating) const;

  // Adds the default value of every field that has one and is missing from
  // `values`. For records being created; unknown collections are left alone.
  void FillDefaults(std::string_view collection, Fields& values) const;

  // Labels in `language` ("en" or "es"): the item's own label for that
  // language (an overlay's), else the schema catalogue's translation
  // (po/schema.es.po), else English.
  std::string CollectionLabel(const CollectionDef& collection, std::string_view language) const;
  std::string FieldLabel(const FieldDef& field, std::string_view language) const;
  std::string CodeLabel(const CodeList& list, const CodeValue& value,
                        std::string_view language) const;
  // The field's help text in `language` (catalogue context "help:<c>.<f>"),
  // empty when the field has none.
  std::string FieldHelp(const FieldDef& field, std::string_view language) const;

 private:
  std::string name_;
  uint32_t version_ = 0;
  std::string standard_;
  uint32_t overlay_version_ = 0;
  std::string overlay_name_;
  std::vector<CodeList> codelists_;
  std::vector<CollectionDef> collections_;

  friend class internal::SchemaParser;
};

}  // namespace enlace

#endif  // ENLACE_SCHEMA_H_
