// The multi-value register merge of DESIGN §2, on metadata only.
//
// Each field of a record is a multi-value register built on dotted version
// vectors (Preguiça, Baquero et al., "Dotted Version Vectors: Logical Clocks
// for Optimistic Replication", 2010). A record keeps its causal context (the
// version vector of everything it has seen) and, per field, the siblings:
// (dot, hlc) of the writes whose value is still current. Values stay in the
// encrypted writes; this module never sees them.
#ifndef ENLACE_CORE_REPLICA_MERGE_H_
#define ENLACE_CORE_REPLICA_MERGE_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "enlace/types.h"

namespace enlace::internal {

struct Sibling {
  Dot dot;
  HlcTimestamp hlc;
  friend bool operator==(const Sibling&, const Sibling&) = default;
};

struct RecordState {
  VersionVector context;
  // field -> siblings sorted by dot; includes the existence register
  // (kDeletedField). A field with no siblings is absent.
  std::map<std::string, std::vector<Sibling>> fields;
  // The scope of the record's first write, which all its writes share
  // (docs/PROTOCOL.md §6.12); the merge itself does not read it.
  ScopeId scope;

  friend bool operator==(const RecordState&, const RecordState&) = default;
};

// Applies a write's metadata. If `state.context` already covers `dot` the
// write was seen or superseded and nothing changes (returns false).
// Otherwise, for each field in `fields`, every sibling whose dot `context`
// covers is removed and (dot, hlc) added; then the state's context absorbs
// `context` and `dot`. `fields` must include kDeletedField.
bool ApplyToRecord(RecordState& state, const Dot& dot, HlcTimestamp hlc,
                   const VersionVector& context, const std::vector<std::string>& fields);

// Applies a write that arrives after writes that had seen it: `state.context`
// covers `dot`, yet this device never merged it (it was kept aside for its
// key, or its first delivery was altered and it was asked for again). For
// each field in `fields` it stands unless a current sibling's writer had
// seen it (`saw(sibling, dot)`: that sibling's write context covers `dot`);
// where it stands, the siblings its own context covers give way, exactly as
// in-order delivery would have left them. Returns true when a field changed.
bool ApplyLate(RecordState& state, const Dot& dot, HlcTimestamp hlc, const VersionVector& context,
               const std::vector<std::string>& fields,
               const std::function<bool(const Sibling&, const Dot&)>& saw);

// Every dot that still holds a current value somewhere in the record.
std::set<Dot> LiveDots(const RecordState& state);

// The sibling whose value is shown: highest (hlc, device), deterministic on
// every replica. Precondition: !siblings.empty().
const Sibling& ShownSibling(const std::vector<Sibling>& siblings);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_REPLICA_MERGE_H_
