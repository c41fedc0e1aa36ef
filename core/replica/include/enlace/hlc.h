// Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks
// and Consistent Snapshots in Globally Distributed Databases", 2014).
//
// The clock decides only which sibling of a conflict is shown, never whether
// there is a conflict. It never goes backwards: not when the wall clock jumps
// back, and not across restarts (the owner persists last() and passes it back
// in). Remote timestamps too far in the future are refused so one device with
// a wrong clock cannot drag everyone's clocks ahead.
//
// Not thread-safe; the owner serialises access.
#ifndef ENLACE_HLC_H_
#define ENLACE_HLC_H_

#include <cstdint>
#include <functional>

#include "enlace/status.h"
#include "enlace/types.h"

namespace enlace {

// Milliseconds since the Unix epoch. Injected so tests are deterministic.
using WallClock = std::function<uint64_t()>;

// The system clock (std::chrono::system_clock) in milliseconds.
uint64_t SystemWallClockMs();

struct HlcOptions {
  WallClock wall_clock;                          // empty: SystemWallClockMs
  uint64_t max_future_drift_ms = 5 * 60 * 1000;  // remote stamps further ahead are refused
};

class HybridClock {
 public:
  // `last` is the highest timestamp this clock has ever issued or observed
  // (persisted by the owner); the clock never returns anything <= last.
  explicit HybridClock(HlcOptions options, HlcTimestamp last = {});

  // A timestamp for a local event, strictly greater than every earlier one.
  HlcTimestamp Now();

  // Observes a remote timestamp. kInvalidArgument, with the clock unchanged,
  // when remote is more than max_future_drift_ms ahead of the (corrected)
  // wall clock. On success the next Now() is greater than `remote`.
  Status Observe(HlcTimestamp remote);

  // Whether `remote` would be accepted by Observe, without changing anything.
  Status CheckDrift(HlcTimestamp remote) const;

  // Sets a correction added to the wall clock, e.g. (hub time - local wall
  // time) when the device's clock is known to be wrong.
  void SetWallClockOffsetMs(int64_t offset_ms) { offset_ms_ = offset_ms; }
  int64_t wall_clock_offset_ms() const { return offset_ms_; }

  HlcTimestamp last() const { return last_; }

  // The one exception to "never backwards": when the device learns that its
  // wall clock was ahead (the hub's time says so), its clock returns to
  // `t`. Stamps only order the display of concurrent values; causality, and
  // so conflict detection, never depends on them.
  void RewindTo(HlcTimestamp t) { last_ = t; }

  // The corrected wall clock in milliseconds.
  uint64_t WallMs() const;

 private:
  HlcOptions options_;
  HlcTimestamp last_;
  int64_t offset_ms_ = 0;
};

}  // namespace enlace

#endif  // ENLACE_HLC_H_
