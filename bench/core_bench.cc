// Core benchmarks: what a local write, an applied remote write and a read
// cost next to raw SQLite doing the same durable work, and how many bytes one
// write costs on the wire. Plain std::chrono, no framework.
//
// Every figure is measured against a reference run in the same process, on
// the same folder, the two operations alternating one by one, so the ratio
// holds even when the disk or the CPU is busy with something else. The
// reference for a write is one SQLite transaction (BEGIN IMMEDIATE; INSERT of
// a blob as large as the encoded write; COMMIT) on a WAL table with
// synchronous=FULL: the fair floor, since each enlace Put or ApplyRemote is
// one such transaction. The reference for a read selects that blob by key.
//
// Usage: core_bench [--seconds S] [--rounds N] [--dir PATH]
//   --seconds  length of one round (default 3)
//   --rounds   rounds per benchmark; the median round is reported (default 3)
//   --dir      where to put the temporary files (default: $ENLACE_BENCH_TMP,
//              else the system temp folder); removed at the end
// Results and how to read them: docs/BENCHMARKS.md.
#include <sodium.h>
#include <sqlite3.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "device_setup.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "enlace/wire.h"
#include "enlace/write.h"
#include "temp_dir.h"

namespace enlace::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing::TempDir;
using testing::TestOptions;

// ---- plumbing ------------------------------------------------------------------------

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "core_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

template <typename T>
T Take(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

struct Args {
  double seconds = 3.0;
  int rounds = 3;
  std::string dir;
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + arg);
      return argv[++i];
    };
    if (arg == "--seconds") {
      a.seconds = std::atof(value().c_str());
    } else if (arg == "--rounds") {
      a.rounds = std::atoi(value().c_str());
    } else if (arg == "--dir") {
      a.dir = value();
    } else {
      Die("unknown argument " + arg + " (use --seconds S, --rounds N, --dir PATH)");
    }
  }
  if (a.seconds <= 0 || a.rounds <= 0) Die("--seconds and --rounds must be positive");
  if (a.dir.empty()) {
    const char* env = std::getenv("ENLACE_BENCH_TMP");
    a.dir = env != nullptr ? env : std::filesystem::temp_directory_path().string();
  }
  return a;
}

// ---- the machine ---------------------------------------------------------------------

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

std::string FileSystemOf(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (no real fsync)";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "fs 0x%lx", static_cast<unsigned long>(fs.f_type));
      return buf;
    }
  }
}

void PrintMachine(const Args& args) {
  struct utsname u {};
  ::uname(&u);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf("enlace core benchmarks, %s\n", date);
  std::printf("machine:  %ld CPUs (nproc), %s, %s %s\n", ::sysconf(_SC_NPROCESSORS_ONLN),
              CpuModel().c_str(), u.sysname, u.release);
  std::printf("files:    %s on %s\n", args.dir.c_str(), FileSystemOf(args.dir).c_str());
  std::printf("software: SQLite %s, libsodium %s, compiler %s%s\n", sqlite3_libversion(),
              sodium_version_string(), __VERSION__,
#ifdef NDEBUG
              ", NDEBUG"
#else
              ", assertions ON (not a release build)"
#endif
  );
  std::printf(
      "method:   %d rounds of %.1f s per benchmark, enlace and reference operations\n"
      "          alternating one by one; the median round is shown\n\n",
      args.rounds, args.seconds);
}

// ---- the raw SQLite reference --------------------------------------------------------

class RawSqlite {
 public:
  explicit RawSqlite(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      Die("cannot open reference database " + path);
    }
    Exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, payload BLOB NOT NULL);");
    begin_ = Prepare("BEGIN IMMEDIATE");
    insert_ = Prepare("INSERT INTO blobs(payload) VALUES(?)");
    commit_ = Prepare("COMMIT");
    select_ = Prepare("SELECT payload FROM blobs WHERE id = ?");
  }
  ~RawSqlite() {
    for (sqlite3_stmt* s : {begin_, insert_, commit_, select_}) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
  }
  RawSqlite(const RawSqlite&) = delete;
  RawSqlite& operator=(const RawSqlite&) = delete;

  // One durable transaction holding one insert.
  void Insert(const Bytes& payload) {
    Step(begin_);
    sqlite3_bind_blob64(insert_, 1, payload.data(), payload.size(), SQLITE_STATIC);
    Step(insert_);
    Step(commit_);
  }

  // Reads row `id` (1-based) into `out`.
  void Select(int64_t id, Bytes& out) {
    sqlite3_bind_int64(select_, 1, id);
    if (sqlite3_step(select_) != SQLITE_ROW) Die("reference row missing");
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(select_, 0));
    out.assign(p, p + sqlite3_column_bytes(select_, 0));
    sqlite3_reset(select_);
  }

  // Rows in the table.
  int64_t Count() {
    sqlite3_stmt* s = Prepare("SELECT count(*) FROM blobs");
    if (sqlite3_step(s) != SQLITE_ROW) Die("reference: count");
    const int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
  }

 private:
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      Die(std::string("reference: ") + msg);
    }
  }
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) Die("reference: prepare");
    return s;
  }
  void Step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) Die(std::string("reference: ") + sqlite3_errmsg(db_));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
};

