// Published reports through the real enlace-hub binary (issue 4, item 6): a
// coordinator device publishes over HTTP, the operator makes a viewer token
// with `enlace-hub admin viewer-token`, and the national commission reads
// the report with nothing but that token, over raw HTTP (no curl).
#include <doctest/doctest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "enlace/sync.h"
#include "enlace/team.h"
#include "process.h"
#include "test_util.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::HubProcess;
using testing::RawExchange;
using testing::Run;
using testing::RunResult;
using testing::TempDir;

const std::string kHub = ENLACE_HUB_BIN;

struct Reply {
  int status = 0;
  std::string head;
  std::string body;
};

// Parses an HTTP/1.1 answer read to the close of the connection.
Reply Parse(const std::string& raw) {
  Reply r;
  const auto end = raw.find("\r\n\r\n");
  REQUIRE_MESSAGE(end != std::string::npos, raw);
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  REQUIRE(r.head.rfind("HTTP/1.1 ", 0) == 0);
  r.status = std::stoi(r.head.substr(9, 3));
  return r;
}

// One request on its own connection.
Reply Exchange(const HubProcess& hub, const std::string& method, const std::string& target,
               const std::vector<std::pair<std::string, std::string>>& headers,
               const std::string& body = "") {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/octet-stream\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n";
  }
  req += "\r\n" + body;
  return Parse(RawExchange(hub.port(), req, 10000));
}

Reply Send(const HubProcess& hub, const OutgoingRequest& o) {
  return Exchange(hub, o.method, o.path, o.headers, std::string(o.body.begin(), o.body.end()));
}

std::string Line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string Admin(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kHub, "admin"};
  argv.insert(argv.end(), args.begin(), args.end());
  const RunResult r = Run(argv);
  INFO("enlace-hub admin ", args[0], " stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  return Line(r.out);
}

const char kReport[] = R"({"version":1,"k":11,"title":"Víctimas por entidad","from":"2026-01-01",)"
                       R"("to":"2026-01-31","generated_at":"2026-02-01T10:00:00Z",)"
                       R"("dims":[{"name":"federal_entity","categories":["21","29"],)"
                       R"("labels":["Puebla","Tlaxcala"]}],)"
                       R"("cells":[{"index":[0],"value":14},{"index":[1],"value":0}],)"
                       R"("margins":[],"total":14})";

