// Audit: who wrote what in one record, each write verified (issue 5).
//
// A record's history is the list of its encoded writes: from the hub
// (POST /v1/history, BuildHistoryRequest in sync.h, in log order) or, offline,
// from the writes this device still stores (Replica::StoredWrites(), which
// holds only writes with a current value: superseded ones are purged). Every
// write is verified exactly as Replica::ApplyRemote verifies it (team, a
// writer this device trusts, signature, clock, payload under its key
// version); the verified ones are replayed in order through the
// multi-value-register rules of DESIGN §2 to tell, per field, where a
// conflict appeared and where one was resolved.
//
// Thread safety: like the Replica it reads; one thread at a time.
#ifndef ENLACE_AUDIT_H_
#define ENLACE_AUDIT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/replica.h"
#include "enlace/status.h"
#include "enlace/types.h"
#include "enlace/write.h"

namespace enlace {

enum class AuditKind : uint8_t {
  kPut = 1,      // sets fields
  kDelete = 2,   // tombstone
  kRestore = 3,  // makes a deleted record live again (a put of no field)
  kErase = 4,    // tombstone that overwrites every field with null
};

// "put", "delete", "restore", "erase" (stable: JSON output).
const char* AuditKindName(AuditKind kind);

struct AuditField {
  std::string name;
  std::string value;      // canonical JSON, decrypted
  bool conflict = false;  // another current value was not covered: a conflict appeared
  bool resolved = false;  // covered two or more current values: a conflict was settled
};

struct AuditEntry {
  // False when not even the clear metadata decoded; dot, hlc and kind are
  // then unknown (zero).
  bool decoded = false;
  Dot dot;                  // the writer's device and write number
  std::string device_name;  // as the team's member list names it; "" when unknown
  HlcTimestamp hlc;
  AuditKind kind = AuditKind::kPut;
  // Every user field the write sets, with its value; empty for a write that
  // failed verification (its values are never decrypted or shown).
  std::vector<AuditField> fields;
  // The existence register: a delete concurrent with an edit (or the
  // reverse), and a write that settled such a conflict.
  bool existence_conflict = false;
  bool existence_resolved = false;
  // Ok, or why this device refuses the write (the same reason sync gives).
  Status verification;
  // A verified erase in the history covers this write: the right to be
  // forgotten outlives the hub's copy, so its values are withheld (fields
  // keep their names, values are empty) and only the erasure shows.
  bool erased = false;

  bool verified() const { return verification.ok(); }
};

enum class AuditOrder {
  kAsGiven,  // the hub's log order (a causal order)
  kByClock,  // sorted by (HLC, device, counter): for local writes, stored by dot
};

// Verifies and classifies `writes`, the history of record `record` of
// `collection`. A write of another record, one that fails verification, or a
// second write with the same dot and other bytes is listed as failed and
// left out of the replay; an exact duplicate is listed once. Values of
// writes an erase covers are withheld (AuditEntry::erased). Returns one
// entry per distinct write, in replay order. kFailedPrecondition when this
// device has no team; kIoError/kCorruption only when the local store fails.
Result<std::vector<AuditEntry>> AuditRecord(Replica& replica, std::string_view collection,
                                            const RecordId& record,
                                            const std::vector<Bytes>& writes,
                                            AuditOrder order = AuditOrder::kAsGiven);

}  // namespace enlace

#endif  // ENLACE_AUDIT_H_
