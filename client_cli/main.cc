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
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "audit_cmd.h"
#include "casework_cmds.h"
#include "commands.h"
#include "config.h"
#include "devices_cmds.h"
#include "i18n_cli.h"
#include "output.h"
#include "passphrase.h"
#include "safety_cmds.h"
#include "transport.h"

namespace enlace::cli {
namespace {

using i18n::Format;

// ENLACE_TEST_HOOKS (a CMake option, off by default; scripts/test turns it
// on): only such a build takes ENLACE_KDF=min, the cost the tests use.
#ifdef ENLACE_TEST_HOOKS
constexpr bool kTestHooks = true;
#else
constexpr bool kTestHooks = false;
#endif

const char* const kDescription =
    N_("enlace: offline-first, end-to-end encrypted case records for field work.\n"
       "Records are written on this device, encrypted under the team key, and exchanged\n"
       "with the team's hub by `enlace sync`; the hub never sees a value.");

const char* const kFooter =
    N_("Passphrase: from --passphrase-file (first line), else $ENLACE_PASSPHRASE, else asked\n"
       "on the terminal without echo. It is never read from the command line. A new one\n"
       "(init, join, passphrase change, duress) needs four or more words, 16 characters\n"
       "or more, and must not be easy to guess (no common words, names or dates alone).\n"
       "\n"
       "Environment:\n"
       "  ENLACE_PASSPHRASE     the device passphrase (scripts, tests)\n"
       "  XDG_DATA_HOME         the default home is $XDG_DATA_HOME/enlace, else\n"
       "                        ~/.local/share/enlace\n"
       "  ENLACE_KDF            passphrase hashing cost for new devices: interactive\n"
       "                        (default) or moderate; builds for tests also take min\n"
       "  ENLACE_RETRY_BASE_MS  first retry delay against the hub (default 250)\n"
       "  LANG                  messages in Spanish when it starts with es (es_MX.UTF-8),\n"
       "                        else English; LANGUAGE, LC_ALL, LC_MESSAGES come first\n"
       "\n"
       "Exit codes: 0 ok, 1 usage or home not initialised, 2 locked (wrong or no\n"
       "passphrase), 3 hub unreachable, 4 rejected by the hub (or not the pinned hub),\n"
       "5 data error.\n"
       "\n"
       "A day in the field:\n"
       "  enlace join enlace1.AbC...            once, with the code from your coordinator\n"
       "  enlace encounter log --set enc_Kind=Street\n"
       "  enlace sync                           whenever there is a connection");

// CLI11's own words in help pages ("Usage:", "Options:", "REQUIRED", ...) in
// the current language. Group names are set where the options and commands are
// added (Options, Subcommands).
class TranslatedFormatter : public CLI::Formatter {
 public:
  TranslatedFormatter() {
    label("Usage", _("Usage"));
    label("OPTIONS", _("OPTIONS"));
    label("SUBCOMMAND", _("SUBCOMMAND"));
    label("SUBCOMMANDS", _("SUBCOMMANDS"));
    label("Positionals", _("Positionals"));
    label("REQUIRED", _("REQUIRED"));
    label("TEXT", _("TEXT"));
    label("INT", _("INT"));
    label("Env", _("Env"));
    label("Needs", _("Needs"));
    label("Excludes", _("Excludes"));
  }
};

// A CLI11 parse error: its own (English) explanation, then our hint.
std::string FailureMessage(const CLI::App* /*app*/, const CLI::Error& e) {
  return "enlace: " + std::string(e.what()) + "\n" +
         Format(_("Run with {0} for more information."), {"--help"}) + "\n";
}

int ParseErrorExit(const CLI::App& app, const CLI::ParseError& e, bool json) {
  std::string message = e.what();
  const std::vector<std::string> unknown = app.remaining();
  const bool no_command = e.get_name() == "RequiredError" && app.get_subcommands().empty();
  if (no_command && !unknown.empty()) {
    // "frobnicate" is not "a subcommand is required".
    message = Format(_("unknown command \"{0}\"; see enlace --help"), {unknown.front()});
    std::cerr << "enlace: " << message << "\n";
  } else if (no_command) {
    message = _("no command given; see enlace --help");
    std::cerr << app.help() << "\nenlace: " << message << "\n";
  } else if (app.exit(e) == 0) {  // prints help, version, or the error
    return kExitOk;
  }
  if (json) std::cout << nlohmann::json{{"error", message}, {"code", kExitUsage}}.dump() << "\n";
  return kExitUsage;
}

// ---- words and options that several commands take

const char* const kSetHelp =
    N_("FIELD=VALUE for a field of the record (repeatable); see enlace schema");
const char* const kNoPromptHelp =
    N_("Never ask: take only --set and the defaults (also when stdin is "
       "not a terminal)");

// --name of a new device (init, join).
void AddDeviceNameOption(CLI::App* cmd, std::string& name) {
  cmd->add_option("--name", name,
                  _("This device's name as others see it (default: the host name)"));
}

// COLLECTION ID: the words that name one record; `id_help` is marked with N_.
void AddRecordWords(CLI::App* cmd, std::string& collection, std::string& id, const char* id_help) {
  cmd->add_option("COLLECTION", collection, _("The record's collection"))->required();
  cmd->add_option("ID", id, _(id_help))->required();
}

// CASE: the case a command is about.
void AddCaseWord(CLI::App* cmd, std::string& case_ref) {
  cmd->add_option("CASE", case_ref, _("The case's ID, or its first 6+ characters"))->required();
}

// --set and --no-prompt of a guided capture.
void AddCaptureOptions(CLI::App* cmd, CaptureArgs& args) {
  cmd->add_option("--set", args.set, _(kSetHelp));
  cmd->add_flag("--no-prompt", args.no_prompt, _(kNoPromptHelp));
}

// DEVICE: the team member a devices command changes.
void AddDeviceWord(CLI::App* cmd, DevicesArgs& args) {
  cmd->add_option("DEVICE", args.device, _("Device id, id prefix (4+ hex) or name"))->required();
}

int Main(int argc, char** argv) {
  bool json_requested = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--json") == 0) json_requested = true;
  }

