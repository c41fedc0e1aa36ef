#include "commands.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config.h"
#include "enlace/local_safety.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/wire.h"
#include "enlace/write.h"
#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;
using nlohmann::json;

constexpr uint64_t kMinuteMs = 60 * 1000;
constexpr uint64_t kClockWarnMs = kMinuteMs;
constexpr size_t kMaxNameBytes = 256;  // team and device names, tokens (WireLimits)
// Rounds in a row that move nothing while the hub says "more" before giving up.
constexpr int kMaxIdleRounds = 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string DefaultDeviceName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "device";
  std::string name(buf);
  if (name.size() > 64) name.resize(64);
  return name;
}

MemberNames NamesOf(Device& device) {
  MemberNames names;
  auto status = GetSyncStatus(*device.replica);
  if (status.ok()) {
    for (const auto& m : status->members) names[m.device] = m.name;
  }
  if (!device.config.device_name.empty()) {
    names.emplace(device.replica->device_id(), device.config.device_name);
  }
  return names;
}

std::string HubErrorText(const HttpResponse& response) {
  return "HTTP " + std::to_string(response.status) + ": " + HubStatus(response).message();
}

bool MentionsTime(const HttpResponse& response) {
  const std::string message = Lower(HubStatus(response).message());
  return message.find("time") != std::string::npos || message.find("clock") != std::string::npos;
}

void FollowClock(Context& ctx, Replica& replica, const HttpResponse& response) {
  const int64_t offset = FollowHubClock(replica, response.hub_time);
  const std::string warning = ClockWarning(offset);
  if (!warning.empty() && !ctx.clock_warned) {
    ctx.clock_warned = true;
    ctx.output->Warn(warning);
  }
}

std::string Delay(uint64_t ms) {
  if (ms < 1000) return std::to_string(ms) + " ms";
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

Result<RecordId> ParseRecordId(std::string_view text) {
  if (!LooksLikeRecordId(text)) {
    return Status::InvalidArgument(
        Format(_("\"{0}\" is not a record id (32 hex characters)"), {text}));
  }
  return RecordId::FromHex(text);
}

CliStatus CheckName(std::string_view name, const char* what) {
  const Status s = ValidateName(name, what);
  if (!s.ok()) return CliStatus::Usage(s.message());
  return CliStatus::Ok();
}

// The COLLECTION ID words of a command on one record (exit 1 when wrong).
CliStatus ParseRecordArgs(const std::string& collection, const std::string& id_text, RecordId& id) {
  CLI_RETURN_IF_ERROR(CheckName(collection, "collection"));
  auto parsed = ParseRecordId(id_text);
  if (!parsed.ok()) return CliStatus::Usage(parsed.status().message());
  id = *parsed;
  return CliStatus::Ok();
}

// The two complaints about a name or token, as whole sentences so that a
// translation can make the words agree; `too_long` has the limit as {0}.
struct TextRule {
  const char* empty;
  const char* too_long;
};
constexpr TextRule kTeamNameRule{N_("the team name must not be empty"),
                                 N_("the team name is longer than {0} bytes")};
constexpr TextRule kTokenRule{N_("the bootstrap token must not be empty"),
                              N_("the bootstrap token is longer than {0} bytes")};
constexpr TextRule kDeviceNameRule{N_("the device name must not be empty"),
                                   N_("the device name is longer than {0} bytes")};

CliStatus CheckText(std::string_view text, const TextRule& rule) {
  if (text.empty()) return CliStatus::Usage(_(rule.empty));
  if (text.size() > kMaxNameBytes) {
    return CliStatus::Usage(Format(_(rule.too_long), {std::to_string(kMaxNameBytes)}));
  }
  return CliStatus::Ok();
}

// The name a new device goes by: `given`, else the host name.
CliStatus NewDeviceName(const std::string& given, std::string& out) {
  out = given.empty() ? DefaultDeviceName() : given;
  return CheckText(out, kDeviceNameRule);
}

}  // namespace

std::string RoleLabel(std::string_view role) {
  if (role == "field") return C_("role", "field");
  if (role == "coordinator") return C_("role", "coordinator");
  return std::string(role);
}

// ---- pure helpers ------------------------------------------------------------------------------

Result<std::string> ParseValue(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || (j.is_number_float() && !std::isfinite(j.get<double>()))) {
    j = std::string(text);
  }
  if (j.is_object()) {
    return Status::InvalidArgument(
        _("a value cannot be a JSON object; quote it to store it as text"));
  }
  try {
    return j.dump();
  } catch (const json::exception&) {
    return Status::InvalidArgument(_("the value is not valid UTF-8 text"));
  }
}

