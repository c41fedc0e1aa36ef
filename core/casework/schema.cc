#include "enlace/schema.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "enlace/i18n.h"
#include "enlace/write.h"

namespace enlace {

namespace internal {
// The bytes of core/schema/enlace-htcds.json (generated at build time by
// core/schema_embed.cmake).
extern const unsigned char kSchemaPackJson[];
extern const std::size_t kSchemaPackJsonSize;
}  // namespace internal

using Json = nlohmann::json;

namespace {

constexpr size_t kDefaultStringLength = 200;
constexpr size_t kDefaultTextLength = 10000;
constexpr size_t kMaxLabelLength = 500;
constexpr size_t kMaxCodeLength = 64;
// Allowed values listed in full in an error message up to this many.
constexpr size_t kMaxListedCodes = 40;

struct TypeName {
  FieldType type;
  const char* name;
};
constexpr TypeName kTypeNames[] = {
    {FieldType::kString, "string"},   {FieldType::kText, "text"},
    {FieldType::kInteger, "integer"}, {FieldType::kNumber, "number"},
    {FieldType::kBoolean, "boolean"}, {FieldType::kDate, "date"},
    {FieldType::kCode, "code"},       {FieldType::kCodes, "codes"},
    {FieldType::kStrings, "strings"}, {FieldType::kRef, "ref"},
};

std::optional<FieldType> FieldTypeFromName(std::string_view name) {
  for (const auto& t : kTypeNames) {
    if (name == t.name) return t.type;
  }
  return std::nullopt;
}

bool IsCodeType(FieldType t) { return t == FieldType::kCode || t == FieldType::kCodes; }

// Characters (UTF-8 code points) in `s`; the JSON parser has checked the encoding.
size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// "YYYY-MM-DD" naming a real day of the Gregorian calendar (years 0001..9999).
bool IsCalendarDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int parts[3] = {0, 0, 0};
  const size_t starts[3] = {0, 5, 8};
  const size_t lengths[3] = {4, 2, 2};
  for (int p = 0; p < 3; ++p) {
    for (size_t i = starts[p]; i < starts[p] + lengths[p]; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      parts[p] = parts[p] * 10 + (s[i] - '0');
    }
  }
  const int year = parts[0], month = parts[1], day = parts[2];
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int max_day = month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
  return day <= max_day;
}

bool IsRecordIdHex(std::string_view s) {
  if (s.size() != 32) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// How a rejected value appears in a message. Messages must not carry record
// contents (enlace/status.h), so free text is described, not quoted. Shown
// as given: numbers, booleans, and short texts made only of digits and
// "-/.:+ " (dates and numbers typed in the wrong form); for code fields also
// short code-like texts (letters, digits, "_-/.:+ "), so that the message can
// name the code that was refused.
std::string Shown(const Json& v, bool code_field = false) {
  if (v.is_number() || v.is_boolean() || v.is_null()) return v.dump();
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty()) return "an empty text";
  const bool shown = s.size() <= 40 && std::all_of(s.begin(), s.end(), [&](char c) {
                       const bool letter =
                           (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
                       return (code_field && letter) || (c >= '0' && c <= '9') || c == '-' ||
                              c == '/' || c == '.' || c == ':' || c == '+' || c == ' ';
                     });
  if (shown) return "\"" + s + "\"";
  return "a text of " + std::to_string(Utf8Length(s)) + " characters";
}

std::string Where(const FieldDef& f) { return f.collection + "." + f.name; }

Status FieldError(const FieldDef& f, const std::string& what) {
  return Status::InvalidArgument(Where(f) + ": " + what);
}

std::string AllowedCodes(const CodeList& list) {
  std::string out;
  const size_t n = std::min(list.values.size(), kMaxListedCodes);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += list.values[i].code;
  }
  if (list.values.size() > n) {
    out +=
        ", ... (" + std::to_string(list.values.size()) + " codes in code list " + list.name + ")";
  }
  return out;
}

// A code that a wrong value probably meant: same code in another case, or a
// value whose English label is the given text.
const CodeValue* Suggest(const CodeList& list, std::string_view given) {
  const std::string g = Lower(given);
  for (const auto& v : list.values) {
    if (Lower(v.code) == g || Lower(v.label) == g) return &v;
  }
  return nullptr;
}

Status CheckCode(const FieldDef& f, const CodeList& list, const Json& v) {
  if (!v.is_string()) {
    return FieldError(f, "expected a code of " + list.name + " (a text), got " + Shown(v, true));
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (list.Find(s) != nullptr) return Status::Ok();
  std::string msg = Shown(v, true) + " is not one of " + AllowedCodes(list);
  if (const CodeValue* hint = Suggest(list, s)) msg += " (did you mean " + hint->code + "?)";
  return FieldError(f, msg);
}

// "0..120", "at least 0" or "at most 10".
std::string RangeText(const FieldDef& f) {
  if (f.min && f.max) return std::to_string(*f.min) + ".." + std::to_string(*f.max);
  if (f.min) return "at least " + std::to_string(*f.min);
  return "at most " + std::to_string(f.max.value_or(0));
}

// Checks one non-null value against its field. `pack` resolves code lists.
Status CheckValue(const SchemaPack& pack, const FieldDef& f, const Json& v) {
  switch (f.type) {
    case FieldType::kString:
    case FieldType::kText: {
      if (!v.is_string()) return FieldError(f, "expected a text, got " + Shown(v));
      const size_t n = Utf8Length(v.get_ref<const std::string&>());
      if (n > f.max_length) {
        return FieldError(f, "is " + std::to_string(n) + " characters long; at most " +
                                 std::to_string(f.max_length) + " are allowed");
      }
      return Status::Ok();
    }
    case FieldType::kInteger: {
      if (!v.is_number_integer()) return FieldError(f, "expected a whole number, got " + Shown(v));
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return FieldError(f, v.dump() + " is too large");
      }
      const int64_t n = v.get<int64_t>();
      if ((f.min && n < *f.min) || (f.max && n > *f.max)) {
        return FieldError(f, std::to_string(n) + " is out of range " + RangeText(f));
      }
      return Status::Ok();
    }
    case FieldType::kNumber: {
      if (!v.is_number()) return FieldError(f, "expected a number, got " + Shown(v));
      const double d = v.get<double>();
      if ((f.min && d < static_cast<double>(*f.min)) ||
          (f.max && d > static_cast<double>(*f.max))) {
        return FieldError(f, v.dump() + " is out of range " + RangeText(f));
      }
      return Status::Ok();
    }
    case FieldType::kBoolean:
      if (!v.is_boolean()) return FieldError(f, "expected true or false, got " + Shown(v));
      return Status::Ok();
    case FieldType::kDate:
      if (!v.is_string() || !IsCalendarDate(v.get_ref<const std::string&>())) {
        return FieldError(f, "expected a calendar date YYYY-MM-DD, got " + Shown(v));
      }
      return Status::Ok();
    case FieldType::kCode:
    case FieldType::kCodes: {
      const CodeList* list = pack.FindCodeList(f.codelist);
      if (list == nullptr) return FieldError(f, "code list " + f.codelist + " is missing");
      if (f.type == FieldType::kCode) return CheckCode(f, *list, v);
      if (!v.is_array()) {
        return FieldError(f,
                          "expected a list of codes of " + list->name + ", got " + Shown(v, true));
      }
      std::set<std::string> seen;
      for (const auto& e : v) {
        ENLACE_RETURN_IF_ERROR(CheckCode(f, *list, e));
        if (!seen.insert(e.get<std::string>()).second) {
          return FieldError(f, Shown(e, true) + " appears more than once");
        }
      }
      return Status::Ok();
    }
    case FieldType::kStrings: {
      if (!v.is_array()) return FieldError(f, "expected a list of texts, got " + Shown(v));
      for (const auto& e : v) {
        if (!e.is_string())
          return FieldError(f, "expected a list of texts, one item is " + Shown(e));
        const size_t n = Utf8Length(e.get_ref<const std::string&>());
        if (n > f.max_length) {
          return FieldError(f, "an item is " + std::to_string(n) + " characters long; at most " +
                                   std::to_string(f.max_length) + " are allowed");
        }
      }
      return Status::Ok();
    }
    case FieldType::kRef:
      if (!v.is_string() || !IsRecordIdHex(v.get_ref<const std::string&>())) {
        return FieldError(f, "expected the id of a record of " + f.ref_collection +
                                 " (32 lower-case hex characters), got " + Shown(v));
      }
      return Status::Ok();
  }
  return FieldError(f, "unknown field type");
}

bool IsEmptyValue(const Json& v) {
  return (v.is_string() && v.get_ref<const std::string&>().empty()) || (v.is_array() && v.empty());
}

// "es_MX.UTF-8" -> "es"; "" -> "en".
std::string NormalizeLanguage(std::string_view language) {
  std::string out;
  for (char c : language) {
    if (c == '_' || c == '-' || c == '.' || c == '@' || c == ':') break;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out.empty() ? "en" : out;
}

std::string Localized(const std::map<std::string, std::string>& own, const std::string& english,
                      std::string_view context, std::string_view language) {
  const std::string lang = NormalizeLanguage(language);
  auto it = own.find(lang);
  if (it != own.end() && !it->second.empty()) return it->second;
  if (lang == "en" || english.empty()) return english;
  return i18n::TranslateSchemaLabel(context, english, lang);
}

}  // namespace

const char* FieldTypeName(FieldType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.name;
  }
  return "?";
}

