#include "transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;

constexpr long kConnectTimeoutMs = 10'000;
constexpr long kTotalTimeoutMs = 60'000;
// Far above the largest valid answer (a 1 MiB pull plus framing).
constexpr size_t kMaxResponseBytes = 64u << 20;
constexpr char kUserAgent[] = "enlace/0.1.0";

// ---- RAII for libcurl handles -------------------------------------------------------------

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

class CurlHeaderList {
 public:
  CurlHeaderList() = default;
  ~CurlHeaderList() { curl_slist_free_all(list_); }
  CurlHeaderList(const CurlHeaderList&) = delete;
  CurlHeaderList& operator=(const CurlHeaderList&) = delete;

  // False when libcurl could not allocate; the list is unchanged.
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_, line.c_str());
    if (next == nullptr) return false;
    list_ = next;
    return true;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// ---- response callbacks ----------------------------------------------------------------------

struct ResponseSink {
  Bytes body;
  std::string hub_time;
  bool too_large = false;
  // The blank line that ends the header arrived. libcurl (7.88) reports a
  // connection closed inside the header as a complete, empty answer.
  bool header_complete = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > kMaxResponseBytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->body.insert(sink->body.end(), data, data + n);
  return n;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  const size_t n = size * count;
  const std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    sink->hub_time.clear();  // a new response (after an interim 1xx)
    sink->header_complete = false;
    return n;
  }
  if (line == "\r\n" || line == "\n") sink->header_complete = true;
  const auto colon = line.find(':');
  if (colon != std::string_view::npos &&
      EqualsIgnoreCase(Trim(line.substr(0, colon)), kHeaderHubTime)) {
    sink->hub_time = std::string(Trim(line.substr(colon + 1)));
  }
  return n;
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool StartsWith(std::string_view s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

class CurlHttpClient final : public HttpClient {
 public:
  Result<HttpResponse> Send(const HubTarget& hub, const OutgoingRequest& request) override;
};

Result<HttpResponse> CurlHttpClient::Send(const HubTarget& hub, const OutgoingRequest& request) {
  ENLACE_RETURN_IF_ERROR(ValidateHubUrl(hub.url));
  const bool get = request.method == "GET";
  if (request.method != "POST" && !get) {
    return Status::InvalidArgument(
        Format(_("the transport sends only POST and GET, not {0}"), {request.method}));
  }
  const bool https = StartsWith(hub.url, "https://");
  if (!hub.tls_pin.empty()) {
    if (!https) {
      return Status::InvalidArgument(
          Format(_("a TLS pin is configured but the hub URL {0} is not https; refusing to send "
                   "anything in the clear"),
                 {hub.url}));
    }
    if (!StartsWith(hub.tls_pin, "sha256//") || HasLineBreak(hub.tls_pin)) {
      return Status::InvalidArgument(_("the TLS pin must look like sha256//<base64>"));
    }
  }

  CurlEasy curl(curl_easy_init());
  if (!curl) return Status::Internal(_("libcurl could not create a handle"));

  CurlHeaderList headers;
  for (const auto& [name, value] : request.headers) {
    if (HasLineBreak(name) || HasLineBreak(value)) {
      return Status::InvalidArgument(_("a request header contains a line break"));
    }
    if (!headers.Append(name + ": " + value)) return Status::Internal(_("out of memory"));
  }
  // "Expect:" stops curl waiting for 100-continue: one round trip less on 3G.
  if (!headers.Append("Content-Type: application/octet-stream") || !headers.Append("Expect:")) {
    return Status::Internal(_("out of memory"));
  }

  ResponseSink sink;
  char error[CURL_ERROR_SIZE] = {0};
  const std::string url = hub.url + request.path;
  CURL* c = curl.get();
  bool set = curl_easy_setopt(c, CURLOPT_URL, url.c_str()) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  if (get) {
    set = set && curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
  } else {
    set = set && curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK;
    set = set && curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data()) == CURLE_OK;
    set = set && curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                  static_cast<curl_off_t>(request.body.size())) == CURLE_OK;
  }
  set = set && curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, kTotalTimeoutMs) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader) == CURLE_OK;
  set = set && curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink) == CURLE_OK;
  if (https) {
    set = set && curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
    if (!hub.tls_pin.empty()) {
      // The pin replaces CA validation: invite codes carry the hub's key, so
      // a self-signed certificate in a regional office is safe to use.
      set = set && curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, hub.tls_pin.c_str()) == CURLE_OK;
      set = set && curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK;
      set = set && curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    }
  }
  if (!set) {
    return Status::Internal(
        _("libcurl refused an option (TLS public-key pinning needs a libcurl built with it)"));
  }

  const CURLcode rc = curl_easy_perform(c);
  const std::string detail = error[0] != '\0' ? std::string(error) : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return Status::PermissionDenied(
          Format(_("the hub's TLS key does not match the pinned key ({0}); nothing was sent. "
                   "Someone may be impersonating the hub, or it got a new key: ask your "
                   "coordinator"),
                 {hub.tls_pin}));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      return Status::Unauthenticated(
          Format(_("the hub's TLS certificate is not trusted ({0}); nothing was sent"), {detail}));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument(Format(_("cannot use the hub URL {0}: {1}"), {url, detail}));
    case CURLE_WRITE_ERROR:
      if (sink.too_large) return Status::ResourceExhausted(_("the hub's answer is too large"));
      return Status::Unavailable(detail);
    default:
      return Status::Unavailable(detail);
  }
  if (!sink.header_complete) {
    return Status::Unavailable(_("the connection closed in the middle of the hub's answer"));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  HttpResponse response;
  response.status = status;
  response.body = std::move(sink.body);
  response.hub_time = std::move(sink.hub_time);
  return response;
}

}  // namespace

std::unique_ptr<HttpClient> NewCurlHttpClient() { return std::make_unique<CurlHttpClient>(); }

CurlGlobal::CurlGlobal() : ok_(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {}
CurlGlobal::~CurlGlobal() {
  if (ok_) curl_global_cleanup();
}

uint64_t BackoffMs(const RetryPolicy& policy, int failed_attempts, double unit_random) {
  if (failed_attempts < 1) failed_attempts = 1;
  uint64_t delay = policy.base_ms;
  for (int i = 1; i < failed_attempts && delay < policy.cap_ms; ++i) delay *= 2;
  delay = std::min(delay, policy.cap_ms);
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  const uint64_t half = delay / 2;
  const auto jitter =
      static_cast<uint64_t>(std::floor(static_cast<double>(delay - half) * unit_random));
  return std::min(half + jitter, delay);
}

bool IsRetryableHttpStatus(long status) { return status == 429 || (status >= 500 && status < 600); }

Status ValidateHubUrl(std::string_view url) {
  std::string_view rest;
  if (StartsWith(url, "https://")) {
    rest = url.substr(8);
  } else if (StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else {
    return Status::InvalidArgument(
        Format(_("the hub URL must start with https:// or http://, not \"{0}\""), {url}));
  }
  const std::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.front() == ':') {
    return Status::InvalidArgument(Format(_("the hub URL {0} has no host"), {url}));
  }
  if (host.find('@') != std::string_view::npos) {
    return Status::InvalidArgument(_("the hub URL must not carry a user name or password"));
  }
  if (rest.find_first_of("?# \t\r\n") != std::string_view::npos) {
    return Status::InvalidArgument(_("the hub URL must not have a query, fragment or spaces"));
  }
  return Status::Ok();
}

std::string NormaliseHubUrl(std::string_view url) {
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return std::string(url);
}

}  // namespace enlace::cli
