#include "capture.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "enlace/casework.h"
#include "i18n_cli.h"
#include "output.h"

namespace enlace::cli {
namespace {

using casework::Trim;
using i18n::Format;

// Code lists this long are not printed in full unless asked ("?").
constexpr size_t kListInline = 14;
// Wrong answers to one question before the capture stops.
constexpr int kMaxTries = 5;

bool IsYes(std::string_view answer) {
  std::string a;
  for (char c : answer) a.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return a == "y" || a == "yes" || a == "s" || a == "si" || a == "s\xC3\xAD";
}

bool IsNo(std::string_view answer) {
  std::string a;
  for (char c : answer) a.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return a == "n" || a == "no";
}

void PrintChoices(std::ostream& out, const SchemaPack& pack, const CodeList& list,
                  std::string_view language) {
  for (size_t i = 0; i < list.values.size(); ++i) {
    out << "    " << (i + 1) << ") " << pack.CodeLabel(list, list.values[i], language) << "\n";
  }
}

// The question for one field, with its hints.
void Introduce(std::ostream& out, const SchemaPack& pack, const FieldDef& field,
               std::string_view language) {
  out << "\n" << pack.FieldLabel(field, language);
  if (field.required) out << " " << _("(required)");
  out << "\n";
  const CodeList* list = field.codelist.empty() ? nullptr : pack.FindCodeList(field.codelist);
  switch (field.type) {
    case FieldType::kCode:
    case FieldType::kCodes:
      if (list != nullptr && list->values.size() <= kListInline) {
        PrintChoices(out, pack, *list, language);
      } else {
        out << "  " << _("Type a code or a name; ? shows the whole list.") << "\n";
      }
      if (field.type == FieldType::kCodes) {
        out << "  " << _("Several answers: separate them with commas (1,3).") << "\n";
      }
      break;
    case FieldType::kDate:
      out << "  " << _("Date as YYYY-MM-DD or DD/MM/YYYY.") << "\n";
      break;
    case FieldType::kBoolean:
      out << "  " << _("Answer yes or no.") << "\n";
      break;
    case FieldType::kStrings:
      out << "  " << _("Several answers: separate them with commas.") << "\n";
      break;
    default:
      break;
  }
}

// Asks one field until the answer is valid. Returns "" to leave it empty,
// the JSON value, or nullopt when the input ended.
Result<std::optional<std::string>> AskField(const SchemaPack& pack, const CollectionDef& collection,
                                            const FieldDef& field, Prompter& prompter,
                                            std::string_view language,
                                            const std::string& default_value) {
  Introduce(prompter.out(), pack, field, language);
  casework::TextOptions text_options;
  text_options.language = language;
  text_options.allow_index = true;
  std::string shown_default;
  if (!default_value.empty()) {
    shown_default = casework::ValueForPeople(pack, field, default_value, language);
  }
  for (int attempt = 0; attempt < kMaxTries; ++attempt) {
    // Every prompt ends in "> ", so scripts and tests know input is awaited.
    const std::string question = shown_default.empty()
                                     ? std::string(field.required ? "> " : _("(Enter: skip) > "))
                                     : Format(_("[{0}] > "), {shown_default});
    std::optional<std::string> answer = prompter.Ask(question);
    if (!answer) return std::optional<std::string>();
    if (*answer == "?") {
      if (std::string help = pack.FieldHelp(field, language); !help.empty()) {
        prompter.out() << "  " << help << "\n";
      }
      if (const CodeList* list = pack.FindCodeList(field.codelist)) {
        PrintChoices(prompter.out(), pack, *list, language);
      }
      --attempt;
      continue;
    }
    if (answer->empty()) {
      if (!default_value.empty()) return std::optional<std::string>(default_value);
      if (!field.required) return std::optional<std::string>(std::string());
      prompter.out() << "  " << _("This field is required.") << "\n";
      continue;
    }
    auto value = casework::ValueFromText(pack, collection, field, *answer, text_options);
    if (value.ok()) {
      const Status valid = pack.Validate(collection.name, Fields{{field.name, *value}}, false);
      if (valid.ok()) return std::optional<std::string>(*value);
      prompter.out() << "  " << valid.message() << "\n";
    } else {
      prompter.out() << "  " << value.status().message() << "\n";
    }
  }
  return Status::InvalidArgument(
      Format(_("{0}: no valid answer after {1} tries"), {field.name, std::to_string(kMaxTries)}));
}

}  // namespace

std::optional<std::string> Prompter::Ask(std::string_view question) {
  out_ << question << std::flush;
  std::string line;
  if (!std::getline(in_, line)) {
    out_ << "\n";
    return std::nullopt;
  }
  return Trim(line);
}

Result<TextValues> ParseTextAssignments(const std::vector<std::string>& words) {
  TextValues out;
  for (const std::string& word : words) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(Format(_("\"{0}\" is not FIELD=VALUE"), {word}));
    }
    const std::string field = word.substr(0, eq);
    if (!out.emplace(field, word.substr(eq + 1)).second) {
      return Status::InvalidArgument(Format(_("field {0} is given twice"), {field}));
    }
  }
  return out;
}

