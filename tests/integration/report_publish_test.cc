// Publishing aggregate reports to the hub (issue 4, item 6): a coordinator
// publishes, team members and viewer tokens read, and the hub itself refuses
// any report that would put a count below k on it. Everything runs through
// the real HubHandler and SQLite storage (InProcessHub).
#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "enlace/report.h"
#include "enlace/team.h"
#include "hub_fixture.h"
#include "replica/replica_impl.h"
#include "report_check.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::ErrorOf;
using testing::HubReply;
using testing::TestOptions;

// A valid 2 x 2 report (k 11): federal entity x type of exploitation, with a
// small cell (4, at [0,1]) hidden together with its row total, its column
// total and the grand total, so nothing published pins it: every hidden entry
// moves with it (cells 12, 4 / 19, 0; rows 16, 19; columns 31, 4; total 35).
json GoodReport(const std::string& title = "Víctimas por entidad, enero") {
  return json{{"version", 1},
              {"k", 11},
              {"title", title},
              {"from", "2026-01-01"},
              {"to", "2026-01-31"},
              {"generated_at", "2026-02-01T10:00:00Z"},
              {"dims",
               {{{"name", "federal_entity"},
                 {"categories", {"21", "29"}},
                 {"labels", {"Puebla", "Tlaxcala"}}},
                {{"name", "exploitation"},
                 {"categories", {"SexualExploitation", "ForcedLabour"}},
                 {"labels", {"Sexual", "Labour"}}}}},
              {"cells",
               {{{"index", {0, 0}}, {"value", 12}},
                {{"index", {0, 1}}, {"value", nullptr}, {"suppressed", true}},
                {{"index", {1, 0}}, {"value", 19}},
                {{"index", {1, 1}}, {"value", 0}}}},
              {"margins",
               {{{"index", {0, nullptr}}, {"value", nullptr}, {"suppressed", true}},
                {{"index", {1, nullptr}}, {"value", 19}},
                {{"index", {nullptr, 0}}, {"value", 31}},
                {{"index", {nullptr, 1}}, {"value", nullptr}, {"suppressed", true}}}},
              {"total", nullptr}};
}

// A hand-made report (k 11) over dimensions d0, d1, ... of the given sizes,
// with category codes c0, c1, ...: `cells` row-major (the last dimension
// fastest), `margins` in the publishing order (dimension by dimension), and
// the total; nullopt is a suppressed entry.
using Value = std::optional<uint64_t>;
constexpr Value kHidden = std::nullopt;

json Entry(json index, Value v) {
  if (!v) return {{"index", std::move(index)}, {"value", nullptr}, {"suppressed", true}};
  return {{"index", std::move(index)}, {"value", *v}, {"suppressed", false}};
}

json MakeReport(const std::vector<size_t>& sizes, const std::vector<Value>& cells,
                const std::vector<Value>& margins, Value total) {
  // Each hand-made report a year of its own (2001, 2002, ...): reports of
  // one year are audited together (docs/REPORTS.md), and these describe no
  // common people.
  static int year = 2000;
  ++year;
  json r = {{"version", 1},
            {"k", 11},
            {"title", "hecho a mano"},
            {"from", std::to_string(year) + "-01-01"},
            {"to", std::to_string(year) + "-12-31"}};
  r["dims"] = json::array();
  size_t count = 1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    json cats = json::array();
    for (size_t c = 0; c < sizes[d]; ++c) cats.push_back("c" + std::to_string(c));
    r["dims"].push_back({{"name", "d" + std::to_string(d)}, {"categories", cats}});
    count *= sizes[d];
  }
  REQUIRE(cells.size() == count);
  r["cells"] = json::array();
  std::vector<size_t> at(sizes.size(), 0);
  for (const Value& v : cells) {
    r["cells"].push_back(Entry(at, v));
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++at[d] < sizes[d]) break;
      at[d] = 0;
    }
  }
  r["margins"] = json::array();
  size_t m = 0;
  for (size_t d = 0; sizes.size() > 1 && d < sizes.size(); ++d) {
    for (size_t c = 0; c < sizes[d]; ++c) {
      json index = json::array();
      for (size_t e = 0; e < sizes.size(); ++e) index.push_back(e == d ? json(c) : json(nullptr));
      REQUIRE(m < margins.size());
      r["margins"].push_back(Entry(index, margins[m++]));
    }
  }
  REQUIRE(m == margins.size());
  r["total"] = total ? json(*total) : json(nullptr);
  return r;
}

