// What the write fuzzer and its seed generator share: a fixed wall clock and
// fixed record ids, so the seeds' writes land on records the fuzzer's
// replica already holds.
#ifndef ENLACE_FUZZ_FUZZ_TEAM_H_
#define ENLACE_FUZZ_FUZZ_TEAM_H_

#include <cstdint>

#include "enlace/replica.h"
#include "enlace/types.h"

namespace enlace::fuzz {

inline constexpr uint64_t kClockMs = 1'780'000'000'000;  // 2026
inline constexpr char kPassphrase[] = "fuzz";
inline constexpr int kRecordCount = 4;

// Record i of the fixed set (i < kRecordCount).
inline RecordId FixedRecord(int i) {
  RecordId r;
  r.bytes.fill(0xf0);
  r.bytes[15] = static_cast<uint8_t>(i);
  return r;
}

// Options for a replica in `dir`: in-memory store, cheapest KDF, fixed clock.
inline ReplicaOptions FuzzOptions(const std::string& dir) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  o.in_memory_store = true;
  o.clock.wall_clock = [] { return kClockMs; };
  return o;
}

}  // namespace enlace::fuzz

#endif  // ENLACE_FUZZ_FUZZ_TEAM_H_
