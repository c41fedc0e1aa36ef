#include "device.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

#include "enlace/hlc.h"
#include "enlace/local_safety.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;

CliStatus NotInitialised(const std::string& home) {
  return CliStatus::Usage(
      Format(_("{0} is not initialised, run enlace init or enlace join"), {home}));
}

CliStatus RefuseExistingDevice(const std::string& home) {
  return CliStatus::Usage(
      Format(_("{0} already holds a device (vault.bin); use another --home, or move that folder "
               "away to start over"),
             {home}));
}

ReplicaOptions OptionsFor(const Context& ctx) {
  ReplicaOptions o;
  o.dir = ctx.global.home;
  o.kdf = ctx.kdf;
  // Every value is checked against the schema pack before it is written.
  o.hook = TeamSchemaHook();
  return o;
}

}  // namespace

// ---- opening -----------------------------------------------------------------------------------

namespace {

CliStatus Obtain(const PassphraseSources& sources, PassphrasePurpose purpose, Passphrase& out) {
  auto p = ObtainPassphrase(sources, purpose);
  if (!p.ok()) return {kExitLocked, p.status().message()};
  out = std::move(p).value();
  return CliStatus::Ok();
}

// A passphrase other than the device's, from `file` (given as `file_option`),
// the environment variable `env_name`, or the terminal.
PassphraseSources OtherSources(const Context& ctx, const std::string& file, const char* file_option,
                               const char* env_name) {
  PassphraseSources sources{file, std::getenv(env_name), ctx.tty_fd};
  sources.file_option = file_option;
  sources.env_name = env_name;
  return sources;
}

// A new passphrase from `sources` that meets the strength rule
// (CheckNewPassphrase): a weak one typed on the terminal is explained and
// asked again, at most kStrengthTries times in all; a weak one from a file
// or the environment is refused at once. Exit 1 for a weak passphrase.
CliStatus ObtainStrong(const Context& ctx, const PassphraseSources& sources,
                       PassphrasePurpose purpose, const std::vector<std::string>& known_words,
                       Passphrase& out) {
  constexpr int kStrengthTries = 3;
  const bool typed =
      sources.file.empty() && (sources.env_value == nullptr || sources.env_value[0] == '\0');
  for (int attempt = 1;; ++attempt) {
    CLI_RETURN_IF_ERROR(Obtain(sources, purpose, out));
    const Status strong = CheckNewPassphrase(out.view(), known_words);
    if (strong.ok()) return CliStatus::Ok();
    out = Passphrase();
    if (!typed || attempt == kStrengthTries) return CliStatus::Usage(strong.message());
    ctx.output->err() << strong.message() << "\n";
  }
}

}  // namespace

CliStatus ObtainDevicePassphrase(const Context& ctx, PassphrasePurpose purpose, Passphrase& out) {
  return Obtain(PassphraseSources{ctx.global.passphrase_file, ctx.env_passphrase, ctx.tty_fd},
                purpose, out);
}

CliStatus ObtainNewPassphrase(const Context& ctx, const std::string& file,
                              const std::vector<std::string>& known_words, Passphrase& out) {
  return ObtainStrong(ctx, OtherSources(ctx, file, "--new-passphrase-file", kNewPassphraseEnv),
                      PassphrasePurpose::kChange, known_words, out);
}

CliStatus ObtainDuressPassphrase(const Context& ctx, const std::string& file,
                                 const std::vector<std::string>& known_words, Passphrase& out) {
  return ObtainStrong(ctx,
                      OtherSources(ctx, file, "--duress-passphrase-file", kDuressPassphraseEnv),
                      PassphrasePurpose::kDuress, known_words, out);
}

std::vector<std::string> KnownWords(const Config& config) {
  return {config.team_name, config.device_name};
}

bool IsVerifiedCoordinator(Replica& replica) {
  auto coordinator = IsCoordinator(replica);
  return coordinator.ok() && *coordinator;
}