namespace {
// The element of `items` whose `key` member equals `wanted`, or null.
template <typename T>
const T* FindBy(const std::vector<T>& items, std::string T::*key, std::string_view wanted) {
  for (const auto& item : items) {
    if (item.*key == wanted) return &item;
  }
  return nullptr;
}
}  // namespace

const CodeValue* CodeList::Find(std::string_view code) const {
  return FindBy(values, &CodeValue::code, code);
}

const FieldDef* CollectionDef::Find(std::string_view field) const {
  return FindBy(fields, &FieldDef::name, field);
}

const CollectionDef* SchemaPack::FindCollection(std::string_view name) const {
  return FindBy(collections_, &CollectionDef::name, name);
}

const CodeList* SchemaPack::FindCodeList(std::string_view name) const {
  return FindBy(codelists_, &CodeList::name, name);
}

// ---- parsing ----------------------------------------------------------------------------

namespace internal {

// Builds packs and overlays from JSON. Every error names the entry it is about.
class SchemaParser {
 public:
  static Result<SchemaPack> ParsePack(std::string_view text);
  static Result<SchemaPack> ApplyOverlay(const SchemaPack& base, std::string_view text);

 private:
  using Keys = std::set<std::string, std::less<>>;

  static Result<Json> ParseObject(std::string_view text, const char* what);
  static Status CheckKeys(const Json& obj, const Keys& allowed, const std::string& where);
  static Result<std::string> GetString(const Json& obj, const char* key, const std::string& where,
                                       bool required, size_t max_length = kMaxLabelLength);
  static Result<bool> GetBool(const Json& obj, const char* key, const std::string& where);
  static Result<std::map<std::string, std::string>> GetLabels(const Json& obj,
                                                              const std::string& where);
  static Result<CodeValue> ParseCodeValue(const Json& j, const std::string& where,
                                          bool from_overlay);
  static Result<CodeList> ParseCodeList(const std::string& name, const Json& j, bool from_overlay);
  static Result<FieldDef> ParseField(const Json& j, const std::string& collection,
                                     const std::string& where, bool from_overlay);
  static Result<CollectionDef> ParseCollection(const Json& j, const std::string& where,
                                               bool from_overlay);
  // Cross-references: code lists, referenced collections, title fields,
  // defaults, unique names.
  static Status CheckPack(const SchemaPack& pack, const std::string& what);

