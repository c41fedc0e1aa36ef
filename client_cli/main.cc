// enlace: the field worker's command-line client.
//
//   enlace [--home DIR] [--json] [--passphrase-file F] COMMAND ...
//
// See `enlace --help` and `enlace COMMAND --help`. Exit codes: 0 ok, 1 usage,
// 2 locked, 3 hub unreachable, 4 rejected by the hub, 5 data error.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "commands.h"
#include "config.h"
#include "output.h"
#include "passphrase.h"
#include "transport.h"

namespace enlace::cli {
namespace {

constexpr char kDescription[] =
    "enlace: offline-first, end-to-end encrypted case records for field work.\n"
    "Records are written on this device, encrypted under the team key, and exchanged\n"
    "with the team's hub by `enlace sync`; the hub never sees a value.";

constexpr char kFooter[] =
    "Passphrase: from --passphrase-file (first line), else $ENLACE_PASSPHRASE, else asked\n"
    "on the terminal without echo. It is never read from the command line.\n"
    "\n"
    "Environment:\n"
    "  ENLACE_PASSPHRASE     the device passphrase (scripts, tests)\n"
    "  XDG_DATA_HOME         the default home is $XDG_DATA_HOME/enlace, else\n"
    "                        ~/.local/share/enlace\n"
    "  ENLACE_KDF            passphrase hashing cost for new devices: interactive\n"
    "                        (default), moderate, or min (tests only: weak)\n"
    "  ENLACE_RETRY_BASE_MS  first retry delay against the hub (default 250)\n"
    "\n"
    "Exit codes: 0 ok, 1 usage or home not initialised, 2 locked (wrong or no\n"
    "passphrase), 3 hub unreachable, 4 rejected by the hub (or not the pinned hub),\n"
    "5 data error.\n"
    "\n"
    "A day in the field:\n"
    "  enlace join enlace1.AbC...            once, with the code from your coordinator\n"
    "  enlace put encounters place=Apizaco reached=3\n"
    "  enlace sync                           whenever there is a connection";

int ParseErrorExit(const CLI::App& app, const CLI::ParseError& e, bool json) {
  std::string message = e.what();
  const std::vector<std::string> unknown = app.remaining();
  const bool no_command = e.get_name() == "RequiredError" && app.get_subcommands().empty();
  if (no_command && !unknown.empty()) {
    // "frobnicate" is not "a subcommand is required".
    message = "unknown command \"" + unknown.front() + "\"; see enlace --help";
    std::cerr << "enlace: " << message << "\n";
  } else if (no_command) {
    message = "no command given; see enlace --help";
    std::cerr << app.help() << "\nenlace: " << message << "\n";
  } else if (app.exit(e) == 0) {  // prints help, version, or the error
    return kExitOk;
  }
  if (json) std::cout << nlohmann::json{{"error", message}, {"code", kExitUsage}}.dump() << "\n";
  return kExitUsage;
}

int Main(int argc, char** argv) {
  bool json_requested = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--json") == 0) json_requested = true;
  }

