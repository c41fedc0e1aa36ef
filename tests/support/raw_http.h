// A minimal HTTP/1.1 client over loopback TCP, for sending hand-made
// (signed or malformed) requests to a real hub and reading its raw answer.
// No doctest here (enlace_test_support_core); process.h's RawExchange is
// the test-failing form.
#ifndef ENLACE_TESTS_SUPPORT_RAW_HTTP_H_
#define ENLACE_TESTS_SUPPORT_RAW_HTTP_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "enlace/sync.h"

namespace enlace::testing {

// A TCP connection to 127.0.0.1:port with TCP_NODELAY; -1 when refused.
int ConnectLoopback(int port);

// `s` with ASCII letters in lower case (HTTP header names).
std::string LowerCase(std::string s);

// A parsed HTTP response. status 0: the connection closed (or timed out)
// before a status line arrived.
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string raw;
};

HttpReply ParseHttpReply(const std::string& raw);

// The request as bytes on the wire: request line, `request.headers`, then
// `extra_headers` (verbatim lines without CRLF), Host, Content-Length,
// "Connection: close", and the body.
std::string FormatHttpRequest(const OutgoingRequest& request,
                              const std::vector<std::string>& extra_headers = {});

// Sends `bytes` to 127.0.0.1:port, half-closes, and reads until the peer
// closes or `timeout_ms` passes. nullopt when the connection is refused.
std::optional<std::string> TryExchange(int port, const std::string& bytes, int timeout_ms = 10000);

// Posts `request` to the hub on 127.0.0.1:port. status 0 when nothing came back.
HttpReply PostToHub(int port, const OutgoingRequest& request, int timeout_ms = 10000);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_RAW_HTTP_H_
