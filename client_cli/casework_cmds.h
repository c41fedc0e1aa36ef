// The case-work commands: guided capture (case, encounter, event, referral),
// export, import and reports. They work on the schema pack the device holds
// (the built-in pack plus the team's overlay) and validate every value
// before anything is written.
#ifndef ENLACE_CLIENT_CLI_CASEWORK_CMDS_H_
#define ENLACE_CLIENT_CLI_CASEWORK_CMDS_H_

#include <optional>
#include <string>
#include <vector>

#include "commands.h"

namespace enlace::cli {

struct CaptureArgs {
  std::vector<std::string> set;  // FIELD=VALUE
  bool no_prompt = false;        // never ask, even on a terminal
  std::string case_ref;          // event add / referral add: the case (id or prefix)
  std::string direction;         // referral add: "in" or "out"
  bool close = false;            // referral add --close: status ClosedReferred
};
struct CaseListArgs {
  std::string status;  // a CaseStatus code or label
  std::string search;
};
struct ExportArgs {
  std::string format = "csv";  // csv | json | ctdc
  std::vector<std::string> collections;
  bool include_identifying = false;
  std::string output;  // file (or folder for several CSV collections); "" = stdout
  uint32_t k = 11;     // ctdc: every group of quasi-identifiers has at least k rows
};
struct ImportArgs {
  std::string file;
  std::string collection;
  std::string format;  // csv | jsonl; "" = from the file name
  std::string map;     // MAPPING.json
  std::string key;     // the stable key column; "" = the mapping's, else a content hash
  size_t batch = 500;  // rows per transaction
};
struct ReportArgs {
  std::string by;  // DIM[,DIM...]
  std::string from, to;
  uint32_t k = 11;
  std::string format = "table";  // table | csv | json | svg
  std::string output;
  std::string title;
  bool publish = false;
  int max_attempts = 6;
};

struct SchemaArgs {
  std::string collection;    // show this collection's fields
  std::string overlay_file;  // publish this overlay
};

CliStatus RunSchema(Context& ctx, const SchemaArgs& args);
CliStatus RunCaseNew(Context& ctx, const CaptureArgs& args);
CliStatus RunEncounterLog(Context& ctx, const CaptureArgs& args);
CliStatus RunEventAdd(Context& ctx, const CaptureArgs& args);
CliStatus RunReferralAdd(Context& ctx, const CaptureArgs& args);
CliStatus RunCaseShow(Context& ctx, const std::string& case_ref);
CliStatus RunCaseList(Context& ctx, const CaseListArgs& args);
CliStatus RunExport(Context& ctx, const ExportArgs& args);
CliStatus RunImport(Context& ctx, const ImportArgs& args);
CliStatus RunReport(Context& ctx, const ReportArgs& args);
// Reports published on the hub: the list, or one (as published JSON).
CliStatus RunPublished(Context& ctx, const std::string& id, int max_attempts);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_CASEWORK_CMDS_H_
