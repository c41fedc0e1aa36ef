// Randomized convergence (DESIGN §2, invariant 3): replicas that have seen
// the same writes have identical state, whatever the causal order of
// delivery, with duplicates, and when a replica bootstraps from a compacted
// log (superseded writes dropped) and then receives the dropped writes late.
// Some writes also arrive out of causal order (a write kept aside for its key
// or asked for again after an altered delivery, while writes that had seen it
// were merged: ApplyLate), and one member is hostile: it sends validly signed
// writes under key versions nobody was granted, floods, and alters other
// members' writes on the way. The honest replicas converge all the same.
//
// ENLACE_CONVERGENCE_SCHEDULES sets the number of schedules (default 2000);
// ENLACE_CONVERGENCE_SEED replays one run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::FakeClock;
using testing::TempDir;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

struct Totals {
  uint64_t schedules = 0, writes = 0, deliveries = 0, duplicates = 0, conflicts = 0,
           delete_conflicts = 0, bootstraps = 0, late_writes = 0, equal_pairs = 0, restamped = 0,
           out_of_order = 0, forged = 0, tampered = 0, floods = 0;
};

// One randomized schedule over a fresh team.
class Schedule {
 public:
  static constexpr int kReplicas = 4;  // the last one may join late by bootstrap

  Schedule(uint64_t seed, Totals& totals) : rng_(seed), totals_(totals) {
    for (int i = 0; i < kReplicas; ++i) {
      auto options = testing::TestOptions(dir_.File("r" + std::to_string(i)), &clock_,
                                          /*in_memory=*/true);
      replicas_.push_back(testing::MakeReplica(options, "pass"));
    }
    REQUIRE(CreateTeam(*replicas_[0]).ok());
    for (int i = 1; i < kReplicas; ++i) testing::JoinTeam(*replicas_[0], *replicas_[i]);
    for (int i = 1; i < kReplicas; ++i) {
      for (int j = 1; j < kReplicas; ++j) {
        if (i != j)
          REQUIRE(TrustDevice(*replicas_[i], replicas_[j]->device_id(), replicas_[j]->public_keys())
                      .ok());
      }
    }
    applied_.resize(kReplicas);
    active_ = {true, true, true, Pick(2) == 0};  // replica 3 starts active or joins later
    late_joiner_ = !active_[3];
  }

  void Run() {
    const int steps = 12 + Pick(24);
    for (int step = 0; step < steps; ++step) {
      if (late_joiner_ && !active_[3] && Pick(steps) == 0 && CanBootstrapFrom(1)) Bootstrap(3, 1);
      const int r = RandomActive();
      switch (Pick(12)) {
        case 0:
        case 1:
        case 2:
          LocalPut(r);
          break;
        case 3:
          LocalDelete(r);
          break;
        case 4:
          LocalResolve(r);
          break;
        case 5:
          Pick(2) == 0 ? LocalErase(r) : ToggleClockAhead(r);
          break;
        case 6:
          Hostile(r);
          break;
        case 7:
          DeliverOutOfOrder(r);
          break;
        default:
          Deliver(r);
          break;
      }
      clock_.now_ms += Pick(3);  // clocks barely move: HLC ties are common
    }
    for (int i = 0; i < kReplicas; ++i) {
      if (skewed_[i]) ToggleClockAhead(i);  // every clock is right in the end
    }
    if (late_joiner_ && !active_[3]) Bootstrap(3, 0);
    // Deliver everything everywhere, still in random causal orders.
    for (;;) {
      std::vector<int> behind;
      for (int i = 0; i < kReplicas; ++i) {
        if (!ReadyFor(i).empty()) behind.push_back(i);
      }
      if (behind.empty()) break;
      Deliver(behind[Pick(static_cast<int>(behind.size()))], /*allow_duplicate=*/false);
    }
    const std::string reference = Dump(0);
    for (int i = 1; i < kReplicas; ++i) {
      INFO("replica ", i, " differs from replica 0 after seeing every write");
      CHECK(Dump(i) == reference);
    }
    CompactedBootstrapThenLateWrites(reference);
    CountConflicts();
    ++totals_.schedules;
  }

