#include "replica/merge.h"

#include <algorithm>
#include <tuple>

namespace enlace::internal {

bool ApplyToRecord(RecordState& state, const Dot& dot, HlcTimestamp hlc,
                   const VersionVector& context, const std::vector<std::string>& fields) {
  if (state.context.Covers(dot)) return false;
  for (const auto& field : fields) {
    auto& siblings = state.fields[field];
    std::erase_if(siblings, [&](const Sibling& s) { return context.Covers(s.dot); });
    siblings.push_back(Sibling{dot, hlc});
    std::sort(siblings.begin(), siblings.end(),
              [](const Sibling& a, const Sibling& b) { return a.dot < b.dot; });
  }
  state.context.Merge(context);
  state.context.Add(dot);
  return true;
}

bool ApplyLate(RecordState& state, const Dot& dot, HlcTimestamp hlc, const VersionVector& context,
               const std::vector<std::string>& fields,
               const std::function<bool(const Sibling&, const Dot&)>& saw) {
  bool changed = false;
  for (const auto& field : fields) {
    auto& siblings = state.fields[field];
    const bool superseded = std::any_of(siblings.begin(), siblings.end(), [&](const Sibling& s) {
      return s.dot == dot || saw(s, dot);
    });
    if (superseded) continue;
    std::erase_if(siblings, [&](const Sibling& s) { return context.Covers(s.dot); });
    siblings.push_back(Sibling{dot, hlc});
    std::sort(siblings.begin(), siblings.end(),
              [](const Sibling& a, const Sibling& b) { return a.dot < b.dot; });
    changed = true;
  }
  state.context.Merge(context);
  return changed;
}

std::set<Dot> LiveDots(const RecordState& state) {
  std::set<Dot> live;
  for (const auto& [field, siblings] : state.fields) {
    for (const auto& s : siblings) live.insert(s.dot);
  }
  return live;
}

const Sibling& ShownSibling(const std::vector<Sibling>& siblings) {
  return *std::max_element(siblings.begin(), siblings.end(),
                           [](const Sibling& a, const Sibling& b) {
                             return std::tie(a.hlc, a.dot.device) < std::tie(b.hlc, b.dot.device);
                           });
}

}  // namespace enlace::internal
