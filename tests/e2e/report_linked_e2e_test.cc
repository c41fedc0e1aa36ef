// Issue 16: the combinations of publications that used to give people away,
// replayed against the real enlace-hub binary. Each table is what the
// report library makes of the data alone (Suppress), posted by a
// coordinator's device; an LP attacker (tests/support/lp_attacker.h, GLPK)
// then attacks everything the hub accepted, knowing the domain of every
// attribute. Each attack is refused or leaves every count protected.
// Without the audit across publications the hub accepts every table and
// the attacker proves small counts.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "enlace/report.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "lp_attacker.h"
#include "process.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::HubProcess;
using testing::Microdata;
using testing::RawExchange;
using testing::Run;
using testing::TempDir;

const std::string kHub = ENLACE_HUB_BIN;

int Status(const std::string& raw) {
  REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
  return std::stoi(raw.substr(9, 3));
}

struct Office {
  TempDir dir;
  std::string data = dir.File("hub");
  HubProcess hub{kHub, data, "127.0.0.1:0", {"--report-min-k", "11"}};
  std::unique_ptr<Replica> coord = testing::MakeReplica(testing::TestOptions(dir.File("coord")));
  std::vector<std::string> accepted;

  Office() {
    REQUIRE(CreateTeam(*coord).ok());
    const auto token = Run({kHub, "admin", "bootstrap-token", "--data", data});
    REQUIRE(token.exit_code == 0);
    std::string t = token.out;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    auto reg = BuildRegisterTeamRequest(*coord, "Tlaxcala", "coordinadora", t);
    REQUIRE(reg.ok());
    const std::string raw = Send(*reg);
    REQUIRE(Status(raw) == 200);
    const std::string body = raw.substr(raw.find("\r\n\r\n") + 4);
    REQUIRE(
        HandleMembersResponse(*coord, {reinterpret_cast<const uint8_t*>(body.data()), body.size()})
            .ok());
  }
  std::string Send(const OutgoingRequest& o) {
    std::string req = o.method + " " + o.path + " HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n";
    for (const auto& [k, v] : o.headers) req += k + ": " + v + "\r\n";
    req += "Content-Type: application/octet-stream\r\nContent-Length: " +
           std::to_string(o.body.size()) + "\r\n\r\n" + std::string(o.body.begin(), o.body.end());
    return RawExchange(hub.port(), req, 60000);
  }
  // Tabulates `dims` over the people of `from`..`to` (dates), suppresses it
  // alone, and publishes it; the hub's status.
  int Publish(const Microdata& d, const std::vector<std::string>& dims, const std::string& from,
              const std::string& to, int first, int last, bool like_cli = false) {
    std::vector<report::Dimension> ds;
    for (const std::string& name : dims) ds.push_back({name, {}, {}});
    auto table = report::Tabulate(ds, testing::RowsOf(d, first, last, dims));
    REQUIRE(table.ok());
    auto p = report::Suppress(*table, 11);
    REQUIRE(p.ok());
    p->title = "ataque";
    p->from = from;
    p->to = to;
    if (like_cli) {  // the CLI's audit and secondary suppression first
      std::vector<disclosure::LinkedTable> earlier;
      for (const std::string& b : accepted)
        earlier.push_back(*report::ToLinked(*report::ParseJson(b), "r"));
      auto across = report::SuppressAcross(*p, earlier);
      REQUIRE(across.ok());
    }
    const std::string body = report::RenderJson(*p);
    auto req = BuildPublishReportRequest(*coord, body);
    REQUIRE(req.ok());
    const std::string raw = Send(*req);
    const int status = Status(raw);
    INFO(raw);
    CHECK((status == 200 || status == 422));
    if (status == 200) accepted.push_back(body);
    return status;
  }
  int Publish(const Microdata& d, const std::vector<std::string>& dims, int first, int last,
              bool like_cli = false) {
    return Publish(d, dims, testing::FromDate(d.year, first), testing::ToDate(d.year, last), first,
                   last, like_cli);
  }
  // The attacker's findings over everything accepted for year d.year.
  std::vector<std::string> Attack(const Microdata& d) {
    std::vector<std::string> mine;
    for (const std::string& b : accepted) {
      if (b.find("\"from\":\"" + std::to_string(d.year)) != std::string::npos) mine.push_back(b);
    }
    return testing::LpAttack(d, mine, 11);
  }
};

