// Sync batches: they start small and grow after each completed round, the
// write lists travel compressed, and a large pulled batch (checked on several
// threads) refuses exactly the writes that fail, in order (issue 6).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "enlace/wire.h"
#include "hub_fixture.h"

namespace enlace {
namespace {

using testing::HubReply;
using testing::HubTeam;

// About 300 bytes of values per record, different in every record.
void PutEncounters(Replica& r, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string note = "\"Encuentro " + std::to_string(i) +
                             " en la central de autobuses de Apizaco; refiere oferta de "
                             "trabajo en Puebla, sin documentos, acompañada por un adulto " +
                             std::to_string(i * 7919 % 1000) + "\"";
    REQUIRE(r.Put("encounters", std::nullopt, {{"place", "\"Apizaco\""}, {"notes", note}}).ok());
  }
}

struct Round {
  size_t pushed_bytes = 0;
  size_t pushed_writes = 0;
  uint32_t pull_limit = 0;
  size_t body_bytes = 0;
};

// Syncs `r` round by round and returns what each request carried.
std::vector<Round> SyncRounds(testing::InProcessHub& hub, Replica& r, SyncOptions options) {
  SyncSession session(r, options);
  std::vector<Round> rounds;
  for (int guard = 0; guard < 200; ++guard) {
    auto req = session.NextRequest();
    REQUIRE_MESSAGE(req.ok(), req.status().ToString());
    auto decoded = DecodeSyncRequest(req->body);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    Round round;
    for (const auto& w : decoded->writes) round.pushed_bytes += w.size();
    round.pushed_writes = decoded->writes.size();
    round.pull_limit = decoded->max_response_bytes;
    round.body_bytes = req->body.size();
    rounds.push_back(round);
    const HubReply reply = hub.Send(*req);
    REQUIRE_MESSAGE(reply.status == 200, reply.body);
    auto more = session.HandleResponse(reply.bytes());
    REQUIRE_MESSAGE(more.ok(), more.status().ToString());
    if (!*more) return rounds;
  }
  FAIL("sync did not finish in 200 rounds");
  return rounds;
}

TEST_CASE("push batches double after each round up to the maximum, and pulls likewise") {
  HubTeam t;
  PutEncounters(*t.a, 400);
  SyncOptions options;
  options.first_push_bytes = 4096;
  options.max_push_bytes = 64 * 1024;
  options.first_pull_bytes = 4096;
  options.max_pull_bytes = 32 * 1024;

  const std::vector<Round> pushes = SyncRounds(t.hub, *t.a, options);
  size_t limit = options.first_push_bytes;
  size_t total_writes = 0;
  size_t raw = 0;
  size_t body = 0;
  for (size_t i = 0; i < pushes.size(); ++i) {
    CAPTURE(i);
    CHECK(pushes[i].pushed_bytes <= limit);
    // A full round was as large as its limit allowed (within one write).
    if (i + 1 < pushes.size()) CHECK(pushes[i].pushed_bytes + 600 > limit);
    total_writes += pushes[i].pushed_writes;
    raw += pushes[i].pushed_bytes;
    body += pushes[i].body_bytes;
    limit = std::min(limit * 2, options.max_push_bytes);
  }
  CHECK(total_writes == 400);
  // 4, 8, 16, 32, then 64 KiB rounds: without growth 4 KiB rounds would take
  // far more than this.
  CHECK(pushes.size() < raw / options.first_push_bytes / 2);
  CHECK(pushes.back().pushed_bytes <= options.max_push_bytes);
  // The write lists travel compressed: the repeated ids and field names go.
  CHECK(body < raw * 9 / 10);

  const std::vector<Round> pulls = SyncRounds(t.hub, *t.b, options);
  uint32_t pull_limit = options.first_pull_bytes;
  for (const Round& r : pulls) {
    CHECK(r.pull_limit == pull_limit);
    pull_limit = std::min(pull_limit * 2, options.max_pull_bytes);
  }
  CHECK(pulls.size() < raw / options.first_pull_bytes / 2);
  auto list = t.b->List("encounters");
  REQUIRE(list.ok());
  CHECK(list->size() == 400);
  CHECK(*t.b->DumpState() == *t.a->DumpState());
}

TEST_CASE("a failed attempt halves the next batch, down to 16 KiB") {
  HubTeam t;
  PutEncounters(*t.a, 300);
  SyncOptions options;
  options.first_push_bytes = 128 * 1024;
  SyncSession session(*t.a, options);
  auto pushed = [&] {
    auto req = session.NextRequest();
    REQUIRE(req.ok());
    auto decoded = DecodeSyncRequest(req->body);
    REQUIRE(decoded.ok());
    size_t bytes = 0;
    for (const auto& w : decoded->writes) bytes += w.size();
    return std::make_pair(bytes, decoded->max_response_bytes);
  };
  const auto full = pushed();
  CHECK(full.first > 64 * 1024);
  CHECK(full.second == options.first_pull_bytes);
  session.LinkFailed();  // as the CLI does when it must ask again
  const auto half = pushed();
  CHECK(half.first <= 64 * 1024);
  CHECK(half.first > 32 * 1024);
  CHECK(half.second == options.first_pull_bytes / 2);
  for (int i = 0; i < 10; ++i) session.LinkFailed();
  const auto floor = pushed();
  CHECK(floor.first <= 16 * 1024);
  CHECK(floor.first > 8 * 1024);
  CHECK(floor.second == 16 * 1024);
  // The smaller request still completes a round, and the next one grows.
  const HubReply reply = t.hub.Send(*session.NextRequest());
  REQUIRE(reply.status == 200);
  REQUIRE(session.HandleResponse(reply.bytes()).ok());
  CHECK(pushed().first > 16 * 1024);
}

TEST_CASE("a fixed batch size stays fixed when the first size equals the maximum") {
  HubTeam t;
  PutEncounters(*t.a, 20);
  SyncOptions options;
  options.max_push_bytes = 1;  // one write per request, as crash tests use
  const std::vector<Round> pushes = SyncRounds(t.hub, *t.a, options);
  CHECK(pushes.size() >= 20);
  for (const Round& r : pushes) CHECK(r.pushed_writes <= 1);
}

TEST_CASE("in a large pulled batch exactly the altered writes are refused, the rest merged") {
  HubTeam t;
  PutEncounters(*t.a, 120);
  testing::SyncAll(t.hub, *t.a);
  // Alter three stored writes (first, middle, last of a's) by flipping their
  // last signature byte, behind the hub's back.
  const std::string db = t.hub.data_dir() + "/hub.db";
  testing::ExecSql(db,
                   "UPDATE writes SET encoded = substr(encoded, 1, length(encoded) - 1) || "
                   "CASE WHEN substr(encoded, -1) = x'00' THEN x'01' ELSE x'00' END "
                   "WHERE device = (SELECT device FROM writes ORDER BY seq DESC LIMIT 1) "
                   "AND counter IN (1, 60, 120)");
  SyncOptions big;
  big.first_pull_bytes = 4 << 20;  // one response: one batch checked in parallel
  const SyncProgress p = testing::SyncAll(t.hub, *t.b, big);
  CHECK(p.refused == 3);
  CHECK(p.received == 117);
  CHECK(p.last_refusal.find("signature") != std::string::npos);
  auto list = t.b->List("encounters");
  REQUIRE(list.ok());
  CHECK(list->size() == 117);
}

}  // namespace
}  // namespace enlace