  static Status MergeCodeLists(SchemaPack& pack, const Json& lists);
  static Status MergeCollections(SchemaPack& pack, const Json& collections);
  static Status MergeBaseField(FieldDef& base, const Json& j, const std::string& where);
};

Result<Json> SchemaParser::ParseObject(std::string_view text, const char* what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return j;
}

Status SchemaParser::CheckKeys(const Json& obj, const Keys& allowed, const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    if (!key.empty() && key[0] == '$') continue;  // "$comment" and the like
    if (key == "remove" || key == "removed" || key == "deleted") {
      return Status::InvalidArgument(where + ": nothing can be removed from the pack");
    }
    if (!allowed.contains(key)) {
      return Status::InvalidArgument(where + ": unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

Result<std::string> SchemaParser::GetString(const Json& obj, const char* key,
                                            const std::string& where, bool required,
                                            size_t max_length) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return Status::InvalidArgument(where + ": '" + key + "' is missing");
    return std::string();
  }
  if (!it->is_string()) return Status::InvalidArgument(where + ": '" + key + "' must be a text");
  std::string s = it->get<std::string>();
  if (required && s.empty()) return Status::InvalidArgument(where + ": '" + key + "' is empty");
  if (Utf8Length(s) > max_length) {
    return Status::InvalidArgument(where + ": '" + key + "' is longer than " +
                                   std::to_string(max_length) + " characters");
  }
  return s;
}

Result<bool> SchemaParser::GetBool(const Json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  if (!it->is_boolean()) {
    return Status::InvalidArgument(where + ": '" + key + "' must be true or false");
  }
  return it->get<bool>();
}

Result<std::map<std::string, std::string>> SchemaParser::GetLabels(const Json& obj,
                                                                   const std::string& where) {
  std::map<std::string, std::string> out;
  auto it = obj.find("labels");
  if (it == obj.end()) return out;
  if (!it->is_object()) {
    return Status::InvalidArgument(where + ": 'labels' must map languages to texts");
  }
  for (const auto& [lang, label] : it->items()) {
    const bool lang_ok =
        lang.size() >= 2 && lang.size() <= 8 && std::all_of(lang.begin(), lang.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || c == '_' || c == '-';
        });
    if (!lang_ok) {
      return Status::InvalidArgument(where + ": '" + lang + "' is not a language code such as es");
    }
    if (!label.is_string() || label.get_ref<const std::string&>().empty() ||
        Utf8Length(label.get_ref<const std::string&>()) > kMaxLabelLength) {
      return Status::InvalidArgument(where + ": the '" + lang + "' label must be a non-empty text");
    }
    out[lang] = label.get<std::string>();
  }
  return out;
}

Result<CodeValue> SchemaParser::ParseCodeValue(const Json& j, const std::string& where,
                                               bool from_overlay) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": a code value must be an object");
  CodeValue v;
  v.from_overlay = from_overlay;
  ENLACE_ASSIGN_OR_RETURN(v.code, GetString(j, "code", where, true, kMaxCodeLength));
  const bool printable = std::all_of(v.code.begin(), v.code.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != '"' && c != ',' && c != ';' && c != '|';
  });
  if (!printable) {
    return Status::InvalidArgument(where + ": code '" + v.code +
                                   "' may not hold spaces, quotes, ',', ';' or '|'");
  }
  const std::string here = where + " (" + v.code + ")";
  ENLACE_ASSIGN_OR_RETURN(v.label, GetString(j, "label", here, true));
  ENLACE_ASSIGN_OR_RETURN(v.labels, GetLabels(j, here));
  for (const auto& [key, value] : j.items()) {
    if (key == "code" || key == "label" || key == "labels" || (!key.empty() && key[0] == '$')) {
      continue;
    }
    if (key == "remove" || key == "removed" || key == "deleted") {
      return Status::InvalidArgument(here + ": nothing can be removed from the pack");
    }
    if (!value.is_string()) {
      return Status::InvalidArgument(here + ": attribute '" + key + "' must be a text");
    }
    v.attributes[key] = value.get<std::string>();
  }
  return v;
}

