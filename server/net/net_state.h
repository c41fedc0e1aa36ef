// What the listener and every session of one Server share: the Handler, the
// options, the stopping flag, the open connections and their limits, the
// budget of request bodies in memory, the current TLS context, counters.
#ifndef ENLACE_SERVER_NET_NET_STATE_H_
#define ENLACE_SERVER_NET_NET_STATE_H_

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http.h"
#include "net/server.h"

namespace enlace::hub::internal {

// 127.0.0.0/8, ::1, and 127.0.0.0/8 mapped into IPv6 (::ffff:127.x.y.z).
bool IsLoopback(const boost::asio::ip::address& address);

// What a connection counts under for max_connections_per_address: an IPv4
// address (also when mapped into IPv6) as dotted decimal, or an IPv6
// address's /64 prefix ("2001:db8:1:2::/64").
std::string AddressKey(const boost::asio::ip::address& address);

class NetState;

// One connection. Registered with its NetState (NetState::Admit) while it
// lives.
class SessionBase {
 public:
  SessionBase(NetState& state, std::string address_key)
      : state_(state), address_key_(std::move(address_key)) {}
  virtual ~SessionBase();
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  const std::string& address_key() const { return address_key_; }

  // Closes the connection unless a request is in progress on it (its first
  // byte has arrived and its response is not written yet). Thread-safe;
  // acts later, on the connection's strand.
  virtual void CloseIfIdle() = 0;
  // Closes the connection if it is still waiting (server.h, "Connection
  // limits"), else once its request is answered. Thread-safe; acts later,
  // on the connection's strand.
  virtual void Evict() = 0;

 protected:
  // Tells the NetState whether this connection is waiting. Thread-safe.
  void SetWaiting(bool waiting);

  NetState& state_;

 private:
  const std::string address_key_;
};

// The counters behind NetStats, bumped by sessions and the listener.
struct NetCounters {
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> connections_evicted{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> body_timeouts{0};
  std::atomic<uint64_t> unverified_bodies_refused{0};
  std::atomic<uint64_t> body_budget_refusals{0};
  std::atomic<uint64_t> tls_reloads{0};
  std::atomic<uint64_t> tls_reload_failures{0};
};

// Outlives every session and the listener. Thread-safe.
class NetState {
 public:
  NetState(Handler& handler, ServerOptions options);

  Handler& handler() const { return handler_; }
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  NetCounters& counters() { return counters_; }

  // Sets stopping() and asks every open connection to close if idle.
  // Returns false (and does nothing) when already stopping.
  bool BeginStop();

  // Registers a new connection, which starts out waiting, within the
  // connection limits (server.h, "Connection limits"): closes (Evict) the
  // longest-waiting connection of its address when the address is at its
  // cap, else the longest-waiting of all when the server is at its cap.
  // Returns false, registering nothing, when a cap is reached and no
  // connection is waiting. An evicted connection no longer counts towards
  // either cap.
  bool Admit(const std::shared_ptr<SessionBase>& session);
  void Remove(const SessionBase* session);
  void SetWaiting(const SessionBase* session, bool waiting);
  // Open connections, evicted ones still closing included.
  size_t connections() const;
  // How many of them wait (could be evicted for a new one).
  size_t connections_waiting() const;

  // Reserves `bytes` of the body budget (max_body_bytes_in_flight); false
  // when they do not fit. A body larger than the whole budget fits only
  // when nothing else is reserved.
  bool ReserveBody(uint64_t bytes);
  void ReleaseBody(uint64_t bytes);
  uint64_t body_bytes_in_flight() const { return body_bytes_.load(std::memory_order_relaxed); }

  // The TLS context new connections get (null: plain HTTP). Sessions keep
  // the one they started with alive.
  std::shared_ptr<boost::asio::ssl::context> tls() const;
  void SetTls(std::shared_ptr<boost::asio::ssl::context> tls);

  NetStats Stats() const;

  // Sends {"event":"net.<event>","remote":...,"detail":...} to options().log.
  void Log(std::string_view event, std::string_view remote, std::string_view detail) const;
  // Log, at most once per second per event; the next line that gets
  // through says how many were left out.
  void LogThrottled(std::string_view event, std::string_view remote, std::string_view detail);

 private:
  struct Entry {
    std::weak_ptr<SessionBase> session;
    std::string address_key;
    bool waiting = true;
    bool evicting = false;
    std::chrono::steady_clock::time_point waiting_since;
  };
  // Picks the longest-waiting registered connection not yet being evicted
  // (of `address_key` when non-null) and marks it as being evicted: it
  // leaves the counts. *victim: the session, for the caller to Evict() and
  // release outside mu_ (null when it is already being destroyed). false
  // when there is none. Needs mu_.
  bool EvictOldestWaitingLocked(const std::string* address_key,
                                std::shared_ptr<SessionBase>* victim);

  Handler& handler_;
  const ServerOptions options_;
  std::atomic<bool> stopping_{false};
  NetCounters counters_;
  std::atomic<uint64_t> body_bytes_{0};

  mutable std::mutex mu_;
  std::unordered_map<const SessionBase*, Entry> sessions_;
  size_t counted_ = 0;                                   // sessions_ not evicting
  std::unordered_map<std::string, size_t> per_address_;  // the same, per address key

  mutable std::mutex tls_mu_;
  std::shared_ptr<boost::asio::ssl::context> tls_;

  struct Throttle {
    std::chrono::steady_clock::time_point last;
    uint64_t left_out = 0;
  };
  std::mutex throttle_mu_;
  std::map<std::string, Throttle, std::less<>> throttles_;
};

}  // namespace enlace::hub::internal

#endif  // ENLACE_SERVER_NET_NET_STATE_H_
