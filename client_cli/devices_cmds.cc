#include "devices_cmds.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "enlace/i18n.h"
#include "enlace/team.h"
#include "i18n_cli.h"
#include "output.h"

namespace enlace::cli {

using i18n::Format;

namespace {

std::string StateOf(const Member& m) {
  if (m.revoked) return Format(_("revoked {0}"), {FormatIsoUtc(m.revoked_ms)});
  if (m.pending) return _("waiting for approval");
  return _("active");
}

// The member `word` names: a full id, an id prefix of 4+ hex characters, or
// an exact device name. Usage error when none or several match.
CliStatus FindMember(const std::vector<Member>& members, const std::string& word, Member& out) {
  std::vector<const Member*> hits;
  const bool hex = word.size() >= 4 && word.size() <= 32 &&
                   word.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  std::string lower = word;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& m : members) {
    if ((hex && m.device.ToHex().rfind(lower, 0) == 0) || m.name == word) hits.push_back(&m);
  }
  if (hits.empty()) {
    return CliStatus::Usage(Format(_("no device of this team matches {0} (see: enlace devices "
                                     "list)"),
                                   {word}));
  }
  if (hits.size() > 1) {
    return CliStatus::Usage(Format(_("{0} matches {1} devices; give more of the id"),
                                   {word, std::to_string(hits.size())}));
  }
  out = *hits.front();
  return CliStatus::Ok();
}

// Open, sync, change (signed here), sync to deliver. The change is retried
// once more after a fresh sync when the hub refuses it (e.g. the revoked
// device had sent writes this device had not seen yet).
CliStatus SignedChange(Context& ctx, const DevicesArgs& args,
                       const std::function<CliStatus(Device&, const std::vector<Member>&)>& change,
                       Device& dev) {
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  const HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
  SyncProgress progress;
  for (int attempt = 0; attempt < 3; ++attempt) {
    CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, progress));
    auto members = Members(*dev.replica);
    if (!members.ok()) return Local(members.status());
    CLI_RETURN_IF_ERROR(change(dev, *members));
    CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, progress));
    if (progress.registry_refused.empty()) return CliStatus::Ok();
  }
  return {kExitRejected, Format(_("the hub refused the device registry change: {0}"),
                                {progress.registry_refused})};
}

// A SignedChange to the member args.device names (FindMember): `change` gets
// it, and so does `target`.
CliStatus ChangeMember(Context& ctx, const DevicesArgs& args,
                       const std::function<CliStatus(Replica&, const Member&)>& change, Device& dev,
                       Member& target) {
  const auto find_and_change = [&](Device& d, const std::vector<Member>& members) -> CliStatus {
    CLI_RETURN_IF_ERROR(FindMember(members, args.device, target));
    return change(*d.replica, target);
  };
  return SignedChange(ctx, args, find_and_change, dev);
}

}  // namespace

CliStatus RunDevicesList(Context& ctx) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto members = Members(*dev.replica);
  if (!members.ok()) return Local(members.status());
  auto pending_change = RegistryChangePending(*dev.replica);
  if (!pending_change.ok()) return Local(pending_change.status());
  const DeviceId self = dev.replica->device_id();
  if (ctx.output->json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : *members) {
      list.push_back({{"id", m.device.ToHex()},
                      {"name", m.name},
                      {"role", RoleName(m.role)},
                      {"state", m.revoked   ? "revoked"
                                : m.pending ? "pending"
                                            : "active"},
                      {"revoked_ms", m.revoked_ms},
                      {"revoked_after", m.revoked_after},
                      {"this_device", m.device == self}});
    }
    ctx.output->Json({{"devices", list}, {"change_not_sent", *pending_change}});
    return CliStatus::Ok();
  }
  size_t width = DisplayWidth(_("NAME"));
  for (const auto& m : *members) width = std::max(width, DisplayWidth(m.name));
  auto pad = [width](const std::string& s) {
    return s + std::string(width + 2 - std::min(width, DisplayWidth(s)), ' ');
  };
  ctx.output->Line(pad(_("NAME")) + _("ID        ROLE          STATE"));
  for (const auto& m : *members) {
    std::string role = RoleLabel(RoleName(m.role));
    role += std::string(14 - std::min<size_t>(13, DisplayWidth(role)), ' ');
    std::string line = pad(m.name) + ShortHex(m.device) + "  " + role + StateOf(m);
    if (m.device == self) line += _(" (this device)");
    ctx.output->Line(line);
  }
  if (*pending_change) {
    ctx.output->Note(
        _("a registry change signed here has not reached the hub yet: run enlace "
          "sync"));
  }
  ctx.output->Note(_("as of this device's last sync"));
  return CliStatus::Ok();
}

