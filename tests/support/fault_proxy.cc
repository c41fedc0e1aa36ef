#include "fault_proxy.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>

namespace enlace::testing {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// Bytes read ahead per direction before the proxy stops reading: a small
// modem buffer, so a throttled sender feels the slow link.
constexpr size_t kMaxQueued = 64 * 1024;

// A uniform double in [0, 1) from 53 bits of `rng`: the same on every platform.
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Makes the next close() send a RST instead of a FIN.
void ArmReset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

// The length of the HTTP request at the start of `head` (header plus
// Content-Length body), or kNever while its header is incomplete.
uint64_t RequestLength(const std::string& head) {
  const auto end = head.find("\r\n\r\n");
  if (end == std::string::npos) return kNever;
  const std::string lower = LowerCase(head.substr(0, end));
  uint64_t length = 0;
  const auto cl = lower.find("\r\ncontent-length:");
  if (cl != std::string::npos) length = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
  return end + 4 + length;
}

}  // namespace

struct FaultProxy::Connection {
  int client = -1;
  int hub = -1;
  bool reset = false;          // cut with RST
  bool lose_response = false;  // cut when the hub begins to answer the first request
  uint64_t cut_up = kNever;    // cut when this many bytes went client->hub
  uint64_t cut_down = kNever;
};

uint64_t FaultSeed(uint64_t fallback) {
  const char* s = std::getenv("ENLACE_FAULT_SEED");
  if (s == nullptr || *s == '\0') return fallback;
  return std::strtoull(s, nullptr, 10);
}

FaultProxy::FaultProxy(int target_port, FaultConfig config, uint64_t seed)
    : target_port_(target_port), seed_(seed), config_(config), rng_(seed) {
  delay_ms_ = config.delay_ms;
  bytes_per_s_ = config.bytes_per_s;
  REQUIRE(pipe2(wake_, O_CLOEXEC) == 0);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listen_fd_ >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(listen_fd_, 64) == 0);
  socklen_t len = sizeof a;
  REQUIRE(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  (void)!write(wake_[1], "x", 1);
  acceptor_.join();
  std::vector<std::thread> pumps;
  {
    std::lock_guard lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void FaultProxy::Set(const FaultConfig& config) {
  std::lock_guard lock(mu_);
  config_ = config;
  delay_ms_ = config.delay_ms;
  bytes_per_s_ = config.bytes_per_s;
}

FaultConfig FaultProxy::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

void FaultProxy::LoseNextResponses(int n) {
  std::lock_guard lock(mu_);
  lose_next_ = n;
}

FaultStats FaultProxy::stats() const {
  FaultStats s;
  s.connections = counters_.connections;
  s.dropped = counters_.dropped;
  s.cut_upstream = counters_.cut_upstream;
  s.cut_downstream = counters_.cut_downstream;
  s.resets = counters_.resets;
  s.lost_responses = counters_.lost_responses;
  s.bytes_up = counters_.bytes_up;
  s.bytes_down = counters_.bytes_down;
  return s;
}

void FaultProxy::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0 || stopping_) return;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++counters_.connections;

    auto c = std::make_shared<Connection>();
    c->client = client;
    bool drop = false;
    {
      // Always the same draws per connection, so one seed gives one schedule.
      std::lock_guard lock(mu_);
      const double u_drop = Unit(rng_), u_cut = Unit(rng_), u_dir = Unit(rng_),
                   u_point = Unit(rng_), u_reset = Unit(rng_), u_lose = Unit(rng_);
      const bool faulty = config_.faulty_connections != 0;
      if (config_.faulty_connections > 0) --config_.faulty_connections;
      drop = faulty && u_drop < config_.drop_share;
      c->reset = u_reset < config_.reset_share;
      if (faulty && config_.cut_upstream_after) c->cut_up = *config_.cut_upstream_after;
      if (faulty && config_.cut_downstream_after) c->cut_down = *config_.cut_downstream_after;
      if (faulty && u_cut < config_.cut_share) {
        const auto point = static_cast<uint64_t>(
            u_point * static_cast<double>(std::max<uint64_t>(config_.cut_window_bytes, 1)));
        if (u_dir < 0.5) {
          c->cut_up = std::min(c->cut_up, point);
        } else {
          c->cut_down = std::min(c->cut_down, point);
        }
      }
      c->lose_response = faulty && u_lose < config_.lose_response_share;
      if (lose_next_ > 0 && !drop) {
        --lose_next_;
        c->lose_response = true;
      }
    }
    if (drop) {
      ++counters_.dropped;
      if (c->reset) {
        ++counters_.resets;
        ArmReset(client);
      }
      close(client);
      continue;
    }
    c->hub = ConnectLoopback(target_port_);
    if (c->hub < 0) {
      ArmReset(client);  // as a refused connection looks to the client
      close(client);
      continue;
    }
    std::lock_guard lock(mu_);
    pumps_.emplace_back([this, c] { Pump(c); });
  }
}