struct Fixture : testing::HubTeam {
  HubReply Publish(Replica& device, const std::string& body) {
    auto req = BuildPublishReportRequest(device, body);
    REQUIRE_MESSAGE(req.ok(), req.status().ToString());
    return hub.Send(*req);
  }
  // Sends `body` to POST /v1/reports signed by `device`, without the
  // device-side checks of BuildPublishReportRequest: the hub must not rely
  // on them.
  HubReply PublishRaw(Replica& device, const std::string& body) {
    hub::HttpRequest h;
    h.method = "POST";
    h.target = kReportsPath;
    h.body = body;
    Sign(device, h);
    const hub::HttpResponse r = hub.Raw(h);
    return HubReply{r.status, r.body, ""};
  }
  // Signs `h` as `device` now, as the sync engine would.
  void Sign(Replica& device, hub::HttpRequest& h) {
    std::array<uint8_t, 16> nonce{};
    internal::RandomFill(nonce);
    const std::span<const uint8_t> body(reinterpret_cast<const uint8_t*>(h.body.data()),
                                        h.body.size());
    const Bytes input =
        RequestSigningInput(h.method, h.target, device.device_id(), clock.now_ms, nonce, body);
    const auto sig = internal::Sign(device.impl().vault().secrets().signing.secret_key, input);
    h.headers[kHeaderDevice] = device.device_id().ToHex();
    h.headers[kHeaderTime] = std::to_string(clock.now_ms);
    h.headers[kHeaderNonce] = internal::ToHex(nonce);
    h.headers[kHeaderSignature] = internal::ToHex(sig);
  }

  HubReply List(Replica& device) {
    auto req = BuildListReportsRequest(device);
    REQUIRE(req.ok());
    return hub.Send(*req);
  }
  HubReply Get(Replica& device, const std::string& id) {
    auto req = BuildGetReportRequest(device, id);
    REQUIRE_MESSAGE(req.ok(), req.status().ToString());
    return hub.Send(*req);
  }
  // A GET (or other method) with `authorization: Bearer <token>` only.
  hub::HttpResponse WithToken(const std::string& method, const std::string& target,
                              const std::string& token, const std::string& body = "") {
    hub::HttpRequest h;
    h.method = method;
    h.target = target;
    h.headers[kHeaderAuthorization] = "Bearer " + token;
    h.body = body;
    return hub.Raw(h);
  }
  std::string ViewerToken(const TeamId& team, const std::string& label = "CNDH") {
    auto t = hub.storage().AddViewerToken(team, label, clock.now_ms);
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    return *t;
  }
  uint64_t StoredReports() {
    auto c = hub.storage().Counts();
    REQUIRE(c.ok());
    return c->reports;
  }
  // A report refused by the hub: `status`, an error containing `needle`,
  // and nothing stored.
  void CheckRefused(const std::string& body, int status, const std::string& needle) {
    const uint64_t before = StoredReports();
    const HubReply r = PublishRaw(*coord, body);
    CHECK(r.status == status);
    CHECK_MESSAGE(ErrorOf(r.body).find(needle) != std::string::npos, ErrorOf(r.body));
    CHECK(StoredReports() == before);
  }
};

TEST_CASE(
    "a coordinator publishes a report; every team member lists it and reads it back exactly") {
  Fixture f;
  const std::string body = GoodReport().dump();
  const HubReply r = f.Publish(*f.coord, body);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto answer = DecodePublishReportAnswer(r.body);
  REQUIRE_MESSAGE(answer.ok(), answer.status().ToString());
  CHECK(IsReportId(answer->id));
  CHECK(answer->published_at_ms == f.clock.now_ms);
  CHECK(f.StoredReports() == 1);

  for (Replica* reader : {f.coord.get(), f.a.get(), f.b.get()}) {
    const HubReply list = f.List(*reader);
    REQUIRE_MESSAGE(list.status == 200, list.body);
    auto reports = DecodeReportList(list.body);
    REQUIRE_MESSAGE(reports.ok(), reports.status().ToString());
    REQUIRE(reports->size() == 1);
    const ReportListing& l = reports->front();
    CHECK(l.id == answer->id);
    CHECK(l.title == "Víctimas por entidad, enero");
    CHECK(l.from == "2026-01-01");
    CHECK(l.to == "2026-01-31");
    CHECK(l.k == 11);
    CHECK(l.published_at_ms == f.clock.now_ms);
    CHECK(l.publisher == f.coord->device_id());

    const HubReply got = f.Get(*reader, answer->id);
    REQUIRE(got.status == 200);
    CHECK(got.body == body);  // byte for byte
  }
  // An upper-case id is the same report.
  std::string upper = answer->id;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(f.Get(*f.a, upper).status == 200);
}

TEST_CASE("publishing the same report again is one report; a new one is listed first") {
  Fixture f;
  const std::string first = GoodReport("enero").dump();
  const HubReply r1 = f.Publish(*f.coord, first);
  REQUIRE(r1.status == 200);
  f.clock.now_ms += 1000;
  // A retry after a lost answer: new signature, same bytes.
  const HubReply r2 = f.Publish(*f.coord, first);
  REQUIRE(r2.status == 200);
  CHECK(DecodePublishReportAnswer(r1.body)->id == DecodePublishReportAnswer(r2.body)->id);
  CHECK(DecodePublishReportAnswer(r2.body)->published_at_ms == f.clock.now_ms - 1000);
  CHECK(f.StoredReports() == 1);

  f.clock.now_ms += 1000;
  const HubReply r3 = f.Publish(*f.coord, GoodReport("febrero").dump());
  REQUIRE(r3.status == 200);
  CHECK(f.StoredReports() == 2);
  auto reports = DecodeReportList(f.List(*f.a).body);
  REQUIRE(reports.ok());
  REQUIRE(reports->size() == 2);
  CHECK((*reports)[0].title == "febrero");
  CHECK((*reports)[1].title == "enero");
}

