#include "cli_status.h"

namespace enlace::cli {

int ExitCodeFor(ErrorSource source, StatusCode code) {
  if (code == StatusCode::kOk) return kExitOk;
  switch (source) {
    case ErrorSource::kUsage:
      return kExitUsage;
    case ErrorSource::kLocal:
      // Everything the core says about this device's data is a data error,
      // except the locked vault.
      return code == StatusCode::kWrongPassphrase ? kExitLocked : kExitData;
    case ErrorSource::kHub:
      // 5xx and 429 (kUnavailable) are retried first; still failing, the
      // hub is as good as unreachable. Every other refusal is a rejection.
      return code == StatusCode::kUnavailable ? kExitUnreachable : kExitRejected;
    case ErrorSource::kNetwork:
      switch (code) {
        case StatusCode::kUnavailable:
          return kExitUnreachable;
        case StatusCode::kInvalidArgument:
          return kExitUsage;
        default:
          return kExitRejected;  // pin mismatch, untrusted certificate: unsafe
      }
  }
  return kExitData;
}

CliStatus Local(const Status& s) { return CliStatus::From(ErrorSource::kLocal, s); }

}  // namespace enlace::cli