CliStatus RunDevicesApprove(Context& ctx, const DevicesArgs& args) {
  Device dev;
  Member target;
  const auto approve = [](Replica& replica, const Member& m) -> CliStatus {
    if (Status s = ApproveDevice(replica, m.device); !s.ok()) return Local(s);
    return CliStatus::Ok();
  };
  CLI_RETURN_IF_ERROR(ChangeMember(ctx, args, approve, dev, target));
  ctx.output->Line(Format(_("approved {0}: it can now sync with the team"), {target.name}));
  return CliStatus::Ok();
}

CliStatus RunDevicesRevoke(Context& ctx, const DevicesArgs& args) {
  Device dev;
  Member target;
  const auto revoke = [](Replica& replica, const Member& m) -> CliStatus {
    if (m.device == replica.device_id()) {
      return CliStatus::Usage(_("a device cannot revoke itself; ask another coordinator"));
    }
    if (Status s = RevokeDevice(replica, m.device); !s.ok()) return Local(s);
    return CliStatus::Ok();
  };
  CLI_RETURN_IF_ERROR(ChangeMember(ctx, args, revoke, dev, target));
  uint32_t key_version = 0;
  if (args.rotate) {
    auto v = RotateTeamKey(*dev.replica);
    if (!v.ok()) return Local(v.status());
    key_version = *v;
    SyncProgress progress;
    const HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
    CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, progress));
  }
  if (ctx.output->json()) {
    ctx.output->Json(
        {{"revoked", target.device.ToHex()}, {"name", target.name}, {"key_version", key_version}});
    return CliStatus::Ok();
  }
  ctx.output->Line(Format(_("revoked {0} ({1}): the hub refuses it from now on, and it destroys "
                            "its data on its next contact"),
                          {target.name, ShortHex(target.device)}));
  if (key_version != 0) {
    ctx.output->Line(Format(_("new team key version {0} sealed to the remaining devices; the "
                              "revoked device cannot read what is written from now on"),
                            {std::to_string(key_version)}));
  } else {
    ctx.output->Note(
        _("the team key was not rotated (--no-rotate): the revoked device could "
          "still read new writes if it got them"));
  }
  return CliStatus::Ok();
}

CliStatus RunDevicesRename(Context& ctx, const DevicesArgs& args) {
  Device dev;
  Member target;
  const auto rename = [&](Replica& replica, const Member& m) -> CliStatus {
    if (Status s = RenameDevice(replica, m.device, args.name); !s.ok()) {
      return s.code() == StatusCode::kInvalidArgument ? CliStatus::Usage(s.message()) : Local(s);
    }
    return CliStatus::Ok();
  };
  CLI_RETURN_IF_ERROR(ChangeMember(ctx, args, rename, dev, target));
  ctx.output->Line(Format(_("renamed {0} to {1}"), {target.name, args.name}));
  return CliStatus::Ok();
}

CliStatus RunDevicesRotateKey(Context& ctx, const DevicesArgs& args) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  const HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
  SyncProgress progress;
  CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, progress));
  auto v = RotateTeamKey(*dev.replica);
  if (!v.ok()) return Local(v.status());
  CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, progress));
  ctx.output->Line(
      Format(_("new team key version {0} sealed to every active device"), {std::to_string(*v)}));
  return CliStatus::Ok();
}

CliStatus RunDevicesRequireApproval(Context& ctx, const DevicesArgs& args) {
  if (args.setting != "on" && args.setting != "off") {
    return CliStatus::Usage(Format(_("give on or off, not {0}"), {args.setting}));
  }
  const bool on = args.setting == "on";
  Device dev;
  const auto change = [&](Device& d, const std::vector<Member>&) -> CliStatus {
    if (Status s = SetApprovalRequired(*d.replica, on); !s.ok()) return Local(s);
    return CliStatus::Ok();
  };
  CLI_RETURN_IF_ERROR(SignedChange(ctx, args, change, dev));
  ctx.output->Line(on ? _("devices joining by invite now wait for a coordinator's approval "
                          "(enlace devices approve)")
                      : _("devices joining by invite are members at once"));
  return CliStatus::Ok();
}

}  // namespace enlace::cli
