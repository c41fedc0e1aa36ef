// libFuzzer target for published reports (docs/REPORTS.md, docs/PROTOCOL.md
// §16): the JSON a coordinator publishes and the hub and viewers read.
// Each input is JSON text and goes two ways:
//  1. report::ParseJson. When it parses: RenderText, RenderCsv, RenderJson
//     and RenderSvg must not fail, and RenderJson must parse back to the
//     same Published (the publishing format round-trips).
//  2. The hub's own check, hub::CheckReport, with the hub's default limits
//     and with k lowered to 2. Its verdict is 200, 400 or 422, and a refusal
//     says why. What it accepts with its defaults has k >= 11.
//
// Seeds: fuzz/corpus/report/ (fuzz_seeds). Build: scripts/fuzz.
#include <cstdint>
#include <string>
#include <string_view>

#include "enlace/report.h"
#include "fuzz_util.h"
#include "report_check.h"

namespace enlace::fuzz {

const char kTargetName[] = "report_fuzz";

namespace {

void CheckVerdict(const hub::ReportVerdict& v, uint32_t min_k) {
  Expect(v.http_status == 200 || v.http_status == 400 || v.http_status == 422,
         "CheckReport answered " + std::to_string(v.http_status));
  if (v.ok()) {
    Expect(v.meta.k >= min_k, "CheckReport accepted k " + std::to_string(v.meta.k));
  } else {
    Expect(!v.error.empty(), "CheckReport refused without saying why");
  }
}

}  // namespace
}  // namespace enlace::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enlace;
  using namespace enlace::fuzz;
  const std::string_view text = AsText(data, size);

  auto parsed = report::ParseJson(text);
  if (!parsed.ok()) {
    ExpectMessage(parsed.status(), "ParseJson");
  } else {
    const report::Published& p = *parsed;
    (void)report::RenderText(p);
    (void)report::RenderCsv(p);
    (void)report::RenderSvg(p, p.title);
    const std::string json = report::RenderJson(p);
    auto again = report::ParseJson(json);
    Expect(again.ok(), "RenderJson output does not parse: " + again.status().ToString());
    Expect(*again == p, "RenderJson/ParseJson does not round-trip");
  }

  hub::ReportLimits limits;
  CheckVerdict(hub::CheckReport(text, limits), limits.min_k);
  limits.min_k = 2;
  CheckVerdict(hub::CheckReport(text, limits), limits.min_k);
  return 0;
}
