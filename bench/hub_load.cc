// hub_load: M simulated field devices in one process, in T teams, each
// capturing a small batch of encounters and syncing it (push and pull in the
// same request) with a real enlace-hub on loopback. Reports requests/s,
// writes/s, p50/p99/max latency per HTTP exchange, errors (must be 0), the
// hub's memory and CPU, for a closed loop (C connections always busy: the
// hub's capacity) and an open loop (syncs offered at R per second, Poisson
// arrivals: the latency a device sees at that load). Issue 6 item 6;
// docs/BENCHMARKS.md.
//
// Usage: hub_load [--devices 1000] [--teams 50] [--rounds 3] [--batch 2]
//                 [--connections 100] [--mode both|closed|open] [--rate 100]
//                 [--arrivals poisson|even] [--merge] [--hub-threads N]
//                 [--new-connection-per-sync]
//                 [--attack] [--attack-idle 300] [--attack-slow 50]
//                 [--attack-junk-rate 10] [--attack-reconnect-ms 1000]
//                 [--json out.json] [--hub BIN]
//
// Each of the C connections comes from its own loopback address
// (127.1.x.y; Linux routes 127.0.0.0/8 to lo), as devices come from many
// addresses: the hub's per-address connection cap sees one device each.
// With --new-connection-per-sync each device's sync opens a connection of
// its own, as `enlace sync` (a new process) does; by default the C
// connections are kept alive from device to device.
//
// --attack (issue 15, part 3): every loop runs twice, first as above, then
// with an attacker mix in this process beside the devices, and the report
// gives both and their ratios: `--attack-idle` connections that never send
// a byte (from 150 addresses, 127.2.0.x), each opened again
// `--attack-reconnect-ms` after the hub closes it; `--attack-slow`
// connections sending a request header at 1 byte per second (127.3.0.x,
// opened again the same way); unsigned 8 MiB bodies to /v1/sync at
// `--attack-junk-rate` per second in all, from 4 threads (127.4.0.x). The
// hub's peak RSS is measured per loop (VmHWM, reset through
// /proc/PID/clear_refs before each), and its enlace_net_* counters
// (/metrics) are reported per loop.
//
// Setup (not measured): a coordinator per team registers it with a bootstrap
// token and makes one invite per device; every device is a core Replica with
// KdfCost::Minimum(), an in-memory store and schema validation on, joins with
// its code and syncs once to learn the other members. Each round, before
// its timed part, every device puts `batch` encounters in one RunBatch (real
// validated, encrypted, signed writes in its outbox). Timed: every device
// syncs until the hub has nothing more for it: its replica builds each
// request (its writes, its cursor, signed with its key); the device decodes
// the response, counts the pulled writes and verifies the signature of a
// sample (1 in 16) against the member keys, and applies the response minus
// its writes (cursor, acknowledgement, trust) without merging them: merging
// every write of the team in this one process would measure the client, not
// the hub. Two devices of team 0 merge everything they pull (full clients).
// With --merge every device does (the old behaviour).
//
// Closed loop: C threads, one keep-alive connection each, take the next
// device as soon as the last is done. Open loop: device syncs start at R per
// second (Poisson or even gaps, every device once per round, in a shuffled
// order) on up to C connections; the first exchange's latency counts from
// its scheduled start, so waiting for a free connection is included.
//
// End check (not measured): a catch-up sync for every device; every device
// must have pulled every write of its team's other devices exactly once, and
// team 0's full clients must hold identical state with every record of the
// team.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "enlace/wire.h"

namespace enlace::bench {
namespace {

using nlohmann::json;

constexpr uint64_t kVerifyOneIn = 16;  // pulled writes whose signature a light device checks

struct Device {
  std::unique_ptr<Replica> replica;
  size_t team = 0;
  uint64_t made = 0;    // encounters put so far
  bool full = false;    // merges what it pulls (a real client)
  uint64_t pulled = 0;  // others' writes received, merged or not
};

struct Team {
  std::unique_ptr<Replica> coordinator;
  std::vector<std::string> codes;  // one invite per device of the team
};

ReplicaOptions Options(const std::string& dir) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  o.in_memory_store = true;
  o.hook = TeamSchemaHook();
  return o;
}

std::string Numbered(const char* prefix, size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%zu", prefix, n);
  return buf;
}

Fields Encounter(uint64_t device, uint64_t n) {
  static const char* kPlace[] = {"Apizaco", "Huamantla", "Chiautempan", "Zacatelco", "Tlaxco"};
  static const char* kKind[] = {"Street", "Street", "Shelter", "Online"};
  const uint64_t h = device * 7919 + n * 104729;
  return {{"enc_Date", "\"2026-11-29\""},
          {"enc_Kind", json(kKind[h % 4]).dump()},
          {"enc_Place", json(kPlace[h % 5]).dump()},
          {"enc_FederalEntity", "\"29\""},
          {"enc_PeopleReached", std::to_string(1 + h % 12)},
          {"enc_Notes", json("Recorrido nocturno, ronda " + std::to_string(n) +
                             ": entrega de folletos y números de ayuda")
                            .dump()}};
}

// Runs fn(i, http, thread) for i in [0, count) on `threads` threads, each
// with its own keep-alive connection.
void ParallelFor(size_t count, size_t threads, std::vector<std::unique_ptr<HttpClient>>& clients,
                 const std::function<void(size_t, HttpClient&, size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = next++; i < count; i = next++) fn(i, *clients[t], t);
    });
  }
  for (auto& th : pool) th.join();
}

