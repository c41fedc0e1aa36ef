// Messages in English and Mexican Spanish, from gettext catalogues built in.
//
// The Spanish texts live in po/cli.es.po (the CLI's messages) and
// po/schema.es.po (the labels of the case-data schema). Both files are
// compiled into the library at build time and parsed once, on first use: no
// file is read at run time, and no system locale needs to be installed (glibc's
// gettext stays English when es_MX is not generated, which is common on Debian).
//
// English is the source language: a message's msgid is its English text, so an
// untranslated message, a fuzzy entry or an empty msgstr shows in English.
//
// Thread safety: every function may be called from any thread. SetLanguage
// changes the language for the whole process.
#ifndef ENLACE_I18N_H_
#define ENLACE_I18N_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace::i18n {

// "es" when the first of LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set and
// not empty names Spanish ("es", "es_MX.UTF-8", "es_ES@euro", "es:en"), else
// "en" (also when none is set, or for C and POSIX).
std::string LanguageFromEnvironment();

// Sets the language of Translate/TranslateCtx: "es", or "en" for anything else.
void SetLanguage(std::string_view language);

// The current language, "en" or "es"; taken from LanguageFromEnvironment() on
// first use unless SetLanguage came first.
std::string_view Language();

// The current language's text for an English CLI message `msgid` (a msgid of
// po/cli.es.po without msgctxt): `msgid` itself in English or when there is no
// usable translation. The returned pointer is valid for the life of the
// program (it is `msgid` or points into the built-in catalogue). Null -> "".
const char* Translate(const char* msgid);

// Like Translate, for the entry with msgctxt `context` (short words whose
// meaning depends on where they appear, e.g. context "role", msgid "field").
const char* TranslateCtx(const char* context, const char* msgid);

// A schema label in `language` ("es" or "en"; anything else is English): the
// msgstr of the po/schema.es.po entry with msgctxt `context` (such as
// "field:persons.pers_gender", "code:Gender", "collections") and msgid
// `english`, or `english` when there is none (or the catalogue was not built in).
std::string TranslateSchemaLabel(std::string_view context, std::string_view english,
                                 std::string_view language);

// One translation of a .po file.
struct PoEntry {
  std::string context;  // msgctxt, "" when absent
  std::string msgid;
  std::string msgstr;  // for plural entries: msgstr[0]
  bool fuzzy = false;  // marked "#, fuzzy": a translator must check it before it is used
  int line = 0;        // 1-based line of the entry's msgid
};

// Parses the text of a .po (or .pot) file: comments, "#," flags, msgctxt,
// msgid, msgid_plural, msgstr and msgstr[N], strings continued over several
// lines, and the escapes \n \t \r \" \\. Obsolete entries ("#~") are skipped,
// and so is the header (the entry with an empty msgid). Returns the entries in
// file order, or kInvalidArgument naming the line ("line 12: ...") of the
// first error: an unknown keyword, an unterminated string or an unknown
// escape, a string with no keyword before it, an entry without msgid or msgstr.
Result<std::vector<PoEntry>> ParsePo(std::string_view text);

// `pattern` with every "{N}" (N a decimal index into `args`) replaced by
// args[N]; braces that are not such a placeholder are kept as they are. Lets a
// translation put the values in its own word order:
//   Format(_("sent {0} of {1} writes"), {sent, total})
std::string Format(std::string_view pattern, std::initializer_list<std::string_view> args);

}  // namespace enlace::i18n

#endif  // ENLACE_I18N_H_
