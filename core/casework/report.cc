// Tabulation and small-cell suppression (enlace/report.h). The method is
// described in docs/REPORTS.md; this file follows it:
//
// - An entry is a cell, a margin or the total. A consistent table is any
//   assignment of nonnegative integers to the cells that reproduces every
//   published entry; the attacker knows that each suppressed entry is >= 1
//   (zeros are published).
// - A suppressed entry is safe when some *move* exists: an integer change of
//   the suppressed cells that keeps every published entry, keeps every
//   suppressed entry >= 1, and changes the entry. Then the entry takes at
//   least two values among consistent tables (exactly what is required).
//   Every suppressed entry ends with such a move as its certificate, and the
//   certificates are re-checked at the end.
// - Moves are searched as cycles in the bipartite graph of a two-way table
//   extended by its totals (Cox 1980; Kelly, Golden and Assad 1992, the
//   network-flow view of cell suppression), weighted by the counts that
//   would have to be suppressed for the cycle to exist, so the cheapest
//   cycle names the complementary suppressions. In 2 dimensions this finds a
//   move whenever one exists (the relations form a totally unimodular
//   network matrix). 1 dimension needs only pairs; 3 dimensions use the
//   two-way slices of the cube plus the "hypercube" moves of 4 cells that
//   keep every one-way margin (Giessing and Repsilber 2002).
#include "enlace/report.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "casework/report_internal.h"