  CLI::App app{_(kDescription), "enlace"};
  // Before any option or command is added: they inherit these.
  app.formatter(std::make_shared<TranslatedFormatter>());
  app.failure_message(FailureMessage);
  app.option_defaults()->group(_("Options"));
  app.group(_("Subcommands"));
  app.set_help_flag("-h,--help", _("Print this help message and exit"));
  app.footer(_(kFooter));
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.set_version_flag("--version",
                       "enlace 0.1.0 (protocol " + std::to_string(kProtocolVersion) + ")",
                       _("Display program version information and exit"));

  GlobalOptions global;
  app.add_option("--home", global.home,
                 _("Folder of this device's data (default $XDG_DATA_HOME/enlace or "
                   "~/.local/share/enlace)"));
  app.add_flag("--json", global.json, _("Print results as JSON on stdout (errors too)"));
  app.add_option("--passphrase-file", global.passphrase_file,
                 _("Read the passphrase from the first line of this file"));

  // ---- init
  InitArgs init;
  auto* init_cmd = app.add_subcommand(
      "init", _("Create a team on a hub, with this device as its first coordinator."));
  init_cmd->add_option("--hub", init.hub, _("The hub's URL, https://HOST:PORT"))->required();
  init_cmd->add_option("--team", init.team, _("The team's name, e.g. the organisation"))
      ->required();
  init_cmd->add_option("--token-file", init.token_file,
                       _("A file whose first line is the one-time bootstrap token from the hub "
                         "operator (enlace-hub admin bootstrap-token); - reads it from standard "
                         "input. Without it, the token is asked for."));
  // Refused with an explanation: a token in argv is visible to every user of
  // the machine (ps) and stays in the shell history.
  init_cmd->add_option("--token", init.token_in_argv)->group("");
  AddDeviceNameOption(init_cmd, init.name);
  init_cmd->add_option("--pin", init.pin,
                       _("The hub's TLS key pin, sha256//... (enlace-hub admin pin); it "
                         "replaces certificate authorities, so self-signed hubs work"));
  init_cmd->add_flag("--duress", init.duress,
                     _("Also set a duress passphrase: opening with it destroys the data and "
                       "shows an empty device"));
  init_cmd->add_option("--duress-passphrase-file", init.duress_passphrase_file,
                       _("With --duress: read the duress passphrase from this file's first line "
                         "(else $ENLACE_DURESS_PASSPHRASE, else asked twice)"));
  init_cmd->footer(
      _("Asks for a new passphrase twice. If the hub refuses, nothing is left behind.\n"
        "Example:\n"
        "  enlace init --hub https://hub.example.org:8443 --team \"Tlaxcala\" \\\n"
        "      --token-file token.txt --name coordinadora --pin sha256//AbC...="));