TEST_CASE("a field device cannot publish (403) but can list and read") {
  Fixture f;
  const HubReply refused = f.Publish(*f.a, GoodReport().dump());
  CHECK(refused.status == 403);
  CHECK(ErrorOf(refused.body).find("coordinator") != std::string::npos);
  CHECK(f.StoredReports() == 0);

  const HubReply ok = f.Publish(*f.coord, GoodReport().dump());
  REQUIRE(ok.status == 200);
  const std::string id = DecodePublishReportAnswer(ok.body)->id;
  CHECK(f.List(*f.a).status == 200);
  CHECK(f.Get(*f.a, id).status == 200);
  CHECK(f.Get(*f.a, std::string(32, '0')).status == 404);
}

TEST_CASE("the hub refuses a report with a published count below k (422) and stores nothing") {
  Fixture f;
  SUBCASE("a cell of 3") {
    json r = GoodReport();
    r["cells"][3]["value"] = 3;
    f.CheckRefused(r.dump(), 422, "cell [1,1] (federal_entity=29, exploitation=ForcedLabour)");
    f.CheckRefused(r.dump(), 422, "below k = 11");
  }
  SUBCASE("a cell of 1 and of k - 1") {
    for (int v : {1, 10}) {
      json r = GoodReport();
      r["cells"][0]["value"] = v;
      f.CheckRefused(r.dump(), 422, "cell [0,0]");
    }
  }
  SUBCASE("a margin") {
    json r = GoodReport();
    r["margins"][2]["value"] = 7;
    f.CheckRefused(r.dump(), 422, "margin [all,0]");
  }
  SUBCASE("the total") {
    json r = GoodReport();
    r["total"] = 4;
    f.CheckRefused(r.dump(), 422, "the total");
  }
  SUBCASE("a suppressed cell that still carries its value") {
    json r = GoodReport();
    r["cells"][1]["value"] = 14;  // a complementary suppression, >= k, must not leak
    f.CheckRefused(r.dump(), 422, "suppressed but carries a value");
  }
  SUBCASE("a duplicate key hiding a small value from the check") {
    // A parser keeping the first "value" would read 3.
    std::string body = GoodReport().dump();
    const std::string cell = R"({"index":[0,0],"value":12})";
    const auto at = body.find(cell);
    REQUIRE(at != std::string::npos);
    body.replace(at, cell.size(), R"({"index":[0,0],"value":3,"value":12})");
    f.CheckRefused(body, 400, "twice");
  }
  SUBCASE("the message does not repeat the small value (it would reach the log)") {
    json r = GoodReport();
    r["cells"][0]["value"] = 7;
    const HubReply reply = f.PublishRaw(*f.coord, r.dump());
    CHECK(reply.status == 422);
    CHECK(ErrorOf(reply.body).find('7') == std::string::npos);
  }
  CHECK(f.StoredReports() == 0);
  // The hub still takes a good one.
  CHECK(f.Publish(*f.coord, GoodReport().dump()).status == 200);
}

TEST_CASE(
    "the hub refuses a report whose published counts give a suppressed one away (422) and "
    "stores nothing") {
  Fixture f;
  SUBCASE("one suppressed cell, its sibling 20 and the total 23") {
    // The hidden cell is 23 - 20 = 3.
    f.CheckRefused(MakeReport({2}, {kHidden, 20}, {}, 23).dump(), 422,
                   "the suppressed cell [0] (d0=c0) can be worked out exactly");
  }
  SUBCASE("2 x 2: a suppressed cell worked out through the row and column totals") {
    // Cells 3, 20 / 15, 30 with only the 30 shown: 20 = 50 - 30 (column),
    // 15 = 45 - 30 (row), then 3 = 23 - 20. Each hidden cell shares its row
    // and its column with another hidden cell, and still leaks.
    f.CheckRefused(MakeReport({2, 2}, {kHidden, kHidden, kHidden, 30}, {23, 45, 18, 50}, 68).dump(),
                   422, "the suppressed cell [0,0] (d0=c0, d1=c0) can be worked out exactly");
  }
  SUBCASE("3 x 3: a rectangle missing its fourth corner") {
    // Cells 5, 20, 30 / 25, 40, 50 / 12, 60, 70 with 5, 20 and 25 hidden:
    // 20 = 120 - 40 - 60 (its column has no other hidden cell), then
    // 5 = 55 - 20 - 30.
    f.CheckRefused(MakeReport({3, 3}, {kHidden, kHidden, 30, kHidden, 40, 50, 12, 60, 70},
                              {55, 115, 142, 42, 120, 150}, 312)
                       .dump(),
                   422, "can be worked out exactly");
  }
  SUBCASE("a suppressed row total: the total minus the other row") {
    f.CheckRefused(
        MakeReport({2, 2}, {kHidden, kHidden, kHidden, kHidden}, {kHidden, 45, 18, 50}, 68).dump(),
        422, "the suppressed margin [0,all] (d0=c0, all) can be worked out exactly");
  }
  SUBCASE("a suppressed total whose cells are all published") {
    f.CheckRefused(MakeReport({2}, {20, 30}, {}, kHidden).dump(), 422,
                   "the suppressed total can be worked out exactly");
  }
  SUBCASE("two suppressed cells that must add up to 2 are both 1") {
    // Not a linear relation: the bound "every hidden count is at least 1".
    f.CheckRefused(MakeReport({3}, {kHidden, kHidden, 30}, {}, 32).dump(), 422,
                   "the suppressed cell [0] (d0=c0) has only one possible value");
  }
  SUBCASE("the message names the cell, never its value") {
    const HubReply reply = f.PublishRaw(*f.coord, MakeReport({2}, {kHidden, 20}, {}, 23).dump());
    CHECK(reply.status == 422);
    CHECK(ErrorOf(reply.body).find('3') == std::string::npos);
  }
  CHECK(f.StoredReports() == 0);
}

