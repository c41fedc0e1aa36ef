#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "enlace/local_safety.h"
#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;

constexpr size_t kMaxConfigBytes = 64 * 1024;

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

std::string DefaultHome(const char* xdg_data_home, const char* home) {
  // The XDG spec says relative values are invalid and must be ignored.
  if (xdg_data_home != nullptr && xdg_data_home[0] == '/') {
    return (std::filesystem::path(xdg_data_home) / "enlace").string();
  }
  if (home != nullptr && home[0] != '\0') {
    return (std::filesystem::path(home) / ".local" / "share" / "enlace").string();
  }
  return "";
}

std::string ConfigPath(const std::string& home) {
  return (std::filesystem::path(home) / "config.json").string();
}

std::string VaultPath(const std::string& home) {
  return (std::filesystem::path(home) / "vault.bin").string();
}

bool HasVault(const std::string& home) {
  std::error_code ec;
  return std::filesystem::exists(VaultPath(home), ec);
}

std::map<std::string, std::string> SealedPart(const Config& config) {
  return {{"hub_url", config.hub_url}, {"tls_pin", config.tls_pin}};
}

Result<Config> LoadConfig(const std::string& home) {
  const std::string path = ConfigPath(home);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Status::NotFound(Format(_("{0} does not exist"), {path}));
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::IoError(Format(_("cannot read {0}: {1}"), {path, ec.message()}));
  if (size > kMaxConfigBytes) {
    return Status::Corruption(Format(_("{0} is too large to be a config"), {path}));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(Format(_("cannot open {0}: {1}"), {path, ErrnoText()}));
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::Corruption(Format(_("{0} is not a JSON object"), {path}));
  Config c;
  const std::pair<const char*, std::string*> keys[] = {{"hub_url", &c.hub_url},
                                                       {"tls_pin", &c.tls_pin},
                                                       {"team_name", &c.team_name},
                                                       {"device_name", &c.device_name},
                                                       {"role", &c.role}};
  for (const auto& [key, field] : keys) {
    const auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_string()) {
      return Status::Corruption(Format(_("{0}: \"{1}\" is not a string"), {path, key}));
    }
    *field = it->get<std::string>();
  }
  if (c.hub_url.empty()) return Status::Corruption(Format(_("{0} has no hub_url"), {path}));
  return c;
}

Status SaveConfig(const std::string& home, const Config& config) {
  const nlohmann::json j = {{"hub_url", config.hub_url},
                            {"tls_pin", config.tls_pin},
                            {"team_name", config.team_name},
                            {"device_name", config.device_name},
                            {"role", config.role}};
  const std::string text = j.dump(2) + "\n";
  const std::string path = ConfigPath(home);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(Format(_("cannot create {0}: {1}"), {tmp, ErrnoText()}));
  // 0600 also when an interrupted save left the temporary file wider.
  if (::fchmod(fd, 0600) != 0) {
    const std::string err = ErrnoText();
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError(Format(_("cannot create {0}: {1}"), {tmp, err}));
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = ErrnoText();
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IoError(Format(_("cannot write {0}: {1}"), {tmp, err}));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const std::string sync_err = synced ? "" : ErrnoText();
  if (::close(fd) != 0 || !synced) {
    const std::string err = synced ? ErrnoText() : sync_err;
    ::unlink(tmp.c_str());
    return Status::IoError(Format(_("cannot write {0}: {1}"), {tmp, err}));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = ErrnoText();
    ::unlink(tmp.c_str());
    return Status::IoError(Format(_("cannot replace {0}: {1}"), {path, err}));
  }
  return Status::Ok();
}

Status WipeConfig(const std::string& home) {
  return WipeFiles(home, {"config.json", "config.json.tmp"});
}

}  // namespace enlace::cli
