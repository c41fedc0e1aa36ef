// The table arithmetic and the disclosure tests of enlace/disclosure.h.
// The rank test is fraction-free Gauss-Jordan elimination over the integers;
// the bounds are interval propagation over the relations "aggregate = sum of
// its cells" (the constraint propagation of the attacker in
// tests/casework/report_test.cc, without the search). docs/REPORTS.md
// describes both.
#include "enlace/disclosure.h"

#include <algorithm>
#include <string>
#include <utility>

namespace enlace::disclosure {

// ---------------------------------------------------------------------------
// Layout.

uint32_t Layout::MarginId(size_t dim, size_t c) const {
  size_t offset = num_cells;
  for (size_t k = 0; k < dim; ++k) offset += sizes[k];
  return static_cast<uint32_t>(offset + c);
}

uint32_t Layout::CellId(const std::vector<size_t>& coords) const {
  size_t id = 0;
  for (size_t k = 0; k < sizes.size(); ++k) id = id * sizes[k] + coords[k];
  return static_cast<uint32_t>(id);
}

Layout MakeLayout(const std::vector<size_t>& sizes) {
  Layout l;
  l.sizes = sizes;
  const size_t d = sizes.size();
  l.num_cells = 1;
  for (size_t s : sizes) l.num_cells *= s;
  l.num_margins = 0;
  if (d >= 2) {
    for (size_t s : sizes) l.num_margins += s;
  }
  l.index.resize(l.num_entries());
  l.agg_cells.resize(l.num_margins + 1);
  l.cell_aggs.resize(l.num_cells);
  const uint32_t total = l.total_id();
  std::vector<size_t> coords(d, 0);
  for (uint32_t c = 0; c < l.num_cells; ++c) {
    l.index[c] = coords;
    if (d >= 2) {
      for (size_t k = 0; k < d; ++k) {
        const uint32_t m = l.MarginId(k, coords[k]);
        l.cell_aggs[c].push_back(m);
        l.agg_cells[m - l.num_cells].push_back(c);
      }
    }
    l.cell_aggs[c].push_back(total);
    l.agg_cells[total - l.num_cells].push_back(c);
    for (size_t k = d; k-- > 0;) {  // next index, the last dimension fastest
      if (++coords[k] < sizes[k]) break;
      coords[k] = 0;
    }
  }
  if (d >= 2) {
    for (size_t k = 0; k < d; ++k) {
      for (size_t c = 0; c < sizes[k]; ++c) {
        std::vector<size_t> index(d, kAll);
        index[k] = c;
        l.index[l.MarginId(k, c)] = std::move(index);
      }
    }
  }
  l.index[total] = std::vector<size_t>(d, kAll);
  return l;
}

// ---------------------------------------------------------------------------
// The rank test.

namespace {

int64_t Gcd(int64_t a, int64_t b) {
  a = a < 0 ? -a : a;
  b = b < 0 ? -b : b;
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Divides `row` by the gcd of its entries (the row space is unchanged).
void Normalize(std::vector<int64_t>& row) {
  int64_t g = 0;
  for (int64_t v : row) {
    if (v != 0) g = Gcd(g, v);
    if (g == 1) return;
  }
  if (g > 1) {
    for (int64_t& v : row) v /= g;
  }
}

}  // namespace

Result<std::vector<bool>> DeterminedEntries(const Layout& layout,
                                            const std::vector<bool>& suppressed) {
  const size_t n = layout.num_entries();
  if (suppressed.size() != n) {
    return Status::InvalidArgument("the suppression pattern does not match the table");
  }
  std::vector<bool> determined(n, false);
  std::vector<size_t> column(n, 0);
  std::vector<uint32_t> entry_of;
  for (uint32_t e = 0; e < n; ++e) {
    if (!suppressed[e]) continue;
    column[e] = entry_of.size();
    entry_of.push_back(e);
  }
  const size_t cols = entry_of.size();
  if (cols == 0) return determined;

  std::vector<std::vector<int64_t>> rows;
  for (size_t a = 0; a < layout.agg_cells.size(); ++a) {
    std::vector<int64_t> row(cols, 0);
    bool any = false;
    const size_t id = layout.num_cells + a;
    if (suppressed[id]) {
      row[column[id]] = 1;
      any = true;
    }
    for (uint32_t c : layout.agg_cells[a]) {
      if (!suppressed[c]) continue;
      row[column[c]] = -1;
      any = true;
    }
    if (any) rows.push_back(std::move(row));
  }

  // Gauss-Jordan elimination over the integers: row_r := a*row_r - b*pivot
  // with a, b the pivot and row_r's entry divided by their gcd.
  size_t rank = 0;
  for (size_t c = 0; c < cols && rank < rows.size(); ++c) {
    size_t p = rank;
    while (p < rows.size() && rows[p][c] == 0) ++p;
    if (p == rows.size()) continue;
    std::swap(rows[rank], rows[p]);
    const std::vector<int64_t>& pivot = rows[rank];
    for (size_t r = 0; r < rows.size(); ++r) {
      if (r == rank || rows[r][c] == 0) continue;
      const int64_t g = Gcd(pivot[c], rows[r][c]);
      const int64_t a = pivot[c] / g;
      const int64_t b = rows[r][c] / g;
      for (size_t j = 0; j < cols; ++j) {
        int64_t x = 0, y = 0;
        if (__builtin_mul_overflow(rows[r][j], a, &x) || __builtin_mul_overflow(pivot[j], b, &y) ||
            __builtin_sub_overflow(x, y, &rows[r][j])) {
          return Status::ResourceExhausted(
              "the suppression check overflowed; the table is too large");
        }
      }
      Normalize(rows[r]);
    }
    ++rank;
  }
  // In reduced row echelon form, e_j is in the row space iff some row is a
  // multiple of e_j.
  for (size_t r = 0; r < rank; ++r) {
    size_t nonzero = 0, at = 0;
    for (size_t j = 0; j < cols && nonzero < 2; ++j) {
      if (rows[r][j] != 0) {
        ++nonzero;
        at = j;
      }
    }
    if (nonzero == 1) determined[entry_of[at]] = true;
  }
  return determined;
}

// ---------------------------------------------------------------------------
// Bounds.

namespace {

constexpr int kMaxRounds = 100;

// The sums of the bounds of an aggregate's cells. A sum that would overflow
// is marked rather than wrapped: it then tightens nothing.
struct CellSums {
  uint64_t lo = 0;
  bool lo_overflow = false;
  uint64_t hi = 0;  // of the finite upper bounds
  size_t unbounded = 0;
  bool hi_overflow = false;
};

CellSums SumCells(const std::vector<uint32_t>& cells, const std::vector<Range>& range) {
  CellSums s;
  for (uint32_t c : cells) {
    const Range& r = range[c];
    s.lo_overflow = s.lo_overflow || __builtin_add_overflow(s.lo, r.lo, &s.lo);
    if (r.hi == kUnbounded) {
      ++s.unbounded;
    } else {
      s.hi_overflow = s.hi_overflow || __builtin_add_overflow(s.hi, r.hi, &s.hi);
    }
  }
  return s;
}

class Propagation {
 public:
  Propagation(const Layout& l, std::vector<Range>& range) : l_(l), range_(range) {}