void FaultProxy::Pump(std::shared_ptr<Connection> c) {
  struct Chunk {
    Clock::time_point due;
    std::string data;
    size_t offset = 0;
  };
  struct Direction {
    Direction(int from_fd, int to_fd, uint64_t cut, bool up)
        : from(from_fd), to(to_fd), cut_at(cut), upstream(up) {}
    int from, to;
    uint64_t cut_at;
    bool upstream;
    std::deque<Chunk> queue;
    size_t queued = 0;
    bool eof = false;      // the source closed its side
    bool shut = false;     // and we passed the close on
    bool blocked = false;  // the last send would block
    uint64_t forwarded = 0;
    Clock::time_point link_free{};
  };
  Direction up(c->client, c->hub, c->cut_up, true);
  Direction down(c->hub, c->client, c->cut_down, false);
  SetNonBlocking(c->client);
  SetNonBlocking(c->hub);
  std::string head;  // the first request's bytes, to find its end
  uint64_t request_end = kNever;
  bool done = false;
  bool reset_on_close = false;

  auto cut = [&](bool lost_response, bool upstream) {
    if (lost_response) {
      ++counters_.lost_responses;
    } else if (upstream) {
      ++counters_.cut_upstream;
    } else {
      ++counters_.cut_downstream;
    }
    if (c->reset) {
      ++counters_.resets;
      reset_on_close = true;
    }
    done = true;
  };

  // Sends what is due in `d`; false when the connection must end.
  auto flush = [&](Direction& d, Clock::time_point now) {
    d.blocked = false;
    while (!d.queue.empty() && d.queue.front().due <= now) {
      Chunk& ch = d.queue.front();
      const uint64_t allowed = d.cut_at - d.forwarded;
      if (allowed == 0) {
        cut(false, d.upstream);
        return false;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(allowed, ch.data.size() - ch.offset));
      const ssize_t sent = send(d.to, ch.data.data() + ch.offset, n, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d.blocked = true;
          return true;
        }
        if (errno == EINTR) continue;
        return false;  // the other side is gone
      }
      d.forwarded += static_cast<uint64_t>(sent);
      (d.upstream ? counters_.bytes_up : counters_.bytes_down) += static_cast<uint64_t>(sent);
      ch.offset += static_cast<size_t>(sent);
      d.queued -= static_cast<size_t>(sent);
      if (ch.offset == ch.data.size()) d.queue.pop_front();
    }
    if (d.queue.empty() && d.eof && !d.shut) {
      shutdown(d.to, SHUT_WR);
      d.shut = true;
    }
    return true;
  };

  // Reads from `d.from` into its queue; false when the connection must end.
  auto fill = [&](Direction& d, Clock::time_point now) {
    const uint64_t rate = bytes_per_s_;
    const size_t chunk =
        rate == 0 ? 65536 : static_cast<size_t>(std::clamp<uint64_t>(rate / 20, 64, 16384));
    std::string buf(chunk, '\0');
    const ssize_t n = recv(d.from, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      reset_on_close = true;  // a reset on one side resets the other
      return false;
    }
    if (n == 0) {
      d.eof = true;
      return true;
    }
    buf.resize(static_cast<size_t>(n));
    if (d.upstream && request_end == kNever && head.size() < 65536) {
      head += buf;
      request_end = RequestLength(head);
    }
    if (!d.upstream && c->lose_response && up.forwarded >= request_end) {
      cut(true, false);
      return false;
    }
    // The link: bytes leave one after another at `rate`, then travel `delay`.
    Clock::time_point start = std::max(now, d.link_free);
    if (rate > 0) {
      start += std::chrono::microseconds(static_cast<uint64_t>(n) * 1'000'000 / rate);
    }
    d.link_free = start;
    d.queued += buf.size();
    d.queue.push_back(Chunk{start + std::chrono::milliseconds(delay_ms_.load()), std::move(buf)});
    return true;
  };

  while (!done) {
    Clock::time_point now = Clock::now();
    if (!flush(up, now) || !flush(down, now)) break;
    if (done) break;
    if (up.shut && down.shut) break;

    pollfd fds[3] = {{wake_[0], POLLIN, 0}, {c->client, 0, 0}, {c->hub, 0, 0}};
    auto want = [&](int fd, short events) {
      for (auto& p : fds) {
        if (p.fd == fd) p.events |= events;
      }
    };
    int timeout_ms = 500;
    for (Direction* d : {&up, &down}) {
      if (!d->eof && d->queued < kMaxQueued) want(d->from, POLLIN);
      if (d->blocked) want(d->to, POLLOUT);
      if (!d->queue.empty() && !d->blocked) {
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(d->queue.front().due - now)
                .count() +
            1;
        timeout_ms = std::min<int>(timeout_ms, static_cast<int>(std::max<int64_t>(wait, 0)));
      }
    }
    // A socket we want nothing from is left out: its HUP or ERR would wake
    // every poll until the other direction is done.
    for (int i = 1; i < 3; ++i) {
      if (fds[i].events == 0) fds[i].fd = -1;
    }
    if (poll(fds, 3, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0 || stopping_) break;
    now = Clock::now();
    bool ok = true;
    for (Direction* d : {&up, &down}) {
      const pollfd& p = d->upstream ? fds[1] : fds[2];
      if (ok && !d->eof && (p.events & POLLIN) != 0 &&
          (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ok = fill(*d, now);
      }
    }
    if (!ok) break;
  }
  if (reset_on_close) {
    ArmReset(c->client);
    ArmReset(c->hub);
  }
  close(c->client);
  close(c->hub);
}

}  // namespace enlace::testing
