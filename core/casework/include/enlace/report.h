// Aggregated, privacy-safe count tables: tabulation, small-cell suppression
// (primary and complementary) and the renderers (text, CSV, JSON, SVG).
//
// The module is pure: it sees category values and counts, never records, and
// does no I/O. The method, the attacker model and the JSON publishing format
// are written down in docs/REPORTS.md.
//
// All functions are thread-safe (no shared state).
#ifndef ENLACE_REPORT_H_
#define ENLACE_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/linked.h"
#include "enlace/status.h"

namespace enlace::report {

// The CTDC publication threshold: no published count below 11.
inline constexpr uint32_t kDefaultK = 11;
// Tables with more dimensions are not supported.
inline constexpr size_t kMaxDims = 3;
// Tables with more cells are refused with kResourceExhausted.
inline constexpr size_t kMaxCells = 10000;
// The category that collects values outside a pre-filled category list.
inline constexpr std::string_view kUnknownCategory = "Unknown";
// Marks "every category" in a margin's index.
inline constexpr size_t kAll = std::numeric_limits<size_t>::max();

struct Dimension {
  std::string name;                     // e.g. "federal_entity"; not empty
  std::vector<std::string> categories;  // codes, e.g. "29"
  std::vector<std::string> labels;      // one per category, in the reader's language
  friend bool operator==(const Dimension&, const Dimension&) = default;
};

// A count table over 1..3 dimensions. counts is row-major: the last
// dimension varies fastest; counts.size() is the product of the category
// counts.
struct Table {
  std::vector<Dimension> dims;
  std::vector<uint64_t> counts;
  friend bool operator==(const Table&, const Table&) = default;
};

// Builds a table from rows of category values, one string per dimension.
// A dimension whose `categories` is empty gets its categories in first-seen
// order. A pre-filled `categories` keeps its order, and a value outside it
// counts under kUnknownCategory (appended, with the label "Unknown", unless
// already listed). Labels: empty, or one per category; missing labels are
// the category codes. Errors: kInvalidArgument for 0 or more than 3
// dimensions, an empty dimension name, duplicate categories, labels of the
// wrong length, or a row of the wrong width; kResourceExhausted above
// kMaxCells cells.
Result<Table> Tabulate(std::vector<Dimension> dims,
                       const std::vector<std::vector<std::string>>& rows);

// One published entry: a cell (index has one position per dimension) or a
// margin (index has kAll where it sums over a dimension). A suppressed
// entry has value 0: a Published never holds a suppressed count.
struct Cell {
  enum class Why { kNone, kPrimary, kComplementary };
  std::vector<size_t> index;
  uint64_t value = 0;
  bool suppressed = false;
  // Why it is suppressed. Known only where Suppress ran: it is never
  // rendered or published (it would tell an attacker which hidden counts
  // are below k), so ParseJson returns kNone.
  Why why = Why::kNone;
  friend bool operator==(const Cell&, const Cell&) = default;
};

// What is published. Margins: none for 1 dimension (the total is the only
// sum); for 2 dimensions the row totals {i, kAll} then the column totals
// {kAll, j}; for 3 dimensions the totals per category of each dimension,
// dimension by dimension ({a, kAll, kAll}, then {kAll, j, kAll}, then
// {kAll, kAll, l}). `total` has kAll everywhere.
struct Published {
  Table table;  // dims only: counts is empty, so no suppressed count is kept
  uint32_t k = kDefaultK;
  std::vector<Cell> cells;  // row-major, like Table::counts
  std::vector<Cell> margins;
  Cell total;
  // Free metadata, published as is. from/to: "YYYY-MM-DD" or empty.
  std::string title, from, to, generated_at;
  friend bool operator==(const Published&, const Published&) = default;
};

// Small-cell suppression.
// Primary: every nonzero cell or margin (or the total) below k is
// suppressed. Zeros are published as 0: an empty category is not a person.
// Complementary: further nonzero entries are suppressed until no suppressed
// entry can be recomputed from the published ones, neither exactly (through
// the linear relations cells -> margins -> total) nor by bounds (knowing
// that every suppressed entry is at least 1): each suppressed entry can take
// at least two values in tables consistent with what is published. The
// complements are chosen greedily at the least total published count (see
// docs/REPORTS.md). Errors: kInvalidArgument for k < 2 or a malformed table
// (dimension count, sizes, labels); kResourceExhausted above kMaxCells;
// kInternal if the result failed its own final check (a bug: nothing is
// returned rather than a leaky table).
Result<Published> Suppress(const Table& table, uint32_t k = kDefaultK);

// Renderers. Suppressed entries appear as "<k" (e.g. "<11") in text, CSV and
// SVG, and as null with "suppressed": true in JSON; the count itself is never
// written. Labels come from Dimension::labels, so the caller picks the
// language; the only word written is "Total" (the same in Spanish and
// English). The renderers do not explain "<k" (hidden: below k, or hidden to
// protect a count below k); the caller says so in the reader's language.
// Input produced by Suppress or ParseJson; the functions do not fail.
//
// Text: the title and period, then for 1 dimension a list with a total
// line; for 2 a matrix with a total column and a total row; for 3 one matrix
// per category of the first dimension followed by the per-category totals of
// each dimension and the total. Columns aligned for UTF-8 labels.
std::string RenderText(const Published& p);
// Long format (RFC 4180, CRLF): a header "<dim names...>,count,suppressed",
// one line per cell, then the margins and the total with "Total" in the
// summed dimensions. Labels are used; a field a spreadsheet would run as a
// formula is prefixed with a single quote.
std::string RenderCsv(const Published& p);
// The publishing format (docs/REPORTS.md):
// {"version":1,"k":11,"title":..,"from":..,"to":..,"generated_at":..,
//  "dims":[{"name":..,"categories":[..],"labels":[..]}],
//  "cells":[{"index":[0,2],"value":12|null,"suppressed":false|true}],
//  "margins":[{"index":[0,null],...}],"total":n|null}
// null in a margin index means "all".
std::string RenderJson(const Published& p);
// The inverse of RenderJson, for readers and tests (the hub has its own check,
// server/report_check.h, over enlace/disclosure.h). kInvalidArgument, naming
// the entry, for malformed JSON, an unknown version, wrong or missing
// entries, a published value below k other than 0, totals that do not add
// up, or a suppressed entry that the published entries determine exactly.
Result<Published> ParseJson(std::string_view json);
// The table as a reader sees it, for the audit across publications
// (enlace/linked.h): entries in the order of disclosure::MakeLayout (cells,
// margins, total), the period from `from` and `to`. kInvalidArgument when
// the period is not a whole month, quarter or year (the message states the
// rule).
Result<disclosure::LinkedTable> ToLinked(const Published& p, std::string label);

// Secondary suppression across publications: audits `p` together with the
// team's `earlier` publications (disclosure::SuppressUntilSafe) and hides,
// in `p`, the entries it had to hide (why kComplementary). Returns what it
// hid and why, entries numbered as in disclosure::MakeLayout; the final
// finding says whether `p` may be published (kSafe) or why not. Errors as
// ToLinked's and AuditLinked's.
Result<disclosure::SecondaryResult> SuppressAcross(
    Published& p, const std::vector<disclosure::LinkedTable>& earlier,
    const disclosure::AuditLimits& limits = {});

// The entry `id` of `p` (numbered as in disclosure::MakeLayout).
const Cell& EntryOf(const Published& p, uint32_t id);

// A standalone SVG bar chart (xmlns, escaped text): 1 dimension -> one bar
// per category; 2 -> bars grouped by the first dimension, coloured by the
// second, with a legend; 3 -> one grouped panel per category of the first
// dimension. Suppressed bars are short grey hatched stubs labelled "<k".
// A value axis with ticks and grid lines.
std::string RenderSvg(const Published& p, std::string_view title);

}  // namespace enlace::report

#endif  // ENLACE_REPORT_H_