namespace enlace::report {

// ---------------------------------------------------------------------------
// The layout of a Published table (the arithmetic is enlace/disclosure.h).

static_assert(kAll == disclosure::kAll, "a margin's index means the same in both libraries");

namespace internal {

std::vector<size_t> Sizes(const std::vector<Dimension>& dims) {
  std::vector<size_t> sizes;
  for (const Dimension& d : dims) sizes.push_back(d.categories.size());
  return sizes;
}

Result<std::vector<bool>> DeterminedEntries(const Published& p) {
  const Layout layout = MakeLayout(Sizes(p.table.dims));
  if (p.cells.size() != layout.num_cells || p.margins.size() != layout.num_margins) {
    return Status::InvalidArgument("the report's entries do not match its dimensions");
  }
  std::vector<bool> suppressed;
  for (const Cell& c : p.cells) suppressed.push_back(c.suppressed);
  for (const Cell& c : p.margins) suppressed.push_back(c.suppressed);
  suppressed.push_back(p.total.suppressed);
  return DeterminedEntries(layout, suppressed);
}

}  // namespace internal

namespace {

using internal::Layout;

// ---------------------------------------------------------------------------
// Validation shared by Tabulate and Suppress.

Status CheckDims(const std::vector<Dimension>& dims, bool allow_empty_categories) {
  if (dims.empty() || dims.size() > kMaxDims) {
    return Status::InvalidArgument("a report has 1 to 3 dimensions, not " +
                                   std::to_string(dims.size()));
  }
  size_t cells = 1;
  for (const Dimension& d : dims) {
    if (d.name.empty()) return Status::InvalidArgument("a report dimension has no name");
    if (d.categories.empty() && !allow_empty_categories) {
      return Status::InvalidArgument("nothing to report: dimension \"" + d.name +
                                     "\" has no categories");
    }
    if (!d.labels.empty() && d.labels.size() != d.categories.size()) {
      return Status::InvalidArgument("dimension \"" + d.name + "\" has " +
                                     std::to_string(d.labels.size()) + " labels for " +
                                     std::to_string(d.categories.size()) + " categories");
    }
    std::vector<std::string> sorted = d.categories;
    std::sort(sorted.begin(), sorted.end());
    if (const auto it = std::adjacent_find(sorted.begin(), sorted.end()); it != sorted.end()) {
      return Status::InvalidArgument("dimension \"" + d.name + "\" lists the category \"" + *it +
                                     "\" twice");
    }
    if (!d.categories.empty()) {
      if (d.categories.size() > kMaxCells || cells > kMaxCells / d.categories.size()) {
        return Status::ResourceExhausted("the report would have more than " +
                                         std::to_string(kMaxCells) + " cells");
      }
      cells *= d.categories.size();
    }
  }
  return Status::Ok();
}

void FillLabels(std::vector<Dimension>& dims) {
  for (Dimension& d : dims) {
    if (d.labels.empty()) d.labels = d.categories;
    for (size_t i = 0; i < d.labels.size(); ++i) {
      if (d.labels[i].empty()) d.labels[i] = d.categories[i];
    }
  }
}

// ---------------------------------------------------------------------------
// Suppression.

struct Change {
  uint32_t entry;
  int64_t delta;
};
using Move = std::vector<Change>;  // deltas of cells; the aggregates follow

struct Eval {
  bool feasible = false;
  uint64_t cost = 0;            // the published counts the move needs suppressed
  uint32_t added = 0;           // how many entries that is
  std::vector<Change> changes;  // every entry (cell or aggregate) the move changes
};

bool Better(const Eval& a, const Eval& b) {
  return a.cost < b.cost || (a.cost == b.cost && a.added < b.added);
}

struct Candidate {
  Move move;
  Eval eval;
};

constexpr uint32_t kNoCell = UINT32_MAX;

// An edge of a plane graph: the entries it stands for, each with the sign
// of the entry in the extended table (cells +1, margins -1, total +1).
struct Edge {
  uint32_t cell = kNoCell;
  uint8_t n = 0;
  std::array<std::pair<uint32_t, int>, 2> members{};
};

// A two-way view of the table extended by its totals: rows 0..nr-1 and the
// totals row nr, columns 0..nc-1 and the totals column nc. Every row and
// column of the extended table sums to zero, so a move is a cycle in the
// bipartite graph row nodes x column nodes whose edges are the entries,
// alternately +1 (row -> column) and -1 (column -> row).
// In 2 dimensions there is one plane: the table. In 3 dimensions there is a
// plane per category s of each dimension o: the slice dim o = s, whose
// totals are the one-way margins of the other two dimensions and whose
// corner is the margin (o, s) together with the total.
struct Plane {
  size_t nr = 0, nc = 0;
  std::vector<Edge> edges;  // (nr+1) * (nc+1), row-major
  const Edge& at(size_t i, size_t j) const { return edges[i * (nc + 1) + j]; }
};

Plane MakePlane(const Layout& l, int o, size_t s) {
  // The two dimensions of the plane, in order.
  const size_t r = o == 0 ? 1 : 0;
  const size_t c = o == 0 || o == 1 ? 2 : 1;
  Plane p;
  p.nr = l.sizes[r];
  p.nc = l.sizes[c];
  p.edges.resize((p.nr + 1) * (p.nc + 1));
  std::vector<size_t> coords(l.sizes.size(), 0);
  if (o >= 0) coords[static_cast<size_t>(o)] = s;
  for (size_t i = 0; i <= p.nr; ++i) {
    for (size_t j = 0; j <= p.nc; ++j) {
      Edge& e = p.edges[i * (p.nc + 1) + j];
      if (i < p.nr && j < p.nc) {
        coords[r] = i;
        coords[c] = j;
        e.cell = l.CellId(coords);
        e.members[e.n++] = {e.cell, +1};
      } else if (i < p.nr) {
        e.members[e.n++] = {l.MarginId(r, i), -1};
      } else if (j < p.nc) {
        e.members[e.n++] = {l.MarginId(c, j), -1};
      } else {
        if (o >= 0) e.members[e.n++] = {l.MarginId(static_cast<size_t>(o), s), +1};
        e.members[e.n++] = {l.total_id(), +1};
      }
    }
  }
  return p;
}

class Suppressor {
 public:
  Suppressor(const Layout& layout, const std::vector<uint64_t>& values, uint32_t k)
      : l_(layout), values_(values), k_(k) {
    const size_t n = l_.num_entries();
    suppressed_.assign(n, false);
    why_.assign(n, Cell::Why::kNone);
    certificate_.resize(n);
    const size_t d = l_.sizes.size();
    if (d == 2) planes_.push_back(MakePlane(l_, -1, 0));
    if (d == 3) {
      for (size_t o = 0; o < 3; ++o) {
        for (size_t s = 0; s < l_.sizes[o]; ++s) {
          planes_.push_back(MakePlane(l_, static_cast<int>(o), s));
        }
      }
    }
  }

