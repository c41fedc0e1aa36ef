// The team's schema: the built-in pack (enlace/schema.h) extended by the
// overlay a coordinator publishes to the team, and the hook that checks every
// Put and Resolve of a replica against it. Case work plugs into the engine
// only here: the replica asks its hook (enlace/replica.h, ReplicaHook)
// whether values may be written and tells it of writes to the reserved
// overlay record; it never sees a schema.
//
// Thread safety: as the Replica they are given (one thread at a time).
#ifndef ENLACE_TEAM_SCHEMA_H_
#define ENLACE_TEAM_SCHEMA_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/status.h"

namespace enlace {

// For ReplicaOptions::hook: each replica opened with it keeps its team's
// schema and, with `validate`, checks every Put and Resolve against the
// effective pack (an unknown field, a wrong type or a code outside its list
// is kInvalidArgument and nothing is written) and fills the defaults of new
// records. The CLI and the C API open every replica with it.
std::function<std::unique_ptr<ReplicaHook>()> TeamSchemaHook(bool validate = true);

// The effective schema pack: SchemaPack::Builtin() extended by the team's
// overlay, when the overlay record holds a valid overlay last written by a
// coordinator (per the members this device knows); otherwise the newest
// valid overlay seen before, or the built-in pack. Cached; recomputed when
// the overlay record or the members change. The pack is owned by the
// replica's hook and stays valid for the replica's life (a later call may
// return another). A replica opened without TeamSchemaHook gets a
// non-validating one here. kIoError/kCorruption only when the store fails.
Result<const SchemaPack*> TeamSchema(Replica& replica);

// Publishes `overlay_json` (docs/SCHEMA.md) to the team as an ordinary
// signed, encrypted write of the reserved record that travels by sync.
// kPermissionDenied unless this device is a coordinator (it created the
// team, or the hub lists it as one); kInvalidArgument when the overlay does
// not apply to the built-in pack or its version is not greater than the
// current overlay's. Nothing is written on error.
Status PublishOverlay(Replica& replica, std::string_view overlay_json);

// Why the team overlay is not (fully) in effect, e.g. "the overlay written
// by device 3f2a... was ignored: that device is not a coordinator; using
// overlay version 2"; empty when the effective pack is the latest overlay
// (or the built-in pack and no overlay was ever published).
std::string OverlayStatus(Replica& replica);

}  // namespace enlace

#endif  // ENLACE_TEAM_SCHEMA_H_
