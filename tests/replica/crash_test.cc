// Invariant 2 of DESIGN: an acknowledged write is never lost across crashes.
//
// A forked child works on a replica in a real folder and reports, through a
// pipe, each operation it saw succeed; the parent SIGKILLs it at a random
// point, reopens the replica and checks that everything reported is there,
// that nothing half-done is, and that the replica carries on correctly.
//
// The kill points come from a seeded RNG (set ENLACE_CRASH_SEED to repeat a
// run's choices; the exact instruction the child dies at also depends on
// scheduling). The seed is printed with any failure.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "enlace/replica.h"
#include "enlace/team.h"
#include "enlace/write.h"
#include "replica/replica_impl.h"
#include "test_util.h"

namespace enlace {
namespace {

using testing::FakeClock;
using testing::MakeReplica;
using testing::NewestWrite;
using testing::TempDir;
using testing::TestOptions;

constexpr char kPassphrase[] = "correct horse";

// ---- the child's side of the pipe -------------------------------------------------------

// Writes one line; lines are far below PIPE_BUF, so each write is atomic.
void WriteLine(int fd, const std::string& line) {
  const std::string s = line + "\n";
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(3);
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void ChildFail(int fd, const Status& s) {
  WriteLine(fd, "error " + s.ToString());
  ::_exit(2);
}

// The child's replica; a failure to open it is reported and ends the child.
std::unique_ptr<Replica> OpenInChild(int fd, const ReplicaOptions& options) {
  auto r = Replica::Open(options, kPassphrase);
  if (!r.ok()) ChildFail(fd, r.status());
  return std::move(r).value();
}

// ---- the parent's side ------------------------------------------------------------------

// Reads '\n'-terminated lines from a pipe until EOF.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  std::optional<std::string> Next() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

// Runs `body(write_fd)` in a forked child (which must end with _exit), reads
// `lines_before_kill` lines, waits `delay_us`, SIGKILLs the child, and returns
// every line it wrote (including those still in the pipe).
// `killed_mid_run` tells whether the child was still working when killed.
template <typename Body>
std::vector<std::string> RunAndKill(Body body, int lines_before_kill, int delay_us,
                                    bool* killed_mid_run) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    body(fds[1]);
    ::_exit(4);  // not reached: the body exits itself
  }
  ::close(fds[1]);
  LineReader reader(fds[0]);
  std::vector<std::string> lines;
  while (static_cast<int>(lines.size()) < lines_before_kill) {
    auto line = reader.Next();
    if (!line) break;
    lines.push_back(std::move(*line));
  }
  if (delay_us > 0) ::usleep(static_cast<useconds_t>(delay_us));
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  // Whatever the child managed to report before dying was committed too.
  while (auto line = reader.Next()) lines.push_back(std::move(*line));
  ::close(fds[0]);
  for (const auto& line : lines) REQUIRE_MESSAGE(line.rfind("error", 0) != 0, line);
  // Killed, or finished every operation before the kill.
  const bool killed = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
  const bool finished = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  REQUIRE_MESSAGE((killed || finished), "child ended with wait status " << wstatus);
  *killed_mid_run = killed;
  return lines;
}

std::unique_ptr<Replica> Reopen(const ReplicaOptions& options) {
  auto r = Replica::Open(options, kPassphrase);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

// SQLite's own check of the whole file.
void CheckIntegrity(Replica& r) {
  auto st = r.impl().store().db().Prepare("PRAGMA integrity_check");
  REQUIRE(st.ok());
  auto row = st->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  CHECK(st->ColumnText(0) == "ok");
}

std::string Dump(const Replica& r) {
  auto d = r.DumpState();
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  return *d;
}

// ---- local writes -------------------------------------------------------------------------

// The value a put of number `n` stores.
Fields PutValues(uint64_t n) { return {{"n", std::to_string(n)}, {"status", "\"Active\""}}; }

// The child: opens the replica and puts records n = first, first+1, ...,
// reporting "<record id> <n>" after each commit.
[[noreturn]] void PutChild(int fd, const ReplicaOptions& options, uint64_t first, int count) {
  auto r = OpenInChild(fd, options);
  for (int i = 0; i < count; ++i) {
    const uint64_t n = first + static_cast<uint64_t>(i);
    auto id = r->Put("cases", std::nullopt, PutValues(n));
    if (!id.ok()) ChildFail(fd, id.status());
    WriteLine(fd, id->ToHex() + " " + std::to_string(n));
  }
  ::_exit(0);
}

TEST_CASE("a put reported as done survives a SIGKILL at any point, and writing carries on") {
  const uint64_t seed = testing::CrashSeed();
  INFO("ENLACE_CRASH_SEED=" << seed);
  std::mt19937_64 rng(seed);
  constexpr int kRounds = 20;
  constexpr int kPutsPerChild = 25;

  TempDir dir;
  FakeClock clock;  // never advances: only the persisted HLC keeps stamps increasing
  const ReplicaOptions options = TestOptions(dir.File("device"), &clock);
  {
    auto r = MakeReplica(options, kPassphrase);
    REQUIRE(CreateTeam(*r).ok());
  }

  std::map<std::string, uint64_t> committed;  // record id (hex) -> n, over every round
  uint64_t next_n = 1;
  int killed_mid_run = 0;
  int committed_unreported = 0;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const int kill_after = std::uniform_int_distribution<int>(0, kPutsPerChild)(rng);
    const int delay_us = std::uniform_int_distribution<int>(0, 3000)(rng);
    const uint64_t first = next_n;
    bool killed = false;
    const auto lines = RunAndKill([&](int fd) { PutChild(fd, options, first, kPutsPerChild); },
                                  kill_after, delay_us, &killed);
    killed_mid_run += killed ? 1 : 0;
    for (const auto& line : lines) {
      const auto space = line.find(' ');
      REQUIRE(space != std::string::npos);
      const uint64_t n = std::stoull(line.substr(space + 1));
      CHECK(n == next_n);  // reported in order, none skipped
      committed[line.substr(0, space)] = n;
      next_n = n + 1;
    }

    auto r = Reopen(options);
    CheckIntegrity(*r);

    // Everything reported is there with its value.
    for (const auto& entry : committed) {
      // Not a structured binding: clang 14 cannot capture one in doctest's lambdas.
      const std::string& hex = entry.first;
      const uint64_t n = entry.second;
      auto id = RecordId::FromHex(hex);
      REQUIRE(id.ok());
      auto rec = r->Get("cases", *id);
      REQUIRE_MESSAGE(rec.ok(), hex << ": " << rec.status().ToString());
      CHECK(rec->fields.at("n").value == std::to_string(n));
      CHECK(rec->fields.at("status").value == "\"Active\"");
    }
    // At most one more: the put that committed just before the kill, unreported.
    auto list = r->List("cases");
    REQUIRE(list.ok());
    REQUIRE(list->size() >= committed.size());
    REQUIRE(list->size() <= committed.size() + 1);
    for (const auto& rec : *list) {
      if (committed.contains(rec.id.ToHex())) continue;
      CHECK(rec.fields.at("n").value == std::to_string(next_n));
      committed[rec.id.ToHex()] = next_n++;
      ++committed_unreported;
    }
    // Nothing acknowledged yet: every write is still queued, exactly once.
    auto pending_count = r->PendingCount();
    REQUIRE(pending_count.ok());
    CHECK(*pending_count == committed.size());

    // A new write after the crash follows every earlier one.
    auto id = r->Put("cases", std::nullopt, PutValues(next_n));
    REQUIRE_MESSAGE(id.ok(), id.status().ToString());
    committed[id->ToHex()] = next_n++;

    auto pending = r->PendingWrites(SIZE_MAX);
    REQUIRE(pending.ok());
    REQUIRE(pending->size() == committed.size());
    uint64_t previous_counter = 0;
    HlcTimestamp previous_hlc;
    for (const auto& [counter, bytes] : *pending) {
      auto w = Write::Decode(bytes);
      REQUIRE_MESSAGE(w.ok(), w.status().ToString());
      CHECK(w->dot.counter == counter);
      CHECK(w->dot.device == r->device_id());
      CHECK(w->dot.counter == previous_counter + 1);  // strictly increasing, no reuse, no gap
      CHECK(w->hlc > previous_hlc);
      previous_counter = w->dot.counter;
      previous_hlc = w->hlc;
    }
    CHECK(previous_counter == committed.size());
    auto last = Write::Decode(pending->back().second);
    REQUIRE(last.ok());
    CHECK(last->record == *id);
  }
  std::printf(
      "crash: puts: %d rounds (seed %llu), %d killed mid-run, %d commits not yet "
      "reported when killed, %zu records\n",
      kRounds, static_cast<unsigned long long>(seed), killed_mid_run, committed_unreported,
      committed.size());
}

// ---- remote writes ------------------------------------------------------------------------

// Every write device `b` makes in a short session, in order: new records,
// edits that supersede earlier values (so applying them purges writes), a
// delete, a restore and an erase. Each write is taken as soon as it is made,
// before a later one can drop it from b's outbox.
std::vector<Bytes> MakeBatch(Replica& b, std::mt19937_64& rng) {
  std::vector<Bytes> batch;
  auto take_newest = [&] {
    auto pending = b.PendingWrites(SIZE_MAX);
    REQUIRE(pending.ok());
    REQUIRE_FALSE(pending->empty());
    batch.push_back(pending->back().second);
  };
  std::vector<RecordId> ids;
  for (int i = 0; i < 4; ++i) {
    auto id =
        b.Put("cases", std::nullopt, {{"status", "\"Active\""}, {"age", std::to_string(20 + i)}});
    REQUIRE(id.ok());
    ids.push_back(*id);
    take_newest();
  }
  for (int i = 0; i < 24; ++i) {
    const RecordId& id = ids[rng() % ids.size()];
    Fields f;
    if (rng() % 2 == 0) f["status"] = "\"FollowUp" + std::to_string(i) + "\"";
    if (rng() % 2 == 0 || f.empty()) f["age"] = std::to_string(30 + i);
    if (rng() % 4 == 0) f["nationality"] = "[\"MX\",\"GT\"]";
    REQUIRE(b.Put("cases", id, f).ok());
    take_newest();
  }
  REQUIRE(b.Delete("cases", ids[0]).ok());
  take_newest();
  REQUIRE(b.Restore("cases", ids[0]).ok());
  take_newest();
  REQUIRE(b.Put("cases", ids[0], {{"status", "\"Closed\""}}).ok());
  take_newest();
  REQUIRE(b.Erase("cases", ids[1]).ok());
  take_newest();
  return batch;
}

// The child: opens the replica and applies the batch in order, reporting the
// index of each write after its transaction committed.
[[noreturn]] void ApplyChild(int fd, const ReplicaOptions& options,
                             const std::vector<Bytes>& batch) {
  auto r = OpenInChild(fd, options);
  for (size_t i = 0; i < batch.size(); ++i) {
    auto outcome = r->ApplyRemote(batch[i]);
    if (!outcome.ok()) ChildFail(fd, outcome.status());
    WriteLine(fd, std::to_string(i));
  }
  ::_exit(0);
}

TEST_CASE("a SIGKILL during ApplyRemote of a batch leaves each write fully applied or not at all") {
  const uint64_t seed = testing::CrashSeed();
  INFO("ENLACE_CRASH_SEED=" << seed);
  std::mt19937_64 rng(seed);
  constexpr int kRounds = 12;

  TempDir dir;
  FakeClock clock;
  auto b = MakeReplica(TestOptions(dir.File("b"), &clock, /*in_memory=*/true));
  REQUIRE(CreateTeam(*b).ok());
  const std::vector<Bytes> batch = MakeBatch(*b, rng);
  REQUIRE(batch.size() == 32);

  // The state after exactly the first j writes, for every j.
  std::vector<std::string> prefix_dumps;
  {
    auto scratch = MakeReplica(TestOptions(dir.File("scratch"), &clock, /*in_memory=*/true));
    testing::JoinTeam(*b, *scratch);
    prefix_dumps.push_back(Dump(*scratch));
    for (const auto& w : batch) {
      auto outcome = scratch->ApplyRemote(w);
      REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
      prefix_dumps.push_back(Dump(*scratch));
    }
    // Later writes superseded earlier ones, so applying the batch purges.
    auto stored = scratch->StoredWrites();
    REQUIRE(stored.ok());
    REQUIRE(stored->size() < batch.size());
  }
  REQUIRE(prefix_dumps.front() != prefix_dumps.back());

  int killed_mid_run = 0;
  int committed_unreported = 0;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const ReplicaOptions options = TestOptions(dir.File("a" + std::to_string(round)), &clock);
    {
      auto a = MakeReplica(options, kPassphrase);
      testing::JoinTeam(*b, *a);
    }
    const int kill_after =
        std::uniform_int_distribution<int>(0, static_cast<int>(batch.size()))(rng);
    const int delay_us = std::uniform_int_distribution<int>(0, 3000)(rng);
    bool killed = false;
    const auto lines =
        RunAndKill([&](int fd) { ApplyChild(fd, options, batch); }, kill_after, delay_us, &killed);
    killed_mid_run += killed ? 1 : 0;
    for (size_t i = 0; i < lines.size(); ++i) REQUIRE(lines[i] == std::to_string(i));
    const size_t reported = lines.size();
    CAPTURE(reported);

    auto a = Reopen(options);
    CheckIntegrity(*a);
    // Exactly a prefix: every reported write, plus possibly the one whose
    // commit the kill beat the report of.
    const std::string dump = Dump(*a);
    const bool at_reported = dump == prefix_dumps[reported];
    const bool one_more = reported < batch.size() && dump == prefix_dumps[reported + 1];
    CHECK((at_reported || one_more));
    committed_unreported += (!at_reported && one_more) ? 1 : 0;

    // Delivering the whole batch again converges with a replica that never crashed.
    for (size_t i = 0; i < batch.size(); ++i) {
      auto outcome = a->ApplyRemote(batch[i]);
      REQUIRE_MESSAGE(outcome.ok(), outcome.status().ToString());
      if (i < reported) CHECK(*outcome == ApplyOutcome::kAlreadySeen);
    }
    CHECK(Dump(*a) == prefix_dumps.back());
  }
  std::printf(
      "crash: remote batch of %zu: %d rounds (seed %llu), %d killed mid-run, %d commits "
      "not yet reported when killed\n",
      batch.size(), kRounds, static_cast<unsigned long long>(seed), killed_mid_run,
      committed_unreported);
}

