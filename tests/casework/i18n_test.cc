// Messages in English and Spanish (enlace/i18n.h): the .po parser, the choice
// of language from the environment, translation with its English fallback,
// Format, and that every message marked in client_cli/ (and every
// Translate("...") of the core files whose messages the CLI shows) has a
// Spanish translation in po/cli.es.po with the same placeholders.
#include "enlace/i18n.h"

#include <doctest/doctest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace enlace::i18n {
namespace {

// The repository: ENLACE_SOURCE_DIR when the build defines it, else three
// levels above this file (tests/casework/i18n_test.cc).
std::filesystem::path SourceDir() {
#ifdef ENLACE_SOURCE_DIR
  return std::filesystem::path(ENLACE_SOURCE_DIR);
#else
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
#endif
}

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sets (or unsets, for nullopt) the locale variables for one test and puts
// back what was there, and the language, when it ends.
class LocaleEnv {
 public:
  LocaleEnv() : language_(Language()) {
    for (const char* name : kNames) {
      const char* v = std::getenv(name);
      if (v != nullptr) saved_[name] = v;
    }
  }
  ~LocaleEnv() {
    for (const char* name : kNames) {
      const auto it = saved_.find(name);
      if (it == saved_.end()) {
        ::unsetenv(name);
      } else {
        ::setenv(name, it->second.c_str(), 1);
      }
    }
    SetLanguage(language_);
  }
  LocaleEnv(const LocaleEnv&) = delete;
  LocaleEnv& operator=(const LocaleEnv&) = delete;

  // Exactly these variables set, the others unset.
  void Use(const std::map<std::string, std::string>& vars) {
    for (const char* name : kNames) ::unsetenv(name);
    for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  static constexpr const char* kNames[] = {"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"};
  std::map<std::string, std::string> saved_;
  std::string language_;
};

// ---- ParsePo -----------------------------------------------------------------------------

TEST_CASE("a .po file parses into entries with contexts, flags, lines and unescaped text") {
  const std::string po = R"po(# A translator's comment.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: client_cli/commands.cc
msgid "no conflicts"
msgstr "no hay conflictos"

#. A comment for translators
msgctxt "role"
msgid "field"
msgstr "campo"

msgid ""
"two lines:\n"
"  \"quoted\" and a \\ and a\ttab"
msgstr "dos líneas:\n"
"  \"entre comillas\" y una \\ y un\ttab"

#, fuzzy, c-format
msgid "sent {0}"
msgstr "enviados {0}"

msgid "untranslated"
msgstr ""

msgid "one file"
msgid_plural "{0} files"
msgstr[0] "un archivo"
msgstr[1] "{0} archivos"

#~ msgid "an obsolete message"
#~ msgstr "un mensaje obsoleto"
msgid "after obsolete"
msgstr "después"
)po";
  auto parsed = ParsePo(po);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  const std::vector<PoEntry>& e = *parsed;
  REQUIRE(e.size() == 7);  // the header and the obsolete entry are not returned

  CHECK(e[0].context.empty());
  CHECK(e[0].msgid == "no conflicts");
  CHECK(e[0].msgstr == "no hay conflictos");
  CHECK_FALSE(e[0].fuzzy);
  CHECK(e[0].line == 7);

  CHECK(e[1].context == "role");
  CHECK(e[1].msgid == "field");
  CHECK(e[1].msgstr == "campo");

  CHECK(e[2].msgid == "two lines:\n  \"quoted\" and a \\ and a\ttab");
  CHECK(e[2].msgstr == "dos líneas:\n  \"entre comillas\" y una \\ y un\ttab");
  CHECK(e[2].line == 15);

  CHECK(e[3].fuzzy);
  CHECK(e[3].msgstr == "enviados {0}");
  CHECK_FALSE(e[4].fuzzy);  // the flag belongs to the entry after it only
  CHECK(e[4].msgstr.empty());

  CHECK(e[5].msgid == "one file");
  CHECK(e[5].msgstr == "un archivo");  // plural forms: msgstr[0] stands for all

