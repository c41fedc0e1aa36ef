// The CLI's message markers, for xgettext (scripts/po-update) and the
// translations in po/cli.es.po (see po/README.md).
//
//   _("text")          the text in the current language (enlace::i18n::Translate)
//   C_("ctx", "text")  the same for a short text that needs a context (msgctxt)
//   N_("text")         only marks the text for extraction; translate it later
//                      with _(variable). For constants and tables.
//
// Messages with values use i18n::Format and numbered placeholders, never
// concatenated pieces, so a translation can order the words its own way:
//   Format(_("sent {0}, received {1}"), {sent, received})
#ifndef ENLACE_CLIENT_CLI_I18N_CLI_H_
#define ENLACE_CLIENT_CLI_I18N_CLI_H_

#include "enlace/i18n.h"

#define _(s) ::enlace::i18n::Translate(s)
#define C_(c, s) ::enlace::i18n::TranslateCtx(c, s)
#define N_(s) (s)

#endif  // ENLACE_CLIENT_CLI_I18N_CLI_H_
