// The disclosure library (enlace/disclosure.h): the layout of a table, the
// rank test, bounds propagation and the verdict the hub gives a published
// table, on hand-made tables with known answers.
#include "enlace/disclosure.h"

#include <doctest/doctest.h>

#include <optional>
#include <vector>

namespace enlace::disclosure {
namespace {

constexpr std::optional<uint64_t> kHidden = std::nullopt;

// Cells, then margins, then the total, as one PublishedValues.
PublishedValues Values(std::vector<std::optional<uint64_t>> cells,
                       const std::vector<std::optional<uint64_t>>& margins,
                       std::optional<uint64_t> total) {
  cells.insert(cells.end(), margins.begin(), margins.end());
  cells.push_back(total);
  return cells;
}

Finding MustCheck(const Layout& l, const PublishedValues& v) {
  const Result<Finding> f = CheckPublished(l, v);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return *f;
}

TEST_CASE(
    "a layout numbers cells row-major, then the margins dimension by dimension, then the "
    "total") {
  const Layout one = MakeLayout({3});
  CHECK(one.num_cells == 3);
  CHECK(one.num_margins == 0);
  CHECK(one.num_entries() == 4);
  CHECK(one.total_id() == 3);
  CHECK(one.agg_cells == std::vector<std::vector<uint32_t>>{{0, 1, 2}});
  CHECK(one.index[3] == std::vector<size_t>{kAll});

  const Layout two = MakeLayout({2, 3});
  CHECK(two.num_cells == 6);
  CHECK(two.num_margins == 5);
  CHECK(two.CellId({1, 2}) == 5);
  CHECK(two.index[5] == std::vector<size_t>{1, 2});
  CHECK(two.MarginId(0, 1) == 7);
  CHECK(two.MarginId(1, 0) == 8);
  CHECK(two.index[7] == std::vector<size_t>{1, kAll});
  CHECK(two.index[8] == std::vector<size_t>{kAll, 0});
  CHECK(two.agg_cells[7 - 6] == std::vector<uint32_t>{3, 4, 5});
  CHECK(two.agg_cells[8 - 6] == std::vector<uint32_t>{0, 3});
  CHECK(two.cell_aggs[4] == std::vector<uint32_t>{7, 9, 11});

  const Layout three = MakeLayout({2, 2, 2});
  CHECK(three.num_cells == 8);
  CHECK(three.num_margins == 6);
  CHECK(three.MarginId(2, 1) == 13);
  CHECK(three.index[13] == std::vector<size_t>{kAll, kAll, 1});
  CHECK(three.agg_cells[13 - 8] == std::vector<uint32_t>{1, 3, 5, 7});
  CHECK(three.agg_cells.back().size() == 8);
}

TEST_CASE("the rank test finds a suppressed entry the relations determine, and only those") {
  const Layout l = MakeLayout({2, 2});
  // Three corners of a 2 x 2 hidden: each is its row's or column's last
  // unknown.
  Result<std::vector<bool>> d =
      DeterminedEntries(l, {true, true, true, false, false, false, false, false, false});
  REQUIRE(d.ok());
  CHECK(((*d)[0] && (*d)[1] && (*d)[2]));
  CHECK_FALSE((*d)[3]);
  // All four: none.
  d = DeterminedEntries(l, {true, true, true, true, false, false, false, false, false});
  REQUIRE(d.ok());
  for (size_t i = 0; i < l.num_entries(); ++i) CHECK_FALSE((*d)[i]);
  // The wrong number of flags.
  CHECK(DeterminedEntries(l, {true}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("bounds: hidden entries get the ranges every consistent table keeps them in") {
  // 20, hidden, hidden; total 25: each hidden cell is 1..4.
  Result<Ranges> r = EntryRanges(MakeLayout({3}), Values({20, kHidden, kHidden}, {}, 25));
  REQUIRE(r.ok());
  REQUIRE(r->consistent);
  CHECK(r->range[1] == Range{1, 4});
  CHECK(r->range[2] == Range{1, 4});
  CHECK(r->range[0] == Range{20, 20});

  // A hidden total over hidden cells: at least one per cell, no upper bound.
  r = EntryRanges(MakeLayout({2}), Values({kHidden, kHidden}, {}, kHidden));
  REQUIRE(r.ok());
  CHECK(r->range[2] == Range{2, kUnbounded});
  CHECK(r->range[0] == Range{1, kUnbounded});

  // 2 x 3, docs/REPORTS.md's example: 5 and 12 hidden in a row of 57 with
  // 40 shown, so each is 1..16.
  r = EntryRanges(MakeLayout({2, 3}),
                  Values({kHidden, 40, kHidden, kHidden, 30, kHidden}, {57, 135, 65, 70, 57}, 192));
  REQUIRE(r.ok());
  CHECK(r->range[0] == Range{1, 16});
  CHECK(r->range[2] == Range{1, 16});

  // A published value the arithmetic cannot hold.
  CHECK(EntryRanges(MakeLayout({2}), Values({kUnbounded, 0}, {}, kHidden)).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(EntryRanges(MakeLayout({2}), {1, 2}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("bounds propagation never overflows: huge counts only loosen a bound") {
  const uint64_t big = kUnbounded - 1;
  // Two published cells whose sum does not fit: the hidden total keeps a
  // loose range, and the table is consistent.
  Result<Ranges> r = EntryRanges(MakeLayout({2}), Values({big, big}, {}, kHidden));
  REQUIRE(r.ok());
  CHECK(r->consistent);
  CHECK(r->range[2].hi == kUnbounded);
  // The same cells under a published total: inconsistent.
  r = EntryRanges(MakeLayout({2}), Values({big, big}, {}, big));
  REQUIRE(r.ok());
  CHECK_FALSE(r->consistent);
  CHECK(r->failed == 2);
}

TEST_CASE("the verdict: one hidden cell, its sibling 20 and the total 23 give the 3 away") {
  const Layout l = MakeLayout({2});
  const Finding f = MustCheck(l, Values({kHidden, 20}, {}, 23));
  CHECK(f.kind == Finding::Kind::kDetermined);
  CHECK(f.entry == 0);
  // Two hidden cells in the list: safe.
  CHECK(MustCheck(MakeLayout({3}), Values({kHidden, kHidden, 20}, {}, 28)).safe());
}

TEST_CASE("the verdict: a cell worked out through its row and its column is determined") {
  // 3, 20 / 15, 30 with only 30 shown.
  const Finding f =
      MustCheck(MakeLayout({2, 2}), Values({kHidden, kHidden, kHidden, 30}, {23, 45, 18, 50}, 68));
  CHECK(f.kind == Finding::Kind::kDetermined);
  CHECK(f.entry == 0);
  // A hidden row total, the total and the other row shown.
  const Finding m = MustCheck(
      MakeLayout({2, 2}), Values({kHidden, kHidden, kHidden, kHidden}, {kHidden, 45, 18, 50}, 68));
  CHECK(m.kind == Finding::Kind::kDetermined);
  CHECK(m.entry == 4);
  // A hidden total over published cells.
  const Finding t = MustCheck(MakeLayout({2}), Values({20, 30}, {}, kHidden));
  CHECK(t.kind == Finding::Kind::kDetermined);
  CHECK(t.entry == 2);
}

TEST_CASE("the verdict: bounds pin what the relations leave free") {
  // Two hidden cells that add up to 2 are both 1.
  Finding f = MustCheck(MakeLayout({3}), Values({kHidden, kHidden, 30}, {}, 32));
  CHECK(f.kind == Finding::Kind::kPinned);
  CHECK(f.entry == 0);
  // 2 x 2: a hidden rectangle whose first row adds up to 2.
  f = MustCheck(MakeLayout({2, 2}),
                Values({kHidden, kHidden, kHidden, kHidden}, {2, 40, 20, 22}, 42));
  CHECK(f.kind == Finding::Kind::kPinned);
  CHECK(f.entry == 0);
  // A row of 3 leaves 1 + 2 or 2 + 1: safe.
  CHECK(MustCheck(MakeLayout({3}), Values({kHidden, kHidden, 30}, {}, 33)).safe());
}

TEST_CASE("the verdict: published counts that cannot add up are inconsistent") {
  Finding f = MustCheck(MakeLayout({2}), Values({20, 30}, {}, 60));
  CHECK(f.kind == Finding::Kind::kInconsistent);
  CHECK(f.entry == 2);
  // A margin smaller than its published cells.
  f = MustCheck(MakeLayout({2, 2}),
                Values({kHidden, kHidden, 20, 30}, {kHidden, 40, kHidden, kHidden}, kHidden));
  CHECK(f.kind == Finding::Kind::kInconsistent);
  CHECK(f.entry == 5);
  // Hidden cells count at least 1: two of them cannot add up to 1.
  f = MustCheck(MakeLayout({3}), Values({kHidden, kHidden, 30}, {}, 31));
  CHECK(f.kind == Finding::Kind::kInconsistent);
}

TEST_CASE("the verdict: safe suppression patterns pass") {
  // docs/REPORTS.md's example.
  CHECK(MustCheck(MakeLayout({2, 3}),
                  Values({kHidden, 40, kHidden, kHidden, 30, kHidden}, {57, 135, 65, 70, 57}, 192))
            .safe());
  // A small row total hidden with the other; every cell hidden.
  CHECK(MustCheck(MakeLayout({2, 2}),
                  Values({kHidden, kHidden, kHidden, kHidden}, {kHidden, kHidden, 23, 34}, 57))
            .safe());
  // 2 x 2 x 2, the four cells of a hypercube move hidden: 3, 20, 21, 40.
  CHECK(
      MustCheck(MakeLayout({2, 2, 2}), Values({kHidden, kHidden, kHidden, kHidden, 22, 41, 42, 60},
                                              {84, 165, 86, 163, 88, 161}, 249))
          .safe());
  // Nothing hidden.
  CHECK(MustCheck(MakeLayout({2}), Values({20, 0}, {}, 20)).safe());
  CHECK(CheckPublished(MakeLayout({2}), {1}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace enlace::disclosure
