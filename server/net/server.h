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
#include <optional>
#include <string>

#include "http.h"

namespace enlace::hub {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an address or a name; "::" or "0.0.0.0": all
  uint16_t port = 0;               // 0: pick a free port (see Server::port())
  size_t threads = 4;  // the pool that runs I/O and Handler::Handle; 0 means 1, at most 1024
  // Both set: TLS (1.2 and later) with this PEM certificate chain and PEM
  // private key. Both empty: plain HTTP. Only one set: Create fails.
  // Server::ReloadTls reads them again.
  std::string tls_cert_file, tls_key_file;

  // Time limits; a connection that misses one is closed without an answer.
  // A new connection's TLS handshake must end, and then its first request's
  // header arrive whole, each within header_timeout; a later request's
  // header within header_timeout of its first byte (a slow header sender,
  // "slowloris", is cut after it).
  std::chrono::milliseconds header_timeout{5000};
  // A keep-alive connection with no request in progress is closed after
  // idle_timeout.
  std::chrono::milliseconds idle_timeout{15000};
  // A body of n bytes must arrive within body_timeout + n / min_body_rate
  // of its header's end, checked as it arrives: at any moment, received
  // bytes >= (elapsed - body_timeout) * min_body_rate (bytes per second).
  std::chrono::milliseconds body_timeout{10000};
  size_t min_body_rate = 1024;
  std::chrono::milliseconds write_timeout{15000};  // per response

  size_t max_header_bytes = 16 * 1024;  // beyond: 431 and close
  // Open connections, in all and per remote address (an IPv6 address
  // counts by its /64 prefix: one host usually holds a whole /64). See
  // "Connection limits" below.
  size_t max_connections = 256;
  size_t max_connections_per_address = 32;
  // A body that may be larger than this (by its Content-Length, or any
  // chunked body where Handler::MaxBodyBytes allows more) is read only if
  // Handler::AdmitBody says its sender is trusted; otherwise this is its
  // limit (413 beyond).
  size_t unverified_body_bytes = 64 * 1024;
  // Request bodies held in memory at once, hub-wide: before a body is read
  // its Content-Length (a chunked body: its limit) is reserved, and released
  // once its request has been handled. A request that does not fit gets 503
  // with "Retry-After: 1" and a close, its body unread.
  size_t max_body_bytes_in_flight = size_t{256} << 20;

  // Receives one JSON object per line for connection-level events (accept
  // errors, failed TLS handshakes, connection limits, TLS reloads, handler
  // exceptions). Events an attacker can repeat at will (limits, timeouts)
  // are logged at most once per second each, with a count. Empty: none.
  // Called from pool threads, possibly concurrently.
  std::function<void(const std::string&)> log;
};

// Counters of the network layer since the server was created (gauges: now).
struct NetStats {
  size_t connections = 0;                  // gauge
  size_t connections_waiting = 0;          // gauge: idle or reading a header, may be evicted
  uint64_t body_bytes_in_flight = 0;       // gauge: reserved by bodies being read or handled
  uint64_t connections_refused = 0;        // closed at accept: a limit, nothing to evict
  uint64_t connections_evicted = 0;        // closed to make room for a new one
  uint64_t header_timeouts = 0;            // handshake or header too slow
  uint64_t idle_timeouts = 0;              // keep-alive idle too long
  uint64_t body_timeouts = 0;              // body below the minimum rate
  uint64_t unverified_bodies_refused = 0;  // 413: over unverified_body_bytes, sender not admitted
  uint64_t body_budget_refusals = 0;       // 503: max_body_bytes_in_flight reached
  uint64_t tls_reloads = 0, tls_reload_failures = 0;
};

// Whether a Server with options.host = `host` would listen on a loopback
// address (it binds the first address `host` resolves to): 127.0.0.0/8,
// ::1, "localhost". nullopt when `host` does not resolve. Never throws.
std::optional<bool> ListensOnLoopback(const std::string& host) noexcept;

