#include "hub_verify.h"

#include <algorithm>
#include <map>
#include <optional>

#include "replica/write_internal.h"

namespace enlace::hub {

namespace {

// Why `row` fails, or "" when it checks out.
// `*decoded` receives the write when it checks out.
std::string Check(const StoredWriteRow& row, const std::optional<DeviceRecord>& writer,
                  Write* decoded) {
  auto w = Write::Decode(row.encoded);
  if (!w.ok()) return "does not decode: " + w.status().message();
  if (w->team != row.team) return "the write names another team than its row";
  if (w->dot.device != row.device || w->dot.counter != row.counter) {
    return "the write's number (" + w->dot.device.ToHex().substr(0, 8) + ":" +
           std::to_string(w->dot.counter) + ") is not its row's (" +
           row.device.ToHex().substr(0, 8) + ":" + std::to_string(row.counter) + ")";
  }
  if (!writer) return "its writer is not a device registered on this hub";
  if (writer->team != row.team) return "its writer is a device of another team";
  if (Status s = internal::VerifyWriteSignature(*w, writer->member.signing_key); !s.ok()) {
    return "signature does not verify: " + s.message();
  }
  if (!row.collection || !row.record) return "its record columns are not filled";
  if (*row.collection != w->collection || *row.record != w->record) {
    return "the write's record is not its row's";
  }
  *decoded = std::move(*w);
  return "";
}

// What the writes of one device that check out say of its write numbers.
struct Numbers {
  uint64_t promised_from = 0;  // the lowest accounted_from (format 3), 0: none
  uint64_t highest = 0;        // the highest number of a format 3 write
  std::vector<uint64_t> counters;
};

}  // namespace

Result<VerifySummary> VerifyStoredWrites(
    HubStorage& storage, const std::function<void(const VerifyFailure&)>& on_failure) {
  // The writers first (the storage is held while a scan runs), then the
  // writes, one at a time.
  std::map<DeviceId, std::optional<DeviceRecord>> devices;
  ENLACE_RETURN_IF_ERROR(storage.ScanWrites([&](const StoredWriteRow& row) {
    devices.emplace(row.device, std::nullopt);
    return Status::Ok();
  }));
  for (auto& [device, record] : devices) {
    ENLACE_ASSIGN_OR_RETURN(record, storage.FindDevice(device));
  }
  VerifySummary summary;
  std::map<DeviceId, std::pair<TeamId, Numbers>> numbers;
  ENLACE_RETURN_IF_ERROR(storage.ScanWrites([&](const StoredWriteRow& row) {
    ++summary.checked;
    Write w;
    std::string reason = Check(row, devices[row.device], &w);
    if (reason.empty()) {
      auto& [team, n] = numbers[row.device];
      team = row.team;
      n.counters.push_back(w.dot.counter);
      if (w.accounted_from != 0) {
        if (n.promised_from == 0 || w.accounted_from < n.promised_from) {
          n.promised_from = w.accounted_from;
        }
        n.highest = std::max(n.highest, w.dot.counter);
      }
      return Status::Ok();
    }
    ++summary.failed;
    on_failure(VerifyFailure{row.seq, row.team, row.device, std::move(reason)});
    return Status::Ok();
  }));
  // Every number a device's writes promised must be stored (docs/PROTOCOL.md
  // §6.11): one missing is a write this hub lost.
  for (auto& [device, entry] : numbers) {
    const TeamId& team = entry.first;  // no structured binding: a lambda uses `n`
    Numbers& n = entry.second;
    if (n.promised_from == 0 || n.highest < n.promised_from) continue;
    std::sort(n.counters.begin(), n.counters.end());
    n.counters.erase(std::unique(n.counters.begin(), n.counters.end()), n.counters.end());
    const auto held =
        static_cast<uint64_t>(std::count_if(n.counters.begin(), n.counters.end(), [&](uint64_t c) {
          return c >= n.promised_from && c <= n.highest;
        }));
    const uint64_t missing = n.highest - n.promised_from + 1 - held;
    if (missing == 0) continue;
    ++summary.missing_numbers;
    on_failure(VerifyFailure{
        0, team, device,
        std::to_string(missing) + " of its write numbers " + std::to_string(n.promised_from) +
            ".." + std::to_string(n.highest) + " are not stored (writes this hub lost)"});
  }
  return summary;
}

}  // namespace enlace::hub