  // ---- invite
  InviteArgs invite;
  auto* invite_cmd = app.add_subcommand(
      "invite", _("Coordinators: make a one-time code that lets a new device join the team."));
  invite_cmd->add_option("--role", invite.role, _("The new device's role"))
      ->check(CLI::IsMember({"field", "coordinator"}))
      ->capture_default_str();
  invite_cmd
      ->add_option("--expires", invite.expires,
                   _("How long the code stays valid: 90m, 72h, 7d (1 minute to 30 days)"))
      ->capture_default_str();
  invite_cmd->footer(
      _("Prints the code on stdout. It carries the hub address and the secret that opens\n"
        "the team key: hand it over in person or over a channel you trust.\n"
        "Example:\n"
        "  enlace invite --role field --expires 24h"));

  // ---- join
  JoinArgs join;
  auto* join_cmd =
      app.add_subcommand("join", _("Join a team with an invite code, making this a new device."));
  join_cmd
      ->add_option("CODE", join.code,
                   _("The invite code (enlace1....), or - to read it from stdin so it "
                     "stays out of the shell history"))
      ->required();
  AddDeviceNameOption(join_cmd, join.name);
  join_cmd->footer(
      _("Asks for a new passphrase twice. Refuses a home that already holds a device.\n"
        "Example:\n"
        "  enlace join enlace1.AbCdEf... --name ana"));

  // ---- put
  PutArgs put;
  auto* put_cmd = app.add_subcommand(
      "put", _("Create a record, or set fields of one: put COLLECTION [ID] FIELD=VALUE..."));
  put_cmd->add_option("COLLECTION", put.collection, _("cases, encounters, referrals, ..."))
      ->required();
  put_cmd
      ->add_option("FIELDS", put.words,
                   _("An optional record ID (32 hex characters) to change that record, then "
                     "FIELD=VALUE pairs"))
      ->required();
  put_cmd->footer(
      _("VALUE is JSON when it parses as JSON (17, true, null, \"017\", [\"a\",\"b\"]), else\n"
        "plain text (cas_Status=Active). Without an ID a new record is created and its ID\n"
        "printed. Use -- before values that start with '-'.\n"
        "Examples:\n"
        "  enlace put cases cas_Status=Active \"cas_Title=Tenancingo\"\n"
        "  enlace put cases 3f2a...e1 cas_Status=FollowUp 'cas_CaseComment=called twice'\n"
        "  enlace put persons 'prs_MobilePhone=\"2461234567\"'"));

  // ---- get, list, delete, restore
  RecordArgs get;
  auto* get_cmd = app.add_subcommand("get", _("Show a record, with every value of a conflict."));
  AddRecordWords(get_cmd, get.collection, get.id, N_("The record's ID (32 hex characters)"));
  get_cmd->footer(_("Example:\n  enlace get cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8"));

  std::string list_collection;
  auto* list_cmd = app.add_subcommand(
      "list", _("List the records of a collection (deleted ones are not shown)."));
  list_cmd->add_option("COLLECTION", list_collection, _("cases, encounters, ..."))->required();
  list_cmd->footer(_("Example:\n  enlace list encounters\n  enlace --json list cases | jq ."));

  RecordArgs del;
  auto* delete_cmd = app.add_subcommand(
      "delete", _("Delete a record (an edit made elsewhere meanwhile keeps it as a conflict)."));
  AddRecordWords(delete_cmd, del.collection, del.id, N_("The record's ID"));
  delete_cmd->footer(_("Example:\n  enlace delete encounters 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8"));

  RecordArgs restore;
  auto* restore_cmd =
      app.add_subcommand("restore", _("Bring back a deleted record with the values it had."));
  AddRecordWords(restore_cmd, restore.collection, restore.id, N_("The record's ID"));
  restore_cmd->footer(_("Example:\n  enlace restore cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8"));

  // ---- conflicts, resolve
  auto* conflicts_cmd = app.add_subcommand(
      "conflicts", _("List fields that were changed concurrently on different devices."));
  conflicts_cmd->footer(
      _("Each value is shown with who wrote it and when; the value marked * is the one\n"
        "every device shows until someone resolves it.\n"
        "Example:\n  enlace conflicts"));

