// The hub's network layer: HTTP/1.1 with keep-alive (Boost.Beast), TLS 1.2+
// when given a certificate, a bounded thread pool, per-request size and time
// limits, and a graceful stop. It only moves bytes: every request is answered
// by a Handler (http.h). No Boost or OpenSSL type appears in this header.
#ifndef ENLACE_SERVER_NET_SERVER_H_
#define ENLACE_SERVER_NET_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http.h"

namespace enlace::hub {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an address or a name; "::" or "0.0.0.0": all
  uint16_t port = 0;               // 0: pick a free port (see Server::port())
  size_t threads = 4;  // the pool that runs I/O and Handler::Handle; 0 means 1, at most 1024
  // Both set: TLS (1.2 and later) with this PEM certificate chain and PEM
  // private key. Both empty: plain HTTP. Only one set: Create fails.
  std::string tls_cert_file, tls_key_file;
  // A request's whole header and body (and a TLS handshake) must arrive within
  // read_timeout of the request's start; an idle keep-alive connection is
  // closed after read_timeout. Late: the connection is closed without answer.
  std::chrono::milliseconds read_timeout{15000};
  std::chrono::milliseconds write_timeout{15000};  // per response
  size_t max_header_bytes = 16 * 1024;             // beyond: 431 and close
  size_t max_connections = 256;                    // beyond: closed at once, unanswered
  // Receives one JSON object per line for connection-level events (accept
  // errors, failed TLS handshakes, rejected connections, handler exceptions).
  // Empty: none. Called from pool threads, possibly concurrently.
  std::function<void(const std::string&)> log;
};

// One listening socket and its pool. Per request: the header is read first
// (limit max_header_bytes), then Handler::MaxBodyBytes(target) decides the
// body limit before any body byte is read: a larger Content-Length gets 413
// at once (an "Expect: 100-continue" client never sends its body), a larger
// chunked body gets 413 when it crosses the limit; both close the connection,
// as does 400 for a malformed request. Handle() runs on a pool thread; an
// exception from it becomes 500 and the connection stays usable. Responses
// carry Content-Length and "Server: enlace-hub"; the Handler's header names
// and values must be valid HTTP (invalid ones are dropped, as are Connection,
// Content-Length, Transfer-Encoding, Server and Content-Type: the network
// layer sets those, the last from HttpResponse::content_type).
class Server {
 public:
  // Loads the TLS certificate and key (if any), resolves, binds and listens;
  // accepting starts with Run(). Returns nullptr and sets *error (if non-null)
  // on failure; never throws. `handler` must outlive the Server.
  static std::unique_ptr<Server> Create(ServerOptions options, Handler& handler,
                                        std::string* error) noexcept;
  // Must not run while Run() is still executing on another thread.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when options.port was 0).
  uint16_t port() const;
  // Whether connections speak TLS.
  bool tls() const;

  // Makes SIGINT and SIGTERM call Stop(); afterwards the signals get their
  // default action back, so a second Ctrl-C ends a stuck shutdown. Call at
  // most once, before Run().
  void StopOnSignals() noexcept;

  // Accepts and serves on options.threads threads (the caller's included)
  // until Stop(); returns when the last connection has closed. Call once.
  void Run() noexcept;

  // Thread-safe and idempotent; returns at once (Run() returns later). Stops
  // accepting and closes idle connections; a request already in progress is
  // still read, handled and answered (with "Connection: close"), each phase
  // bounded by read_timeout, the Handler and write_timeout. May be called
  // before Run() (Run then returns at once) but not from a signal handler:
  // use StopOnSignals().
  void Stop() noexcept;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_NET_SERVER_H_