 private:
  struct LoggedWrite {
    std::set<size_t> deps;  // what the writer had applied when writing
    Bytes bytes;
    Dot dot;
  };

  template <typename... A>
  static void Trace(const char* fmt, A... a) {
    if (std::getenv("ENLACE_CONVERGENCE_TRACE") == nullptr) return;
    std::fprintf(stderr, fmt, a...);
    std::fputc('\n', stderr);
  }

  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  int RandomActive() {
    for (;;) {
      const int r = Pick(kReplicas);
      if (active_[r]) return r;
    }
  }

  std::string Dump(int r) {
    auto d = replicas_[r]->DumpState();
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    return *d;
  }

  // Records the writes a local operation just made on replica r. Writes made
  // while r's clock runs ahead are withheld: the hub would refuse them.
  // Voids (numbers of writes superseded before they were sent) change no
  // record: they are not logged. `allow_none`: the operation may have made
  // only voids.
  std::vector<size_t> LogLocalWrite(int r, const std::set<size_t>* deps = nullptr,
                                    bool allow_none = false) {
    auto pending = replicas_[r]->PendingWrites(SIZE_MAX);
    REQUIRE(pending.ok());
    std::vector<size_t> logged;
    for (const auto& [counter, bytes] : *pending) {
      if (counter <= last_logged_[r]) continue;
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      if (w->kind == WriteKind::kVoid) continue;
      // A device pushes in counter order: each write needs its predecessors.
      std::set<size_t> needs = deps != nullptr ? *deps : applied_[r];
      needs.insert(logged.begin(), logged.end());
      writes_.push_back(LoggedWrite{std::move(needs), bytes, w->dot});
      Trace("replica %d wrote #%zu %s:%llu kind %d fields %zu hlc %llu%s", r, writes_.size() - 1,
            w->dot.device.ToHex().substr(0, 4).c_str(), (unsigned long long)w->dot.counter,
            (int)w->kind, w->fields.size(), (unsigned long long)w->hlc.physical_ms(),
            skewed_[r] ? " (withheld)" : "");
      const size_t index = writes_.size() - 1;
      applied_[r].insert(index);
      index_by_dot_[w->dot] = index;
      if (skewed_[r]) withheld_[index] = {};
      last_logged_[r] = counter;
      logged.push_back(index);
      ++totals_.writes;
    }
    if (!allow_none) REQUIRE_FALSE(logged.empty());
    return logged;
  }

  // Replica r's clock jumps two hours ahead, or comes back and re-stamps the
  // writes it made meanwhile (what a sync does once the hub's time is known).
  void ToggleClockAhead(int r) {
    if (!skewed_[r]) {
      replicas_[r]->clock().SetWallClockOffsetMs(2 * 3600 * 1000);
      skewed_[r] = true;
      return;
    }
    replicas_[r]->clock().SetWallClockOffsetMs(0);
    skewed_[r] = false;
    std::vector<size_t> mine;
    for (const auto& [index, replaced_by] : withheld_) {
      if (replaced_by.empty() && writes_[index].dot.device == replicas_[r]->device_id()) {
        mine.push_back(index);
      }
    }
    auto& impl = replicas_[r]->impl();
    auto tx = impl.store().Begin();
    REQUIRE(tx.ok());
    auto made = impl.RestampFutureWrites(60 * 1000);
    REQUIRE_MESSAGE(made.ok(), made.status().ToString());
    REQUIRE((*tx)->Commit().ok());
    if (*made == 0) {
      CHECK(mine.empty());  // everything it wrote ahead was superseded already
      for (size_t i : mine) withheld_.erase(i);
      return;
    }
    // The new writes stand in for the withheld ones; they need none of them.
    std::set<size_t> deps = applied_[r];
    for (size_t i : mine) deps.erase(i);
    Trace("replica %d re-stamps %zu withheld writes", r, mine.size());
    const std::vector<size_t> batch = LogLocalWrite(r, &deps, /*allow_none=*/true);
    if (batch.empty()) {
      CHECK(mine.empty());  // only voids were made again
      return;
    }
    for (size_t i : mine) withheld_[i] = batch;
    totals_.restamped += batch.size();
  }

