// The hub's own check of a report a coordinator publishes (docs/PROTOCOL.md
// §16). The hub does not trust the device's report library: it parses the
// JSON itself and refuses anything that would put a count below k, or a
// suppressed count, on the hub. Every value it would publish is 0, at least
// k, or withheld; and it re-checks complementary suppression on the whole
// table with the rule of the device's library (enlace/disclosure.h, the
// same code): no withheld entry may be worked out from the published cells,
// margins and total, exactly (the rank test) or by bounds (every hidden
// count is at least 1). The hub links the disclosure library, not case work.
#ifndef ENLACE_SERVER_REPORT_CHECK_H_
#define ENLACE_SERVER_REPORT_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/linked.h"
#include "enlace/wire.h"

namespace enlace::hub {

struct ReportLimits {
  uint32_t min_k = 11;  // serve --report-min-k
  size_t max_bytes = kMaxReportBytes;
  size_t max_dims = 3;
  size_t max_cells = 10000;  // also the bound on margins and on categories per dimension
  size_t max_depth = 8;      // JSON nesting
};

// What the hub lists about a report.
struct ReportMeta {
  std::string title, from, to;
  uint32_t k = 0;
};

// The verdict: http_status 200 with `meta`, or 400 (malformed, oversized,
// unsupported, not one whole table, counts that do not add up) or 422 (a
// value below k, a k below the hub's minimum, or a suppressed entry the
// published ones give away) with a plain-language `error` that names the
// offending entry but never a hidden or small value.
struct ReportVerdict {
  int http_status = 200;
  std::string error;
  ReportMeta meta;
  // The table as a reader sees it (when ok): for the audit across
  // publications. Its period is set by AuditAcrossPublications.
  disclosure::LinkedTable table;
  bool ok() const { return http_status == 200; }
};

// Checks `body` against the publishing format: a JSON object of at most
// `max_bytes` with no duplicate keys and no unknown top-level member;
// version 1; an integer k >= min_k; 1..max_dims dimensions, each with a
// name and at least one category (labels optional, one per category), at
// most max_cells cells in all; every cell, every one-way margin (none for 1
// dimension) and the total listed exactly once, each index in range; every
// value an integer that is 0 or >= k, or null with "suppressed": true (a
// suppressed entry must not carry a value); the published counts adding up
// (disclosure::CheckPublished); no suppressed entry determined by the
// published ones (the rank test) or pinned to one value by the bounds.
ReportVerdict CheckReport(std::string_view body, const ReportLimits& limits);

// A report the team published before: its id and body as stored.
struct PublishedReport {
  std::string id;
  std::string body;
};

// The rules across publications (docs/REPORTS.md, "Publications audited
// together"), for a report `checked` by CheckReport: its period is a whole
// month, quarter or year (disclosure::LatticePeriod) that ended before
// `today` (YYYY-MM-DD, the hub's clock), else 422 stating the rule; then
// disclosure::AuditLinked over it and every report of `earlier` of the same
// year and population (reports whose period is not on the lattice, from
// before the rule, are not linked): 422 when the report contradicts them,
// pins a hidden count or proves a count in 1..k-1 (naming the count, never
// a value), or when the audit is too large to finish; 400 when a stored
// report cannot be read. Returns `checked` with the period set when
// accepted.
ReportVerdict AuditAcrossPublications(ReportVerdict checked, std::string_view today,
                                      const std::vector<PublishedReport>& earlier,
                                      const disclosure::AuditLimits& limits = {});

// The UTC date (YYYY-MM-DD) of a time in milliseconds since 1970.
std::string UtcDate(uint64_t ms);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_REPORT_CHECK_H_
