// The outcome of a command: ok, or an exit code and a message for people.
// Every exit code follows one table (ExitCodeFor):
//   0 ok, 1 usage, 2 locked, 3 hub unreachable, 4 rejected by the hub,
//   5 data error.
#ifndef ENLACE_CLIENT_CLI_CLI_STATUS_H_
#define ENLACE_CLIENT_CLI_CLI_STATUS_H_

#include <string>
#include <utility>

#include "enlace/status.h"

namespace enlace::cli {

// ---- exit codes ----------------------------------------------------------------------------

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;        // bad command line, home not initialised
inline constexpr int kExitLocked = 2;       // wrong or missing passphrase
inline constexpr int kExitUnreachable = 3;  // hub unreachable after every retry
inline constexpr int kExitRejected = 4;     // the hub said no, or is not the pinned hub
inline constexpr int kExitData = 5;         // the local data or a value is wrong

// Where an error arose: the same StatusCode means different things coming
// from the local core (kNotFound: no such record) and from the hub (404).
enum class ErrorSource {
  kUsage,    // the command line or the home folder
  kLocal,    // the core, on this device's data
  kHub,      // the hub's answer (StatusFromHubResponse)
  kNetwork,  // the transport (HttpClient errors)
};

// The one table from (source, code) to exit code.
int ExitCodeFor(ErrorSource source, StatusCode code);

// The outcome of a command: ok, or an exit code and a message for people.
class [[nodiscard]] CliStatus {
 public:
  CliStatus() = default;
  CliStatus(int exit_code, std::string message)
      : exit_code_(exit_code), message_(std::move(message)) {}
  static CliStatus Ok() { return {}; }
  static CliStatus Usage(std::string message) { return {kExitUsage, std::move(message)}; }
  // `status` must not be ok.
  static CliStatus From(ErrorSource source, const Status& status) {
    return {ExitCodeFor(source, status.code()), status.message()};
  }

  bool ok() const { return exit_code_ == kExitOk; }
  int exit_code() const { return exit_code_; }
  const std::string& message() const { return message_; }

 private:
  int exit_code_ = kExitOk;
  std::string message_;
};

// A core error about this device's data (exit code per ExitCodeFor).
CliStatus Local(const Status& s);

#define CLI_RETURN_IF_ERROR(expr)              \
  do {                                         \
    CliStatus cli_status_ = (expr);            \
    if (!cli_status_.ok()) return cli_status_; \
  } while (0)

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_CLI_STATUS_H_
