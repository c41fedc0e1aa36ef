// Aggregated reports (enlace/report.h): tabulation, small-cell suppression
// with known answers, a brute-force attacker on random tables, and the
// renderers (text, CSV, JSON round trip, well-formed SVG).
#include "enlace/report.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "casework/report_internal.h"

namespace enlace::report {
namespace {

using internal::Layout;

// A table with dimensions d0, d1, ... and categories c0, c1, ... labelled
// L0, L1, ...
Table MakeTable(const std::vector<size_t>& sizes, std::vector<uint64_t> counts) {
  Table t;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Dimension d;
    d.name = "d" + std::to_string(k);
    for (size_t c = 0; c < sizes[k]; ++c) {
      d.categories.push_back("c" + std::to_string(c));
      d.labels.push_back("L" + std::to_string(c));
    }
    t.dims.push_back(std::move(d));
  }
  t.counts = std::move(counts);
  return t;
}

Published MustSuppress(const Table& t, uint32_t k = kDefaultK) {
  Result<Published> p = Suppress(t, k);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return std::move(p).value();
}

// The ids of the suppressed entries (cells, margins, total in Layout order).
std::vector<uint32_t> SuppressedIds(const Published& p) {
  std::vector<uint32_t> ids;
  uint32_t id = 0;
  for (const Cell& c : p.cells) {
    if (c.suppressed) ids.push_back(id);
    ++id;
  }
  for (const Cell& c : p.margins) {
    if (c.suppressed) ids.push_back(id);
    ++id;
  }
  if (p.total.suppressed) ids.push_back(id);
  return ids;
}

const Cell& Entry(const Published& p, uint32_t id) {
  if (id < p.cells.size()) return p.cells[id];
  id -= static_cast<uint32_t>(p.cells.size());
  if (id < p.margins.size()) return p.margins[id];
  return p.total;
}

// ---------------------------------------------------------------------------
// The attacker: sees only the Published table and knows that every
// suppressed entry is at least 1. It enumerates consistent tables (every
// suppressed cell an integer >= 1, every published entry reproduced) by
// depth-first search with bounds propagation over the relations, and looks
// for two different values of every suppressed entry: for an entry seen
// with one value v0, it searches exhaustively for a table where the entry
// is < v0 or > v0. An entry for which no such table exists is disclosed.
// Domains are capped (at the largest published value + 2k + 10) so the
// search ends; a cap can only hide tables, so the check errs towards
// failing, never towards passing.
class Attacker {
 public:
  explicit Attacker(const Published& p) : l_(internal::MakeLayout(internal::Sizes(p.table.dims))) {
    const size_t n = l_.num_entries();
    suppressed_.resize(n);
    published_.resize(n);
    int64_t max_published = 0;
    for (uint32_t e = 0; e < n; ++e) {
      suppressed_[e] = Entry(p, e).suppressed;
      published_[e] = static_cast<int64_t>(Entry(p, e).value);
      max_published = std::max(max_published, published_[e]);
    }
    const int64_t cap = max_published + 2 * static_cast<int64_t>(p.k) + 10;
    lo_.resize(l_.num_cells);
    hi_.resize(l_.num_cells);
    for (uint32_t c = 0; c < l_.num_cells; ++c) {
      lo_[c] = suppressed_[c] ? 1 : published_[c];
      hi_[c] = suppressed_[c] ? cap : published_[c];
    }
    const size_t na = l_.agg_cells.size();
    sum_lo_.resize(na);
    sum_hi_.resize(na);
    for (size_t a = 0; a < na; ++a) {
      const uint32_t id = static_cast<uint32_t>(l_.num_cells + a);
      sum_lo_[a] = suppressed_[id] ? 1 : published_[id];
      sum_hi_[a] = suppressed_[id] ? kInfinity : published_[id];
    }
  }

  // Empty when every suppressed entry takes two values; otherwise what the
  // attacker learnt, or that the search ran out of budget.
  std::string Check() {
    seen_.assign(l_.num_entries(), {});
    if (!Dfs(lo_, hi_, sum_lo_, sum_hi_)) {
      return nodes_ > kBudget ? "search budget exhausted" : "no consistent table at all";
    }
    for (uint32_t e = 0; e < l_.num_entries(); ++e) {
      if (!suppressed_[e] || seen_[e].size() >= 2) continue;
      const int64_t v0 = *seen_[e].begin();
      bool found = false;
      for (int side : {-1, +1}) {
        std::vector<int64_t> lo = lo_, hi = hi_, slo = sum_lo_, shi = sum_hi_;
        std::vector<int64_t>& bound =
            e < l_.num_cells ? (side < 0 ? hi : lo) : (side < 0 ? shi : slo);
        bound[e < l_.num_cells ? e : e - l_.num_cells] = v0 + side;
        if (Dfs(std::move(lo), std::move(hi), std::move(slo), std::move(shi))) {
          found = true;
          break;
        }
      }
      if (nodes_ > kBudget) return "search budget exhausted";
      if (!found) return "entry " + std::to_string(e) + " is always " + std::to_string(v0);
    }
    return {};
  }

  uint64_t tables() const { return tables_; }

