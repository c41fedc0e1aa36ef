#include "storage/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace enlace::internal {

namespace {

// Gives `path` mode 0600, creating it (empty) when `create` and it is not
// there; a missing file is fine when not `create`.
Status MakeOwnerOnly(const std::string& path, bool create) {
  const int fd =
      ::open(path.c_str(), create ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (!create && errno == ENOENT) return Status::Ok();
    return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  }
  const bool ok = ::fchmod(fd, 0600) == 0;
  const std::string err = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok) return Status::IoError("cannot make " + path + " private: " + err);
  return Status::Ok();
}

}  // namespace

Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(msg));
    case SQLITE_CONSTRAINT:
      return Status::AlreadyExists(std::move(msg));
    default:
      return Status::IoError(std::move(msg));
  }
}

// ---- Stmt ----------------------------------------------------------------------------

Stmt::Stmt(Stmt&& o) noexcept
    : db_(o.db_),
      stmt_(std::exchange(o.stmt_, nullptr)),
      in_use_(std::exchange(o.in_use_, nullptr)),
      bind_status_(std::move(o.bind_status_)) {}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    Release();
    db_ = o.db_;
    stmt_ = std::exchange(o.stmt_, nullptr);
    in_use_ = std::exchange(o.in_use_, nullptr);
    bind_status_ = std::move(o.bind_status_);
  }
  return *this;
}

Stmt::~Stmt() { Release(); }

void Stmt::Release() noexcept {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  in_use_ = nullptr;
}

namespace {
Status BindResult(int rc, sqlite3* db) { return SqliteStatus(rc, db, "bind"); }
}  // namespace

Stmt& Stmt::Bind(int index, int64_t v) {
  if (bind_status_.ok()) bind_status_ = BindResult(sqlite3_bind_int64(stmt_, index, v), db_);
  return *this;
}

Stmt& Stmt::BindU64(int index, uint64_t v) {
  if (v > static_cast<uint64_t>(INT64_MAX)) {
    if (bind_status_.ok()) {
      bind_status_ = Status::InvalidArgument("the number " + std::to_string(v) +
                                             " is out of range (at most 2^63-1)");
    }
    return *this;
  }
  return Bind(index, static_cast<int64_t>(v));
}

Stmt& Stmt::Bind(int index, std::string_view text) {
  if (bind_status_.ok()) {
    bind_status_ = BindResult(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
        db_);
  }
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::span<const uint8_t> blob) {
  static const uint8_t kEmpty = 0;
  if (bind_status_.ok()) {
    bind_status_ =
        BindResult(sqlite3_bind_blob64(stmt_, index, blob.empty() ? &kEmpty : blob.data(),
                                       blob.size(), SQLITE_TRANSIENT),
                   db_);
  }
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  if (bind_status_.ok()) bind_status_ = BindResult(sqlite3_bind_null(stmt_, index), db_);
  return *this;
}

Result<std::vector<std::vector<uint8_t>>> Stmt::AllBlobs(int col) {
  std::vector<std::vector<uint8_t>> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, Step());
    if (!more) return out;
    const auto blob = ColumnBlob(col);
    out.emplace_back(blob.begin(), blob.end());
  }
}

Result<bool> Stmt::Step() {
  if (!bind_status_.ok()) {
    Status s = std::exchange(bind_status_, Status::Ok());
    Reset();
    return s;
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = SqliteStatus(rc, db_, "step");
  sqlite3_reset(stmt_);
  return s;
}

Status Stmt::Exec() {
  for (;;) {
    auto r = Step();
    if (!r.ok()) {
      Reset();
      return r.status();
    }
    if (!*r) break;
  }
  Reset();
  return Status::Ok();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = Status::Ok();
}

int64_t Stmt::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::ColumnText(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::span<const uint8_t> Stmt::ColumnBlob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  const int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::span<const uint8_t>() : std::span<const uint8_t>(p, n);
}

bool Stmt::ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

// ---- Db ------------------------------------------------------------------------------

Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  if (!path.empty() && path != ":memory:") {
    ENLACE_RETURN_IF_ERROR(MakeOwnerOnly(path, /*create=*/true));
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
      ENLACE_RETURN_IF_ERROR(MakeOwnerOnly(path + suffix, /*create=*/false));
    }
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, raw, "open " + path);
    sqlite3_close_v2(raw);
    return s;
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  return std::unique_ptr<Db>(new Db(raw));
}