  CLI::App app{kDescription, "enlace"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.set_version_flag("--version",
                       "enlace 0.1.0 (protocol " + std::to_string(kProtocolVersion) + ")");

  GlobalOptions global;
  app.add_option("--home", global.home,
                 "Folder of this device's data (default $XDG_DATA_HOME/enlace or "
                 "~/.local/share/enlace)");
  app.add_flag("--json", global.json, "Print results as JSON on stdout (errors too)");
  app.add_option("--passphrase-file", global.passphrase_file,
                 "Read the passphrase from the first line of this file");

  // ---- init
  InitArgs init;
  auto* init_cmd = app.add_subcommand(
      "init", "Create a team on a hub, with this device as its first coordinator.");
  init_cmd->add_option("--hub", init.hub, "The hub's URL, https://HOST:PORT")->required();
  init_cmd->add_option("--team", init.team, "The team's name, e.g. the organisation")->required();
  init_cmd
      ->add_option("--token", init.token,
                   "One-time bootstrap token from the hub operator "
                   "(enlace-hub admin bootstrap-token)")
      ->required();
  init_cmd->add_option("--name", init.name,
                       "This device's name as others see it (default: "
                       "the host name)");
  init_cmd->add_option("--pin", init.pin,
                       "The hub's TLS key pin, sha256//... (enlace-hub admin pin); it "
                       "replaces certificate authorities, so self-signed hubs work");
  init_cmd->footer(
      "Asks for a new passphrase twice. If the hub refuses, nothing is left behind.\n"
      "Example:\n"
      "  enlace init --hub https://hub.example.org:8443 --team \"Tlaxcala\" \\\n"
      "      --token bt-XXXX --name coordinadora --pin sha256//AbC...=");

  // ---- invite
  InviteArgs invite;
  auto* invite_cmd = app.add_subcommand(
      "invite", "Coordinators: make a one-time code that lets a new device join the team.");
  invite_cmd->add_option("--role", invite.role, "The new device's role")
      ->check(CLI::IsMember({"field", "coordinator"}))
      ->capture_default_str();
  invite_cmd
      ->add_option("--expires", invite.expires,
                   "How long the code stays valid: 90m, 72h, 7d (1 minute to 30 days)")
      ->capture_default_str();
  invite_cmd->footer(
      "Prints the code on stdout. It carries the hub address and the secret that opens\n"
      "the team key: hand it over in person or over a channel you trust.\n"
      "Example:\n"
      "  enlace invite --role field --expires 24h");

  // ---- join
  JoinArgs join;
  auto* join_cmd =
      app.add_subcommand("join", "Join a team with an invite code, making this a new device.");
  join_cmd
      ->add_option("CODE", join.code,
                   "The invite code (enlace1....), or - to read it from stdin so it "
                   "stays out of the shell history")
      ->required();
  join_cmd->add_option("--name", join.name,
                       "This device's name as others see it (default: the host name)");
  join_cmd->footer(
      "Asks for a new passphrase twice. Refuses a home that already holds a device.\n"
      "Example:\n"
      "  enlace join enlace1.AbCdEf... --name ana");

  // ---- put
  PutArgs put;
  auto* put_cmd = app.add_subcommand(
      "put", "Create a record, or set fields of one: put COLLECTION [ID] FIELD=VALUE...");
  put_cmd->add_option("COLLECTION", put.collection, "cases, encounters, referrals, ...")
      ->required();
  put_cmd
      ->add_option("FIELDS", put.words,
                   "An optional record ID (32 hex characters) to change that record, then "
                   "FIELD=VALUE pairs")
      ->required();
  put_cmd->footer(
      "VALUE is JSON when it parses as JSON (17, true, null, \"017\", [\"a\",\"b\"]), else\n"
      "plain text (status=Active). Without an ID a new record is created and its ID\n"
      "printed. Use -- before values that start with '-'.\n"
      "Examples:\n"
      "  enlace put cases status=Active age=16 municipality=Tenancingo\n"
      "  enlace put cases 3f2a...e1 status=FollowUp 'note=called twice'\n"
      "  enlace put persons 'phone=\"2461234567\"'");

  // ---- get, list, delete, restore
  RecordArgs get;
  auto* get_cmd = app.add_subcommand("get", "Show a record, with every value of a conflict.");
  get_cmd->add_option("COLLECTION", get.collection, "The record's collection")->required();
  get_cmd->add_option("ID", get.id, "The record's ID (32 hex characters)")->required();
  get_cmd->footer("Example:\n  enlace get cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8");

  std::string list_collection;
  auto* list_cmd =
      app.add_subcommand("list", "List the records of a collection (deleted ones are not shown).");
  list_cmd->add_option("COLLECTION", list_collection, "cases, encounters, ...")->required();
  list_cmd->footer("Example:\n  enlace list encounters\n  enlace --json list cases | jq .");

  RecordArgs del;
  auto* delete_cmd = app.add_subcommand(
      "delete", "Delete a record (an edit made elsewhere meanwhile keeps it as a conflict).");
  delete_cmd->add_option("COLLECTION", del.collection, "The record's collection")->required();
  delete_cmd->add_option("ID", del.id, "The record's ID")->required();
  delete_cmd->footer("Example:\n  enlace delete encounters 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8");

  RecordArgs restore;
  auto* restore_cmd =
      app.add_subcommand("restore", "Bring back a deleted record with the values it had.");
  restore_cmd->add_option("COLLECTION", restore.collection, "The record's collection")->required();
  restore_cmd->add_option("ID", restore.id, "The record's ID")->required();
  restore_cmd->footer("Example:\n  enlace restore cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8");

  // ---- conflicts, resolve
  auto* conflicts_cmd = app.add_subcommand(
      "conflicts", "List fields that were changed concurrently on different devices.");
  conflicts_cmd->footer(
      "Each value is shown with who wrote it and when; the value marked * is the one\n"
      "every device shows until someone resolves it.\n"
      "Example:\n  enlace conflicts");

  ResolveArgs resolve;
  auto* resolve_cmd =
      app.add_subcommand("resolve", "Settle a conflict by choosing (or typing) the right value.");
  resolve_cmd->add_option("COLLECTION", resolve.collection, "The record's collection")->required();
  resolve_cmd->add_option("ID", resolve.id, "The record's ID")->required();
  resolve_cmd
      ->add_option("FIELD", resolve.field,
                   "The field in conflict; '$deleted' for a record deleted on one "
                   "device and edited on another")
      ->required();
  resolve_cmd
      ->add_option("VALUE", resolve.value,
                   "The value to keep, parsed like put's values; for '$deleted': true "
                   "deletes, false keeps the record")
      ->required();
  resolve_cmd->footer(
      "Examples:\n"
      "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 status ClosedReferred\n"
      "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 age 17\n"
      "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 '$deleted' false");

  // ---- sync, status
  SyncArgs sync;
  auto* sync_cmd = app.add_subcommand(
      "sync", "Send this device's new writes to the hub and receive the team's.");
  sync_cmd
      ->add_option("--max-attempts", sync.max_attempts,
                   "Tries per round before giving up (connection lost, hub busy)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  sync_cmd->add_option("--hub", sync.hub,
                       "Use this hub URL for this run instead of the configured one "
                       "(the configured TLS pin still applies)");
  sync_cmd->footer(
      "Safe to interrupt and to repeat: a cut connection costs at most one batch, and\n"
      "retries never duplicate a write.\n"
      "Example:\n  enlace sync");

  auto* status_cmd = app.add_subcommand(
      "status", "Show unsent writes, the last sync, the hub, team, device and role.");
  status_cmd->footer("Example:\n  enlace status");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseErrorExit(app, e, json_requested);
  }

