// The hub's request handling: a pure function from HttpRequest to
// HttpResponse over HubStorage. Checked, stored, answered; no global state.
#ifndef ENLACE_SERVER_ROUTES_H_
#define ENLACE_SERVER_ROUTES_H_

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "enlace/hlc.h"
#include "http.h"
#include "hub_storage.h"

namespace enlace::hub {

struct HubOptions {
  WallClock clock;                          // empty: the system clock
  size_t max_sync_body_bytes = 8u << 20;    // push batches
  size_t max_small_body_bytes = 64u << 10;  // join, invites, registration
  uint32_t max_pull_bytes = 4u << 20;       // cap on a response's writes
  uint64_t max_future_drift_ms = 5 * 60 * 1000;
  // Published reports: the smallest k the hub accepts (serve
  // --report-min-k), and the network body limit of /v1/reports. Bodies
  // between kMaxReportBytes and this limit get a JSON 400 that says why;
  // bigger ones a plain 413.
  uint32_t report_min_k = 11;
  size_t max_report_body_bytes = 2 * kMaxReportBytes;
  // Receives one JSON object per line (no secrets, no values). Empty: none.
  std::function<void(const std::string&)> log;
  // GET /metrics (the teams, devices and traffic of the hub) is answered to
  // a peer on a loopback address, unless metrics_from_loopback is false (a
  // proxy on the same machine makes every request look local), and to a
  // request with `authorization: Bearer <token>` whose HashToken is
  // metrics_token_hash (serve --metrics-token-file). A request that carries
  // an authorization header must carry the right token, loopback or not.
  // Otherwise 401 (no or not a Bearer token, one is configured) or 403.
  bool metrics_from_loopback = true;
  std::optional<TokenHash> metrics_token_hash;
  // More Prometheus text for /metrics (the network layer's counters).
  std::function<std::string()> extra_metrics;
};

class HubHandler final : public Handler {
 public:
  HubHandler(HubStorage& storage, HubOptions options);

  HttpResponse Handle(const HttpRequest& request) override;
  size_t MaxBodyBytes(std::string_view target) const override;
  // True for a request to an endpoint that takes a registered device's
  // signature (sync, invites, history, POST /v1/reports) whose four
  // signature headers are well-formed and name a device registered on this
  // hub, active or not (a revoked device's big push must still reach the
  // answer that makes it wipe itself). The signature itself covers the body
  // and is checked in Handle. The request's time is not checked here: a
  // device whose clock is off gets 401 with the hub's time from Handle, and
  // retries, where a 413 would end its sync. Registration and join (64 KiB
  // bodies, signed by a key in the body) are never admitted; their limit is
  // the unverified budget anyway.
  bool AdmitBody(const HttpRequest& head) override;

 private:
  // Who made a request and what it touched, for the log line. Never a
  // token or a value.
  struct LogContext {
    std::string device;  // short device id
    std::string viewer;  // short viewer-token id
    std::string report;  // report id
  };
  HttpResponse Route(const HttpRequest& request, LogContext& log);
  HttpResponse Health();
  HttpResponse Metrics(const HttpRequest& request);
  HttpResponse RegisterTeam(const HttpRequest& request, LogContext& log);
  HttpResponse CreateInvite(const HttpRequest& request, LogContext& log);
  HttpResponse Join(const HttpRequest& request, LogContext& log);
  HttpResponse Sync(const HttpRequest& request, LogContext& log);
  HttpResponse PublishReport(const HttpRequest& request, LogContext& log);
  HttpResponse ListReports(const HttpRequest& request, LogContext& log);
  // The team's reports of the year of `meta` (their bodies), for the audit
  // across publications; nullopt when one of them is `body` itself (a
  // retry, answered as the first time).
  Result<std::optional<std::vector<PublishedReport>>> EarlierReports(const TeamId& team,
                                                                     const ReportMeta& meta,
                                                                     std::string_view body);
  HttpResponse GetReport(const HttpRequest& request, std::string_view id, LogContext& log);
  // POST /v1/history: a record's writes for any member of its team.
  HttpResponse History(const HttpRequest& request, LogContext& log);
  // A reader of `team`'s reports: a signed request of a registered device
  // (any role), or else `authorization: Bearer <viewer token>`.
  Result<TeamId> AuthenticateReader(const HttpRequest& request, LogContext& log);
  // Checks signature headers, freshness and replay; with `known_key` set the
  // device need not be registered yet (registration and join).
  Result<RequestSignature> CheckSignature(const HttpRequest& request, const PublicKey32* known_key);
  // Signature headers and freshness only.
  Result<RequestSignature> ParseFresh(const HttpRequest& request, uint64_t now);
  // kAlreadyExists from the storage becomes 401 "replayed request".
  Status RememberNonce(const RequestSignature& sig, uint64_t now);
  // A registered device's signed request: checks it (CheckSignature with the
  // registered key, one device lookup) and that the device may act. With
  // `deferred_nonce`, an active device's nonce is not remembered here but
  // handed back, for the caller to remember in the transaction of its work
  // (HubStorage::Sync); a revoked or pending device's is remembered at once.
  Result<DeviceRecord> Authenticate(const HttpRequest& request,
                                    RequestNonce* deferred_nonce = nullptr);
  // Error(s), except for a revoked device: a 403 whose body is the
  // RevokedNotice (the team's registry chain) that makes it wipe itself.
  HttpResponse DeviceError(const Status& s, const HttpRequest& request);
  uint64_t Now() const;
  void Count(const std::string& endpoint, int status);

  HubStorage& storage_;
  HubOptions options_;
  std::mutex metrics_mu_;
  // Held from the audit of a publication to its storing, so two reports
  // published at once are audited with each other.
  std::mutex publish_mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::atomic<uint64_t> writes_received_{0};
  std::atomic<uint64_t> writes_served_{0};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> reports_published_{0};
  std::atomic<uint64_t> reports_refused_{0};
  std::atomic<uint64_t> reports_served_{0};
};

// The HTTP status for a core Status.
int HttpStatusFor(const Status& status);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_ROUTES_H_
