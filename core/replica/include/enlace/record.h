// A record as a reader sees it: each field's shown value and every current
// value of a conflict, with who wrote it and when (Replica::Get, List,
// Conflicts in enlace/replica.h).
#ifndef ENLACE_RECORD_H_
#define ENLACE_RECORD_H_

#include <map>
#include <string>
#include <vector>

#include "enlace/types.h"

namespace enlace {

// field -> JSON text
using Fields = std::map<std::string, std::string>;

// One current value of a field, with who wrote it and when.
struct SiblingValue {
  Dot dot;
  HlcTimestamp hlc;
  std::string value;  // canonical JSON; "null" once erased
};

struct FieldValue {
  std::string value;                   // the shown value (highest hlc, then device)
  std::vector<SiblingValue> siblings;  // every current value, sorted by dot
  bool conflict() const { return siblings.size() > 1; }
};

struct Record {
  std::string collection;
  RecordId id;
  std::map<std::string, FieldValue> fields;  // user fields only
  // The existence register (kDeletedField): deleted when every sibling says
  // so; a delete concurrent with an edit is a conflict.
  bool deleted = false;
  bool delete_conflict = false;
  std::vector<SiblingValue> existence;  // "true" = deleted, "false" = live
};

// A field of a record that has several current values; for a delete
// conflict, `field` is kDeletedField and the values are "true"/"false".
struct Conflict {
  std::string collection;
  RecordId id;
  std::string field;
  std::vector<SiblingValue> siblings;
  std::string shown;
};

enum class ApplyOutcome {
  kApplied,      // merged into the record
  kAlreadySeen,  // this write, or one that supersedes it, was already here
};

}  // namespace enlace

#endif  // ENLACE_RECORD_H_
