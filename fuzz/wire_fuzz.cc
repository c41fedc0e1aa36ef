// libFuzzer target for the text and envelope parsers a device or the hub
// reads from the network or from files (DESIGN invariant 4: bad input gets a
// clear error, never a crash):
//  - every Decode* of enlace/wire.h (sync request/response, team
//    registration, invite, join request/response, members, the JSON answers
//    of /v1/reports), with the default and with tight WireLimits;
//  - ParseInviteCode (enlace/sync.h);
//  - i18n::ParsePo (enlace/i18n.h);
//  - CsvReader (enlace/csv.h), read to the end.
// Every input goes through all of them. Invariants besides "no crash, leak or
// UB": an error carries a message; tight limits never accept what default
// limits refuse; what decodes re-encodes to bytes that decode again to the
// same encoding; the report answers round-trip exactly.
//
// Seeds: fuzz/corpus/wire/ (fuzz_seeds). Build: scripts/fuzz.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/csv.h"
#include "enlace/i18n.h"
#include "enlace/sync.h"
#include "enlace/wire.h"
#include "fuzz_util.h"

namespace enlace::fuzz {

const char kTargetName[] = "wire_fuzz";

namespace {

// Decodes with `decode` under default and tight limits; checks the
// invariants above.
template <typename Decode>
void CheckEnvelope(std::span<const uint8_t> input, Decode decode, const char* what) {
  WireLimits tight;
  tight.max_writes = 2;
  tight.max_write_bytes = 64;
  tight.max_members = 2;
  tight.max_text_bytes = 8;
  tight.max_envelope_bytes = 64;
  const auto full = decode(input, WireLimits{});
  const auto small = decode(input, tight);
  ExpectMessage(full.status(), what);
  ExpectMessage(small.status(), what);
  if (small.ok()) {
    Expect(full.ok(), std::string(what) + ": tight limits accepted what default limits refused");
    Expect(Encode(*small) == Encode(*full), std::string(what) + ": limits changed a message");
  }
  if (!full.ok()) return;
  const Bytes once = Encode(*full);
  const auto again = decode(once, WireLimits{});
  Expect(again.ok(), std::string(what) +
                         ": a re-encoded message does not decode: " + again.status().ToString());
  Expect(Encode(*again) == once, std::string(what) + ": encoding is not stable");
}

void CheckReportAnswers(std::string_view text) {
  auto answer = DecodePublishReportAnswer(text);
  ExpectMessage(answer.status(), "DecodePublishReportAnswer");
  if (answer.ok()) {
    auto again = DecodePublishReportAnswer(EncodePublishReportAnswer(*answer));
    Expect(again.ok() && *again == *answer, "a publish answer does not round-trip");
  }
  auto list = DecodeReportList(text);
  ExpectMessage(list.status(), "DecodeReportList");
  if (list.ok()) {
    auto again = DecodeReportList(EncodeReportList(*list));
    Expect(again.ok() && *again == *list, "a report list does not round-trip");
  }
}

void CheckCsv(std::string_view text) {
  CsvReader reader(text);
  std::vector<std::string> fields;
  size_t records = 0;
  size_t last_line = 0;
  for (;;) {
    auto next = reader.Next(fields);
    if (!next.ok()) {
      Expect(!next.status().message().empty(), "CsvReader: an error without a message");
      break;
    }
    if (!*next) break;
    Expect(reader.line() >= 1 && reader.line() > last_line, "CsvReader: lines do not advance");
    last_line = reader.line();
    Expect(++records <= text.size() + 1, "CsvReader: more records than bytes");
  }
  Expect(reader.delimiter() == ',' || reader.delimiter() == ';', "CsvReader: odd delimiter");
}

}  // namespace
}  // namespace enlace::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enlace;
  using namespace enlace::fuzz;
  const std::span<const uint8_t> input(data, size);
  const std::string_view text = AsText(data, size);

  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeSyncRequest(b, l); },
      "DecodeSyncRequest");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeSyncResponse(b, l); },
      "DecodeSyncResponse");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeRegisterTeamRequest(b, l); },
      "DecodeRegisterTeamRequest");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeCreateInviteRequest(b, l); },
      "DecodeCreateInviteRequest");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeJoinRequest(b, l); },
      "DecodeJoinRequest");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeJoinResponse(b, l); },
      "DecodeJoinResponse");
  CheckEnvelope(
      input, [](auto b, const WireLimits& l) { return DecodeMembersResponse(b, l); },
      "DecodeMembersResponse");
  CheckReportAnswers(text);

  auto invite = ParseInviteCode(text);
  ExpectMessage(invite.status(), "ParseInviteCode");

  auto po = i18n::ParsePo(text);
  ExpectMessage(po.status(), "ParsePo");
  if (po.ok()) {
    for (const auto& e : *po) Expect(e.line >= 1, "ParsePo: an entry without a line");
  }

  CheckCsv(text);
  return 0;
}