bool LooksLikeRecordId(std::string_view word) {
  return word.size() == 32 && word.find('=') == std::string_view::npos &&
         std::all_of(word.begin(), word.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

Result<std::pair<std::string, std::string>> ParseAssignment(std::string_view word) {
  const auto eq = word.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument(Format(_("expected FIELD=VALUE, got \"{0}\""), {word}));
  }
  const std::string field(word.substr(0, eq));
  if (field.empty()) {
    return Status::InvalidArgument(Format(_("no field name before '=' in \"{0}\""), {word}));
  }
  ENLACE_RETURN_IF_ERROR(ValidateName(field, "field"));
  ENLACE_ASSIGN_OR_RETURN(std::string value, ParseValue(word.substr(eq + 1)));
  return std::make_pair(field, std::move(value));
}

Result<PutArguments> ParsePutArguments(const std::vector<std::string>& words) {
  PutArguments out;
  size_t i = 0;
  if (!words.empty() && LooksLikeRecordId(words[0])) {
    ENLACE_ASSIGN_OR_RETURN(out.id, RecordId::FromHex(words[0]));
    i = 1;
  }
  if (i == words.size()) {
    return Status::InvalidArgument(_("put needs at least one FIELD=VALUE"));
  }
  for (; i < words.size(); ++i) {
    ENLACE_ASSIGN_OR_RETURN(auto assignment, ParseAssignment(words[i]));
    if (out.fields.count(assignment.first) != 0) {
      return Status::InvalidArgument(Format(_("the field {0} is given twice"), {assignment.first}));
    }
    out.fields.emplace(std::move(assignment));
  }
  return out;
}

Result<uint64_t> ParseDuration(std::string_view text) {
  const auto bad = [&] {
    return Status::InvalidArgument(
        Format(_("\"{0}\" is not a duration like 90m, 72h or 7d"), {text}));
  };
  if (text.size() < 2 || text.size() > 10) return bad();
  const std::string_view digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  const uint64_t n = std::stoull(std::string(digits));
  uint64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = kMinuteMs;
      break;
    case 'h':
      unit = 60 * kMinuteMs;
      break;
    case 'd':
      unit = 24 * 60 * kMinuteMs;
      break;
    default:
      return bad();
  }
  const uint64_t ms = n * unit;
  if (ms < kMinuteMs || ms > 30 * 24 * 60 * kMinuteMs) {
    return Status::InvalidArgument(
        Format(_("an invite may be valid from 1 minute to 30 days, not {0}"), {text}));
  }
  return ms;
}

Result<KdfCost> KdfFromEnv(const char* value, bool allow_minimum) {
  const std::string v = value == nullptr ? "" : value;
  if (v.empty() || v == "interactive") return KdfCost::Interactive();
  if (v == "moderate") return KdfCost::Moderate();
  if (allow_minimum) {
    if (v == "min") return KdfCost::Minimum();
    return Status::InvalidArgument(
        Format(_("ENLACE_KDF must be interactive, moderate or min (tests), not \"{0}\""), {v}));
  }
  if (v == "min") {
    return Status::InvalidArgument(
        _("ENLACE_KDF=min is for tests only and this build refuses it: at that cost a 6-digit "
          "PIN falls in minutes. Unset ENLACE_KDF (interactive, the default) or set it to "
          "moderate"));
  }
  return Status::InvalidArgument(
      Format(_("ENLACE_KDF must be interactive or moderate, not \"{0}\""), {v}));
}

std::string ClockWarning(int64_t offset_ms) {
  const uint64_t magnitude = offset_ms < 0 ? static_cast<uint64_t>(-(offset_ms + 1)) + 1
                                           : static_cast<uint64_t>(offset_ms);
  if (magnitude <= kClockWarnMs) return "";
  const uint64_t minutes = (magnitude + kMinuteMs / 2) / kMinuteMs;
  // offset = hub - device: positive when the device is behind.
  const char* message = nullptr;
  if (offset_ms > 0) {
    message = minutes == 1 ? _("this device's clock is {0} minute behind the hub; enlace is "
                               "using the hub's time")
                           : _("this device's clock is {0} minutes behind the hub; enlace is "
                               "using the hub's time");
  } else {
    message = minutes == 1 ? _("this device's clock is {0} minute ahead of the hub; enlace is "
                               "using the hub's time")
                           : _("this device's clock is {0} minutes ahead of the hub; enlace is "
                               "using the hub's time");
  }
  return Format(message, {std::to_string(minutes)});
}

// ---- talking to the hub ------------------------------------------------------------------------

Status HubStatus(const HttpResponse& response) {
  const std::string_view body(reinterpret_cast<const char*>(response.body.data()),
                              response.body.size());
  return StatusFromHubResponse(static_cast<int>(response.status), body);
}

CliStatus HubRefused(const char* message, const HttpResponse& response) {
  const Status s = HubStatus(response);
  return {ExitCodeFor(ErrorSource::kHub, s.code()), Format(message, {s.message()})};
}

