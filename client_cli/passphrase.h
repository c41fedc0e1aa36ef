// Getting the device passphrase without leaking it.
//
// The passphrase never travels in argv (visible to every user through ps)
// and is never logged. It comes, in this order, from --passphrase-file
// (first line), from the environment variable ENLACE_PASSPHRASE, or from a
// prompt with echo switched off when standard input is a terminal.
#ifndef ENLACE_CLIENT_CLI_PASSPHRASE_H_
#define ENLACE_CLIENT_CLI_PASSPHRASE_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace::cli {

inline constexpr char kPassphraseEnv[] = "ENLACE_PASSPHRASE";
// `enlace passphrase change` and `enlace passphrase duress` / `init --duress`.
inline constexpr char kNewPassphraseEnv[] = "ENLACE_NEW_PASSPHRASE";
inline constexpr char kDuressPassphraseEnv[] = "ENLACE_DURESS_PASSPHRASE";

// A passphrase in guarded memory (sodium_malloc), wiped when destroyed.
// Move-only; has no operator<< on purpose.
class Passphrase {
 public:
  Passphrase() = default;
  explicit Passphrase(std::string_view text);
  ~Passphrase();
  Passphrase(Passphrase&& other) noexcept;
  Passphrase& operator=(Passphrase&& other) noexcept;
  Passphrase(const Passphrase&) = delete;
  Passphrase& operator=(const Passphrase&) = delete;

  std::string_view view() const { return {data_, size_}; }
  bool empty() const { return size_ == 0; }
  // Constant-time comparison.
  bool Equals(const Passphrase& other) const;

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

enum class PassphrasePurpose {
  kUnlock,  // open an existing vault: ask once
  kCreate,  // a new vault: on a terminal, ask twice and require a match
  kChange,  // the new passphrase of `passphrase change`: ask twice
  kDuress,  // the duress passphrase: ask twice
};

// Where a passphrase may come from; `env_value` is ENLACE_PASSPHRASE (null or
// empty: unset). `tty_fd` is the terminal to prompt on when it is one.
struct PassphraseSources {
  std::string file;
  const char* env_value = nullptr;
  int tty_fd = 0;
  // Named in the "no passphrase" error: where this passphrase can come from.
  const char* file_option = "--passphrase-file";
  const char* env_name = kPassphraseEnv;
};

// The passphrase from the first source that has one. Errors (all mean
// "locked" to the caller): kNotFound when no source has one and `tty_fd` is
// not a terminal; kIoError when the file cannot be read; kInvalidArgument
// when the file's first line or the typed passphrase is empty, or the two
// typed passphrases never matched.
Result<Passphrase> ObtainPassphrase(const PassphraseSources& sources, PassphrasePurpose purpose);

// The first line of `contents` without its line ending ("\n" or "\r\n").
std::string_view FirstLine(std::string_view contents);

// ---- strength of a new passphrase ----------------------------------------------------------

// The rule every new passphrase meets (init, join, passphrase change, the
// duress passphrase); docs/THREAT_MODEL.md, "Passphrase strength", says why
// these numbers. At least kMinPassphraseChars characters (UTF-8 code points),
// and at least kMinPassphraseBits of entropy as zxcvbn estimates it (zxcvbn-c:
// common passwords and English words, keyboard patterns, sequences, repeats,
// dates). Its dictionaries are English: a Spanish word counts as random
// letters, which the minimum length makes up for.
inline constexpr size_t kMinPassphraseChars = 16;
inline constexpr double kMinPassphraseBits = 50.0;

// The zxcvbn estimate of `passphrase` in bits, `known_words` (team and device
// names; empty ones are skipped) counted as easy to guess.
double PassphraseEntropyBits(std::string_view passphrase,
                             const std::vector<std::string>& known_words);

// Ok when `passphrase` meets the rule above; otherwise kInvalidArgument whose
// message (translated) says what is wrong and what to do ("use four or more
// words"). "enlace" is always among the known words.
Status CheckNewPassphrase(std::string_view passphrase, const std::vector<std::string>& known_words);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_PASSPHRASE_H_