  // Whether `t` (the true table) is consistent with what is published.
  bool Consistent(const Table& t) const {
    for (uint32_t c = 0; c < l_.num_cells; ++c) {
      const int64_t v = static_cast<int64_t>(t.counts[c]);
      if (suppressed_[c] ? v < 1 : v != published_[c]) return false;
    }
    for (size_t a = 0; a < l_.agg_cells.size(); ++a) {
      int64_t sum = 0;
      for (uint32_t c : l_.agg_cells[a]) sum += static_cast<int64_t>(t.counts[c]);
      if (sum < sum_lo_[a] || sum > sum_hi_[a]) return false;
    }
    return true;
  }

 private:
  static constexpr uint64_t kBudget = 50'000'000;
  static constexpr int64_t kInfinity = int64_t{1} << 40;

  // Narrows the cell domains [lo, hi] by every aggregate's bounds on its
  // sum until nothing changes; false when some domain becomes empty.
  bool Propagate(std::vector<int64_t>& lo, std::vector<int64_t>& hi,
                 const std::vector<int64_t>& slo, const std::vector<int64_t>& shi) const {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t a = 0; a < l_.agg_cells.size(); ++a) {
        int64_t min_sum = 0, max_sum = 0;
        for (uint32_t c : l_.agg_cells[a]) {
          min_sum += lo[c];
          max_sum += hi[c];
        }
        if (min_sum > shi[a] || max_sum < slo[a]) return false;
        for (uint32_t c : l_.agg_cells[a]) {
          const int64_t new_hi = std::min(hi[c], shi[a] - (min_sum - lo[c]));
          const int64_t new_lo = std::max(lo[c], slo[a] - (max_sum - hi[c]));
          if (new_lo > new_hi) return false;
          if (new_hi != hi[c] || new_lo != lo[c]) {
            min_sum += new_lo - lo[c];
            max_sum += new_hi - hi[c];
            lo[c] = new_lo;
            hi[c] = new_hi;
            changed = true;
          }
        }
      }
    }
    return true;
  }

  // Finds one consistent table within the bounds, branching on the
  // smallest open domain; records the values of every suppressed entry.
  bool Dfs(std::vector<int64_t> lo, std::vector<int64_t> hi, std::vector<int64_t> slo,
           std::vector<int64_t> shi) {
    if (++nodes_ > kBudget) return false;
    if (!Propagate(lo, hi, slo, shi)) return false;
    uint32_t branch = UINT32_MAX;
    for (uint32_t c = 0; c < l_.num_cells; ++c) {
      if (lo[c] < hi[c] && (branch == UINT32_MAX || hi[c] - lo[c] < hi[branch] - lo[branch])) {
        branch = c;
      }
    }
    if (branch == UINT32_MAX) return Leaf(lo);
    for (int64_t v = lo[branch]; v <= hi[branch]; ++v) {
      std::vector<int64_t> l2 = lo, h2 = hi;
      l2[branch] = h2[branch] = v;
      if (Dfs(std::move(l2), std::move(h2), slo, shi)) return true;
      if (nodes_ > kBudget) return false;
    }
    return false;
  }

  bool Leaf(const std::vector<int64_t>& x) {
    ++tables_;
    for (uint32_t e = 0; e < l_.num_entries(); ++e) {
      if (!suppressed_[e] || seen_[e].size() >= 2) continue;
      int64_t v = 0;
      if (e < l_.num_cells) {
        v = x[e];
      } else {
        for (uint32_t c : l_.agg_cells[e - l_.num_cells]) v += x[c];
      }
      seen_[e].insert(v);
    }
    return true;
  }

  Layout l_;
  std::vector<bool> suppressed_;
  std::vector<int64_t> published_;
  std::vector<int64_t> lo_, hi_;          // per cell
  std::vector<int64_t> sum_lo_, sum_hi_;  // per aggregate
  std::vector<std::set<int64_t>> seen_;
  uint64_t nodes_ = 0, tables_ = 0;
};

// Checks everything a published table promises; returns the problem or "".
// Adds the number of consistent tables the attacker found to *tables.
std::string Audit(const Table& t, const Published& p, uint64_t* tables = nullptr) {
  for (uint32_t id = 0; id < p.cells.size() + p.margins.size() + 1; ++id) {
    const Cell& c = Entry(p, id);
    if (!c.suppressed && c.value != 0 && c.value < p.k) return "a published value below k";
    if (c.suppressed && c.value != 0) return "a suppressed entry carries its value";
    if (c.suppressed && c.why == Cell::Why::kNone) return "a suppressed entry without a reason";
  }
  const Result<std::vector<bool>> determined = internal::DeterminedEntries(p);
  if (!determined.ok()) return determined.status().ToString();
  for (uint32_t id : SuppressedIds(p)) {
    if ((*determined)[id]) return "the rank test determines entry " + std::to_string(id);
  }
  Attacker attacker(p);
  if (!attacker.Consistent(t)) return "the true table is not consistent with the publication";
  std::string problem = attacker.Check();
  if (tables) *tables += attacker.tables();
  return problem;
}

// ---------------------------------------------------------------------------
// Tabulate.

TEST_CASE("Tabulate counts rows with categories in first-seen order") {
  Result<Table> t = Tabulate({{"entity", {}, {}}, {"sex", {}, {}}},
                             {{"29", "F"}, {"21", "M"}, {"29", "F"}, {"29", "M"}});
  REQUIRE(t.ok());
  CHECK(t->dims[0].categories == std::vector<std::string>{"29", "21"});
  CHECK(t->dims[1].categories == std::vector<std::string>{"F", "M"});
  CHECK(t->dims[0].labels == t->dims[0].categories);  // no labels given: the codes
  CHECK(t->counts == std::vector<uint64_t>{2, 1, 0, 1});
}