CliStatus ExchangeWithHub(Context& ctx, Replica& replica, const HubTarget& hub,
                          const RequestFactory& make_request, int max_attempts, Exchanged& out) {
  if (max_attempts < 1) max_attempts = 1;
  bool time_retry_used = false;
  std::string last_error;
  int attempt = 0;
  for (;;) {
    ++attempt;
    auto request = make_request();
    if (!request.ok()) return Local(request.status());
    auto response = ctx.http->Send(hub, *request);
    if (!response.ok()) {
      if (response.status().code() != StatusCode::kUnavailable) {
        return CliStatus::From(ErrorSource::kNetwork, response.status());
      }
      last_error = response.status().message();
    } else {
      FollowClock(ctx, replica, *response);
      if (response->status == 401 && !time_retry_used && MentionsTime(*response)) {
        // The request's time was refused; the clock now follows the hub's,
        // so a freshly signed request will carry an acceptable time.
        time_retry_used = true;
        --attempt;
        continue;
      }
      if (!IsRetryableHttpStatus(response->status)) {
        out.response = std::move(response).value();
        out.attempts = attempt;
        return CliStatus::Ok();
      }
      last_error = HubErrorText(*response);
    }
    if (attempt >= max_attempts) {
      const char* message = attempt == 1 ? _("hub unreachable at {0} after {1} attempt: {2}")
                                         : _("hub unreachable at {0} after {1} attempts: {2}");
      return {kExitUnreachable, Format(message, {hub.url, std::to_string(attempt), last_error})};
    }
    const uint64_t delay = BackoffMs(ctx.retry, attempt, ctx.unit_random ? ctx.unit_random() : 0.5);
    ctx.output->Note(Format(
        _("no answer from the hub ({0}); trying again in {1} (attempt {2} of {3})"),
        {last_error, Delay(delay), std::to_string(attempt + 1), std::to_string(max_attempts)}));
    if (ctx.sleep_ms) ctx.sleep_ms(delay);
  }
}

CliStatus RequestFromHub(Context& ctx, Replica& replica, const HubTarget& hub,
                         const RequestFactory& make_request, int max_attempts, const char* refused,
                         Exchanged& out) {
  CLI_RETURN_IF_ERROR(ExchangeWithHub(ctx, replica, hub, make_request, max_attempts, out));
  if (out.response.status != 200) return HubRefused(refused, out.response);
  return CliStatus::Ok();
}

// ---- init, invite, join ------------------------------------------------------------------------

namespace {
// A hub URL and pin given on the command line: `url` becomes the URL as
// stored (NormaliseHubUrl); exit 1 for a bad URL or pin.
CliStatus CheckHubAndPin(const std::string& hub, const std::string& pin, std::string& url) {
  if (Status s = ValidateHubUrl(hub); !s.ok()) return CliStatus::Usage(s.message());
  url = NormaliseHubUrl(hub);
  if (!pin.empty()) {
    if (pin.rfind("sha256//", 0) != 0 || pin.size() < 12) {
      return CliStatus::Usage(
          _("--pin must look like sha256//<base64> (enlace-hub admin pin prints it)"));
    }
    if (url.rfind("https://", 0) != 0) {
      return CliStatus::Usage(_("--pin needs an https:// hub URL"));
    }
  }
  return CliStatus::Ok();
}
}  // namespace

