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
//                 [--json out.json] [--hub BIN]
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
#include <sodium.h>

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
  std::string last_error;
  void Add(const Stats& o) {
    latencies.insert(latencies.end(), o.latencies.begin(), o.latencies.end());
    requests += o.requests;
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
                Stats& stats, double scheduled = 0) {
  SyncSession session(*d.replica);
  uint64_t pulled = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto req = session.NextRequest();
    if (!req.ok()) {
      ++stats.errors;
      stats.last_error = req.status().ToString();
      return;
    }
    auto resp = http.Send(url, *req);
    const double done = NowSeconds();
    ++stats.requests;
    if (!resp.ok() || resp->status != 200) {
      ++stats.errors;
      stats.last_error = resp.ok() ? "HTTP " + std::to_string(resp->status) +
                                         std::string(resp->body.begin(), resp->body.end())
                                   : resp.status().ToString();
      return;
    }
    stats.latencies.push_back(guard == 0 && scheduled > 0 ? done - scheduled : resp->seconds);
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

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[at];
}

// What one loop (closed or open) measured.
struct LoopResult {
  std::string mode;
  double offered_rate = 0;  // open loop: syncs/s offered
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
  std::printf("\n  %s loop%s\n", j["mode"].get<std::string>().c_str(),
              j["mode"] == "open"
                  ? (", " + std::to_string(static_cast<int>(num(j["offered_syncs_per_s"]))) +
                     " syncs/s offered")
                        .c_str()
                  : "");
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
  bool merge_all = false;
  std::string json_path, hub_bin = ENLACE_HUB_BIN, hub_threads;
  const char* kUsage =
      "usage: hub_load [--devices 1000] [--teams 50] [--rounds 3] [--batch 2] "
      "[--connections 100] [--mode both|closed|open] [--rate 100] [--arrivals poisson|even] "
      "[--merge] [--hub-threads N] [--json out.json] [--hub BIN]";
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
  auto run_loop = [&](const std::string& which) {
    LoopResult r;
    r.mode = which;
    r.offered_rate = which == "open" ? rate : 0;
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
          SyncDevice(dev[i], http, url, keys, stats[t]);
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
          SyncDevice(dev[order[k]], http, url, keys, stats[t], when);
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
    loops.push_back(std::move(r));
  };
  if (mode != "open") run_loop("closed");
  if (mode != "closed") run_loop("open");
  const uint64_t hub_peak = hub.PeakRss();

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
                {"hub_threads", hub_threads.empty() ? "default" : hub_threads},
                {"setup_s", setup_s},
                {"loops", loops_json},
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
