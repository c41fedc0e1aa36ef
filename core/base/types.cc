#include "enlace/types.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"

namespace enlace {

template <typename Tag>
std::string Id128<Tag>::ToHex() const {
  return internal::ToHex(bytes);
}

template <typename Tag>
Result<Id128<Tag>> Id128<Tag>::FromHex(std::string_view hex) {
  if (hex.size() != 32) return Status::InvalidArgument("an id is 32 hex characters");
  auto raw = internal::FromHex(hex);
  if (!raw.ok()) return Status::InvalidArgument("an id is 32 hex characters");
  Id128 id;
  std::memcpy(id.bytes.data(), raw->data(), id.bytes.size());
  return id;
}

template <typename Tag>
Id128<Tag> Id128<Tag>::Random() {
  Id128 id;
  internal::RandomFill(id.bytes);
  return id;
}

template <typename Tag>
bool Id128<Tag>::IsZero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

template struct Id128<DeviceTag>;
template struct Id128<RecordTag>;
template struct Id128<TeamTag>;
template struct Id128<ScopeTag>;

bool VersionVector::Covers(const Dot& dot) const { return Get(dot.device) >= dot.counter; }

uint64_t VersionVector::Get(const DeviceId& device) const {
  auto it = entries_.find(device);
  return it == entries_.end() ? 0 : it->second;
}

void VersionVector::Add(const Dot& dot) {
  if (dot.counter == 0) return;
  uint64_t& c = entries_[dot.device];
  c = std::max(c, dot.counter);
}

void VersionVector::Merge(const VersionVector& other) {
  for (const auto& [device, counter] : other.entries_) Add(Dot{device, counter});
}

}  // namespace enlace