Result<CodeList> SchemaParser::ParseCodeList(const std::string& name, const Json& j,
                                             bool from_overlay) {
  const std::string where = "code list " + name;
  if (Status s = ValidateName(name, "code list"); !s.ok()) {
    return Status::InvalidArgument(where + ": " + s.message());
  }
  if (!j.is_array() || j.empty()) {
    return Status::InvalidArgument(where + ": must be a non-empty array of code values");
  }
  CodeList list;
  list.name = name;
  for (size_t i = 0; i < j.size(); ++i) {
    ENLACE_ASSIGN_OR_RETURN(
        CodeValue v, ParseCodeValue(j[i], where + "[" + std::to_string(i) + "]", from_overlay));
    if (list.Find(v.code) != nullptr) {
      return Status::InvalidArgument(where + ": code '" + v.code + "' appears twice");
    }
    list.values.push_back(std::move(v));
  }
  return list;
}

Result<FieldDef> SchemaParser::ParseField(const Json& j, const std::string& collection,
                                          const std::string& where, bool from_overlay) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": a field must be an object");
  FieldDef f;
  f.collection = collection;
  f.from_overlay = from_overlay;
  ENLACE_ASSIGN_OR_RETURN(f.name, GetString(j, "name", where, true, 64));
  const std::string here = "field " + collection + "." + f.name;
  if (Status s = ValidateName(f.name, "field"); !s.ok()) {
    return Status::InvalidArgument(here + ": " + s.message());
  }
  ENLACE_RETURN_IF_ERROR(
      CheckKeys(j,
                {"name", "type", "label", "labels", "help", "codelist", "collection", "required",
                 "identifying", "min", "max", "max_length", "default"},
                here));
  ENLACE_ASSIGN_OR_RETURN(std::string type, GetString(j, "type", here, true));
  auto t = FieldTypeFromName(type);
  if (!t) {
    return Status::InvalidArgument(here + ": unknown type '" + type +
                                   "' (string, text, integer, number, boolean, date, code, "
                                   "codes, strings, ref)");
  }
  f.type = *t;
  ENLACE_ASSIGN_OR_RETURN(f.label, GetString(j, "label", here, true));
  ENLACE_ASSIGN_OR_RETURN(f.labels, GetLabels(j, here));
  ENLACE_ASSIGN_OR_RETURN(f.help, GetString(j, "help", here, false, 2000));
  ENLACE_ASSIGN_OR_RETURN(f.codelist, GetString(j, "codelist", here, false, 64));
  ENLACE_ASSIGN_OR_RETURN(f.ref_collection, GetString(j, "collection", here, false, 64));
  ENLACE_ASSIGN_OR_RETURN(f.required, GetBool(j, "required", here));
  ENLACE_ASSIGN_OR_RETURN(f.identifying, GetBool(j, "identifying", here));

  if (IsCodeType(f.type) != !f.codelist.empty()) {
    return Status::InvalidArgument(here + (IsCodeType(f.type)
                                               ? ": a code field needs a 'codelist'"
                                               : ": only code and codes fields have a 'codelist'"));
  }
  if ((f.type == FieldType::kRef) != !f.ref_collection.empty()) {
    return Status::InvalidArgument(here + (f.type == FieldType::kRef
                                               ? ": a ref field needs a 'collection'"
                                               : ": only ref fields have a 'collection'"));
  }
  const bool numeric = f.type == FieldType::kInteger || f.type == FieldType::kNumber;
  for (const char* key : {"min", "max"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!numeric) return Status::InvalidArgument(here + ": only numbers have '" + key + "'");
    if (!it->is_number_integer() ||
        (it->is_number_unsigned() &&
         it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Status::InvalidArgument(here + ": '" + key + "' must be a whole number");
    }
    (std::string_view(key) == "min" ? f.min : f.max) = it->get<int64_t>();
  }
  if (f.min && f.max && *f.min > *f.max) {
    return Status::InvalidArgument(here + ": 'min' is greater than 'max'");
  }
  const bool has_length =
      f.type == FieldType::kString || f.type == FieldType::kText || f.type == FieldType::kStrings;
  if (has_length)
    f.max_length = f.type == FieldType::kText ? kDefaultTextLength : kDefaultStringLength;
  if (auto it = j.find("max_length"); it != j.end()) {
    if (!has_length) return Status::InvalidArgument(here + ": only texts have 'max_length'");
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 60000) {
      return Status::InvalidArgument(here + ": 'max_length' must be a whole number in 1..60000");
    }
    f.max_length = static_cast<size_t>(it->get<uint64_t>());
  }
  if (auto it = j.find("default"); it != j.end()) {
    if (it->is_null()) return Status::InvalidArgument(here + ": 'default' may not be null");
    f.default_value = it->dump();  // checked against the field in CheckPack
  }
  return f;
}

