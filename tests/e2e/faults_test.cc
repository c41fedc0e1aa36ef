// Sync under a bad link: the real enlace CLI and enlace-hub with a
// fault-injection proxy between them (fault_proxy.h) that cuts, resets,
// loses answers, throttles and delays. Whatever the link does, a sync that
// reports success has moved everything, the hub stores each write once, and
// the replicas converge.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "fault_proxy.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::CliDevice;
using testing::FaultConfig;
using testing::FaultProxy;
using testing::Office;
using testing::RunResult;

// Everything a device shows: records of the collections used here, and conflicts.
json Shown(const CliDevice& d) {
  return json{{"cases", d.Json({"list", "cases"})},
              {"encounters", d.Json({"list", "encounters"})},
              {"conflicts", d.Json({"conflicts"})}};
}

// A case-like record of a dozen fields, as a field worker captures one
// (schema pack collection `cases`).
std::vector<std::string> CaseRecord(int i) {
  static const char* kOwners[] = {"ana", "beto", "carmen", "dario", "elena"};
  const std::string day = std::to_string(10 + i % 18);
  return {"put",
          "cases",
          "cas_Title=Caso " + std::to_string(i) + " de la central de autobuses",
          "cas_Status=" + std::string(i % 7 == 0 ? "FollowUp" : "Active"),
          "cas_CaseOwner=" + std::string(kOwners[i % 5]),
          "cas_OpenedDate=2026-11-" + day,
          "cas_ReferringOrganisation=DIF Tlaxcala",
          "cas_IncomingReferralDate=2026-11-" + day,
          "cas_ReasonForIncomingReferral=AdditionalServicesRequired",
          "cas_IncomingReferralDetails=Canalizada por el albergue; requiere apoyo legal y "
          "atencion psicologica",
          "cas_ReferredOrganisation=CAVIM Tlaxcala",
          "cas_OutgoingReferralDate=2026-11-28",
          "cas_ReasonForOutgoingReferral=Other",
          "cas_CaseComment=Acepta volver a hablar el jueves; contacto por la trabajadora social"};
}

// Runs `argv` with stderr on a pseudo-terminal, as a person at a terminal
// sees it (the CLI shows sync progress only there). `err` holds what the
// terminal showed.
RunResult RunOnTerminal(const std::vector<std::string>& argv,
                        const std::map<std::string, std::string>& env) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  const int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(slave >= 0);
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  using testing::ChildStream;
  auto pid = testing::SpawnChild(argv, testing::ChildEnvironment(env), ChildStream::Null(O_RDONLY),
                                 ChildStream::Fd(out[1]), ChildStream::Fd(slave));
  close(slave);
  close(out[1]);
  REQUIRE_MESSAGE(pid.ok(), pid.status().ToString());
  return testing::CollectChild(*pid, out[0], master, /*timeout_s=*/300);
}

