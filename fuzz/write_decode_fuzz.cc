// libFuzzer target for Write::Decode and Replica::ApplyRemote (DESIGN
// invariant 4: bad input gets a clear error, never a crash).
//
// Each input is treated as an encoded write and goes three ways:
//  1. Write::Decode with the default and with tight limits. Whatever decodes
//     must re-encode to the same bytes (one encoding per write), and tight
//     limits may only refuse more, never accept more.
//  2. Replica::ApplyRemote of the raw bytes on a replica that holds a small
//     history (conflicts, a deleted record, its own write). No input can
//     carry a valid signature of this run's keys, so it must be refused with
//     a message and change nothing (no row, no clock tick).
//  3. When the input decodes, its metadata (collection, record, counter, HLC,
//     causal context, fields, kind) is re-sealed and re-signed by one of the
//     team's devices and applied, so the fuzzer drives the merge and the
//     store with well-signed but arbitrary writes. Applying it must succeed
//     (or be refused for clock drift), be idempotent, and leave a state that
//     reads back without error and that the device can keep editing.
// The replica is restored to its snapshot before every input.
//
// Build: see fuzz/CMakeLists.txt or run scripts/fuzz.
//
// Refusals it expects (each once a bug it found, now fixed and tested):
//  1. One encoding per write: a big-endian archive marker is refused, so a
//     decoded write always re-encodes to its input.
//  2. Dot reuse: a write whose dot is stored with other bytes is refused.
//  3. Unissued own dots: a write whose context claims this device's counter
//     beyond what it has issued is refused.
// Their first reproducers are in fuzz/known-issues/.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "device_setup.h"
#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/team.h"
#include "enlace/write.h"
#include "fuzz_team.h"
#include "fuzz_util.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"
#include "temp_dir.h"

namespace enlace::fuzz {

const char kTargetName[] = "write_decode_fuzz";

namespace {

Bytes Newest(Replica& r) {
  auto pending = Must(r.PendingWrites(SIZE_MAX), "pending writes");
  Expect(!pending.empty(), "a write was just made");
  return pending.back().second;
}

class Fixture {
 public:
  Fixture() {
    scratch_dir = dir_.path();
    target_ = Must(Replica::Create(FuzzOptions(dir_.File("target")), kPassphrase), "create");
    w1_ = Must(Replica::Create(FuzzOptions(dir_.File("w1")), kPassphrase), "create");
    w2_ = Must(Replica::Create(FuzzOptions(dir_.File("w2")), kPassphrase), "create");
    Must(testing::TryFormTeam(*target_, {w1_.get(), w2_.get()}), "form the team");
    signers_ = {w1_.get(), w2_.get(), target_.get()};
    BuildHistory();
    TakeSnapshot();
  }

  ~Fixture() { sqlite3_close(snapshot_); }

  // Puts the target back to the snapshot (store contents and clock) if
  // anything may have changed since the last restore.
  void Restore() {
    if (!dirty_) return;
    dirty_ = false;
    sqlite3_backup* b = sqlite3_backup_init(TargetDb(), "main", snapshot_, "main");
    Expect(b != nullptr, "backup init");
    Expect(sqlite3_backup_step(b, -1) == SQLITE_DONE, "backup step");
    Expect(sqlite3_backup_finish(b) == SQLITE_OK, "backup finish");
    target_->clock() = HybridClock(target_->impl().options().clock, snapshot_hlc_);
  }

  Replica& target() { return *target_; }
  void MarkDirty() { dirty_ = true; }

  // The device a fuzzed device id stands for.
  Replica& SignerFor(const DeviceId& fuzzed) {
    return *signers_[fuzzed.bytes[0] % signers_.size()];
  }

  // Re-seals `w`'s metadata as a write by one of the team's devices.
  Bytes Reseal(Write w) {
    Replica& signer = SignerFor(w.dot.device);
    const auto& secrets = signer.impl().vault().secrets();
    VersionVector context;
    for (const auto& [device, counter] : w.context.entries()) {
      context.Add(Dot{SignerFor(device).device_id(), counter});
    }
    w.team = target_->team();
    w.dot.device = secrets.device;
    w.context = context;
    w.key_version = target_->current_key_version();
    static const char* const kValues[] = {"null", "1", "\"a\"", "[\"MX\",\"GT\"]", "true"};
    std::vector<std::string> values;
    for (size_t i = 0; i < w.fields.size(); ++i) {
      const size_t pick = i < w.ciphertext.size() ? w.ciphertext[i] : i;
      values.push_back(w.kind == WriteKind::kErase ? "null" : kValues[pick % 5]);
    }
    const auto* key = Must(signer.impl().TeamKey(w.key_version), "team key");
    Must(internal::SealWrite(w, values, *key, secrets.signing.secret_key), "seal write");
    return w.Encode();
  }