  Status Run() {
    const size_t n = l_.num_entries();
    for (uint32_t e = 0; e < n; ++e) {
      if (values_[e] > 0 && values_[e] < k_) {
        suppressed_[e] = true;
        why_[e] = Cell::Why::kPrimary;
      }
    }
    bool progress = true;
    while (progress) {
      progress = false;
      for (uint32_t e = 0; e < n; ++e) {
        if (!suppressed_[e] || certificate_[e]) continue;
        std::optional<Candidate> best = FindBest(e);
        if (!best) return Status::Internal("no complementary suppression found");
        for (const Change& ch : best->eval.changes) {
          if (!suppressed_[ch.entry]) {
            suppressed_[ch.entry] = true;
            why_[ch.entry] = Cell::Why::kComplementary;
            progress = true;
          }
        }
        // Suppressing more only removes relations, so the move stays valid
        // for every entry it changes.
        for (const Change& ch : best->eval.changes) {
          if (!certificate_[ch.entry]) certificate_[ch.entry] = best->move;
        }
      }
    }
    return Verify();
  }

  bool suppressed(uint32_t e) const { return suppressed_[e]; }
  Cell::Why why(uint32_t e) const { return why_[e]; }

 private:
  // The checked certificate of every suppressed entry, then the rank test.
  Status Verify() const {
    for (uint32_t e = 0; e < l_.num_entries(); ++e) {
      if (!suppressed_[e]) continue;
      if (!certificate_[e]) return Status::Internal("a suppressed entry has no certificate");
      const Eval ev = Evaluate(*certificate_[e]);
      if (!ev.feasible || ev.added != 0 || !Changes(ev, e)) {
        return Status::Internal("a suppressed entry failed its final check");
      }
    }
    ENLACE_ASSIGN_OR_RETURN(const std::vector<bool> determined,
                            internal::DeterminedEntries(l_, suppressed_));
    for (uint32_t e = 0; e < l_.num_entries(); ++e) {
      if (suppressed_[e] && determined[e]) {
        return Status::Internal("a suppressed entry is determined by the published ones");
      }
    }
    return Status::Ok();
  }

  static bool Changes(const Eval& ev, uint32_t e) {
    return std::any_of(ev.changes.begin(), ev.changes.end(),
                       [e](const Change& c) { return c.entry == e; });
  }

  static void Add(std::vector<Change>& changes, uint32_t entry, int64_t delta) {
    for (Change& c : changes) {
      if (c.entry == entry) {
        c.delta += delta;
        return;
      }
    }
    changes.push_back({entry, delta});
  }

  // What a move changes and whether it keeps every entry >= 1; its cost is
  // the sum of the published counts it changes (they must be suppressed).
  Eval Evaluate(const Move& move) const {
    Eval ev;
    for (const Change& m : move) {
      Add(ev.changes, m.entry, m.delta);
      for (uint32_t a : l_.cell_aggs[m.entry]) Add(ev.changes, a, m.delta);
    }
    std::erase_if(ev.changes, [](const Change& c) { return c.delta == 0; });
    for (const Change& c : ev.changes) {
      const uint64_t v = values_[c.entry];
      if (v == 0) return ev;  // a published zero stays published
      if (c.delta < 0 && v <= static_cast<uint64_t>(-c.delta)) return ev;
      if (!suppressed_[c.entry]) {
        ev.cost += v;
        ++ev.added;
      }
    }
    ev.feasible = !ev.changes.empty();
    return ev;
  }

  // Considers `move` for entry e; true when it is free (e is safe already).
  bool Consider(uint32_t e, Move move, std::optional<Candidate>& best) const {
    Eval ev = Evaluate(move);
    if (!ev.feasible || !Changes(ev, e)) return false;
    if (!best || Better(ev, best->eval)) best = Candidate{std::move(move), std::move(ev)};
    return best->eval.cost == 0;
  }

  // The cost of traversing edge `e` with change `dy` (+1 row -> column, -1
  // column -> row); nullopt when an entry would drop below 1 or is a
  // published zero.
  std::optional<std::pair<uint64_t, uint32_t>> Traverse(const Edge& edge, int dy) const {
    std::pair<uint64_t, uint32_t> cost{0, 0};
    for (size_t i = 0; i < edge.n; ++i) {
      const auto [entry, sign] = edge.members[i];
      const uint64_t v = values_[entry];
      if (v == 0) return std::nullopt;
      if (sign * dy < 0 && v < 2) return std::nullopt;
      if (!suppressed_[entry]) {
        cost.first += v;
        ++cost.second;
      }
    }
    return cost;
  }