  // A dependency is met when applied, or when it was withheld and the writes
  // that replaced it are applied.
  bool Satisfied(int r, size_t dep) const {
    if (applied_[r].contains(dep)) return true;
    auto it = withheld_.find(dep);
    if (it == withheld_.end() || it->second.empty()) return false;
    return std::all_of(it->second.begin(), it->second.end(),
                       [&](size_t i) { return applied_[r].contains(i); });
  }

  std::vector<size_t> ReadyFor(int r) const {
    std::vector<size_t> ready;
    for (size_t i = 0; i < writes_.size(); ++i) {
      if (applied_[r].contains(i) || withheld_.contains(i)) continue;
      if (std::all_of(writes_[i].deps.begin(), writes_[i].deps.end(),
                      [&](size_t d) { return Satisfied(r, d); })) {
        ready.push_back(i);
      }
    }
    return ready;
  }

  bool CanBootstrapFrom(int source) const { return !skewed_[source]; }

  RecordId RandomRecord() {
    if (records_.empty() || (records_.size() < 3 && Pick(4) == 0)) {
      records_.push_back(RecordId::Random());
    }
    return records_[Pick(static_cast<int>(records_.size()))];
  }

  std::string RandomValue() {
    switch (Pick(4)) {
      case 0:
        return std::to_string(Pick(5));
      case 1:
        return "\"v" + std::to_string(Pick(5)) + "\"";
      case 2:
        return Pick(2) == 0 ? "true" : "null";
      default:
        return "[" + std::to_string(Pick(3)) + ",\"x\"]";
    }
  }

  void LocalPut(int r) {
    Fields fields;
    const int n = 1 + Pick(3);
    for (int i = 0; i < n; ++i) fields["f" + std::to_string(Pick(3))] = RandomValue();
    const RecordId record = RandomRecord();
    auto id = replicas_[r]->Put("cases", record, fields);
    if (!id.ok()) {
      REQUIRE_MESSAGE(id.status().code() == StatusCode::kFailedPrecondition,
                      id.status().ToString());
      // A deleted record: sometimes restore it instead.
      if (Pick(2) == 0 && replicas_[r]->Restore("cases", record).ok()) LogLocalWrite(r);
      return;
    }
    LogLocalWrite(r);
  }

  void LocalDelete(int r) {
    if (records_.empty()) return;
    const Status s =
        replicas_[r]->Delete("cases", records_[Pick(static_cast<int>(records_.size()))]);
    if (s.ok())
      LogLocalWrite(r);
    else
      REQUIRE_MESSAGE(
          (s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kNotFound),
          s.ToString());
  }

  void LocalErase(int r) {
    if (records_.empty() || Pick(3) != 0) return;  // rarer than the rest
    const Status s =
        replicas_[r]->Erase("cases", records_[Pick(static_cast<int>(records_.size()))]);
    if (s.ok())
      LogLocalWrite(r);
    else
      REQUIRE_MESSAGE(s.code() == StatusCode::kNotFound, s.ToString());
  }

