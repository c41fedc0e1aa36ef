// `enlace-hub admin verify`: checks every write the hub stores against the
// devices it registered, without any team key (issue 5). A hub whose
// database was altered (a flipped byte, a forged or swapped write) is caught
// here by its operator, and by every device that pulls the write.
#ifndef ENLACE_SERVER_HUB_VERIFY_H_
#define ENLACE_SERVER_HUB_VERIFY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "hub_storage.h"

namespace enlace::hub {

// One stored write that does not check out.
struct VerifyFailure {
  uint64_t seq = 0;
  TeamId team;      // the row's team
  DeviceId device;  // the row's device
  std::string reason;
};

struct VerifySummary {
  uint64_t checked = 0;
  uint64_t failed = 0;
  uint64_t missing_numbers = 0;  // devices whose promised write numbers are not all stored
};

// Checks every stored write in log order: it decodes; its team, device and
// write number are the row's; its writer is a device of that team on this
// hub; its signature verifies under that device's signing key; its
// collection and record are the row's (what /v1/history selects by). Calls
// `on_failure` for each write that fails, then (seq 0) for each device whose
// writes that check out promised write numbers the hub does not store
// (docs/PROTOCOL.md §6.11). Errors only when the storage fails.
Result<VerifySummary> VerifyStoredWrites(
    HubStorage& storage, const std::function<void(const VerifyFailure&)>& on_failure);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_HUB_VERIFY_H_
