#include "net/net_state.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace enlace::hub::internal {
namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

bool IsLoopback(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().is_loopback();
  const boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
  }
  return v6.is_loopback();
}

std::string AddressKey(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().to_string();
  const boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  boost::asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  for (size_t i = 8; i < bytes.size(); ++i) bytes[i] = 0;
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

SessionBase::~SessionBase() { state_.Remove(this); }

void SessionBase::SetWaiting(bool waiting) { state_.SetWaiting(this, waiting); }

NetState::NetState(Handler& handler, ServerOptions options)
    : handler_(handler), options_(std::move(options)) {}

bool NetState::BeginStop() {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return false;
  // Collected under the lock, called and released outside it: releasing the
  // last reference runs ~SessionBase, which takes the lock.
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open.reserve(sessions_.size());
    for (const auto& entry : sessions_) {
      if (auto session = entry.second.session.lock()) open.push_back(std::move(session));
    }
  }
  for (const auto& session : open) session->CloseIfIdle();
  return true;
}

bool NetState::EvictOldestWaitingLocked(const std::string* address_key,
                                        std::shared_ptr<SessionBase>* victim) {
  // Only raw pointers and times here: a shared_ptr released under mu_ could
  // be a session's last, whose destructor takes mu_.
  Entry* oldest = nullptr;
  for (auto& [session, entry] : sessions_) {
    if (!entry.waiting || entry.evicting) continue;
    if (address_key != nullptr && entry.address_key != *address_key) continue;
    if (oldest == nullptr || entry.waiting_since < oldest->waiting_since) oldest = &entry;
  }
  if (oldest == nullptr) return false;
  oldest->evicting = true;
  --counted_;
  auto address = per_address_.find(oldest->address_key);
  if (address != per_address_.end() && --address->second == 0) per_address_.erase(address);
  // Null when the session is already being destroyed: its slot is free
  // all the same. The caller releases it outside mu_.
  *victim = oldest->session.lock();
  return true;
}

bool NetState::Admit(const std::shared_ptr<SessionBase>& session) {
  // Released after mu_ (declared first, destroyed last).
  std::vector<std::shared_ptr<SessionBase>> victims;
  size_t evicted = 0;
  bool admitted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string& key = session->address_key();
    const size_t per_address_cap = std::max<size_t>(options_.max_connections_per_address, 1);
    const size_t cap = std::max<size_t>(options_.max_connections, 1);
    bool room = true;
    auto evict = [&](const std::string* address_key) {
      std::shared_ptr<SessionBase> victim;
      if (!EvictOldestWaitingLocked(address_key, &victim)) return false;
      ++evicted;
      if (victim != nullptr) victims.push_back(std::move(victim));
      return true;
    };
    if (auto it = per_address_.find(key);
        it != per_address_.end() && it->second >= per_address_cap) {
      room = evict(&key);
    }
    if (room && counted_ >= cap) room = evict(nullptr);
    if (room) {
      Entry entry;
      entry.session = session;
      entry.address_key = key;
      entry.waiting_since = std::chrono::steady_clock::now();
      sessions_.emplace(session.get(), std::move(entry));
      ++counted_;
      ++per_address_[key];
      admitted = true;
    }
  }
  if (evicted > 0) {
    counters_.connections_evicted.fetch_add(evicted, std::memory_order_relaxed);
    LogThrottled("connection_evicted", session->address_key(),
                 "closed the longest-waiting connection to make room for a new one");
  }
  for (const auto& victim : victims) victim->Evict();
  if (!admitted) {
    counters_.connections_refused.fetch_add(1, std::memory_order_relaxed);
    LogThrottled("connection_limit", session->address_key(),
                 "closed a new connection: at the limit, and no waiting connection to close");
  }
  return admitted;
}

void NetState::Remove(const SessionBase* session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  if (!it->second.evicting) {
    --counted_;
    auto address = per_address_.find(it->second.address_key);
    if (address != per_address_.end() && --address->second == 0) per_address_.erase(address);
  }
  sessions_.erase(it);
}

void NetState::SetWaiting(const SessionBase* session, bool waiting) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end() || it->second.waiting == waiting) return;
  it->second.waiting = waiting;
  if (waiting) it->second.waiting_since = std::chrono::steady_clock::now();
}

size_t NetState::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

size_t NetState::connections_waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [session, entry] : sessions_) n += entry.waiting && !entry.evicting ? 1 : 0;
  return n;
}

bool NetState::ReserveBody(uint64_t bytes) {
  const uint64_t budget = options_.max_body_bytes_in_flight;
  uint64_t current = body_bytes_.load(std::memory_order_relaxed);
  for (;;) {
    const bool fits = current == 0 || (bytes <= budget && current <= budget - bytes);
    if (!fits) return false;
    if (body_bytes_.compare_exchange_weak(current, current + bytes, std::memory_order_relaxed)) {
      return true;
    }
  }
}

void NetState::ReleaseBody(uint64_t bytes) {
  body_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
}

std::shared_ptr<boost::asio::ssl::context> NetState::tls() const {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_;
}

void NetState::SetTls(std::shared_ptr<boost::asio::ssl::context> tls) {
  std::lock_guard<std::mutex> lock(tls_mu_);
  tls_ = std::move(tls);
}

NetStats NetState::Stats() const {
  NetStats s;
  s.connections = connections();
  s.connections_waiting = connections_waiting();
  s.body_bytes_in_flight = body_bytes_in_flight();
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.connections_refused = get(counters_.connections_refused);
  s.connections_evicted = get(counters_.connections_evicted);
  s.header_timeouts = get(counters_.header_timeouts);
  s.idle_timeouts = get(counters_.idle_timeouts);
  s.body_timeouts = get(counters_.body_timeouts);
  s.unverified_bodies_refused = get(counters_.unverified_bodies_refused);
  s.body_budget_refusals = get(counters_.body_budget_refusals);
  s.tls_reloads = get(counters_.tls_reloads);
  s.tls_reload_failures = get(counters_.tls_reload_failures);
  return s;
}

void NetState::LogThrottled(std::string_view event, std::string_view remote,
                            std::string_view detail) {
  if (!options_.log) return;
  uint64_t left_out = 0;
  {
    std::lock_guard<std::mutex> lock(throttle_mu_);
    const auto now = std::chrono::steady_clock::now();
    auto it = throttles_.find(event);
    if (it == throttles_.end()) {
      it = throttles_.emplace(std::string(event), Throttle{}).first;
    } else if (now - it->second.last < std::chrono::seconds(1)) {
      ++it->second.left_out;
      return;
    }
    it->second.last = now;
    left_out = it->second.left_out;
    it->second.left_out = 0;
  }
  if (left_out == 0) return Log(event, remote, detail);
  Log(event, remote,
      std::string(detail) + " (and " + std::to_string(left_out) + " more since the last line)");
}

void NetState::Log(std::string_view event, std::string_view remote, std::string_view detail) const {
  if (!options_.log) return;
  try {
    std::string line = "{\"event\":";
    AppendJsonString(line, "net." + std::string(event));
    if (!remote.empty()) {
      line += ",\"remote\":";
      AppendJsonString(line, remote);
    }
    if (!detail.empty()) {
      line += ",\"detail\":";
      AppendJsonString(line, detail);
    }
    line += '}';
    options_.log(line);
  } catch (...) {
    // A failing logger must not take a connection, or the server, down.
  }
}

}  // namespace enlace::hub::internal