struct Stats {
  std::vector<double> latencies;  // seconds, one per HTTP exchange
  uint64_t requests = 0, errors = 0, sent = 0, received = 0, refused = 0;
  uint64_t verified = 0, bad_signatures = 0;
  uint64_t new_connections = 0;     // opened by libcurl: the first, and after the hub closed one
  std::vector<double> reconnected;  // latencies of the exchanges that opened one
  std::string last_error;
  void Add(const Stats& o) {
    latencies.insert(latencies.end(), o.latencies.begin(), o.latencies.end());
    reconnected.insert(reconnected.end(), o.reconnected.begin(), o.reconnected.end());
    requests += o.requests;
    new_connections += o.new_connections;
    errors += o.errors;
    sent += o.sent;
    received += o.received;
    refused += o.refused;
    verified += o.verified;
    bad_signatures += o.bad_signatures;
    if (!o.last_error.empty()) last_error = o.last_error;
  }
};

// Every member's signing key, for the light devices' signature sample.
using KeyMap = std::map<DeviceId, PublicKey32>;

// The response with its writes taken out, for a device that does not merge
// them: HandleResponse then applies only cursor, acknowledgement and trust.
Result<Bytes> WithoutWrites(SyncResponse resp) {
  resp.writes.clear();
  resp.seqs.clear();
  return Encode(resp);
}

// One device's sync until the hub has nothing more; every exchange timed.
// `scheduled` (steady seconds, 0: none) is when the open loop meant the
// first exchange to start: its latency counts from then.
void SyncDevice(Device& d, HttpClient& http, const std::string& url, const KeyMap& keys,
                Stats& stats, double scheduled = 0, bool new_connection = false) {
  SyncSession session(*d.replica);
  uint64_t pulled = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto req = session.NextRequest();
    if (!req.ok()) {
      ++stats.errors;
      stats.last_error = req.status().ToString();
      return;
    }
    auto resp = http.Send(url, *req, new_connection && guard == 0);
    const double done = NowSeconds();
    ++stats.requests;
    if (resp.ok()) stats.new_connections += static_cast<uint64_t>(resp->new_connections);
    if (!resp.ok() || resp->status != 200) {
      ++stats.errors;
      stats.last_error = resp.ok() ? "HTTP " + std::to_string(resp->status) +
                                         std::string(resp->body.begin(), resp->body.end())
                                   : resp.status().ToString();
      return;
    }
    stats.latencies.push_back(guard == 0 && scheduled > 0 ? done - scheduled : resp->seconds);
    if (resp->new_connections > 0) stats.reconnected.push_back(stats.latencies.back());
    FollowHubClock(*d.replica, resp->hub_time);
    Result<bool> more = false;
    if (d.full) {
      auto decoded = DecodeSyncResponse(resp->body);
      if (decoded.ok()) pulled += decoded->writes.size();
      more = session.HandleResponse(resp->body);
    } else {
      auto decoded = DecodeSyncResponse(resp->body);
      if (!decoded.ok()) {
        more = decoded.status();
      } else {
        for (const Bytes& bytes : decoded->writes) {
          if ((d.pulled + pulled++) % kVerifyOneIn != 0) continue;
          auto w = Write::Decode(bytes);
          const auto key = w.ok() ? keys.find(w->dot.device) : keys.end();
          const Bytes input = w.ok() ? w->SignedBytes() : Bytes();
          if (key == keys.end() ||
              crypto_sign_verify_detached(w->signature.data(), input.data(), input.size(),
                                          key->second.data()) != 0) {
            ++stats.bad_signatures;
          } else {
            ++stats.verified;
          }
        }
        auto stripped = WithoutWrites(std::move(*decoded));
        more = stripped.ok() ? session.HandleResponse(*stripped) : Result<bool>(stripped.status());
      }
    }
    if (!more.ok()) {
      ++stats.errors;
      stats.last_error = more.status().ToString();
      return;
    }
    if (!*more) break;
  }
  d.pulled += pulled;
  stats.received += pulled;
  stats.sent += session.progress().sent;
  stats.refused += session.progress().refused;
  if (session.progress().refused > 0) stats.last_error = session.progress().last_refusal;
}

// ---- the attacker mix (--attack) ------------------------------------------------------------

struct AttackOptions {
  size_t idle = 300;        // connections that never send a byte
  size_t slow = 50;         // connections sending a header at 1 byte per second
  double junk_rate = 10;    // unsigned 8 MiB bodies per second, in all
  size_t junk_threads = 4;  // that send them
  int reconnect_ms = 1000;  // a connection the hub closed is opened again after this
};

struct AttackCounts {
  std::atomic<uint64_t> idle_opened{0}, idle_closed{0};
  std::atomic<uint64_t> slow_opened{0}, slow_closed{0}, slow_bytes{0};
  std::atomic<uint64_t> junk_sent{0}, junk_413{0}, junk_other{0}, junk_unanswered{0};
  std::atomic<uint64_t> junk_bytes{0};  // of the bodies, accepted by the kernel
  std::atomic<uint64_t> connect_failed{0};
};