namespace {
// The bootstrap token: from --token-file (FILE, or - for stdin), else asked
// for. Never from argv, where every user of the machine sees it.
CliStatus ReadBootstrapToken(Context& ctx, const InitArgs& args, std::string& token) {
  if (!args.token_in_argv.empty()) {
    return CliStatus::Usage(
        _("a token on the command line is visible to every user of this machine and stays in "
          "the shell history: give it on standard input (--token-file -) or in a file "
          "(--token-file FILE)"));
  }
  if (args.token_file.empty() || args.token_file == "-") {
    if (args.token_file.empty() && ::isatty(STDIN_FILENO) != 0) {
      ctx.output->err() << _("Bootstrap token (from the hub's operator): ") << std::flush;
    }
    if (!std::getline(std::cin, token)) {
      return CliStatus::Usage(_("no bootstrap token on standard input"));
    }
  } else {
    std::ifstream in(args.token_file);
    if (!in || !std::getline(in, token)) {
      return CliStatus::Usage(
          Format(_("cannot read the bootstrap token from {0}"), {args.token_file}));
    }
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return CheckText(token, kTokenRule);
}
}  // namespace

CliStatus RunInit(Context& ctx, const InitArgs& args) {
  const std::string& home = ctx.global.home;
  std::string url;
  CLI_RETURN_IF_ERROR(CheckHubAndPin(args.hub, args.pin, url));
  CLI_RETURN_IF_ERROR(CheckText(args.team, kTeamNameRule));
  std::string token;
  CLI_RETURN_IF_ERROR(ReadBootstrapToken(ctx, args, token));
  std::string name;
  CLI_RETURN_IF_ERROR(NewDeviceName(args.name, name));

  NewDevice dev;
  CLI_RETURN_IF_ERROR(dev.Create(ctx, {args.team, name}, args.duress, args.duress_passphrase_file));
  Replica& replica = dev.replica();
  auto team = CreateTeam(replica);
  if (!team.ok()) return Local(team.status());

  const HubTarget hub{url, args.pin};
  Exchanged ex;
  CLI_RETURN_IF_ERROR(RequestFromHub(
      ctx, replica, hub, [&] { return BuildRegisterTeamRequest(replica, args.team, name, token); },
      ctx.retry.max_attempts, _("the hub refused to register the team: {0}"), ex));
  if (Status s = HandleMembersResponse(replica, ex.response.body); !s.ok()) return Local(s);
  const Config config{url, args.pin, args.team, name, RoleName(Role::kCoordinator)};
  CLI_RETURN_IF_ERROR(dev.Keep(config));

  const std::string device = replica.device_id().ToHex();
  if (ctx.output->json()) {
    ctx.output->Json({{"team", team->ToHex()},
                      {"team_name", args.team},
                      {"device", device},
                      {"device_name", name},
                      {"role", config.role},
                      {"hub", url}});
  } else {
    ctx.output->Line(Format(_("Team \"{0}\" is registered on {1}."), {args.team, url}));
    ctx.output->Line(Format(_("This device, {0} ({1}), is its coordinator. Its data lives in {2}."),
                            {name, device.substr(0, 8), home}));
    ctx.output->Line(_("Next: enlace invite --role field   (one code per new device)"));
  }
  return CliStatus::Ok();
}

CliStatus RunInvite(Context& ctx, const InviteArgs& args) {
  Role role;
  if (args.role == "field") {
    role = Role::kField;
  } else if (args.role == "coordinator") {
    role = Role::kCoordinator;
  } else {
    return CliStatus::Usage(Format(_("--role must be field or coordinator, not {0}"), {args.role}));
  }
  auto valid_for = ParseDuration(args.expires);
  if (!valid_for.ok()) return CliStatus::Usage(valid_for.status().message());

  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  const HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
  std::optional<PreparedInvite> prepared;
  Exchanged ex;
  CLI_RETURN_IF_ERROR(RequestFromHub(
      ctx, *dev.replica, hub,
      [&]() -> Result<OutgoingRequest> {
        // A fresh code per attempt: the one printed is the one the hub stored.
        auto p =
            PrepareInvite(*dev.replica, dev.config.hub_url, dev.config.tls_pin, role, *valid_for);
        if (!p.ok()) return p.status();
        prepared = std::move(p).value();
        return prepared->request;
      },
      ctx.retry.max_attempts, _("the hub refused the invite: {0}"), ex));
  // Kept, to be sent again to a hub restored from a backup that lacks it.
  if (Status kept = KeepInvite(*dev.replica, *prepared); !kept.ok()) return Local(kept);

  if (ctx.output->json()) {
    ctx.output->Json({{"code", prepared->code},
                      {"expires", prepared->expires_ms},
                      {"expires_at", FormatIsoUtc(prepared->expires_ms)},
                      {"role", args.role}});
  } else {
    // The code alone on stdout (code=$(enlace invite)); the advice on stderr.
    ctx.output->err() << Format(_("Invite for one {0} device, valid until {1}. Hand it over in "
                                  "person or over a channel you trust: it\nlets its holder join "
                                  "the team and read its data. On the new device run: enlace "
                                  "join CODE\n"),
                                {RoleLabel(args.role), FormatIsoUtc(prepared->expires_ms)});
    ctx.output->Line(prepared->code);
  }
  return CliStatus::Ok();
}

CliStatus RunJoin(Context& ctx, const JoinArgs& args) {
  std::string code = args.code;
  if (code == "-") {
    // Keeps the code, a secret, out of argv and the shell history.
    if (!std::getline(std::cin, code)) return CliStatus::Usage(_("no invite code on stdin"));
  }
  auto info = ParseInviteCode(code);
  if (!info.ok()) return CliStatus::Usage(info.status().message());
  if (Status s = ValidateHubUrl(info->hub_url); !s.ok()) {
    return CliStatus::Usage(Format(_("the invite code names an unusable hub: {0}"), {s.message()}));
  }
  std::string name;
  CLI_RETURN_IF_ERROR(NewDeviceName(args.name, name));

  NewDevice dev;
  CLI_RETURN_IF_ERROR(dev.Create(ctx, {name}));
  Replica& replica = dev.replica();

  const HubTarget hub{NormaliseHubUrl(info->hub_url), info->tls_pin};
  Exchanged ex;
  CLI_RETURN_IF_ERROR(RequestFromHub(
      ctx, replica, hub, [&] { return BuildJoinRequest(replica, code, name); },
      ctx.retry.max_attempts, _("the hub refused the invite code: {0}"), ex));
  if (Status s = HandleJoinResponse(replica, code, ex.response.body); !s.ok()) return Local(s);

  std::string role = RoleName(Role::kField);
  bool pending = false;
  if (auto status = GetSyncStatus(replica); status.ok()) {
    for (const auto& m : status->members) {
      if (m.device != replica.device_id()) continue;
      role = RoleName(m.role);
      pending = m.pending;
    }
  }
  const Config config{hub.url, hub.tls_pin, "", name, role};
  CLI_RETURN_IF_ERROR(dev.Keep(config));

  const std::string device = replica.device_id().ToHex();
  if (ctx.output->json()) {
    ctx.output->Json({{"team", replica.team().ToHex()},
                      {"device", device},
                      {"device_name", name},
                      {"role", role},
                      {"waiting_for_approval", pending},
                      {"hub", hub.url}});
  } else {
    ctx.output->Line(Format(_("This device, {0} ({1}), joined the team as a {2} device. Hub: {3}"),
                            {name, device.substr(0, 8), RoleLabel(role), hub.url}));
    if (pending) {
      ctx.output->Line(Format(_("The team requires approval: a coordinator must run enlace "
                                "devices approve {0} before this device can sync."),
                              {device.substr(0, 8)}));
    } else {
      ctx.output->Line(_("Next: enlace sync"));
    }
  }
  return CliStatus::Ok();
}

// ---- config ------------------------------------------------------------------------------------

CliStatus RunConfigHub(Context& ctx, const ConfigHubArgs& args) {
  std::string url;
  CLI_RETURN_IF_ERROR(CheckHubAndPin(args.hub, args.pin, url));
  Device dev;
  // The passphrase makes the change the owner's: config.json as it is now
  // (perhaps edited by someone else) is replaced, not checked.
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev, ConfigCheck::kSkip));
  Config config = dev.config;
  config.hub_url = url;
  config.tls_pin = args.pin;
  CLI_RETURN_IF_ERROR(SaveSealedConfig(ctx.global.home, *dev.replica, config));
  ctx.output->Result({{"hub", url}, {"tls_pin", args.pin}},
                     args.pin.empty()
                         ? Format(_("this device now syncs with {0}"), {url})
                         : Format(_("this device now syncs with {0}, whose key is pinned"), {url}));
  return CliStatus::Ok();
}

