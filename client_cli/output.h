// What the CLI prints: human text by default, JSON with --json.
//
// Results go to stdout; warnings, progress and error explanations go to
// stderr, so `enlace --json ... | jq` always reads one JSON document. Values
// are printed as JSON values (17, "Active", [..]) in --json mode and as plain
// text otherwise.
#ifndef ENLACE_CLIENT_CLI_OUTPUT_H_
#define ENLACE_CLIENT_CLI_OUTPUT_H_

#include <cstdint>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/replica.h"
#include "enlace/types.h"

namespace enlace::cli {

class Output {
 public:
  Output(bool json, std::ostream& out, std::ostream& err) : json_(json), out_(out), err_(err) {}

  bool json() const { return json_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // One JSON document on stdout (--json mode).
  void Json(const nlohmann::json& doc);
  // A line of human text on stdout.
  void Line(std::string_view text);
  // A command's result: `doc` (Json) with --json, else the line `text` (Line).
  void Result(const nlohmann::json& doc, std::string_view text);
  // "enlace: warning: <text>" on stderr, in both modes.
  void Warn(std::string_view text);
  // "enlace: <text>" on stderr, in both modes (progress notes, hints).
  void Note(std::string_view text);
  // An error: on stderr always; with --json also {"error", "code"} on stdout.
  void Error(std::string_view message, int exit_code);

 private:
  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

// "2026-11-29T06:25:32Z" (UTC, seconds).
std::string FormatIsoUtc(uint64_t unix_ms);

// The first 8 hex characters of a device id.
std::string ShortHex(const DeviceId& device);

// The width of UTF-8 text on a terminal, counted in code points, for lining up
// columns of Spanish text ("dispositivo", "último"): each code point counts as one column.
size_t DisplayWidth(std::string_view utf8);

// A stored canonical JSON text as a JSON value (a string if, against the
// core's contract, it does not parse).
nlohmann::json ValueToJson(std::string_view canonical);

// A value for people: strings without quotes unless they would read back as
// something else (a string "17" is shown as "17" in quotes, so that typing it
// back into put or resolve gives the same value); other values as JSON.
std::string DisplayValue(std::string_view canonical);

// Device id -> member name, for "who wrote this".
using MemberNames = std::map<DeviceId, std::string>;

// "ana (1a2b3c4d)", or "1a2b3c4d" when the name is unknown.
std::string WhoWrote(const DeviceId& device, const MemberNames& names);

// {"id", "collection", "fields": {f: v}, "conflicts": {f: [every value]},
//  "deleted", "delete_conflict"}
nlohmann::json RecordToJson(const Record& record);

// {"collection", "id", "field", "values": [...], "shown",
//  "siblings": [{"value", "device", "name"?, "time"}]}
nlohmann::json ConflictToJson(const Conflict& conflict, const MemberNames& names);

// Human renderings (trailing newline included).
std::string RenderRecord(const Record& record, const MemberNames& names);
std::string RenderRecordLine(const Record& record);
std::string RenderConflict(const Conflict& conflict, const MemberNames& names);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_OUTPUT_H_