// A TCP connection from `from` to 127.0.0.1:port, or -1.
int ConnectFrom(const std::string& from, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{2, 0};  // connect and send give up after 2 s
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  sockaddr_in hub{};
  hub.sin_family = AF_INET;
  hub.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, from.c_str(), &local.sin_addr) != 1 ||
      ::inet_pton(AF_INET, "127.0.0.1", &hub.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&hub), sizeof(hub)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// "127.<net>.<i / 250>.<1 + i % 250>".
std::string Address(int net, size_t i) {
  return "127." + std::to_string(net) + "." + std::to_string(i / 250) + "." +
         std::to_string(1 + i % 250);
}

// Runs the attacker mix against 127.0.0.1:port until Stop() or destruction.
class Attack {
 public:
  Attack(int port, AttackOptions options) : port_(port), options_(options) {
    threads_.emplace_back([this] { Holders(/*slow=*/false); });
    threads_.emplace_back([this] { Holders(/*slow=*/true); });
    for (size_t t = 0; t < options_.junk_threads; ++t)
      threads_.emplace_back([this, t] { Junk(t); });
  }
  ~Attack() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  const AttackCounts& counts() const { return counts_; }

  json Json() const {
    auto v = [](const std::atomic<uint64_t>& a) { return a.load(); };
    return {{"idle", options_.idle},
            {"slow", options_.slow},
            {"junk_rate", options_.junk_rate},
            {"reconnect_ms", options_.reconnect_ms},
            {"idle_opened", v(counts_.idle_opened)},
            {"idle_closed_by_hub", v(counts_.idle_closed)},
            {"slow_opened", v(counts_.slow_opened)},
            {"slow_closed_by_hub", v(counts_.slow_closed)},
            {"slow_header_bytes_sent", v(counts_.slow_bytes)},
            {"junk_bodies", v(counts_.junk_sent)},
            {"junk_413", v(counts_.junk_413)},
            {"junk_other_status", v(counts_.junk_other)},
            {"junk_unanswered", v(counts_.junk_unanswered)},
            {"junk_body_bytes_sent", v(counts_.junk_bytes)},
            {"connect_failed", v(counts_.connect_failed)}};
  }

