// The hub's own check of a report a coordinator publishes (docs/PROTOCOL.md
// §16). The hub does not trust the device's report library: it parses the
// JSON itself and refuses anything that would put a count below k, or a
// suppressed count, on the hub. It does not re-check complementary
// suppression (that needs the whole table's relations and is the device's
// job, docs/REPORTS.md); it checks that every value it would publish is 0,
// at least k, or withheld.
#ifndef ENLACE_SERVER_REPORT_CHECK_H_
#define ENLACE_SERVER_REPORT_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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
// unsupported) or 422 (a value below k, or a k below the hub's minimum) with
// a plain-language `error` that names the offending cell.
struct ReportVerdict {
  int http_status = 200;
  std::string error;
  ReportMeta meta;
  bool ok() const { return http_status == 200; }
};

// Checks `body` against the publishing format: a JSON object of at most
// `max_bytes` with no duplicate keys and no unknown top-level member;
// version 1; an integer k >= min_k; 1..max_dims dimensions, each with a
// name and its categories (labels optional, one per category); at most
// max_cells cells and margins, each index in range and listed once; every
// value (cells, margins, total) an integer that is 0 or >= k, or null with
// "suppressed": true. A suppressed entry must not carry a value.
ReportVerdict CheckReport(std::string_view body, const ReportLimits& limits);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_REPORT_CHECK_H_
