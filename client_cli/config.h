// The device's home folder and its non-secret config file.
//
// A home holds the replica (vault.bin, store.db) and config.json: the hub's
// URL and TLS pin, the team and device names and the device's role. Nothing
// in config.json is secret; the passphrase and keys never appear in it. The
// hub URL and pin decide where the device's data goes, so the device also
// seals them in store.db (SealedPart, Replica::SealedSettings) and refuses a
// config.json that names others (OpenDevice); the rest are labels.
#ifndef ENLACE_CLIENT_CLI_CONFIG_H_
#define ENLACE_CLIENT_CLI_CONFIG_H_

#include <map>
#include <string>

#include "enlace/status.h"

namespace enlace::cli {

struct Config {
  std::string hub_url;    // "https://hub.example.org:8443", no trailing slash
  std::string tls_pin;    // "sha256//<base64>" or ""
  std::string team_name;  // "" when unknown (a device that joined by invite)
  std::string device_name;
  std::string role;  // "coordinator" or "field"

  friend bool operator==(const Config&, const Config&) = default;
};

// $XDG_DATA_HOME/enlace when `xdg_data_home` is set and absolute, else
// <home>/.local/share/enlace. Either argument may be null (unset). "" when
// neither gives a folder.
std::string DefaultHome(const char* xdg_data_home, const char* home);

// <home>/config.json
std::string ConfigPath(const std::string& home);
// <home>/vault.bin
std::string VaultPath(const std::string& home);
// True when `home` holds a device vault.
bool HasVault(const std::string& home);

// What of `config` the device seals: {"hub_url", "tls_pin"}.
std::map<std::string, std::string> SealedPart(const Config& config);

// Reads <home>/config.json. kNotFound when it does not exist, kCorruption
// when it is not a JSON object of strings, kIoError when unreadable.
Result<Config> LoadConfig(const std::string& home);

// Writes <home>/config.json atomically (temporary file, fsync, rename),
// mode 0600. kIoError on failure, in which case the old file is intact.
Status SaveConfig(const std::string& home, const Config& config);

// Destroys <home>/config.json and its temporary file (WipeFiles: overwritten,
// then deleted); missing files are fine.
Status WipeConfig(const std::string& home);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_CONFIG_H_