TEST_CASE("with 30% of connections cut at random points, sync completes and replicas converge") {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");
  const uint64_t seed = testing::FaultSeed(20261130);
  MESSAGE("fault seed ", seed, " (replay with ENLACE_FAULT_SEED)");
  FaultConfig faults;
  faults.cut_share = 0.3;
  faults.cut_window_bytes = 700;  // most requests and answers here are 0.4-2 KB
  faults.reset_share = 0.5;
  FaultProxy proxy(o.hub->port(), faults, seed);

  // Each device captures offline and syncs through the bad link, round after
  // round; everyone also edits one shared case, so conflicts travel too.
  const std::vector<const CliDevice*> devices = {&o.coord, &ana, &beto};
  const std::string shared =
      o.coord.Json({"put", "cases", "cas_Title=Compartido", "cas_Status=Active"})["id"];
  int writes = 1;
  auto sync = [&](const CliDevice& d) {
    const RunResult r = d.Run({"--json", "sync", "--hub", proxy.url(), "--max-attempts", "40"});
    INFO(d.home, " exit ", r.exit_code, " stderr: ", r.err);
    REQUIRE(r.exit_code == 0);
  };
  for (const CliDevice* d : devices) sync(*d);
  for (int round = 0; round < 6; ++round) {
    for (size_t k = 0; k < devices.size(); ++k) {
      const CliDevice& d = *devices[k];
      for (int i = 0; i < 2; ++i) {
        d.Ok(testing::PutEncounter("r" + std::to_string(round) + "d" + std::to_string(k),
                                   round * 10 + i));
        ++writes;
      }
      d.Ok({"put", "cases", shared, "cas_Status=FollowUp",
            "cas_CaseComment=round " + std::to_string(round) + " by " + std::to_string(k)});
      ++writes;
    }
    for (const CliDevice* d : devices) sync(*d);
  }
  // Everyone pulls what the others pushed last.
  for (int pass = 0; pass < 2; ++pass) {
    for (const CliDevice* d : devices) sync(*d);
  }

  const testing::FaultStats stats = proxy.stats();
  MESSAGE("connections ", stats.connections, ", cut up ", stats.cut_upstream, ", cut down ",
          stats.cut_downstream, ", with RST ", stats.resets, "; bytes up ", stats.bytes_up,
          ", down ", stats.bytes_down);
  CHECK(stats.cut_upstream > 0);
  CHECK(stats.cut_downstream > 0);
  CHECK(stats.resets > 0);

  const json reference = Shown(o.coord);
  CHECK(reference["encounters"].size() == 36);
  CHECK(reference["cases"].size() == 1);
  CHECK_FALSE(reference["conflicts"].empty());  // the last round's edits were concurrent
  CHECK(Shown(ana) == reference);
  CHECK(Shown(beto) == reference);
  for (const CliDevice* d : devices) CHECK(d->Json({"status"})["pending"] == 0);
  // Each write once on the hub, however often it was sent.
  CHECK(testing::MetricValue(o.hub->port(), "enlace_log_writes") == writes);
  testing::ReadOnlyDb db(o.hub_db());
  CHECK(db.Int("SELECT count(*) FROM writes") == writes);
  CHECK(db.Int("SELECT count(*) FROM (SELECT DISTINCT device, counter FROM writes)") == writes);
}

TEST_CASE("a connection cut at any point of the request or the answer costs a retry, no more") {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");
  FaultProxy proxy(o.hub->port());
  // Points in the request (~700 bytes: line, headers, body) and in the
  // answer (~185 bytes: status line, inside the header, around its blank
  // line, in the body), each by FIN and by RST.
  const std::vector<uint64_t> request_points = {0, 1, 20, 100, 250, 400, 500, 600};
  const std::vector<uint64_t> answer_points = {0, 1, 17, 60, 100, 125, 140, 160, 180};
  int writes = 0;
  uint64_t cuts = 0;
  for (const bool upstream : {true, false}) {
    for (const uint64_t point : upstream ? request_points : answer_points) {
      for (const bool reset : {false, true}) {
        ana.Ok(testing::PutEncounter("n" + std::to_string(writes)));
        ++writes;
        FaultConfig f;
        (upstream ? f.cut_upstream_after : f.cut_downstream_after) = point;
        f.reset_share = reset ? 1 : 0;
        f.faulty_connections = 1;  // the retry goes through
        proxy.Set(f);
        const RunResult r = ana.Run({"--json", "sync", "--hub", proxy.url()});
        INFO("cut ", upstream ? "upstream" : "downstream", " at byte ", point,
             reset ? " by RST" : " by FIN", ": exit ", r.exit_code, " stderr: ", r.err);
        CHECK(r.exit_code == 0);
        const testing::FaultStats s = proxy.stats();
        const uint64_t now = s.cut_upstream + s.cut_downstream;
        CHECK(now == cuts + 1);  // the point was inside the traffic: the cut happened
        cuts = now;
      }
    }
  }
  CHECK(ana.Json({"status"})["pending"] == 0);
  beto.Sync();
  CHECK(beto.Json({"list", "encounters"}) == ana.Json({"list", "encounters"}));
  CHECK(testing::MetricValue(o.hub->port(), "enlace_log_writes") == writes);
}