Result<std::optional<Fields>> CaptureRecord(const SchemaPack& pack, const CollectionDef& collection,
                                            const TextValues& typed, Fields fixed_values,
                                            bool creating, const CaptureOptions& options) {
  Fields values = std::move(fixed_values);
  casework::TextOptions text_options;
  text_options.language = options.language;
  for (const auto& [name, text] : typed) {
    const FieldDef* field = collection.Find(name);
    if (field == nullptr) {
      // Validate names the allowed fields.
      ENLACE_RETURN_IF_ERROR(pack.Validate(collection.name, Fields{{name, "null"}}, false));
      return Status::InvalidArgument(Format(_("{0}: no such field"), {name}));
    }
    ENLACE_ASSIGN_OR_RETURN(std::string value,
                            casework::ValueFromText(pack, collection, *field, text, text_options));
    values[name] = std::move(value);
  }
  if (options.prompter != nullptr) {
    for (const FieldDef& field : collection.fields) {
      if (values.contains(field.name) || options.fixed.contains(field.name)) continue;
      if (!options.only.empty() && !options.only.contains(field.name)) continue;
      auto suggested = options.suggested.find(field.name);
      const std::string& default_value =
          suggested != options.suggested.end() ? suggested->second : field.default_value;
      ENLACE_ASSIGN_OR_RETURN(auto answer, AskField(pack, collection, field, *options.prompter,
                                                    options.language, default_value));
      if (!answer) return std::optional<Fields>();
      if (!answer->empty()) values[field.name] = *answer;
    }
  }
  for (const auto& [name, value] : options.suggested) values.emplace(name, value);
  if (creating) pack.FillDefaults(collection.name, values);
  // A blank answer to an optional field of a new record writes nothing.
  if (creating) std::erase_if(values, [](const auto& kv) { return kv.second == "null"; });
  ENLACE_RETURN_IF_ERROR(pack.Validate(collection.name, values, creating));
  if (options.prompter != nullptr) {
    Prompter& p = *options.prompter;
    p.out() << "\n"
            << Format(_("{0} to save:"), {pack.CollectionLabel(collection, options.language)})
            << "\n";
    for (const FieldDef& field : collection.fields) {
      auto it = values.find(field.name);
      if (it == values.end() || options.fixed.contains(field.name)) continue;
      p.out() << "  " << pack.FieldLabel(field, options.language) << ": "
              << casework::ValueForPeople(pack, field, it->second, options.language) << "\n";
    }
    for (int attempt = 0; attempt < kMaxTries; ++attempt) {
      std::optional<std::string> answer = p.Ask(_("Save? [Y/n] "));
      if (!answer || IsNo(*answer)) return std::optional<Fields>();
      if (answer->empty() || IsYes(*answer)) return std::optional<Fields>(std::move(values));
    }
    return std::optional<Fields>();
  }
  return std::optional<Fields>(std::move(values));
}

void PrintRecord(std::ostream& out, const SchemaPack& pack, const CollectionDef& collection,
                 const Record& record, std::string_view language) {
  size_t width = 0;
  for (const FieldDef& field : collection.fields) {
    if (record.fields.contains(field.name)) {
      width = std::max(width, DisplayWidth(pack.FieldLabel(field, language)));
    }
  }
  auto pad = [&](const std::string& label) {
    const size_t w = DisplayWidth(label);
    return label + std::string(width > w ? width - w : 0, ' ');
  };
  auto show = [&](const std::string& label, const FieldDef* field, const FieldValue& value) {
    const std::string text = field != nullptr
                                 ? casework::ValueForPeople(pack, *field, value.value, language)
                                 : value.value;
    if (value.value == "null") return;
    out << "  " << pad(label) << "  " << text;
    if (value.conflict()) {
      out << "  "
          << Format(_("[conflict: {0} values, see enlace conflicts]"),
                    {std::to_string(value.siblings.size())});
    }
    out << "\n";
  };
  for (const FieldDef& field : collection.fields) {
    auto it = record.fields.find(field.name);
    if (it != record.fields.end()) show(pack.FieldLabel(field, language), &field, it->second);
  }
  // Fields the pack no longer knows (an older pack, a withdrawn overlay).
  for (const auto& [name, value] : record.fields) {
    if (collection.Find(name) == nullptr) show(name, nullptr, value);
  }
}

}  // namespace enlace::cli