TEST_CASE("the hub accepts a suppressed table whose published counts pin no hidden one") {
  Fixture f;
  // docs/REPORTS.md's example: Tlaxcala 5, 40, 12; Puebla 60, 30, 45. The 5
  // is hidden with the cheapest rectangle; every row and column with a
  // hidden cell has two.
  const std::string rectangle =
      MakeReport({2, 3}, {kHidden, 40, kHidden, kHidden, 30, kHidden}, {57, 135, 65, 70, 57}, 192)
          .dump();
  // Hidden cells 5 and 3 in a list of 38 with 30 shown: 1 + 7 ... 7 + 1 all
  // fit, but each is proven to lie in 1..7: refused since issue 16.
  const std::string pair = MakeReport({3}, {kHidden, kHidden, 30}, {}, 38).dump();
  const HubReply small = f.PublishRaw(*f.coord, pair);
  CHECK(small.status == 422);
  CHECK_MESSAGE(small.body.find("between 1 and 10") != std::string::npos, small.body);
  // Cells 3, 4 / 20, 30: the small row total (7) hidden with the other row
  // total, every cell hidden; the column totals and the total shown.
  const std::string rows =
      MakeReport({2, 2}, {kHidden, kHidden, kHidden, kHidden}, {kHidden, kHidden, 23, 34}, 57)
          .dump();
  for (const std::string& body : {rectangle, rows}) {
    CAPTURE(body);
    const HubReply r = f.PublishRaw(*f.coord, body);
    CHECK_MESSAGE(r.status == 200, r.body);
    if (r.status != 200) continue;
    const HubReply got = f.Get(*f.a, DecodePublishReportAnswer(r.body)->id);
    CHECK(got.body == body);
  }
  CHECK(f.StoredReports() == 2);
}

TEST_CASE("the hub refuses a report that is not one whole table, or whose counts do not add up") {
  Fixture f;
  SUBCASE("a missing cell") {
    json r = MakeReport({3}, {20, 30, 40}, {}, 90);
    r["cells"].erase(1);
    f.CheckRefused(r.dump(), 400, "lists 2 of its 3 cells");
  }
  SUBCASE("a missing margin") {
    json r = GoodReport();
    r["margins"].erase(3);
    f.CheckRefused(r.dump(), 400, "lists 3 of its 4 margins");
  }
  SUBCASE("no total") {
    json r = GoodReport();
    r.erase("total");
    f.CheckRefused(r.dump(), 400, "\"total\"");
  }
  SUBCASE("a margin in a one-dimensional report") {
    json r = MakeReport({2}, {20, 30}, {}, 50);
    r["margins"] = {{{"index", {nullptr}}, {"value", 50}}};
    f.CheckRefused(r.dump(), 400, "margin");
  }
  SUBCASE("a two-way margin of a three-way table") {
    json r = MakeReport({2, 2, 2}, {11, 12, 13, 14, 15, 16, 17, 18}, {50, 66, 54, 62, 56, 60}, 116);
    r["margins"][0]["index"] = {0, 0, nullptr};
    f.CheckRefused(r.dump(), 400, "every place but one");
  }
  SUBCASE("a dimension without categories") {
    json r = MakeReport({2}, {20, 30}, {}, 50);
    r["dims"].push_back({{"name", "empty"}, {"categories", json::array()}});
    f.CheckRefused(r.dump(), 400, "no categories");
  }
  SUBCASE("more cells than a report may have, whatever the list says") {
    json r = MakeReport({2}, {20, 30}, {}, 50);
    json cats = json::array();
    for (int i = 0; i < 200; ++i) cats.push_back("x" + std::to_string(i));
    r["dims"] = {{{"name", "a"}, {"categories", cats}},
                 {{"name", "b"}, {"categories", cats}},
                 {{"name", "c"}, {"categories", cats}}};
    f.CheckRefused(r.dump(), 400, "more than 10000 cells");
  }
  SUBCASE("published cells that do not add up to the total") {
    f.CheckRefused(MakeReport({2}, {20, 30}, {}, 60).dump(), 400,
                   "the published counts of the total do not add up");
  }
  SUBCASE("a margin smaller than its published cells") {
    f.CheckRefused(
        MakeReport({2, 2}, {kHidden, kHidden, 20, 30}, {kHidden, 40, kHidden, kHidden}, kHidden)
            .dump(),
        400, "the published counts of margin [1,all] (d0=c1, all) do not add up");
  }
  SUBCASE("a suppressed zero: hidden cells are at least 1") {
    f.CheckRefused(MakeReport({3}, {kHidden, kHidden, 30}, {}, 31).dump(), 400, "do not add up");
  }
  CHECK(f.StoredReports() == 0);
}