// ---- records -----------------------------------------------------------------------------------

CliStatus RunPut(Context& ctx, const PutArgs& args) {
  CLI_RETURN_IF_ERROR(CheckName(args.collection, "collection"));
  auto parsed = ParsePutArguments(args.words);
  if (!parsed.ok()) return CliStatus::Usage(parsed.status().message());
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto id = dev.replica->Put(args.collection, parsed->id, parsed->fields);
  if (!id.ok()) {
    if (id.status().code() == StatusCode::kFailedPrecondition && parsed->id) {
      return Local(id.status().WithContext(
          Format(_("the record is deleted; bring it back first with enlace restore {0} {1}"),
                 {args.collection, parsed->id->ToHex()})));
    }
    return Local(id.status());
  }
  ctx.output->Result({{"id", id->ToHex()}},
                     Format(parsed->id ? _("saved {0} {1}") : _("created {0} {1}"),
                            {args.collection, id->ToHex()}));
  return CliStatus::Ok();
}

CliStatus RunGet(Context& ctx, const RecordArgs& args) {
  RecordId id;
  CLI_RETURN_IF_ERROR(ParseRecordArgs(args.collection, args.id, id));
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto record = dev.replica->Get(args.collection, id, /*include_deleted=*/true);
  if (!record.ok()) return Local(record.status());
  if (ctx.output->json()) {
    ctx.output->Json(RecordToJson(*record));
  } else {
    ctx.output->out() << RenderRecord(*record, NamesOf(dev));
  }
  return CliStatus::Ok();
}

CliStatus RunList(Context& ctx, const std::string& collection) {
  CLI_RETURN_IF_ERROR(CheckName(collection, "collection"));
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto records = dev.replica->List(collection);
  if (!records.ok()) return Local(records.status());
  if (ctx.output->json()) {
    json all = json::array();
    for (const auto& r : *records) all.push_back(RecordToJson(r));
    ctx.output->Json(all);
  } else if (records->empty()) {
    ctx.output->Line(Format(_("no records in {0}"), {collection}));
  } else {
    for (const auto& r : *records) ctx.output->out() << RenderRecordLine(r);
  }
  return CliStatus::Ok();
}

namespace {
// Deletes (`deleted`) or restores a record.
CliStatus SetDeleted(Context& ctx, const RecordArgs& args, bool deleted) {
  RecordId id;
  CLI_RETURN_IF_ERROR(ParseRecordArgs(args.collection, args.id, id));
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  const Status s = deleted ? dev.replica->Delete(args.collection, id)
                           : dev.replica->Restore(args.collection, id);
  if (!s.ok()) return Local(s);
  ctx.output->Result(
      {{"id", id.ToHex()}, {"deleted", deleted}},
      Format(deleted ? _("deleted {0} {1} (enlace restore brings it back)") : _("restored {0} {1}"),
             {args.collection, id.ToHex()}));
  return CliStatus::Ok();
}
}  // namespace