Db::~Db() {
  for (auto& [sql, slot] : cache_) sqlite3_finalize(slot.stmt);
  sqlite3_close_v2(db_);
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Stmt(db_, it->second.stmt, &it->second.in_use);
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "prepare");
  if (it != cache_.end()) return Stmt(db_, stmt, nullptr);  // the cached one is busy
  CacheSlot& slot = cache_[std::string(sql)];
  slot.stmt = stmt;
  slot.in_use = true;
  return Stmt(db_, stmt, &slot.in_use);
}

Status Db::ExecScript(std::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  return SqliteStatus(rc, db_, "exec");
}

int64_t Db::changes() const { return sqlite3_changes64(db_); }

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

Result<int64_t> SchemaVersion(Db& db) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db.Prepare("PRAGMA user_version"));
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::Internal("PRAGMA user_version returned nothing");
  return st.ColumnInt(0);
}

Status RunMigrations(Db& db, std::span<const Migration> migrations, std::string_view what) {
  ENLACE_ASSIGN_OR_RETURN(int64_t version, SchemaVersion(db));
  const auto target = static_cast<int64_t>(migrations.size());
  if (version > target) {
    return Status::FailedPrecondition(std::string(what) +
                                      " was written by a newer enlace (schema " +
                                      std::to_string(version) + ")");
  }
  for (; version < target; ++version) {
    const Migration& m = migrations[static_cast<size_t>(version)];
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db));
    ENLACE_RETURN_IF_ERROR(db.ExecScript(m.sql));
    if (m.convert != nullptr) ENLACE_RETURN_IF_ERROR(m.convert(db));
    ENLACE_RETURN_IF_ERROR(db.ExecScript("PRAGMA user_version=" + std::to_string(version + 1)));
    ENLACE_RETURN_IF_ERROR(tx->Commit());
  }
  return Status::Ok();
}

Status RunMigrations(Db& db, std::span<const char* const> migrations, std::string_view what) {
  std::vector<Migration> steps;
  steps.reserve(migrations.size());
  for (const char* sql : migrations) steps.push_back(Migration{sql, nullptr});
  return RunMigrations(db, std::span<const Migration>(steps), what);
}

// ---- Transaction -----------------------------------------------------------------------

namespace {
// Runs one cached control statement (BEGIN, SAVEPOINT, RELEASE, ...).
Status ExecCached(Db& db, std::string_view sql) {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  return st.Exec();
}
}  // namespace

Result<std::unique_ptr<Transaction>> Transaction::Begin(Db& db, CommitHooks hooks) {
  // Inside an open transaction (a batch), a nested one is a savepoint: it
  // commits into the outer one and rolls back only its own part.
  const bool nested = db.InTransaction();
  ENLACE_RETURN_IF_ERROR(ExecCached(db, nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE"));
  if (nested) hooks = {};
  return std::unique_ptr<Transaction>(new Transaction(db, nested, std::move(hooks)));
}

Transaction::~Transaction() {
  if (done_) return;
  if (nested_) {
    if (ExecCached(db_, "ROLLBACK TO nested").ok()) (void)ExecCached(db_, "RELEASE nested");
  } else {
    (void)ExecCached(db_, "ROLLBACK");
  }
}

Status Transaction::Commit() {
  if (hooks_.before_commit) ENLACE_RETURN_IF_ERROR(hooks_.before_commit());
  ENLACE_RETURN_IF_ERROR(ExecCached(db_, nested_ ? "RELEASE nested" : "COMMIT"));
  done_ = true;
  if (hooks_.after_commit) hooks_.after_commit();
  return Status::Ok();
}

}  // namespace enlace::internal