  void LocalResolve(int r) {
    auto conflicts = replicas_[r]->Conflicts();
    REQUIRE(conflicts.ok());
    if (conflicts->empty()) {
      LocalPut(r);
      return;
    }
    const Conflict& c = (*conflicts)[Pick(static_cast<int>(conflicts->size()))];
    const std::string value = c.field == kDeletedField
                                  ? (Pick(2) == 0 ? "true" : "false")
                                  : c.siblings[Pick(static_cast<int>(c.siblings.size()))].value;
    const Status s = replicas_[r]->Resolve(c.collection, c.id, c.field, value);
    if (s.ok()) {
      LogLocalWrite(r);
      return;
    }
    // A field conflict on a record that is also in a delete conflict must
    // wait for the delete to be settled.
    REQUIRE_MESSAGE(s.code() == StatusCode::kFailedPrecondition, s.ToString());
  }

  // Delivers one causally ready write (or, sometimes, a duplicate) to r.
  void Deliver(int r, bool allow_duplicate = true) {
    const std::vector<size_t> ready = ReadyFor(r);
    if (allow_duplicate && !applied_[r].empty() && (ready.empty() || Pick(5) == 0)) {
      auto it = applied_[r].begin();
      std::advance(it, Pick(static_cast<int>(applied_[r].size())));
      if (withheld_.contains(*it)) return;
      const std::string before = Dump(r);
      auto outcome = replicas_[r]->ApplyRemote(writes_[*it].bytes);
      REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
      CHECK(*outcome == ApplyOutcome::kAlreadySeen);
      CHECK(Dump(r) == before);
      ++totals_.duplicates;
      return;
    }
    if (ready.empty()) return;
    const size_t w = ready[Pick(static_cast<int>(ready.size()))];
    auto outcome = replicas_[r]->ApplyRemote(writes_[w].bytes);
    REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
    Trace("replica %d applied #%zu: %s", r, w,
          *outcome == ApplyOutcome::kApplied ? "applied" : "already seen");
    applied_[r].insert(w);
    ++totals_.deliveries;
    CheckEqualSetsEqualStates(r);
  }

  // Replica kHostile is a member gone bad. Against replica r it sends a
  // validly signed write under a key version no one was granted, or another
  // member's write altered on the way, or floods with many writes at once.
  static constexpr int kHostile = 2;
  void Hostile(int r) {
    switch (Pick(3)) {
      case 0: {  // a key version nobody holds
        std::vector<size_t> own;
        for (size_t i = 0; i < writes_.size(); ++i) {
          if (writes_[i].dot.device == replicas_[kHostile]->device_id()) own.push_back(i);
        }
        if (own.empty() || r == kHostile) return;
        auto w = Write::Decode(writes_[own[Pick(static_cast<int>(own.size()))]].bytes);
        REQUIRE(w.ok());
        w->key_version = 1000 + static_cast<uint32_t>(Pick(1 << 20));
        const auto& impl = replicas_[kHostile]->impl();
        REQUIRE(internal::SealWrite(*w, std::vector<std::string>(w->fields.size(), "1"),
                                    internal::SecretBytes::Random(32),
                                    impl.vault().secrets().signing.secret_key)
                    .ok());
        ExpectRefused(r, w->Encode());
        ++totals_.forged;
        return;
      }
      case 1: {  // another member's write, altered on the way
        if (writes_.empty()) return;
        const size_t i = static_cast<size_t>(Pick(static_cast<int>(writes_.size())));
        if (withheld_.contains(i)) return;
        Bytes altered = writes_[i].bytes;
        altered[static_cast<size_t>(Pick(static_cast<int>(altered.size())))] ^=
            static_cast<uint8_t>(1 << Pick(8));
        ExpectRefused(r, altered);
        ++totals_.tampered;
        return;
      }
      default:  // a flood: many valid writes at once
        if (!active_[kHostile]) return;
        for (int i = 0; i < 6; ++i) LocalPut(kHostile);
        ++totals_.floods;
        return;
    }
  }

  // `bytes` is refused by replica r and changes nothing there.
  void ExpectRefused(int r, const Bytes& bytes) {
    const std::string before = Dump(r);
    auto outcome = replicas_[r]->ApplyRemote(bytes);
    CHECK_FALSE(outcome.ok());
    CHECK(Dump(r) == before);
  }