CliStatus RunDelete(Context& ctx, const RecordArgs& args) { return SetDeleted(ctx, args, true); }

CliStatus RunRestore(Context& ctx, const RecordArgs& args) { return SetDeleted(ctx, args, false); }

CliStatus RunConflicts(Context& ctx) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto conflicts = dev.replica->Conflicts();
  if (!conflicts.ok()) return Local(conflicts.status());
  const MemberNames names = NamesOf(dev);
  if (ctx.output->json()) {
    json all = json::array();
    for (const auto& c : *conflicts) all.push_back(ConflictToJson(c, names));
    ctx.output->Json(all);
  } else if (conflicts->empty()) {
    ctx.output->Line(_("no conflicts"));
  } else {
    for (size_t i = 0; i < conflicts->size(); ++i) {
      if (i > 0) ctx.output->out() << "\n";
      ctx.output->out() << RenderConflict((*conflicts)[i], names);
    }
  }
  return CliStatus::Ok();
}

CliStatus RunResolve(Context& ctx, const ResolveArgs& args) {
  RecordId id;
  CLI_RETURN_IF_ERROR(ParseRecordArgs(args.collection, args.id, id));
  const bool existence = args.field == kDeletedField;
  if (!existence) CLI_RETURN_IF_ERROR(CheckName(args.field, "field"));
  auto value = ParseValue(args.value);
  if (!value.ok()) return CliStatus::Usage(value.status().message());
  if (existence && *value != "true" && *value != "false") {
    return CliStatus::Usage(Format(
        _("{0} takes true (confirm the delete) or false (keep the record)"), {kDeletedField}));
  }
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  if (Status s = dev.replica->Resolve(args.collection, id, args.field, *value); !s.ok()) {
    return Local(s);
  }
  ctx.output->Result({{"id", id.ToHex()}, {"field", args.field}, {"value", ValueToJson(*value)}},
                     Format(_("resolved {0} {1} {2} = {3} (sync to settle it everywhere)"),
                            {args.collection, id.ToHex(), args.field, DisplayValue(*value)}));
  return CliStatus::Ok();
}

// ---- sync and status ---------------------------------------------------------------------------

CliStatus WipeRevokedDevice(Context& ctx, Device& dev) {
  dev.replica.reset();  // closes the store and drops the keys from memory
  const std::string& home = ctx.global.home;
  Status wiped = WipeReplicaFiles(home);
  Status config = WipeFiles(home, {"config.json"});
  if (!wiped.ok() || !config.ok()) {
    return {kExitRejected,
            Format(_("this device was revoked by a coordinator; destroying its data in {0} "
                     "failed: {1}"),
                   {home, (!wiped.ok() ? wiped : config).message()})};
  }
  return {kExitRejected,
          Format(_("this device was revoked by a coordinator of the team: its keys and data in "
                   "{0} have been destroyed. Writes it had not sent are lost."),
                 {home})};
}

CliStatus SyncWithHub(Context& ctx, Device& dev, const HubTarget& hub, int max_attempts,
                      SyncProgress& out) {
  SyncSession session(*dev.replica);
  bool progress_shown = false;
  int idle_rounds = 0;
  auto end_progress_line = [&] {
    if (progress_shown) ctx.output->err() << "\n";
    progress_shown = false;
  };
  for (;;) {
    Exchanged ex;
    bool retry = false;
    CliStatus s = ExchangeWithHub(
        ctx, *dev.replica, hub,
        [&] {
          // Asked again within one round: the link failed, so smaller batches.
          if (retry) session.LinkFailed();
          retry = true;
          return session.NextRequest();
        },
        max_attempts, ex);
    if (s.ok() && ex.response.status == 403) {
      // A revoked device is told so with the registry chain that proves it;
      // only a chain this device can check makes it destroy itself.
      auto revoked = CheckRevokedNotice(*dev.replica, ex.response.body);
      if (revoked.ok() && *revoked) {
        end_progress_line();
        return WipeRevokedDevice(ctx, dev);
      }
    }
    if (s.ok() && ex.response.status == 403 &&
        HubStatus(ex.response).message() == "unknown device") {
      end_progress_line();
      out = session.progress();
      return {kExitRejected,
              _("the hub does not know this device. If the hub was restored from a backup made "
                "before this device joined, sync another device of the team first (it gives the "
                "hub back the team's list of devices), then sync this one again")};
    }
    if (s.ok() && ex.response.status != 200)
      s = HubRefused(_("the hub refused the sync: {0}"), ex.response);
    if (!s.ok()) {
      end_progress_line();
      out = session.progress();
      return s;
    }
    const SyncProgress before = session.progress();
    auto more = session.HandleResponse(ex.response.body);
    if (!more.ok()) {
      end_progress_line();
      out = session.progress();
      return CliStatus::From(more.status().code() == StatusCode::kUnavailable ? ErrorSource::kHub
                                                                              : ErrorSource::kLocal,
                             more.status());
    }
    const SyncProgress& p = session.progress();
    if (ctx.progress) {
      ctx.output->err() << "\r"
                        << Format(_("round {0}: sent {1}, received {2}"),
                                  {std::to_string(p.rounds), std::to_string(p.sent),
                                   std::to_string(p.received)})
                        << "   " << std::flush;
      progress_shown = true;
    }
    if (!*more) break;
    const bool moved = p.sent != before.sent || p.received != before.received ||
                       p.ignored != before.ignored || p.refused != before.refused;
    idle_rounds = moved ? 0 : idle_rounds + 1;
    if (idle_rounds >= kMaxIdleRounds) {
      end_progress_line();
      out = session.progress();
      return {kExitUnreachable,
              Format(_("the hub at {0} keeps announcing more but sends nothing; try again later"),
                     {hub.url})};
    }
  }
  end_progress_line();
  out = session.progress();
  return CliStatus::Ok();
}

