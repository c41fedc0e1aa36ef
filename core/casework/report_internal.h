// Private pieces of the report module shared by report.cc, report_render.cc
// and the tests: the entry layout of a table and the exact rank test.
#ifndef ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_
#define ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "enlace/report.h"
#include "enlace/status.h"

namespace enlace::report::internal {

// Every entry of a table gets an id: the cells first (row-major), then the
// margins in Published order, then the total. The margins and the total
// are the "aggregates": each is the sum of a set of cells.
struct Layout {
  std::vector<size_t> sizes;  // categories per dimension
  size_t num_cells = 0;
  size_t num_margins = 0;
  std::vector<std::vector<size_t>> index;        // per entry, its Published index
  std::vector<std::vector<uint32_t>> agg_cells;  // per aggregate (id - num_cells), its cells
  std::vector<std::vector<uint32_t>> cell_aggs;  // per cell, the ids of its aggregates

  size_t num_entries() const { return num_cells + num_margins + 1; }
  uint32_t total_id() const { return static_cast<uint32_t>(num_cells + num_margins); }
  // The id of the margin of dimension `dim`, category `c` (2 or 3 dimensions).
  uint32_t MarginId(size_t dim, size_t c) const;
  // The id of the cell at `coords`.
  uint32_t CellId(const std::vector<size_t>& coords) const;
};

// Precondition: 1 <= sizes.size() <= kMaxDims, every size >= 1, the product
// at most kMaxCells.
Layout MakeLayout(const std::vector<size_t>& sizes);

// The exact rank test. The unknowns are the suppressed entries; every
// aggregate gives one linear relation (aggregate - sum of its cells = 0,
// with published entries moved to the constant side). A suppressed entry x_i
// is determined iff e_i lies in the row space of the relations restricted to
// the unknowns; this is decided on the reduced row echelon form computed
// with integers only (fraction-free, rows divided by their gcd), so there is
// no rounding. Returns one flag per entry id (false for published entries).
// kResourceExhausted if an intermediate value would overflow 64 bits.
Result<std::vector<bool>> DeterminedEntries(const Layout& layout,
                                            const std::vector<bool>& suppressed);

// The same for a Published table: flags in the order cells, margins, total.
Result<std::vector<bool>> DeterminedEntries(const Published& p);

// The layout sizes of a Published table's dimensions.
std::vector<size_t> Sizes(const std::vector<Dimension>& dims);

}  // namespace enlace::report::internal

#endif  // ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_