TEST_CASE("a report whose k is below the hub's minimum is refused with 422") {
  Fixture f;
  for (int k : {10, 5, 2, 0, -1}) {
    CAPTURE(k);
    json r = GoodReport();
    r["k"] = k;
    r["cells"][0]["value"] = 12;
    f.CheckRefused(r.dump(), 422, "minimum of 11");
  }
  // A hub run with --report-min-k 20 refuses k 11.
  hub::HubOptions options;
  options.clock = f.clock.AsWallClock();
  options.report_min_k = 20;
  hub::HubHandler strict(f.hub.storage(), options);
  auto req = BuildPublishReportRequest(*f.coord, GoodReport().dump());
  REQUIRE(req.ok());
  hub::HttpRequest h;
  h.method = req->method;
  h.target = req->path;
  for (const auto& [k, v] : req->headers) h.headers[k] = v;
  h.body.assign(req->body.begin(), req->body.end());
  const hub::HttpResponse r = strict.Handle(h);
  CHECK(r.status == 422);
  CHECK(ErrorOf(r.body).find("minimum of 20") != std::string::npos);
  CHECK(f.StoredReports() == 0);
}

TEST_CASE("malformed, oversized, wrong-version and too-wide reports are refused with 400") {
  Fixture f;
  SUBCASE("not a JSON object") {
    for (const std::string body :
         {"", "{", "not json", "[1,2,3]", "{\"version\":1,}", "null", "{}{}", "\xff\xfe{}"}) {
      CAPTURE(body);
      // The core refuses to send it; a hostile device signs it anyway.
      CHECK(BuildPublishReportRequest(*f.coord, body).status().code() ==
            StatusCode::kInvalidArgument);
      const HubReply r = f.PublishRaw(*f.coord, body);
      CHECK(r.status == 400);
      CHECK(!ErrorOf(r.body).empty());
    }
  }
  SUBCASE("oversized") {
    json r = GoodReport();
    r["title"] = std::string(300 * 1024, 'x');
    const std::string body = r.dump();
    REQUIRE(body.size() > kMaxReportBytes);
    CHECK(BuildPublishReportRequest(*f.coord, body).status().code() ==
          StatusCode::kResourceExhausted);
    f.CheckRefused(body, 400, "larger than 256 KiB");
  }
  SUBCASE("a long title within the size limit") {
    json r = GoodReport();
    r["title"] = std::string(1000, 'x');
    f.CheckRefused(r.dump(), 400, "title");
  }
  SUBCASE("wrong version") {
    for (const json& v : {json(2), json(0), json("1"), json(1.5), json(nullptr)}) {
      json r = GoodReport();
      r["version"] = v;
      f.CheckRefused(r.dump(), 400, "version");
    }
    json r = GoodReport();
    r.erase("version");
    f.CheckRefused(r.dump(), 400, "version");
  }
  SUBCASE("four dimensions") {
    json r = GoodReport();
    json d = r["dims"][0];
    r["dims"] = {d, d, d, d};
    f.CheckRefused(r.dump(), 400, "at most 3");
  }
  SUBCASE("no dimensions") {
    json r = GoodReport();
    r["dims"] = json::array();
    f.CheckRefused(r.dump(), 400, "dims");
  }
  SUBCASE("too many cells") {
    json r = GoodReport();
    json cells = json::array();
    for (int i = 0; i < 10001; ++i) cells.push_back({{"index", {0, 0}}, {"value", 0}});
    r["cells"] = cells;
    r.erase("margins");
    r.erase("title");
    r.erase("generated_at");
    REQUIRE(r.dump().size() <= kMaxReportBytes);
    f.CheckRefused(r.dump(), 400, "more than 10000 cells");
  }
  SUBCASE("a value that is not a whole number") {
    for (const json& v : {json(12.5), json("12"), json(-12), json(true), json(1e300)}) {
      CAPTURE(v.dump());
      json r = GoodReport();
      r["cells"][0]["value"] = v;
      f.CheckRefused(r.dump(), 400, "cell [0,0]");
    }
  }
  SUBCASE("a null value not marked suppressed") {
    json r = GoodReport();
    r["cells"][1].erase("suppressed");
    f.CheckRefused(r.dump(), 400, "not marked");
  }
  SUBCASE("an index out of range, of the wrong length, or listed twice") {
    json r = GoodReport();
    r["cells"][0]["index"] = {2, 0};
    f.CheckRefused(r.dump(), 400, "out of range");
    r = GoodReport();
    r["cells"][0]["index"] = {0};
    f.CheckRefused(r.dump(), 400, "index");
    r = GoodReport();
    r["cells"][3]["index"] = {0, 0};
    f.CheckRefused(r.dump(), 400, "twice");
    r = GoodReport();
    r["cells"][0]["index"] = {nullptr, 0};
    f.CheckRefused(r.dump(), 400, "out of range");
  }
  SUBCASE("an unknown member (an unchecked channel)") {
    json r = GoodReport();
    r["records"] = json::array({{{"name", "María"}, {"age", 15}}});
    f.CheckRefused(r.dump(), 400, "unknown member \"records\"");
    r = GoodReport();
    r["cells"][0]["count_raw"] = 3;
    f.CheckRefused(r.dump(), 400, "unknown member \"count_raw\"");
  }
  SUBCASE("nested too deep") {
    json r = GoodReport();
    std::string body = r.dump();
    body.insert(body.size() - 1, R"(,"title2":)" + std::string(50, '[') + std::string(50, ']'));
    f.CheckRefused(body, 400, "deeper");
  }
  SUBCASE("bad dates") {
    json r = GoodReport();
    r["from"] = "January";
    f.CheckRefused(r.dump(), 400, "YYYY-MM-DD");
  }
  CHECK(f.StoredReports() == 0);
  CHECK(f.Publish(*f.coord, GoodReport().dump()).status == 200);
}