Result<CollectionDef> SchemaParser::ParseCollection(const Json& j, const std::string& where,
                                                    bool from_overlay) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": a collection must be an object");
  CollectionDef c;
  c.from_overlay = from_overlay;
  ENLACE_ASSIGN_OR_RETURN(c.name, GetString(j, "name", where, true, 64));
  const std::string here = "collection " + c.name;
  if (Status s = ValidateName(c.name, "collection"); !s.ok()) {
    return Status::InvalidArgument(here + ": " + s.message());
  }
  if (IsReservedCollection(c.name)) {
    return Status::InvalidArgument(here + ": names starting with \"enlace.\" are reserved");
  }
  ENLACE_RETURN_IF_ERROR(CheckKeys(j, {"name", "label", "labels", "title_field", "fields"}, here));
  ENLACE_ASSIGN_OR_RETURN(c.label, GetString(j, "label", here, true));
  ENLACE_ASSIGN_OR_RETURN(c.labels, GetLabels(j, here));
  ENLACE_ASSIGN_OR_RETURN(c.title_field, GetString(j, "title_field", here, false, 64));
  auto fields = j.find("fields");
  if (fields == j.end() || !fields->is_array() || fields->empty()) {
    return Status::InvalidArgument(here + ": 'fields' must be a non-empty array");
  }
  for (size_t i = 0; i < fields->size(); ++i) {
    ENLACE_ASSIGN_OR_RETURN(
        FieldDef f, ParseField((*fields)[i], c.name, here + ", fields[" + std::to_string(i) + "]",
                               from_overlay));
    if (c.Find(f.name) != nullptr) {
      return Status::InvalidArgument("field " + c.name + "." + f.name + " is defined twice");
    }
    c.fields.push_back(std::move(f));
  }
  return c;
}

Status SchemaParser::CheckPack(const SchemaPack& pack, const std::string& what) {
  std::set<std::string> names;
  for (const auto& c : pack.collections_) {
    if (!names.insert(c.name).second) {
      return Status::InvalidArgument(what + ": collection " + c.name + " is defined twice");
    }
    if (!c.title_field.empty() && c.Find(c.title_field) == nullptr) {
      return Status::InvalidArgument(what + ": collection " + c.name + ": title_field '" +
                                     c.title_field + "' is not one of its fields");
    }
    for (const auto& f : c.fields) {
      const std::string here = what + ": field " + c.name + "." + f.name;
      if (IsCodeType(f.type) && pack.FindCodeList(f.codelist) == nullptr) {
        return Status::InvalidArgument(here + ": unknown code list '" + f.codelist + "'");
      }
      if (f.type == FieldType::kRef && pack.FindCollection(f.ref_collection) == nullptr) {
        return Status::InvalidArgument(here + ": unknown collection '" + f.ref_collection + "'");
      }
      if (!f.default_value.empty()) {
        const Json v = Json::parse(f.default_value);
        if (Status s = CheckValue(pack, f, v); !s.ok()) {
          return Status::InvalidArgument(here + ": bad default: " + s.message());
        }
      }
    }
  }
  return Status::Ok();
}

