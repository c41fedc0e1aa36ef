// Private pieces of the report module shared by report.cc, report_render.cc
// and the tests: the entry layout of a table and the exact rank test, which
// live in the disclosure library (enlace/disclosure.h, shared with the hub),
// and their forms for a Published table.
#ifndef ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_
#define ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_

#include <cstddef>
#include <vector>

#include "enlace/disclosure.h"
#include "enlace/report.h"
#include "enlace/status.h"

namespace enlace::report::internal {

// Entry ids: the cells (row-major), the margins in Published order, the
// total. Published's order is the layout's.
using disclosure::Layout;
// Precondition: 1 <= sizes.size() <= kMaxDims, every size >= 1, the product
// at most kMaxCells.
using disclosure::MakeLayout;
// The rank test on a suppression pattern (one flag per entry id).
using disclosure::DeterminedEntries;

// The rank test for a Published table: flags in the order cells, margins,
// total.
Result<std::vector<bool>> DeterminedEntries(const Published& p);

// The layout sizes of a Published table's dimensions.
std::vector<size_t> Sizes(const std::vector<Dimension>& dims);

}  // namespace enlace::report::internal

#endif  // ENLACE_CORE_CASEWORK_REPORT_INTERNAL_H_