CliStatus RunSync(Context& ctx, const SyncArgs& args) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
  if (!args.hub.empty()) {
    if (Status s = ValidateHubUrl(args.hub); !s.ok()) return CliStatus::Usage(s.message());
    hub.url = NormaliseHubUrl(args.hub);
  }
  if (args.full) {
    if (Status s = RereadLog(*dev.replica); !s.ok()) return Local(s);
  }
  SyncProgress p;
  CLI_RETURN_IF_ERROR(SyncWithHub(ctx, dev, hub, args.max_attempts, p));
  uint64_t invites_resent = 0;
  if (p.hub_behind && IsVerifiedCoordinator(*dev.replica)) {
    // A hub restored from a backup lacks the invites made after it: those
    // still open are sent again, so their codes still work.
    auto again = InvitesToSendAgain(*dev.replica);
    if (!again.ok()) return Local(again.status());
    for (const OutgoingRequest& request : *again) {
      Exchanged ex;
      CLI_RETURN_IF_ERROR(ExchangeWithHub(
          ctx, *dev.replica, hub, [&]() -> Result<OutgoingRequest> { return request; },
          args.max_attempts, ex));
      // 409: the hub has it already.
      if (ex.response.status == 200) {
        ++invites_resent;
      } else if (ex.response.status != 409) {
        return HubRefused(_("the hub refused an open invite sent again: {0}"), ex.response);
      }
    }
  }
  if (p.restamped > 0) {
    ctx.output->Note(Format(
        p.restamped == 1 ? _("{0} write made while this device's clock ran ahead was re-stamped")
                         : _("{0} writes made while this device's clock ran ahead were re-stamped"),
        {std::to_string(p.restamped)}));
  }
  if (p.resealed > 0) {
    ctx.output->Note(
        Format(p.resealed == 1 ? _("{0} unsent write was sealed again under the newest team key")
                               : _("{0} unsent writes were sealed again under the newest team key"),
               {std::to_string(p.resealed)}));
  }
  if (p.parked > 0) {
    ctx.output->Warn(Format(p.parked == 1
                                ? _("{0} of the team's writes uses team key version {1}, which "
                                    "this device does not hold yet: it is kept aside and applied "
                                    "once a coordinator has synced")
                                : _("{0} of the team's writes use team key versions up to {1}, "
                                    "which this device does not hold yet: they are kept aside and "
                                    "applied once a coordinator has synced"),
                            {std::to_string(p.parked), std::to_string(p.waiting_for_key)}));
  }
  if (p.hub_behind) {
    ctx.output->Warn(Format(
        _("the hub had lost writes it had confirmed (it was probably restored from a backup): "
          "this device read its log again and sent back {0} of its own writes; every device of "
          "the team should sync once"),
        {std::to_string(p.resent)}));
  }
  if (invites_resent > 0) {
    ctx.output->Note(Format(_("{0} open invites were sent again to the hub; their codes work"),
                            {std::to_string(invites_resent)}));
  }
  if (!p.registry_refused.empty()) {
    ctx.output->Warn(Format(_("the hub did not take the device registry change signed here: {0}"),
                            {p.registry_refused}));
  }
  if (ctx.output->json()) {
    ctx.output->Json({{"sent", p.sent},
                      {"received", p.received},
                      {"rounds", p.rounds},
                      {"refused", p.refused},
                      {"ignored", p.ignored},
                      {"restamped", p.restamped},
                      {"keys_received", p.keys_received},
                      {"resealed", p.resealed},
                      {"parked", p.parked},
                      {"waiting_for_key", p.waiting_for_key},
                      {"refetch_pending", p.refetch_pending},
                      {"hub_behind", p.hub_behind},
                      {"resent", p.resent},
                      {"missing", p.missing},
                      {"invites_resent", invites_resent}});
  } else {
    const char* message = nullptr;
    if (p.refused > 0) {
      message = p.rounds == 1 ? _("sent {0}, received {1} in {2} round, {3} refused")
                              : _("sent {0}, received {1} in {2} rounds, {3} refused");
    } else {
      message = p.rounds == 1 ? _("sent {0}, received {1} in {2} round")
                              : _("sent {0}, received {1} in {2} rounds");
    }
    ctx.output->Line(Format(message, {std::to_string(p.sent), std::to_string(p.received),
                                      std::to_string(p.rounds), std::to_string(p.refused)}));
  }
  if (p.refused > 0) {
    // Writes that fail verification were altered, forged, or come from a
    // device the team does not trust: the hub or the link cannot be trusted
    // with them, and the user must hear it.
    return {kExitData,
            Format(p.refused == 1
                       ? _("{0} write from the hub failed verification and was refused (altered, "
                           "forged, or from a revoked or unknown device; an altered one is asked "
                           "for again on the next sync): {1}")
                       : _("{0} writes from the hub failed verification and were refused "
                           "(altered, forged, or from a revoked or unknown device; altered ones "
                           "are asked for again on the next sync); last: {1}"),
                   {std::to_string(p.refused), p.last_refusal})};
  }
  if (p.missing > 0) {
    // Writes that other writes prove exist, which the hub did not deliver
    // when asked: it lost or withholds them (docs/PROTOCOL.md §6.11).
    return {kExitData,
            Format(p.missing == 1
                       ? _("{0} write of another device is missing: the team's later writes "
                           "show it exists, and the hub did not deliver it when asked (lost, or "
                           "held back). It is asked for again at every sync; if this goes on, "
                           "tell a coordinator")
                       : _("{0} writes of other devices are missing: the team's later writes "
                           "show they exist, and the hub did not deliver them when asked (lost, "
                           "or held back). They are asked for again at every sync; if this goes "
                           "on, tell a coordinator"),
                   {std::to_string(p.missing)})};
  }
  return CliStatus::Ok();
}

