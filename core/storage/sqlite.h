// RAII over the SQLite C API, and the one helper that turns an SQLite result
// code into a Status. Not thread-safe: one Db per thread of use.
#ifndef ENLACE_CORE_STORAGE_SQLITE_H_
#define ENLACE_CORE_STORAGE_SQLITE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enlace/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace enlace::internal {

// kIoError (or kUnavailable for BUSY/LOCKED, kCorruption for CORRUPT/NOTADB)
// with the connection's last error message.
Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

class Db;

// A prepared statement. One from Db::Prepare is borrowed from the
// connection's cache: its destructor resets it instead of finalizing it.
class Stmt {
 public:
  Stmt(Stmt&&) noexcept;
  Stmt& operator=(Stmt&&) noexcept;
  ~Stmt();

  // Binds by 1-based index. Blobs and texts are copied (SQLITE_TRANSIENT).
  Stmt& Bind(int index, int64_t v);
  // An unsigned value (counters, versions, times): SQLite integers are
  // signed, so one above INT64_MAX is refused (the next Step or Exec answers
  // kInvalidArgument), never stored as a negative number.
  Stmt& BindU64(int index, uint64_t v);
  Stmt& Bind(int index, std::string_view text);
  Stmt& BindBlob(int index, std::span<const uint8_t> blob);
  Stmt& BindNull(int index);

  // Steps once: true when a row is ready, false when done.
  Result<bool> Step();
  // Steps through every remaining row and returns column `col` of each as bytes.
  Result<std::vector<std::vector<uint8_t>>> AllBlobs(int col);
  // Steps to completion (for statements without rows), then resets.
  Status Exec();
  void Reset();

  int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  std::span<const uint8_t> ColumnBlob(int col) const;  // valid until the next Step/Reset
  bool ColumnIsNull(int col) const;

 private:
  friend class Db;
  void Release() noexcept;
  Stmt(sqlite3* db, sqlite3_stmt* stmt, bool* in_use) : db_(db), stmt_(stmt), in_use_(in_use) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;  // the cache slot's flag; null when this Stmt owns stmt_
  Status bind_status_;
};

class Db {
 public:
  // Opens (creating if needed) `path`; ":memory:" for an in-memory database.
  // Every database enlace keeps holds private data: the file is created, or
  // made, mode 0600, and so are its -wal, -shm and -journal files when they
  // are there (SQLite gives the ones it makes the database file's mode).
  // kIoError when the file cannot be created or its mode set.
  static Result<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Prepares `sql` once per connection and hands out the cached statement;
  // a second Prepare of the same text while the first is still alive gets a
  // statement of its own.
  Result<Stmt> Prepare(std::string_view sql);
  // Runs one or more statements without parameters.
  Status ExecScript(std::string_view sql);
  int64_t changes() const;
  // Whether a transaction is open on this connection (not autocommit).
  bool InTransaction() const;
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  struct CacheSlot {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  sqlite3* db_;
  std::map<std::string, CacheSlot, std::less<>> cache_;
};

// A fixed-size array (an id or a key) from a blob column; a shorter blob
// leaves the rest zero, a longer one is cut.
template <typename T>
T FromBlob(std::span<const uint8_t> blob) {
  T out{};
  std::memcpy(out.data(), blob.data(), std::min(blob.size(), out.size()));
  return out;
}

// One schema step: `sql`, then, when set, `convert` (data that SQL alone
// cannot move), in the same transaction.
struct Migration {
  const char* sql = "";
  Status (*convert)(Db& db) = nullptr;
};

// Brings the database's schema (PRAGMA user_version) up to
// migrations.size(), running each pending migration in its own transaction.
// kFailedPrecondition, naming `what`, when the file is newer than the code.
Status RunMigrations(Db& db, std::span<const Migration> migrations, std::string_view what);
// The same for migrations that are SQL only.
Status RunMigrations(Db& db, std::span<const char* const> migrations, std::string_view what);

// Reads PRAGMA user_version.
Result<int64_t> SchemaVersion(Db& db);

// What runs around the COMMIT of an outermost transaction: `before_commit`
// inside the transaction (an error rolls it back and is Commit's answer),
// `after_commit` once the COMMIT succeeded. Either may be empty.
struct CommitHooks {
  std::function<Status()> before_commit;
  std::function<void()> after_commit;
};

// Begins IMMEDIATE (or, inside an open transaction, a savepoint); rolls back
// in the destructor unless Commit() succeeded. The control statements are
// prepared once per connection (Db::Prepare), not parsed on every Begin.
// `hooks` run only for an outermost transaction: a savepoint's changes are
// committed, hooks and all, by the transaction around it.
class Transaction {
 public:
  static Result<std::unique_ptr<Transaction>> Begin(Db& db, CommitHooks hooks = {});
  ~Transaction();
  Status Commit();

 private:
  Transaction(Db& db, bool nested, CommitHooks hooks)
      : db_(db), nested_(nested), hooks_(std::move(hooks)) {}
  Db& db_;
  bool nested_;  // a savepoint inside an outer transaction
  CommitHooks hooks_;
  bool done_ = false;
};

}  // namespace enlace::internal

#endif  // ENLACE_CORE_STORAGE_SQLITE_H_