// People of `year`: mostly women and men of working age, a few
// transgender women, girls and older men, in every month.
Microdata People(int year, unsigned seed, int n = 260) {
  Microdata d;
  d.year = year;
  d.attributes = {"gender", "age_band"};
  d.domain = {{"Feminine", "Masculine", "TransgenderFeminine"},
              {"9--17", "18--20", "30--38", "39--47"}};
  std::mt19937 rng(seed);
  for (int i = 0; i < n; ++i) {
    Microdata::Person p;
    p.month = 1 + static_cast<int>(rng() % 12);
    const unsigned g = rng() % 40;
    p.category.push_back(g < 22 ? 0 : g < 39 ? 1 : 2);
    const unsigned a = rng() % 20;
    p.category.push_back(a < 1 ? 0 : a < 9 ? 1 : a < 18 ? 2 : 3);
    d.people.push_back(std::move(p));
  }
  return d;
}

void NoFindings(const std::vector<std::string>& found) {
  for (const std::string& f : found) INFO(f);
  CHECK_MESSAGE(found.empty(), found.size(), " counts proven, e.g. ",
                found.empty() ? "" : found.front());
}

TEST_CASE("the same people by one dimension and by two") {
  Office o;
  const Microdata d = People(2021, 7, 70);
  o.Publish(d, {"gender"}, 1, 12);
  o.Publish(d, {"gender", "age_band"}, 1, 12);
  o.Publish(d, {"age_band"}, 1, 12);
  NoFindings(o.Attack(d));
}

TEST_CASE("nested date windows") {
  Office o;
  const Microdata d = People(2022, 2);
  // Windows off the lattice are refused outright.
  CHECK(o.Publish(d, {"gender"}, "2022-01-01", "2022-06-30", 1, 6) == 422);
  CHECK(o.Publish(d, {"gender"}, "2022-01-01", "2022-07-31", 1, 7) == 422);
  // On the lattice: the year, then three of its quarters.
  o.Publish(d, {"gender", "age_band"}, 1, 12);
  o.Publish(d, {"gender", "age_band"}, 1, 3);
  o.Publish(d, {"gender", "age_band"}, 4, 6);
  o.Publish(d, {"gender", "age_band"}, 7, 9);
  NoFindings(o.Attack(d));
}

TEST_CASE("a three-dimension table and its own two-dimension margins published apart") {
  Office o;
  const Microdata d = People(2023, 3);
  o.Publish(d, {"gender", "age_band", "month"}, 1, 3);
  o.Publish(d, {"gender", "age_band"}, 1, 3);
  o.Publish(d, {"gender", "month"}, 1, 3);
  o.Publish(d, {"age_band", "month"}, 1, 3);
  NoFindings(o.Attack(d));
}

TEST_CASE("the same table before and after one late record") {
  Office o;
  Microdata d = People(2024, 4);
  REQUIRE(o.Publish(d, {"gender", "age_band"}, 4, 6, true) == 200);
  // A girl's record of May arrives late; the quarter is published again.
  Microdata late = d;
  late.people.push_back({5, {0, 0}});
  CHECK(o.Publish(late, {"gender", "age_band"}, 4, 6) == 422);
  // Prepared like the CLI does, the revision passes only if it contradicts
  // nothing: every count that changed is hidden, the total first.
  if (o.Publish(late, {"gender", "age_band"}, 4, 6, true) == 200) {
    CHECK(nlohmann::json::parse(o.accepted.back())["total"].is_null());
    o.accepted.pop_back();  // the attacker's data is the first table's
  }
  CHECK(o.accepted.size() == 1);
  NoFindings(o.Attack(d));
}

TEST_CASE("a short window and the windows around it") {
  Office o;
  const Microdata d = People(2025, 5);
  // A one-day window is refused outright.
  CHECK(o.Publish(d, {"gender", "age_band"}, "2025-05-14", "2025-05-14", 5, 5) == 422);
  // On the lattice: the months around May, then the quarter.
  o.Publish(d, {"gender", "age_band"}, 4, 4);
  o.Publish(d, {"gender", "age_band"}, 6, 6);
  o.Publish(d, {"gender", "age_band"}, 4, 6);
  o.Publish(d, {"gender"}, 5, 5);
  NoFindings(o.Attack(d));
}

}  // namespace
}  // namespace enlace
