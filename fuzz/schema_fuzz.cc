// libFuzzer target for the schema pack's handling of JSON and text input
// (docs/SCHEMA.md; DESIGN invariant 4: bad input gets a clear error, never a
// crash). Each input is JSON text and goes four ways:
//  1. SchemaPack::Parse: a whole pack.
//  2. SchemaPack::Builtin().WithOverlay: a regional overlay. An accepted
//     overlay keeps every base collection and field, and the overlaid pack
//     answers labels and validates like the base.
//  3. Builtin().Validate of a write made from the input: an object
//     {"collection": C, "creating": B, "fields": {NAME: VALUE, ...}} (missing
//     members are picked from the input's hash; a bare object is the fields).
//     After FillDefaults the same values are validated again as a creation.
//  4. casework::ValueFromText of the raw input, as typed text, for every
//     field of one builtin collection (picked from the input's hash), in
//     English and Spanish, with and without list indexes. A value it returns
//     must pass Validate for that field (but null for a required one, and
//     lengths and ranges, which ValueFromText leaves to Validate); ValueForPeople and ValueForCell
//     of the input as a stored value must not fail either.
//
// What it found (fixed): ValueFromText threw nlohmann's type_error 316 out
// of the library on text that is not UTF-8 (a spreadsheet saved as Latin-1);
// it now refuses it. Reproducer: fuzz/known-issues/value-from-text-latin1.
//
// Seeds: fuzz/corpus/schema/ (fuzz_seeds). Build: scripts/fuzz.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "enlace/casework.h"
#include "enlace/schema.h"
#include "fuzz_util.h"

namespace enlace::fuzz {

const char kTargetName[] = "schema_fuzz";

namespace {

size_t Hash(std::string_view text) {
  size_t h = 1469598103;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211u;
  return h;
}

void CheckOverlaid(const SchemaPack& base, const SchemaPack& overlaid) {
  for (const auto& c : base.collections()) {
    const CollectionDef* oc = overlaid.FindCollection(c.name);
    Expect(oc != nullptr, "an overlay removed collection " + c.name);
    for (const auto& f : c.fields) {
      const FieldDef* of = oc->Find(f.name);
      Expect(of != nullptr, "an overlay removed field " + c.name + "." + f.name);
      Expect(of->type == f.type && of->required == f.required && of->codelist == f.codelist,
             "an overlay changed field " + c.name + "." + f.name);
    }
  }
  for (const auto& c : overlaid.collections()) {
    (void)overlaid.CollectionLabel(c, "es");
    for (const auto& f : c.fields) {
      (void)overlaid.FieldLabel(f, "es");
      (void)overlaid.FieldHelp(f, "en");
      if (const CodeList* list = overlaid.FindCodeList(f.codelist)) {
        for (const auto& v : list->values) (void)overlaid.CodeLabel(*list, v, "es");
      }
    }
    Fields values;
    overlaid.FillDefaults(c.name, values);
    ExpectMessage(overlaid.Validate(c.name, values, /*creating=*/true), "Validate overlaid");
  }
}

void CheckValidate(const SchemaPack& pack, std::string_view text, size_t hash) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return;
  const auto& cols = pack.collections();
  std::string collection = cols[hash % cols.size()].name;
  bool creating = (hash >> 8) % 2 == 0;
  const nlohmann::json* fields = &json;
  if (auto it = json.find("collection"); it != json.end() && it->is_string()) {
    collection = it->get<std::string>();
  }
  if (auto it = json.find("creating"); it != json.end() && it->is_boolean()) {
    creating = it->get<bool>();
  }
  if (auto it = json.find("fields"); it != json.end() && it->is_object()) fields = &*it;
  Fields values;
  for (const auto& [name, value] : fields->items()) {
    values[name] = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  ExpectMessage(pack.Validate(collection, values, creating), "Validate");
  pack.FillDefaults(collection, values);
  ExpectMessage(pack.Validate(collection, values, /*creating=*/true), "Validate after defaults");
}

void CheckValueFromText(const SchemaPack& pack, std::string_view text, size_t hash) {
  const auto& cols = pack.collections();
  const CollectionDef& c = cols[(hash >> 16) % cols.size()];
  for (const FieldDef& f : c.fields) {
    for (int variant = 0; variant < 2; ++variant) {
      casework::TextOptions options;
      options.language = variant == 0 ? "en" : "es";
      options.allow_index = variant == 1;
      auto value = casework::ValueFromText(pack, c, f, text, options);
      if (!value.ok()) {
        Expect(!value.status().message().empty(), "ValueFromText: an error without a message");
        continue;
      }
      // A blank text clears the field, which a required field refuses; and
      // ValueFromText converts but leaves lengths and ranges to Validate.
      if (*value == "null" && f.required) continue;
      if (f.type == FieldType::kString || f.type == FieldType::kText ||
          f.type == FieldType::kStrings || f.type == FieldType::kInteger ||
          f.type == FieldType::kNumber) {
        (void)pack.Validate(c.name, {{f.name, *value}}, /*creating=*/false);
        continue;
      }
      const Status valid = pack.Validate(c.name, {{f.name, *value}}, /*creating=*/false);
      Expect(valid.ok(), "ValueFromText gave " + *value + " for " + c.name + "." + f.name +
                             ", which Validate refuses: " + valid.ToString());
    }
    (void)casework::ValueForPeople(pack, f, text, "es");
  }
  (void)casework::ValueForCell(text);
}

}  // namespace
}  // namespace enlace::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enlace;
  using namespace enlace::fuzz;
  const std::string_view text = AsText(data, size);
  const size_t hash = Hash(text);
  const SchemaPack& builtin = SchemaPack::Builtin();

  auto parsed = SchemaPack::Parse(text);
  ExpectMessage(parsed.status(), "Parse");
  if (parsed.ok()) {
    for (const auto& c : parsed->collections()) {
      Fields values;
      parsed->FillDefaults(c.name, values);
      ExpectMessage(parsed->Validate(c.name, values, /*creating=*/true), "Validate parsed");
    }
  }

  auto overlaid = builtin.WithOverlay(text);
  ExpectMessage(overlaid.status(), "WithOverlay");
  if (overlaid.ok()) {
    CheckOverlaid(builtin, *overlaid);
    CheckValidate(*overlaid, text, hash);
  }

  CheckValidate(builtin, text, hash);
  CheckValueFromText(builtin, text, hash);
  return 0;
}