TEST_CASE("a viewer token reads its own team's reports and nothing else") {
  Fixture f;
  // A second team on the same hub, with its own report.
  auto other =
      testing::InitCoordinator(f.hub, TestOptions(f.dir.File("puebla"), &f.clock), "Puebla");
  const HubReply mine = f.Publish(*f.coord, GoodReport("Tlaxcala").dump());
  const HubReply theirs = f.Publish(*other, GoodReport("Puebla").dump());
  REQUIRE(mine.status == 200);
  REQUIRE(theirs.status == 200);
  const std::string my_id = DecodePublishReportAnswer(mine.body)->id;
  const std::string their_id = DecodePublishReportAnswer(theirs.body)->id;
  REQUIRE(my_id != their_id);

  const std::string token = f.ViewerToken(f.coord->team());
  CHECK(token.rfind("vt-", 0) == 0);
  const std::string path = std::string(kReportsPath) + "/";

  SUBCASE("lists and reads its team's report") {
    const auto list = f.WithToken("GET", kReportsPath, token);
    REQUIRE(list.status == 200);
    auto reports = DecodeReportList(list.body);
    REQUIRE(reports.ok());
    REQUIRE(reports->size() == 1);
    CHECK((*reports)[0].id == my_id);
    const auto got = f.WithToken("GET", path + my_id, token);
    CHECK(got.status == 200);
    CHECK(got.content_type == "application/json");
    CHECK(got.body == GoodReport("Tlaxcala").dump());
    // The scheme name is case-insensitive.
    hub::HttpRequest lower{
        "GET", kReportsPath, {{kHeaderAuthorization, "bearer " + token}}, "", ""};
    CHECK(f.hub.Raw(lower).status == 200);
  }
  SUBCASE("cannot read another team's report") {
    CHECK(f.WithToken("GET", path + their_id, token).status == 404);
  }
  SUBCASE("a wrong or malformed token is refused with 401") {
    std::string wrong_id = token;
    wrong_id[10] = wrong_id[10] == 'A' ? 'B' : 'A';
    std::string wrong_secret = token;
    wrong_secret[40] = wrong_secret[40] == 'A' ? 'B' : 'A';
    for (const std::string& t :
         {wrong_id, wrong_secret, std::string("vt-"), std::string("nonsense"), token + "x",
          token.substr(0, token.size() - 1)}) {
      CAPTURE(t);
      const auto r = f.WithToken("GET", kReportsPath, t);
      CHECK(r.status == 401);
      CHECK(r.headers.count("www-authenticate") == 1);
      CHECK(f.WithToken("GET", path + my_id, t).status == 401);
    }
    hub::HttpRequest basic{"GET", kReportsPath, {{kHeaderAuthorization, "Basic " + token}}, "", ""};
    CHECK(f.hub.Raw(basic).status == 401);
    hub::HttpRequest none{"GET", kReportsPath, {}, "", ""};
    CHECK(f.hub.Raw(none).status == 401);
  }
  SUBCASE("cannot publish, sync or do anything else") {
    const auto post = f.WithToken("POST", kReportsPath, token, GoodReport("forged").dump());
    CHECK(post.status == 403);
    CHECK(ErrorOf(post.body).find("only read") != std::string::npos);
    CHECK(f.WithToken("POST", kPathSync, token).status == 401);
    CHECK(f.WithToken("POST", kPathCreateInvite, token).status == 401);
    CHECK(f.StoredReports() == 2);
  }
  SUBCASE("a token for an unknown team cannot be made") {
    auto t = f.hub.storage().AddViewerToken(TeamId::Random(), "", f.clock.now_ms);
    CHECK(t.status().code() == StatusCode::kNotFound);
  }
  SUBCASE("the other team's token reads only the other team's report") {
    const std::string their_token = f.ViewerToken(other->team(), "Puebla");
    CHECK(f.WithToken("GET", path + their_id, their_token).status == 200);
    CHECK(f.WithToken("GET", path + my_id, their_token).status == 404);
    auto reports = DecodeReportList(f.WithToken("GET", kReportsPath, their_token).body);
    REQUIRE(reports.ok());
    REQUIRE(reports->size() == 1);
    CHECK((*reports)[0].id == their_id);
  }
  // The hub keeps only a hash: the token's text is nowhere in its database.
  const std::string db = testing::ReadFile(f.hub.data_dir() + "/hub.db") +
                         testing::ReadFile(f.hub.data_dir() + "/hub.db-wal");
  CHECK(db.find(token.substr(3)) == std::string::npos);
}

