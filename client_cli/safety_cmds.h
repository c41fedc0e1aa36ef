// Local safety commands (issue 5, items 4 and 6): panic, passphrase change,
// duress passphrase, wipe after N wrong passphrases; and the helpers the
// device-opening code uses after a duress unlock or a locked vault.
//
//   enlace panic [--yes]
//   enlace passphrase change [--new-passphrase-file F]
//   enlace passphrase duress [--duress-passphrase-file F]
//   enlace passphrase wipe-after N
//
// Exit codes (ExitCodeFor): 0 ok, 1 usage (or panic not confirmed), 2 wrong
// passphrase or waiting after wrong ones, 5 data error.
#ifndef ENLACE_CLIENT_CLI_SAFETY_CMDS_H_
#define ENLACE_CLIENT_CLI_SAFETY_CMDS_H_

#include <cstdint>
#include <string>

#include "commands.h"
#include "passphrase.h"

namespace enlace::cli {

struct PanicArgs {
  bool yes = false;  // do not ask to type the confirmation word
};
struct PassphraseChangeArgs {
  std::string new_passphrase_file;  // --new-passphrase-file
};
struct DuressArgs {
  std::string duress_passphrase_file;  // --duress-passphrase-file
};

// Destroys the replica files and config.json of the home (WipeReplicaFiles,
// WipeFiles) without a passphrase or the network, after the confirmation
// word is typed on ctx.input (any stream, terminal or not) unless `yes`.
// The folder stays, empty of enlace files: `enlace list` then says it is not
// initialised. Exit 0 also when there was nothing to destroy.
CliStatus RunPanic(Context& ctx, const PanicArgs& args);

// Re-wraps the vault under a new passphrase (current one as for any
// command; new one from --new-passphrase-file, ENLACE_NEW_PASSPHRASE, or
// asked twice on the terminal).
CliStatus RunPassphraseChange(Context& ctx, const PassphraseChangeArgs& args);

// Sets the duress passphrase (from --duress-passphrase-file,
// ENLACE_DURESS_PASSPHRASE, or asked twice on the terminal).
CliStatus RunPassphraseDuress(Context& ctx, const DuressArgs& args);

// Destroy the data after `n` wrong passphrases in a row (0: never; 1 and 2
// are refused as too easy to trigger by a typo).
CliStatus RunPassphraseWipeAfter(Context& ctx, uint32_t n);

// The duress passphrase for `init --duress` or `passphrase duress`; exit 2
// when none can be had.
CliStatus ObtainDuressPassphrase(const Context& ctx, const std::string& file, Passphrase& out);

// After Replica::Open returned a fresh replica because the duress passphrase
// was given: config.json is wiped (WipeFiles) and rewritten as a device that
// never joined a team would have it (same hub URL, pin and device name; no
// team name; role field). `config` becomes that config. Prints nothing.
CliStatus ResetConfigAfterDuress(const std::string& home, Config& config);

// The error for a kWrongPassphrase from Replica::Open in `home`: says when
// the next attempt is allowed, or, when the failures reached the wipe
// threshold and the vault is gone, that the data was destroyed (and then
// wipes config.json too, so the home looks never initialised).
CliStatus LockedDevice(const std::string& home);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_SAFETY_CMDS_H_