  // The cheapest path from node `from` to node `to` not using edge `skip`
  // (Dijkstra on the dense bipartite graph). Nodes: rows 0..nr, then
  // columns nr+1..nr+nc+1. Returns the edges with their changes.
  std::optional<std::vector<std::pair<size_t, int>>> Path(const Plane& p, size_t from, size_t to,
                                                          size_t skip) const {
    const size_t rows = p.nr + 1, v = p.nr + p.nc + 2;
    using Dist = std::pair<uint64_t, uint32_t>;
    const Dist kInf{UINT64_MAX, UINT32_MAX};
    std::vector<Dist> dist(v, kInf);
    std::vector<size_t> prev_node(v, SIZE_MAX), prev_edge(v, SIZE_MAX);
    std::vector<bool> done(v, false);
    dist[from] = {0, 0};
    for (;;) {
      size_t u = SIZE_MAX;
      for (size_t x = 0; x < v; ++x) {
        if (!done[x] && dist[x] != kInf && (u == SIZE_MAX || dist[x] < dist[u])) u = x;
      }
      if (u == SIZE_MAX || u == to) break;
      done[u] = true;
      const bool is_row = u < rows;
      const size_t others = is_row ? p.nc + 1 : rows;
      for (size_t o = 0; o < others; ++o) {
        const size_t i = is_row ? u : o, j = is_row ? o : u - rows;
        const size_t edge = i * (p.nc + 1) + j;
        if (edge == skip) continue;
        const size_t w = is_row ? rows + j : i;
        if (done[w]) continue;
        const auto c = Traverse(p.edges[edge], is_row ? +1 : -1);
        if (!c) continue;
        const Dist nd{dist[u].first + c->first, dist[u].second + c->second};
        if (nd < dist[w]) {
          dist[w] = nd;
          prev_node[w] = u;
          prev_edge[w] = edge;
        }
      }
    }
    if (dist[to] == kInf) return std::nullopt;
    std::vector<std::pair<size_t, int>> path;
    for (size_t x = to; x != from; x = prev_node[x]) {
      path.push_back({prev_edge[x], x >= rows ? +1 : -1});  // entered a column: row -> column
    }
    return path;
  }

  // The cheapest cycles through `edge` of plane `p`, in both directions.
  bool TryCycles(uint32_t e, const Plane& p, size_t edge, std::optional<Candidate>& best) const {
    const size_t rows = p.nr + 1;
    const size_t i = edge / (p.nc + 1), j = edge % (p.nc + 1);
    for (int dy : {+1, -1}) {
      // dy = +1: row i -> column j along the edge, back from column j to row i.
      const size_t from = dy > 0 ? rows + j : i, to = dy > 0 ? i : rows + j;
      const auto path = Path(p, from, to, edge);
      if (!path) continue;
      Move move;
      if (p.edges[edge].cell != kNoCell) move.push_back({p.edges[edge].cell, dy});
      for (const auto& [pe, pdy] : *path) {
        if (p.edges[pe].cell != kNoCell) move.push_back({p.edges[pe].cell, pdy});
      }
      if (Consider(e, std::move(move), best)) return true;
    }
    return false;
  }

  std::optional<Candidate> FindBest(uint32_t e) const {
    std::optional<Candidate> best;
    const size_t d = l_.sizes.size();
    const bool is_cell = e < l_.num_cells;
    if (d == 1) {
      // One relation: the cells add up to the total. A move is a pair, or a
      // single cell with the total.
      const std::vector<uint32_t> cells = is_cell ? std::vector<uint32_t>{e} : l_.agg_cells[0];
      for (uint32_t c : cells) {
        for (int s : {+1, -1}) {
          if (Consider(e, {{c, s}}, best)) return best;
          if (!is_cell) continue;
          for (uint32_t f = 0; f < l_.num_cells; ++f) {
            if (f != c && Consider(e, {{c, s}, {f, -s}}, best)) return best;
          }
        }
      }
      return best;
    }
    for (const Plane& p : planes_) {
      for (size_t x = 0; x < p.edges.size(); ++x) {
        const Edge& edge = p.edges[x];
        bool here = false;
        for (size_t m = 0; m < edge.n; ++m) here = here || edge.members[m].first == e;
        if (here && TryCycles(e, p, x, best)) return best;
      }
    }
    if (d == 3 && is_cell) HypercubeMoves(e, best);
    return best;
  }

