// The enlace commands, and the small pure helpers they share.
//
// Each command opens what it needs (config, replica, hub: device.h), does one
// thing and returns a CliStatus whose exit code follows one table
// (ExitCodeFor, cli_status.h): 0 ok, 1 usage, 2 locked, 3 hub unreachable,
// 4 rejected by the hub, 5 data error.
#ifndef ENLACE_CLIENT_CLI_COMMANDS_H_
#define ENLACE_CLIENT_CLI_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli_status.h"
#include "device.h"
#include "enlace/replica.h"
#include "enlace/status.h"
#include "enlace/sync.h"
#include "transport.h"

namespace enlace::cli {

// ---- pure helpers --------------------------------------------------------------------------

// A value typed on the command line as canonical JSON text: JSON when it
// parses as a number, true/false/null, a "quoted string" or an [array];
// otherwise the text itself as a string (status=Active -> "Active"; an empty
// value is ""). kInvalidArgument for a JSON object, which is not a value.
Result<std::string> ParseValue(std::string_view text);

// Whether a command-line word is a record id: 32 hex characters and no '='.
bool LooksLikeRecordId(std::string_view word);

// "FIELD=VALUE" split at the first '=' and the value parsed (ParseValue).
// kInvalidArgument when there is no '=', the field name is empty or invalid.
Result<std::pair<std::string, std::string>> ParseAssignment(std::string_view word);

// The arguments of `put` after COLLECTION: an optional ID, then FIELD=VALUE
// words (at least one; a field at most once).
struct PutArguments {
  std::optional<RecordId> id;
  Fields fields;
};
Result<PutArguments> ParsePutArguments(const std::vector<std::string>& words);

// "72h", "30m", "7d", "90s" in milliseconds; kInvalidArgument otherwise, or
// when not between one minute and 30 days.
Result<uint64_t> ParseDuration(std::string_view text);

// The Argon2id cost from ENLACE_KDF: unset or "interactive" (the default),
// "moderate", or, only when `allow_minimum`, "min" (Argon2id's cheapest
// cost: a 6-digit PIN falls in minutes). `allow_minimum` is true only in a
// build with ENLACE_TEST_HOOKS (main.cc), the one the tests run. Otherwise,
// and for anything else, kInvalidArgument.
Result<KdfCost> KdfFromEnv(const char* value, bool allow_minimum);

// "N minutes" text for a clock offset warning (hub time - device time), or
// "" when |offset| <= 60 s.
std::string ClockWarning(int64_t offset_ms);

// A role for people ("field" -> "campo" in Spanish); the role's name in
// config.json, JSON output and on the command line stays as it is.
std::string RoleLabel(std::string_view role);

// ---- the commands --------------------------------------------------------------------------

struct InitArgs {
  std::string hub, team, name, pin;
  std::string token_file;              // --token-file: FILE or - (stdin); else asked for
  std::string token_in_argv;           // --token VALUE: refused
  bool duress = false;                 // --duress: also set a duress passphrase
  std::string duress_passphrase_file;  // --duress-passphrase-file
};
struct InviteArgs {
  std::string role = "field";
  std::string expires = "72h";
};
struct JoinArgs {
  std::string code, name;
};
struct PutArgs {
  std::string collection;
  std::vector<std::string> words;  // [ID] FIELD=VALUE...
};
struct RecordArgs {
  std::string collection, id;
};
struct ResolveArgs {
  std::string collection, id, field, value;
};
struct SyncArgs {
  int max_attempts = 6;
  std::string hub;    // overrides the configured hub URL for this run
  bool full = false;  // read the hub's whole log again (RereadLog)
};
struct ConfigHubArgs {
  std::string hub, pin;
};

CliStatus RunInit(Context& ctx, const InitArgs& args);
CliStatus RunInvite(Context& ctx, const InviteArgs& args);
CliStatus RunJoin(Context& ctx, const JoinArgs& args);
CliStatus RunPut(Context& ctx, const PutArgs& args);
CliStatus RunGet(Context& ctx, const RecordArgs& args);
CliStatus RunList(Context& ctx, const std::string& collection);
CliStatus RunDelete(Context& ctx, const RecordArgs& args);
CliStatus RunRestore(Context& ctx, const RecordArgs& args);
CliStatus RunConflicts(Context& ctx);
CliStatus RunResolve(Context& ctx, const ResolveArgs& args);
CliStatus RunSync(Context& ctx, const SyncArgs& args);
CliStatus RunStatus(Context& ctx);
// `enlace config hub URL [--pin PIN]`: seals and saves a new hub URL and pin.
CliStatus RunConfigHub(Context& ctx, const ConfigHubArgs& args);

// ---- talking to the hub --------------------------------------------------------------------

// Sends make_request() to `hub` until an answer that is worth keeping:
// retries connection failures, timeouts, 5xx and 429 with exponential
// backoff (ctx.retry, at most `max_attempts`), and, once, a 401 about the
// request's time after following the hub's clock. Every request is rebuilt
// (and so re-signed with a fresh nonce) so a retry is never a replay. After
// every response, the replica follows the hub's clock and a device whose
// clock is more than a minute off is told so once. Returns the final
// response (any status but the retried ones); exit 3 when every attempt
// failed, 4 for a pin mismatch or an untrusted certificate.
struct Exchanged {
  HttpResponse response;
  int attempts = 0;
};
using RequestFactory = std::function<Result<OutgoingRequest>()>;
CliStatus ExchangeWithHub(Context& ctx, Replica& replica, const HubTarget& hub,
                          const RequestFactory& make_request, int max_attempts, Exchanged& out);

// ExchangeWithHub, then any final answer but 200 as HubRefused(`refused`).
CliStatus RequestFromHub(Context& ctx, Replica& replica, const HubTarget& hub,
                         const RequestFactory& make_request, int max_attempts, const char* refused,
                         Exchanged& out);

// The hub's answer as a Status (StatusFromHubResponse of its status and body).
Status HubStatus(const HttpResponse& response);

// The hub's answer as a failure: `message` (translated, "the hub refused ...:
// {0}") with the hub's reason as {0}.
CliStatus HubRefused(const char* message, const HttpResponse& response);

// Sync rounds until nothing is left to push or pull; `out` gets the
// progress. A revoked device that receives a notice it can check is wiped
// here (WipeRevokedDevice, exit 4).
CliStatus SyncWithHub(Context& ctx, Device& dev, const HubTarget& hub, int max_attempts,
                      SyncProgress& out);
// Closes the replica and destroys the device's files and config (remote wipe).
CliStatus WipeRevokedDevice(Context& ctx, Device& dev);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_COMMANDS_H_