// One listening socket and its pool. Per request: the header is read first
// (limit max_header_bytes), then Handler::MaxBodyBytes(target) decides the
// body limit before any body byte is read, lowered to unverified_body_bytes
// unless Handler::AdmitBody admits the sender: a larger Content-Length gets
// 413 at once (an "Expect: 100-continue" client never sends its body), a
// larger chunked body gets 413 when it crosses the limit; both close the
// connection, as does 400 for a malformed request and 503 when the body
// does not fit in max_body_bytes_in_flight. Handle() runs on a pool thread;
// an exception from it becomes 500 and the connection stays usable.
// Responses carry Content-Length and "Server: enlace-hub"; the Handler's
// header names and values must be valid HTTP (invalid ones are dropped, as
// are Connection, Content-Length, Transfer-Encoding, Server and
// Content-Type: the network layer sets those, the last from
// HttpResponse::content_type).
//
// Connection limits. A connection is *waiting* while it has not yet shown
// a request worth its slot: during its TLS handshake, while idle between
// requests, while its request header arrives, while the body of a request
// whose sender was not admitted (AdmitBody) arrives, and while it closes.
// A new connection whose address is at max_connections_per_address closes
// that address's connection that has been waiting longest; one that finds
// max_connections open closes the connection, of any address, that has been
// waiting longest. Only when there is no waiting connection to close is the
// new one refused (closed at once, unanswered). A closed waiting connection
// loses at most a request it had not finished sending; a request already
// being handled is answered, and its connection then closed.
// Why: refusing new connections at the cap, as before, let anyone who holds
// 256 idle sockets lock every device out. Closing the longest-waiting one
// instead means a flood of idle or slow connections only displaces itself:
// a real client, whose request follows its connect within a round trip,
// gets a slot and is no longer waiting by the time the flood could reach it
// again. The per-address cap keeps one address (or one IPv6 /64) from
// cycling through every slot, and keeps its churn to its own connections;
// the header, idle and body timeouts bound how long any waiting connection
// is held when nobody needs its slot. What it does not stop: senders
// admitted by AdmitBody (a registered device id is enough, the signature
// is checked after the body) reading slowly at the minimum rate; those are
// bounded by the per-address cap, the body rate and the memory budget.
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
  // Whether the listening address is a loopback one (127.0.0.0/8, ::1):
  // only processes on this machine can connect.
  bool loopback() const;
  // The network layer's counters. Thread-safe.
  NetStats stats() const;

  // Loads the TLS certificate chain and key again from their files: new
  // connections get them, open ones keep the old. On failure (unreadable,
  // malformed, not matching) the old pair stays in use, an event
  // "net.tls_reload_failed" is logged, false is returned and *error set.
  // A server without TLS: returns true and does nothing. Thread-safe.
  bool ReloadTls(std::string* error) noexcept;

  // Makes SIGINT and SIGTERM call Stop(); afterwards the signals get their
  // default action back, so a second Ctrl-C ends a stuck shutdown. Call at
  // most once, before Run().
  void StopOnSignals() noexcept;
  // Makes SIGHUP call `reopen` (if set; e.g. to reopen a log file that
  // logrotate moved away), then ReloadTls. Both run on a pool thread inside
  // the event loop, never in a signal handler. After Stop(), SIGHUP is
  // ignored until the Server is destroyed. Call at most once, before Run().
  void ReloadOnSignal(std::function<void()> reopen) noexcept;

  // Accepts and serves on options.threads threads (the caller's included)
  // until Stop(); returns when the last connection has closed. Call once.
  void Run() noexcept;

  // Thread-safe and idempotent; returns at once (Run() returns later). Stops
  // accepting and closes idle connections; a request already in progress is
  // still read, handled and answered (with "Connection: close"), each phase
  // bounded by its timeout, the Handler and write_timeout. May be called
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
