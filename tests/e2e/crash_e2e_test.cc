// Crash safety with the real binaries: `enlace put` and `enlace sync` killed
// (SIGKILL) at random points, and the hub killed at random points while
// writes arrive. After each kill the files the dead process left pass
// `PRAGMA integrity_check`, every acknowledged write is still there, and once
// everyone syncs again nothing is lost, nothing is stored twice, and the
// replicas converge.
//
// A handful of trials per side by default; ENLACE_CRASH_TRIALS=N runs N per
// side (docs/TESTING.md). ENLACE_CRASH_SEED=S repeats a run's kill points
// (the instruction a process dies at also depends on scheduling).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli_fixture.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "fault_proxy.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::CliDevice;
using testing::Office;
using testing::ReadOnlyDb;
using Clock = std::chrono::steady_clock;

int Trials() {
  const char* s = std::getenv("ENLACE_CRASH_TRIALS");
  if (s == nullptr || *s == '\0') return 5;
  return std::max(1, std::atoi(s));
}

// A crash test's run: its seed and number of trials, announced so that the
// run can be repeated, and its random generator (stream `stream` of the seed,
// one per test).
struct CrashPlan {
  explicit CrashPlan(uint64_t stream) : rng(seed + stream) {
    MESSAGE("ENLACE_CRASH_SEED=", seed, ", ", trials, " trials");
  }
  const uint64_t seed = testing::CrashSeed();
  const int trials = Trials();
  std::mt19937_64 rng;
};

// A child process with its output thrown away.
pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  using testing::ChildStream;
  auto pid = testing::SpawnChild(argv, testing::ChildEnvironment(env), ChildStream::Null(O_RDONLY),
                                 ChildStream::Null(O_WRONLY), ChildStream::Null(O_WRONLY));
  return pid.ok() ? *pid : -1;
}

// Runs the command and kills it with SIGKILL after `delay` unless it ended
// first. Returns its exit code (137 when killed).
int RunAndKill(const CliDevice& d, const std::vector<std::string>& args,
               std::chrono::microseconds delay) {
  const pid_t pid = Spawn(d.Argv(args), d.Env());
  REQUIRE(pid > 0);
  std::this_thread::sleep_for(delay);
  kill(pid, SIGKILL);  // harmless when it already exited (it is not reaped yet)
  return testing::WaitChild(pid);
}