  CHECK(e[6].msgid == "after obsolete");
  CHECK(e[6].msgstr == "después");
}

TEST_CASE("Windows line endings, missing final newline and an empty file parse") {
  auto crlf = ParsePo("msgid \"a\"\r\nmsgstr \"b\"\r\n\r\nmsgid \"c\"\r\nmsgstr \"d\"");
  REQUIRE(crlf.ok());
  REQUIRE(crlf->size() == 2);
  CHECK(crlf->at(1).msgstr == "d");
  CHECK(crlf->at(1).line == 4);
  auto empty = ParsePo("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  auto comments = ParsePo("# only a comment\n\n");
  REQUIRE(comments.ok());
  CHECK(comments->empty());
}

TEST_CASE("a malformed .po file is refused naming the line of the error") {
  struct Case {
    const char* text;
    const char* line;
    const char* words;
  };
  const Case cases[] = {
      {"msgid \"a\"\nmsgstr \"b\"\nmsgfoo \"c\"\n", "line 3:", "unknown keyword"},
      {"msgid \"a\"\nmsgstr \"b\n", "line 2:", "closing quote"},
      {"msgid \"a\"\nmsgstr \"b\\q\"\n", "line 2:", "escape"},
      {"msgid \"a\"\nmsgstr \"b\" x\n", "line 2:", "after the closing quote"},
      {"msgid \"a\"\n\nmsgid \"b\"\nmsgstr \"c\"\n", "line 1:", "without a msgstr"},
      {"msgid \"a\"\nmsgid \"b\"\nmsgstr \"c\"\n", "line 2:", "msgid"},
      {"\"floating\"\n", "line 1:", "no msgid"},
      {"msgstr \"b\"\n", "line 1:", "without a msgid"},
      {"msgid \"a\"\nmsgstr \"b\"\nmsgstr \"c\"\n", "line 3:", "second msgstr"},
      {"msgctxt \"x\"\nmsgstr \"b\"\n", "line 2:", "without a msgid"},
      {"msgid \"a\"\nmsgstr[0] \"b\"\n", "line 2:", "msgid_plural"},
      {"msgid \"a\"\nmsgstr\n", "line 2:", "double quotes"},
      {"msgid \"a\"\n# a comment inside\nmsgstr \"b\"\n", "line 1:", "without a msgstr"},
      {"msgid \"a\"\nmsgstr \"b\"\n\nmsgid \"c\"\n", "line 4:", "without a msgstr"},
  };
  for (const Case& c : cases) {
    INFO("po: ", c.text);
    auto parsed = ParsePo(c.text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    const std::string& m = parsed.status().message();
    INFO("message: ", m);
    CHECK(m.rfind(c.line, 0) == 0);
    CHECK(m.find(c.words) != std::string::npos);
  }
}

// ---- the language --------------------------------------------------------------------------

TEST_CASE("the language comes from LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in that order") {
  LocaleEnv env;
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{}, "en"},
      {{{"LANG", "es_MX.UTF-8"}}, "es"},
      {{{"LANG", "es"}}, "es"},
      {{{"LANG", "es_ES@euro"}}, "es"},
      {{{"LANG", "C"}}, "en"},
      {{{"LANG", "POSIX"}}, "en"},
      {{{"LANG", "C.UTF-8"}}, "en"},
      {{{"LANG", "en_US.UTF-8"}}, "en"},
      {{{"LANG", "et_EE.UTF-8"}}, "en"},  // Estonian is not Spanish
      {{{"LANG", ""}}, "en"},
      {{{"LANG", "en_US.UTF-8"}, {"LC_MESSAGES", "es_MX.UTF-8"}}, "es"},
      {{{"LANG", "es_MX.UTF-8"}, {"LC_MESSAGES", "C"}}, "en"},
      {{{"LC_MESSAGES", "es_MX.UTF-8"}, {"LC_ALL", "C"}}, "en"},
      {{{"LANG", "C"}, {"LC_ALL", "es_MX.UTF-8"}}, "es"},
      {{{"LC_ALL", "C"}, {"LANGUAGE", "es_MX:en"}}, "es"},
      {{{"LANG", "es_MX.UTF-8"}, {"LANGUAGE", "en"}}, "en"},
      {{{"LANG", "es_MX.UTF-8"}, {"LANGUAGE", ""}}, "es"},  // empty counts as unset
  };
  for (const auto& [vars, expected] : cases) {
    std::string shown;
    for (const auto& [k, v] : vars) shown += k + "=" + v + " ";
    INFO("environment: ", shown);
    env.Use(vars);
    CHECK(LanguageFromEnvironment() == expected);
  }
}

TEST_CASE("SetLanguage picks Spanish for es and English for anything else") {
  LocaleEnv env;
  SetLanguage("es");
  CHECK(Language() == "es");
  SetLanguage("en");
  CHECK(Language() == "en");
  SetLanguage("fr");
  CHECK(Language() == "en");
  SetLanguage("es_MX");  // a language, not a locale
  CHECK(Language() == "en");
}

// ---- translation -----------------------------------------------------------------------------

TEST_CASE("Translate gives Spanish from the built-in catalogue, and English otherwise") {
  LocaleEnv env;
  SetLanguage("es");
  CHECK(std::string(Translate("no conflicts")) == "no hay conflictos");
  CHECK(std::string(TranslateCtx("role", "field")) == "campo");
  // Unknown messages, unknown contexts and null stay as they are.
  const char* unknown = "a message nobody translated";
  CHECK(Translate(unknown) == unknown);
  CHECK(std::string(TranslateCtx("no such context", "field")) == "field");
  CHECK(std::string(Translate(nullptr)).empty());
  // The pointer is stable: the same one every time.
  CHECK(Translate("no conflicts") == Translate("no conflicts"));

  SetLanguage("en");
  const char* msgid = "no conflicts";
  CHECK(Translate(msgid) == msgid);
  CHECK(std::string(TranslateCtx("role", "field")) == "field");
}

TEST_CASE("Format puts the values where the translation wants them") {
  CHECK(Format("sent {0} of {1} writes", {"3", "5"}) == "sent 3 of 5 writes");
  CHECK(Format("de {1} se enviaron {0}", {"3", "5"}) == "de 5 se enviaron 3");
  CHECK(Format("{0}{0}", {"ab"}) == "abab");
  CHECK(Format("no values", {}) == "no values");
  CHECK(Format("{10}", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "diez"}) == "diez");
  // Anything that is not a placeholder for a given value is kept as it is.
  CHECK(Format("{2} {x} {} { 0} {0", {"a", "b"}) == "{2} {x} {} { 0} {0");
  CHECK(Format("JSON {\"a\": {0}}", {"1"}) == "JSON {\"a\": 1}");
  // A value is never itself scanned for placeholders.
  CHECK(Format("{0} {1}", {"{1}", "b"}) == "{1} b");
}

