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
  std::string remote;  // peer address and port, for logs only
  // The peer's address is a loopback one (127.0.0.0/8, ::1, or 127/8
  // mapped into IPv6): a process on the hub's own machine, or a proxy
  // there forwarding someone else's request.
  bool from_loopback = false;

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
  // Asked before any request body is read, with the request's head
  // (`head.body` is empty): whether what can be checked before the body
  // arrives names a sender trusted with bodies up to MaxBodyBytes (for the
  // hub: well-formed signature headers of a device registered on it). false:
  // the body limit is the network layer's unverified budget
  // (ServerOptions::unverified_body_bytes), and the connection may be closed
  // for a new one while its body arrives (server.h). Must not block long.
  virtual bool AdmitBody(const HttpRequest& head) = 0;
};

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_HTTP_H_