TEST_CASE("Tabulate keeps pre-filled categories and counts other values as Unknown") {
  Dimension sex{"sex", {"F", "M"}, {"Mujer", "Hombre"}};
  Result<Table> t = Tabulate({sex}, {{"M"}, {"X"}, {"M"}, {""}});
  REQUIRE(t.ok());
  CHECK(t->dims[0].categories == std::vector<std::string>{"F", "M", "Unknown"});
  CHECK(t->dims[0].labels == std::vector<std::string>{"Mujer", "Hombre", "Unknown"});
  CHECK(t->counts == std::vector<uint64_t>{0, 2, 2});

  // A pre-filled Unknown keeps its place and label; no second one is added.
  Dimension sex2{"sex", {"Unknown", "F"}, {"Desconocido", "Mujer"}};
  t = Tabulate({sex2}, {{"F"}, {"?"}});
  REQUIRE(t.ok());
  CHECK(t->dims[0].categories == std::vector<std::string>{"Unknown", "F"});
  CHECK(t->counts == std::vector<uint64_t>{1, 1});

  // Pre-filled categories with no rows give a table of zeros.
  t = Tabulate({sex}, {});
  REQUIRE(t.ok());
  CHECK(t->counts == std::vector<uint64_t>{0, 0});
}

TEST_CASE("Tabulate refuses malformed dimensions and rows") {
  CHECK(Tabulate({}, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(
      Tabulate({{"a", {}, {}}, {"b", {}, {}}, {"c", {}, {}}, {"d", {}, {}}}, {}).status().code() ==
      StatusCode::kInvalidArgument);
  CHECK(Tabulate({{"", {}, {}}}, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Tabulate({{"a", {"x", "x"}, {}}}, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Tabulate({{"a", {"x", "y"}, {"X"}}}, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Tabulate({{"a", {}, {"X"}}}, {}).status().code() == StatusCode::kInvalidArgument);
  const Result<Table> wide = Tabulate({{"a", {}, {}}}, {{"x"}, {"x", "y"}});
  CHECK(wide.status().code() == StatusCode::kInvalidArgument);
  CHECK(wide.status().message().find("row 2") != std::string::npos);
  // More than kMaxCells cells.
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < 101; ++i) rows.push_back({std::to_string(i), std::to_string(i)});
  CHECK(Tabulate({{"a", {}, {}}, {"b", {}, {}}}, rows).status().code() ==
        StatusCode::kResourceExhausted);
}

// ---------------------------------------------------------------------------
// Suppression with known answers.

std::vector<bool> SuppressedCells(const Published& p) {
  std::vector<bool> s;
  for (const Cell& c : p.cells) s.push_back(c.suppressed);
  return s;
}

TEST_CASE("Suppress refuses k below 2 and malformed tables") {
  CHECK(Suppress(MakeTable({2}, {1, 2}), 1).status().code() == StatusCode::kInvalidArgument);
  CHECK(Suppress(MakeTable({2}, {1, 2}), 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(Suppress(MakeTable({2}, {1, 2, 3}), 11).status().code() == StatusCode::kInvalidArgument);
  CHECK(Suppress(Table{}, 11).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("no suppression when every nonzero count is at least k") {
  const Table t1 = MakeTable({4}, {11, 0, 30, 12});
  const Published p1 = MustSuppress(t1);
  CHECK(SuppressedIds(p1).empty());
  CHECK(p1.cells[1].value == 0);
  CHECK(p1.total.value == 53);
  CHECK(p1.margins.empty());

  const Table t2 = MakeTable({2, 3}, {11, 0, 12, 40, 13, 0});
  const Published p2 = MustSuppress(t2);
  CHECK(SuppressedIds(p2).empty());
  REQUIRE(p2.margins.size() == 5);
  CHECK(p2.margins[0].index == std::vector<size_t>{0, kAll});
  CHECK(p2.margins[0].value == 23);
  CHECK(p2.margins[2].index == std::vector<size_t>{kAll, 0});
  CHECK(p2.margins[2].value == 51);
  CHECK(p2.total.value == 76);
  CHECK(p2.total.index == std::vector<size_t>{kAll, kAll});
  CHECK(Audit(t2, p2).empty());
}

TEST_CASE("a single small cell in a list gets the smallest other cell as complement") {
  const Table t = MakeTable({3}, {5, 20, 30});
  const Published p = MustSuppress(t);
  CHECK(SuppressedCells(p) == std::vector<bool>{true, true, false});
  CHECK(p.cells[0].why == Cell::Why::kPrimary);
  CHECK(p.cells[1].why == Cell::Why::kComplementary);
  CHECK(p.cells[1].value == 0);  // a suppressed count is not kept
  CHECK(p.cells[2].value == 30);
  CHECK(p.total.value == 55);
  CHECK(Audit(t, p).empty());
}

TEST_CASE("two small cells protect each other unless both must be 1") {
  const Table t = MakeTable({3}, {5, 3, 30});
  const Published p = MustSuppress(t);
  CHECK(SuppressedCells(p) == std::vector<bool>{true, true, false});
  CHECK(p.cells[1].why == Cell::Why::kPrimary);
  CHECK(Audit(t, p).empty());

  // 1 + 1 = 2 with both at least 1 pins both: a third cell is needed.
  const Table ones = MakeTable({3}, {1, 1, 30});
  const Published q = MustSuppress(ones);
  CHECK(SuppressedCells(q) == std::vector<bool>{true, true, true});
  CHECK(q.cells[2].why == Cell::Why::kComplementary);
  CHECK_FALSE(q.total.suppressed);
  CHECK(Audit(ones, q).empty());
}

TEST_CASE("a small total is suppressed and zeros stay published") {
  const Table t = MakeTable({3}, {3, 0, 2});
  const Published p = MustSuppress(t);
  CHECK(SuppressedCells(p) == std::vector<bool>{true, false, true});
  CHECK(p.total.suppressed);
  CHECK(p.total.why == Cell::Why::kPrimary);
  CHECK(p.cells[1].value == 0);
  CHECK(Audit(t, p).empty());
}

TEST_CASE("a small cell in a two-way table gets the cheapest rectangle of complements") {
  // The cheapest rectangle through (0,0): (0,1) 20, (1,0) 25, (1,1) 40.
  const Table t = MakeTable({3, 3}, {5, 20, 30, 25, 40, 50, 12, 60, 70});
  const Published p = MustSuppress(t);
  CHECK(SuppressedCells(p) ==
        std::vector<bool>{true, true, false, true, true, false, false, false, false});
  for (const Cell& m : p.margins) CHECK_FALSE(m.suppressed);
  CHECK_FALSE(p.total.suppressed);
  CHECK(Audit(t, p).empty());
}

TEST_CASE("a small row total is suppressed with another row total as its complement") {
  const Table t = MakeTable({3, 3}, {3, 4, 0, 20, 30, 40, 25, 35, 45});
  const Published p = MustSuppress(t);
  REQUIRE(p.margins.size() == 6);
  CHECK(p.margins[0].suppressed);  // row 0: 7
  CHECK(p.margins[0].why == Cell::Why::kPrimary);
  CHECK(p.margins[1].suppressed);  // row 1: 90, cheaper than row 2 (105) or the total
  CHECK(p.margins[1].why == Cell::Why::kComplementary);
  CHECK_FALSE(p.margins[2].suppressed);
  CHECK_FALSE(p.total.suppressed);
  CHECK_FALSE(p.cells[2].suppressed);  // the zero
  CHECK(Audit(t, p).empty());
}

TEST_CASE("a small cell in a three-way table gets the cheapest four-cell move") {
  // Only one-way margins are published; the cheapest move through (0,0,0)
  // uses (0,0,1) 20, (0,1,0) 21 and (0,1,1) 40.
  const Table t = MakeTable({2, 2, 2}, {3, 20, 21, 40, 22, 41, 42, 60});
  const Published p = MustSuppress(t);
  CHECK(SuppressedCells(p) ==
        std::vector<bool>{true, true, true, true, false, false, false, false});
  REQUIRE(p.margins.size() == 6);
  CHECK(p.margins[0].index == std::vector<size_t>{0, kAll, kAll});
  CHECK(p.margins[5].index == std::vector<size_t>{kAll, kAll, 1});
  for (const Cell& m : p.margins) CHECK_FALSE(m.suppressed);
  CHECK(Audit(t, p).empty());
}

TEST_CASE("the rank test finds entries the published relations determine") {
  // One suppressed cell in a list with its total published: determined.
  Published p = MustSuppress(MakeTable({3}, {20, 30, 40}));
  p.cells[0].suppressed = true;
  Result<std::vector<bool>> d = internal::DeterminedEntries(p);
  REQUIRE(d.ok());
  CHECK((*d)[0]);
  // Two suppressed cells: neither is determined.
  p.cells[1].suppressed = true;
  d = internal::DeterminedEntries(p);
  REQUIRE(d.ok());
  CHECK_FALSE((*d)[0]);
  CHECK_FALSE((*d)[1]);

  // 2 x 2: a rectangle of four is safe, three are not (each is its row's
  // or column's last unknown).
  Published q = MustSuppress(MakeTable({2, 2}, {20, 30, 40, 50}));
  for (size_t i = 0; i < 3; ++i) q.cells[i].suppressed = true;
  d = internal::DeterminedEntries(q);
  REQUIRE(d.ok());
  CHECK(((*d)[0] && (*d)[1] && (*d)[2]));
  q.cells[3].suppressed = true;
  d = internal::DeterminedEntries(q);
  REQUIRE(d.ok());
  for (size_t i = 0; i < 4; ++i) CHECK_FALSE((*d)[i]);
  // A suppressed row total with both its cells published is determined.
  Published r = MustSuppress(MakeTable({2, 2}, {20, 30, 40, 50}));
  r.margins[0].suppressed = true;
  d = internal::DeterminedEntries(r);
  REQUIRE(d.ok());
  CHECK((*d)[4]);
}

TEST_CASE("the attacker finds values the publication discloses") {
  // The attacker must be able to fail: primary suppression alone leaks.
  const Table t = MakeTable({3}, {5, 20, 30});
  Published p = MustSuppress(t);
  p.cells[1].suppressed = false;
  p.cells[1].value = 20;
  CHECK(Attacker(p).Check().find("always 5") != std::string::npos);

  // Pinned by bounds, not by the linear relations: 1 + 1 = 2.
  const Table ones = MakeTable({3}, {1, 1, 30});
  Published q = MustSuppress(ones);
  q.cells[2].suppressed = false;
  q.cells[2].value = 30;
  CHECK_FALSE(internal::DeterminedEntries(q).value()[0]);
  CHECK(Attacker(q).Check().find("always 1") != std::string::npos);

  // In two dimensions: the rectangle without its fourth corner.
  const Table sq = MakeTable({3, 3}, {5, 20, 30, 25, 40, 50, 12, 60, 70});
  Published r = MustSuppress(sq);
  r.cells[4].suppressed = false;
  r.cells[4].value = 40;
  CHECK_FALSE(Attacker(r).Check().empty());
}

// ---------------------------------------------------------------------------
// Brute force on random tables.

TEST_CASE("brute force: no suppressed entry of a random table can be recovered") {
  std::mt19937_64 rng(20260411);
  auto draw = [&](int style) -> uint64_t {
    switch (style) {
      case 0:  // small cells common
        return std::uniform_int_distribution<uint64_t>(0, 25)(rng);
      case 1:  // mostly tiny: small margins and totals
        return std::uniform_int_distribution<uint64_t>(0, 5)(rng);
      default: {  // zeros, ones and large counts
        const uint64_t r = std::uniform_int_distribution<uint64_t>(0, 9)(rng);
        return r < 3 ? 0 : r < 6 ? 1 : std::uniform_int_distribution<uint64_t>(2, 40)(rng);
      }
    }
  };
  struct Shape {
    std::vector<size_t> sizes;
    int count;
  };
  std::vector<Shape> shapes;
  for (size_t n = 1; n <= 5; ++n) shapes.push_back({{n}, 300});
  for (size_t r = 1; r <= 4; ++r) {
    for (size_t c = 1; c <= 4; ++c) shapes.push_back({{r, c}, 150});
  }
  shapes.push_back({{2, 2, 2}, 1500});
  shapes.push_back({{2, 3, 2}, 1500});
  shapes.push_back({{3, 3, 2}, 300});

  size_t checked = 0, with_suppression = 0, complements = 0;
  uint64_t tables_seen = 0;
  for (const Shape& shape : shapes) {
    size_t cells = 1;
    for (size_t s : shape.sizes) cells *= s;
    for (int i = 0; i < shape.count; ++i) {
      const int style = i % 3;
      const uint32_t k = i % 5 == 4 ? 3 : i % 7 == 6 ? 2 : kDefaultK;
      std::vector<uint64_t> counts(cells);
      for (uint64_t& c : counts) c = draw(style);
      const Table t = MakeTable(shape.sizes, counts);
      const Published p = MustSuppress(t, k);
      const std::string problem = Audit(t, p, &tables_seen);
      std::string shown;
      for (uint64_t c : counts) shown += std::to_string(c) + " ";
      INFO("shape " << shape.sizes.size() << "-D, k " << k << ", table " << i << ": " << shown);
      CHECK_MESSAGE(problem.empty(), problem);
      ++checked;
      if (!SuppressedIds(p).empty()) ++with_suppression;
      for (uint32_t id : SuppressedIds(p)) {
        if (Entry(p, id).why == Cell::Why::kComplementary) ++complements;
      }
    }
  }
  std::printf(
      "brute force: %zu random tables checked (%zu with suppression, %zu complements); "
      "%llu consistent tables enumerated\n",
      checked, with_suppression, complements, static_cast<unsigned long long>(tables_seen));
  CHECK(with_suppression > checked / 2);
  CHECK(complements > 0);
}

// ---------------------------------------------------------------------------
// Renderers.

// Dimensions with labels that need escaping in every format.
Table Tricky() {
  Table t;
  t.dims.push_back(
      {"entity", {"29", "21", "09"}, {"Tlaxcala", "Puebla & <Sur>", "Ciudad de México"}});
  t.dims.push_back({"type", {"Sexual", "Labour"}, {"Explotación, sexual", "=Laboral \"forzado\""}});
  t.counts = {5, 40, 25, 60, 30, 45};
  return t;
}

Published StripReasons(Published p) {
  for (Cell& c : p.cells) c.why = Cell::Why::kNone;
  for (Cell& c : p.margins) c.why = Cell::Why::kNone;
  p.total.why = Cell::Why::kNone;
  return p;
}

TEST_CASE("JSON round trip: ParseJson(RenderJson(p)) == p") {
  std::mt19937_64 rng(7);
  size_t n = 0;
  for (const std::vector<size_t>& sizes :
       std::vector<std::vector<size_t>>{{1}, {4}, {2, 3}, {4, 4}, {2, 2, 2}, {3, 2, 4}}) {
    size_t cells = 1;
    for (size_t s : sizes) cells *= s;
    for (int i = 0; i < 20; ++i) {
      std::vector<uint64_t> counts(cells);
      for (uint64_t& c : counts) c = std::uniform_int_distribution<uint64_t>(0, 30)(rng);
      Published p = MustSuppress(MakeTable(sizes, counts));
      p.title = "Víctimas por entidad";
      p.from = "2026-01-01";
      p.to = "2026-01-31";
      p.generated_at = "2026-02-01T10:00:00Z";
      const std::string json = RenderJson(p);
      const Result<Published> back = ParseJson(json);
      REQUIRE_MESSAGE(back.ok(), back.status().ToString());
      CHECK(*back == StripReasons(p));
      CHECK(RenderJson(*back) == json);
      ++n;
    }
  }
  const Published tricky = MustSuppress(Tricky());
  const Result<Published> back = ParseJson(RenderJson(tricky));
  REQUIRE(back.ok());
  CHECK(*back == StripReasons(tricky));
  CHECK(n == 120);
}

TEST_CASE("JSON never carries a suppressed value, nor why it was suppressed") {
  const Table t = MakeTable({3, 3}, {5, 20, 30, 25, 40, 50, 12, 60, 70});
  const Published p = MustSuppress(t);
  const nlohmann::json j = nlohmann::json::parse(RenderJson(p));
  CHECK(j["version"] == 1);
  CHECK(j["k"] == 11);
  size_t suppressed = 0;
  for (const char* list : {"cells", "margins"}) {
    for (const auto& e : j[list]) {
      CHECK_FALSE(e.contains("why"));
      CHECK(e["suppressed"].get<bool>() == e["value"].is_null());
      if (e["value"].is_null()) ++suppressed;
      if (!e["value"].is_null()) {
        const uint64_t v = e["value"].get<uint64_t>();
        CHECK((v == 0 || v >= 11));
      }
    }
  }
  CHECK(suppressed == 4);
  CHECK(j["margins"][0]["index"][1].is_null());
  CHECK(j["total"] == 312);
  // The hidden counts (5, 20, 25, 40) appear nowhere as values.
  for (const auto& e : j["cells"]) {
    if (!e["value"].is_null()) {
      for (uint64_t hidden : {5, 20, 25, 40}) CHECK(e["value"] != hidden);
    }
  }
}

TEST_CASE("ParseJson refuses malformed and unsafe reports") {
  const Published p = MustSuppress(MakeTable({3}, {5, 20, 30}));
  const std::string good = RenderJson(p);
  REQUIRE(ParseJson(good).ok());
  auto edited = [&](auto&& edit) {
    nlohmann::json j = nlohmann::json::parse(good);
    edit(j);
    return ParseJson(j.dump());
  };
  auto refused = [](const Result<Published>& r, std::string_view words) {
    INFO("expected a refusal naming: " << words);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_MESSAGE(r.status().message().find(words) != std::string::npos, r.status().message());
  };
  refused(ParseJson("{"), "well-formed");
  refused(ParseJson("[]"), "object");
  refused(edited([](auto& j) { j["version"] = 2; }), "version");
  refused(edited([](auto& j) { j["k"] = 1; }), "\"k\"");
  refused(edited([](auto& j) { j["extra"] = 1; }), "unknown member");
  refused(edited([](auto& j) { j["dims"] = nlohmann::json::array(); }), "dims");
  refused(edited([](auto& j) { j["dims"][0]["categories"][1] = "c0"; }), "twice");
  // A published value below k.
  refused(edited([](auto& j) {
            j["cells"][0]["value"] = 5;
            j["cells"][0]["suppressed"] = false;
          }),
          "below k");
  // A value with "suppressed": true, or null without it.
  refused(edited([](auto& j) { j["cells"][1]["value"] = 20; }), "suppressed");
  refused(edited([](auto& j) { j["cells"][2]["suppressed"] = true; }), "suppressed");
  // A missing or duplicated cell, an index out of range.
  refused(edited([](auto& j) { j["cells"].erase(2); }), "missing");
  refused(edited([](auto& j) { j["cells"][2]["index"][0] = 1; }), "twice");
  refused(edited([](auto& j) { j["cells"][2]["index"][0] = 7; }), "out of range");
  refused(edited([](auto& j) { j["total"] = 31; }), "add up");  // 30 + at least 1 + 1
  // Unsuppressing the complement makes the primary cell recomputable.
  refused(edited([](auto& j) {
            j["cells"][1]["value"] = 20;
            j["cells"][1]["suppressed"] = false;
          }),
          "recomputed");
  // "why" from other writers is accepted and dropped.
  const Result<Published> with_why = edited([](auto& j) { j["cells"][0]["why"] = "primary"; });
  REQUIRE(with_why.ok());
  CHECK(with_why->cells[0].why == Cell::Why::kNone);
}

TEST_CASE("the text table shows <11 for suppressed entries and aligns the columns") {
  const Table t = MakeTable({3, 3}, {5, 20, 30, 25, 40, 50, 12, 60, 70});
  Published p = MustSuppress(t);
  p.title = "Víctimas";
  p.from = "2026-01-01";
  p.to = "2026-01-31";
  const std::string text = RenderText(p);
  CHECK(text.find("Víctimas\n2026-01-01 – 2026-01-31\n") == 0);
  CHECK(text.find("<11") != std::string::npos);
  CHECK(text.find("Total") != std::string::npos);
  CHECK(text.find("312") != std::string::npos);
  // Hidden counts do not appear.
  CHECK(text.find(" 5 ") == std::string::npos);
  CHECK(text.find("40") == std::string::npos);
  // The matrix lines (after the heading) share one width.
  std::vector<std::string> lines;
  size_t start = text.find("\n\n") + 2;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(text.substr(start, nl - start));
  }
  REQUIRE(lines.size() == 5);  // header, 3 rows, total row
  CHECK(lines[0].rfind("d0 \\ d1", 0) == 0);
  for (const std::string& line : lines) CHECK(line.size() == lines[0].size());
  CHECK(lines[4].rfind("Total", 0) == 0);

  // 1 and 3 dimensions.
  const std::string one = RenderText(MustSuppress(MakeTable({3}, {5, 20, 30})));
  CHECK(one == "d0       n\nL0     <11\nL1     <11\nL2      30\nTotal   55\n");
  const std::string three =
      RenderText(MustSuppress(MakeTable({2, 2, 2}, {3, 20, 21, 40, 22, 41, 42, 60})));
  CHECK(three.find("d0: L0  (Total 84)\n") == 0);
  CHECK(three.find("d0: L1  (Total 165)") != std::string::npos);
  CHECK(three.find("d1 \\ d2") != std::string::npos);
  CHECK(three.find("Total  249") != std::string::npos);
}

TEST_CASE("CSV is long format with Total rows, quoting and <11") {
  const Published p = MustSuppress(Tricky());
  const std::string csv = RenderCsv(p);
  std::vector<std::string> lines;
  for (size_t start = 0, nl; (nl = csv.find("\r\n", start)) != std::string::npos; start = nl + 2) {
    lines.push_back(csv.substr(start, nl - start));
  }
  // Header, 6 cells, 3 + 2 margins, the total.
  REQUIRE(lines.size() == 1 + 6 + 5 + 1);
  CHECK(lines[0] == "entity,type,count,suppressed");
  CHECK(lines[1] == "Tlaxcala,\"Explotación, sexual\",<11,true");
  CHECK(lines[2] == "Tlaxcala,\"'=Laboral \"\"forzado\"\"\",<11,true");
  CHECK(lines[3].rfind("Puebla & <Sur>,", 0) == 0);
  CHECK(lines[7] == "Tlaxcala,Total,45,false");
  CHECK(lines[10] == "Total,\"Explotación, sexual\",60,false");
  CHECK(lines[12] == "Total,Total,205,false");
  // Every value is published, "<11", and agrees with the JSON.
  const nlohmann::json j = nlohmann::json::parse(RenderJson(p));
  for (size_t i = 0; i < 6; ++i) {
    const auto& e = j["cells"][i];
    if (e["value"].is_null()) {
      CHECK(lines[1 + i].find(",<11,true") != std::string::npos);
    } else {
      CHECK(lines[1 + i].find("," + std::to_string(e["value"].get<uint64_t>()) + ",false") !=
            std::string::npos);
    }
  }
}

// A small XML well-formedness check: balanced tags, one root, quoted
// attributes, no raw '<' or bare '&' in text or attribute values.
std::string XmlProblem(const std::string& x) {
  std::vector<std::string> stack;
  size_t i = 0, roots = 0;
  auto entity_ok = [&](size_t at) {
    const size_t semi = x.find(';', at);
    if (semi == std::string::npos) return false;
    const std::string e = x.substr(at + 1, semi - at - 1);
    return e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos" ||
           (e.size() > 1 && e[0] == '#');
  };
  if (x.rfind("<?xml", 0) == 0) i = x.find("?>") + 2;
  while (i < x.size()) {
    if (x[i] == '&') {
      if (!entity_ok(i)) return "bare & at " + std::to_string(i);
      ++i;
      continue;
    }
    if (x[i] != '<') {
      if (x[i] == '>') return "raw > in text at " + std::to_string(i);
      ++i;
      continue;
    }
    if (x.compare(i, 4, "<!--") == 0) {
      i = x.find("-->", i) + 3;
      continue;
    }
    const bool closing = x[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < x.size() &&
           (std::isalnum(static_cast<unsigned char>(x[j])) || x[j] == ':' || x[j] == '-'))
      ++j;
    const std::string name = x.substr(name_start, j - name_start);
    if (name.empty()) return "raw < at " + std::to_string(i);
    if (closing) {
      if (stack.empty() || stack.back() != name) return "unbalanced </" + name + ">";
      stack.pop_back();
      i = x.find('>', j) + 1;
      continue;
    }
    // Attributes.
    for (;;) {
      while (j < x.size() && std::isspace(static_cast<unsigned char>(x[j]))) ++j;
      if (j >= x.size()) return "unterminated tag " + name;
      if (x[j] == '>' || x.compare(j, 2, "/>") == 0) break;
      const size_t eq = x.find('=', j);
      if (eq == std::string::npos || x[eq + 1] != '"') return "unquoted attribute in " + name;
      const size_t end = x.find('"', eq + 2);
      for (size_t v = eq + 2; v < end; ++v) {
        if (x[v] == '<') return "raw < in an attribute of " + name;
        if (x[v] == '&' && !entity_ok(v)) return "bare & in an attribute of " + name;
      }
      j = end + 1;
    }
    if (stack.empty()) ++roots;
    if (x[j] == '>') {
      stack.push_back(name);
      i = j + 1;
    } else {
      i = j + 2;
    }
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "not one root element";
  return {};
}

TEST_CASE("the XML checker catches broken markup") {
  CHECK(XmlProblem("<svg><g></svg>") != "");
  CHECK(XmlProblem("<svg>a < b</svg>") != "");
  CHECK(XmlProblem("<svg>a & b</svg>") != "");
  CHECK(XmlProblem("<svg x=\"<\"/>") != "");
  CHECK(XmlProblem("<svg/><svg/>") != "");
  CHECK(XmlProblem("<svg x=\"1\"><g/>a &amp; b</svg>") == "");
}

TEST_CASE("SVG is a standalone, well-formed chart with escaped labels and hatched <11 bars") {
  const Published p = MustSuppress(Tricky());
  const std::string svg = RenderSvg(p, "Víctimas & <tipos>");
  CHECK_MESSAGE(XmlProblem(svg) == "", XmlProblem(svg));
  CHECK(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(svg.find("Víctimas &amp; &lt;tipos&gt;") != std::string::npos);
  CHECK(svg.find("Puebla &amp; &lt;Sur&gt;") != std::string::npos);
  CHECK(svg.find("Puebla & <Sur>") == std::string::npos);
  CHECK(svg.find("&lt;11") != std::string::npos);
  CHECK(svg.find("url(#hatch)") != std::string::npos);
  CHECK(svg.find("=Laboral &quot;forzado&quot;") != std::string::npos);  // legend
  // Width and height are sensible.
  const auto attr = [&](const char* name) {
    const size_t at = svg.find(std::string(" ") + name + "=\"");
    return std::stod(svg.substr(at + std::strlen(name) + 3));
  };
  CHECK(attr("width") >= 300);
  CHECK(attr("width") <= 4000);
  CHECK(attr("height") >= 200);
  CHECK(attr("height") <= 2000);

  // 32 federal entities x 8 types stays a sensible size.
  const std::string wide =
      RenderSvg(MustSuppress(MakeTable({32, 8}, std::vector<uint64_t>(256, 20))), "");
  CHECK(XmlProblem(wide) == "");
  const size_t at = wide.find(" width=\"");
  CHECK(std::stod(wide.substr(at + 8)) <= 2600);

  // 1 and 3 dimensions, many series and a title from the Published.
  for (const Table& t : {MakeTable({5}, {0, 5, 30, 120, 11}),
                         MakeTable({2, 3, 2}, {3, 20, 21, 40, 22, 41, 42, 60, 0, 1, 13, 14}),
                         MakeTable({2, 12}, std::vector<uint64_t>(24, 15))}) {
    Published q = MustSuppress(t);
    q.title = "T";
    const std::string s = RenderSvg(q, "");
    CHECK_MESSAGE(XmlProblem(s) == "", XmlProblem(s));
    CHECK(s.find("<title>T</title>") != std::string::npos);
  }
}

TEST_CASE("larger random tables pass the rank test and the publishing checks") {
  // Too large for the brute-force attacker: the exact rank test, the
  // certificates Suppress checks itself, and ParseJson's checks.
  std::mt19937_64 rng(99);
  size_t tables = 0;
  for (const std::vector<size_t>& sizes : std::vector<std::vector<size_t>>{
           {40}, {6, 6}, {8, 5}, {12, 10}, {3, 4, 5}, {4, 4, 4}, {6, 5, 3}}) {
    size_t cells = 1;
    for (size_t s : sizes) cells *= s;
    for (int i = 0; i < 40; ++i) {
      const uint64_t small = i % 2 ? 6 : 40;  // many or few small counts
      std::vector<uint64_t> counts(cells);
      for (uint64_t& c : counts) c = std::uniform_int_distribution<uint64_t>(0, small)(rng);
      const Published p = MustSuppress(MakeTable(sizes, counts));
      const Result<std::vector<bool>> d = internal::DeterminedEntries(p);
      REQUIRE(d.ok());
      for (uint32_t id : SuppressedIds(p)) CHECK_FALSE((*d)[id]);
      const Result<Published> back = ParseJson(RenderJson(p));
      CHECK_MESSAGE(back.ok(), back.status().ToString());
      ++tables;
    }
  }
  CHECK(tables == 280);
}

TEST_CASE("a realistic three-way table is suppressed quickly and safely") {
  // 32 federal entities x 8 exploitation types x 3 genders, sparse.
  std::mt19937_64 rng(32);
  const Table t = MakeTable({32, 8, 3}, [&] {
    std::vector<uint64_t> c(32 * 8 * 3);
    for (uint64_t& v : c) {
      const uint64_t r = std::uniform_int_distribution<uint64_t>(0, 9)(rng);
      v = r < 4   ? 0
          : r < 7 ? std::uniform_int_distribution<uint64_t>(1, 10)(rng)
                  : std::uniform_int_distribution<uint64_t>(11, 200)(rng);
    }
    return c;
  }());
  const Published p = MustSuppress(t);
  size_t primary = 0, complementary = 0;
  for (uint32_t id : SuppressedIds(p)) {
    (Entry(p, id).why == Cell::Why::kPrimary ? primary : complementary)++;
  }
  MESSAGE("32x8x3: " << primary << " primary, " << complementary << " complementary");
  CHECK(primary > 0);
  const Result<std::vector<bool>> d = internal::DeterminedEntries(p);
  REQUIRE(d.ok());
  for (uint32_t id : SuppressedIds(p)) CHECK_FALSE((*d)[id]);
  CHECK(ParseJson(RenderJson(p)).ok());
}

}  // namespace
}  // namespace enlace::report
