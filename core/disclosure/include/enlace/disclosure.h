// Disclosure checks for published count tables: the arithmetic of a table of
// 1 or more dimensions with its one-way margins and its total, and the tests
// that say whether the published entries give a suppressed one away. Pure
// (no I/O, no clock) and independent of case work: the device's report
// library (enlace/report.h) suppresses with it, the hub re-checks what a
// coordinator publishes with it (docs/PROTOCOL.md §16). The method and the
// attacker model are docs/REPORTS.md.
//
// The attacker sees every published entry and knows that every suppressed
// entry is a whole number >= 1 (zeros are published). A table is safe when
// every suppressed entry can take at least two values in tables consistent
// with what is published. This library decides the linear part exactly (the
// rank test) and the bounds part soundly (a suppressed entry that bounds
// propagation pins to one value is given away; one it does not pin may still
// be, through reasoning propagation does not do).
//
// All functions are thread-safe (no shared state).
#ifndef ENLACE_DISCLOSURE_H_
#define ENLACE_DISCLOSURE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "enlace/status.h"

namespace enlace::disclosure {

// Marks "every category" in an entry's index.
inline constexpr size_t kAll = std::numeric_limits<size_t>::max();
// An upper bound that is not known.
inline constexpr uint64_t kUnbounded = std::numeric_limits<uint64_t>::max();

// Every entry of a table gets an id: the cells first (row-major, the last
// dimension fastest), then the margins (for 2 or more dimensions: the totals
// per category of each dimension, dimension by dimension; none for 1
// dimension), then the total. The margins and the total are the
// "aggregates": each is the sum of a set of cells.
struct Layout {
  std::vector<size_t> sizes;  // categories per dimension
  size_t num_cells = 0;
  size_t num_margins = 0;
  std::vector<std::vector<size_t>> index;        // per entry: a category or kAll per dimension
  std::vector<std::vector<uint32_t>> agg_cells;  // per aggregate (id - num_cells), its cells
  std::vector<std::vector<uint32_t>> cell_aggs;  // per cell, the ids of its aggregates

  size_t num_entries() const { return num_cells + num_margins + 1; }
  uint32_t total_id() const { return static_cast<uint32_t>(num_cells + num_margins); }
  // The id of the margin of dimension `dim`, category `c` (2 or more
  // dimensions).
  uint32_t MarginId(size_t dim, size_t c) const;
  // The id of the cell at `coords` (one category per dimension).
  uint32_t CellId(const std::vector<size_t>& coords) const;
};

// Precondition: sizes is not empty, every size is >= 1, and the number of
// entries (the product of the sizes, plus their sum, plus 1) fits in a
// uint32_t. Callers that take sizes from outside check them first (the
// report library and the hub allow 3 dimensions and 10 000 cells).
Layout MakeLayout(const std::vector<size_t>& sizes);

// The rank test. The unknowns are the suppressed entries; every aggregate
// gives one linear relation (aggregate - sum of its cells = 0, with
// published entries moved to the constant side). A suppressed entry x_i is
// determined iff e_i lies in the row space of the relations restricted to
// the unknowns; this is decided on the reduced row echelon form computed
// with integers only (fraction-free, rows divided by their gcd), so there is
// no rounding. `suppressed` has one flag per entry id. Returns one flag per
// entry id (false for published entries). kInvalidArgument if `suppressed`
// has the wrong size; kResourceExhausted if an intermediate value would
// overflow 64 bits.
Result<std::vector<bool>> DeterminedEntries(const Layout& layout,
                                            const std::vector<bool>& suppressed);

// A table as a reader sees it: per entry id, the published value, or
// nullopt for a suppressed entry.
using PublishedValues = std::vector<std::optional<uint64_t>>;

// What every table consistent with the published entries has in an entry:
// lo <= value <= hi (hi kUnbounded when nothing bounds it).
struct Range {
  uint64_t lo = 0;
  uint64_t hi = kUnbounded;
  friend bool operator==(const Range&, const Range&) = default;
};

struct Ranges {
  // False when no table of whole numbers >= 0, with every suppressed entry
  // >= 1, reproduces the published entries; `failed` is then the aggregate
  // whose relation cannot hold, and `range` is unspecified.
  bool consistent = true;
  uint32_t failed = 0;
  std::vector<Range> range;  // per entry id
};

// Bounds propagation over the relations (each aggregate is the sum of its
// cells; a published entry is its value, a suppressed one is >= 1), to a
// fixed point or for at most 100 rounds. Every range holds for every
// consistent table (sound); it may be wider than the tightest (deciding
// exactly is integer programming). Arithmetic that would overflow only
// loosens a bound. kInvalidArgument if `published` has the wrong size.
Result<Ranges> EntryRanges(const Layout& layout, const PublishedValues& published);

// The verdict on one published table: the first problem found, in this
// order: a suppressed entry the rank test determines (kDetermined, the
// lowest such id); the published entries inconsistent (kInconsistent,
// `entry` an aggregate whose relation cannot hold); a suppressed entry whose
// range is one value (kPinned, the lowest such id).
struct Finding {
  enum class Kind { kSafe, kDetermined, kInconsistent, kPinned };
  Kind kind = Kind::kSafe;
  uint32_t entry = 0;
  bool safe() const { return kind == Kind::kSafe; }
};

// Checks `published` against `layout` with DeterminedEntries and
// EntryRanges. Errors as theirs; a table the check cannot finish is not
// safe, and the caller must refuse it.
Result<Finding> CheckPublished(const Layout& layout, const PublishedValues& published);

}  // namespace enlace::disclosure

#endif  // ENLACE_DISCLOSURE_H_