  // One pass over every relation; false when one cannot hold (`failed` is
  // then its aggregate).
  bool Pass(bool& changed, uint32_t& failed) {
    changed_ = false;
    for (size_t i = 0; i < l_.agg_cells.size(); ++i) {
      const uint32_t a = static_cast<uint32_t>(l_.num_cells + i);
      if (!Relation(a, l_.agg_cells[i])) {
        failed = a;
        return false;
      }
    }
    changed = changed_;
    return true;
  }

 private:
  void Raise(uint64_t& lo, uint64_t v) {
    if (v > lo) {
      lo = v;
      changed_ = true;
    }
  }
  void Lower(uint64_t& hi, uint64_t v) {
    if (v < hi) {
      hi = v;
      changed_ = true;
    }
  }

  // aggregate a = the sum of `cells`: tightens a from its cells, then each
  // cell from a and the other cells.
  bool Relation(uint32_t a, const std::vector<uint32_t>& cells) {
    const CellSums s = SumCells(cells, range_);
    Range& agg = range_[a];
    if (!s.lo_overflow) Raise(agg.lo, s.lo);
    if (s.unbounded == 0 && !s.hi_overflow) Lower(agg.hi, s.hi);
    if (agg.lo > agg.hi) return false;
    for (uint32_t c : cells) {
      const Range before = range_[c];  // what `s` summed
      // c <= a's upper bound - the other cells' lower bounds.
      if (agg.hi != kUnbounded) {
        if (s.lo_overflow) return false;  // the lower bounds alone exceed a's upper bound
        const uint64_t others_lo = s.lo - before.lo;
        if (others_lo > agg.hi) return false;
        Lower(range_[c].hi, agg.hi - others_lo);
      }
      // c >= a's lower bound - the other cells' upper bounds.
      const size_t others_unbounded = s.unbounded - (before.hi == kUnbounded ? 1 : 0);
      if (others_unbounded == 0 && !s.hi_overflow) {
        const uint64_t others_hi = s.hi - (before.hi == kUnbounded ? 0 : before.hi);
        if (agg.lo > others_hi) Raise(range_[c].lo, agg.lo - others_hi);
      }
      if (range_[c].lo > range_[c].hi) return false;
    }
    return true;
  }

