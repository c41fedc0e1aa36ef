// Restoring a hub from a backup without losing a write (issue 15 item 1).
//
// A backup is older than the hub it replaces: every write, registry version,
// admission and key grant stored after it is missing from it. The devices
// still hold them. `RestoreHub` puts the backup in place and gives the
// restored log a new identity (`SyncResponse::log_id`); a device that sees
// the identity change, or the hub behind what it acknowledged, re-reads the
// log and sends again what the hub lacks (docs/PROTOCOL.md §9).
#ifndef ENLACE_SERVER_HUB_RESTORE_H_
#define ENLACE_SERVER_HUB_RESTORE_H_

#include <memory>
#include <string>

#include "enlace/status.h"
#include "storage/sqlite.h"

namespace enlace::hub {

// Gives the hub's log a new random identity (hub_meta "log_id").
Status SetNewLogId(internal::Db& db);
// Brings a hub database's schema up to this binary's (hub_storage.cc).
Status MigrateHubDatabase(internal::Db& db);

// An exclusive lock on a data folder (its `hub.lock` file, flock), held by a
// serving hub and by a restore, so that neither runs under the other.
class DataFolderLock {
 public:
  // kFailedPrecondition when another process holds it.
  static Result<std::unique_ptr<DataFolderLock>> Acquire(const std::string& data_dir);
  ~DataFolderLock();
  DataFolderLock(const DataFolderLock&) = delete;
  DataFolderLock& operator=(const DataFolderLock&) = delete;

 private:
  explicit DataFolderLock(int fd) : fd_(fd) {}
  int fd_;
};

struct RestoreResult {
  std::string kept;     // where the database it replaced was kept ("" when there was none)
  uint64_t writes = 0;  // writes in the restored log
};

// Replaces `data_dir`/hub.db with the backup at `backup_path` (a file
// `enlace-hub admin backup` wrote; checked: SQLite integrity, a hub
// database, a schema this binary knows). The database it replaces is kept
// beside it as hub.db.before-restore-<time>. Takes the folder's lock (a
// serving hub must be stopped first). Crash-safe: killed at any point, the
// folder holds either the old database or the restored one, and running the
// restore again completes it. `crash_at` (tests only, 0 = never) kills the
// process with SIGKILL before step N (1: copy made, 2: old checkpointed,
// 3: old kept, 4: restored in place).
Result<RestoreResult> RestoreHub(const std::string& data_dir, const std::string& backup_path,
                                 int crash_at = 0);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_HUB_RESTORE_H_
