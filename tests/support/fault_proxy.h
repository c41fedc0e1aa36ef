// Fault injection for the end-to-end tests: a loopback TCP proxy that sits
// between the CLI (or any client) and the hub and delays, throttles, cuts,
// resets and drops connections. The minimal HTTP/1.1 client for sending
// hand-made requests to a real hub is raw_http.h (included here).
#ifndef ENLACE_TESTS_SUPPORT_FAULT_PROXY_H_
#define ENLACE_TESTS_SUPPORT_FAULT_PROXY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "raw_http.h"

namespace enlace::testing {

// What the proxy does to connections. Each connection draws its faults
// (drop, cut point, reset, lost response) from the proxy's seeded generator
// when it is accepted, in accept order: the same seed and the same sequence
// of connections give the same faults. `delay_ms` and `bytes_per_s` are read
// live, so changing them affects open connections too.
struct FaultConfig {
  // One-way latency added to every chunk, in each direction.
  int delay_ms = 0;
  // Link speed per direction and connection (bytes/s); 0 = unlimited.
  uint64_t bytes_per_s = 0;
  // Share of connections closed at once, before a byte is forwarded.
  double drop_share = 0;
  // Share of connections cut at a random point: the direction is a coin
  // toss, the point uniform in [0, cut_window_bytes) bytes of that direction.
  // A point past the end of the traffic leaves the connection whole.
  double cut_share = 0;
  uint64_t cut_window_bytes = 2048;
  // Every connection: cut once this many bytes went client->hub (upstream)
  // or hub->client (downstream).
  std::optional<uint64_t> cut_upstream_after;
  std::optional<uint64_t> cut_downstream_after;
  // Share of cuts and drops made with a TCP reset (SO_LINGER 0) rather than
  // an orderly close.
  double reset_share = 0;
  // Share of connections whose response is lost: once the first request was
  // forwarded whole and the hub begins to answer (so it has committed), the
  // connection is cut and the client gets nothing of the answer.
  double lose_response_share = 0;
  // How many of the connections accepted from now on get faults (the rest
  // pass untouched); -1: all of them.
  int64_t faulty_connections = -1;
};

struct FaultStats {
  uint64_t connections = 0;
  uint64_t dropped = 0;
  uint64_t cut_upstream = 0;    // cuts that happened client->hub
  uint64_t cut_downstream = 0;  // cuts that happened hub->client
  uint64_t resets = 0;          // cuts and drops made with RST
  uint64_t lost_responses = 0;
  uint64_t bytes_up = 0;  // forwarded client->hub
  uint64_t bytes_down = 0;
};

// A proxy on 127.0.0.1 (port 0: a free port) forwarding to 127.0.0.1:target.
// One thread accepts, one thread per connection pumps both directions.
// Thread-safe. The destructor closes every connection and joins the threads.
class FaultProxy {
 public:
  explicit FaultProxy(int target_port, FaultConfig config = {}, uint64_t seed = 1);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  uint64_t seed() const { return seed_; }

  // Replaces the configuration (see FaultConfig for what applies when).
  void Set(const FaultConfig& config);
  FaultConfig config() const;
  // The next `n` connections lose their response (as lose_response_share),
  // whatever the configured share.
  void LoseNextResponses(int n);
  FaultStats stats() const;

  struct Connection;

 private:
  void AcceptLoop();
  void Pump(std::shared_ptr<Connection> c);

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};  // written once on shutdown; every poll watches it
  uint64_t seed_;
  mutable std::mutex mu_;
  FaultConfig config_;
  std::mt19937_64 rng_;
  int lose_next_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> delay_ms_{0};
  std::atomic<uint64_t> bytes_per_s_{0};
  struct Counters {
    std::atomic<uint64_t> connections{0}, dropped{0}, cut_upstream{0}, cut_downstream{0}, resets{0},
        lost_responses{0}, bytes_up{0}, bytes_down{0};
  } counters_;
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // guarded by mu_
};

// The seed for fault decisions: ENLACE_FAULT_SEED when set, else `fallback`
// (tests print it, so a failure can be replayed).
uint64_t FaultSeed(uint64_t fallback);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_FAULT_PROXY_H_
