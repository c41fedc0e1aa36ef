// hub_load: M simulated field devices in one process, in T teams, each
// capturing a small batch of encounters and syncing it (push and pull in the
// same request) with a real enlace-hub on loopback, over C concurrent
// keep-alive connections. Reports requests/s, writes/s, p50/p99/max latency
// per HTTP exchange, errors (must be 0) and the hub's memory. Issue 6 item
// 6; docs/BENCHMARKS.md.
//
// Usage: hub_load [--devices 1000] [--teams 50] [--rounds 3] [--batch 2]
//                 [--connections 100] [--hub-threads N] [--json out.json] [--hub BIN]
//
// Setup (not measured): a coordinator per team registers it with a bootstrap
// token and makes one invite per device; every device is a core Replica with
// KdfCost::Minimum(), an in-memory store and schema validation on, joins with
// its code and syncs once to learn the other members. Then each round: every
// device puts `batch` encounters in one RunBatch and syncs until the hub has
// nothing more for it; a device pulls what its team pushed since its last
// round. A final catch-up round (not measured) lets every device see every
// write, and team 0's devices must then hold the same state.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/wire.h"

#ifndef ENLACE_HUB_BIN
#define ENLACE_HUB_BIN "enlace-hub"
#endif

namespace enlace::bench {
namespace {

using nlohmann::json;

constexpr char kPassphrase[] = "una frase larga de prueba";

struct Device {
  std::unique_ptr<Replica> replica;
  size_t team = 0;
  uint64_t made = 0;  // encounters put so far
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
  o.validate = true;
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

// Runs fn(i, http) for i in [0, count) on `threads` threads, each with its
// own keep-alive connection.
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
  std::string last_error;
};

// One device's sync until the hub has nothing more; every exchange timed.
void SyncDevice(Device& d, HttpClient& http, const std::string& url, Stats& stats) {
  SyncSession session(*d.replica);
  for (int guard = 0; guard < 1000; ++guard) {
    auto req = session.NextRequest();
    if (!req.ok()) {
      ++stats.errors;
      stats.last_error = req.status().ToString();
      return;
    }
    auto resp = http.Send(url, *req);
    ++stats.requests;
    if (!resp.ok() || resp->status != 200) {
      ++stats.errors;
      stats.last_error = resp.ok() ? "HTTP " + std::to_string(resp->status) +
                                         std::string(resp->body.begin(), resp->body.end())
                                   : resp.status().ToString();
      return;
    }
    stats.latencies.push_back(resp->seconds);
    FollowHubClock(*d.replica, resp->hub_time);
    auto more = session.HandleResponse(resp->body);
    if (!more.ok()) {
      ++stats.errors;
      stats.last_error = more.status().ToString();
      return;
    }
    if (!*more) break;
  }
  stats.sent += session.progress().sent;
  stats.received += session.progress().received;
  stats.refused += session.progress().refused;
  if (session.progress().refused > 0) stats.last_error = session.progress().last_refusal;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[at];
}

int Main(int argc, char** argv) {
  size_t devices = 1000, teams = 50, rounds = 3, batch = 2, connections = 100;
  std::string json_path, hub_bin = ENLACE_HUB_BIN, hub_threads;
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
    } else if (a == "--hub-threads") {
      hub_threads = std::to_string(number());
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--hub") {
      hub_bin = next();
    } else {
      Die("usage: hub_load [--devices 1000] [--teams 50] [--rounds 3] [--batch 2] "
          "[--connections 100] [--hub-threads N] [--json out.json] [--hub BIN]");
    }
  }
  teams = std::min(teams, devices);
  connections = std::min(connections, devices);
  InitCurl();
  const MachineInfo m = ReadMachineInfo();
  std::printf(
      "hub_load: %zu devices in %zu teams, %zu rounds of %zu writes per device, %zu "
      "connections\n",
      devices, teams, rounds, batch, connections);
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
  for (size_t t = 0; t < connections; ++t) clients.push_back(std::make_unique<HttpClient>(false));