TEST_CASE("a published report is read back by the commission with a viewer token") {
  TempDir dir;
  const std::string data = dir.File("hub");
  HubProcess hub(kHub, data, "127.0.0.1:0", {"--report-min-k", "11"});

  // The coordinator's device registers the team and publishes over HTTP.
  auto coord = testing::MakeReplica(testing::TestOptions(dir.File("coord")));
  REQUIRE(CreateTeam(*coord).ok());
  auto reg = BuildRegisterTeamRequest(*coord, "Tlaxcala", "coordinadora",
                                      Admin({"bootstrap-token", "--data", data}));
  REQUIRE(reg.ok());
  const Reply registered = Send(hub, *reg);
  REQUIRE_MESSAGE(registered.status == 200, registered.body);
  REQUIRE(HandleMembersResponse(*coord, {reinterpret_cast<const uint8_t*>(registered.body.data()),
                                         registered.body.size()})
              .ok());

  auto publish = BuildPublishReportRequest(*coord, kReport);
  REQUIRE(publish.ok());
  const Reply published = Send(hub, *publish);
  REQUIRE_MESSAGE(published.status == 200, published.body);
  auto answer = DecodePublishReportAnswer(published.body);
  REQUIRE_MESSAGE(answer.ok(), answer.status().ToString());

  // A large report (over the 64 KiB limit of the other small endpoints)
  // passes the network layer.
  json big = json::parse(kReport);
  // Another month: a table of January with other counts would contradict
  // the first (docs/REPORTS.md, "Publications audited together").
  big["from"] = "2026-02-01";
  big["to"] = "2026-02-28";
  big["dims"][0]["categories"] = json::array();
  big["dims"][0].erase("labels");
  big["cells"] = json::array();
  uint64_t big_total = 0;
  for (int i = 0; i < 5000; ++i) {
    big["dims"][0]["categories"].push_back("c" + std::to_string(i));
    big["cells"].push_back({{"index", {i}}, {"value", i % 2 == 0 ? 0 : 11 + i}});
    big_total += i % 2 == 0 ? 0 : 11 + i;
  }
  big["total"] = big_total;
  const std::string big_body = big.dump();
  REQUIRE(big_body.size() > 128 * 1024);
  REQUIRE(big_body.size() <= kMaxReportBytes);
  auto big_req = BuildPublishReportRequest(*coord, big_body);
  REQUIRE(big_req.ok());
  const Reply big_reply = Send(hub, *big_req);
  CHECK_MESSAGE(big_reply.status == 200, big_reply.body);

  // A small cell never reaches the hub's storage.
  std::string small = kReport;
  small.replace(small.find(R"("value":14})"), 11, R"("value":4})");
  auto refused = BuildPublishReportRequest(*coord, small);
  REQUIRE(refused.ok());
  const Reply r422 = Send(hub, *refused);
  CHECK(r422.status == 422);
  CHECK(r422.body.find("below k = 11") != std::string::npos);

  // Nor does a small count the published ones give away: a hidden 3, its
  // sibling 11 and the total 14 shown (3 = 14 - 11).
  json hidden = json::parse(kReport);
  hidden["cells"][0] = {{"index", {0}}, {"value", nullptr}, {"suppressed", true}};
  hidden["cells"][1]["value"] = 11;
  hidden["total"] = 14;
  auto leaky = BuildPublishReportRequest(*coord, hidden.dump());
  REQUIRE(leaky.ok());
  const Reply worked_out = Send(hub, *leaky);
  CHECK(worked_out.status == 422);
  CHECK_MESSAGE(worked_out.body.find("can be worked out exactly") != std::string::npos,
                worked_out.body);

  // The operator makes a token for the commission.
  const std::string token = Admin({"viewer-token", "--data", data, "--team", coord->team().ToHex(),
                                   "--label", "Comisión Nacional"});
  REQUIRE(token.rfind("vt-", 0) == 0);
  const std::vector<std::pair<std::string, std::string>> bearer = {
      {"Authorization", "Bearer " + token}};

  const Reply list = Exchange(hub, "GET", kReportsPath, bearer);
  REQUIRE_MESSAGE(list.status == 200, list.body);
  auto reports = DecodeReportList(list.body);
  REQUIRE(reports.ok());
  REQUIRE(reports->size() == 2);
  const ReportListing& first = (*reports)[0].id == answer->id ? (*reports)[0] : (*reports)[1];
  CHECK(first.id == answer->id);
  CHECK(first.title == "Víctimas por entidad");
  CHECK(first.k == 11);
  CHECK(first.from == "2026-01-01");
  CHECK(first.publisher == coord->device_id());

  const Reply got = Exchange(hub, "GET", std::string(kReportsPath) + "/" + answer->id, bearer);
  REQUIRE(got.status == 200);
  CHECK(got.body == kReport);
  CHECK(got.head.find("application/json") != std::string::npos);

  // A wrong token, no token, or the token on anything but reading: refused.
  std::string wrong = token;
  wrong[30] = wrong[30] == 'A' ? 'B' : 'A';
  CHECK(Exchange(hub, "GET", kReportsPath, {{"Authorization", "Bearer " + wrong}}).status == 401);
  CHECK(Exchange(hub, "GET", kReportsPath, {}).status == 401);
  CHECK(Exchange(hub, "POST", kReportsPath, bearer, kReport).status == 403);
  CHECK(Exchange(hub, "POST", kPathSync, bearer, "x").status == 401);

  // The hub kept only a hash, and logged no token.
  CHECK(hub.Log().find(token.substr(3, 24)) == std::string::npos);
  CHECK(hub.Log().find(answer->id) != std::string::npos);
  const std::string metrics = Exchange(hub, "GET", kPathMetrics, {}).body;
  CHECK(metrics.find("enlace_reports 2\n") != std::string::npos);
  CHECK(metrics.find("enlace_reports_refused_total 2\n") != std::string::npos);
  CHECK(hub.Stop() == 0);
  const std::string db =
      testing::ReadFile(data + "/hub.db") + testing::ReadFile(data + "/hub.db-wal");
  CHECK(db.find(token.substr(3)) == std::string::npos);
  CHECK(db.find("\"value\":4}") == std::string::npos);
}

TEST_CASE("admin viewer-token refuses a malformed or unknown team") {
  TempDir dir;
  const std::string data = dir.File("hub");
  RunResult r = Run({kHub, "admin", "viewer-token", "--data", data, "--team", "xyz"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  r = Run({kHub, "admin", "viewer-token", "--data", data, "--team", TeamId::Random().ToHex()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("no team") != std::string::npos);
  CHECK(r.out.empty());
  r = Run({kHub, "serve", "--data", data, "--report-min-k", "1"});
  CHECK(r.exit_code == 1);
}

}  // namespace
}  // namespace enlace
