#include "passphrase.h"

#include <fcntl.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>
#include <zxcvbn.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <new>
#include <utility>

#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;

constexpr size_t kMaxPassphraseBytes = 1024;
constexpr size_t kMaxFileBytes = 64 * 1024;
constexpr int kConfirmTries = 3;

// A fixed buffer for reading secrets, wiped when it goes out of scope.
template <size_t N>
struct WipedBuffer {
  std::array<char, N> bytes{};
  ~WipedBuffer() { sodium_memzero(bytes.data(), bytes.size()); }
};

// ---- terminal echo -------------------------------------------------------------------
//
// While echo is off, a signal that ends the process must first give the
// terminal its echo back, or the user's shell is left typing blind.

struct termios g_saved_termios;
volatile sig_atomic_t g_termios_fd = -1;

void RestoreTerminalAndReraise(int sig) {
  if (g_termios_fd >= 0) tcsetattr(g_termios_fd, TCSANOW, &g_saved_termios);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &g_saved_termios) != 0) return;
    struct termios quiet = g_saved_termios;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    g_termios_fd = fd_;
    struct sigaction sa {};
    sa.sa_handler = RestoreTerminalAndReraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &old_[i]);
    active_ = tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (g_termios_fd >= 0) tcsetattr(fd_, TCSAFLUSH, &g_saved_termios);
    g_termios_fd = -1;
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  bool active() const { return active_; }

 private:
  static constexpr std::array<int, 5> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
  int fd_;
  bool active_ = false;
  std::array<struct sigaction, kSignals.size()> old_{};
};

// Prompts on stderr and reads one line from `fd` with echo off.
Result<Passphrase> PromptOnce(int fd, const char* prompt) {
  std::fputs(prompt, stderr);
  std::fflush(stderr);
  WipedBuffer<kMaxPassphraseBytes + 1> line;
  size_t size = 0;
  bool got_newline = false;
  {
    EchoOff echo_off(fd);
    if (!echo_off.active()) {
      return Status::IoError(_("cannot switch off the terminal's echo; refusing to prompt"));
    }
    for (;;) {
      char ch = 0;
      const ssize_t n = ::read(fd, &ch, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (ch == '\n') {
        got_newline = true;
        break;
      }
      if (size < kMaxPassphraseBytes) line.bytes[size++] = ch;
      ch = 0;
    }
  }
  std::fputs("\n", stderr);
  if (!got_newline && size == 0) return Status::InvalidArgument(_("no passphrase was entered"));
  if (size > 0 && line.bytes[size - 1] == '\r') --size;
  if (size == 0) return Status::InvalidArgument(_("the passphrase is empty"));
  return Passphrase(std::string_view(line.bytes.data(), size));
}

Result<Passphrase> FromFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError(
        Format(_("cannot read the passphrase file {0}: {1}"), {path, std::strerror(errno)}));
  }
  WipedBuffer<kMaxFileBytes> buf;
  size_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.bytes.data() + size, buf.bytes.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::IoError(
          Format(_("cannot read the passphrase file {0}: {1}"), {path, std::strerror(err)}));
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
    // The first line is all that is needed.
    if (std::memchr(buf.bytes.data(), '\n', size) != nullptr || size == buf.bytes.size()) break;
  }
  ::close(fd);
  const std::string_view line = FirstLine(std::string_view(buf.bytes.data(), size));
  if (line.empty()) {
    return Status::InvalidArgument(
        Format(_("the first line of the passphrase file {0} is empty"), {path}));
  }
  if (line.size() > kMaxPassphraseBytes) {
    return Status::InvalidArgument(Format(_("the passphrase in {0} is too long"), {path}));
  }
  return Passphrase(line);
}

}  // namespace

// ---- Passphrase ----------------------------------------------------------------------------

Passphrase::Passphrase(std::string_view text) {
  if (sodium_init() < 0) throw std::bad_alloc();
  if (text.empty()) return;
  data_ = static_cast<char*>(sodium_malloc(text.size()));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memcpy(data_, text.data(), text.size());
  size_ = text.size();
}

Passphrase::~Passphrase() {
  if (data_ != nullptr) sodium_free(data_);  // wipes
}