namespace {

// Replica::Open refused store.db's seal (exit 5): what was found, and what
// the owner can do about it.
CliStatus TamperedStore(const std::string& home, LocalTamper finding) {
  const char* message = nullptr;
  switch (finding) {
    case LocalTamper::kAltered:
      message =
          _("{0}/store.db was altered behind this device's back: the team's members, their keys "
            "or the device registry no longer match the seal only this device's vault can make, "
            "so none of it is used. Restore the folder {0} (vault.bin and store.db together) "
            "from a backup of this device, or join the team again with a new invite in another "
            "folder.");
      break;
    case LocalTamper::kSealMissing:
      message =
          _("the seal of {0}/store.db is gone (removed, or the file replaced by one from before "
            "the seal), so its members and keys are not used. Restore the folder {0} (vault.bin "
            "and store.db together) from a backup of this device, or join the team again with a "
            "new invite in another folder.");
      break;
    case LocalTamper::kRolledBack:
    case LocalTamper::kNone:
      message =
          _("{0}/store.db is older than this device's vault: an earlier copy of it was put back, "
            "which could bring back revoked members or withheld keys, so it is not used. Restore "
            "vault.bin and store.db together from the same backup of this device, or join the "
            "team again with a new invite in another folder.");
      break;
  }
  return {kExitData, Format(message, {home})};
}

std::string PinText(const std::string& pin) { return pin.empty() ? _("no pin") : pin; }

// Compares config.json's hub URL and pin with those the device sealed; a
// device that sealed none yet (set up before the seal) seals them now.
CliStatus CheckSealedConfig(const std::string& home, Device& dev) {
  auto sealed = dev.replica->SealedSettings();
  if (!sealed.ok()) return Local(sealed.status());
  if (sealed->empty()) {
    // Trust on first use, once: docs/THREAT_MODEL.md, "local file tamperer".
    auto sealing = dev.replica->SetSealedSettings(SealedPart(dev.config));
    if (!sealing.ok()) return Local(sealing);
    return CliStatus::Ok();
  }
  const auto value = [&](const char* name) {
    const auto it = sealed->find(name);
    return it == sealed->end() ? std::string() : it->second;
  };
  const std::string path = ConfigPath(home);
  if (const std::string hub = value("hub_url"); dev.config.hub_url != hub) {
    return {kExitData,
            Format(_("{0} was altered: it names the hub {1}, but this device was set up for {2}; "
                     "it is not used. If you did not change it, put the file back as it was "
                     "(from a backup, or by hand). To move this device to another hub, run: "
                     "enlace config hub URL [--pin PIN]"),
                   {path, dev.config.hub_url, hub})};
  }
  if (const std::string pin = value("tls_pin"); dev.config.tls_pin != pin) {
    return {kExitData,
            Format(_("{0} was altered: its TLS pin is {1}, but this device was set up with {2}; "
                     "it is not used. If you did not change it, put the file back as it was "
                     "(from a backup, or by hand). To change the pin, run: enlace config hub "
                     "URL --pin PIN"),
                   {path, PinText(dev.config.tls_pin), PinText(pin)})};
  }
  return CliStatus::Ok();
}

}  // namespace

CliStatus SaveSealedConfig(const std::string& home, Replica& replica, const Config& config) {
  // Sealed first: a config.json written without its seal would be refused.
  if (Status s = replica.SetSealedSettings(SealedPart(config)); !s.ok()) return Local(s);
  if (Status s = SaveConfig(home, config); !s.ok()) return Local(s);
  return CliStatus::Ok();
}

CliStatus OpenDevice(const Context& ctx, Device& out, ConfigCheck check) {
  const std::string& home = ctx.global.home;
  if (!HasVault(home)) return NotInitialised(home);
  auto config = LoadConfig(home);
  if (!config.ok()) {
    if (config.status().code() == StatusCode::kNotFound) {
      return CliStatus::Usage(
          Format(_("{0} holds a vault but no config.json (an interrupted init or join?); it is "
                   "not initialised, run enlace init or enlace join with another --home"),
                 {home}));
    }
    return CliStatus::From(ErrorSource::kLocal, config.status());
  }
  Passphrase passphrase;
  CLI_RETURN_IF_ERROR(ObtainDevicePassphrase(ctx, PassphrasePurpose::kUnlock, passphrase));
  auto replica = Replica::Open(OptionsFor(ctx), passphrase.view());
  if (!replica.ok()) {
    // Also the unlock back-off and wipe-after-N (LockedDevice).
    if (replica.status().code() == StatusCode::kWrongPassphrase) return LockedDevice(home);
    if (const LocalTamper found = LocalTamperOf(replica.status()); found != LocalTamper::kNone) {
      return TamperedStore(home, found);
    }
    return CliStatus::From(ErrorSource::kLocal, replica.status().WithContext(Format(
                                                    _("cannot open the device in {0}"), {home})));
  }
  out.config = std::move(config).value();
  out.replica = std::move(replica).value();
  // The duress passphrase: the data is gone; make the config look fresh too.
  if (out.replica->opened_under_duress()) {
    CLI_RETURN_IF_ERROR(ResetConfigAfterDuress(home, *out.replica, out.config));
  }
  if (check == ConfigCheck::kRequire) CLI_RETURN_IF_ERROR(CheckSealedConfig(home, out));
  return CliStatus::Ok();
}

