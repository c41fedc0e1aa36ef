#include "enlace/hlc.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace enlace {

uint64_t SystemWallClockMs() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

HybridClock::HybridClock(HlcOptions options, HlcTimestamp last)
    : options_(std::move(options)), last_(last) {
  if (!options_.wall_clock) options_.wall_clock = SystemWallClockMs;
}

uint64_t HybridClock::WallMs() const {
  const uint64_t wall = options_.wall_clock();
  if (offset_ms_ < 0 && wall < static_cast<uint64_t>(-offset_ms_)) return 0;
  return wall + static_cast<uint64_t>(offset_ms_);  // wraps correctly for negative offsets
}

namespace {
// The smallest timestamp greater than both `last` and (physical, 0).
HlcTimestamp Advance(HlcTimestamp last, uint64_t physical_ms) {
  if (physical_ms > last.physical_ms()) return HlcTimestamp::From(physical_ms, 0);
  if (last.logical() == 0xffff) {
    // At the very end of time (year 10889) stay put rather than wrap to zero.
    if (last.physical_ms() == (uint64_t{1} << 48) - 1) return last;
    return HlcTimestamp::From(last.physical_ms() + 1, 0);
  }
  return HlcTimestamp{last.value + 1};
}
}  // namespace

HlcTimestamp HybridClock::Now() {
  const uint64_t wall = std::min<uint64_t>(WallMs(), (uint64_t{1} << 48) - 1);
  last_ = Advance(last_, wall);
  return last_;
}

Status HybridClock::CheckDrift(HlcTimestamp remote) const {
  const uint64_t wall = WallMs();
  const uint64_t limit = options_.max_future_drift_ms > UINT64_MAX - wall
                             ? UINT64_MAX
                             : wall + options_.max_future_drift_ms;
  if (remote.physical_ms() > limit) {
    return Status::InvalidArgument("timestamp is " +
                                   std::to_string((remote.physical_ms() - wall) / 1000) +
                                   " s ahead of this device's clock (limit " +
                                   std::to_string(options_.max_future_drift_ms / 1000) + " s)");
  }
  return Status::Ok();
}

Status HybridClock::Observe(HlcTimestamp remote) {
  ENLACE_RETURN_IF_ERROR(CheckDrift(remote));
  if (remote > last_) last_ = remote;
  return Status::Ok();
}

}  // namespace enlace