// ---- the catalogues ------------------------------------------------------------------------

// The set of {N} indices in `text`.
std::set<int> Placeholders(const std::string& text) {
  std::set<int> out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') continue;
    size_t j = i + 1;
    int n = 0;
    while (j < text.size() && j - i <= 4 && text[j] >= '0' && text[j] <= '9') {
      n = n * 10 + (text[j] - '0');
      ++j;
    }
    if (j > i + 1 && j < text.size() && text[j] == '}') out.insert(n);
  }
  return out;
}

// A message marked in a source file: _("..."), N_("...") or C_("ctx", "...").
struct Marked {
  std::string context, msgid, where;
};

// The calls whose string-literal argument is a message: `plain` take the
// msgid, `with_context` the msgctxt then the msgid. The same keywords as
// xgettext's in scripts/po-update.
struct Keywords {
  std::set<std::string> plain, with_context;
};

// client_cli/: the markers of i18n_cli.h.
const Keywords kCliKeywords{{"_", "N_"}, {"C_"}};

// The core files whose messages the CLI shows, calling i18n::Translate
// directly. In casework.cc, bad("a whole number") names a value type that it
// passes to Translate.
const Keywords kCoreKeywords{{"Translate", "bad"}, {"TranslateCtx"}};
const char* const kCoreMessageFiles[] = {"core/casework/casework.cc",
                                         "core/casework/casework_ctdc.cc"};