 private:
  sqlite3* TargetDb() { return target_->impl().store().db().raw(); }

  // Conflicting edits, a deleted record and the target's own write.
  void BuildHistory() {
    std::vector<Bytes> from_w1;
    std::vector<Bytes> from_w2;
    Must(w1_->Put("cases", FixedRecord(0), {{"status", "\"Active\""}, {"age", "30"}}).status(),
         "put");
    from_w1.push_back(Newest(*w1_));
    Must(w2_->ApplyRemote(from_w1.back()).status(), "apply");
    Must(w2_->Put("cases", FixedRecord(0), {{"status", "\"FollowUp\""}}).status(), "put");
    from_w2.push_back(Newest(*w2_));
    Must(w1_->Put("cases", FixedRecord(0), {{"status", "\"Closed\""}}).status(), "put");
    from_w1.push_back(Newest(*w1_));
    Must(w1_->Put("cases", FixedRecord(1), {{"name", "\"x\""}, {"nationality", "[\"MX\"]"}})
             .status(),
         "put");
    from_w1.push_back(Newest(*w1_));
    Must(w1_->Delete("cases", FixedRecord(1)), "delete");
    from_w1.push_back(Newest(*w1_));
    Must(w2_->Put("encounters", FixedRecord(3), {{"place", "\"Tapachula\""}}).status(), "put");
    from_w2.push_back(Newest(*w2_));
    Must(target_->Put("cases", FixedRecord(2), {{"age", "5"}}).status(), "put");
    for (const auto& w : from_w1) Must(target_->ApplyRemote(w).status(), "apply history");
    for (const auto& w : from_w2) Must(target_->ApplyRemote(w).status(), "apply history");
    Expect(!Must(target_->Conflicts(), "conflicts").empty(), "history has a conflict");
  }

  void TakeSnapshot() {
    Expect(sqlite3_open(":memory:", &snapshot_) == SQLITE_OK, "open snapshot");
    sqlite3_backup* b = sqlite3_backup_init(snapshot_, "main", TargetDb(), "main");
    Expect(b != nullptr, "backup init");
    Expect(sqlite3_backup_step(b, -1) == SQLITE_DONE, "backup step");
    Expect(sqlite3_backup_finish(b) == SQLITE_OK, "backup finish");
    snapshot_hlc_ = target_->clock().last();
  }