TEST_CASE("a team's device cannot read another team's report") {
  Fixture f;
  auto other =
      testing::InitCoordinator(f.hub, TestOptions(f.dir.File("puebla"), &f.clock), "Puebla");
  const HubReply theirs = f.Publish(*other, GoodReport("Puebla").dump());
  REQUIRE(theirs.status == 200);
  const std::string their_id = DecodePublishReportAnswer(theirs.body)->id;
  CHECK(f.Get(*other, their_id).status == 200);
  for (Replica* device : {f.coord.get(), f.a.get()}) {
    const HubReply r = f.Get(*device, their_id);
    CHECK(r.status == 404);
    auto list = DecodeReportList(f.List(*device).body);
    REQUIRE(list.ok());
    CHECK(list->empty());
  }
}

TEST_CASE("report reads are signed requests: replayed, unsigned or altered ones are refused") {
  Fixture f;
  REQUIRE(f.Publish(*f.coord, GoodReport().dump()).status == 200);
  auto req = BuildListReportsRequest(*f.a);
  REQUIRE(req.ok());
  CHECK(req->method == "GET");
  CHECK(req->body.empty());
  CHECK(f.hub.Send(*req).status == 200);
  CHECK(f.hub.Send(*req).status == 401);  // replay

  auto get = BuildGetReportRequest(*f.a, std::string(32, 'a'));
  REQUIRE(get.ok());
  OutgoingRequest moved = *get;
  moved.path = std::string(kReportsPath) + "/" + std::string(32, 'b');  // path is signed
  CHECK(f.hub.Send(moved).status == 401);
  CHECK(f.hub.Send(*get).status == 404);

  CHECK(BuildGetReportRequest(*f.a, "not-an-id").status().code() == StatusCode::kInvalidArgument);
  CHECK(BuildGetReportRequest(*f.a, std::string(31, 'a')).status().code() ==
        StatusCode::kInvalidArgument);
  // A stranger's device (registered nowhere) gets 403.
  auto stranger = testing::MakeReplica(TestOptions(f.dir.File("stranger"), &f.clock));
  REQUIRE(CreateTeam(*stranger).ok());
  auto list = BuildListReportsRequest(*stranger);
  REQUIRE(list.ok());
  CHECK(f.hub.Send(*list).status == 403);
  // Other methods on the report paths.
  CHECK(f.hub.Raw(hub::HttpRequest{"DELETE", kReportsPath, {}, "", ""}).status == 405);
  CHECK(f.hub.Raw(hub::HttpRequest{"PUT", std::string(kReportsPath) + "/x", {}, "", ""}).status ==
        405);
}

TEST_CASE("publishing counts in the metrics and logs the report id, never a token") {
  Fixture f;
  std::vector<std::string> lines;
  hub::HubOptions options;
  options.clock = f.clock.AsWallClock();
  options.log = [&lines](const std::string& line) { lines.push_back(line); };
  hub::HubHandler handler(f.hub.storage(), options);
  auto send = [&handler](const OutgoingRequest& o) {
    hub::HttpRequest h;
    h.method = o.method;
    h.target = o.path;
    for (const auto& [k, v] : o.headers) h.headers[k] = v;
    h.body.assign(o.body.begin(), o.body.end());
    return handler.Handle(h);
  };
  const auto published = send(*BuildPublishReportRequest(*f.coord, GoodReport().dump()));
  REQUIRE(published.status == 200);
  const std::string id = DecodePublishReportAnswer(published.body)->id;
  json small = GoodReport();
  small["cells"][0]["value"] = 3;
  CHECK(send(*BuildPublishReportRequest(*f.coord, small.dump())).status == 422);
  const std::string token = f.ViewerToken(f.coord->team());
  hub::HttpRequest get{"GET",
                       std::string(kReportsPath) + "/" + id,
                       {{kHeaderAuthorization, "Bearer " + token}},
                       "",
                       ""};
  CHECK(handler.Handle(get).status == 200);

  hub::HttpRequest metrics_request{"GET", kPathMetrics, {}, "", ""};
  metrics_request.from_loopback = true;
  const std::string metrics = handler.Handle(metrics_request).body;
  CHECK(metrics.find("enlace_reports_published_total 1\n") != std::string::npos);
  CHECK(metrics.find("enlace_reports_refused_total 1\n") != std::string::npos);
  CHECK(metrics.find("enlace_reports_served_total 1\n") != std::string::npos);
  CHECK(metrics.find("enlace_reports 1\n") != std::string::npos);
  CHECK(metrics.find("enlace_viewer_tokens 1\n") != std::string::npos);
  CHECK(metrics.find("enlace_requests_total{endpoint=\"/v1/reports\",status=\"422\"} 1") !=
        std::string::npos);
  CHECK(metrics.find("enlace_requests_total{endpoint=\"/v1/reports/:id\",status=\"200\"} 1") !=
        std::string::npos);

  REQUIRE(lines.size() >= 3);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  CHECK(all.find(token.substr(3, 20)) == std::string::npos);
  CHECK(all.find("\"report\":\"" + id + "\"") != std::string::npos);
  CHECK(all.find("\"viewer\":") != std::string::npos);
  CHECK(all.find("\"status\":422") != std::string::npos);
}

