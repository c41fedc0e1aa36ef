// Randomized linked tables (issue 16): random people, random publications
// on the lattice (months, quarters, the year; 1 or 2 dimensions, with or
// without months), each suppressed alone (report::Suppress) and then across
// the publications before it (report::SuppressAcross), published only when
// the audit passes. An independent LP attacker (tests/support/lp_attacker.h)
// then attacks all the published tables together: it must prove nothing.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "enlace/report.h"
#include "lp_attacker.h"

namespace enlace {
namespace {

using testing::Microdata;

TEST_CASE("random publications on the lattice, audited together, give nobody away") {
  std::mt19937 rng(16016);
  size_t published = 0, hidden_more = 0, refused = 0;
  for (int trial = 0; trial < 6; ++trial) {
    Microdata d;
    d.year = 2020 + trial;
    d.attributes = {"gender", "age_band"};
    d.domain = {{"F", "M", "T"}, {"a", "b", "c"}};
    const int n = 40 + static_cast<int>(rng() % 120);
    for (int i = 0; i < n; ++i) {
      const unsigned g = rng() % 20, a = rng() % 10;
      d.people.push_back({1 + static_cast<int>(rng() % 12),
                          {g < 11   ? 0u
                           : g < 19 ? 1u
                                    : 2u,
                           a < 5   ? 0u
                           : a < 9 ? 1u
                                   : 2u}});
    }
    const std::vector<std::vector<std::string>> dim_sets = {
        {"gender"}, {"age_band"}, {"gender", "age_band"}, {"gender", "month"}, {"month"}};
    std::vector<std::string> bodies;
    std::vector<disclosure::LinkedTable> earlier;
    for (int pub = 0; pub < 6; ++pub) {
      const unsigned kind = rng() % 3;
      int first = 1, last = 12;
      if (kind == 0) first = last = 1 + static_cast<int>(rng() % 12);
      if (kind == 1) {
        first = 1 + 3 * static_cast<int>(rng() % 4);
        last = first + 2;
      }
      const auto& dims = dim_sets[rng() % dim_sets.size()];
      std::vector<report::Dimension> ds;
      for (const std::string& name : dims) ds.push_back({name, {}, {}});
      auto table = report::Tabulate(ds, testing::RowsOf(d, first, last, dims));
      REQUIRE(table.ok());
      if (table->counts.empty()) continue;  // nobody in the period
      auto p = report::Suppress(*table, 11);
      REQUIRE(p.ok());
      p->from = testing::FromDate(d.year, first);
      p->to = testing::ToDate(d.year, last);
      auto across = report::SuppressAcross(*p, earlier);
      REQUIRE_MESSAGE(across.ok(), across.status().ToString());
      hidden_more += across->hidden.size();
      if (!across->final.safe()) {
        ++refused;
        continue;
      }
      bodies.push_back(report::RenderJson(*p));
      earlier.push_back(*report::ToLinked(*p, "r" + std::to_string(pub)));
      ++published;
    }
    const std::vector<std::string> found = testing::LpAttack(d, bodies, 11);
    for (const std::string& f : found) INFO(f);
    CHECK_MESSAGE(found.empty(), "year ", d.year, ": ", found.size(), " counts proven, e.g. ",
                  found.empty() ? "" : found.front());
  }
  MESSAGE(published, " tables published, ", hidden_more, " entries hidden across publications, ",
          refused, " tables refused");
  CHECK(published > 0);
  CHECK(hidden_more > 0);
}

}  // namespace
}  // namespace enlace