  testing::TempDir dir_{testing::TempDir::Under{"/tmp", "enlace-fuzz-"}};  // removed last
  std::unique_ptr<Replica> target_, w1_, w2_;
  std::vector<Replica*> signers_;
  sqlite3* snapshot_ = nullptr;
  HlcTimestamp snapshot_hlc_;
  bool dirty_ = true;
};

Fixture* fixture = nullptr;

// Reads everything the replica holds; any error is a broken invariant.
void ReadBack(Replica& r, const Write& applied) {
  Must(r.DumpState().status(), "DumpState after an accepted write");
  Must(r.Conflicts().status(), "Conflicts after an accepted write");
  Must(r.List(applied.collection).status(), "List after an accepted write");
  Must(r.Get(applied.collection, applied.record, /*include_deleted=*/true).status(),
       "Get of the record just written");
  Must(r.PendingWrites(SIZE_MAX).status(), "PendingWrites");
  // The device can still edit the record (unless it is deleted). Records of
  // reserved collections (enlace.*, such as the schema overlay) arrive from
  // peers but are never edited by hand: Put refuses them as a bad argument.
  auto put = r.Put(applied.collection, applied.record, {{"fuzz", "1"}});
  if (IsReservedCollection(applied.collection)) {
    Expect(put.status().code() == StatusCode::kInvalidArgument,
           "a hand edit of a reserved collection was not refused: " + put.status().ToString());
    return;
  }
  Expect(put.ok() || put.status().code() == StatusCode::kFailedPrecondition,
         "a local edit after an accepted write failed: " + put.status().ToString());
}

void CheckDecode(std::span<const uint8_t> input, const Result<Write>& decoded) {
  WriteLimits tight;
  tight.max_name_bytes = 8;
  tight.max_fields = 2;
  tight.max_context_entries = 2;
  tight.max_ciphertext_bytes = 64;
  auto tight_decoded = Write::Decode(input, tight);
  if (tight_decoded.ok()) Expect(decoded.ok(), "tight limits accepted what default limits refused");
  if (!decoded.ok()) {
    Expect(!decoded.status().message().empty(), "a decode error without a message");
    return;
  }
  Expect(decoded->Encode() == Bytes(input.begin(), input.end()),
         "a decoded write does not re-encode to its input");
  if (tight_decoded.ok()) {
    Expect(tight_decoded->Encode() == decoded->Encode(), "limits changed a write");
  }
}

// True when `w`'s dot is stored with other bytes (expected refusal 2).
bool ReusesStoredDot(Replica& r, const Write& w, const Bytes& encoded) {
  auto stored = Must(r.impl().store().GetWrite(w.dot), "GetWrite");
  return stored && stored->encoded != encoded;
}

// True when `w`'s context claims a counter of `r`'s own device that `r` has
// not issued, nor will by applying `w` (expected refusal 3).
bool ClaimsUnissuedOwnDot(Replica& r, const Write& w) {
  // replica.cc's kMetaCounter.
  uint64_t issued = Must(r.impl().store().GetMeta("write_counter"), "write counter");
  if (w.dot.device == r.device_id()) issued = std::max(issued, w.dot.counter);
  return w.context.Get(r.device_id()) > issued;
}

}  // namespace
}  // namespace enlace::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace enlace::fuzz;
  fixture = new Fixture();
  std::atexit([] { delete fixture; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enlace;
  using namespace enlace::fuzz;
  const std::span<const uint8_t> input(data, size);
  const auto decoded = Write::Decode(input);
  CheckDecode(input, decoded);

  Fixture& f = *fixture;
  f.Restore();
  Replica& target = f.target();
  sqlite3* db = target.impl().store().db().raw();

  // Raw bytes: nobody outside the team can sign, so this must be refused
  // with a reason, changing nothing.
  const int64_t changes_before = sqlite3_total_changes64(db);
  const HlcTimestamp clock_before = target.clock().last();
  auto raw = target.ApplyRemote(input);
  Expect(!raw.ok(), "an unsigned input was accepted");
  Expect(!raw.status().message().empty(), "a refusal without a message");
  Expect(sqlite3_total_changes64(db) == changes_before, "a refused write changed the store");
  Expect(target.clock().last() == clock_before, "a refused write moved the clock");
  if (!decoded.ok()) return 0;

  // The same metadata, well signed by a team device.
  const Bytes resealed = f.Reseal(*decoded);
  auto redecoded = Write::Decode(resealed);
  if (!redecoded.ok()) {
    // Signing as the fixture's device can make the metadata malformed (its
    // own later counters in the context): refused like any malformed write.
    Expect(!target.ApplyRemote(resealed).ok(), "a malformed re-sealed write was accepted");
    return 0;
  }
  const Write w = std::move(redecoded).value();
  Expect(w.Encode() == resealed, "a re-sealed write does not round-trip");
  const bool must_refuse = ReusesStoredDot(target, w, resealed) || ClaimsUnissuedOwnDot(target, w);
  f.MarkDirty();
  auto applied = target.ApplyRemote(resealed);
  if (must_refuse) {
    // (A stamp too far in the future may be refused first.)
    Expect(
        applied.status().code() == StatusCode::kCorruption ||
            applied.status().code() == StatusCode::kInvalidArgument,
        "a reused dot or an unissued own counter was not refused: " + applied.status().ToString());
    return 0;
  }
  if (!applied.ok()) {
    // Only a stamp too far in the future may be refused.
    Expect(applied.status().code() == StatusCode::kInvalidArgument,
           "a well-signed write was refused: " + applied.status().ToString());
    return 0;
  }
  auto again = Must(target.ApplyRemote(resealed), "applying a write twice");
  Expect(again == ApplyOutcome::kAlreadySeen, "applying a write twice changed the state twice");
  ReadBack(target, w);
  return 0;
}
