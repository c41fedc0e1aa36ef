#include "enlace/i18n.h"

#include <atomic>
#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <utility>

namespace enlace::i18n {

namespace internal {
// The bytes of po/cli.es.po and po/schema.es.po, written by
// core/i18n_embed.cmake into a generated source at build time. A catalogue
// that was absent at configure time has size 0.
extern const unsigned char kCliEsPo[];
extern const std::size_t kCliEsPoSize;
extern const unsigned char kSchemaEsPo[];
extern const std::size_t kSchemaEsPoSize;
}  // namespace internal

namespace {

// ---- the .po parser ------------------------------------------------------------------------

Status LineError(int line, std::string_view what) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + std::string(what));
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::string_view Trim(std::string_view s) {
  s = TrimLeft(s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `s` is `"..."` (possibly followed by blanks); appends its unescaped text.
Status ParseQuoted(std::string_view s, int line, std::string& out) {
  s = Trim(s);
  if (s.empty() || s.front() != '"') return LineError(line, "expected a string in double quotes");
  size_t i = 1;
  for (;;) {
    if (i >= s.size()) return LineError(line, "the string has no closing quote");
    const char c = s[i++];
    if (c == '"') break;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i >= s.size()) return LineError(line, "the string has no closing quote");
    // The escapes msgfmt writes: \n \t \r \" \\.
    static constexpr std::string_view kEscaped = "ntr\"\\";
    static constexpr std::string_view kMeaning = "\n\t\r\"\\";
    const size_t e = kEscaped.find(s[i++]);
    if (e == std::string_view::npos) {
      return LineError(line, std::string("unknown escape \\") + s[i - 1]);
    }
    out.push_back(kMeaning[e]);
  }
  if (i != s.size()) return LineError(line, "text after the closing quote");
  return Status::Ok();
}

// The entry being read and where continuation strings go.
class PoReader {
 public:
  Result<std::vector<PoEntry>> Read(std::string_view text) {
    int line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      ++line_no;
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string_view line = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ENLACE_RETURN_IF_ERROR(ReadLine(TrimLeft(line), line_no));
    }
    ENLACE_RETURN_IF_ERROR(Finish(line_no));
    return std::move(entries_);
  }

 private:
  enum class Target { kNone, kContext, kId, kPlural, kStr, kIgnored };

  bool started() const { return has_context_ || has_id_; }

  Status ReadLine(std::string_view line, int n) {
    if (line.empty()) return Finish(n);
    if (line.front() == '#') {
      // Comments belong before an entry: they end the one before.
      ENLACE_RETURN_IF_ERROR(Finish(n));
      if (line.rfind("#,", 0) == 0) ReadFlags(line.substr(2));
      return Status::Ok();
    }
    if (line.front() == '"') {
      switch (target_) {
        case Target::kNone:
          return LineError(n, "a string with no msgid, msgstr or msgctxt before it");
        case Target::kContext:
          return ParseQuoted(line, n, entry_.context);
        case Target::kId:
          return ParseQuoted(line, n, entry_.msgid);
        case Target::kStr:
          return ParseQuoted(line, n, entry_.msgstr);
        case Target::kPlural:
        case Target::kIgnored: {
          std::string ignored;
          return ParseQuoted(line, n, ignored);
        }
      }
    }
    size_t end = 0;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '"') ++end;
    const std::string_view keyword = line.substr(0, end);
    const std::string_view rest = line.substr(end);
    if (keyword == "msgctxt") {
      if (has_str_) ENLACE_RETURN_IF_ERROR(Finish(n));
      if (started()) return LineError(n, "msgctxt inside an entry (a msgstr is missing before it)");
      has_context_ = true;
      target_ = Target::kContext;
      return ParseQuoted(rest, n, entry_.context);
    }
    if (keyword == "msgid") {
      if (has_str_) ENLACE_RETURN_IF_ERROR(Finish(n));
      if (has_id_) return LineError(n, "msgid inside an entry (a msgstr is missing before it)");
      has_id_ = true;
      entry_.line = n;
      target_ = Target::kId;
      return ParseQuoted(rest, n, entry_.msgid);
    }
    if (keyword == "msgid_plural") {
      if (!has_id_ || has_str_ || plural_) return LineError(n, "msgid_plural out of place");
      plural_ = true;
      target_ = Target::kPlural;
      std::string ignored;
      return ParseQuoted(rest, n, ignored);
    }
    if (keyword == "msgstr") {
      if (!has_id_) return LineError(n, "msgstr without a msgid before it");
      if (has_str_) return LineError(n, "a second msgstr in one entry");
      if (plural_) return LineError(n, "a plural entry needs msgstr[0], msgstr[1], ...");
      has_str_ = true;
      target_ = Target::kStr;
      return ParseQuoted(rest, n, entry_.msgstr);
    }
    if (keyword.rfind("msgstr[", 0) == 0 && keyword.back() == ']' && keyword.size() > 8) {
      const std::string_view index = keyword.substr(7, keyword.size() - 8);
      for (char c : index) {
        if (c < '0' || c > '9')
          return LineError(n, "a bad plural index in " + std::string(keyword));
      }
      if (!has_id_) return LineError(n, "msgstr without a msgid before it");
      if (!plural_) return LineError(n, "msgstr[N] in an entry without msgid_plural");
      has_str_ = true;
      if (index == "0") {
        target_ = Target::kStr;
        return ParseQuoted(rest, n, entry_.msgstr);
      }
      target_ = Target::kIgnored;  // plural forms are not used: msgstr[0] stands for all
      std::string ignored;
      return ParseQuoted(rest, n, ignored);
    }
    return LineError(n, "unknown keyword \"" + std::string(keyword) + "\"");
  }