Result<SchemaPack> SchemaParser::ParsePack(std::string_view text) {
  ENLACE_ASSIGN_OR_RETURN(Json j, ParseObject(text, "the schema pack"));
  SchemaPack pack;
  ENLACE_RETURN_IF_ERROR(
      CheckKeys(j, {"pack", "version", "standard", "codelists", "collections"}, "the schema pack"));
  ENLACE_ASSIGN_OR_RETURN(pack.name_, GetString(j, "pack", "the schema pack", true, 64));
  if (Status s = ValidateName(pack.name_, "pack"); !s.ok()) {
    return Status::InvalidArgument("the schema pack: " + s.message());
  }
  const std::string what = "pack " + pack.name_;
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() || version->get<uint64_t>() == 0 ||
      version->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument(what + ": 'version' must be a whole number >= 1");
  }
  pack.version_ = static_cast<uint32_t>(version->get<uint64_t>());
  ENLACE_ASSIGN_OR_RETURN(pack.standard_, GetString(j, "standard", what, false));

  auto lists = j.find("codelists");
  if (lists != j.end()) {
    if (!lists->is_object()) {
      return Status::InvalidArgument(what + ": 'codelists' must map names to arrays");
    }
    for (const auto& [name, values] : lists->items()) {
      ENLACE_ASSIGN_OR_RETURN(CodeList list, ParseCodeList(name, values, false));
      pack.codelists_.push_back(std::move(list));
    }
  }
  auto collections = j.find("collections");
  if (collections == j.end() || !collections->is_array() || collections->empty()) {
    return Status::InvalidArgument(what + ": 'collections' must be a non-empty array");
  }
  for (size_t i = 0; i < collections->size(); ++i) {
    ENLACE_ASSIGN_OR_RETURN(
        CollectionDef c,
        ParseCollection((*collections)[i], "collections[" + std::to_string(i) + "]", false));
    pack.collections_.push_back(std::move(c));
  }
  ENLACE_RETURN_IF_ERROR(CheckPack(pack, what));
  return pack;
}

Status SchemaParser::MergeCodeLists(SchemaPack& pack, const Json& lists) {
  if (!lists.is_object()) {
    return Status::InvalidArgument("overlay: 'codelists' must map names to arrays");
  }
  for (const auto& [name, values] : lists.items()) {
    const auto& list_name = name;  // clang 14 cannot capture a structured binding
    auto it = std::find_if(pack.codelists_.begin(), pack.codelists_.end(),
                           [&](const CodeList& l) { return l.name == list_name; });
    if (it == pack.codelists_.end()) {
      auto list = ParseCodeList(name, values, true);
      if (!list.ok()) return list.status().WithContext("overlay");
      pack.codelists_.push_back(std::move(list).value());
      continue;
    }
    const std::string where = "overlay: code list " + name;
    if (!values.is_array()) {
      return Status::InvalidArgument(where + ": must be an array of code values");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < values.size(); ++i) {
      const Json& v = values[i];
      const std::string here = where + "[" + std::to_string(i) + "]";
      if (!v.is_object() || !v.contains("code") || !v["code"].is_string()) {
        return Status::InvalidArgument(here + ": a code value needs a 'code'");
      }
      const std::string code = v["code"].get<std::string>();
      if (!seen.insert(code).second) {
        return Status::InvalidArgument(where + ": code '" + code + "' appears twice");
      }
      auto existing = std::find_if(it->values.begin(), it->values.end(),
                                   [&](const CodeValue& c) { return c.code == code; });
      if (existing == it->values.end()) {
        ENLACE_ASSIGN_OR_RETURN(CodeValue added, ParseCodeValue(v, here, true));
        it->values.push_back(std::move(added));
        continue;
      }
      // An existing code: only labels in other languages may be added.
      const std::string on = where + ", code " + code;
      ENLACE_RETURN_IF_ERROR(CheckKeys(v, {"code", "label", "labels"}, on));
      if (v.contains("label") && v["label"] != Json(existing->label)) {
        return Status::InvalidArgument(on +
                                       ": an overlay cannot change the English label of a "
                                       "base code; add \"labels\" instead");
      }
      ENLACE_ASSIGN_OR_RETURN(auto labels, GetLabels(v, on));
      for (auto& [lang, label] : labels) existing->labels[lang] = std::move(label);
    }
  }
  return Status::Ok();
}