TEST_CASE(
    "reports made by the device's report library are accepted; revealing a hidden cell is not") {
  Fixture f;
  std::mt19937 rng(20260201);
  int published = 0, revealed = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const size_t ndims = 1 + trial % 3;
    std::vector<report::Dimension> dims;
    for (size_t d = 0; d < ndims; ++d) {
      report::Dimension dim;
      dim.name = "dim" + std::to_string(d);
      for (size_t c = 0; c < 2 + rng() % 2; ++c) dim.categories.push_back("c" + std::to_string(c));
      dims.push_back(std::move(dim));
    }
    // Rows skewed towards the first categories, so small cells are common.
    std::vector<std::vector<std::string>> rows;
    const size_t n = rng() % 120;
    for (size_t r = 0; r < n; ++r) {
      std::vector<std::string> row;
      for (const auto& dim : dims) {
        const size_t c = std::min<size_t>(rng() % 4 == 0 ? rng() % dim.categories.size() : 0,
                                          dim.categories.size() - 1);
        row.push_back(dim.categories[c]);
      }
      rows.push_back(std::move(row));
    }
    auto table = report::Tabulate(dims, rows);
    REQUIRE_MESSAGE(table.ok(), table.status().ToString());
    auto p = report::Suppress(*table, 11);
    REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    p->title = "ensayo " + std::to_string(trial);
    // A year per table (they describe different people), and the
    // secondary suppression the CLI adds before publishing.
    p->from = std::to_string(1980 + trial) + "-01-01";
    p->to = std::to_string(1980 + trial) + "-12-31";
    p->generated_at = "2026-04-01T09:00:00Z";
    auto across = report::SuppressAcross(*p, {});
    REQUIRE_MESSAGE(across.ok(), across.status().ToString());
    REQUIRE(across->final.safe());
    const std::string body = report::RenderJson(*p);
    const HubReply r = f.Publish(*f.coord, body);
    CHECK_MESSAGE(r.status == 200, r.body, "\n", body);
    ++published;

    // The same report with one hidden cell shown is refused.
    json j = json::parse(body);
    for (auto& cell : j["cells"]) {
      if (cell["suppressed"] == true) {
        cell["value"] = 4;
        cell["suppressed"] = false;
        const HubReply leak = f.PublishRaw(*f.coord, j.dump());
        CHECK(leak.status == 422);
        ++revealed;
        break;
      }
    }
  }
  MESSAGE(published, " library reports published, ", revealed, " with a hidden cell refused");
  CHECK(revealed > 0);
  CHECK(f.StoredReports() == static_cast<uint64_t>(published));
}

TEST_CASE("every table the report library suppresses passes the hub's disclosure check") {
  // The hub's check is the library's rule: it must never refuse what
  // Suppress makes (the CLI could not publish it otherwise). 1 to 3
  // dimensions, sparse and dense, small and large counts.
  std::mt19937_64 rng(14010);
  for (int trial = 0; trial < 600; ++trial) {
    const size_t ndims = 1 + trial % 3;
    report::Table t;
    size_t cells = 1;
    for (size_t d = 0; d < ndims; ++d) {
      report::Dimension dim;
      dim.name = "d" + std::to_string(d);
      for (size_t c = 0; c < 2 + rng() % (ndims == 3 ? 3 : 6); ++c) {
        dim.categories.push_back("c" + std::to_string(c));
      }
      cells *= dim.categories.size();
      t.dims.push_back(std::move(dim));
    }
    const uint64_t top = std::array<uint64_t, 4>{5, 15, 30, 60}[trial % 4];
    for (size_t c = 0; c < cells; ++c) t.counts.push_back(rng() % 3 == 0 ? 0 : rng() % (top + 1));
    auto p = report::Suppress(t, 11);
    REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    const std::string body = report::RenderJson(*p);
    const hub::ReportVerdict v = hub::CheckReport(body, hub::ReportLimits{});
    CHECK_MESSAGE(v.ok(), v.error, "\n", body);
  }
}

TEST_CASE("the report answers parse strictly") {
  CHECK(
      DecodePublishReportAnswer(R"({"id":"0123456789abcdef0123456789abcdef","published_at_ms":5})")
          .ok());
  CHECK(!DecodePublishReportAnswer(R"({"id":"xyz","published_at_ms":5})").ok());
  CHECK(!DecodePublishReportAnswer(R"({"id":"0123456789abcdef0123456789abcdef"})").ok());
  CHECK(!DecodePublishReportAnswer("not json").ok());
  ReportListing l;
  l.id = std::string(32, 'c');
  l.title = "t";
  l.k = 11;
  l.published_at_ms = 9;
  l.publisher = DeviceId::Random();
  auto back = DecodeReportList(EncodeReportList({l, l}));
  REQUIRE(back.ok());
  CHECK(*back == std::vector<ReportListing>{l, l});
  CHECK(!DecodeReportList(R"({"reports":[{"id":1}]})").ok());
  CHECK(!DecodeReportList(R"([])").ok());
}

}  // namespace
}  // namespace enlace
