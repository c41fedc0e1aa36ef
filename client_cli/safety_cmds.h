// Local safety commands (issue 5, items 4 and 6): panic, passphrase change,
// duress passphrase, wipe after N wrong passphrases. What opening a device
// does after a duress unlock or a locked vault is in device.h.
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

#include "cli_status.h"
#include "device.h"

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

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_SAFETY_CMDS_H_