// Brings a WAL database to the steady state of a device in use: a WAL file
// already grown past one auto-checkpoint (so commits overwrite it instead of
// extending it, which makes each fsync cheaper) and free pages to reuse.
// Done to enlace's store and to the reference alike before timing; without
// it, whichever file is younger pays for growing and the ratio is skewed.
void PregrowWal(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    Die("cannot open " + path);
  }
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  const char* sql =
      "PRAGMA journal_mode=WAL; BEGIN IMMEDIATE;"
      "CREATE TABLE bench_pad(x BLOB);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)"
      "  INSERT INTO bench_pad SELECT zeroblob(3500) FROM n;"
      "COMMIT; DROP TABLE bench_pad; PRAGMA wal_checkpoint(PASSIVE);";
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err != nullptr ? err : "?";
    sqlite3_free(err);
    Die("pre-growing " + path + ": " + msg);
  }
  sqlite3_close_v2(db);
}

// ---- measuring -----------------------------------------------------------------------

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Row {
  std::string name;
  double enlace_ops = 0;     // median round
  double reference_ops = 0;  // median round
  double ratio = 0;          // median over rounds of (enlace time / reference time) per op
};

// Runs rounds of `seconds` each. Within a round the two operations alternate
// one by one (reference, enlace, reference, ...), each timed on its own, so
// both see the same disk and CPU conditions even when they drift. An
// operation returns false when it has no work left, which ends the round.
// `before_round` runs untimed before each round.
Row Compare(const std::string& name, const Args& args, const std::function<bool()>& reference,
            const std::function<bool()>& enlace_op,
            const std::function<void()>& before_round = nullptr) {
  std::vector<double> ref_rates, own_rates, ratios;
  for (int r = 0; r < args.rounds; ++r) {
    if (before_round) before_round();
    Clock::duration ref_time{}, own_time{};
    uint64_t ref_n = 0, own_n = 0;
    const auto round_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(args.seconds));
    for (;;) {
      auto t0 = Clock::now();
      if (t0 >= round_end || !reference()) break;
      auto t1 = Clock::now();
      ref_time += t1 - t0;
      ++ref_n;
      if (!enlace_op()) break;
      own_time += Clock::now() - t1;
      ++own_n;
    }
    if (ref_n == 0 || own_n == 0) Die(name + ": a round did no work");
    const double ref_rate =
        static_cast<double>(ref_n) / std::chrono::duration<double>(ref_time).count();
    const double own_rate =
        static_cast<double>(own_n) / std::chrono::duration<double>(own_time).count();
    ref_rates.push_back(ref_rate);
    own_rates.push_back(own_rate);
    ratios.push_back(ref_rate / own_rate);
    std::printf("  %-34s round %d: enlace %9.0f/s  reference %9.0f/s  ratio %5.2fx  (%" PRIu64
                " ops)\n",
                name.c_str(), r + 1, own_rate, ref_rate, ratios.back(), own_n);
  }
  return Row{name, Median(own_rates), Median(ref_rates), Median(ratios)};
}

// ---- the data --------------------------------------------------------------------------

// A case as a field worker records it: five fields, values as JSON texts.
Fields FiveFields(uint64_t i) {
  static const char* const kStatus[] = {"\"Open\"", "\"FollowUp\"", "\"ClosedReferred\""};
  return Fields{
      {"alias", "\"Maria G. " + std::to_string(i % 1000) + "\""},
      {"age", std::to_string(14 + i % 20)},
      {"sex", "\"F\""},
      {"nationality", "\"GTM\""},
      {"status", kStatus[i % 3]},
  };
}

// The same values as one plaintext JSON object: what an unencrypted,
// metadata-free sync would send.
size_t PlainJsonSize(const Fields& f) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : f) j[k] = nlohmann::json::parse(v);
  return j.dump().size();
}

std::unique_ptr<Replica> NewReplica(const ReplicaOptions& o) {
  return Take(Replica::Create(o, "correct horse battery staple"), "create replica");
}

