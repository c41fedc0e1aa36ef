// The hub's HTTP-neutral request and response, and the Handler that turns one
// into the other. Request handling is a pure function of the request (and the
// hub's storage): it is tested without sockets, and the network layer
// (listener.h, session.h) only moves bytes.
#ifndef ENLACE_SERVER_HTTP_H_
#define ENLACE_SERVER_HTTP_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace enlace::hub {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, e.g. "/v1/sync"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address, for logs only

  // The header's value, or "" when absent. `name` must be lower-case.
  std::string Header(std::string_view name) const {
    auto it = headers.find(std::string(name));
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/octet-stream";
  std::map<std::string, std::string> headers;
  std::string body;
};

// Thread-safe: Handle may be called from several pool threads at once.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
  // The largest body accepted for `target`; bigger requests get 413 before
  // their body is read.
  virtual size_t MaxBodyBytes(std::string_view target) const = 0;
};

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_HTTP_H_
