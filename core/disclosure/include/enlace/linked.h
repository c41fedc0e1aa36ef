// Published tables audited together: the publication lattice (closed
// calendar months, quarters and years) and the audit of every table a team
// has published for one year and one population, linked through the
// finest common cells (a time segment x one category of every dimension
// any of the tables uses). For each count that must stay hidden the audit
// computes, with integer programming (GLPK), the tightest range that every
// table of whole numbers consistent with all the published figures allows,
// and refuses when a hidden count is pinned to one value or any count of
// people is proven to lie in 1..k-1. Pure (no I/O, no clock): the hub calls
// it before accepting a publication, the CLI before sending one and to add
// the suppressions that pass (SuppressUntilSafe). The method, the guarantee
// and its limits: docs/REPORTS.md, "Publications audited together".
//
// Thread-safe: calls are serialised inside (GLPK keeps per-thread state).
#ifndef ENLACE_LINKED_H_
#define ENLACE_LINKED_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enlace/disclosure.h"
#include "enlace/status.h"

namespace enlace::disclosure {

// A closed calendar period on the publication lattice: the months
// first..last (1..12) of one year, a whole month, quarter or year.
struct Period {
  int year = 0;
  int first = 1;
  int last = 12;
  friend bool operator==(const Period&, const Period&) = default;
};

// The period of a report's "from" and "to" (YYYY-MM-DD, inclusive), or
// kInvalidArgument naming the rule when it is not a whole month, a whole
// quarter (January-March, April-June, July-September, October-December) or
// a whole year.
Result<Period> LatticePeriod(std::string_view from, std::string_view to);

// The last day of the period, "YYYY-MM-DD".
std::string PeriodEnd(const Period& period);

// True when the period is over on `today` (YYYY-MM-DD): publication waits
// until the day after its last day.
bool PeriodEnded(const Period& period, std::string_view today);

// The population a table counts, from the names of its dimensions: "events"
// when it has an event dimension (federal_entity, event_type: one row per
// trafficking event), otherwise "persons" (one row per victim). Tables of
// different populations are audited apart.
std::string PopulationOf(const std::vector<std::string>& dim_names);

// The name of the dimension whose categories are months ("YYYY-MM"): a
// table with it is split by month inside its period.
inline constexpr std::string_view kMonthDimension = "month";

// One published table, as a reader sees it.
struct LinkedTable {
  std::string label;  // names it in findings: a report id, "this report"
  Period period;
  std::vector<std::string> dim_names;                // 1..3, distinct
  std::vector<std::vector<std::string>> categories;  // per dimension, codes, distinct
  PublishedValues values;  // per entry id of MakeLayout(sizes of categories)
  uint32_t k = 11;
};

struct AuditLimits {
  size_t max_tables = 200;         // tables of the year and population
  size_t max_raw_cells = 2000000;  // segments x category combinations, before zeros
  size_t max_cells = 20000;        // the unknowns that remain (not fixed at zero)
  size_t max_counts = 60000;       // counts to protect
  size_t max_solves = 3000;        // integer programs solved
  int solve_time_ms = 20000;       // per program; a program not finished refuses
  int total_time_ms = 60000;       // all programs of one audit: past it, the audit refuses
};

// A count the audit protects: an entry of a published table (`table` its
// index in the audit's input, `entry` its id), or a count that no table
// publishes but the tables together describe (`table` = kDerived): the
// people of `where` (dimension = category; the others all) in the months
// first..last.
inline constexpr size_t kDerived = static_cast<size_t>(-1);
struct CountRef {
  size_t table = kDerived;
  uint32_t entry = 0;
  std::vector<std::pair<std::string, std::string>> where;
  int first = 1, last = 12;
};

struct AuditFinding {
  enum class Kind {
    kSafe,
    kInconsistent,  // the last table disagrees with the earlier ones (or itself)
    kPinned,        // a hidden entry has one possible value
    kSmall,         // a count is proven to lie in 1..k-1
    kTooLarge,      // the audit would exceed `limits`: refuse
  };
  Kind kind = Kind::kSafe;
  CountRef count;      // kPinned, kSmall
  uint64_t low = 0;    // its range, lo..hi (hi kUnbounded when unbounded)
  uint64_t high = 0;   // (never shown to a reader: the caller keeps it out of messages)
  std::string detail;  // kTooLarge: what is too large
  // Entries of the last table, published and nonzero, that count some of
  // the same people as `count`: hiding one of them may protect it.
  std::vector<uint32_t> related;
  bool safe() const { return kind == Kind::kSafe; }
};

// Audits the last table of `tables` together with every earlier one of the
// same year and population (the others are ignored). The unknowns are the
// counts of the finest common cells: a segment of months (the coarsest
// split on which every period, and every month of a table with the month
// dimension, is a union of segments) x one category of every dimension of
// the union (categories matched by code; a table that does not list a
// category had nobody in it). Every published entry is the sum of its
// cells; every hidden entry is at least 1. k is the largest k of the
// audited tables.
//
// Protected: every hidden entry (must take two values, unless another
// table publishes that very count, and must not be proven in 1..k-1);
// every entry of every audited table's dimensions restricted to one
// segment of its period, and every finest cell (must not be proven in
// 1..k-1; an exact value of 0 or >= k is what publishing it would show).
// The first failing count is reported, hidden entries of the last table
// first.
//
// kInvalidArgument for malformed input (sizes, a month category that is not
// YYYY-MM, an empty list).
Result<AuditFinding> AuditLinked(const std::vector<LinkedTable>& tables,
                                 const AuditLimits& limits = {});

// Secondary suppression across publications: audits `tables` (the last one
// is the new table) and, while a count fails, hides the smallest published
// nonzero entry of the last table among `related`, then audits again.
// Returns the entries it hid (in order) with the finding each answered,
// and the final finding (kSafe, or why it stopped: inconsistent, too large,
// or a failing count no entry of the new table touches).
struct SecondaryResult {
  std::vector<std::pair<uint32_t, AuditFinding>> hidden;
  AuditFinding final;
};
Result<SecondaryResult> SuppressUntilSafe(std::vector<LinkedTable> tables,
                                          const AuditLimits& limits = {});

}  // namespace enlace::disclosure

#endif  // ENLACE_LINKED_H_