  // Delivers to r a write whose causal predecessors r has not all seen (it
  // was kept aside, or its first delivery was refused, while later writes
  // were merged); they arrive later and the result must be the same.
  void DeliverOutOfOrder(int r) {
    std::vector<size_t> early;
    for (size_t i = 0; i < writes_.size(); ++i) {
      if (applied_[r].contains(i) || withheld_.contains(i)) continue;
      if (!std::all_of(writes_[i].deps.begin(), writes_[i].deps.end(),
                       [&](size_t d) { return Satisfied(r, d); })) {
        early.push_back(i);
      }
    }
    if (early.empty()) {
      Deliver(r);
      return;
    }
    const size_t w = early[Pick(static_cast<int>(early.size()))];
    auto outcome = replicas_[r]->ApplyRemote(writes_[w].bytes);
    REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
    Trace("replica %d applied #%zu out of causal order", r, w);
    applied_[r].insert(w);
    ++totals_.out_of_order;
    CheckEqualSetsEqualStates(r);
  }

  // Any two active replicas that have applied the same writes are identical.
  void CheckEqualSetsEqualStates(int r) {
    for (int j = 0; j < kReplicas; ++j) {
      if (j == r || !active_[j] || applied_[j] != applied_[r]) continue;
      INFO("replicas ", r, " and ", j, " saw the same ", applied_[r].size(), " writes");
      CHECK(Dump(j) == Dump(r));
      ++totals_.equal_pairs;
    }
  }

  // Replica `joiner` starts from `source`'s compacted store (only writes that
  // still hold a current value), applied in log order, then carries on.
  void Bootstrap(int joiner, int source) {
    auto stored = replicas_[source]->StoredWrites();
    REQUIRE(stored.ok());
    std::map<size_t, const Bytes*> in_log_order;
    for (const auto& bytes : *stored) {
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      in_log_order[index_by_dot_.at(w->dot)] = &bytes;
    }
    for (const auto& [index, bytes] : in_log_order) {
      auto outcome = replicas_[joiner]->ApplyRemote(*bytes);
      REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
    }
    applied_[joiner] = applied_[source];
    active_[joiner] = true;
    CHECK(Dump(joiner) == Dump(source));
    ++totals_.bootstraps;
  }

  // A fresh replica bootstraps from the compacted log of the final state and
  // must equal everyone; then every dropped (superseded) write arrives late
  // and must change nothing.
  void CompactedBootstrapThenLateWrites(const std::string& reference) {
    auto fresh = testing::MakeReplica(
        testing::TestOptions(dir_.File("fresh"), &clock_, /*in_memory=*/true), "pass");
    testing::JoinTeam(*replicas_[0], *fresh);
    for (int i = 1; i < kReplicas; ++i) {
      REQUIRE(TrustDevice(*fresh, replicas_[i]->device_id(), replicas_[i]->public_keys()).ok());
    }
    auto stored = replicas_[0]->StoredWrites();
    REQUIRE(stored.ok());
    std::set<size_t> kept;
    for (const auto& bytes : *stored) {
      auto w = Write::Decode(bytes);
      REQUIRE(w.ok());
      kept.insert(index_by_dot_.at(w->dot));
    }
    for (size_t i : kept) REQUIRE(fresh->ApplyRemote(writes_[i].bytes).ok());
    auto d = fresh->DumpState();
    REQUIRE(d.ok());
    INFO("a replica bootstrapped from the compacted log differs");
    CHECK(*d == reference);

    std::vector<size_t> dropped;
    for (size_t i = 0; i < writes_.size(); ++i) {
      if (!kept.contains(i) && !withheld_.contains(i)) dropped.push_back(i);
    }
    std::shuffle(dropped.begin(), dropped.end(), rng_);
    for (size_t i : dropped) {
      auto outcome = fresh->ApplyRemote(writes_[i].bytes);
      REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
      CHECK(*outcome == ApplyOutcome::kAlreadySeen);
      ++totals_.late_writes;
    }
    auto after = fresh->DumpState();
    REQUIRE(after.ok());
    CHECK(*after == reference);
  }