  // 3 dimensions: moves of 4 cells (+e, +r, -q, -s), where q and s swap the
  // coordinates of e and r on some dimensions, keep every one-way margin;
  // and pairs (+e, -q) when the margins they differ in are suppressed.
  void HypercubeMoves(uint32_t e, std::optional<Candidate>& best) const {
    const std::vector<size_t>& pe = l_.index[e];
    auto bound = [&] { return best ? best->eval.cost : UINT64_MAX; };
    // A published cell adds its count to the cost: skip those that cannot
    // beat the best so far.
    auto hopeless = [&](uint32_t c) {
      return values_[c] == 0 || (!suppressed_[c] && values_[c] >= bound());
    };
    for (uint32_t q = 0; q < l_.num_cells; ++q) {
      if (q == e || hopeless(q)) continue;
      for (int s : {+1, -1}) {
        if (Consider(e, {{e, s}, {q, -s}}, best)) return;
      }
    }
    std::vector<size_t> cq(3), cs(3);
    for (uint32_t r = 0; r < l_.num_cells; ++r) {
      if (r == e || hopeless(r)) continue;
      const std::vector<size_t>& pr = l_.index[r];
      for (unsigned mask : {1u, 2u, 4u}) {  // the complements 6, 5, 3 give the same moves
        for (size_t k = 0; k < 3; ++k) {
          const bool swap = (mask >> k) & 1u;
          cq[k] = swap ? pr[k] : pe[k];
          cs[k] = swap ? pe[k] : pr[k];
        }
        const uint32_t q = l_.CellId(cq), s = l_.CellId(cs);
        if (q == e || q == r || hopeless(q) || hopeless(s)) continue;
        for (int sign : {+1, -1}) {
          if (Consider(e, {{e, sign}, {r, sign}, {q, -sign}, {s, -sign}}, best)) return;
        }
      }
    }
  }

  const Layout& l_;
  const std::vector<uint64_t>& values_;
  const uint32_t k_;
  std::vector<Plane> planes_;
  std::vector<bool> suppressed_;
  std::vector<Cell::Why> why_;
  std::vector<std::optional<Move>> certificate_;
};

}  // namespace

Result<Table> Tabulate(std::vector<Dimension> dims,
                       const std::vector<std::vector<std::string>>& rows) {
  ENLACE_RETURN_IF_ERROR(CheckDims(dims, /*allow_empty_categories=*/true));
  const size_t d = dims.size();
  for (Dimension& dim : dims) {
    if (dim.categories.empty() && !dim.labels.empty()) {
      return Status::InvalidArgument("dimension \"" + dim.name + "\" has labels but no categories");
    }
  }
  std::vector<bool> prefilled(d);
  std::vector<std::unordered_map<std::string, size_t>> position(d);
  for (size_t k = 0; k < d; ++k) {
    prefilled[k] = !dims[k].categories.empty();
    for (size_t c = 0; c < dims[k].categories.size(); ++c) position[k][dims[k].categories[c]] = c;
  }
  auto add_category = [&](size_t k, const std::string& value) -> Result<size_t> {
    Dimension& dim = dims[k];
    if (dim.categories.size() >= kMaxCells) {
      return Status::ResourceExhausted("dimension \"" + dim.name + "\" has more than " +
                                       std::to_string(kMaxCells) + " categories");
    }
    dim.categories.push_back(value);
    if (!dim.labels.empty()) dim.labels.push_back(value);
    position[k][value] = dim.categories.size() - 1;
    return dim.categories.size() - 1;
  };

  const std::string unknown(kUnknownCategory);
  std::vector<size_t> coords;
  coords.reserve(rows.size() * d);
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() != d) {
      return Status::InvalidArgument("row " + std::to_string(r + 1) + " has " +
                                     std::to_string(row.size()) + " values for " +
                                     std::to_string(d) + " dimensions");
    }
    for (size_t k = 0; k < d; ++k) {
      const std::string* value = &row[k];
      if (prefilled[k] && !position[k].contains(*value)) value = &unknown;
      if (const auto it = position[k].find(*value); it != position[k].end()) {
        coords.push_back(it->second);
      } else {
        ENLACE_ASSIGN_OR_RETURN(const size_t c, add_category(k, *value));
        coords.push_back(c);
      }
    }
  }
  for (const Dimension& dim : dims) {
    if (dim.categories.empty()) return Table{std::move(dims), {}};  // no rows: no cells
  }
  ENLACE_RETURN_IF_ERROR(CheckDims(dims, false));
  FillLabels(dims);
  const Layout layout = internal::MakeLayout(internal::Sizes(dims));
  Table table{std::move(dims), std::vector<uint64_t>(layout.num_cells, 0)};
  std::vector<size_t> one(d);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy_n(coords.begin() + static_cast<std::ptrdiff_t>(r * d), d, one.begin());
    ++table.counts[layout.CellId(one)];
  }
  return table;
}