// Reads one C++ string literal at text[i] ('"' expected), unescaped; moves i
// past it. False when there is none.
bool ReadLiteral(const std::string& text, size_t& i, std::string& out) {
  if (i >= text.size() || text[i] != '"') return false;
  ++i;
  while (i < text.size() && text[i] != '"') {
    char c = text[i++];
    if (c == '\\' && i < text.size()) {
      const char e = text[i++];
      switch (e) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        default:
          c = e;  // \" \\ \'
      }
    }
    out.push_back(c);
  }
  ++i;  // the closing quote
  return true;
}

void SkipSpaceAndComments(const std::string& text, size_t& i) {
  for (;;) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) i = text.size();
    } else if (text.compare(i, 2, "/*") == 0) {
      i = text.find("*/", i + 2);
      i = i == std::string::npos ? text.size() : i + 2;
    } else {
      return;
    }
  }
}

// Adjacent literals ("a" "b") as one string, as the compiler joins them.
bool ReadLiterals(const std::string& text, size_t& i, std::string& out) {
  if (!ReadLiteral(text, i, out)) return false;
  for (;;) {
    size_t j = i;
    SkipSpaceAndComments(text, j);
    if (j >= text.size() || text[j] != '"') return true;
    i = j;
    ReadLiteral(text, i, out);
  }
}

bool IsIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The messages marked in one C++ file. Comments, string and character
// literals are skipped, so `_("x")` in a comment is not a message.
std::vector<Marked> ExtractMarked(const std::string& text, const std::string& file,
                                  const Keywords& keywords = kCliKeywords) {
  std::vector<Marked> out;
  size_t i = 0;
  int line = 1;
  size_t line_counted = 0;
  auto line_at = [&](size_t pos) {
    for (; line_counted < pos && line_counted < text.size(); ++line_counted) {
      if (text[line_counted] == '\n') ++line;
    }
    return line;
  };
  while (i < text.size()) {
    if (text.compare(i, 2, "//") == 0 || text.compare(i, 2, "/*") == 0) {
      SkipSpaceAndComments(text, i);
      continue;
    }
    const char c = text[i];
    if (c == '"') {
      std::string ignored;
      ReadLiteral(text, i, ignored);
      continue;
    }
    if (c == '\'') {
      if (i > 0 && IsIdent(text[i - 1])) {  // a digit separator: 60'000
        ++i;
        continue;
      }
      const size_t close = text.find('\'', i + (text.compare(i + 1, 1, "\\") == 0 ? 3 : 2));
      i = close == std::string::npos ? text.size() : close + 1;
      continue;
    }
    if (!IsIdent(c)) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < text.size() && IsIdent(text[i])) ++i;
    const std::string word = text.substr(start, i - start);
    const bool with_context = keywords.with_context.count(word) > 0;
    if (!with_context && keywords.plain.count(word) == 0) continue;
    size_t j = i;
    SkipSpaceAndComments(text, j);
    if (j >= text.size() || text[j] != '(') continue;
    ++j;
    SkipSpaceAndComments(text, j);
    Marked m;
    m.where = file + ":" + std::to_string(line_at(start));
    if (with_context) {
      if (!ReadLiterals(text, j, m.context)) continue;
      SkipSpaceAndComments(text, j);
      if (j >= text.size() || text[j] != ',') continue;
      ++j;
      SkipSpaceAndComments(text, j);
    }
    if (!ReadLiterals(text, j, m.msgid)) continue;  // _(variable): translated elsewhere
    SkipSpaceAndComments(text, j);
    if (j < text.size() && text[j] == ')') out.push_back(std::move(m));
    i = j;
  }
  return out;
}

