// What the listener and every session of one Server share: the Handler, the
// options, the stopping flag and the set of open connections.
#ifndef ENLACE_SERVER_NET_NET_STATE_H_
#define ENLACE_SERVER_NET_NET_STATE_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http.h"
#include "net/server.h"

namespace enlace::hub::internal {

class NetState;

// One connection. Registered with its NetState while it lives.
class SessionBase {
 public:
  explicit SessionBase(NetState& state) : state_(state) {}
  virtual ~SessionBase();
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  // Closes the connection unless a request is in progress on it (its first
  // byte has arrived and its response is not written yet). Thread-safe;
  // acts later, on the connection's strand.
  virtual void CloseIfIdle() = 0;

 protected:
  NetState& state_;
};

// Outlives every session and the listener. Thread-safe.
class NetState {
 public:
  NetState(Handler& handler, ServerOptions options);

  Handler& handler() const { return handler_; }
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Sets stopping() and asks every open connection to close if idle.
  // Returns false (and does nothing) when already stopping.
  bool BeginStop();

  size_t connections() const;
  void Add(const std::shared_ptr<SessionBase>& session);
  void Remove(const SessionBase* session);

  // Sends {"event":"net.<event>","remote":...,"detail":...} to options().log.
  void Log(std::string_view event, std::string_view remote, std::string_view detail) const;

 private:
  Handler& handler_;
  const ServerOptions options_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::unordered_map<const SessionBase*, std::weak_ptr<SessionBase>> sessions_;
};

}  // namespace enlace::hub::internal

#endif  // ENLACE_SERVER_NET_NET_STATE_H_