// ---- a device folder restored from a backup ------------------------------------------------

TEST_CASE("a device restored from an old backup cannot make another replica lose or mix values") {
  // A phone's folder is backed up, the phone writes and syncs, then dies and
  // is restored from the backup: its write counter is back where it was, and
  // it writes again (offline) with dots it already used for another record.
  TempDir dir;
  FakeClock clock;
  const ReplicaOptions a_options = TestOptions(dir.File("a"), &clock);
  auto b = MakeReplica(TestOptions(dir.File("b"), &clock));
  {
    auto a = MakeReplica(a_options, kPassphrase);
    REQUIRE(CreateTeam(*a).ok());
    testing::JoinTeam(*a, *b);
  }
  std::filesystem::copy(dir.File("a"), dir.File("backup"),
                        std::filesystem::copy_options::recursive);

  RecordId x;
  {
    auto a = Reopen(a_options);
    auto id = a->Put("cases", std::nullopt, {{"status", "\"Active\""}});  // dot (a, 1)
    REQUIRE(id.ok());
    x = *id;
    auto applied = b->ApplyRemote(NewestWrite(*a));
    REQUIRE_MESSAGE(applied.ok(), applied.status().ToString());
  }
  std::filesystem::remove_all(dir.File("a"));
  std::filesystem::copy(dir.File("backup"), dir.File("a"),
                        std::filesystem::copy_options::recursive);

  auto restored = Reopen(a_options);
  auto y = restored->Put("encounters", std::nullopt, {{"place", "\"Tapachula\""}});  // (a, 1) again
  REQUIRE(y.ok());
  // b may refuse the reused dot, but must not mix it up with record x.
  (void)b->ApplyRemote(NewestWrite(*restored));
  auto rec_x = b->Get("cases", x);
  REQUIRE_MESSAGE(rec_x.ok(), rec_x.status().ToString());
  CHECK(rec_x->fields.at("status").value == "\"Active\"");
  auto rec_y = b->Get("encounters", *y);
  if (rec_y.ok()) {
    CHECK(rec_y->fields.at("place").value == "\"Tapachula\"");
  } else {
    CHECK_MESSAGE(rec_y.status().code() == StatusCode::kNotFound, rec_y.status().ToString());
  }
  auto dump = b->DumpState();
  CHECK_MESSAGE(dump.ok(), dump.status().ToString());

  // An edit that supersedes y's first value must not take x's value with it.
  REQUIRE(restored->Put("encounters", *y, {{"place", "\"Tuxtla\""}}).ok());  // (a, 2)
  (void)b->ApplyRemote(NewestWrite(*restored));
  rec_x = b->Get("cases", x);
  REQUIRE_MESSAGE(rec_x.ok(), rec_x.status().ToString());
  CHECK(rec_x->fields.at("status").value == "\"Active\"");
  dump = b->DumpState();
  CHECK_MESSAGE(dump.ok(), dump.status().ToString());
}

}  // namespace
}  // namespace enlace