TEST_CASE("the source scanner finds marked messages and only those") {
  const std::string src = R"src(
    // _("in a comment") is not a message
    const char* k = N_("a constant"
                       " over two lines\n");
    Line(_("plain"));  /* C_("ctx", "no") */
    Line(C_("role", "field"));
    Line(_(variable));
    std::string s = "_(\"in a string\")";
    char q = '"', r = '\'';
    int n = 60'000;
    Line(_("after a quote char"));
    Line(foo_("not ours"));
  )src";
  const auto found = ExtractMarked(src, "x.cc");
  REQUIRE(found.size() == 4);
  CHECK(found[0].msgid == "a constant over two lines\n");
  CHECK(found[1].msgid == "plain");
  CHECK(found[2].context == "role");
  CHECK(found[2].msgid == "field");
  CHECK(found[3].msgid == "after a quote char");
  CHECK(found[3].where == "x.cc:11");
}

TEST_CASE("in core files the scanner finds Translate literals, qualified or not, and bad()") {
  const std::string src = R"src(
    using i18n::Translate;
    const auto bad = [&](const char* expected) { return Translate(expected); };
    return Status::InvalidArgument(i18n::Translate("a report has 1 to 3 dimensions"));
    return Format(Translate("{0}: \"{1}\" is not {2}"), {a, b, Translate(expected)});
    if (x) return bad("a whole number");
    TranslateCtx("role", "field");
    Line(_("a CLI marker, not used in core files"));
    MyTranslate("not ours");
  )src";
  const auto found = ExtractMarked(src, "core.cc", kCoreKeywords);
  REQUIRE(found.size() == 4);
  CHECK(found[0].msgid == "a report has 1 to 3 dimensions");
  CHECK(found[0].where == "core.cc:4");
  CHECK(found[1].msgid == "{0}: \"{1}\" is not {2}");
  CHECK(found[2].msgid == "a whole number");
  CHECK(found[3].context == "role");
  CHECK(found[3].msgid == "field");
  // With the CLI's keywords the same text has one message: the _("...").
  const auto cli = ExtractMarked(src, "core.cc");
  REQUIRE(cli.size() == 1);
  CHECK(cli[0].msgid == "a CLI marker, not used in core files");
}

std::vector<PoEntry> LoadPo(const std::filesystem::path& path) {
  auto parsed = ParsePo(Slurp(path));
  REQUIRE_MESSAGE(parsed.ok(), path.string(), ": ", parsed.status().message());
  return std::move(parsed).value();
}

using PoIndex = std::map<std::pair<std::string, std::string>, const PoEntry*>;

PoIndex IndexPo(const std::vector<PoEntry>& po) {
  PoIndex by_key;
  for (const auto& e : po) by_key[{e.context, e.msgid}] = &e;
  return by_key;
}

// `m` has a usable Spanish translation in po/cli.es.po (`by_key`), with the
// same placeholders and the same trailing newline.
void CheckTranslated(const PoIndex& by_key, const Marked& m) {
  INFO(m.where, ": msgctxt \"", m.context, "\" msgid \"", m.msgid, "\"");
  const auto it = by_key.find({m.context, m.msgid});
  CHECK_MESSAGE(it != by_key.end(), "not in po/cli.es.po (run scripts/po-update)");
  if (it == by_key.end()) return;
  const PoEntry& e = *it->second;
  CHECK_MESSAGE(!e.msgstr.empty(), "untranslated, at po/cli.es.po line ", e.line);
  CHECK_MESSAGE(!e.fuzzy, "fuzzy: check the translation at po/cli.es.po line ", e.line);
  CHECK_MESSAGE(Placeholders(e.msgid) == Placeholders(e.msgstr),
                "the placeholders differ, at po/cli.es.po line ", e.line);
  const bool id_nl = !e.msgid.empty() && e.msgid.back() == '\n';
  const bool str_nl = !e.msgstr.empty() && e.msgstr.back() == '\n';
  CHECK_MESSAGE(id_nl == str_nl, "msgid and msgstr must both end in \\n or neither, at line ",
                e.line);
}