  // ---- setup -----------------------------------------------------------------------------
  const double setup_start = NowSeconds();
  std::vector<Team> team(teams);
  std::vector<Device> dev(devices);
  for (size_t i = 0; i < devices; ++i) dev[i].team = i % teams;
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
    Take(tm.coordinator->CreateTeam(), "create team");
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
  std::vector<Stats> warm(connections);
  ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
    SyncDevice(dev[i], http, url, warm[t]);
  });
  uint64_t warm_errors = 0;
  for (const auto& s : warm) warm_errors += s.errors;
  const double setup_s = NowSeconds() - setup_start;
  std::printf(
      "setup: %zu teams registered, %zu devices joined in %.1f s, first sync done at %.1f "
      "s (%llu errors); client RSS %s, hub RSS %s\n",
      teams, devices, joined_s, setup_s, static_cast<unsigned long long>(warm_errors),
      Mb(SelfPeakRss()).c_str(), Mb(hub.Rss()).c_str());
  std::fflush(stdout);

  // ---- measured rounds -----------------------------------------------------------------
  std::vector<Stats> stats(connections);
  std::vector<double> capture_s(connections, 0);
  json per_round = json::array();
  const double start = NowSeconds();
  const double hub_cpu0 = ProcessCpuSeconds(hub.pid()), self_cpu0 = SelfCpuSeconds();
  for (size_t r = 0; r < rounds; ++r) {
    const double round_start = NowSeconds();
    uint64_t requests_before = 0;
    for (const auto& s : stats) requests_before += s.requests;
    ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
      Device& d = dev[i];
      const double c0 = NowSeconds();
      const Status s = d.replica->RunBatch([&]() -> Status {
        for (size_t k = 0; k < batch; ++k) {
          auto id = d.replica->Put("encounters", std::nullopt, Encounter(i, d.made++));
          if (!id.ok()) return id.status();
        }
        return Status::Ok();
      });
      capture_s[t] += NowSeconds() - c0;
      if (!s.ok()) {
        ++stats[t].errors;
        stats[t].last_error = s.ToString();
        return;
      }
      SyncDevice(d, http, url, stats[t]);
    });
    uint64_t requests_after = 0;
    for (const auto& s : stats) requests_after += s.requests;
    const double rs = NowSeconds() - round_start;
    per_round.push_back({{"seconds", rs}, {"requests", requests_after - requests_before}});
    std::printf("round %zu: %.1f s, %llu requests, hub RSS %s\n", r + 1, rs,
                static_cast<unsigned long long>(requests_after - requests_before),
                Mb(hub.Rss()).c_str());
    std::fflush(stdout);
  }
  const double wall = NowSeconds() - start;
  const double hub_cpu = ProcessCpuSeconds(hub.pid()) - hub_cpu0;
  const double client_cpu = SelfCpuSeconds() - self_cpu0;

  Stats all;
  for (auto& s : stats) {
    all.latencies.insert(all.latencies.end(), s.latencies.begin(), s.latencies.end());
    all.requests += s.requests;
    all.errors += s.errors;
    all.sent += s.sent;
    all.received += s.received;
    all.refused += s.refused;
    if (!s.last_error.empty()) all.last_error = s.last_error;
  }
  double capture_total = 0;
  for (double c : capture_s) capture_total += c;
  const uint64_t hub_peak = hub.PeakRss();
  const double p50 = Percentile(all.latencies, 0.50);
  const double p99 = Percentile(all.latencies, 0.99);
  const double pmax = all.latencies.empty() ? 0 : all.latencies.back();
  const double mean = [&] {
    double sum = 0;
    for (double l : all.latencies) sum += l;
    return all.latencies.empty() ? 0 : sum / static_cast<double>(all.latencies.size());
  }();

  // ---- catch-up and convergence check (not measured) --------------------------------------
  std::vector<Stats> final_stats(connections);
  ParallelFor(devices, connections, clients, [&](size_t i, HttpClient& http, size_t t) {
    SyncDevice(dev[i], http, url, final_stats[t]);
  });
  uint64_t final_errors = 0;
  for (const auto& s : final_stats) final_errors += s.errors;
  std::string first_state;
  bool converged = true;
  uint64_t team0_records = 0;
  for (size_t i = 0; i < devices; i += teams) {
    const std::string state = Take(dev[i].replica->DumpState(), "dump");
    if (i == 0) {
      first_state = state;
      team0_records = Take(dev[i].replica->List("encounters"), "list").size();
    } else if (state != first_state) {
      converged = false;
    }
  }
  const uint64_t expected_team0 = ((devices + teams - 1) / teams) * rounds * batch;

  std::printf("\n  %-34s %14s\n", "measure", "value");
  std::printf("  %-34s %14.1f\n", "wall time of the rounds, s", wall);
  std::printf("  %-34s %14llu\n", "HTTP requests", static_cast<unsigned long long>(all.requests));
  std::printf("  %-34s %14.0f\n", "requests/s", static_cast<double>(all.requests) / wall);
  std::printf("  %-34s %14.0f\n", "writes pushed/s", static_cast<double>(all.sent) / wall);
  std::printf("  %-34s %14.0f\n", "writes pulled (merged)/s",
              static_cast<double>(all.received) / wall);
  std::printf("  %-34s %14.1f\n", "latency p50, ms", p50 * 1000);
  std::printf("  %-34s %14.1f\n", "latency p99, ms", p99 * 1000);
  std::printf("  %-34s %14.1f\n", "latency max, ms", pmax * 1000);
  std::printf("  %-34s %14.1f\n", "latency mean, ms", mean * 1000);
  std::printf("  %-34s %14llu\n", "errors", static_cast<unsigned long long>(all.errors));
  std::printf("  %-34s %14llu\n", "pulled writes refused",
              static_cast<unsigned long long>(all.refused));
  std::printf("  %-34s %14s\n", "hub peak RSS", Mb(hub_peak).c_str());
  std::printf("  %-34s %14s\n", "client process peak RSS", Mb(SelfPeakRss()).c_str());
  std::printf("  %-34s %14.1f\n", "client time in RunBatch, s", capture_total);
  std::printf("  %-34s %14.1f\n", "hub CPU time in the rounds, s", hub_cpu);
  std::printf("  %-34s %14.1f\n", "client CPU time in the rounds, s", client_cpu);
  std::printf("  team 0: %llu records (expected %llu), %s; catch-up errors %llu\n",
              static_cast<unsigned long long>(team0_records),
              static_cast<unsigned long long>(expected_team0),
              converged ? "all its devices hold the same state" : "DEVICES DIFFER",
              static_cast<unsigned long long>(final_errors));
  std::printf("  load average at end: %s\n", ReadMachineInfo().load_average.c_str());
  if (!all.last_error.empty()) std::printf("  last error: %s\n", all.last_error.c_str());

  if (!json_path.empty()) {
    json out = {
        {"benchmark", "hub_load"},
        {"machine",
         {{"cpus", m.cpus},
          {"cpu_model", m.cpu_model},
          {"ram_bytes", m.ram_bytes},
          {"kernel", m.kernel},
          {"load_average_start", m.load_average},
          {"load_average_end", ReadMachineInfo().load_average}}},
        {"devices", devices},
        {"teams", teams},
        {"rounds", rounds},
        {"batch", batch},
        {"connections", connections},
        {"hub_threads", hub_threads.empty() ? "default" : hub_threads},
        {"setup_s", setup_s},
        {"wall_s", wall},
        {"requests", all.requests},
        {"requests_per_s", static_cast<double>(all.requests) / wall},
        {"writes_pushed", all.sent},
        {"writes_pushed_per_s", static_cast<double>(all.sent) / wall},
        {"writes_pulled", all.received},
        {"latency_ms",
         {{"p50", p50 * 1000}, {"p99", p99 * 1000}, {"max", pmax * 1000}, {"mean", mean * 1000}}},
        {"errors", all.errors},
        {"refused", all.refused},
        {"hub_peak_rss", hub_peak},
        {"client_peak_rss", SelfPeakRss()},
        {"rounds_detail", per_round},
        {"team0_records", team0_records},
        {"team0_expected", expected_team0},
        {"team0_converged", converged},
        {"catch_up_errors", final_errors}};
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) Die("cannot write " + json_path);
  }
  // Replicas close before the hub stops (destruction order: dev, team, hub).
  dev.clear();
  team.clear();
  return all.errors == 0 && final_errors == 0 && converged && team0_records == expected_team0 ? 0
                                                                                              : 1;
}

}  // namespace
}  // namespace enlace::bench

int main(int argc, char** argv) { return enlace::bench::Main(argc, argv); }
