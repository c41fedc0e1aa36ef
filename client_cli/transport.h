// Moving the core's requests to the hub over HTTP(S) with libcurl.
//
// The core is sans-I/O (DESIGN §1): it builds an OutgoingRequest and takes a
// response body back. HttpClient sends one request; the retry policy and the
// hub-clock handling around it live with the commands, which rebuild (and
// re-sign) the request for every attempt so a retry is never a replay.
#ifndef ENLACE_CLIENT_CLI_TRANSPORT_H_
#define ENLACE_CLIENT_CLI_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "enlace/status.h"
#include "enlace/sync.h"
#include "enlace/write.h"

namespace enlace::cli {

// Where the hub is and how to trust it.
struct HubTarget {
  std::string url;      // base URL, "http://..." or "https://...", no trailing slash
  std::string tls_pin;  // "sha256//<base64>": replaces CA validation for https; "" = CAs
};

struct HttpResponse {
  long status = 0;  // HTTP status code
  Bytes body;
  std::string hub_time;  // the x-enlace-hub-time header, "" when absent
};

// Sends one request (POST, or GET with an empty body). The errors say whether trying again may
// help:
//   kUnavailable        connection refused or cut, DNS, timeout: retryable
//   kPermissionDenied   the hub's TLS key does not match the pin: never retry
//   kUnauthenticated    the hub's certificate failed CA validation: never retry
//   kInvalidArgument    a malformed URL, or a pin with a plain-http URL
//   kResourceExhausted  the response was larger than any valid answer
// Implementations are not required to be thread-safe.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual Result<HttpResponse> Send(const HubTarget& hub, const OutgoingRequest& request) = 0;
};

// The libcurl client: POST (or GET) with the request's headers and
// Content-Type application/octet-stream, 10 s connect timeout, 60 s total,
// no redirects, http and https only. With an https URL and a pin, the pin
// (CURLOPT_PINNEDPUBLICKEY) replaces CA validation; without one, the system
// CAs apply. A pin mismatch fails during the handshake, before any byte of
// the request is sent. curl_global_init must have been called (CurlGlobal).
std::unique_ptr<HttpClient> NewCurlHttpClient();

// curl_global_init/cleanup for the life of the process (one, in main).
class CurlGlobal {
 public:
  CurlGlobal();
  ~CurlGlobal();
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
};

// ---- retry policy --------------------------------------------------------------------

struct RetryPolicy {
  int max_attempts = 6;    // per request, the first one included
  uint64_t base_ms = 250;  // delay before the second attempt (before jitter)
  uint64_t cap_ms = 8000;  // no delay is longer
};

// The delay after `failed_attempts` (>= 1) failures: exponential
// (base * 2^(failed-1), capped) with "equal jitter": half of it fixed, the
// other half scaled by `unit_random` in [0, 1). Spreads the retries of many
// phones that lost the same cell tower.
uint64_t BackoffMs(const RetryPolicy& policy, int failed_attempts, double unit_random);

// Whether an HTTP status is worth retrying: 5xx and 429.
bool IsRetryableHttpStatus(long status);

// Whether the URL is one the client accepts: http:// or https:// with a
// host, no query or fragment, no user info.
Status ValidateHubUrl(std::string_view url);

// Strips trailing slashes.
std::string NormaliseHubUrl(std::string_view url);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_TRANSPORT_H_