  ResolveArgs resolve;
  auto* resolve_cmd = app.add_subcommand(
      "resolve", _("Settle a conflict by choosing (or typing) the right value."));
  AddRecordWords(resolve_cmd, resolve.collection, resolve.id, N_("The record's ID"));
  resolve_cmd
      ->add_option("FIELD", resolve.field,
                   _("The field in conflict; '$deleted' for a record deleted on one "
                     "device and edited on another"))
      ->required();
  resolve_cmd
      ->add_option("VALUE", resolve.value,
                   _("The value to keep, parsed like put's values; for '$deleted': true "
                     "deletes, false keeps the record"))
      ->required();
  resolve_cmd->footer(
      _("Examples:\n"
        "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 cas_Status ClosedReferred\n"
        "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 cas_Title \"Tenancingo, calle\"\n"
        "  enlace resolve cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8 '$deleted' false"));

  // ---- sync, status
  SyncArgs sync;
  auto* sync_cmd = app.add_subcommand(
      "sync", _("Send this device's new writes to the hub and receive the team's."));
  sync_cmd
      ->add_option("--max-attempts", sync.max_attempts,
                   _("Tries per round before giving up (connection lost, hub busy)"))
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  sync_cmd->add_option("--hub", sync.hub,
                       _("Use this hub URL for this run instead of the configured one "
                         "(the configured TLS pin still applies)"));
  sync_cmd->add_flag("--full", sync.full,
                     _("Read the hub's whole log again: repairs a device that missed writes "
                       "(writes already here are recognised and skipped)"));
  sync_cmd->footer(
      _("Safe to interrupt and to repeat: a cut connection costs at most one batch, and\n"
        "retries never duplicate a write. Exit 0 also when some of the team's writes wait\n"
        "for a team key this device does not hold yet (they are kept and applied when it\n"
        "arrives); exit 5 when writes from the hub failed verification (they are asked\n"
        "for again on every sync).\n"
        "Example:\n  enlace sync"));

  auto* status_cmd = app.add_subcommand(
      "status", _("Show unsent writes, the last sync, the hub, team, device and role."));
  status_cmd->footer(_("Example:\n  enlace status"));

  // ---- config
  auto* config_cmd = app.add_subcommand(
      "config", _("Change this device's settings; config.json is not to be edited by hand."));
  config_cmd->require_subcommand(1);
  ConfigHubArgs config_hub;
  auto* config_hub_cmd = config_cmd->add_subcommand(
      "hub", _("Move this device to another hub URL (and TLS pin) of its team's hub."));
  config_hub_cmd->add_option("URL", config_hub.hub, _("The hub's URL, https://HOST:PORT"))
      ->required();
  config_hub_cmd->add_option("--pin", config_hub.pin,
                             _("The hub's TLS key pin, sha256//... (enlace-hub admin pin); "
                               "without it, no pin"));
  config_hub_cmd->footer(
      _("The hub URL and pin are sealed in this device's store: a config.json edited by\n"
        "hand is refused. Asks for the passphrase.\n"
        "Example:\n"
        "  enlace config hub https://hub2.example.org:8443 --pin sha256//AbC...="));

  // ---- the device registry (devices_cmds.h)
  DevicesArgs devices;
  auto* devices_cmd = app.add_subcommand(
      "devices", _("The team's devices: list them; coordinators approve, revoke and rename."));
  devices_cmd->require_subcommand(1);
  auto* devices_list_cmd =
      devices_cmd->add_subcommand("list", _("List the team's devices, their roles and states."));
  devices_list_cmd->footer(_("Example:\n  enlace devices list"));
  auto* devices_approve_cmd = devices_cmd->add_subcommand(
      "approve", _("Let a device that joined by invite and waits for approval in."));
  AddDeviceWord(devices_approve_cmd, devices);
  auto* devices_revoke_cmd = devices_cmd->add_subcommand(
      "revoke", _("Cut a device off for good: the hub refuses it, it wipes itself on its next "
                  "contact, and the team key is rotated."));
  AddDeviceWord(devices_revoke_cmd, devices);
  devices_revoke_cmd->add_flag(
      "!--no-rotate", devices.rotate,
      _("Do not make a new team key (the revoked device could read new writes it obtains)"));
  devices_revoke_cmd->footer(
      _("Its writes made before the revocation stay; later ones are refused everywhere.\n"
        "Example:\n  enlace devices revoke 3f2a9c0d"));
  auto* devices_rename_cmd = devices_cmd->add_subcommand("rename", _("Rename a device."));
  AddDeviceWord(devices_rename_cmd, devices);
  devices_rename_cmd->add_option("NAME", devices.name, _("The new name"))->required();
  auto* devices_rotate_cmd = devices_cmd->add_subcommand(
      "rotate-key", _("Make a new team key, sealed to every active device; new writes use it."));
  auto* devices_approval_cmd = devices_cmd->add_subcommand(
      "require-approval",
      _("on: devices joining by invite wait for a coordinator's approval; off: they are members "
        "at once."));
  devices_approval_cmd->add_option("SETTING", devices.setting, _("on or off"))->required();