  void ReadFlags(std::string_view flags) {
    while (!flags.empty()) {
      const size_t comma = flags.find(',');
      if (Trim(flags.substr(0, comma)) == "fuzzy") fuzzy_ = true;
      if (comma == std::string_view::npos) break;
      flags.remove_prefix(comma + 1);
    }
  }

  // Ends the entry being read at line `n` (a blank line, a comment, the end).
  Status Finish(int n) {
    if (!started()) return Status::Ok();
    if (!has_id_) return LineError(n, "msgctxt without a msgid after it");
    if (!has_str_) return LineError(entry_.line, "msgid without a msgstr after it");
    entry_.fuzzy = fuzzy_;
    const bool header = entry_.msgid.empty() && !has_context_;
    if (!header) entries_.push_back(std::move(entry_));
    entry_ = PoEntry{};
    has_context_ = has_id_ = has_str_ = plural_ = fuzzy_ = false;
    target_ = Target::kNone;
    return Status::Ok();
  }

  std::vector<PoEntry> entries_;
  PoEntry entry_;
  bool has_context_ = false, has_id_ = false, has_str_ = false, plural_ = false, fuzzy_ = false;
  Target target_ = Target::kNone;
};

// ---- catalogues --------------------------------------------------------------------------

// gettext's key: "context\x04msgid", or the msgid alone.
std::string Key(std::string_view context, std::string_view msgid) {
  std::string key;
  if (!context.empty()) {
    key.reserve(context.size() + 1 + msgid.size());
    key.append(context);
    key.push_back('\x04');
  }
  key.append(msgid);
  return key;
}

// The usable translations of one built-in catalogue. Built once, never
// destroyed, so that pointers into it stay valid for the program's life.
class Catalogue {
 public:
  Catalogue(const unsigned char* bytes, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    auto entries = ParsePo(text);
    // A catalogue that does not parse leaves every message in English; the
    // tests parse the source .po files, so this is caught before a release.
    if (!entries.ok()) return;
    for (auto& e : *entries) {
      if (e.fuzzy || e.msgstr.empty()) continue;
      translations_.emplace(Key(e.context, e.msgid), std::move(e.msgstr));
    }
  }

  // Null when there is no usable translation.
  const std::string* Find(std::string_view context, std::string_view msgid) const {
    const auto it = translations_.find(Key(context, msgid));
    return it == translations_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<std::string, std::string> translations_;
};

const Catalogue& CliCatalogue() {
  static const Catalogue* const catalogue =
      new Catalogue(internal::kCliEsPo, internal::kCliEsPoSize);
  return *catalogue;
}

const Catalogue& SchemaCatalogue() {
  static const Catalogue* const catalogue =
      new Catalogue(internal::kSchemaEsPo, internal::kSchemaEsPoSize);
  return *catalogue;
}

// ---- the language ------------------------------------------------------------------------

enum : int { kUnset = 0, kEnglish = 1, kSpanish = 2 };
std::atomic<int> g_language{kUnset};

bool IsSpanish(std::string_view value) {
  // The language code ends at the territory, codeset, modifier or list separator.
  const std::string_view code = value.substr(0, value.find_first_of("_.@:-"));
  return code == "es";
}

int CurrentLanguage() {
  int lang = g_language.load(std::memory_order_acquire);
  if (lang != kUnset) return lang;
  const int from_env = LanguageFromEnvironment() == "es" ? kSpanish : kEnglish;
  int expected = kUnset;
  // A concurrent SetLanguage wins over the environment.
  if (!g_language.compare_exchange_strong(expected, from_env, std::memory_order_acq_rel)) {
    return expected;
  }
  return from_env;
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------

std::string LanguageFromEnvironment() {
  for (const char* name : {"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    return IsSpanish(value) ? "es" : "en";
  }
  return "en";
}

void SetLanguage(std::string_view language) {
  g_language.store(language == "es" ? kSpanish : kEnglish, std::memory_order_release);
}

std::string_view Language() { return CurrentLanguage() == kSpanish ? "es" : "en"; }

const char* Translate(const char* msgid) { return TranslateCtx(nullptr, msgid); }

const char* TranslateCtx(const char* context, const char* msgid) {
  if (msgid == nullptr) return "";
  if (CurrentLanguage() != kSpanish) return msgid;
  const std::string* found = CliCatalogue().Find(context == nullptr ? "" : context, msgid);
  return found == nullptr ? msgid : found->c_str();
}

std::string TranslateSchemaLabel(std::string_view context, std::string_view english,
                                 std::string_view language) {
  if (language != "es") return std::string(english);
  const std::string* found = SchemaCatalogue().Find(context, english);
  return found == nullptr ? std::string(english) : *found;
}

Result<std::vector<PoEntry>> ParsePo(std::string_view text) { return PoReader().Read(text); }

std::string Format(std::string_view pattern, std::initializer_list<std::string_view> args) {
  std::string out;
  out.reserve(pattern.size());
  size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '{') {
      size_t j = i + 1;
      size_t index = 0;
      while (j < pattern.size() && j - i <= 4 && pattern[j] >= '0' && pattern[j] <= '9') {
        index = index * 10 + static_cast<size_t>(pattern[j] - '0');
        ++j;
      }
      if (j > i + 1 && j < pattern.size() && pattern[j] == '}' && index < args.size()) {
        out.append(*(args.begin() + index));
        i = j + 1;
        continue;
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

}  // namespace enlace::i18n
