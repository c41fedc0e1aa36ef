// Values, searches and exports over the schema pack (enlace/casework.h).
// Report rows and the CTDC mapping are in casework_ctdc.cc.
#include "enlace/casework.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "enlace/csv.h"
#include "enlace/i18n.h"

namespace enlace::casework {
namespace {

using i18n::Format;
using i18n::Translate;
using nlohmann::json;

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ValidDate(int y, int m, int d) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

// "YYYY-MM-DD" from YYYY-MM-DD or DD/MM/YYYY (also D/M/YYYY), or "".
std::string NormaliseDate(std::string_view text) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  const std::string t(text);
  if (text.size() == 10 && text[4] == '-' && text[7] == '-' &&
      std::sscanf(t.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
  } else if (std::sscanf(t.c_str(), "%2d/%2d/%4d%c", &d, &m, &y, &tail) == 3 && text.size() >= 8 &&
             text.size() <= 10 && text.substr(text.size() - 5, 1) == "/") {
  } else {
    return "";
  }
  if (!ValidDate(y, m, d)) return "";
  char out[32];
  std::snprintf(out, sizeof out, "%04d-%02d-%02d", y, m, d);
  return out;
}

std::vector<std::string> SplitItems(std::string_view text) {
  std::vector<std::string> items;
  std::string current;
  for (char c : text) {
    if (c == ',' || c == ';' || c == '|' || c == '\n') {
      if (std::string item = Trim(current); !item.empty()) items.push_back(std::move(item));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (std::string item = Trim(current); !item.empty()) items.push_back(std::move(item));
  return items;
}

std::string AllowedCodes(const CodeList& list) {
  std::string out;
  constexpr size_t kShown = 40;
  for (size_t i = 0; i < list.values.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += list.values[i].code;
  }
  if (list.values.size() > kShown) out += ", ...";
  return out;
}

Result<std::string> CodeFromText(const SchemaPack& pack, const FieldDef& field,
                                 std::string_view text, const TextOptions& options) {
  const CodeList* list = pack.FindCodeList(field.codelist);
  if (list == nullptr) return std::string(text);  // validation reports the broken pack
  const std::string wanted = FoldForSearch(text);
  // The code itself, exactly, then in any case.
  for (const CodeValue& v : list->values) {
    if (v.code == text) return v.code;
  }
  for (const CodeValue& v : list->values) {
    if (FoldForSearch(v.code) == wanted) return v.code;
  }
  // Its label, in English or Spanish (or the overlay's languages).
  for (const CodeValue& v : list->values) {
    if (FoldForSearch(pack.CodeLabel(*list, v, "en")) == wanted ||
        FoldForSearch(pack.CodeLabel(*list, v, "es")) == wanted ||
        FoldForSearch(pack.CodeLabel(*list, v, options.language)) == wanted) {
      return v.code;
    }
  }
  if (IsDigits(text)) {
    // Numeric codes without their leading zeros: "9" for "09".
    for (const CodeValue& v : list->values) {
      if (IsDigits(v.code) && v.code.size() > text.size() &&
          std::string(v.code.size() - text.size(), '0') + std::string(text) == v.code) {
        return v.code;
      }
    }
    if (options.allow_index) {
      size_t n = 0;
      std::from_chars(text.data(), text.data() + text.size(), n);
      if (n >= 1 && n <= list->values.size()) return list->values[n - 1].code;
    }
  }
  return Status::InvalidArgument(
      Format(Translate("{0}: \"{1}\" is not one of {2}"), {field.name, text, AllowedCodes(*list)}));
}

}  // namespace

// True for well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF): what nlohmann::json can dump without throwing.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::string Windows1252ToUtf8(std::string_view text) {
  // 0x80..0x9F in Windows-1252; 0 where the code page defines nothing.
  static constexpr uint16_t kHigh[32] = {
      0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    uint32_t cp = c;
    if (c >= 0x80 && c <= 0x9F) cp = kHigh[c - 0x80] != 0 ? kHigh[c - 0x80] : 0xFFFD;
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

std::string FoldForSearch(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0xC3 && i + 1 < text.size()) {
      // Latin-1 supplement letters of Spanish and Portuguese, folded.
      const auto n = static_cast<unsigned char>(text[i + 1]);
      const char folded = (n >= 0x80 && n <= 0x85) || (n >= 0xA0 && n <= 0xA5)   ? 'a'
                          : (n >= 0x88 && n <= 0x8B) || (n >= 0xA8 && n <= 0xAB) ? 'e'
                          : (n >= 0x8C && n <= 0x8F) || (n >= 0xAC && n <= 0xAF) ? 'i'
                          : (n >= 0x92 && n <= 0x96) || (n >= 0xB2 && n <= 0xB6) ? 'o'
                          : (n >= 0x99 && n <= 0x9C) || (n >= 0xB9 && n <= 0xBC) ? 'u'
                          : (n == 0x91 || n == 0xB1)                             ? 'n'
                          : (n == 0x87 || n == 0xA7)                             ? 'c'
                                                                                 : 0;
      if (folded != 0) {
        out.push_back(folded);
        ++i;
        continue;
      }
    }
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  return out;
}

Result<std::string> ValueFromText(const SchemaPack& pack, const CollectionDef& collection,
                                  const FieldDef& field, std::string_view raw,
                                  const TextOptions& options) {
  (void)collection;
  const std::string text = Trim(raw);
  if (text.empty()) return std::string("null");
  // Text in another encoding (a spreadsheet saved as Latin-1) is refused:
  // it could not be stored, shown or exported as JSON.
  if (!IsUtf8(text)) {
    return Status::InvalidArgument(Format(
        Translate("{0}: the text is not UTF-8 (save the file as \"CSV UTF-8\")"), {field.name}));
  }
  const auto bad = [&](const char* expected) {
    return Status::InvalidArgument(
        Format(Translate("{0}: \"{1}\" is not {2}"), {field.name, text, Translate(expected)}));
  };
  switch (field.type) {
    case FieldType::kString:
    case FieldType::kText:
      return json(text).dump();
    case FieldType::kInteger: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || end != text.data() + text.size()) return bad("a whole number");
      return std::to_string(v);
    }
    case FieldType::kNumber: {
      json j = json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_number()) return bad("a number");
      return j.dump();
    }
    case FieldType::kBoolean: {
      const std::string f = FoldForSearch(text);
      if (f == "yes" || f == "y" || f == "si" || f == "s" || f == "true" || f == "1" ||
          f == "verdadero") {
        return std::string("true");
      }
      if (f == "no" || f == "n" || f == "false" || f == "0" || f == "falso") {
        return std::string("false");
      }
      return bad("yes or no");
    }
    case FieldType::kDate: {
      const std::string date = NormaliseDate(text);
      if (date.empty()) return bad("a date (YYYY-MM-DD or DD/MM/YYYY)");
      return json(date).dump();
    }
    case FieldType::kCode: {
      ENLACE_ASSIGN_OR_RETURN(std::string code, CodeFromText(pack, field, text, options));
      return json(code).dump();
    }
    case FieldType::kCodes: {
      json arr = json::array();
      for (const std::string& item : SplitItems(text)) {
        ENLACE_ASSIGN_OR_RETURN(std::string code, CodeFromText(pack, field, item, options));
        if (std::find(arr.begin(), arr.end(), json(code)) == arr.end()) arr.push_back(code);
      }
      return arr.dump();
    }
    case FieldType::kStrings: {
      json arr = json::array();
      for (const std::string& item : SplitItems(text)) arr.push_back(item);
      return arr.dump();
    }
    case FieldType::kRef: {
      std::string lower;
      for (char c : text)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (lower.size() != 32 || lower.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return bad("a record id (32 hexadecimal characters)");
      }
      return json(lower).dump();
    }
  }
  return bad("a value");
}