  void CountConflicts() {
    auto conflicts = replicas_[0]->Conflicts();
    REQUIRE(conflicts.ok());
    for (const auto& c : *conflicts) {
      if (c.field == kDeletedField)
        ++totals_.delete_conflicts;
      else
        ++totals_.conflicts;
    }
  }

  std::mt19937_64 rng_;
  Totals& totals_;
  TempDir dir_{/*in_memory_fs=*/true};
  FakeClock clock_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::set<size_t>> applied_;
  std::vector<bool> active_;
  bool late_joiner_ = false;
  std::vector<LoggedWrite> writes_;
  std::vector<uint64_t> last_logged_ = std::vector<uint64_t>(kReplicas, 0);
  std::vector<bool> skewed_ = std::vector<bool>(kReplicas, false);
  std::map<size_t, std::vector<size_t>> withheld_;  // -> the writes that replaced it
  std::map<Dot, size_t> index_by_dot_;
  std::vector<RecordId> records_;
};

TEST_CASE("replicas that saw the same writes converge in any causal order") {
  const uint64_t schedules = EnvOr("ENLACE_CONVERGENCE_SCHEDULES", 2000);
  const uint64_t base_seed = EnvOr("ENLACE_CONVERGENCE_SEED", std::random_device{}());
  Totals totals;
  for (uint64_t i = 0; i < schedules; ++i) {
    const uint64_t seed = base_seed + i;
    INFO("schedule seed ", seed, " (replay: ENLACE_CONVERGENCE_SEED=", seed,
         " ENLACE_CONVERGENCE_SCHEDULES=1)");
    Schedule(seed, totals).Run();
  }
  std::printf(
      "convergence: %llu schedules (base seed %llu): %llu writes, %llu deliveries, "
      "%llu duplicates, %llu equal-set checks, %llu field conflicts and %llu delete conflicts "
      "left, %llu mid-run bootstraps, %llu late superseded writes ignored, %llu writes "
      "re-stamped after a clock ran ahead, %llu delivered out of causal order; a hostile "
      "member: %llu writes under keys nobody holds, %llu altered deliveries, %llu floods\n",
      static_cast<unsigned long long>(totals.schedules), static_cast<unsigned long long>(base_seed),
      static_cast<unsigned long long>(totals.writes),
      static_cast<unsigned long long>(totals.deliveries),
      static_cast<unsigned long long>(totals.duplicates),
      static_cast<unsigned long long>(totals.equal_pairs),
      static_cast<unsigned long long>(totals.conflicts),
      static_cast<unsigned long long>(totals.delete_conflicts),
      static_cast<unsigned long long>(totals.bootstraps),
      static_cast<unsigned long long>(totals.late_writes),
      static_cast<unsigned long long>(totals.restamped),
      static_cast<unsigned long long>(totals.out_of_order),
      static_cast<unsigned long long>(totals.forged),
      static_cast<unsigned long long>(totals.tampered),
      static_cast<unsigned long long>(totals.floods));
  CHECK(totals.schedules == schedules);
  // The generator must actually exercise what it claims to.
  if (schedules >= 200) {
    CHECK(totals.conflicts > 0);
    CHECK(totals.delete_conflicts > 0);
    CHECK(totals.bootstraps > 0);
    CHECK(totals.late_writes > 0);
    CHECK(totals.duplicates > 0);
    CHECK(totals.restamped > 0);
    CHECK(totals.out_of_order > 0);
    CHECK(totals.forged > 0);
    CHECK(totals.tampered > 0);
    CHECK(totals.floods > 0);
  }
}

}  // namespace
}  // namespace enlace