Passphrase::Passphrase(Passphrase&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Passphrase& Passphrase::operator=(Passphrase&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

bool Passphrase::Equals(const Passphrase& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

std::string_view FirstLine(std::string_view contents) {
  const auto nl = contents.find('\n');
  std::string_view line = contents.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Result<Passphrase> ObtainPassphrase(const PassphraseSources& sources, PassphrasePurpose purpose) {
  if (!sources.file.empty()) return FromFile(sources.file);
  if (sources.env_value != nullptr && sources.env_value[0] != '\0') {
    const std::string_view env(sources.env_value);
    if (env.size() > kMaxPassphraseBytes) {
      return Status::InvalidArgument(Format(_("{0} is too long"), {sources.env_name}));
    }
    return Passphrase(env);
  }
  if (!::isatty(sources.tty_fd)) {
    return Status::NotFound(
        std::string_view(sources.file_option) == "--passphrase-file"
            ? Format(_("no passphrase: standard input is not a terminal to ask on, and neither "
                       "--passphrase-file nor {0} gives one"),
                     {sources.env_name})
            : Format(_("no passphrase: standard input is not a terminal to ask on, and neither "
                       "{0} nor {1} gives one"),
                     {sources.file_option, sources.env_name}));
  }
  if (purpose == PassphrasePurpose::kUnlock) {
    return PromptOnce(sources.tty_fd, _("Passphrase for this device: "));
  }
  const char* first_prompt = purpose == PassphrasePurpose::kDuress
                                 ? _("Duress passphrase (opening with it destroys the data): ")
                                 : _("New passphrase for this device: ");
  for (int attempt = 0; attempt < kConfirmTries; ++attempt) {
    auto first = PromptOnce(sources.tty_fd, first_prompt);
    if (!first.ok()) return first.status();
    auto second = PromptOnce(sources.tty_fd, _("The same passphrase again: "));
    if (!second.ok()) return second.status();
    if (first->Equals(*second)) return std::move(first).value();
    std::fputs(_("The two passphrases differ; try again.\n"), stderr);
  }
  return Status::InvalidArgument(_("the passphrases typed did not match"));
}

// ---- strength of a new passphrase ----------------------------------------------------------

namespace {

// What people are told makes a weak passphrase weak: the kind of zxcvbn
// match that covers most of its characters.
const char* WeaknessReason(const ZxcMatch_t* info) {
  std::map<const char*, int> covered;
  for (const ZxcMatch_t* m = info; m != nullptr; m = m->Next) {
    const char* reason = nullptr;
    switch (static_cast<int>(m->Type) & ~static_cast<int>(MULTIPLE_MATCH)) {
      case DICTIONARY_MATCH:
      case DICT_LEET_MATCH:
        reason = N_("it is made of common words or passwords");
        break;
      case USER_MATCH:
      case USER_LEET_MATCH:
        reason = N_("it holds the team's or this device's name");
        break;
      case REPEATS_MATCH:
        reason = N_("it repeats characters or groups of characters");
        break;
      case SEQUENCE_MATCH:
        reason = N_("it is a sequence such as 123456 or abcdef");
        break;
      case SPATIAL_MATCH:
        reason = N_("it follows the keyboard, such as qwerty");
        break;
      case DATE_MATCH:
      case YEAR_MATCH:
        reason = N_("it holds dates or years");
        break;
      default:
        break;
    }
    if (reason != nullptr) covered[reason] += m->Length < 0 ? -m->Length : m->Length;
  }
  const char* most = N_("it has too few characters that are hard to guess");
  int most_covered = 0;
  for (const auto& [reason, chars] : covered) {
    if (chars > most_covered) {
      most = reason;
      most_covered = chars;
    }
  }
  return most;
}

// zxcvbn over a NUL-terminated copy of `passphrase` in guarded memory; the
// match list goes to `info` when it is not null (ZxcvbnFreeInfo). zxcvbn-c
// wipes its own reversed copy before freeing it.
double Zxcvbn(std::string_view passphrase, const std::vector<std::string>& known_words,
              ZxcMatch_t** info) {
  std::vector<const char*> words = {"enlace"};
  for (const std::string& w : known_words) {
    if (!w.empty()) words.push_back(w.c_str());
  }
  words.push_back(nullptr);
  char* text = static_cast<char*>(sodium_malloc(passphrase.size() + 1));
  if (text == nullptr) throw std::bad_alloc();
  std::memcpy(text, passphrase.data(), passphrase.size());
  text[passphrase.size()] = '\0';
  const double bits = ZxcvbnMatch(text, words.data(), info);
  sodium_free(text);  // wipes
  return bits;
}

size_t CodePoints(std::string_view text) {
  size_t n = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

double PassphraseEntropyBits(std::string_view passphrase,
                             const std::vector<std::string>& known_words) {
  return Zxcvbn(passphrase, known_words, nullptr);
}

Status CheckNewPassphrase(std::string_view passphrase,
                          const std::vector<std::string>& known_words) {
  const size_t chars = CodePoints(passphrase);
  if (chars < kMinPassphraseChars) {
    return Status::InvalidArgument(
        Format(_("the passphrase is too short: {0} characters, and at least {1} are needed. Use "
                 "four or more words, such as a short sentence only you would say"),
               {std::to_string(chars), std::to_string(kMinPassphraseChars)}));
  }
  ZxcMatch_t* info = nullptr;
  const double bits = Zxcvbn(passphrase, known_words, &info);
  const char* reason = WeaknessReason(info);
  ZxcvbnFreeInfo(info);
  if (bits < kMinPassphraseBits) {
    return Status::InvalidArgument(
        Format(_("the passphrase is too easy to guess: {0}. Use four or more words that do not "
                 "belong together, with no names, dates or well-known phrases"),
               {_(reason)}));
  }
  return Status::Ok();
}

}  // namespace enlace::cli