// As the tests' JoinTeam: trust both ways, hand b the team keys.
void JoinTeam(Replica& a, Replica& b) { Check(testing::TryJoinTeam(a, b), "join team"); }

// The writes `r` has not handed out yet, acknowledged so the next call
// returns only newer ones.
std::vector<Bytes> TakePending(Replica& r) {
  auto pending = Take(r.PendingWrites(SIZE_MAX), "pending writes");
  std::vector<Bytes> out;
  for (auto& [counter, bytes] : pending) out.push_back(std::move(bytes));
  if (!pending.empty()) Check(r.AcknowledgeUpTo(pending.back().first), "acknowledge");
  return out;
}

// ---- sizes -----------------------------------------------------------------------------

struct SizeRow {
  std::string name;
  size_t encoded = 0, metadata = 0, ciphertext = 0, in_request = 0, plain_json = 0;
};

SizeRow Measure(const std::string& name, const Bytes& encoded, size_t plain_json) {
  const Write w = Take(Write::Decode(encoded), "decode write");
  SyncRequest empty;
  SyncRequest one;
  one.writes.push_back(encoded);
  return SizeRow{name,
                 encoded.size(),
                 w.EncodeMetadata().size(),
                 w.ciphertext.size(),
                 Encode(one).size() - Encode(empty).size(),
                 plain_json};
}

std::vector<SizeRow> Sizes(const TempDir& tmp) {
  auto a = NewReplica(TestOptions(tmp.File("size-a"), nullptr, /*in_memory=*/true));
  auto b = NewReplica(TestOptions(tmp.File("size-b"), nullptr, /*in_memory=*/true));
  Take(CreateTeam(*a), "create team");
  JoinTeam(*a, *b);

  const Fields five = FiveFields(1);
  const RecordId id = Take(a->Put("cases", std::nullopt, five), "put");
  const Bytes first = TakePending(*a).at(0);
  Take(b->ApplyRemote(first), "apply");
  // The other device edits all five: its context now names one device.
  Take(b->Put("cases", id, FiveFields(2)), "put");
  const Bytes second = TakePending(*b).at(0);
  // The first device changes one field: its context now names two devices.
  Take(a->ApplyRemote(second), "apply");
  const Fields one{{"status", "\"ClosedReferred\""}};
  Take(a->Put("cases", id, one), "put");
  const Bytes third = TakePending(*a).at(0);

  return {Measure("5-field put, new record", first, PlainJsonSize(five)),
          Measure("5-field put, 2nd device edits", second, PlainJsonSize(FiveFields(2))),
          Measure("1-field put, 2-device context", third, PlainJsonSize(one))};
}

