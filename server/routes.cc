#include "routes.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <span>

#include "base/parallel.h"
#include "enlace/registry.h"
#include "replica/write_internal.h"
#include "report_check.h"

namespace enlace::hub {

namespace {

std::span<const uint8_t> BodyBytes(const HttpRequest& r) {
  return {reinterpret_cast<const uint8_t*>(r.body.data()), r.body.size()};
}

HttpResponse Json(int status, const nlohmann::json& j) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse Error(const Status& s) { return Json(HttpStatusFor(s), {{"error", s.message()}}); }

HttpResponse Binary(const Bytes& body) {
  HttpResponse r;
  r.body.assign(body.begin(), body.end());
  return r;
}

// The path without its query string.
std::string_view PathOf(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string ShortId(const DeviceId& d) { return d.ToHex().substr(0, 8); }

constexpr char kRevokedMessage[] = "this device was revoked by a coordinator";

// "/v1/reports/", before a report id.
std::string_view ReportsPrefix() {
  static const std::string prefix = std::string(kReportsPath) + "/";
  return prefix;
}

// The token of "Bearer <token>" (scheme case-insensitive), or "".
std::string BearerToken(const std::string& authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return "";
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return "";
  }
  std::string token = authorization.substr(kScheme.size());
  const auto first = token.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  token.erase(0, first);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  return token;
}

// A 401 for a reader, with the scheme it may use.
HttpResponse Unauthorized(const Status& s) {
  HttpResponse r = Error(s);
  if (r.status == 401) r.headers["www-authenticate"] = "Bearer realm=\"enlace reports\"";
  return r;
}

}  // namespace

int HttpStatusFor(const Status& s) { return enlace::HttpStatusFor(s.code()); }

HubHandler::HubHandler(HubStorage& storage, HubOptions options)
    : storage_(storage), options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemWallClockMs;
}

uint64_t HubHandler::Now() const { return options_.clock(); }

bool HubHandler::AdmitBody(const HttpRequest& head) {
  const std::string_view path = PathOf(head.target);
  if (head.method != "POST") return false;
  if (path != kPathSync && path != kPathCreateInvite && path != kPathHistory &&
      path != kReportsPath) {
    return false;
  }
  auto sig = ParseRequestSignature([&](std::string_view name) { return head.Header(name); });
  if (!sig.ok()) return false;
  auto device = storage_.FindDevice(sig->device);
  return device.ok() && device->has_value();
}

size_t HubHandler::MaxBodyBytes(std::string_view target) const {
  const std::string_view path = PathOf(target);
  if (path == kPathSync) return options_.max_sync_body_bytes;
  if (path == kReportsPath) return options_.max_report_body_bytes;
  return options_.max_small_body_bytes;
}

void HubHandler::Count(const std::string& endpoint, int status) {
  std::lock_guard lock(metrics_mu_);
  ++requests_[{endpoint, status}];
}