CliStatus RunStatus(Context& ctx) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  auto status = GetSyncStatus(*dev.replica);
  if (!status.ok()) return Local(status.status());
  const Config& c = dev.config;
  // The role the verified registry gives this device, never the config's.
  const std::string role =
      RoleName(IsVerifiedCoordinator(*dev.replica) ? Role::kCoordinator : Role::kField);
  const std::string device = dev.replica->device_id().ToHex();
  const std::string team = dev.replica->team().ToHex();
  const bool synced = status->last_sync_ms != 0;
  if (ctx.output->json()) {
    ctx.output->Json({{"pending", status->pending_writes},
                      {"last_sync", synced ? json(FormatIsoUtc(status->last_sync_ms)) : json()},
                      {"last_sync_ms", status->last_sync_ms},
                      {"hub", c.hub_url},
                      {"tls_pin", c.tls_pin},
                      {"team", team},
                      {"team_name", c.team_name},
                      {"device", device},
                      {"device_name", c.device_name},
                      {"role", role},
                      {"members", status->members.size()},
                      {"missing", status->missing_writes},
                      {"clock_offset_ms", status->clock_offset_ms}});
    return CliStatus::Ok();
  }
  // Label and value rows, the labels padded to the widest in this language.
  std::vector<std::pair<std::string, std::string>> rows = {
      {_("unsent writes"), std::to_string(status->pending_writes)},
      {_("last sync"), synced ? FormatIsoUtc(status->last_sync_ms) : _("never")},
      {_("hub"), c.tls_pin.empty() ? c.hub_url : Format(_("{0}  (key pinned)"), {c.hub_url})},
      {_("team"), c.team_name.empty() ? team : c.team_name + " (" + team + ")"},
      {_("device"), c.device_name + " (" + device + ")"},
      {_("role"), RoleLabel(role)},
      {_("members"), std::to_string(status->members.size())},
  };
  if (std::string w = ClockWarning(status->clock_offset_ms); !w.empty()) {
    rows.emplace_back(_("clock"), std::move(w));
  }
  if (status->missing_writes > 0) {
    rows.emplace_back(_("missing"),
                      Format(_("{0} writes of other devices the hub has not delivered"),
                             {std::to_string(status->missing_writes)}));
  }
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, DisplayWidth(row.first));
  std::ostream& os = ctx.output->out();
  for (const auto& [label, value] : rows) {
    os << label << std::string(width + 2 - DisplayWidth(label), ' ') << value << "\n";
  }
  return CliStatus::Ok();
}

}  // namespace enlace::cli

#undef CLI_RETURN_IF_ERROR