  // ---- local safety (safety_cmds.h)
  PanicArgs panic;
  auto* panic_cmd = app.add_subcommand(
      "panic", _("Destroy this device's data now, without passphrase or network."));
  panic_cmd->add_flag("--yes", panic.yes, _("Do not ask to type the confirmation word"));
  panic_cmd->footer(
      _("Overwrites, then deletes the vault, the records and config.json. Writes not yet\n"
        "sent are lost. Records already synced stay on the hub and other devices.\n"
        "Example:\n  enlace panic --yes"));
  auto* passphrase_cmd =
      app.add_subcommand("passphrase", _("Change the passphrase, set a duress passphrase, or "
                                         "destroy the data after wrong passphrases."));
  passphrase_cmd->require_subcommand(1);
  PassphraseChangeArgs change;
  auto* change_cmd = passphrase_cmd->add_subcommand(
      "change", _("Change this device's passphrase (the new one is asked twice)."));
  change_cmd->add_option("--new-passphrase-file", change.new_passphrase_file,
                         _("Read the new passphrase from this file's first line (else "
                           "$ENLACE_NEW_PASSPHRASE, else asked twice)"));
  DuressArgs duress;
  auto* duress_cmd = passphrase_cmd->add_subcommand(
      "duress", _("Set a duress passphrase: opening with it destroys the data and shows an "
                  "empty device."));
  duress_cmd->add_option("--duress-passphrase-file", duress.duress_passphrase_file,
                         _("Read the duress passphrase from this file's first line (else "
                           "$ENLACE_DURESS_PASSPHRASE, else asked twice)"));
  uint32_t wipe_after = 0;
  auto* wipe_after_cmd = passphrase_cmd->add_subcommand(
      "wipe-after", _("Destroy the data after N wrong passphrases in a row (0: never)."));
  wipe_after_cmd->add_option("N", wipe_after, _("Wrong passphrases in a row: 0, or 3 or more"))
      ->required()
      ->check(CLI::Range(0u, 1000000u));

  // ---- case work: guided capture
  auto* case_cmd = app.add_subcommand("case", _("Cases: capture, show and list them."));
  case_cmd->require_subcommand(1);
  CaptureArgs case_new;
  auto* case_new_cmd = case_cmd->add_subcommand(
      "new", _("Capture a new case and the person it is about, guided field by field."));
  AddCaptureOptions(case_new_cmd, case_new);
  case_new_cmd->footer(_(
      "On a terminal every field is asked in turn, with numbered choices from the code\n"
      "lists; Enter skips a question or keeps the default shown in [brackets].\n"
      "Examples:\n"
      "  enlace case new\n"
      "  enlace case new --no-prompt --set prs_Gender=Feminine --set vic_AgeWhenTrafficked=16 \\\n"
      "      --set vic_TraffickingStatus=PossibleVictimOfTrafficking --set cas_Title=Tenancingo"));
  std::string case_show_ref;
  auto* case_show_cmd =
      case_cmd->add_subcommand("show", _("Show a case with its person and its events."));
  AddCaseWord(case_show_cmd, case_show_ref);
  CaseListArgs case_list;
  auto* case_list_cmd = case_cmd->add_subcommand("list", _("List cases."));
  case_list_cmd->add_option("--status", case_list.status,
                            _("Only cases with this status (Active, FollowUp, Closed, "
                              "ClosedReferred, or its name)"));
  case_list_cmd->add_option("--search", case_list.search,
                            _("Only cases whose case or person values contain this text "
                              "(accents and case ignored)"));