TEST_CASE("every message marked in client_cli has a Spanish translation with the same {N}") {
  const std::filesystem::path root = SourceDir();
  const std::vector<PoEntry> po = LoadPo(root / "po" / "cli.es.po");
  const PoIndex by_key = IndexPo(po);

  size_t checked = 0;
  std::vector<std::filesystem::path> files;
  for (const auto& f : std::filesystem::directory_iterator(root / "client_cli")) {
    const std::string ext = f.path().extension().string();
    if (ext == ".cc" || ext == ".h") files.push_back(f.path());
  }
  REQUIRE(files.size() >= 5);
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    if (name.size() > 8 && name.compare(name.size() - 8, 8, "_test.cc") == 0) continue;
    for (const Marked& m : ExtractMarked(Slurp(path), "client_cli/" + name)) {
      ++checked;
      CheckTranslated(by_key, m);
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("every Translate(\"...\") of the core files the CLI shows has a Spanish translation") {
  const std::filesystem::path root = SourceDir();
  const std::vector<PoEntry> po = LoadPo(root / "po" / "cli.es.po");
  const PoIndex by_key = IndexPo(po);
  // scripts/po-update extracts from the same files with the same keywords.
  const std::string script = Slurp(root / "scripts" / "po-update");
  for (const char* keyword :
       {"--keyword=Translate ", "--keyword=TranslateCtx:1c,2 ", "--keyword=bad"}) {
    CHECK_MESSAGE(script.find(keyword) != std::string::npos, "scripts/po-update lacks ", keyword);
  }
  for (const char* file : kCoreMessageFiles) {
    INFO("file: ", std::string(file));
    CHECK_MESSAGE(script.find(file) != std::string::npos,
                  "scripts/po-update does not extract from ", file);
    const auto found = ExtractMarked(Slurp(root / file), file, kCoreKeywords);
    CHECK_MESSAGE(found.size() >= 3, "fewer messages than expected: were they moved?");
    for (const Marked& m : found) CheckTranslated(by_key, m);
  }
}

TEST_CASE("the built-in Spanish catalogue is po/cli.es.po as it is now") {
  LocaleEnv env;
  SetLanguage("es");
  size_t usable = 0;
  for (const PoEntry& e : LoadPo(SourceDir() / "po" / "cli.es.po")) {
    if (e.fuzzy || e.msgstr.empty()) {
      CHECK(std::string(TranslateCtx(e.context.c_str(), e.msgid.c_str())) == e.msgid);
      continue;
    }
    ++usable;
    INFO("msgid: ", e.msgid);
    CHECK(std::string(TranslateCtx(e.context.c_str(), e.msgid.c_str())) == e.msgstr);
  }
  CHECK(usable > 100);
}

TEST_CASE("schema labels come from po/schema.es.po in Spanish and stay English otherwise") {
  CHECK(TranslateSchemaLabel("field:nothing.nothing", "Nothing", "es") == "Nothing");
  CHECK(TranslateSchemaLabel("field:nothing.nothing", "Nothing", "en") == "Nothing");
  const std::filesystem::path path = SourceDir() / "po" / "schema.es.po";
  if (!std::filesystem::exists(path)) return;  // not written yet: nothing is built in
  size_t usable = 0;
  for (const PoEntry& e : LoadPo(path)) {
    INFO("msgctxt: ", e.context, " msgid: ", e.msgid);
    CHECK(TranslateSchemaLabel(e.context, e.msgid, "en") == e.msgid);
    CHECK(TranslateSchemaLabel(e.context, e.msgid, "fr") == e.msgid);
    const bool translated = !e.fuzzy && !e.msgstr.empty();
    usable += translated ? 1 : 0;
    CHECK(TranslateSchemaLabel(e.context, e.msgid, "es") == (translated ? e.msgstr : e.msgid));
  }
  CHECK(usable > 0);
}

}  // namespace
}  // namespace enlace::i18n
