#include "hub_verify.h"

#include <map>
#include <optional>

#include "replica/write_internal.h"

namespace enlace::hub {

namespace {

// Why `row` fails, or "" when it checks out.
std::string Check(const StoredWriteRow& row, const std::optional<DeviceRecord>& writer) {
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
  return "";
}

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
  ENLACE_RETURN_IF_ERROR(storage.ScanWrites([&](const StoredWriteRow& row) {
    ++summary.checked;
    std::string reason = Check(row, devices[row.device]);
    if (reason.empty()) return Status::Ok();
    ++summary.failed;
    on_failure(VerifyFailure{row.seq, row.team, row.device, std::move(reason)});
    return Status::Ok();
  }));
  return summary;
}

}  // namespace enlace::hub