std::chrono::microseconds TimeOf(const std::function<void()>& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::string IdOf(const CliDevice& d) { return d.Json({"status"})["device"].get<std::string>(); }

// How many records of `list` have field `name` equal to `value`.
size_t CountWith(const json& list, const std::string& name, const std::string& value) {
  return static_cast<size_t>(std::count_if(list.begin(), list.end(), [&](const json& r) {
    return r["fields"].contains(name) && r["fields"][name] == value;
  }));
}

// Every write of `device` up to counter `acked` is in the hub database, once.
void CheckAckedOnHub(ReadOnlyDb& hub, const std::string& device_hex, uint64_t acked) {
  const std::string where =
      " FROM writes WHERE device = x'" + device_hex + "' AND counter <= " + std::to_string(acked);
  CHECK(hub.Int("SELECT count(*)" + where) == static_cast<int64_t>(acked));
}

TEST_CASE("enlace put killed at random points keeps every write it acknowledged") {
  CrashPlan plan(/*stream=*/0);
  INFO("ENLACE_CRASH_SEED=", plan.seed);
  Office o;
  CliDevice ana = o.Join("ana");
  // How long a put takes here; kill points spread over 1.5 times that.
  std::chrono::microseconds put_time{0};
  for (int i = 0; i < 3; ++i) {
    put_time += TimeOf([&] { ana.Ok(testing::PutEncounter("warmup" + std::to_string(i))); });
  }
  put_time /= 3;
  std::uniform_int_distribution<int64_t> delay(0, put_time.count() * 3 / 2);

  std::set<std::string> acked;
  int killed = 0;
  for (int t = 0; t < plan.trials; ++t) {
    const std::string mark = "p" + std::to_string(t);
    const int rc =
        RunAndKill(ana, testing::PutEncounter(mark), std::chrono::microseconds(delay(plan.rng)));
    INFO("trial ", t, " exit ", rc);
    REQUIRE((rc == 0 || rc == 128 + SIGKILL));
    if (rc == 0) acked.insert(mark);
    if (rc != 0) ++killed;
    {
      ReadOnlyDb store(ana.home + "/store.db");
      REQUIRE(store.IntegrityCheck() == "ok");
    }
    // The device opens and answers after every kill.
    REQUIRE(ana.Run({"status"}).exit_code == 0);
  }
  MESSAGE(plan.trials, " puts: ", acked.size(), " finished, ", killed, " killed (put takes ~",
          put_time.count() / 1000, " ms)");

  const json local = ana.Json({"list", "encounters"});
  ana.Sync();
  o.coord.Sync();
  const json remote = o.coord.Json({"list", "encounters"});
  CHECK(remote == local);
  for (int t = 0; t < plan.trials; ++t) {
    const std::string mark = "p" + std::to_string(t);
    INFO("trial ", t);
    if (acked.contains(mark)) {
      CHECK(CountWith(local, "enc_Notes", mark) == 1);
      CHECK(CountWith(remote, "enc_Notes", mark) == 1);
    } else {
      CHECK(CountWith(remote, "enc_Notes", mark) <= 1);
    }
  }
  // One write per record on the hub, none twice.
  o.hub->Stop();
  ReadOnlyDb hub(o.hub_db());
  CHECK(hub.IntegrityCheck() == "ok");
  CHECK(hub.Int("SELECT count(*) FROM writes") == static_cast<int64_t>(local.size()));
}

TEST_CASE("enlace sync killed at random points loses and duplicates nothing") {
  CrashPlan plan(/*stream=*/1);
  INFO("ENLACE_CRASH_SEED=", plan.seed);
  Office o;
  CliDevice ana = o.Join("ana");
  const std::string ana_id = IdOf(ana);
  uint64_t ana_writes = 0, all_writes = 0;
  // Each trial: ana has writes to push and the coordinator's to pull.
  auto prepare = [&](int t) {
    for (int i = 0; i < 2; ++i) {
      ana.Ok(testing::PutEncounter("ana" + std::to_string(t)));
    }
    for (int i = 0; i < 3; ++i) {
      o.coord.Ok(testing::PutEncounter("coord" + std::to_string(t)));
    }
    ana_writes += 2;
    all_writes += 5;
    o.coord.Sync();
  };
  prepare(-1);
  const std::chrono::microseconds sync_time = TimeOf([&] { ana.Sync(); });
  std::uniform_int_distribution<int64_t> delay(0, sync_time.count() * 3 / 2);

  int killed = 0;
  for (int t = 0; t < plan.trials; ++t) {
    prepare(t);
    const int rc = RunAndKill(ana, {"sync"}, std::chrono::microseconds(delay(plan.rng)));
    INFO("trial ", t, " exit ", rc);
    REQUIRE((rc == 0 || rc == 128 + SIGKILL));
    if (rc != 0) ++killed;
    {
      ReadOnlyDb store(ana.home + "/store.db");
      REQUIRE(store.IntegrityCheck() == "ok");
    }
    // What the device no longer holds in its outbox, the hub has.
    const uint64_t pending = ana.Json({"status"})["pending"].get<uint64_t>();
    REQUIRE(pending <= ana_writes);
    ReadOnlyDb hub(o.hub_db());
    CheckAckedOnHub(hub, ana_id, ana_writes - pending);
    if (rc == 0) CHECK(pending == 0);
  }
  MESSAGE(plan.trials, " syncs: ", plan.trials - killed, " finished, ", killed,
          " killed (sync takes ~", sync_time.count() / 1000, " ms)");

  ana.Sync();
  o.coord.Sync();
  CHECK(ana.Json({"list", "encounters"}) == o.coord.Json({"list", "encounters"}));
  CHECK(ana.Json({"list", "encounters"}).size() == all_writes);
  ReadOnlyDb hub(o.hub_db());
  CHECK(hub.Int("SELECT count(*) FROM writes") == static_cast<int64_t>(all_writes));
  CHECK(hub.Int("SELECT count(*) FROM writes WHERE device = x'" + ana_id + "'") ==
        static_cast<int64_t>(ana_writes));
  CHECK(hub.IntegrityCheck() == "ok");
}

// An in-process device that writes and pushes one write per request, as
// fast as the hub answers, until a request fails.
struct Writer {
  testing::TempDir dir;
  std::unique_ptr<Replica> replica;
  std::string name;
  uint64_t written = 0;

  // One put and one sync round; false when the hub did not answer 200.
  bool Step(int port, int trial) {
    auto id = replica->Put("encounters", std::nullopt,
                           {{"enc_Date", "\"2026-11-29\""},
                            {"enc_Kind", "\"Shelter\""},
                            {"enc_Place", "\"" + name + "\""},
                            {"enc_PeopleReached", std::to_string(written)},
                            {"enc_Notes", "\"h" + std::to_string(trial) + "\""}});
    if (!id.ok()) return false;
    ++written;
    return Round(port).has_value();
  }
  // One sync round: nullopt when the hub did not answer, else "more".
  std::optional<bool> Round(int port, size_t max_push_bytes = 1) {
    SyncOptions options;
    options.max_push_bytes = max_push_bytes;
    SyncSession session(*replica, options);
    auto request = session.NextRequest();
    if (!request.ok()) return std::nullopt;
    const testing::HttpReply reply = testing::PostToHub(port, *request, 5000);
    if (reply.status != 200) return std::nullopt;
    auto more = session.HandleResponse(
        {reinterpret_cast<const uint8_t*>(reply.body.data()), reply.body.size()});
    if (!more.ok()) return std::nullopt;
    return *more;
  }
  uint64_t Acked() {
    auto pending = replica->PendingCount();
    REQUIRE(pending.ok());
    return written - *pending;
  }
};

TEST_CASE("the hub killed at random points while writes arrive keeps what it acknowledged") {
  CrashPlan plan(/*stream=*/2);
  INFO("ENLACE_CRASH_SEED=", plan.seed);
  Office o;
  CliDevice ana = o.Join("ana");
  const std::string ana_id = IdOf(ana);

  // Two in-process writers, invited by the coordinator's own replica.
  std::vector<std::unique_ptr<Writer>> writers;
  {
    ReplicaOptions coord_options = testing::TestOptions(o.coord.home);
    auto coord = Replica::Open(coord_options, o.coord.passphrase);
    REQUIRE_MESSAGE(coord.ok(), coord.status().ToString());
    for (const char* name : {"w1", "w2"}) {
      auto w = std::make_unique<Writer>();
      w->name = name;
      w->replica = testing::MakeReplica(testing::TestOptions(w->dir.File("device")));
      auto invite = PrepareInvite(**coord, o.hub->url(), "", Role::kField, 3'600'000);
      REQUIRE(invite.ok());
      REQUIRE(testing::PostToHub(o.hub->port(), invite->request).status == 200);
      auto join = BuildJoinRequest(*w->replica, invite->code, name);
      REQUIRE(join.ok());
      const testing::HttpReply reply = testing::PostToHub(o.hub->port(), *join);
      REQUIRE(reply.status == 200);
      REQUIRE(HandleJoinResponse(
                  *w->replica, invite->code,
                  {reinterpret_cast<const uint8_t*>(reply.body.data()), reply.body.size()})
                  .ok());
      writers.push_back(std::move(w));
    }
  }

  uint64_t ana_writes = 0;
  int cli_finished = 0;
  uint64_t acked_at_kill = 0;  // acknowledged writes found on a dead hub's disk
  std::uniform_int_distribution<int> kill_after_ms(5, 300);
  for (int t = 0; t < plan.trials; ++t) {
    INFO("trial ", t);
    const int port = o.hub->port();
    // ana pushes a batch with the CLI (retrying across the restart, or not),
    // while the writers stream single writes.
    for (int i = 0; i < 5; ++i) ana.Ok(testing::PutEncounter("h" + std::to_string(t)));
    ana_writes += 5;
    const pid_t cli = Spawn(ana.Argv({"sync"}), ana.Env());
    REQUIRE(cli > 0);
    std::vector<std::thread> threads;
    for (auto& w : writers) {
      threads.emplace_back([&w, port, t] {
        while (w->Step(port, t)) {
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(plan.rng)));
    o.hub->Kill();
    for (auto& th : threads) th.join();
    const int cli_rc = testing::WaitChild(cli);
    CHECK((cli_rc == 0 || cli_rc == 3));
    if (cli_rc == 0) ++cli_finished;

    {
      // The dead hub's files: intact, and holding everything it acknowledged.
      ReadOnlyDb hub(o.hub_db());
      REQUIRE(hub.IntegrityCheck() == "ok");
      for (auto& w : writers) {
        CheckAckedOnHub(hub, w->replica->device_id().ToHex(), w->Acked());
        acked_at_kill += w->Acked();
      }
      const uint64_t pending = ana.Json({"status"})["pending"].get<uint64_t>();
      CheckAckedOnHub(hub, ana_id, ana_writes - pending);
      acked_at_kill += ana_writes - pending;
      CHECK(hub.Int("SELECT count(*) FROM writes") ==
            hub.Int("SELECT count(*) FROM (SELECT DISTINCT device, counter FROM writes)"));
    }
    o.RestartHub(/*kill=*/false);
  }

  // Everyone catches up: ana pushes what the last kill left pending, the
  // writers push theirs and pull everyone's, then the CLI devices pull.
  ana.Sync();
  uint64_t total = ana_writes;
  for (auto& w : writers) {
    for (int rounds = 0;; ++rounds) {
      REQUIRE(rounds < 1000);
      const auto more = w->Round(o.hub->port(), 256 * 1024);
      REQUIRE(more.has_value());
      if (!*more) break;
    }
    total += w->written;
  }
  for (auto& w : writers) REQUIRE(w->Round(o.hub->port()).has_value());  // pull the others
  ana.Sync();
  o.coord.Sync();
  const json listed = o.coord.Json({"list", "encounters"});
  CHECK(listed.size() == total);
  CHECK(ana.Json({"list", "encounters"}) == listed);
  auto a = writers[0]->replica->DumpState();
  auto b = writers[1]->replica->DumpState();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == *b);
  CHECK(writers[0]->replica->List("encounters")->size() == total);
  o.hub->Stop();
  ReadOnlyDb hub(o.hub_db());
  CHECK(hub.IntegrityCheck() == "ok");
  CHECK(hub.Int("SELECT count(*) FROM writes") == static_cast<int64_t>(total));
  MESSAGE(plan.trials, " hub kills (the CLI's sync finished before or across ", cli_finished,
          " of them); ", total, " writes in all, every one stored once; ", acked_at_kill,
          " acknowledged writes checked on the dead hubs' disks");
}

}  // namespace
}  // namespace enlace
