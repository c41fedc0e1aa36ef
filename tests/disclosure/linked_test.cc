// The audit across publications (enlace/linked.h): the publication lattice,
// and hand-made combinations of tables with known answers, each one of the
// attacks of issue 16 in its smallest form.
#include "enlace/linked.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

namespace enlace::disclosure {
namespace {

constexpr std::optional<uint64_t> kHidden = std::nullopt;
using Kind = AuditFinding::Kind;

LinkedTable Table(std::string label, Period period, std::vector<std::string> dims,
                  std::vector<std::vector<std::string>> cats, PublishedValues values) {
  LinkedTable t;
  t.label = std::move(label);
  t.period = period;
  t.dim_names = std::move(dims);
  t.categories = std::move(cats);
  t.values = std::move(values);
  return t;
}

AuditFinding MustAudit(const std::vector<LinkedTable>& tables, const AuditLimits& limits = {}) {
  const Result<AuditFinding> f = AuditLinked(tables, limits);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return *f;
}

const Period kQ1{2025, 1, 3};
const Period kJan{2025, 1, 1};

TEST_CASE("the lattice: whole months, quarters and years, published once they are over") {
  CHECK(*LatticePeriod("2025-01-01", "2025-01-31") == Period{2025, 1, 1});
  CHECK(*LatticePeriod("2024-02-01", "2024-02-29") == Period{2024, 2, 2});
  CHECK(*LatticePeriod("2025-04-01", "2025-06-30") == Period{2025, 4, 6});
  CHECK(*LatticePeriod("2025-01-01", "2025-12-31") == Period{2025, 1, 12});
  // Nested windows, one day, a quarter off the calendar, across years, open.
  for (const auto& window :
       std::vector<std::pair<std::string, std::string>>{{"2025-01-01", "2025-06-30"},
                                                        {"2025-01-01", "2025-07-31"},
                                                        {"2025-03-14", "2025-03-14"},
                                                        {"2025-02-01", "2025-04-30"},
                                                        {"2025-01-01", "2025-01-30"},
                                                        {"2024-12-01", "2025-02-28"},
                                                        {"", ""},
                                                        {"2025-02-01", "2025-02-29"}}) {
    const std::string& from = window.first;  // INFO captures: no structured binding
    const std::string& to = window.second;
    INFO(from, " .. ", to);
    CHECK(LatticePeriod(from, to).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(PeriodEnd(kQ1) == "2025-03-31");
  CHECK_FALSE(PeriodEnded(kQ1, "2025-03-31"));
  CHECK(PeriodEnded(kQ1, "2025-04-01"));
  CHECK(PopulationOf({"gender", "age_band"}) == "persons");
  CHECK(PopulationOf({"gender", "federal_entity"}) == "events");
}

TEST_CASE("a quarter and its first month give away the small counts of the other two") {
  // Q1 by gender: 40 women, 35 men; January: 38 women, 35 men. Every count
  // is >= 11, yet February-March had 2 women.
  const LinkedTable q1 = Table("q1", kQ1, {"gender"}, {{"F", "M"}}, {40, 35, 75});
  const LinkedTable jan = Table("jan", kJan, {"gender"}, {{"F", "M"}}, {38, 35, 73});
  CHECK(MustAudit({q1}).safe());
  const AuditFinding f = MustAudit({q1, jan});
  REQUIRE(f.kind == Kind::kSmall);
  CHECK(f.count.table == kDerived);
  CHECK(f.count.first == 2);
  CHECK(f.count.last == 3);
  CHECK(f.count.where == std::vector<std::pair<std::string, std::string>>{{"gender", "F"}});
  CHECK(f.low == 2);
  CHECK(f.high == 2);
  // Published the other way round, the quarter is the new table: the
  // secondary suppression hides its smallest related counts until the
  // audit passes.
  const AuditFinding g = MustAudit({jan, q1});
  CHECK(g.kind == Kind::kSmall);
  auto r = SuppressUntilSafe({jan, q1});
  REQUIRE(r.ok());
  CHECK(r->final.safe());
  REQUIRE(r->hidden.size() == 2);
  CHECK(r->hidden[0].first == 0);  // women, 40: Feb-Mar's 2 women proven
  CHECK(r->hidden[1].first == 2);  // the total: 75 - 35 pins the women
  // A table for which no hiding helps (the leak is all in earlier tables'
  // months) stops with the finding.
  auto stuck = SuppressUntilSafe({q1, jan});
  REQUIRE(stuck.ok());
  CHECK(stuck->final.kind == Kind::kSmall);
}

TEST_CASE("a table published again with one late record contradicts the first and is refused") {
  const LinkedTable before = Table("a", kJan, {"gender"}, {{"F", "M"}}, {20, 30, 50});
  const LinkedTable after = Table("b", kJan, {"gender"}, {{"F", "M"}}, {21, 30, 51});
  CHECK(MustAudit({before, after}).kind == Kind::kInconsistent);
  // The same table again adds nothing.
  CHECK(MustAudit({before, before}).safe());
  // Hiding the difference is still a contradiction of the total.
  const LinkedTable hidden = Table("c", kJan, {"gender"}, {{"F", "M"}}, {kHidden, 30, 51});
  CHECK(MustAudit({before, hidden}).kind == Kind::kInconsistent);
}

TEST_CASE("two hidden counts that add up to less than k are both proven small") {
  // A row of 3 (hidden), 5 (hidden), 40 with the total 48: the pair sums to
  // 8, so each is in 1..7, though each takes several values.
  const LinkedTable t =
      Table("t", kQ1, {"age_band"}, {{"a", "b", "c"}}, {kHidden, kHidden, 40, 48});
  const AuditFinding f = MustAudit({t});
  REQUIRE(f.kind == Kind::kSmall);
  CHECK(f.count.table == 0);
  CHECK(f.count.entry == 0);
  CHECK(f.related == std::vector<uint32_t>{3});  // the total shares people with it
  auto r = SuppressUntilSafe({t});
  REQUIRE(r.ok());
  CHECK(r->final.safe());
  REQUIRE(r->hidden.size() >= 1);
}

TEST_CASE("one dimension and two: the margin published elsewhere pins nothing new") {
  // Gender alone shows women 30 and men 25; gender x age hides the women's
  // row around a small cell. The hidden margin "women" is published by the
  // first table (not a secret); the small cells must still move.
  const LinkedTable g = Table("g", kQ1, {"gender"}, {{"F", "M"}}, {30, 25, 55});
  // cells F/a F/b M/a M/b, margins F M a b, total.
  const LinkedTable ga = Table("ga", kQ1, {"gender", "age_band"}, {{"F", "M"}, {"a", "b"}},
                               {kHidden, kHidden, kHidden, kHidden,  // cells (3, 27, 12, 13)
                                kHidden, 25, 15, 40, 55});
  CHECK(MustAudit({g, ga}).safe());
  // With the men's row shown, the hidden women's cells are pinned.
  const LinkedTable ga2 = Table("ga2", kQ1, {"gender", "age_band"}, {{"F", "M"}, {"a", "b"}},
                                {kHidden, kHidden, 12, 13, kHidden, 25, 15, 40, 55});
  const AuditFinding f = MustAudit({g, ga2});
  CHECK(f.kind == Kind::kPinned);
}

TEST_CASE("a table by gender and month and the months' totals, published apart") {
  // Gender x month of Q1: women 30, 25, 28 shown; the transgender row (2,
  // 0, 1), January, March and the total hidden. Safe alone (nothing bounds
  // the hidden ones); so is the table of months alone. Together, January's
  // 32 pins the transgender women of January to 2.
  const LinkedTable by_month =
      Table("gm", kQ1, {"gender", "month"}, {{"F", "T"}, {"2025-01", "2025-02", "2025-03"}},
            {30, 25, 28, kHidden, 0, kHidden, 83, kHidden, kHidden, 25, kHidden, kHidden});
  const LinkedTable months =
      Table("m", kQ1, {"month"}, {{"2025-01", "2025-02", "2025-03"}}, {32, 25, 29, 86});
  CHECK(MustAudit({by_month}).safe());
  CHECK(MustAudit({months}).safe());
  const AuditFinding f = MustAudit({by_month, months});
  CHECK(f.kind == Kind::kPinned);
  CHECK(f.count.table == 0);
  CHECK(MustAudit({months, by_month}).kind == Kind::kPinned);
}

TEST_CASE("tables of other years and of events are not linked; the audit has limits") {
  const LinkedTable persons = Table("p", kQ1, {"gender"}, {{"F", "M"}}, {40, 35, 75});
  const LinkedTable events = Table("e", kJan, {"federal_entity"}, {{"29", "21"}}, {38, 35, 73});
  const LinkedTable other_year =
      Table("y", Period{2024, 1, 1}, {"gender"}, {{"F", "M"}}, {38, 35, 73});
  CHECK(MustAudit({persons, events}).safe());
  CHECK(MustAudit({persons, other_year}).safe());
  AuditLimits tight;
  tight.max_cells = 1;
  CHECK(MustAudit({persons}, tight).kind == Kind::kTooLarge);
  const LinkedTable bad_month = Table("m", kJan, {"month"}, {{"2025-02"}}, {12, 12});
  CHECK(AuditLinked({bad_month}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace enlace::disclosure