Status SchemaParser::MergeBaseField(FieldDef& base, const Json& j, const std::string& where) {
  ENLACE_RETURN_IF_ERROR(
      CheckKeys(j,
                {"name", "type", "label", "labels", "help", "codelist", "collection", "required",
                 "identifying", "min", "max", "max_length", "default"},
                where));
  auto differs = [&](const char* key, const Json& current) {
    auto it = j.find(key);
    return it != j.end() && *it != current;
  };
  auto refuse = [&](const std::string& what) {
    return Status::InvalidArgument(where + ": an overlay cannot change the " + what +
                                   " of a base field");
  };
  if (differs("type", FieldTypeName(base.type))) return refuse("type");
  if (differs("codelist", base.codelist)) return refuse("code list");
  if (differs("collection", base.ref_collection)) return refuse("referenced collection");
  if (differs("required", base.required)) return refuse("'required' flag");
  if (differs("identifying", base.identifying)) return refuse("'identifying' flag");
  if (differs("min", base.min ? Json(*base.min) : Json())) return refuse("minimum");
  if (differs("max", base.max ? Json(*base.max) : Json())) return refuse("maximum");
  if (differs("max_length", base.max_length)) return refuse("maximum length");
  if (differs("default", base.default_value.empty() ? Json() : Json::parse(base.default_value))) {
    return refuse("default value");
  }
  if (differs("label", base.label)) {
    return Status::InvalidArgument(where +
                                   ": an overlay cannot change the English label of a "
                                   "base field; add \"labels\" instead");
  }
  ENLACE_ASSIGN_OR_RETURN(auto labels, GetLabels(j, where));
  for (auto& [lang, label] : labels) base.labels[lang] = std::move(label);
  ENLACE_ASSIGN_OR_RETURN(std::string help, GetString(j, "help", where, false, 2000));
  if (!help.empty()) base.help = std::move(help);
  return Status::Ok();
}

Status SchemaParser::MergeCollections(SchemaPack& pack, const Json& collections) {
  if (!collections.is_array()) {
    return Status::InvalidArgument("overlay: 'collections' must be an array");
  }
  for (size_t i = 0; i < collections.size(); ++i) {
    const Json& cj = collections[i];
    const std::string where = "overlay: collections[" + std::to_string(i) + "]";
    if (!cj.is_object() || !cj.contains("name") || !cj["name"].is_string()) {
      return Status::InvalidArgument(where + ": a collection needs a 'name'");
    }
    const std::string name = cj["name"].get<std::string>();
    auto it = std::find_if(pack.collections_.begin(), pack.collections_.end(),
                           [&](const CollectionDef& c) { return c.name == name; });
    if (it == pack.collections_.end()) {
      auto added = ParseCollection(cj, where, true);
      if (!added.ok()) return added.status().WithContext("overlay");
      pack.collections_.push_back(std::move(added).value());
      continue;
    }
    const std::string on = "overlay: collection " + name;
    ENLACE_RETURN_IF_ERROR(CheckKeys(cj, {"name", "label", "labels", "title_field", "fields"}, on));
    if (cj.contains("label") && cj["label"] != Json(it->label)) {
      return Status::InvalidArgument(on +
                                     ": an overlay cannot change the English label of a "
                                     "base collection; add \"labels\" instead");
    }
    if (cj.contains("title_field") && cj["title_field"] != Json(it->title_field)) {
      return Status::InvalidArgument(on + ": an overlay cannot change the title field");
    }
    ENLACE_ASSIGN_OR_RETURN(auto labels, GetLabels(cj, on));
    for (auto& [lang, label] : labels) it->labels[lang] = std::move(label);
    auto fields = cj.find("fields");
    if (fields == cj.end()) continue;
    if (!fields->is_array()) return Status::InvalidArgument(on + ": 'fields' must be an array");
    std::set<std::string> seen;
    for (size_t k = 0; k < fields->size(); ++k) {
      const Json& fj = (*fields)[k];
      const std::string fwhere = on + ", fields[" + std::to_string(k) + "]";
      if (!fj.is_object() || !fj.contains("name") || !fj["name"].is_string()) {
        return Status::InvalidArgument(fwhere + ": a field needs a 'name'");
      }
      const std::string fname = fj["name"].get<std::string>();
      if (!seen.insert(fname).second) {
        return Status::InvalidArgument(on + ": field " + fname + " appears twice");
      }
      auto base = std::find_if(it->fields.begin(), it->fields.end(),
                               [&](const FieldDef& f) { return f.name == fname; });
      if (base != it->fields.end()) {
        ENLACE_RETURN_IF_ERROR(MergeBaseField(*base, fj, "overlay: field " + name + "." + fname));
        continue;
      }
      auto added = ParseField(fj, name, fwhere, true);
      if (!added.ok()) return added.status().WithContext("overlay");
      it->fields.push_back(std::move(added).value());
    }
  }
  return Status::Ok();
}