  auto* encounter_cmd = app.add_subcommand("encounter", _("Outreach encounters."));
  encounter_cmd->require_subcommand(1);
  CaptureArgs encounter;
  auto* encounter_log_cmd = encounter_cmd->add_subcommand(
      "log", _("Log an outreach contact: where, what kind, how many people were reached."));
  AddCaptureOptions(encounter_log_cmd, encounter);
  encounter_log_cmd->footer(
      _("Example:\n  enlace encounter log --set enc_Kind=Street --set enc_Place=Apizaco "
        "--set enc_PeopleReached=3"));

  auto* event_cmd = app.add_subcommand("event", _("Trafficking events of a case."));
  event_cmd->require_subcommand(1);
  CaptureArgs event;
  auto* event_add_cmd = event_cmd->add_subcommand(
      "add", _("Add a recruitment, transit, exploitation or return event to a case."));
  AddCaseWord(event_add_cmd, event.case_ref);
  AddCaptureOptions(event_add_cmd, event);
  event_add_cmd->footer(_(
      "Example:\n  enlace event add 3f2a9c --set hte_Type=Exploitation --set hte_FederalEntity=29 "
      "--set hte_Date=2026-10-02"));

  auto* referral_cmd = app.add_subcommand("referral", _("Referrals of a case."));
  referral_cmd->require_subcommand(1);
  CaptureArgs referral;
  auto* referral_add_cmd = referral_cmd->add_subcommand(
      "add", _("Record a referral of a case: in (to us) or out (to another organisation)."));
  AddCaseWord(referral_add_cmd, referral.case_ref);
  referral_add_cmd->add_option("--direction", referral.direction, _("in or out"))
      ->check(CLI::IsMember({"in", "out"}))
      ->required();
  referral_add_cmd->add_flag("--close", referral.close,
                             _("Also close the case as referred (status ClosedReferred)"));
  AddCaptureOptions(referral_add_cmd, referral);

  // ---- schema
  SchemaArgs schema;
  auto* schema_cmd = app.add_subcommand(
      "schema", _("Show the case-data schema: collections, fields, types and allowed values."));
  schema_cmd->add_option("COLLECTION", schema.collection,
                         _("Show this collection's fields and their allowed values"));
  schema_cmd->add_option("--publish-overlay", schema.overlay_file,
                         _("Coordinators: publish this regional overlay (JSON) to the team"));
  schema_cmd->footer(
      _("Examples:\n  enlace schema\n  enlace schema events\n"
        "  enlace schema --publish-overlay tlaxcala.json"));

  // ---- export, import, report
  ExportArgs exp;
  auto* export_cmd = app.add_subcommand(
      "export", _("Export records as CSV or JSON with HTCDS field names, or as CTDC columns."));
  export_cmd->add_option("--format", exp.format, _("csv, json or ctdc"))
      ->check(CLI::IsMember({"csv", "json", "ctdc"}))
      ->capture_default_str();
  export_cmd->add_option("--collection", exp.collections,
                         _("Only this collection (repeatable; default: all)"));
  export_cmd->add_flag("--include-identifying", exp.include_identifying,
                       _("Also export names, phones, identity numbers and addresses "
                         "(coordinators only)"));
  export_cmd
      ->add_option("--k", exp.k,
                   _("ctdc: rows sharing year, gender, age, citizenship and country of "
                     "exploitation come in groups of at least k (values left blank, or "
                     "rows withheld)"))
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  export_cmd->add_option("--output", exp.output,
                         _("Write to this file (folder for CSV of several collections) instead "
                           "of stdout; created readable by you only"));
  export_cmd->footer(
      _("Examples:\n  enlace export --format csv --collection persons --output "
        "personas.csv\n  enlace export --format ctdc --output ctdc.csv"));