Result<Published> Suppress(const Table& table, uint32_t k) {
  if (k < 2) {
    return Status::InvalidArgument("k must be at least 2 (the default is " +
                                   std::to_string(kDefaultK) + ")");
  }
  ENLACE_RETURN_IF_ERROR(CheckDims(table.dims, false));
  const Layout layout = internal::MakeLayout(internal::Sizes(table.dims));
  if (table.counts.size() != layout.num_cells) {
    return Status::InvalidArgument("the table has " + std::to_string(table.counts.size()) +
                                   " counts for " + std::to_string(layout.num_cells) + " cells");
  }
  std::vector<uint64_t> values(layout.num_entries(), 0);
  for (uint32_t c = 0; c < layout.num_cells; ++c) {
    values[c] = table.counts[c];
    for (uint32_t a : layout.cell_aggs[c]) {
      if (__builtin_add_overflow(values[a], table.counts[c], &values[a])) {
        return Status::InvalidArgument("the table's counts overflow");
      }
    }
  }

  Suppressor suppressor(layout, values, k);
  ENLACE_RETURN_IF_ERROR(suppressor.Run());

  Published p;
  p.table.dims = table.dims;
  FillLabels(p.table.dims);
  p.k = k;
  for (uint32_t e = 0; e < layout.num_entries(); ++e) {
    Cell cell;
    cell.index = layout.index[e];
    cell.suppressed = suppressor.suppressed(e);
    cell.value = cell.suppressed ? 0 : values[e];
    cell.why = suppressor.why(e);
    if (e < layout.num_cells) {
      p.cells.push_back(std::move(cell));
    } else if (e < layout.total_id()) {
      p.margins.push_back(std::move(cell));
    } else {
      p.total = std::move(cell);
    }
  }
  return p;
}

Result<disclosure::LinkedTable> ToLinked(const Published& p, std::string label) {
  disclosure::LinkedTable t;
  ENLACE_ASSIGN_OR_RETURN(t.period, disclosure::LatticePeriod(p.from, p.to));
  t.label = std::move(label);
  t.k = p.k;
  for (const Dimension& d : p.table.dims) {
    t.dim_names.push_back(d.name);
    t.categories.push_back(d.categories);
  }
  const Layout layout = internal::MakeLayout(internal::Sizes(p.table.dims));
  if (p.cells.size() != layout.num_cells || p.margins.size() != layout.num_margins) {
    return Status::InvalidArgument("the report's entries do not match its dimensions");
  }
  for (uint32_t e = 0; e < layout.num_entries(); ++e) {
    const Cell& c = EntryOf(p, e);
    t.values.push_back(c.suppressed ? std::nullopt : std::optional<uint64_t>(c.value));
  }
  return t;
}

namespace {
template <typename P>
auto& Entry(P& p, uint32_t id) {
  if (id < p.cells.size()) return p.cells[id];
  if (id < p.cells.size() + p.margins.size()) return p.margins[id - p.cells.size()];
  return p.total;
}
}  // namespace

const Cell& EntryOf(const Published& p, uint32_t id) { return Entry(p, id); }

Result<disclosure::SecondaryResult> SuppressAcross(
    Published& p, const std::vector<disclosure::LinkedTable>& earlier,
    const disclosure::AuditLimits& limits) {
  ENLACE_ASSIGN_OR_RETURN(disclosure::LinkedTable mine, ToLinked(p, "this report"));
  std::vector<disclosure::LinkedTable> tables = earlier;
  tables.push_back(std::move(mine));
  ENLACE_ASSIGN_OR_RETURN(disclosure::SecondaryResult r,
                          disclosure::SuppressUntilSafe(std::move(tables), limits));
  for (const auto& [id, finding] : r.hidden) {
    Cell& c = Entry(p, id);
    c.suppressed = true;
    c.value = 0;
    c.why = Cell::Why::kComplementary;
  }
  return r;
}

}  // namespace enlace::report