Result<SchemaPack> SchemaParser::ApplyOverlay(const SchemaPack& base, std::string_view text) {
  ENLACE_ASSIGN_OR_RETURN(Json j, ParseObject(text, "the overlay"));
  ENLACE_RETURN_IF_ERROR(
      CheckKeys(j, {"base", "version", "name", "codelists", "collections"}, "overlay"));
  ENLACE_ASSIGN_OR_RETURN(std::string base_name, GetString(j, "base", "overlay", true, 64));
  if (base_name != base.name_) {
    return Status::InvalidArgument("overlay: it extends pack '" + base_name + "', not '" +
                                   base.name_ + "'");
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() || version->get<uint64_t>() == 0 ||
      version->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument("overlay: 'version' must be a whole number >= 1");
  }
  SchemaPack pack = base;
  pack.overlay_version_ = static_cast<uint32_t>(version->get<uint64_t>());
  ENLACE_ASSIGN_OR_RETURN(pack.overlay_name_, GetString(j, "name", "overlay", false, 100));
  if (auto lists = j.find("codelists"); lists != j.end()) {
    ENLACE_RETURN_IF_ERROR(MergeCodeLists(pack, *lists));
  }
  if (auto collections = j.find("collections"); collections != j.end()) {
    ENLACE_RETURN_IF_ERROR(MergeCollections(pack, *collections));
  }
  ENLACE_RETURN_IF_ERROR(CheckPack(pack, "overlay"));
  return pack;
}

}  // namespace internal

Result<SchemaPack> SchemaPack::Parse(std::string_view json) {
  try {
    return internal::SchemaParser::ParsePack(json);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("the schema pack could not be read: ") + e.what());
  }
}

Result<SchemaPack> SchemaPack::WithOverlay(std::string_view overlay_json) const {
  try {
    return internal::SchemaParser::ApplyOverlay(*this, overlay_json);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("the overlay could not be read: ") + e.what());
  }
}

const SchemaPack& SchemaPack::Builtin() {
  static const SchemaPack pack = [] {
    auto parsed = Parse(std::string_view(reinterpret_cast<const char*>(internal::kSchemaPackJson),
                                         internal::kSchemaPackJsonSize));
    if (!parsed.ok()) {
      // The pack is compiled in and checked by the tests: this is a build defect.
      std::fprintf(stderr, "enlace: the built-in schema pack is invalid: %s\n",
                   parsed.status().ToString().c_str());
      std::abort();
    }
    return std::move(parsed).value();
  }();
  return pack;
}

// ---- validation ---------------------------------------------------------------------------

Status SchemaPack::Validate(std::string_view collection, const Fields& values,
                            bool creating) const {
  const CollectionDef* c = FindCollection(collection);
  if (c == nullptr) {
    std::string known;
    for (const auto& k : collections_) known += (known.empty() ? "" : ", ") + k.name;
    return Status::InvalidArgument("unknown collection '" + std::string(collection) +
                                   "'; the schema has " + known);
  }
  for (const auto& [name, text] : values) {
    const FieldDef* f = c->Find(name);
    if (f == nullptr) {
      std::string known;
      for (const auto& k : c->fields) known += (known.empty() ? "" : ", ") + k.name;
      return Status::InvalidArgument(c->name + "." + name + ": unknown field; " + c->name +
                                     " has " + known);
    }
    const Json v = Json::parse(text.begin(), text.end(), nullptr, false);
    if (v.is_discarded()) return FieldError(*f, "not valid JSON");
    if (v.is_null()) {
      if (f->required) return FieldError(*f, "is required and cannot be cleared");
      continue;
    }
    if (f->required && IsEmptyValue(v)) return FieldError(*f, "is required and cannot be empty");
    ENLACE_RETURN_IF_ERROR(CheckValue(*this, *f, v));
  }
  if (creating) {
    std::vector<std::string> missing;
    for (const auto& f : c->fields) {
      if (f.required && values.find(f.name) == values.end()) missing.push_back(f.name);
    }
    if (!missing.empty()) {
      std::string msg = c->name + "." + missing[0] + ": is required";
      if (missing.size() > 1) {
        msg += " (also missing:";
        for (size_t i = 1; i < missing.size(); ++i) msg += " " + missing[i];
        msg += ")";
      }
      return Status::InvalidArgument(msg);
    }
  }
  return Status::Ok();
}

void SchemaPack::FillDefaults(std::string_view collection, Fields& values) const {
  const CollectionDef* c = FindCollection(collection);
  if (c == nullptr) return;
  for (const auto& f : c->fields) {
    if (!f.default_value.empty() && values.find(f.name) == values.end()) {
      values.emplace(f.name, f.default_value);
    }
  }
}

// ---- labels --------------------------------------------------------------------------------

std::string SchemaPack::CollectionLabel(const CollectionDef& collection,
                                        std::string_view language) const {
  return Localized(collection.labels, collection.label, "collections", language);
}

std::string SchemaPack::FieldLabel(const FieldDef& field, std::string_view language) const {
  return Localized(field.labels, field.label, "field:" + field.collection + "." + field.name,
                   language);
}

std::string SchemaPack::CodeLabel(const CodeList& list, const CodeValue& value,
                                  std::string_view language) const {
  return Localized(value.labels, value.label, "code:" + list.name, language);
}

std::string SchemaPack::FieldHelp(const FieldDef& field, std::string_view language) const {
  return Localized({}, field.help, "help:" + field.collection + "." + field.name, language);
}

}  // namespace enlace