  ImportArgs imp;
  auto* import_cmd = app.add_subcommand(
      "import", _("Import a spreadsheet (CSV) or JSON lines, validating every row."));
  import_cmd->add_option("FILE", imp.file, _("The file to import"))->required();
  import_cmd->add_option("--collection", imp.collection, _("The collection the rows go to"))
      ->required();
  import_cmd->add_option("--format", imp.format, _("csv or jsonl (default: from the file name)"))
      ->check(CLI::IsMember({"csv", "jsonl"}));
  import_cmd->add_option("--map", imp.map,
                         _("A JSON mapping: columns to fields, value translations, key column"));
  import_cmd->add_option("--key", imp.key,
                         _("The column that identifies a row across imports (default: the "
                           "mapping's key, else the row's content)"));
  import_cmd->add_option("--batch", imp.batch, _("Rows per transaction"))->capture_default_str();
  import_cmd->footer(
      _("Rejected rows go to FILE.rejected.csv with their line number and the reason.\n"
        "Importing the same file again creates nothing new.\n"
        "Example:\n  enlace import victimas.csv --collection persons --map mapa.json"));

  ReportArgs rep;
  auto* report_cmd = app.add_subcommand(
      "report", _("Count victims or events by up to 3 dimensions, small cells suppressed."));
  report_cmd
      ->add_option("--by", rep.by,
                   _("Dimensions, comma separated: federal_entity, exploitation, gender, "
                     "age_band, citizenship, month, event_type"))
      ->required();
  report_cmd->add_option("--from", rep.from, _("First date, YYYY-MM-DD"));
  report_cmd->add_option("--to", rep.to, _("Last date, YYYY-MM-DD"));
  report_cmd->add_option("--k", rep.k, _("No published count below k (CTDC uses 11)"))
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  report_cmd->add_option("--format", rep.format, _("table, csv, json or svg"))
      ->check(CLI::IsMember({"table", "csv", "json", "svg"}))
      ->capture_default_str();
  report_cmd->add_option("--output", rep.output, _("Write to this file instead of stdout"));
  report_cmd->add_option("--title", rep.title, _("The report's title"));
  report_cmd->add_flag("--publish", rep.publish,
                       _("Coordinators: upload the suppressed table (never records) to the hub"));
  report_cmd->footer(
      _("Counts below k are shown as <k, and enough other cells are hidden that none can\n"
        "be worked out from the totals.\n"
        "--publish: the period is a whole month, quarter or year that has ended, and the\n"
        "table is audited with every report the team published for that year; cells are\n"
        "hidden until no combination gives a small count away.\n"
        "Examples:\n  enlace report --by federal_entity,exploitation --from 2026-01-01\n"
        "  enlace report --by gender --format svg --output genero.svg"));

  std::string published_id;
  auto* reports_cmd =
      app.add_subcommand("reports", _("List the reports published on the hub, or print one."));
  reports_cmd->add_option("ID", published_id, _("The report's ID: print its JSON"));

  // ---- audit: a record's verified history
  AuditArgs audit;
  auto* audit_cmd = app.add_subcommand(
      "audit", _("Show every write of a record: who, when, what, conflicts; each one verified."));
  AddRecordWords(audit_cmd, audit.collection, audit.id, N_("The record's ID (32 hex characters)"));
  audit_cmd->add_flag("--offline", audit.offline,
                      _("Use the writes stored on this device instead of the hub's history "
                        "(may be partial)"));
  audit_cmd->footer(
      _("Exit 5 when any write fails verification (altered or forged on the hub).\n"
        "Example:\n  enlace audit cases 3f2a9c0d4b1e47a8a1c2d3e4f5a6b7c8"));

  // A command makes its own -h,--help before it inherits the option group.
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (CLI::Option* help = sub->get_help_ptr(); help != nullptr) help->group(_("Options"));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseErrorExit(app, e, json_requested);
  }