  Output output(global.json, std::cout, std::cerr);
  if (global.home.empty()) {
    global.home = DefaultHome(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"));
    if (global.home.empty()) {
      output.Error("no home folder: set --home, XDG_DATA_HOME or HOME", kExitUsage);
      return kExitUsage;
    }
  }

  CurlGlobal curl;
  if (!curl.ok()) {
    output.Error("libcurl failed to initialise", kExitData);
    return kExitData;
  }
  auto http = NewCurlHttpClient();
  std::random_device seed;
  std::mt19937_64 rng(seed());
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  Context ctx;
  ctx.global = global;
  ctx.output = &output;
  ctx.http = http.get();
  ctx.env_passphrase = std::getenv(kPassphraseEnv);
  ctx.tty_fd = STDIN_FILENO;
  ctx.progress = ::isatty(STDERR_FILENO) != 0;
  ctx.sleep_ms = [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  ctx.unit_random = [&] { return unit(rng); };
  ctx.retry.max_attempts = sync.max_attempts;
  if (const char* base = std::getenv("ENLACE_RETRY_BASE_MS"); base != nullptr && *base != '\0') {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(base, &end, 10);
    if (*end != '\0' || v == 0 || v > 60'000) {
      output.Error("ENLACE_RETRY_BASE_MS must be a number of milliseconds from 1 to 60000",
                   kExitUsage);
      return kExitUsage;
    }
    ctx.retry.base_ms = v;
  }
  auto kdf = KdfFromEnv(std::getenv("ENLACE_KDF"));
  if (!kdf.ok()) {
    output.Error(kdf.status().message(), kExitUsage);
    return kExitUsage;
  }
  ctx.kdf = *kdf;

  CliStatus result;
  if (init_cmd->parsed()) {
    result = RunInit(ctx, init);
  } else if (invite_cmd->parsed()) {
    result = RunInvite(ctx, invite);
  } else if (join_cmd->parsed()) {
    result = RunJoin(ctx, join);
  } else if (put_cmd->parsed()) {
    result = RunPut(ctx, put);
  } else if (get_cmd->parsed()) {
    result = RunGet(ctx, get);
  } else if (list_cmd->parsed()) {
    result = RunList(ctx, list_collection);
  } else if (delete_cmd->parsed()) {
    result = RunDelete(ctx, del);
  } else if (restore_cmd->parsed()) {
    result = RunRestore(ctx, restore);
  } else if (conflicts_cmd->parsed()) {
    result = RunConflicts(ctx);
  } else if (resolve_cmd->parsed()) {
    result = RunResolve(ctx, resolve);
  } else if (sync_cmd->parsed()) {
    result = RunSync(ctx, sync);
  } else if (status_cmd->parsed()) {
    result = RunStatus(ctx);
  } else {
    result = CliStatus::Usage("no command given; see enlace --help");
  }
  if (!result.ok()) output.Error(result.message(), result.exit_code());
  std::cout.flush();
  return result.exit_code();
}

}  // namespace
}  // namespace enlace::cli

int main(int argc, char** argv) { return enlace::cli::Main(argc, argv); }
