// enlace audit COLLECTION ID [--offline]: every write of one record, who made
// it and when, what it set, where a conflict appeared or was settled, each
// write verified as sync would verify it (enlace/audit.h).
#ifndef ENLACE_CLIENT_CLI_AUDIT_CMD_H_
#define ENLACE_CLIENT_CLI_AUDIT_CMD_H_

#include <string>

#include "commands.h"

namespace enlace::cli {

struct AuditArgs {
  std::string collection, id;
  bool offline = false;  // the writes stored on this device, not the hub's history
  int max_attempts = 6;
};

// Prints the record's history as a table (or --json). Exit 5 when any write
// fails verification or the record has no write; 3/4 as for sync.
CliStatus RunAudit(Context& ctx, const AuditArgs& args);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_AUDIT_CMD_H_