HttpResponse HubHandler::Handle(const HttpRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  LogContext who;
  HttpResponse r;
  try {
    r = Route(request, who);
  } catch (const std::exception&) {
    r = Error(Status::Internal("internal error"));
  }
  r.headers[kHeaderHubTime] = std::to_string(Now());
  bytes_in_ += request.body.size();
  bytes_out_ += r.body.size();
  const std::string endpoint(PathOf(request.target));
  if (endpoint.rfind(ReportsPrefix(), 0) == 0) {
    Count("/v1/reports/:id", r.status);  // one series for every report id
  } else {
    Count(endpoint.size() > 32 ? "other" : endpoint, r.status);
  }
  if (options_.log) {
    const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count() /
                    1000.0;
    nlohmann::json line = {{"ts", Now()},
                           {"event", "request"},
                           {"method", request.method},
                           {"path", endpoint},
                           {"status", r.status},
                           {"ms", ms},
                           {"bytes_in", request.body.size()},
                           {"bytes_out", r.body.size()}};
    if (!who.device.empty()) line["device"] = who.device;
    if (!who.viewer.empty()) line["viewer"] = who.viewer;
    if (!who.report.empty()) line["report"] = who.report;
    if (r.status >= 400 && r.content_type == "application/json") {
      const auto j = nlohmann::json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("error")) line["error"] = j["error"];
    }
    options_.log(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return r;
}

HttpResponse HubHandler::Route(const HttpRequest& request, LogContext& log) {
  const std::string_view path = PathOf(request.target);
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (path == kPathHealth && get) return Health();
  if (path == kPathMetrics && get) return Metrics(request);
  if (path == kPathSync && post) return Sync(request, log);
  if (path == kPathJoin && post) return Join(request, log);
  if (path == kPathCreateInvite && post) return CreateInvite(request, log);
  if (path == kPathRegisterTeam && post) return RegisterTeam(request, log);
  if (path == kReportsPath && post) return PublishReport(request, log);
  if (path == kReportsPath && get) return ListReports(request, log);
  const std::string_view reports_prefix = ReportsPrefix();
  const bool report_path = path.size() > reports_prefix.size() &&
                           path.substr(0, reports_prefix.size()) == reports_prefix;
  if (report_path && get) return GetReport(request, path.substr(reports_prefix.size()), log);
  if (path == kPathHistory) {
    if (post) return History(request, log);
    return Json(405, {{"error", "method not allowed"}});
  }
  if (path == kPathHealth || path == kPathMetrics || path == kPathSync || path == kPathJoin ||
      path == kPathCreateInvite || path == kPathRegisterTeam || path == kReportsPath ||
      report_path) {
    return Json(405, {{"error", "method not allowed"}});
  }
  return Json(404, {{"error", "no such endpoint"}});
}

HttpResponse HubHandler::Health() {
  auto counts = storage_.Counts();
  if (!counts.ok())
    return Json(503, {{"status", "unavailable"}, {"error", counts.status().message()}});
  return Json(200, {{"status", "ok"}, {"protocol", kProtocolVersion}});
}

HttpResponse HubHandler::Metrics(const HttpRequest& request) {
  const std::string authorization = request.Header(kHeaderAuthorization);
  if (!authorization.empty() || !request.from_loopback || !options_.metrics_from_loopback) {
    const std::string token = BearerToken(authorization);
    if (token.empty()) {
      if (!options_.metrics_token_hash) {
        return Json(403, {{"error",
                           "metrics are served on a loopback address only (serve "
                           "--metrics-token-file allows a token)"}});
      }
      HttpResponse r = Json(401, {{"error", "metrics need authorization: Bearer <token>"}});
      r.headers["www-authenticate"] = "Bearer realm=\"enlace metrics\"";
      return r;
    }
    const TokenHash given = HashToken(token);
    if (!options_.metrics_token_hash ||
        sodium_memcmp(given.data(), options_.metrics_token_hash->data(), given.size()) != 0) {
      return Json(403, {{"error", "wrong metrics token"}});
    }
  }
  std::string out;
  auto line = [&out](const std::string& s) { out += s + "\n"; };
  line("# HELP enlace_requests_total HTTP requests by endpoint and status.");
  line("# TYPE enlace_requests_total counter");
  {
    std::lock_guard lock(metrics_mu_);
    for (const auto& [key, n] : requests_) {
      line("enlace_requests_total{endpoint=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n));
    }
  }
  line("# TYPE enlace_writes_received_total counter");
  line("enlace_writes_received_total " + std::to_string(writes_received_.load()));
  line("# TYPE enlace_writes_served_total counter");
  line("enlace_writes_served_total " + std::to_string(writes_served_.load()));
  line("# TYPE enlace_request_bytes_total counter");
  line("enlace_request_bytes_total " + std::to_string(bytes_in_.load()));
  line("# TYPE enlace_response_bytes_total counter");
  line("enlace_response_bytes_total " + std::to_string(bytes_out_.load()));
  if (auto c = storage_.Counts(); c.ok()) {
    line("# TYPE enlace_teams gauge");
    line("enlace_teams " + std::to_string(c->teams));
    line("# TYPE enlace_devices gauge");
    line("enlace_devices " + std::to_string(c->devices));
    line("# TYPE enlace_log_writes gauge");
    line("enlace_log_writes " + std::to_string(c->writes));
    line("# TYPE enlace_invites_open gauge");
    line("enlace_invites_open " + std::to_string(c->invites_open));
    line("# TYPE enlace_reports gauge");
    line("enlace_reports " + std::to_string(c->reports));
    line("# TYPE enlace_viewer_tokens gauge");
    line("enlace_viewer_tokens " + std::to_string(c->viewer_tokens));
  }
  line("# TYPE enlace_reports_published_total counter");
  line("enlace_reports_published_total " + std::to_string(reports_published_.load()));
  line("# TYPE enlace_reports_refused_total counter");
  line("enlace_reports_refused_total " + std::to_string(reports_refused_.load()));
  line("# TYPE enlace_reports_served_total counter");
  line("enlace_reports_served_total " + std::to_string(reports_served_.load()));
  if (options_.extra_metrics) out += options_.extra_metrics();
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = std::move(out);
  return r;
}

Result<RequestSignature> HubHandler::ParseFresh(const HttpRequest& request, uint64_t now) {
  ENLACE_ASSIGN_OR_RETURN(RequestSignature sig, ParseRequestSignature([&](std::string_view name) {
                            return request.Header(name);
                          }));
  const uint64_t skew = sig.time_ms > now ? sig.time_ms - now : now - sig.time_ms;
  if (skew > kRequestFreshnessMs) {
    return Status::Unauthenticated("request time is " + std::to_string(skew / 1000) +
                                   " s off the hub's clock; check the device's time");
  }
  return sig;
}

namespace {
uint64_t ForgetBefore(uint64_t now) {
  return now > 2 * kRequestFreshnessMs ? now - 2 * kRequestFreshnessMs : 0;
}
}  // namespace

Status HubHandler::RememberNonce(const RequestSignature& sig, uint64_t now) {
  Status s = storage_.RememberNonce(sig.device, sig.nonce, now, ForgetBefore(now));
  if (s.code() == StatusCode::kAlreadyExists) return Status::Unauthenticated("replayed request");
  return s;
}

Result<RequestSignature> HubHandler::CheckSignature(const HttpRequest& request,
                                                    const PublicKey32* known_key) {
  const uint64_t now = Now();
  ENLACE_ASSIGN_OR_RETURN(RequestSignature sig, ParseFresh(request, now));
  PublicKey32 key{};
  if (known_key != nullptr) {
    key = *known_key;
  } else {
    ENLACE_ASSIGN_OR_RETURN(auto device, storage_.FindDevice(sig.device));
    if (!device) return Status::PermissionDenied("unknown device");
    // A revoked device's request is still checked: only that device may
    // learn that it was revoked (Authenticate answers it with the notice).
    key = device->member.signing_key;
  }
  ENLACE_RETURN_IF_ERROR(
      VerifyRequestSignature(sig, key, request.method, PathOf(request.target), BodyBytes(request)));
  ENLACE_RETURN_IF_ERROR(RememberNonce(sig, now));
  return sig;
}

Result<DeviceRecord> HubHandler::Authenticate(const HttpRequest& request,
                                              RequestNonce* deferred_nonce) {
  const uint64_t now = Now();
  ENLACE_ASSIGN_OR_RETURN(RequestSignature sig, ParseFresh(request, now));
  ENLACE_ASSIGN_OR_RETURN(auto device, storage_.FindDevice(sig.device));
  if (!device) return Status::PermissionDenied("unknown device");
  // A revoked device's request is still checked: only that device may
  // learn that it was revoked.
  ENLACE_RETURN_IF_ERROR(VerifyRequestSignature(sig, device->member.signing_key, request.method,
                                                PathOf(request.target), BodyBytes(request)));
  const bool active = !device->member.revoked && !device->member.pending;
  if (deferred_nonce != nullptr && active) {
    *deferred_nonce = RequestNonce{sig.device, sig.nonce, ForgetBefore(now)};
  } else {
    ENLACE_RETURN_IF_ERROR(RememberNonce(sig, now));
  }
  if (device->member.revoked) return Status::PermissionDenied(kRevokedMessage);
  if (device->member.pending) {
    return Status::PermissionDenied(
        "this device waits for a coordinator's approval (enlace devices approve)");
  }
  return *device;
}

HttpResponse HubHandler::DeviceError(const Status& s, const HttpRequest& request) {
  if (s.code() != StatusCode::kPermissionDenied || s.message() != kRevokedMessage) return Error(s);
  // The signature was checked: tell the device, with the registry chain
  // that proves it, so that it wipes itself.
  auto id = DeviceId::FromHex(request.Header(kHeaderDevice));
  if (!id.ok()) return Error(s);
  auto device = storage_.FindDevice(*id);
  if (!device.ok() || !*device) return Error(s);
  auto registries = storage_.Registries((*device)->team);
  if (!registries.ok()) return Error(registries.status());
  HttpResponse r = Binary(Encode(RevokedNotice{std::move(*registries)}));
  r.status = 403;
  return r;
}

HttpResponse HubHandler::RegisterTeam(const HttpRequest& request, LogContext& log) {
  auto req = DecodeRegisterTeamRequest(BodyBytes(request));
  if (!req.ok()) return Error(req.status().WithContext("bad registration"));
  auto sig = CheckSignature(request, &req->signing_key);
  if (!sig.ok()) return Error(sig.status());
  log.device = ShortId(sig->device);
  if (req->team.IsZero()) return Error(Status::InvalidArgument("team id is missing"));
  auto members = storage_.RegisterTeam(*req, sig->device, HashToken(req->bootstrap_token), Now());
  if (!members.ok()) return Error(members.status());
  return Binary(Encode(*members));
}

HttpResponse HubHandler::CreateInvite(const HttpRequest& request, LogContext& log) {
  auto device = Authenticate(request);
  if (!device.ok()) return DeviceError(device.status(), request);
  log.device = ShortId(device->member.device);
  if (device->member.role != Role::kCoordinator) {
    return Error(Status::PermissionDenied("only a coordinator can invite devices"));
  }
  auto req = DecodeCreateInviteRequest(BodyBytes(request));
  if (!req.ok()) return Error(req.status().WithContext("bad invite"));
  if (req->expires_ms <= Now())
    return Error(Status::InvalidArgument("the invite is already expired"));
  // The grant lets the invited device in on every member's word: it must be
  // this coordinator's, for this invite, as the request describes it.
  auto grant = DecodeInviteGrant(req->grant);
  if (!grant.ok()) return Error(grant.status().WithContext("bad invite grant"));
  if (grant->team != device->team || grant->invite != req->invite_id ||
      grant->issuer != device->member.device || grant->role != req->role ||
      grant->expires_ms != req->expires_ms) {
    return Error(Status::InvalidArgument("the invite grant does not match the invite"));
  }
  if (!internal::VerifySignature(device->member.signing_key, InviteGrantSigningInput(*grant),
                                 grant->signature)) {
    return Error(Status::InvalidArgument("the invite grant's signature does not verify"));
  }
  Status s = storage_.CreateInvite(*device, *req, Now());
  if (!s.ok()) return Error(s);
  return Binary(Encode(MembersResponse{}));
}

HttpResponse HubHandler::Join(const HttpRequest& request, LogContext& log) {
  auto req = DecodeJoinRequest(BodyBytes(request));
  if (!req.ok()) return Error(req.status().WithContext("bad join request"));
  auto sig = CheckSignature(request, &req->signing_key);
  if (!sig.ok()) return Error(sig.status());
  log.device = ShortId(sig->device);
  auto resp = storage_.RedeemInvite(*req, sig->device, Now());
  if (!resp.ok()) return Error(resp.status());
  return Binary(Encode(*resp));
}

namespace {

// Requests with more writes than this verify their signatures in parallel.
constexpr size_t kParallelVerifyMin = 32;

// Write i's signature check, for i < count: on hardware threads when there
// are many, else here. Each result lands in its own slot, so the caller
// reads them in order and answers the same first error as a serial loop.
std::vector<Status> VerifyWriteSignatures(const std::vector<Write>& writes, size_t count,
                                          const PublicKey32& key) {
  std::vector<Status> out(count);
  internal::ParallelFor(count, kParallelVerifyMin + 1, 0,
                        [&](size_t i) { out[i] = internal::VerifyWriteSignature(writes[i], key); });
  return out;
}

}  // namespace

HttpResponse HubHandler::Sync(const HttpRequest& request, LogContext& log) {
  RequestNonce nonce;
  auto device = Authenticate(request, &nonce);
  if (!device.ok()) return DeviceError(device.status(), request);
  log.device = ShortId(device->member.device);
  auto req = DecodeSyncRequest(BodyBytes(request));
  if (!req.ok()) return Error(req.status().WithContext("bad sync request"));

  const uint64_t now = Now();
  // The checks of each write, in this order, the first failure answering:
  // decodes, team, own dot, signature, clock, context. Decoding and the
  // cheap checks run first over the batch; signatures (the cost) are
  // verified for the writes before the first such failure, maybe in
  // parallel; then the rest in order.
  std::vector<Write> decoded;
  decoded.reserve(req->writes.size());
  Status first_failure;
  for (auto& bytes : req->writes) {
    auto w = Write::Decode(bytes);
    if (!w.ok()) {
      first_failure = w.status().WithContext("bad write");
      break;
    }
    if (w->team != device->team) {
      first_failure = Status::PermissionDenied("write for another team");
      break;
    }
    if (w->dot.device != device->member.device) {
      first_failure = Status::PermissionDenied("a device may only push its own writes");
      break;
    }
    decoded.push_back(std::move(*w));
  }
  const std::vector<Status> signatures =
      VerifyWriteSignatures(decoded, decoded.size(), device->member.signing_key);
  // Each other device's highest stored counter, looked up once.
  std::vector<DeviceId> others;
  for (const Write& w : decoded) {
    for (const auto& [other, counter] : w.context.entries()) {
      if (other != w.dot.device) others.push_back(other);
    }
  }
  std::sort(others.begin(), others.end());
  others.erase(std::unique(others.begin(), others.end()), others.end());
  std::vector<uint64_t> stored_max;
  if (!others.empty()) {
    auto found = storage_.MaxStoredCounters(others);
    if (!found.ok()) return Error(found.status());
    stored_max = std::move(*found);
  }
  auto stored_counter = [&](const DeviceId& d) {
    const auto it = std::lower_bound(others.begin(), others.end(), d);
    return stored_max[static_cast<size_t>(it - others.begin())];
  };

  std::vector<IncomingWrite> writes;
  writes.reserve(decoded.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    const Write& w = decoded[i];
    if (!signatures[i].ok()) return Error(Status::InvalidArgument(signatures[i].message()));
    if (w.hlc.physical_ms() > now + options_.max_future_drift_ms) {
      return Error(Status::InvalidArgument(
          "a write is stamped " + std::to_string((w.hlc.physical_ms() - now) / 60000) +
          " minutes in the hub's future; the device's clock is ahead"));
    }
    // A device learns other devices' writes only through this hub, so a
    // context may not claim one the hub never stored: such a write would
    // make the real writer's later edits look already seen everywhere.
    for (const auto& [other, counter] : w.context.entries()) {
      if (other == w.dot.device) continue;
      if (counter > stored_counter(other)) {
        return Error(Status::InvalidArgument(
            "a write claims to have seen writes of another device that this hub never received"));
      }
    }
    writes.push_back(IncomingWrite{w.dot, std::move(req->writes[i]),
                                   std::move(decoded[i].collection), w.record, w.key_version,
                                   w.scope, w.kind == WriteKind::kVoid});
  }
  if (!first_failure.ok()) return Error(first_failure);
  const size_t max_pull = std::min<uint32_t>(req->max_response_bytes, options_.max_pull_bytes);
  req->writes.clear();
  auto resp = storage_.Sync(*device, writes, *req, max_pull, now, &nonce);
  if (!resp.ok()) return Error(resp.status());
  writes_received_ += writes.size();
  writes_served_ += resp->writes.size();
  return Binary(Encode(*resp));
}

// ---- published reports -----------------------------------------------------------------

Result<TeamId> HubHandler::AuthenticateReader(const HttpRequest& request, LogContext& log) {
  // A request that carries any signature header is a device's, and is
  // judged as one; only an unsigned request may use a viewer token.
  const bool signed_request =
      !request.Header(kHeaderDevice).empty() || !request.Header(kHeaderSignature).empty() ||
      !request.Header(kHeaderNonce).empty() || !request.Header(kHeaderTime).empty();
  const std::string authorization = request.Header(kHeaderAuthorization);
  if (signed_request || authorization.empty()) {
    ENLACE_ASSIGN_OR_RETURN(DeviceRecord device, Authenticate(request));
    log.device = ShortId(device.member.device);
    return device.team;
  }
  const std::string token = BearerToken(authorization);
  if (token.empty()) {
    return Status::Unauthenticated("the authorization header must be \"Bearer <viewer token>\"");
  }
  ENLACE_ASSIGN_OR_RETURN(auto viewer, storage_.FindViewer(token));
  if (!viewer) return Status::Unauthenticated("the viewer token is unknown");
  log.viewer = viewer->id.substr(0, 8);
  return viewer->team;
}

HttpResponse HubHandler::PublishReport(const HttpRequest& request, LogContext& log) {
  if (request.Header(kHeaderDevice).empty() && !request.Header(kHeaderAuthorization).empty()) {
    return Error(Status::PermissionDenied(
        "a viewer token can only read published reports; a coordinator's device publishes them"));
  }
  auto device = Authenticate(request);
  if (!device.ok()) return DeviceError(device.status(), request);
  log.device = ShortId(device->member.device);
  if (device->member.role != Role::kCoordinator) {
    return Error(Status::PermissionDenied("only a coordinator can publish reports"));
  }
  ReportLimits limits;
  limits.min_k = options_.report_min_k;
  ReportVerdict verdict = CheckReport(request.body, limits);
  std::lock_guard publishing(publish_mu_);
  if (verdict.ok()) {
    auto earlier = EarlierReports(device->team, verdict.meta, request.body);
    if (!earlier.ok()) return Error(earlier.status());
    // A retry of a stored report is answered as the first time.
    if (*earlier) {
      verdict = AuditAcrossPublications(std::move(verdict), UtcDate(Now()), **earlier);
    }
  }
  if (!verdict.ok()) {
    ++reports_refused_;
    return Json(verdict.http_status, {{"error", verdict.error}});
  }
  auto answer = storage_.PublishReport(*device, verdict.meta, request.body, Now());
  if (!answer.ok()) return Error(answer.status());
  log.report = answer->id;
  ++reports_published_;
  HttpResponse r;
  r.content_type = "application/json";
  r.body = EncodePublishReportAnswer(*answer);
  return r;
}

Result<std::optional<std::vector<PublishedReport>>> HubHandler::EarlierReports(
    const TeamId& team, const ReportMeta& meta, std::string_view body) {
  using Out = std::optional<std::vector<PublishedReport>>;
  ENLACE_ASSIGN_OR_RETURN(const auto listed, storage_.ListReports(team));
  std::vector<PublishedReport> out;
  for (const ReportListing& r : listed) {
    // Only the same year can be linked (docs/REPORTS.md); the audit reads
    // the bodies to check the rest.
    if (r.from.size() < 4 || meta.from.size() < 4 ||
        r.from.substr(0, 4) != meta.from.substr(0, 4)) {
      continue;
    }
    ENLACE_ASSIGN_OR_RETURN(auto stored, storage_.GetReport(team, r.id));
    if (!stored) continue;
    if (*stored == body) return Out();
    out.push_back({r.id, std::move(*stored)});
  }
  return Out(std::move(out));
}

HttpResponse HubHandler::ListReports(const HttpRequest& request, LogContext& log) {
  auto team = AuthenticateReader(request, log);
  if (!team.ok()) return Unauthorized(team.status());
  auto reports = storage_.ListReports(*team);
  if (!reports.ok()) return Error(reports.status());
  HttpResponse r;
  r.content_type = "application/json";
  r.body = EncodeReportList(*reports);
  return r;
}

HttpResponse HubHandler::GetReport(const HttpRequest& request, std::string_view id,
                                   LogContext& log) {
  auto team = AuthenticateReader(request, log);
  if (!team.ok()) return Unauthorized(team.status());
  std::string lower(id);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  // Another team's report is as absent as one that never was.
  const Status missing = Status::NotFound("no such report");
  if (!IsReportId(lower)) return Error(missing);
  auto body = storage_.GetReport(*team, lower);
  if (!body.ok()) return Error(body.status());
  if (!*body) return Error(missing);
  log.report = lower;
  ++reports_served_;
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(**body);
  return r;
}

// ---- record history (audit) -------------------------------------------------------------

HttpResponse HubHandler::History(const HttpRequest& request, LogContext& log) {
  auto device = Authenticate(request);
  if (!device.ok()) return DeviceError(device.status(), request);
  log.device = ShortId(device->member.device);
  auto req = DecodeHistoryRequest(BodyBytes(request));
  if (!req.ok()) return Error(req.status().WithContext("bad history request"));
  if (Status s = ValidateName(req->collection, "collection"); !s.ok()) return Error(s);
  // Only the member's own team: another team's record is as empty as one
  // that never was.
  auto writes =
      storage_.RecordHistory(device->team, req->collection, req->record, WireLimits{}.max_writes);
  if (!writes.ok()) return Error(writes.status());
  writes_served_ += writes->size();
  HistoryResponse resp;
  resp.writes = std::move(*writes);
  return Binary(Encode(resp));
}

}  // namespace enlace::hub