std::string ValueForPeople(const SchemaPack& pack, const FieldDef& field, std::string_view text,
                           std::string_view language) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::string(text);
  if (j.is_null()) return "";
  const CodeList* list = field.codelist.empty() ? nullptr : pack.FindCodeList(field.codelist);
  auto label = [&](const json& item) -> std::string {
    if (!item.is_string()) return item.dump();
    const std::string s = item.get<std::string>();
    if (list != nullptr) {
      if (const CodeValue* v = list->Find(s)) return pack.CodeLabel(*list, *v, language);
    }
    return s;
  };
  if (j.is_boolean()) {
    const bool es = language == "es";
    return j.get<bool>() ? (es ? "s\xC3\xAD" : "yes") : "no";
  }
  if (j.is_array()) {
    std::string out;
    for (const json& item : j) {
      if (!out.empty()) out += ", ";
      out += label(item);
    }
    return out;
  }
  return label(j);
}

std::string ValueForCell(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::string(text);
  if (j.is_null()) return "";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_array()) {
    std::string out;
    for (const json& item : j) {
      if (!out.empty()) out += ";";
      out += item.is_string() ? item.get<std::string>() : item.dump();
    }
    return out;
  }
  return j.dump();
}

Result<RecordId> FindByPrefix(const std::vector<Record>& records, std::string_view prefix) {
  std::string lower;
  for (char c : prefix)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower.size() < 6 || lower.size() > 32 ||
      lower.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::InvalidArgument(Format(
        Translate("\"{0}\" is not a record id (at least its first 6 hexadecimal characters)"),
        {prefix}));
  }
  std::optional<RecordId> found;
  for (const Record& r : records) {
    if (r.id.ToHex().rfind(lower, 0) != 0) continue;
    if (found && *found != r.id) {
      return Status::InvalidArgument(
          Format(Translate("\"{0}\" matches several records; give more characters"), {prefix}));
    }
    found = r.id;
  }
  if (!found) return Status::NotFound(Format(Translate("no record starts with {0}"), {prefix}));
  return *found;
}