  Output output(global.json, std::cout, std::cerr);
  if (global.home.empty()) {
    global.home = DefaultHome(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"));
    if (global.home.empty()) {
      output.Error(_("no home folder: set --home, XDG_DATA_HOME or HOME"), kExitUsage);
      return kExitUsage;
    }
  }

  CurlGlobal curl;
  if (!curl.ok()) {
    output.Error(_("libcurl failed to initialise"), kExitData);
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
  ctx.input = &std::cin;
  ctx.interactive = ::isatty(STDIN_FILENO) != 0 && ::isatty(STDOUT_FILENO) != 0 && !global.json;
  ctx.sleep_ms = [](uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  ctx.unit_random = [&] { return unit(rng); };
  ctx.retry.max_attempts = sync.max_attempts;
  if (const char* base = std::getenv("ENLACE_RETRY_BASE_MS"); base != nullptr && *base != '\0') {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(base, &end, 10);
    if (*end != '\0' || v == 0 || v > 60'000) {
      output.Error(_("ENLACE_RETRY_BASE_MS must be a number of milliseconds from 1 to 60000"),
                   kExitUsage);
      return kExitUsage;
    }
    ctx.retry.base_ms = v;
  }
  auto kdf = KdfFromEnv(std::getenv("ENLACE_KDF"), kTestHooks);
  if (!kdf.ok()) {
    output.Error(kdf.status().message(), kExitUsage);
    return kExitUsage;
  }
  ctx.kdf = *kdf;

  devices.max_attempts = sync.max_attempts;
  audit.max_attempts = sync.max_attempts;
  // What each command runs; exactly one of them was parsed.
  const std::pair<const CLI::App*, std::function<CliStatus()>> actions[] = {
      {init_cmd, [&] { return RunInit(ctx, init); }},
      {invite_cmd, [&] { return RunInvite(ctx, invite); }},
      {join_cmd, [&] { return RunJoin(ctx, join); }},
      {put_cmd, [&] { return RunPut(ctx, put); }},
      {get_cmd, [&] { return RunGet(ctx, get); }},
      {list_cmd, [&] { return RunList(ctx, list_collection); }},
      {delete_cmd, [&] { return RunDelete(ctx, del); }},
      {restore_cmd, [&] { return RunRestore(ctx, restore); }},
      {conflicts_cmd, [&] { return RunConflicts(ctx); }},
      {resolve_cmd, [&] { return RunResolve(ctx, resolve); }},
      {sync_cmd, [&] { return RunSync(ctx, sync); }},
      {status_cmd, [&] { return RunStatus(ctx); }},
      {config_hub_cmd, [&] { return RunConfigHub(ctx, config_hub); }},
      {devices_list_cmd, [&] { return RunDevicesList(ctx); }},
      {devices_approve_cmd, [&] { return RunDevicesApprove(ctx, devices); }},
      {devices_revoke_cmd, [&] { return RunDevicesRevoke(ctx, devices); }},
      {devices_rename_cmd, [&] { return RunDevicesRename(ctx, devices); }},
      {devices_rotate_cmd, [&] { return RunDevicesRotateKey(ctx, devices); }},
      {devices_approval_cmd, [&] { return RunDevicesRequireApproval(ctx, devices); }},
      {panic_cmd, [&] { return RunPanic(ctx, panic); }},
      {change_cmd, [&] { return RunPassphraseChange(ctx, change); }},
      {duress_cmd, [&] { return RunPassphraseDuress(ctx, duress); }},
      {wipe_after_cmd, [&] { return RunPassphraseWipeAfter(ctx, wipe_after); }},
      {case_new_cmd, [&] { return RunCaseNew(ctx, case_new); }},
      {case_show_cmd, [&] { return RunCaseShow(ctx, case_show_ref); }},
      {case_list_cmd, [&] { return RunCaseList(ctx, case_list); }},
      {encounter_log_cmd, [&] { return RunEncounterLog(ctx, encounter); }},
      {event_add_cmd, [&] { return RunEventAdd(ctx, event); }},
      {referral_add_cmd, [&] { return RunReferralAdd(ctx, referral); }},
      {schema_cmd, [&] { return RunSchema(ctx, schema); }},
      {export_cmd, [&] { return RunExport(ctx, exp); }},
      {import_cmd, [&] { return RunImport(ctx, imp); }},
      {report_cmd, [&] { return RunReport(ctx, rep); }},
      {audit_cmd, [&] { return RunAudit(ctx, audit); }},
      {reports_cmd, [&] { return RunPublished(ctx, published_id, sync.max_attempts); }},
  };
  CliStatus result = CliStatus::Usage(_("no command given; see enlace --help"));
  for (const auto& [cmd, run] : actions) {
    if (cmd->parsed()) {
      result = run();
      break;
    }
  }
  // An empty message: the command has already said everything (with --json, in its document).
  if (!result.ok() && !result.message().empty()) output.Error(result.message(), result.exit_code());
  std::cout.flush();
  return result.exit_code();
}

}  // namespace
}  // namespace enlace::cli

int main(int argc, char** argv) { return enlace::cli::Main(argc, argv); }