TEST_CASE("an answer lost after the hub committed is retried and stored once") {
  Office o;
  CliDevice ana = o.Join("ana");
  CliDevice beto = o.Join("beto");
  for (int i = 0; i < 8; ++i) ana.Ok(testing::PutEncounter("n" + std::to_string(i)));
  FaultProxy proxy(o.hub->port(), {}, testing::FaultSeed(7));

  // The hub stores ana's batch three times over, and each time the answer
  // dies on the way back.
  proxy.LoseNextResponses(3);
  const RunResult pushed = ana.Run({"--json", "sync", "--hub", proxy.url()});
  INFO(pushed.err);
  REQUIRE(pushed.exit_code == 0);
  CHECK(proxy.stats().lost_responses == 3);
  CHECK(json::parse(pushed.out)["sent"] == 8);
  CHECK(ana.Json({"status"})["pending"] == 0);
  const int port = o.hub->port();
  CHECK(testing::MetricValue(port, "enlace_writes_received_total") == 4 * 8);  // sent 4 times
  CHECK(testing::MetricValue(port, "enlace_log_writes") == 8);                 // stored once

  // The puller loses its answers too, and still applies each write once.
  proxy.LoseNextResponses(2);
  const RunResult pulled = beto.Run({"--json", "sync", "--hub", proxy.url()});
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  CHECK(json::parse(pulled.out)["received"] == 8);
  CHECK(beto.Json({"list", "encounters"}).size() == 8);

  // Both directions at once: pushes and pulls whose answers are lost.
  for (int i = 0; i < 3; ++i) {
    ana.Ok(testing::PutEncounter("a" + std::to_string(i)));
    beto.Ok(testing::PutEncounter("b" + std::to_string(i)));
  }
  for (const CliDevice* d : {&ana, &beto, &ana}) {
    proxy.LoseNextResponses(1);
    const RunResult r = d->Run({"sync", "--hub", proxy.url()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  CHECK(proxy.stats().lost_responses == 8);
  CHECK(ana.Json({"list", "encounters"}) == beto.Json({"list", "encounters"}));
  CHECK(ana.Json({"list", "encounters"}).size() == 14);
  CHECK(testing::MetricValue(port, "enlace_log_writes") == 14);
  o.hub->Stop();
  testing::ReadOnlyDb db(o.hub_db());
  CHECK(db.Int("SELECT count(*) FROM writes") == 14);
  CHECK(db.Int("SELECT count(*) FROM (SELECT DISTINCT device, counter FROM writes)") == 14);
}

TEST_CASE("a day's work of 50 cases crosses a 2G link (50 kbit/s, 300 ms) with progress shown") {
  Office o;
  CliDevice ana = o.Join("ana");
  for (int i = 0; i < 50; ++i) ana.Ok(CaseRecord(i));
  FaultConfig link;
  link.bytes_per_s = 50'000 / 8;
  link.delay_ms = 300;
  FaultProxy proxy(o.hub->port(), link, testing::FaultSeed(3));

  const RunResult up = RunOnTerminal(ana.Argv({"--json", "sync", "--hub", proxy.url()}), ana.Env());
  INFO("terminal: ", up.err, " stdout: ", up.out);
  REQUIRE(up.exit_code == 0);
  // What a worker watching the terminal sees: a line per round.
  CHECK(up.err.find("round 1: sent 50") != std::string::npos);
  CHECK(json::parse(up.out)["sent"] == 50);

  const RunResult down =
      RunOnTerminal(o.coord.Argv({"--json", "sync", "--hub", proxy.url()}), o.coord.Env());
  INFO("terminal: ", down.err, " stdout: ", down.out);
  REQUIRE(down.exit_code == 0);
  CHECK(down.err.find("received 50") != std::string::npos);
  CHECK(json::parse(down.out)["received"] == 50);
  CHECK(o.coord.Json({"list", "cases"}) == ana.Json({"list", "cases"}));

  const testing::FaultStats stats = proxy.stats();
  MESSAGE("over the 2G link: ", stats.bytes_up, " bytes up, ", stats.bytes_down, " bytes down in ",
          stats.connections, " connections");
  // Every record went up and came down through the slow link: even
  // compressed, each write carries 120 bytes that do not compress (its
  // signature, nonce, AEAD tag and record id).
  CHECK(stats.bytes_up > 50 * 120);
  CHECK(stats.bytes_down > 50 * 120);
}

}  // namespace
}  // namespace enlace