bool Matches(const SchemaPack& pack, const CollectionDef& collection, const Record& record,
             std::string_view text, std::string_view language) {
  const std::string wanted = FoldForSearch(Trim(text));
  if (wanted.empty()) return true;
  if (record.id.ToHex().rfind(wanted, 0) == 0) return true;
  for (const auto& [name, value] : record.fields) {
    const FieldDef* field = collection.Find(name);
    const std::string shown = field != nullptr ? ValueForPeople(pack, *field, value.value, language)
                                               : ValueForCell(value.value);
    if (FoldForSearch(shown).find(wanted) != std::string::npos) return true;
    if (FoldForSearch(ValueForCell(value.value)).find(wanted) != std::string::npos) return true;
  }
  return false;
}

std::vector<const FieldDef*> ExportFields(const CollectionDef& collection,
                                          bool include_identifying) {
  std::vector<const FieldDef*> out;
  for (const FieldDef& f : collection.fields) {
    if (include_identifying || !f.identifying) out.push_back(&f);
  }
  return out;
}

std::string ExportCsv(const CollectionDef& collection, const std::vector<Record>& records,
                      bool include_identifying) {
  const auto fields = ExportFields(collection, include_identifying);
  std::vector<std::string> row{"id"};
  for (const FieldDef* f : fields) row.push_back(f->name);
  std::string out = CsvLine(row);
  for (const Record& r : records) {
    row.assign(1, r.id.ToHex());
    for (const FieldDef* f : fields) {
      auto it = r.fields.find(f->name);
      row.push_back(it == r.fields.end() ? "" : ValueForCell(it->second.value));
    }
    out += CsvLine(row);
  }
  return out;
}

std::string ExportJson(const SchemaPack& pack, const std::vector<CollectionRecords>& data,
                       bool include_identifying, std::string_view exported_at) {
  json doc;
  doc["pack"] = {{"name", std::string(pack.name())},
                 {"version", pack.version()},
                 {"overlay_version", pack.overlay_version()}};
  doc["exported_at"] = std::string(exported_at);
  doc["identifying_included"] = include_identifying;
  json& collections = doc["collections"] = json::object();
  for (const CollectionRecords& c : data) {
    json rows = json::array();
    const auto fields = ExportFields(*c.collection, include_identifying);
    for (const Record& r : c.records) {
      json row = {{"id", r.id.ToHex()}};
      for (const FieldDef* f : fields) {
        auto it = r.fields.find(f->name);
        if (it == r.fields.end()) continue;
        json v = json::parse(it->second.value, nullptr, false);
        if (!v.is_discarded() && !v.is_null()) row[f->name] = std::move(v);
      }
      rows.push_back(std::move(row));
    }
    collections[c.collection->name] = std::move(rows);
  }
  return doc.dump(2) + "\n";
}

std::string Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

}  // namespace enlace::casework
