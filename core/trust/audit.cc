#include "enlace/audit.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "replica/merge.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"

namespace enlace {

namespace {

// One write of the history with what is known about it.
struct Candidate {
  Bytes encoded;
  std::optional<Write> metadata;  // the clear metadata, when it decodes
};

AuditKind KindOf(const Write& w) {
  switch (w.kind) {
    case WriteKind::kDelete:
      return AuditKind::kDelete;
    case WriteKind::kErase:
      return AuditKind::kErase;
    case WriteKind::kPut:
    case WriteKind::kVoid:  // names no record: never in a record's history
      break;
  }
  // Replica::Restore writes a put of no field: only the existence register.
  return w.fields.empty() ? AuditKind::kRestore : AuditKind::kPut;
}

// How `context` meets the current siblings of one field: whether a sibling
// stays beside the new value (a conflict) and whether it covers two or more
// (a conflict settled).
std::pair<bool, bool> Classify(const std::vector<internal::Sibling>& siblings,
                               const VersionVector& context) {
  size_t covered = 0;
  for (const auto& s : siblings) {
    if (context.Covers(s.dot)) ++covered;
  }
  return {covered < siblings.size(), covered >= 2};
}

}  // namespace

const char* AuditKindName(AuditKind kind) {
  switch (kind) {
    case AuditKind::kPut:
      return "put";
    case AuditKind::kDelete:
      return "delete";
    case AuditKind::kRestore:
      return "restore";
    case AuditKind::kErase:
      return "erase";
  }
  return "put";
}

Result<std::vector<AuditEntry>> AuditRecord(Replica& replica, std::string_view collection,
                                            const RecordId& record,
                                            const std::vector<Bytes>& writes, AuditOrder order) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  auto& impl = replica.impl();

  std::vector<Candidate> candidates;
  candidates.reserve(writes.size());
  for (const Bytes& bytes : writes) {
    Candidate c{bytes, std::nullopt};
    if (auto w = Write::Decode(bytes, impl.options().limits); w.ok()) c.metadata = std::move(*w);
    candidates.push_back(std::move(c));
  }
  if (order == AuditOrder::kByClock) {
    // HLC order is causal: a device stamps a write after every write it had
    // applied. Writes whose metadata does not decode go last.
    std::stable_sort(
        candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
          if (!a.metadata || !b.metadata) return a.metadata && !b.metadata;
          return std::tie(a.metadata->hlc, a.metadata->dot.device, a.metadata->dot.counter) <
                 std::tie(b.metadata->hlc, b.metadata->dot.device, b.metadata->dot.counter);
        });
  }

  std::map<DeviceId, std::string> names;
  ENLACE_ASSIGN_OR_RETURN(auto members, impl.store().ListMembers());
  for (const Member& m : members) names[m.device] = m.name;

  internal::RecordState state;
  std::map<Dot, bool> deleting;  // per replayed write: does it say "deleted"?
  std::map<Dot, const Bytes*> seen;
  std::vector<VersionVector> erasures;  // contexts of verified erase writes
  std::vector<AuditEntry> out;
  out.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    AuditEntry e;
    if (c.metadata) {
      const Write& m = *c.metadata;
      e.decoded = true;
      e.dot = m.dot;
      e.hlc = m.hlc;
      e.kind = KindOf(m);
      if (auto it = names.find(m.dot.device); it != names.end()) e.device_name = it->second;
      if (auto it = seen.find(m.dot); it != seen.end()) {
        if (*it->second == c.encoded) continue;  // the same write twice: listed once
        e.verification = Status::Corruption("write number " + m.dot.device.ToHex().substr(0, 8) +
                                            ":" + std::to_string(m.dot.counter) +
                                            " appears twice with different content");
        out.push_back(std::move(e));
        continue;
      }
    }
    // The very checks ApplyRemote makes before it merges anything.
    auto verified = impl.DecodeAndVerify(c.encoded);
    if (!verified.ok()) {
      if (verified.status().code() == StatusCode::kIoError) return verified.status();
      e.verification = verified.status();
      out.push_back(std::move(e));
      continue;
    }
    const Write& w = *verified;
    if (w.collection != collection || w.record != record) {
      e.verification = Status::Corruption("the write belongs to another record (" + w.collection +
                                          " " + w.record.ToHex().substr(0, 8) + ")");
      out.push_back(std::move(e));
      continue;
    }
    ENLACE_ASSIGN_OR_RETURN(const internal::SecretBytes* key, impl.TeamKey(w.key_version));
    auto values = internal::OpenWritePayload(w, *key);
    if (!values.ok()) {
      e.verification = values.status();
      out.push_back(std::move(e));
      continue;
    }
    seen[w.dot] = &c.encoded;

    // Replay (DESIGN §2): classify against the current siblings, then apply.
    const bool fresh = !state.context.Covers(w.dot);
    for (size_t i = 0; i < w.fields.size(); ++i) {
      AuditField f{w.fields[i], (*values)[i], false, false};
      if (fresh) std::tie(f.conflict, f.resolved) = Classify(state.fields[w.fields[i]], w.context);
      e.fields.push_back(std::move(f));
    }
    if (fresh) {
      // The existence register is in conflict only when its current values
      // disagree: deleted beside live (Replica's delete_conflict).
      const bool deletes = w.kind != WriteKind::kPut;
      bool covered_deleted = false, covered_live = false;
      bool kept_deleted = deletes, kept_live = !deletes;
      for (const auto& sib : state.fields[kDeletedField]) {
        const bool deleted = deleting.at(sib.dot);
        if (w.context.Covers(sib.dot)) {
          (deleted ? covered_deleted : covered_live) = true;
        } else {
          (deleted ? kept_deleted : kept_live) = true;
        }
      }
      e.existence_conflict = kept_deleted && kept_live;
      e.existence_resolved = covered_deleted && covered_live;
      deleting[w.dot] = deletes;
      std::vector<std::string> fields = w.fields;
      fields.push_back(kDeletedField);
      internal::ApplyToRecord(state, w.dot, w.hlc, w.context, fields);
    }
    if (w.kind == WriteKind::kErase) erasures.push_back(w.context);
    out.push_back(std::move(e));
  }
  // An erased value leaves the audit too (SCENARIOS 5): only that an
  // erasure happened stays.
  for (AuditEntry& e : out) {
    if (!e.verified() || e.kind == AuditKind::kErase) continue;
    const bool covered = std::any_of(erasures.begin(), erasures.end(),
                                     [&](const VersionVector& c) { return c.Covers(e.dot); });
    if (!covered) continue;
    e.erased = true;
    for (AuditField& f : e.fields) f.value.clear();
  }
  return out;
}

}  // namespace enlace