// ---- main ------------------------------------------------------------------------------

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  if (sodium_init() < 0) Die("libsodium could not be initialised");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen
  TempDir tmp(TempDir::Under{args.dir, "enlace-bench-"});
  PrintMachine(args);

  // (4) first: the encoded size is also the reference's blob size.
  const std::vector<SizeRow> sizes = Sizes(tmp);
  const size_t write_bytes = sizes.front().encoded;
  Bytes blob(write_bytes);
  randombytes_buf(blob.data(), blob.size());

  std::vector<Row> rows;

  // (1) Put: a new 5-field record, one transaction, on a real SQLite file.
  auto local = NewReplica(TestOptions(tmp.File("local")));
  Take(CreateTeam(*local), "create team");
  std::vector<RecordId> ids;
  uint64_t seq = 0;
  {
    RawSqlite ref(tmp.File("ref-put.db"));
    PregrowWal(tmp.File("ref-put.db"));
    PregrowWal(tmp.File("local/store.db"));
    for (int i = 0; i < 20; ++i) ref.Insert(blob);  // warm-up, both sides
    for (int i = 0; i < 20; ++i)
      ids.push_back(Take(local->Put("cases", std::nullopt, FiveFields(seq++)), "put"));
    rows.push_back(Compare(
        "Put (5 fields, 1 tx)", args,
        [&] {
          ref.Insert(blob);
          return true;
        },
        [&] {
          ids.push_back(Take(local->Put("cases", std::nullopt, FiveFields(seq++)), "put"));
          return true;
        }));
  }

  // (2) ApplyRemote of another device's writes (verify, decrypt, merge, 1 tx).
  {
    auto writer = NewReplica(TestOptions(tmp.File("writer"), nullptr, /*in_memory=*/true));
    auto receiver = NewReplica(TestOptions(tmp.File("receiver")));
    JoinTeam(*local, *writer);
    JoinTeam(*local, *receiver);
    Check(TrustDevice(*receiver, writer->device_id(), writer->public_keys()), "trust");
    Check(TrustDevice(*writer, receiver->device_id(), receiver->public_keys()), "trust");

    std::vector<Bytes> pool;
    size_t next = 0;
    auto generate = [&](size_t n) {
      for (size_t i = 0; i < n; ++i) {
        Take(writer->Put("encounters", std::nullopt, FiveFields(seq++)), "writer put");
      }
      pool = TakePending(*writer);
      next = 0;
    };
    auto apply_one = [&] {
      if (next == pool.size()) return false;
      if (Take(receiver->ApplyRemote(pool[next++]), "apply") != ApplyOutcome::kApplied) {
        Die("a fresh remote write was not applied");
      }
      return true;
    };
    RawSqlite ref(tmp.File("ref-apply.db"));
    PregrowWal(tmp.File("ref-apply.db"));
    PregrowWal(tmp.File("receiver/store.db"));
    for (int i = 0; i < 20; ++i) ref.Insert(blob);
    // Calibrate the pool so a round rarely runs dry (apply gets about half
    // of a round; a dry round just ends early and its rates stay valid).
    generate(200);
    const auto calibration_start = Clock::now();
    while (apply_one()) {
    }
    const double estimate =
        200.0 / std::chrono::duration<double>(Clock::now() - calibration_start).count();
    const size_t per_round =
        std::clamp<size_t>(static_cast<size_t>(estimate * args.seconds), 500, 200000);
    rows.push_back(Compare(
        "ApplyRemote (5-field write, 1 tx)", args,
        [&] {
          ref.Insert(blob);
          return true;
        },
        apply_one, [&] { generate(per_round); }));
  }

  // (3) Get of one record (load metadata, read the write, decrypt, decode).
  {
    RawSqlite ref(tmp.File("ref-put.db"));  // the rows inserted by the Put reference
    std::mt19937_64 rng(42);
    Bytes out;
    const int64_t ref_rows = ref.Count();
    rows.push_back(Compare(
        "Get (5-field record)", args,
        [&] {
          ref.Select(1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(ref_rows)), out);
          return true;
        },
        [&] {
          const RecordId& id = ids[rng() % ids.size()];
          if (Take(local->Get("cases", id), "get").fields.size() != 5) Die("bad record");
          return true;
        }));
  }

  // Passphrase cost: one unlock at the default Argon2id parameters (what an
  // offline attacker pays per guess, per core).
  double unlock_ms = 0;
  {
    ReplicaOptions o = TestOptions(tmp.File("interactive"));
    o.kdf = KdfCost::Interactive();
    NewReplica(o).reset();
    std::vector<double> ms;
    for (int i = 0; i < 3; ++i) {
      const auto start = Clock::now();
      Take(Replica::Open(o, "correct horse battery staple"), "open");
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    unlock_ms = Median(ms);
  }

  std::printf("\n%-36s %14s %16s %16s\n", "operation", "enlace ops/s", "reference ops/s",
              "enlace/reference");
  std::printf("%-36s %14s %16s %16s\n", "", "", "", "(time per op)");
  for (const Row& r : rows) {
    std::printf("%-36s %14.0f %16.0f %15.2fx\n", r.name.c_str(), r.enlace_ops, r.reference_ops,
                r.ratio);
  }
  std::printf("\nreference: raw SQLite, WAL, synchronous=FULL; writes are one transaction per\n");
  std::printf("insert of a %zu-byte blob (the encoded 5-field write); reads select it by key.\n\n",
              write_bytes);

  std::printf("%-32s %8s %9s %11s %11s %11s %8s\n", "write size (bytes)", "encoded", "metadata",
              "ciphertext", "in request", "plain JSON", "ratio");
  for (const SizeRow& s : sizes) {
    std::printf("%-32s %8zu %9zu %11zu %11zu %11zu %7.1fx\n", s.name.c_str(), s.encoded, s.metadata,
                s.ciphertext, s.in_request, s.plain_json,
                static_cast<double>(s.in_request) / static_cast<double>(s.plain_json));
  }
  std::printf(
      "\nencoded = metadata + nonce (24) + ciphertext (values + 16-byte tag) + signature (64)\n");
  std::printf(
      "plus cereal length prefixes; \"in request\" is what one more write adds to a sync\n");
  std::printf("request body; ratio = in request / plain JSON.\n\n");
  std::printf("passphrase unlock at the default Argon2id cost (2 passes, 64 MiB): %.0f ms\n",
              unlock_ms);
  return 0;
}

}  // namespace
}  // namespace enlace::bench

int main(int argc, char** argv) { return enlace::bench::Main(argc, argv); }
