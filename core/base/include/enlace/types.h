// Strong types for the identifiers and clocks of the enlace data model.
#ifndef ENLACE_TYPES_H_
#define ENLACE_TYPES_H_

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace {

using Bytes = std::vector<uint8_t>;

// A random 128-bit identifier. `Tag` keeps device, record and team ids apart.
template <typename Tag>
struct Id128 {
  std::array<uint8_t, 16> bytes{};

  // Lower-case hex, 32 characters.
  std::string ToHex() const;
  // Parses 32 hex characters; anything else is kInvalidArgument.
  static Result<Id128> FromHex(std::string_view hex);
  // A fresh id from the libsodium CSPRNG.
  static Id128 Random();
  bool IsZero() const;

  friend auto operator<=>(const Id128&, const Id128&) = default;
  friend bool operator==(const Id128&, const Id128&) = default;
};

struct DeviceTag {};
struct RecordTag {};
struct TeamTag {};
struct ScopeTag {};
using DeviceId = Id128<DeviceTag>;
using RecordId = Id128<RecordTag>;
using TeamId = Id128<TeamTag>;
// Which part of a team's records a write belongs to (docs/PROTOCOL.md
// §6.12). All zero: the team's shared scope, which every member holds.
using ScopeId = Id128<ScopeTag>;

// A hybrid logical clock timestamp (Kulkarni et al., "Logical Physical Clocks",
// 2014): the upper 48 bits are milliseconds since the Unix epoch, the lower 16
// a logical counter. Ordered as a plain integer.
struct HlcTimestamp {
  uint64_t value = 0;

  static constexpr int kLogicalBits = 16;
  static HlcTimestamp From(uint64_t physical_ms, uint16_t logical) {
    return HlcTimestamp{(physical_ms << kLogicalBits) | logical};
  }
  uint64_t physical_ms() const { return value >> kLogicalBits; }
  uint16_t logical() const { return static_cast<uint16_t>(value & 0xffff); }

  friend auto operator<=>(const HlcTimestamp&, const HlcTimestamp&) = default;
  friend bool operator==(const HlcTimestamp&, const HlcTimestamp&) = default;
};

// One event of one device: the device's write counter (starting at 1).
struct Dot {
  DeviceId device;
  uint64_t counter = 0;

  friend auto operator<=>(const Dot&, const Dot&) = default;
  friend bool operator==(const Dot&, const Dot&) = default;
};

// A version vector: device -> highest counter seen. Ordered by device so its
// encoding is canonical.
class VersionVector {
 public:
  // True when this vector has seen `dot`.
  bool Covers(const Dot& dot) const;
  // The counter seen for `device`, 0 when none.
  uint64_t Get(const DeviceId& device) const;
  // Raises the entry for dot.device to at least dot.counter.
  void Add(const Dot& dot);
  // Pointwise maximum.
  void Merge(const VersionVector& other);

  const std::map<DeviceId, uint64_t>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  friend bool operator==(const VersionVector&, const VersionVector&) = default;

 private:
  std::map<DeviceId, uint64_t> entries_;
};

}  // namespace enlace

#endif  // ENLACE_TYPES_H_
