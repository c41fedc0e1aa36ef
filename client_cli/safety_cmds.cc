#include "safety_cmds.h"

#include <sodium.h>

#include <cstring>
#include <filesystem>
#include <istream>
#include <new>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "config.h"
#include "enlace/local_safety.h"
#include "enlace/replica.h"
#include "i18n_cli.h"
#include "passphrase.h"

namespace enlace::cli {

namespace {

using i18n::Format;

constexpr char kConfigFile[] = "config.json";

// What a home may hold, named in panic's report when present.
const std::vector<std::string>& HomeFiles() {
  static const std::vector<std::string> kFiles = {
      "vault.bin",    "vault.bin.tmp",    "store.db",      "store.db-wal",
      "store.db-shm", "store.db-journal", "overlay.write", "overlay.write.tmp",
      "unlock.state", "unlock.state.tmp", kConfigFile,     "config.json.tmp"};
  return kFiles;
}

std::string Trim(std::string s) {
  const auto not_space = [](unsigned char c) { return c != ' ' && c != '\t' && c != '\r'; };
  while (!s.empty() && !not_space(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && !not_space(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

// A NUL-terminated copy of a passphrase in guarded memory, wiped on
// destruction: lets OpenDevice take a passphrase already obtained (as if it
// came from the environment) so the terminal asks only once.
class GuardedCString {
 public:
  explicit GuardedCString(std::string_view text) {
    data_ = static_cast<char*>(sodium_malloc(text.size() + 1));
    if (data_ == nullptr) throw std::bad_alloc();
    std::memcpy(data_, text.data(), text.size());
    data_[text.size()] = '\0';
  }
  ~GuardedCString() { sodium_free(data_); }
  GuardedCString(const GuardedCString&) = delete;
  GuardedCString& operator=(const GuardedCString&) = delete;
  const char* c_str() const { return data_; }

 private:
  char* data_ = nullptr;
};

// The vault refuses the passphrase given (kInvalidArgument): a usage error,
// `refused`; anything else is about the data.
CliStatus PassphraseRefused(const Status& s, const char* refused) {
  if (s.code() == StatusCode::kInvalidArgument) return CliStatus::Usage(refused);
  return Local(s);
}

// OpenDevice with a passphrase already in hand.
CliStatus OpenWith(const Context& ctx, const Passphrase& passphrase, Device& dev) {
  const GuardedCString text(passphrase.view());
  Context with = ctx;
  with.global.passphrase_file.clear();
  with.env_passphrase = text.c_str();
  return OpenDevice(with, dev);
}

}  // namespace

// ---- panic ---------------------------------------------------------------------------------

CliStatus RunPanic(Context& ctx, const PanicArgs& args) {
  const std::string& home = ctx.global.home;
  std::vector<std::string> present;
  for (const std::string& name : HomeFiles()) {
    std::error_code ec;
    if (std::filesystem::exists(
            std::filesystem::symlink_status(std::filesystem::path(home) / name, ec))) {
      present.push_back(name);
    }
  }
  if (present.empty()) {
    if (ctx.output->json()) {
      ctx.output->Json({{"home", home}, {"destroyed", nlohmann::json::array()}});
    } else {
      ctx.output->Line(Format(_("Nothing to destroy: {0} holds no enlace device."), {home}));
    }
    return CliStatus::Ok();
  }

  if (!args.yes) {
    const std::string word = _("DESTROY");
    ctx.output->err() << Format(_("This destroys the enlace device in {0} now, without the "
                                  "passphrase and without the network: its keys, every record "
                                  "and every write not yet sent (unsent writes are lost).\n"
                                  "Type {1} and press Enter to go on: "),
                                {home, word});
    ctx.output->err().flush();
    std::string typed;
    if (ctx.input == nullptr || !std::getline(*ctx.input, typed) || Trim(typed) != word) {
      return CliStatus::Usage(Format(_("nothing was destroyed: {0} was not typed"), {word}));
    }
  }

  // The replica's files first (the keys go with vault.bin), then the config.
  const Status replica_wiped = WipeReplicaFiles(home);
  const Status config_wiped = WipeConfig(home);
  const Status& failed = !replica_wiped.ok() ? replica_wiped : config_wiped;
  if (!failed.ok()) {
    return {kExitData,
            Format(_("destroying the device in {0} failed: {1}"), {home, failed.message()})};
  }
  if (ctx.output->json()) {
    ctx.output->Json({{"home", home}, {"destroyed", present}, {"unsent_writes", "lost"}});
  } else {
    std::string list;
    for (const auto& name : present) list += (list.empty() ? "" : ", ") + name;
    ctx.output->Line(Format(_("Destroyed in {0} (overwritten, then deleted): {1}."), {home, list}));
    ctx.output->Line(
        _("Unsent writes are lost: without the passphrase they could not be counted."));
    ctx.output->Line(
        _("This folder now holds no enlace device; records already synced stay on "
          "the hub and the team's other devices."));
  }
  return CliStatus::Ok();
}

// ---- passphrase change, duress, wipe-after --------------------------------------------------

CliStatus RunPassphraseChange(Context& ctx, const PassphraseChangeArgs& args) {
  Passphrase current;
  CLI_RETURN_IF_ERROR(ObtainDevicePassphrase(ctx, PassphrasePurpose::kUnlock, current));
  Device dev;
  CLI_RETURN_IF_ERROR(OpenWith(ctx, current, dev));
  Passphrase next;
  CLI_RETURN_IF_ERROR(
      ObtainNewPassphrase(ctx, args.new_passphrase_file, KnownWords(dev.config), next));
  if (Status s = dev.replica->ChangePassphrase(current.view(), next.view()); !s.ok()) {
    return PassphraseRefused(
        s, _("the new passphrase cannot be the duress passphrase; nothing was changed"));
  }
  ctx.output->Result({{"changed", true}},
                     _("The passphrase of this device was changed; the old one no longer opens "
                       "it."));
  return CliStatus::Ok();
}

CliStatus RunPassphraseDuress(Context& ctx, const DuressArgs& args) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  Passphrase duress;
  CLI_RETURN_IF_ERROR(
      ObtainDuressPassphrase(ctx, args.duress_passphrase_file, KnownWords(dev.config), duress));
  if (Status s = dev.replica->SetDuressPassphrase(duress.view()); !s.ok()) {
    return PassphraseRefused(s, _("the duress passphrase must differ from the device passphrase"));
  }
  ctx.output->Result({{"duress", true}},
                     _("Duress passphrase set. Opening this device with it destroys its data "
                       "and shows an empty device, which it then stays."));
  return CliStatus::Ok();
}

CliStatus RunPassphraseWipeAfter(Context& ctx, uint32_t n) {
  if (n == 1 || n == 2) {
    return CliStatus::Usage(_("wipe-after must be 0 (off) or at least 3"));
  }
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  if (Status s = dev.replica->SetWipeAfterFailures(n); !s.ok()) return Local(s);
  ctx.output->Result(
      {{"wipe_after", n}},
      n == 0 ? _("Wrong passphrases no longer destroy the data of this device.")
             : Format(_("The data of this device will be destroyed after {0} wrong passphrases "
                        "in a row."),
                      {std::to_string(n)}));
  return CliStatus::Ok();
}

}  // namespace enlace::cli