 private:
  // Idle or slow connections: kept open, opened again after the hub closes one.
  void Holders(bool slow) {
    const size_t count = slow ? options_.slow : options_.idle;
    struct Slot {
      int fd = -1;
      double reopen_at = 0;
      size_t sent = 0;  // slow: header bytes sent so far
    };
    std::vector<Slot> slots(count);
    const std::string header =
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(4096, 'a') + "\r\n\r\n";
    double next_drip = NowSeconds() + 1;
    std::vector<pollfd> polled;
    std::vector<size_t> which;
    while (!stop_) {
      const double now = NowSeconds();
      for (size_t i = 0; i < count && !stop_; ++i) {
        Slot& slot = slots[i];
        if (slot.fd >= 0 || now < slot.reopen_at) continue;
        // Idle from 150 addresses, slow from 50.
        slot.fd = ConnectFrom(Address(slow ? 3 : 2, i % (slow ? 50 : 150)), port_);
        slot.sent = 0;
        if (slot.fd < 0) {
          ++counts_.connect_failed;
          slot.reopen_at = now + options_.reconnect_ms / 1000.0;
        } else {
          ++(slow ? counts_.slow_opened : counts_.idle_opened);
        }
      }
      if (slow && now >= next_drip) {
        next_drip += 1;
        for (Slot& slot : slots) {
          if (slot.fd < 0) continue;
          const char byte = header[slot.sent % header.size()];
          if (::send(slot.fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            ++slot.sent;
            ++counts_.slow_bytes;
          }
        }
      }
      polled.clear();
      which.clear();
      for (size_t i = 0; i < count; ++i) {
        if (slots[i].fd < 0) continue;
        polled.push_back({slots[i].fd, POLLIN, 0});
        which.push_back(i);
      }
      if (::poll(polled.data(), polled.size(), 50) <= 0) continue;
      for (size_t k = 0; k < polled.size(); ++k) {
        if (polled[k].revents == 0) continue;
        Slot& slot = slots[which[k]];
        char buffer[4096];
        const ssize_t n = ::recv(slot.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
        if (n > 0) continue;  // an answer (none expected): read on
        ::close(slot.fd);
        slot.fd = -1;
        slot.reopen_at = NowSeconds() + options_.reconnect_ms / 1000.0;
        ++(slow ? counts_.slow_closed : counts_.idle_closed);
      }
    }
    for (Slot& slot : slots) {
      if (slot.fd >= 0) ::close(slot.fd);
    }
  }

  // Unsigned 8 MiB bodies to /v1/sync, each on a new connection, paced.
  void Junk(size_t thread) {
    const std::string body(8u << 20, 'j');
    const std::string head =
        "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    const double gap = static_cast<double>(options_.junk_threads) / options_.junk_rate;
    double next = NowSeconds() +
                  gap * static_cast<double>(thread) / static_cast<double>(options_.junk_threads);
    for (size_t k = 0; !stop_; ++k) {
      while (!stop_ && NowSeconds() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (stop_) break;
      next += gap;
      const int fd = ConnectFrom(Address(4, (thread * 1000 + k) % 200), port_);
      if (fd < 0) {
        ++counts_.connect_failed;
        continue;
      }
      ++counts_.junk_sent;
      std::string out = head + body;
      size_t done = 0;
      while (done < out.size()) {
        const ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
        if (n <= 0) break;  // the hub refused and closed
        done += static_cast<size_t>(n);
      }
      counts_.junk_bytes += done > head.size() ? done - head.size() : 0;
      ::shutdown(fd, SHUT_WR);
      std::string reply;
      const double until = NowSeconds() + 5;
      while (NowSeconds() < until && reply.find("\r\n") == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buffer[1024];
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        reply.append(buffer, static_cast<size_t>(n));
      }
      ::close(fd);
      if (reply.rfind("HTTP/1.1 413", 0) == 0) {
        ++counts_.junk_413;
      } else if (reply.rfind("HTTP/1.1 ", 0) == 0) {
        ++counts_.junk_other;
      } else {
        ++counts_.junk_unanswered;
      }
    }
  }

  const int port_;
  const AttackOptions options_;
  std::atomic<bool> stop_{false};
  AttackCounts counts_;
  std::vector<std::thread> threads_;
};

// The hub's enlace_net_* values, from GET /metrics (this process is on
// loopback, so it may read them).
std::map<std::string, double> NetMetrics(HttpClient& http, const std::string& url) {
  OutgoingRequest request;
  request.method = "GET";
  request.path = "/metrics";
  std::map<std::string, double> out;
  auto r = http.Send(url, request);
  if (!r.ok() || r->status != 200) return out;
  std::istringstream lines(std::string(r->body.begin(), r->body.end()));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("enlace_net_", 0) != 0) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// Resets the hub's VmHWM to its current RSS (Linux 4.0+), so that the next
// reading is the peak since now. False when the kernel refuses.
bool ResetPeakRss(pid_t pid) {
  std::ofstream f("/proc/" + std::to_string(pid) + "/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[at];
}

// What one loop (closed or open) measured.
struct LoopResult {
  std::string mode;
  bool attacked = false;
  json attack;                      // the attacker's counts
  json hub_net;                     // enlace_net_* during the loop (counters: the difference)
  uint64_t hub_peak_rss = 0;        // during the loop
  uint64_t hub_rss_start = 0;       // when the loop began
  bool hub_peak_rss_reset = false;  // false: since the hub started
  double offered_rate = 0;          // open loop: syncs/s offered
  double wall = 0, hub_cpu = 0, client_cpu = 0;
  Stats stats;
  std::string load_start, load_end;
  json rounds = json::array();
};

json LoopJson(LoopResult& r) {
  const double n = static_cast<double>(r.stats.requests);
  double sum = 0;
  for (double l : r.stats.latencies) sum += l;
  const double p50 = Percentile(r.stats.latencies, 0.50);
  const double p99 = Percentile(r.stats.latencies, 0.99);
  const double pmax = r.stats.latencies.empty() ? 0 : r.stats.latencies.back();
  const double mean =
      r.stats.latencies.empty() ? 0 : sum / static_cast<double>(r.stats.latencies.size());
  return {{"mode", r.mode},
          {"attacked", r.attacked},
          {"attack", r.attack},
          {"hub_net", r.hub_net},
          {"hub_peak_rss", r.hub_peak_rss},
          {"hub_rss_start", r.hub_rss_start},
          {"new_connections", r.stats.new_connections},
          {"new_connection_latency_ms",
           {{"p50", Percentile(r.stats.reconnected, 0.5) * 1000},
            {"p99", Percentile(r.stats.reconnected, 0.99) * 1000},
            {"max", r.stats.reconnected.empty() ? 0.0 : r.stats.reconnected.back() * 1000}}},
          {"hub_peak_rss_since_loop_start", r.hub_peak_rss_reset},
          {"offered_syncs_per_s", r.offered_rate},
          {"wall_s", r.wall},
          {"requests", r.stats.requests},
          {"requests_per_s", n / r.wall},
          {"writes_pushed", r.stats.sent},
          {"writes_pushed_per_s", static_cast<double>(r.stats.sent) / r.wall},
          {"writes_pulled", r.stats.received},
          {"writes_pulled_per_s", static_cast<double>(r.stats.received) / r.wall},
          {"signatures_verified", r.stats.verified},
          {"bad_signatures", r.stats.bad_signatures},
          {"latency_ms",
           {{"p50", p50 * 1000}, {"p99", p99 * 1000}, {"max", pmax * 1000}, {"mean", mean * 1000}}},
          {"errors", r.stats.errors},
          {"refused", r.stats.refused},
          {"hub_cpu_s", r.hub_cpu},
          {"client_cpu_s", r.client_cpu},
          {"load_average_start", r.load_start},
          {"load_average_end", r.load_end},
          {"rounds_detail", r.rounds},
          {"last_error", r.stats.last_error}};
}

void PrintLoop(const json& j) {
  auto num = [](const json& v) { return v.get<double>(); };
  std::printf("\n  %s loop%s%s\n", j["mode"].get<std::string>().c_str(),
              j["mode"] == "open"
                  ? (", " + std::to_string(static_cast<int>(num(j["offered_syncs_per_s"]))) +
                     " syncs/s offered")
                        .c_str()
                  : "",
              j["attacked"].get<bool>() ? ", UNDER ATTACK" : "");
  std::printf("  %-34s %14.1f\n", "wall time of the rounds, s", num(j["wall_s"]));
  std::printf("  %-34s %14llu\n", "HTTP requests", j["requests"].get<unsigned long long>());
  std::printf("  %-34s %14.0f\n", "requests/s", num(j["requests_per_s"]));
  std::printf("  %-34s %14.0f\n", "writes pushed/s", num(j["writes_pushed_per_s"]));
  std::printf("  %-34s %14.0f\n", "writes pulled/s", num(j["writes_pulled_per_s"]));
  std::printf("  %-34s %14.1f\n", "latency p50, ms", num(j["latency_ms"]["p50"]));
  std::printf("  %-34s %14.1f\n", "latency p99, ms", num(j["latency_ms"]["p99"]));
  std::printf("  %-34s %14.1f\n", "latency max, ms", num(j["latency_ms"]["max"]));
  std::printf("  %-34s %14.1f\n", "latency mean, ms", num(j["latency_ms"]["mean"]));
  std::printf("  %-34s %14llu\n", "errors", j["errors"].get<unsigned long long>());
  std::printf("  %-34s %14llu\n", "pulled writes refused", j["refused"].get<unsigned long long>());
  std::printf("  %-34s %8llu / %3llu\n", "signatures sampled ok / bad",
              j["signatures_verified"].get<unsigned long long>(),
              j["bad_signatures"].get<unsigned long long>());
  std::printf("  %-34s %14.1f\n", "hub CPU time, s", num(j["hub_cpu_s"]));
  std::printf("  %-34s %14llu (their latency p50 %.1f, p99 %.1f, max %.1f ms)\n",
              "new connections (devices)", j["new_connections"].get<unsigned long long>(),
              num(j["new_connection_latency_ms"]["p50"]),
              num(j["new_connection_latency_ms"]["p99"]),
              num(j["new_connection_latency_ms"]["max"]));
  std::printf("  %-34s %14s%s, %s at the start\n", "hub peak RSS",
              Mb(j["hub_peak_rss"].get<uint64_t>()).c_str(),
              j["hub_peak_rss_since_loop_start"].get<bool>() ? "" : " (since the hub started)",
              Mb(j["hub_rss_start"].get<uint64_t>()).c_str());
  for (const auto& [name, value] : j["hub_net"].items()) {
    std::printf("  %-34s %14.0f\n", name.c_str(), value.get<double>());
  }
  if (j["attacked"].get<bool>()) {
    std::printf("  attacker: %s\n", j["attack"].dump().c_str());
  }
  std::printf("  %-34s %14.1f\n", "client CPU time, s", num(j["client_cpu_s"]));
  std::printf("  %-34s %s -> %s\n", "load average",
              j["load_average_start"].get<std::string>().c_str(),
              j["load_average_end"].get<std::string>().c_str());
  if (!j["last_error"].get<std::string>().empty())
    std::printf("  last error: %s\n", j["last_error"].get<std::string>().c_str());
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  size_t devices = 1000, teams = 50, rounds = 3, batch = 2, connections = 100;
  double rate = 100;
  std::string mode = "both", arrivals = "poisson";
  bool merge_all = false, attack = false, new_connections = false;
  AttackOptions attack_options;
  std::string json_path, hub_bin = ENLACE_HUB_BIN, hub_threads;
  const char* kUsage =
      "usage: hub_load [--devices 1000] [--teams 50] [--rounds 3] [--batch 2] "
      "[--connections 100] [--mode both|closed|open] [--rate 100] [--arrivals poisson|even] "
      "[--merge] [--hub-threads N] [--new-connection-per-sync] [--attack] [--attack-idle 300] "
      "[--attack-slow 50] "
      "[--attack-junk-rate 10] [--attack-reconnect-ms 1000] [--json out.json] [--hub BIN]";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> size_t {
      const size_t v = std::strtoull(next().c_str(), nullptr, 10);
      if (v == 0) Die(a + " takes a positive number");
      return v;
    };
    if (a == "--devices") {
      devices = number();
    } else if (a == "--teams") {
      teams = number();
    } else if (a == "--rounds") {
      rounds = number();
    } else if (a == "--batch") {
      batch = number();
    } else if (a == "--connections") {
      connections = number();
    } else if (a == "--rate") {
      rate = std::strtod(next().c_str(), nullptr);
      if (!(rate > 0)) Die("--rate takes a positive number");
    } else if (a == "--mode") {
      mode = next();
      if (mode != "both" && mode != "closed" && mode != "open") Die(kUsage);
    } else if (a == "--arrivals") {
      arrivals = next();
      if (arrivals != "poisson" && arrivals != "even") Die(kUsage);
    } else if (a == "--merge") {
      merge_all = true;
    } else if (a == "--new-connection-per-sync") {
      new_connections = true;
    } else if (a == "--attack") {
      attack = true;
    } else if (a == "--attack-idle") {
      attack_options.idle = number();
    } else if (a == "--attack-slow") {
      attack_options.slow = number();
    } else if (a == "--attack-junk-rate") {
      attack_options.junk_rate = std::strtod(next().c_str(), nullptr);
      if (!(attack_options.junk_rate > 0)) Die("--attack-junk-rate takes a positive number");
    } else if (a == "--attack-reconnect-ms") {
      attack_options.reconnect_ms = static_cast<int>(number());
    } else if (a == "--hub-threads") {
      hub_threads = std::to_string(number());
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--hub") {
      hub_bin = next();
    } else {
      Die(kUsage);
    }
  }
  teams = std::min(teams, devices);
  connections = std::min(connections, devices);
  InitCurl();
  if (sodium_init() < 0) Die("sodium_init failed");
  const MachineInfo m = ReadMachineInfo();
  std::printf(
      "hub_load: %zu devices in %zu teams, %zu rounds of %zu writes per device and loop, %zu "
      "connections, mode %s, open loop %.0f syncs/s (%s), %s\n",
      devices, teams, rounds, batch, connections, mode.c_str(), rate, arrivals.c_str(),
      merge_all ? "every device merges" : "light devices (2 full clients in team 0)");
  if (new_connections) std::printf("a new connection for every device sync\n");
  if (attack) {
    std::printf(
        "attack: each loop again beside %zu idle connections, %zu slow header senders (1 byte/s), "
        "%.1f unsigned 8 MiB bodies/s; closed connections reopened after %d ms\n",
        attack_options.idle, attack_options.slow, attack_options.junk_rate,
        attack_options.reconnect_ms);
  }
  std::printf("machine: %u CPUs, %s, %s RAM, %s, load average at start %s\n", m.cpus,
              m.cpu_model.c_str(), Mb(m.ram_bytes).c_str(), m.kernel.c_str(),
              m.load_average.c_str());
  std::fflush(stdout);

  TempDir dir;
  const std::string data = dir.File("hub");
  std::vector<std::string> extra;
  if (!hub_threads.empty()) extra = {"--threads", hub_threads};
  HubProcess hub(hub_bin, data, extra);
  const std::string url = hub.url();

  std::vector<std::unique_ptr<HttpClient>> clients;
  // One loopback address per connection, as devices have their own.
  for (size_t t = 0; t < connections; ++t) {
    clients.push_back(std::make_unique<HttpClient>(false, Address(1, t)));
  }
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  HttpClient metrics_client(false);

  // ---- setup -----------------------------------------------------------------------------
  const double setup_start = NowSeconds();
  std::vector<Team> team(teams);
  std::vector<Device> dev(devices);
  for (size_t i = 0; i < devices; ++i) {
    dev[i].team = i % teams;
    // Team 0's first two devices are full clients.
    dev[i].full = merge_all || i == 0 || i == teams;
  }
  std::vector<std::string> tokens;
  for (size_t t = 0; t < teams; ++t) {
    std::string token = RunOrDie({hub_bin, "admin", "bootstrap-token", "--data", data});
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    tokens.push_back(token);
  }
  ParallelFor(teams, connections, clients, [&](size_t t, HttpClient& http, size_t) {
    Team& tm = team[t];
    tm.coordinator =
        Take(Replica::Create(Options(dir.File(Numbered("c", t))), kPassphrase), "coordinator");
    Take(CreateTeam(*tm.coordinator), "create team");
    auto reg = Take(BuildRegisterTeamRequest(*tm.coordinator, "equipo " + std::to_string(t),
                                             "coordinacion", tokens[t]),
                    "register");
    Check(HandleMembersResponse(*tm.coordinator, SendOk(http, url, reg, "register").body),
          "members");
    for (size_t i = t; i < devices; i += teams) {
      auto inv =
          Take(PrepareInvite(*tm.coordinator, url, "", Role::kField, 3600ull * 1000), "invite");
      SendOk(http, url, inv.request, "invite");
      tm.codes.push_back(inv.code);
    }
  });
  ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t) {
    Device& d = dev[i];
    d.replica = Take(Replica::Create(Options(dir.File(Numbered("d", i))), kPassphrase), "device");
    const std::string& code = team[d.team].codes[i / teams];
    auto req = Take(BuildJoinRequest(*d.replica, code, "campo " + std::to_string(i)), "join");
    Check(HandleJoinResponse(*d.replica, code, SendOk(http, url, req, "join").body), "joined");
  });
  const double joined_s = NowSeconds() - setup_start;
  // Every member's key, as the hub's registry tells the coordinators.
  KeyMap keys;
  std::vector<Stats> warm(connections);
  ParallelFor(teams, connections, clients, [&](size_t t, HttpClient& http, size_t c) {
    Device coordinator{};
    coordinator.replica = std::move(team[t].coordinator);
    coordinator.full = true;
    SyncDevice(coordinator, http, url, keys, warm[c]);
    team[t].coordinator = std::move(coordinator.replica);
  });
  for (size_t t = 0; t < teams; ++t) {
    for (const Member& mb : Take(Members(*team[t].coordinator), "members")) {
      keys[mb.device] = mb.signing_key;
    }
  }
  ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
    SyncDevice(dev[i], http, url, keys, warm[t]);
  });
  uint64_t warm_errors = 0;
  for (const auto& s : warm) warm_errors += s.errors;
  const double setup_s = NowSeconds() - setup_start;
  std::printf(
      "setup: %zu teams registered, %zu devices joined in %.1f s, first sync done at %.1f "
      "s (%llu errors, %zu keys); client RSS %s, hub RSS %s\n",
      teams, devices, joined_s, setup_s, static_cast<unsigned long long>(warm_errors), keys.size(),
      Mb(SelfPeakRss()).c_str(), Mb(hub.Rss()).c_str());
  std::fflush(stdout);
  if (warm_errors > 0) Die("the first sync failed: " + warm.back().last_error);

  // Before each round's timed part: every device captures `batch` encounters.
  auto capture = [&]() -> Status {
    std::vector<Status> failed(connections);
    ParallelFor(devices, connections, clients, [&](size_t i, HttpClient&, size_t t) {
      Device& d = dev[i];
      const Status s = d.replica->RunBatch([&]() -> Status {
        for (size_t k = 0; k < batch; ++k) {
          auto id = d.replica->Put("encounters", std::nullopt, Encounter(i, d.made++));
          if (!id.ok()) return id.status();
        }
        return Status::Ok();
      });
      if (!s.ok()) failed[t] = s;
    });
    for (const auto& s : failed) ENLACE_RETURN_IF_ERROR(s);
    return Status::Ok();
  };

  // ---- measured loops ----------------------------------------------------------------------
  std::vector<LoopResult> loops;
  const uint64_t setup_peak = hub.PeakRss();
  auto run_loop = [&](const std::string& which, bool attacked) {
    LoopResult r;
    r.mode = which;
    r.attacked = attacked;
    r.offered_rate = which == "open" ? rate : 0;
    const auto net_before = NetMetrics(metrics_client, url);
    std::unique_ptr<Attack> attacker;
    if (attacked) {
      attacker = std::make_unique<Attack>(port, attack_options);
      std::this_thread::sleep_for(std::chrono::seconds(2));  // the flood is in place
    }
    r.hub_rss_start = hub.Rss();
    r.hub_peak_rss_reset = ResetPeakRss(hub.pid());
    r.load_start = ReadMachineInfo().load_average;
    std::vector<Stats> stats(connections);
    std::mt19937_64 rng(42);
    for (size_t round = 0; round < rounds; ++round) {
      Check(capture(), "capture");
      const double hub0 = ProcessCpuSeconds(hub.pid()), self0 = SelfCpuSeconds();
      uint64_t before = 0;
      for (const auto& s : stats) before += s.requests;
      const double start = NowSeconds();
      if (which == "closed") {
        ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
          SyncDevice(dev[i], http, url, keys, stats[t], 0, new_connections);
        });
      } else {
        // Start times, from the round's start, and a shuffled device order.
        std::vector<double> at(devices);
        std::exponential_distribution<double> gap(rate);
        double clock = 0;
        for (size_t k = 0; k < devices; ++k) {
          clock += arrivals == "poisson" ? gap(rng) : 1.0 / rate;
          at[k] = clock;
        }
        std::vector<size_t> order(devices);
        for (size_t k = 0; k < devices; ++k) order[k] = k;
        std::shuffle(order.begin(), order.end(), rng);
        ParallelFor(devices, connections, clients, [&](size_t k, HttpClient& http, size_t t) {
          const double when = start + at[k];
          const double wait = when - NowSeconds();
          if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
          SyncDevice(dev[order[k]], http, url, keys, stats[t], when, new_connections);
        });
      }
      const double rs = NowSeconds() - start;
      r.wall += rs;
      r.hub_cpu += ProcessCpuSeconds(hub.pid()) - hub0;
      r.client_cpu += SelfCpuSeconds() - self0;
      uint64_t after = 0;
      for (const auto& s : stats) after += s.requests;
      r.rounds.push_back({{"seconds", rs}, {"requests", after - before}});
      std::printf("%s loop, round %zu: %.1f s, %llu requests, hub RSS %s\n", which.c_str(),
                  round + 1, rs, static_cast<unsigned long long>(after - before),
                  Mb(hub.Rss()).c_str());
      std::fflush(stdout);
    }
    for (const auto& s : stats) r.stats.Add(s);
    r.load_end = ReadMachineInfo().load_average;
    r.hub_peak_rss = hub.PeakRss();
    if (attacker != nullptr) {
      attacker->Stop();
      r.attack = attacker->Json();
      attacker.reset();
    }
    r.hub_net = json::object();
    for (const auto& [name, value] : NetMetrics(metrics_client, url)) {
      const bool gauge =
          name == "enlace_net_connections" || name == "enlace_net_body_bytes_in_flight";
      const auto before = net_before.find(name);
      r.hub_net[name] = gauge || before == net_before.end() ? value : value - before->second;
    }
    loops.push_back(std::move(r));
  };
  // Each loop, then (--attack) the same loop under attack, so that the two
  // compared run next to each other.
  for (const std::string which : {"closed", "open"}) {
    if (mode != "both" && mode != which) continue;
    run_loop(which, false);
    if (attack) run_loop(which, true);
  }
  uint64_t hub_peak = std::max(setup_peak, hub.PeakRss());
  for (const LoopResult& l : loops) hub_peak = std::max(hub_peak, l.hub_peak_rss);

  // ---- catch-up and end checks (not measured) ------------------------------------------------
  std::vector<Stats> final_stats(connections);
  ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
    SyncDevice(dev[i], http, url, keys, final_stats[t]);
  });
  Stats final_all;
  for (const auto& s : final_stats) final_all.Add(s);
  // Every device pulled each write of its team's other devices once.
  const size_t loop_count = loops.size();
  uint64_t wrong_pulls = 0;
  for (size_t i = 0; i < devices; ++i) {
    const uint64_t members = (devices - dev[i].team + teams - 1) / teams;
    const uint64_t expected = (members - 1) * rounds * batch * loop_count;
    if (dev[i].pulled != expected) ++wrong_pulls;
  }
  // Team 0's full clients hold the same state and every record of the team.
  bool converged = true;
  uint64_t team0_records = 0;
  std::string first_state;
  size_t full_clients = 0;
  for (size_t i = 0; i < devices; i += teams) {
    if (!dev[i].full) continue;
    ++full_clients;
    const std::string state = Take(dev[i].replica->DumpState(), "dump");
    if (first_state.empty()) {
      first_state = state;
      team0_records = Take(dev[i].replica->List("encounters"), "list").size();
    } else if (state != first_state) {
      converged = false;
    }
  }
  const uint64_t expected_team0 = ((devices + teams - 1) / teams) * rounds * batch * loop_count;

  std::printf("\nhub peak RSS %s, client process peak RSS %s\n", Mb(hub_peak).c_str(),
              Mb(SelfPeakRss()).c_str());
  json loops_json = json::array();
  uint64_t errors = 0, bad = 0;
  for (auto& r : loops) {
    loops_json.push_back(LoopJson(r));
    PrintLoop(loops_json.back());
    errors += r.stats.errors + r.stats.refused;
    bad += r.stats.bad_signatures;
  }
  json comparison = json::array();
  if (attack) {
    std::printf("\n  under attack / without, same run:\n");
    for (const std::string which : {"closed", "open"}) {
      const json* calm = nullptr;
      const json* attacked = nullptr;
      for (const json& l : loops_json) {
        if (l["mode"] != which) continue;
        (l["attacked"].get<bool>() ? attacked : calm) = &l;
      }
      if (calm == nullptr || attacked == nullptr) continue;
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      const double p50 = ratio((*attacked)["latency_ms"]["p50"].get<double>(),
                               (*calm)["latency_ms"]["p50"].get<double>());
      const double p99 = ratio((*attacked)["latency_ms"]["p99"].get<double>(),
                               (*calm)["latency_ms"]["p99"].get<double>());
      const double rss = ratio(static_cast<double>((*attacked)["hub_peak_rss"].get<uint64_t>()),
                               static_cast<double>((*calm)["hub_peak_rss"].get<uint64_t>()));
      std::printf(
          "  %-6s p50 %.1f -> %.1f ms (%.2fx), p99 %.1f -> %.1f ms (%.2fx), errors %llu -> %llu, "
          "hub peak RSS %s -> %s (%.2fx), device connections opened %llu -> %llu\n",
          which.c_str(), (*calm)["latency_ms"]["p50"].get<double>(),
          (*attacked)["latency_ms"]["p50"].get<double>(), p50,
          (*calm)["latency_ms"]["p99"].get<double>(),
          (*attacked)["latency_ms"]["p99"].get<double>(), p99,
          (*calm)["errors"].get<unsigned long long>(),
          (*attacked)["errors"].get<unsigned long long>(),
          Mb((*calm)["hub_peak_rss"].get<uint64_t>()).c_str(),
          Mb((*attacked)["hub_peak_rss"].get<uint64_t>()).c_str(), rss,
          (*calm)["new_connections"].get<unsigned long long>(),
          (*attacked)["new_connections"].get<unsigned long long>());
      comparison.push_back({{"mode", which},
                            {"p50_ratio", p50},
                            {"p99_ratio", p99},
                            {"hub_peak_rss_ratio", rss},
                            {"errors_without", (*calm)["errors"]},
                            {"errors_with", (*attacked)["errors"]},
                            {"new_connections_without", (*calm)["new_connections"]},
                            {"new_connections_with", (*attacked)["new_connections"]}});
    }
  }
  std::printf(
      "\n  end check: team 0: %llu records (expected %llu), %zu full clients %s; devices that did "
      "not pull exactly their team's writes: %llu; catch-up errors %llu; bad signatures %llu\n",
      static_cast<unsigned long long>(team0_records),
      static_cast<unsigned long long>(expected_team0), full_clients,
      converged ? "hold the same state" : "DIFFER", static_cast<unsigned long long>(wrong_pulls),
      static_cast<unsigned long long>(final_all.errors), static_cast<unsigned long long>(bad));
  if (!final_all.last_error.empty())
    std::printf("  last error: %s\n", final_all.last_error.c_str());
  std::printf("  load average at end: %s\n", ReadMachineInfo().load_average.c_str());

  if (!json_path.empty()) {
    json out = {{"benchmark", "hub_load"},
                {"machine", MachineJson(m)},
                {"devices", devices},
                {"teams", teams},
                {"rounds", rounds},
                {"batch", batch},
                {"connections", connections},
                {"arrivals", arrivals},
                {"merge_all", merge_all},
                {"new_connection_per_sync", new_connections},
                {"hub_threads", hub_threads.empty() ? "default" : hub_threads},
                {"setup_s", setup_s},
                {"loops", loops_json},
                {"attack_comparison", comparison},
                {"hub_peak_rss", hub_peak},
                {"client_peak_rss", SelfPeakRss()},
                {"team0_records", team0_records},
                {"team0_expected", expected_team0},
                {"team0_converged", converged},
                {"devices_with_wrong_pulls", wrong_pulls},
                {"catch_up_errors", final_all.errors}};
    out["machine"]["load_average_end"] = ReadMachineInfo().load_average;
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) Die("cannot write " + json_path);
  }
  // Replicas close before the hub stops (destruction order: dev, team, hub).
  dev.clear();
  team.clear();
  const bool ok = errors == 0 && bad == 0 && final_all.errors == 0 && wrong_pulls == 0 &&
                  converged && full_clients >= 2 && team0_records == expected_team0;
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace enlace::bench

int main(int argc, char** argv) { return enlace::bench::Main(argc, argv); }