// ---- after unlocking ---------------------------------------------------------------------------

CliStatus ResetConfigAfterDuress(const std::string& home, Replica& replica, Config& config) {
  Config fresh{config.hub_url, config.tls_pin, "", config.device_name, "field"};
  (void)WipeConfig(home);
  CLI_RETURN_IF_ERROR(SaveSealedConfig(home, replica, fresh));
  config = std::move(fresh);
  return CliStatus::Ok();
}

CliStatus LockedDevice(const std::string& home) {
  if (!HasVault(home)) {
    (void)WipeConfig(home);
    return {kExitLocked,
            Format(_("wrong passphrase too many times in a row: the data in {0} was destroyed"),
                   {home})};
  }
  const UnlockThrottle t = ReadUnlockThrottle(home, SystemWallClockMs());
  if (t.wait_ms > 0) {
    return {kExitLocked,
            Format(_("the vault in {0} stays locked after {1} wrong passphrases in a row; wait "
                     "{2} seconds before the next attempt"),
                   {home, std::to_string(t.failures), std::to_string((t.wait_ms + 999) / 1000)})};
  }
  return {kExitLocked, Format(_("wrong passphrase: the vault in {0} stays locked"), {home})};
}

// ---- a new device ------------------------------------------------------------------------------

NewDevice::~NewDevice() {
  replica_.reset();  // closed before its files go
  if (!remove_) return;
  std::error_code ec;
  for (const char* f : {"vault.bin", "vault.bin.tmp", "store.db", "store.db-wal", "store.db-shm",
                        "store.db-journal", "config.json", "config.json.tmp"}) {
    std::filesystem::remove(std::filesystem::path(home_) / f, ec);
  }
  if (!existed_) std::filesystem::remove(home_, ec);  // only if empty
}

CliStatus NewDevice::Create(const Context& ctx, const std::vector<std::string>& known_words,
                            bool duress, const std::string& duress_file) {
  const std::string& home = ctx.global.home;
  if (HasVault(home)) return RefuseExistingDevice(home);

  Passphrase passphrase;
  CLI_RETURN_IF_ERROR(ObtainStrong(
      ctx, PassphraseSources{ctx.global.passphrase_file, ctx.env_passphrase, ctx.tty_fd},
      PassphrasePurpose::kCreate, known_words, passphrase));
  Passphrase duress_passphrase;
  if (duress) {
    CLI_RETURN_IF_ERROR(ObtainDuressPassphrase(ctx, duress_file, known_words, duress_passphrase));
    if (duress_passphrase.Equals(passphrase)) {
      return CliStatus::Usage(_("the duress passphrase must differ from the device passphrase"));
    }
  }

  // From here on, what goes wrong leaves the home as it was.
  home_ = home;
  std::error_code ec;
  existed_ = std::filesystem::exists(home_, ec);
  remove_ = true;
  auto created = Replica::Create(OptionsFor(ctx), passphrase.view());
  if (!created.ok()) return Local(created.status().WithContext(_("cannot create the device")));
  replica_ = std::move(created).value();
  if (duress) {
    if (Status s = replica_->SetDuressPassphrase(duress_passphrase.view()); !s.ok()) {
      return Local(s);
    }
  }
  return CliStatus::Ok();
}

CliStatus NewDevice::Keep(const Config& config) {
  CLI_RETURN_IF_ERROR(SaveSealedConfig(home_, *replica_, config));
  remove_ = false;
  return CliStatus::Ok();
}

}  // namespace enlace::cli
