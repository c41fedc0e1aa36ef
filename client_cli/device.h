// The device in a home folder, as every command meets it: the context a
// command runs with, opening (unlocking) the device, what follows a duress
// unlock or a locked vault, and making a new device (init, join).
#ifndef ENLACE_CLIENT_CLI_DEVICE_H_
#define ENLACE_CLIENT_CLI_DEVICE_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cli_status.h"
#include "config.h"
#include "enlace/replica.h"
#include "output.h"
#include "passphrase.h"
#include "transport.h"

namespace enlace::cli {

struct GlobalOptions {
  std::string home;  // resolved: never empty when a command runs
  bool json = false;
  std::string passphrase_file;  // --passphrase-file
};

// What a command runs with; every part can be replaced in tests.
struct Context {
  GlobalOptions global;
  Output* output = nullptr;
  HttpClient* http = nullptr;
  RetryPolicy retry;                       // ENLACE_RETRY_BASE_MS shrinks base_ms
  KdfCost kdf = KdfCost::Interactive();    // ENLACE_KDF
  const char* env_passphrase = nullptr;    // ENLACE_PASSPHRASE
  int tty_fd = 0;                          // where to prompt for a passphrase
  std::function<void(uint64_t)> sleep_ms;  // between retries
  std::function<double()> unit_random;     // jitter in [0, 1)
  bool progress = false;                   // stderr is a terminal: show progress
  bool clock_warned = false;               // the clock warning is printed once
  std::istream* input = nullptr;           // answers to guided capture
  bool interactive = false;                // stdin is a terminal: guided capture asks
};

// An unlocked device: its config and its replica.
struct Device {
  Config config;
  std::unique_ptr<Replica> replica;
};

// Whether OpenDevice compares config.json with what the device sealed.
enum class ConfigCheck { kRequire, kSkip };

// Loads the config and unlocks the replica of an initialised home (exit 1
// when not initialised, 2 for a wrong passphrase). Exit 5, saying what was
// altered and what to do, when store.db's trust state was edited, lost its
// seal or was rolled back (Replica::Open, LocalTamperOf), or when
// config.json's hub URL or TLS pin differ from those the device sealed;
// nothing of either is used then. A device set up before config.json was
// sealed has it sealed as it is (trust on first use, once). kSkip leaves
// config.json unchecked: for `enlace config hub`, which replaces both.
CliStatus OpenDevice(const Context& ctx, Device& out, ConfigCheck check = ConfigCheck::kRequire);

// Seals `config`'s hub URL and pin in `replica` (SealedPart), then writes
// it as <home>/config.json (exit 5 when either fails).
CliStatus SaveSealedConfig(const std::string& home, Replica& replica, const Config& config);

// Whether the device's verified registry lists it as an active coordinator
// (enlace/team.h, IsCoordinator). The role in config.json is only a label:
// anyone with the folder can edit it.
bool IsVerifiedCoordinator(Replica& replica);

// The device passphrase from --passphrase-file, ENLACE_PASSPHRASE or the
// terminal, asked as `purpose` wants; exit 2 when none can be had.
CliStatus ObtainDevicePassphrase(const Context& ctx, PassphrasePurpose purpose, Passphrase& out);

// The new passphrase for `passphrase change` (from `file`,
// ENLACE_NEW_PASSPHRASE, or asked twice on the terminal); exit 2 when none
// can be had. Like every new passphrase it must be strong enough
// (CheckNewPassphrase, `known_words` as the team's and device's names): a
// weak one typed on the terminal is explained and asked again (three times
// in all), one from a file or the environment is refused; exit 1 then.
CliStatus ObtainNewPassphrase(const Context& ctx, const std::string& file,
                              const std::vector<std::string>& known_words, Passphrase& out);

// The duress passphrase for `init --duress` or `passphrase duress`; exit 2
// when none can be had, 1 when it is weak (as ObtainNewPassphrase).
CliStatus ObtainDuressPassphrase(const Context& ctx, const std::string& file,
                                 const std::vector<std::string>& known_words, Passphrase& out);

// The names a new passphrase must not lean on: the team's and the device's
// (CheckNewPassphrase adds "enlace").
std::vector<std::string> KnownWords(const Config& config);

// After Replica::Open returned a fresh replica because the duress passphrase
// was given: config.json is wiped (WipeFiles) and rewritten as a device that
// never joined a team would have it (same hub URL, pin and device name; no
// team name; role field), sealed in `replica`. `config` becomes that config.
// Prints nothing.
CliStatus ResetConfigAfterDuress(const std::string& home, Replica& replica, Config& config);

// The error for a kWrongPassphrase from Replica::Open in `home`: says when
// the next attempt is allowed, or, when the failures reached the wipe
// threshold and the vault is gone, that the data was destroyed (and then
// wipes config.json too, so the home looks never initialised).
CliStatus LockedDevice(const std::string& home);

// A device that init or join is making. Until Keep succeeds, destroying it
// removes what making it put in the home, so a failed init or join can
// simply be run again.
class NewDevice {
 public:
  NewDevice() = default;
  ~NewDevice();
  NewDevice(const NewDevice&) = delete;
  NewDevice& operator=(const NewDevice&) = delete;

  // Makes the device in ctx.global.home: refuses a home that already holds
  // one (exit 1), asks for the new passphrase and, with `duress`, for a
  // duress passphrase that must differ (from `duress_file`,
  // ENLACE_DURESS_PASSPHRASE or the terminal; exit 2 when either cannot be
  // had, 1 when they are the same or either is weak: CheckNewPassphrase with
  // `known_words`, the team's and device's names), then creates the replica
  // (exit 5).
  CliStatus Create(const Context& ctx, const std::vector<std::string>& known_words,
                   bool duress = false, const std::string& duress_file = "");

  // After Create succeeded.
  Replica& replica() const { return *replica_; }

  // Seals the config's hub and pin and saves config.json
  // (SaveSealedConfig); from then on the device stays.
  CliStatus Keep(const Config& config);

 private:
  std::string home_;
  bool existed_ = false;  // the home folder was there before Create
  bool remove_ = false;   // on destruction, remove what Create put in the home
  std::unique_ptr<Replica> replica_;
};

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_DEVICE_H_