  const Layout& l_;
  std::vector<Range>& range_;
  bool changed_ = false;
};

}  // namespace

Result<Ranges> EntryRanges(const Layout& layout, const PublishedValues& published) {
  const size_t n = layout.num_entries();
  if (published.size() != n) {
    return Status::InvalidArgument("the published values do not match the table");
  }
  Ranges out;
  out.range.resize(n);
  for (size_t e = 0; e < n; ++e) {
    if (!published[e]) {
      out.range[e] = {1, kUnbounded};
    } else if (*published[e] == kUnbounded) {
      return Status::InvalidArgument("a published value is too large");
    } else {
      out.range[e] = {*published[e], *published[e]};
    }
  }
  Propagation propagation(layout, out.range);
  for (int round = 0; round < kMaxRounds; ++round) {
    bool changed = false;
    if (!propagation.Pass(changed, out.failed)) {
      out.consistent = false;
      return out;
    }
    if (!changed) break;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The verdict.

Result<Finding> CheckPublished(const Layout& layout, const PublishedValues& published) {
  const size_t n = layout.num_entries();
  if (published.size() != n) {
    return Status::InvalidArgument("the published values do not match the table");
  }
  std::vector<bool> suppressed(n);
  for (size_t e = 0; e < n; ++e) suppressed[e] = !published[e].has_value();
  ENLACE_ASSIGN_OR_RETURN(const std::vector<bool> determined,
                          DeterminedEntries(layout, suppressed));
  for (uint32_t e = 0; e < n; ++e) {
    if (determined[e]) return Finding{Finding::Kind::kDetermined, e};
  }
  ENLACE_ASSIGN_OR_RETURN(const Ranges ranges, EntryRanges(layout, published));
  if (!ranges.consistent) return Finding{Finding::Kind::kInconsistent, ranges.failed};
  for (uint32_t e = 0; e < n; ++e) {
    const Range& r = ranges.range[e];
    if (suppressed[e] && r.hi != kUnbounded && r.lo == r.hi) {
      return Finding{Finding::Kind::kPinned, e};
    }
  }
  return Finding{};
}

}  // namespace enlace::disclosure
