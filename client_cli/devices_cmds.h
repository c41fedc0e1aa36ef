// `enlace devices`: the team's device registry (list, approve, revoke,
// rename, rotate-key, require-approval). Changes are signed by this
// coordinator's device and take effect when the hub stores them, so each
// change command syncs before (to sign on top of the newest registry and
// writes) and after (to deliver it).
#ifndef ENLACE_CLIENT_CLI_DEVICES_CMDS_H_
#define ENLACE_CLIENT_CLI_DEVICES_CMDS_H_

#include <string>

#include "commands.h"

namespace enlace::cli {

struct DevicesArgs {
  std::string device;    // an id, an id prefix (4+ hex) or a device name
  std::string name;      // rename: the new name
  std::string setting;   // require-approval: on|off
  bool rotate = true;    // revoke: also rotate the team key
  int max_attempts = 6;  // per sync round
};

CliStatus RunDevicesList(Context& ctx);
CliStatus RunDevicesApprove(Context& ctx, const DevicesArgs& args);
CliStatus RunDevicesRevoke(Context& ctx, const DevicesArgs& args);
CliStatus RunDevicesRename(Context& ctx, const DevicesArgs& args);
CliStatus RunDevicesRotateKey(Context& ctx, const DevicesArgs& args);
CliStatus RunDevicesRequireApproval(Context& ctx, const DevicesArgs& args);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_DEVICES_CMDS_H_
