#include "hub_restore.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "crypto/crypto.h"

namespace enlace::hub {

namespace fs = std::filesystem;

Status SetNewLogId(internal::Db& db) {
  std::array<uint8_t, 16> id{};
  internal::RandomFill(id);
  ENLACE_ASSIGN_OR_RETURN(internal::Stmt st,
                          db.Prepare("INSERT OR REPLACE INTO hub_meta(name, value) "
                                     "VALUES('log_id', ?)"));
  return st.BindBlob(1, id).Exec();
}

Result<std::unique_ptr<DataFolderLock>> DataFolderLock::Acquire(const std::string& data_dir) {
  const std::string path = (fs::path(data_dir) / "hub.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::FailedPrecondition(
          "a hub is serving from " + data_dir +
          " (or a restore is running there); stop it first, e.g. systemctl stop enlace-hub");
    }
    return Status::IoError("cannot lock " + path + ": " + std::strerror(err));
  }
  return std::unique_ptr<DataFolderLock>(new DataFolderLock(fd));
}

DataFolderLock::~DataFolderLock() { ::close(fd_); }

namespace {

void CrashBefore(int step, int crash_at) {
  if (step == crash_at) ::raise(SIGKILL);
}

Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError("cannot sync " + path + ": " + std::strerror(err));
  return Status::Ok();
}

void RemoveDatabaseFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

// Opens the backup read-only, checks it, and copies it with SQLite's backup
// API into `out` (which holds no database yet).
Status CopyCheckedBackup(const std::string& backup_path, const std::string& out) {
  sqlite3* src = nullptr;
  int rc = sqlite3_open_v2(backup_path.c_str(), &src, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close_v2(src);
    return Status::InvalidArgument(backup_path + " is not a database enlace-hub can read");
  }
  auto scalar = [&](const char* sql, std::string& value) -> bool {
    sqlite3_stmt* st = nullptr;
    bool ok = sqlite3_prepare_v2(src, sql, -1, &st, nullptr) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      value = t == nullptr ? "" : reinterpret_cast<const char*>(t);
    }
    sqlite3_finalize(st);
    return ok;
  };
  std::string check, tables;
  Status result;
  if (!scalar("PRAGMA quick_check", check)) {
    result = Status::InvalidArgument(backup_path + " is not a database enlace-hub can read");
  } else if (check != "ok") {
    result = Status::Corruption(backup_path + " is damaged (SQLite: " + check + ")");
  } else if (!scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                     "('teams', 'devices', 'writes')",
                     tables) ||
             tables != "3") {
    result = Status::InvalidArgument(backup_path +
                                     " is not an enlace-hub database (enlace-hub admin backup "
                                     "writes one)");
  }
  if (result.ok()) {
    sqlite3* dest = nullptr;
    rc = sqlite3_open_v2(out.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc == SQLITE_OK) {
      ::chmod(out.c_str(), 0600);
      sqlite3_backup* b = sqlite3_backup_init(dest, "main", src, "main");
      if (b == nullptr) {
        result = internal::SqliteStatus(sqlite3_errcode(dest), dest, "restore copy");
      } else {
        rc = sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
        if (rc != SQLITE_DONE) result = internal::SqliteStatus(rc, dest, "restore copy");
      }
    } else {
      result = internal::SqliteStatus(rc, dest, "create " + out);
    }
    sqlite3_close_v2(dest);
  }
  sqlite3_close_v2(src);
  return result;
}

std::string UtcStamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%SZ", &tm);
  return buf.data();
}

}  // namespace

Result<RestoreResult> RestoreHub(const std::string& data_dir, const std::string& backup_path,
                                 int crash_at) {
  std::error_code ec;
  if (!fs::is_regular_file(backup_path, ec)) {
    return Status::NotFound("there is no backup file at " + backup_path);
  }
  fs::create_directories(data_dir, ec);
  if (ec) return Status::IoError("cannot create " + data_dir + ": " + ec.message());
  ::chmod(data_dir.c_str(), 0700);
  ENLACE_ASSIGN_OR_RETURN(auto lock, DataFolderLock::Acquire(data_dir));
  const std::string db_path = (fs::path(data_dir) / "hub.db").string();
  const std::string tmp = db_path + ".restoring";
  if (fs::equivalent(backup_path, db_path, ec)) {
    return Status::InvalidArgument(backup_path + " is the hub's own database, not a backup");
  }
  // A copy left by a restore that was killed is not trusted: made again.
  RemoveDatabaseFiles(tmp);

  RestoreResult result;
  ENLACE_RETURN_IF_ERROR(CopyCheckedBackup(backup_path, tmp));
  {
    ENLACE_ASSIGN_OR_RETURN(auto db, internal::Db::Open(tmp));
    ENLACE_RETURN_IF_ERROR(MigrateHubDatabase(*db));
    // The restored log is another log: devices must see that it changed.
    ENLACE_RETURN_IF_ERROR(SetNewLogId(*db));
    ENLACE_ASSIGN_OR_RETURN(internal::Stmt n, db->Prepare("SELECT count(*) FROM writes"));
    ENLACE_ASSIGN_OR_RETURN(bool row, n.Step());
    result.writes = row ? static_cast<uint64_t>(n.ColumnInt(0)) : 0;
  }  // closed: its journal is folded into the file
  ENLACE_RETURN_IF_ERROR(SyncPath(tmp, false));
  CrashBefore(1, crash_at);

  if (fs::exists(db_path, ec)) {
    {
      // Everything the old database committed goes into its main file, so
      // that the file alone is the whole of it.
      ENLACE_ASSIGN_OR_RETURN(auto old, internal::Db::Open(db_path));
      ENLACE_RETURN_IF_ERROR(old->ExecScript("PRAGMA wal_checkpoint(TRUNCATE)"));
    }
    CrashBefore(2, crash_at);
    result.kept = db_path + ".before-restore-" + UtcStamp();
    if (::link(db_path.c_str(), result.kept.c_str()) != 0 && errno != EEXIST) {
      return Status::IoError("cannot keep the current database as " + result.kept + ": " +
                             std::strerror(errno));
    }
    ENLACE_RETURN_IF_ERROR(SyncPath(data_dir, true));
    CrashBefore(3, crash_at);
    fs::remove(db_path + "-wal", ec);
    fs::remove(db_path + "-shm", ec);
  }
  CrashBefore(4, crash_at);
  if (::rename(tmp.c_str(), db_path.c_str()) != 0) {
    return Status::IoError("cannot put the restored database in place: " +
                           std::string(std::strerror(errno)));
  }
  ENLACE_RETURN_IF_ERROR(SyncPath(data_dir, true));
  return result;
}

}  // namespace enlace::hub
