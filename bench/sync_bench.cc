// sync_bench: N case-like records captured on device A, pushed to a real
// enlace-hub on loopback, pulled by a fresh device B; and, in the same run,
// the same rows (the same JSON text) inserted raw into a fresh SQLite file in
// one transaction as the reference. Issue 6 item 6; docs/BENCHMARKS.md.
//
// Usage: sync_bench [--n 1000,10000,100000] [--batch 500] [--json out.json]
//                   [--hub path/to/enlace-hub]
//
// Every N gets a fresh hub (child process, 127.0.0.1 port 0, temporary data
// folder) and fresh devices (core Replicas, KdfCost::Minimum(), schema
// validation on, store.db on disk). Device A runs in a forked child (create,
// register the team, capture, push, invite), device B in another (join,
// pull), so each child's getrusage peak RSS is that device's alone. HTTP goes
// through libcurl with keep-alive; a debug callback counts every header and
// body byte on the wire.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "child_process.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "enlace/wire.h"

namespace enlace::bench {
namespace {

using nlohmann::json;

constexpr char kCollection[] = "persons";

// ---- the records --------------------------------------------------------------------

// A deterministic pseudo-random stream per record.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567) {}
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  template <typename T, size_t K>
  const T& Pick(const T (&a)[K]) {
    return a[Next() % K];
  }
  int Range(int lo, int hi) { return lo + static_cast<int>(Next() % (hi - lo + 1)); }
};

std::string Quote(const std::string& s) { return json(s).dump(); }

std::string QuoteList(const std::vector<std::string>& v) { return json(v).dump(); }

std::string Two(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d", n);
  return buf;
}

// Twenty fields of a person in the schema pack's `persons` collection (a
// victim of trafficking in an NGO's case file), about 1 KB of JSON.
Fields Person(uint64_t i) {
  static const char* kFirst[] = {"María Guadalupe", "Juana",   "Ana Lucía",      "Rosa Elena",
                                 "Daniela",         "Yesenia", "Karla Patricia", "Itzel"};
  static const char* kLast[] = {"Hernández",   "García", "Martínez", "López",
                                "Xochitiotzi", "Pérez",  "Sánchez",  "Ramírez"};
  static const char* kCity[] = {"Apizaco",     "Huamantla",          "Tlaxcala de Xicohténcatl",
                                "Chiautempan", "Calpulalpan",        "Zacatelco",
                                "Tlaxco",      "San Pablo del Monte"};
  static const char* kStreet[] = {"Calle Independencia", "Avenida Juárez",  "Calle Hidalgo",
                                  "Privada Morelos",     "Calle 5 de Mayo", "Boulevard Revolución"};
  static const char* kGender[] = {
      "Feminine",           "Feminine", "Feminine", "Masculine", "TransgenderFeminine",
      "NonSpecifiedUnknown"};
  static const char* kDoc[] = {"CURP", "VoterCard", "Passport", "BirthCertificate", "ConsularId"};
  static const char* kCountry[] = {"MX", "GT", "HN", "SV", "VE", "CO"};
  static const char* kLang[] = {"spa", "spa", "spa", "nah", "myn", "eng"};
  static const char* kStatus[] = {"PossibleVictimOfTrafficking", "ActualVictimOfTrafficking"};
  static const char* kRecruit[] = {"ThroughJobOfferOrAgency", "ThroughOnlineSocialNetworks",
                                   "ThroughRomanticRelationship", "ThroughFamilyOrFamilyEvents",
                                   "AtWork"};
  static const char* kControl[] = {
      "DebtBondage",     "FalsePromises",           "RestrictsMovement", "TakesEarnings",
      "PhysicalThreats", "ThreatensChildrenFamily", "SexualAbuse",       "WithholdsNecessities"};
  static const char* kExploit[] = {"ForcedLabour", "SexualExploitation", "ForcedBegging",
                                   "Servitude", "ForcedCriminalActivities"};
  static const char* kApps[] = {"Facebook", "WhatsApp", "Instagram", "TikTok", "Telegram"};

  Rng r(i + 1);
  const std::string first = r.Pick(kFirst);
  const std::string last = r.Pick(kLast);
  const int year = r.Range(1975, 2009), month = r.Range(1, 12), day = r.Range(1, 28);
  Fields f;
  f["prs_FirstName"] = Quote(first);
  f["prs_LastName"] = Quote(last + " " + r.Pick(kLast));
  f["prs_Alias"] =
      Quote("La " + std::string(r.Pick(kCity)).substr(0, 6) + " " + std::to_string(i % 1000));
  f["prs_Birthdate"] = Quote(std::to_string(year) + "-" + Two(month) + "-" + Two(day));
  f["prs_Gender"] = Quote(r.Pick(kGender));
  f["prs_MobilePhone"] = Quote("+52 246 " + std::to_string(r.Range(100, 999)) + " " +
                               std::to_string(r.Range(1000, 9999)));
  f["prs_Email"] = Quote("persona" + std::to_string(i) + "@correo.example.org");
  f["prs_IdentityDocumentType"] = Quote(r.Pick(kDoc));
  std::string curp = "HEXM" + std::to_string(year % 100) + Two(month) + Two(day) + "MTLRCR0" +
                     std::to_string(r.Range(0, 9));
  f["prs_IdentityNumber"] = Quote(curp);
  f["prs_MailingStreet"] =
      Quote(std::string(r.Pick(kStreet)) + " " + std::to_string(r.Range(1, 2500)) +
            ", Colonia Centro, entre " + r.Pick(kStreet) + " y " + r.Pick(kStreet) +
            ", casa de dos pisos con portón verde");
  f["prs_MailingCity"] = Quote(r.Pick(kCity));
  f["prs_MailingState"] = Quote("29");
  f["prs_Citizenship"] = QuoteList({r.Pick(kCountry)});
  f["prs_PrimaryLanguage"] = Quote(r.Pick(kLang));
  f["vic_TraffickingStatus"] = Quote(r.Pick(kStatus));
  f["vic_AgeWhenTrafficked"] = std::to_string(r.Range(9, 40));
  std::vector<std::string> recruit = {r.Pick(kRecruit)};
  std::vector<std::string> control = {r.Pick(kControl), r.Pick(kControl), r.Pick(kControl)};
  std::sort(control.begin(), control.end());
  control.erase(std::unique(control.begin(), control.end()), control.end());
  f["vic_MethodOfRecruitment"] = QuoteList(recruit);
  f["vic_MethodsOfControl"] = QuoteList(control);
  f["vic_TypeOfExploitation"] = QuoteList({r.Pick(kExploit)});
  f["vic_RecruitmentWebsitesAndApps"] = QuoteList(
      {r.Pick(kApps), "anuncio de empleo en línea: se buscan meseras, buen sueldo, viaje pagado"});
  return f;
}

// The JSON object text of a record: the reference row.
std::string RowJson(const Fields& f) {
  std::string out = "{";
  for (const auto& [k, v] : f) {
    if (out.size() > 1) out += ",";
    out += Quote(k) + ":" + v;
  }
  return out + "}";
}

// ---- devices ------------------------------------------------------------------------

ReplicaOptions DeviceOptions(const std::string& dir) {
  ReplicaOptions o;
  o.dir = dir;
  o.kdf = KdfCost::Minimum();
  o.hook = TeamSchemaHook();
  return o;
}

// Syncs until the session says nothing is left; returns the progress.
SyncOptions g_sync;  // --push-kb / --pull-kb; the core's defaults otherwise

SyncProgress SyncAll(Replica& replica, HttpClient& http, const std::string& url) {
  SyncSession session(replica, g_sync);
  for (;;) {
    OutgoingRequest req = Take(session.NextRequest(), "sync request");
    Response resp = SendOk(http, url, req, "sync");
    FollowHubClock(replica, resp.hub_time);
    if (!Take(session.HandleResponse(resp.body), "sync response")) break;
  }
  return session.progress();
}

// A whole sync (SyncAll) with its cost: wall and CPU seconds of this process
// and of the hub's, and the bytes on the wire.
struct TimedSync {
  SyncProgress progress;
  double seconds = 0;
  double cpu_s = 0;
  double hub_cpu_s = 0;
  WireCounters wire;
};

TimedSync SyncTimed(Replica& replica, HttpClient& http, const std::string& url, pid_t hub_pid) {
  http.ResetCounters();
  const double cpu0 = SelfCpuSeconds(), hub_cpu0 = ProcessCpuSeconds(hub_pid);
  const double t0 = NowSeconds();
  TimedSync t;
  t.progress = SyncAll(replica, http, url);
  t.seconds = NowSeconds() - t0;
  t.cpu_s = SelfCpuSeconds() - cpu0;
  t.hub_cpu_s = ProcessCpuSeconds(hub_pid) - hub_cpu0;
  t.wire = http.counters();
  return t;
}

// Runs `body` in a forked child and returns the JSON it produced.
json InChild(const std::function<json()>& body) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    close(fds[0]);
    const std::string out = body().dump();
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) _exit(3);
      done += static_cast<size_t>(n);
    }
    close(fds[1]);
    std::fflush(nullptr);
    _exit(0);
  }
  close(fds[1]);
  const std::string text = testing::ReadToEnd(fds[0]);
  close(fds[0]);
  if (testing::WaitChild(pid) != 0 || text.empty()) Die("a device child failed");
  return json::parse(text);
}

json WireJson(const WireCounters& c) {
  return {{"requests", c.requests}, {"bytes_up", c.bytes_up}, {"bytes_down", c.bytes_down}};
}

// Device A: create, register the team, capture N records in batches, push
// them all, and invite B.
json DeviceA(const std::string& dir, const std::string& url, const std::string& token, uint64_t n,
             uint64_t batch, pid_t hub_pid) {
  auto a = Take(Replica::Create(DeviceOptions(dir), kPassphrase), "create A");
  Take(CreateTeam(*a), "create team");
  HttpClient http(/*count_bytes=*/true);
  {
    auto req = Take(BuildRegisterTeamRequest(*a, "Tlaxcala", "coordinadora", token), "register");
    Response r = SendOk(http, url, req, "register team");
    Check(HandleMembersResponse(*a, r.body), "members");
  }
  // Capture: generating the values is not timed, RunBatch (validate, encrypt,
  // sign, commit) is.
  double capture_s = 0;
  const double capture_cpu0 = SelfCpuSeconds();
  for (uint64_t start = 0; start < n; start += batch) {
    std::vector<Fields> rows;
    for (uint64_t i = start; i < std::min(n, start + batch); ++i) rows.push_back(Person(i));
    const double t0 = NowSeconds();
    Check(a->RunBatch([&]() -> Status {
      for (const auto& f : rows) {
        auto id = a->Put(kCollection, std::nullopt, f);
        if (!id.ok()) return id.status();
      }
      return Status::Ok();
    }),
          "capture batch");
    capture_s += NowSeconds() - t0;
  }
  const double capture_cpu = SelfCpuSeconds() - capture_cpu0;  // includes making the values
  const uint64_t capture_rss = SelfPeakRss();
  if (Take(a->PendingCount(), "pending") < n) Die("capture lost records");

  const TimedSync push = SyncTimed(*a, http, url, hub_pid);
  const SyncProgress& p = push.progress;
  if (p.sent < n) Die("push sent " + std::to_string(p.sent) + " of " + std::to_string(n));
  const uint64_t push_rss = SelfPeakRss();

  auto invite = Take(PrepareInvite(*a, url, "", Role::kField, 3600ull * 1000), "prepare invite");
  SendOk(http, url, invite.request, "invite");
  return {{"capture_cpu_s", capture_cpu},
          {"push_cpu_s", push.cpu_s},
          {"push_hub_cpu_s", push.hub_cpu_s},
          {"capture_s", capture_s},
          {"push_s", push.seconds},
          {"push_wire", WireJson(push.wire)},
          {"sent", p.sent},
          {"push_rounds", p.rounds},
          {"capture_rss", capture_rss},
          {"push_rss", push_rss},
          {"invite", invite.code}};
}

// Device B: join with the code, then pull everything.
json DeviceB(const std::string& dir, const std::string& url, const std::string& code, uint64_t n,
             pid_t hub_pid) {
  auto b = Take(Replica::Create(DeviceOptions(dir), kPassphrase), "create B");
  HttpClient http(/*count_bytes=*/true);
  {
    auto req = Take(BuildJoinRequest(*b, code, "campo"), "join request");
    Response r = SendOk(http, url, req, "join");
    Check(HandleJoinResponse(*b, code, r.body), "join response");
  }
  const uint64_t before_rss = SelfPeakRss();
  const TimedSync pull = SyncTimed(*b, http, url, hub_pid);
  const SyncProgress& p = pull.progress;
  if (p.received != n || p.refused != 0) {
    Die("pull received " + std::to_string(p.received) + " of " + std::to_string(n) + ", refused " +
        std::to_string(p.refused) + " " + p.last_refusal);
  }
  return {{"pull_cpu_s", pull.cpu_s},  {"pull_hub_cpu_s", pull.hub_cpu_s},
          {"pull_s", pull.seconds},    {"pull_wire", WireJson(pull.wire)},
          {"received", p.received},    {"pull_rounds", p.rounds},
          {"pull_rss", SelfPeakRss()}, {"join_rss", before_rss}};
}

// The reference: the same JSON rows into a fresh SQLite file (WAL,
// synchronous=FULL, as the replica's store) in one transaction.
double ReferenceSeconds(const std::string& path, uint64_t n) {
  std::vector<std::string> rows;
  rows.reserve(n);
  for (uint64_t i = 0; i < n; ++i) rows.push_back(RowJson(Person(i)));
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("reference open");
  auto exec = [&](const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      Die(std::string("reference: ") + sqlite3_errmsg(db));
    }
  };
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  const double t0 = NowSeconds();
  exec("BEGIN IMMEDIATE");
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO rows (body) VALUES (?)", -1, &st, nullptr);
  for (const auto& row : rows) {
    sqlite3_bind_text(st, 1, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) Die("reference insert");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  exec("COMMIT");
  const double s = NowSeconds() - t0;
  sqlite3_close(db);
  return s;
}

std::vector<uint64_t> ParseList(const std::string& text) {
  std::vector<uint64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const uint64_t v = std::strtoull(item.c_str(), nullptr, 10);
    if (v == 0) Die("--n takes positive numbers, e.g. 1000,10000");
    out.push_back(v);
  }
  return out;
}

int Main(int argc, char** argv) {
  std::vector<uint64_t> ns = {1000, 10000, 100000};
  uint64_t batch = 500;
  std::string json_path, hub_bin = ENLACE_HUB_BIN;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--n") {
      ns = ParseList(next());
    } else if (a == "--batch") {
      batch = std::max<uint64_t>(1, std::strtoull(next().c_str(), nullptr, 10));
    } else if (a == "--push-kb") {
      g_sync.max_push_bytes = std::strtoull(next().c_str(), nullptr, 10) * 1024;
    } else if (a == "--pull-kb") {
      g_sync.max_pull_bytes =
          static_cast<uint32_t>(std::strtoul(next().c_str(), nullptr, 10) * 1024);
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--hub") {
      hub_bin = next();
    } else {
      Die("usage: sync_bench [--n 1000,10000,100000] [--batch 500] [--push-kb 256] [--pull-kb "
          "1024] "
          "[--json out.json] [--hub BIN]");
    }
  }
  InitCurl();
  const MachineInfo m = ReadMachineInfo();
  {
    const Fields sample = Person(0);
    std::printf("sync_bench: %zu fields, %zu bytes of JSON per record (record 0)\n", sample.size(),
                RowJson(sample).size());
  }
  std::printf("machine: %u CPUs, %s, %s RAM, %s, load average at start %s\n", m.cpus,
              m.cpu_model.c_str(), Mb(m.ram_bytes).c_str(), m.kernel.c_str(),
              m.load_average.c_str());
  json out = {{"benchmark", "sync_bench"},
              {"machine", MachineJson(m)},
              {"sqlite", sqlite3_libversion()},
              {"max_push_bytes", g_sync.max_push_bytes},
              {"max_pull_bytes", g_sync.max_pull_bytes},
              {"capture_batch", batch},
              {"runs", json::array()}};

  for (const uint64_t n : ns) {
    TempDir dir;
    const std::string data = dir.File("hub");
    HubProcess hub(hub_bin, data);
    std::string token = RunOrDie({hub_bin, "admin", "bootstrap-token", "--data", data});
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();

    const json a =
        InChild([&] { return DeviceA(dir.File("a"), hub.url(), token, n, batch, hub.pid()); });
    const json b =
        InChild([&] { return DeviceB(dir.File("b"), hub.url(), a["invite"], n, hub.pid()); });
    const uint64_t hub_peak = hub.PeakRss();
    const double ref_s = ReferenceSeconds(dir.File("reference.db"), n);
    const double ref_rate = static_cast<double>(n) / ref_s;

    const double nd = static_cast<double>(n);
    const double capture_rate = nd / a["capture_s"].get<double>();
    const double push_rate = nd / a["push_s"].get<double>();
    const double pull_rate = nd / b["pull_s"].get<double>();
    const auto& pw = a["push_wire"];
    const auto& lw = b["pull_wire"];
    json run = {{"n", n},
                {"capture_rps", capture_rate},
                {"push_rps", push_rate},
                {"pull_rps", pull_rate},
                {"reference_rps", ref_rate},
                {"capture_vs_reference", ref_rate / capture_rate},
                {"push_vs_reference", ref_rate / push_rate},
                {"pull_vs_reference", ref_rate / pull_rate},
                {"push_requests", pw["requests"]},
                {"pull_requests", lw["requests"]},
                {"push_requests_per_1000", pw["requests"].get<double>() * 1000 / nd},
                {"pull_requests_per_1000", lw["requests"].get<double>() * 1000 / nd},
                {"push_bytes_up_per_record", pw["bytes_up"].get<double>() / nd},
                {"push_bytes_down_per_record", pw["bytes_down"].get<double>() / nd},
                {"pull_bytes_up_per_record", lw["bytes_up"].get<double>() / nd},
                {"pull_bytes_down_per_record", lw["bytes_down"].get<double>() / nd},
                {"client_a_peak_rss_after_capture", a["capture_rss"]},
                {"client_a_peak_rss_after_push", a["push_rss"]},
                {"client_b_peak_rss_after_pull", b["pull_rss"]},
                {"hub_peak_rss", hub_peak},
                {"device_a", a},
                {"device_b", b},
                {"reference_s", ref_s},
                {"push_rps_per_cpu_s",
                 nd / (a["push_cpu_s"].get<double>() + a["push_hub_cpu_s"].get<double>())},
                {"pull_rps_per_cpu_s",
                 nd / (b["pull_cpu_s"].get<double>() + b["pull_hub_cpu_s"].get<double>())},
                {"capture_rps_per_cpu_s", nd / a["capture_cpu_s"].get<double>()},
                {"load_average_end", ReadMachineInfo().load_average}};
    run["device_a"].erase("invite");
    out["runs"].push_back(run);

    std::printf("\nN = %llu records (load average now %s)\n", static_cast<unsigned long long>(n),
                ReadMachineInfo().load_average.c_str());
    std::printf("  %-30s %12s %14s\n", "phase", "records/s", "x reference");
    std::printf("  %-30s %12.0f %14s\n", "reference (raw SQLite, 1 txn)", ref_rate, "1.0");
    std::printf("  %-30s %12.0f %13.1fx\n", "capture (RunBatch)", capture_rate,
                ref_rate / capture_rate);
    std::printf("  %-30s %12.0f %13.1fx\n", "push A -> hub", push_rate, ref_rate / push_rate);
    std::printf("  %-30s %12.0f %13.1fx\n", "pull hub -> B", pull_rate, ref_rate / pull_rate);
    std::printf("  CPU s (client/hub): capture %.2f/-, push %.2f/%.2f, pull %.2f/%.2f\n",
                a["capture_cpu_s"].get<double>(), a["push_cpu_s"].get<double>(),
                a["push_hub_cpu_s"].get<double>(), b["pull_cpu_s"].get<double>(),
                b["pull_hub_cpu_s"].get<double>());
    std::printf("  %-30s %12s %12s %12s\n", "wire", "requests", "req/1000 rec", "B/rec up/down");
    std::printf("  %-30s %12llu %12.2f %7.0f/%-5.0f\n", "push",
                static_cast<unsigned long long>(pw["requests"].get<uint64_t>()),
                run["push_requests_per_1000"].get<double>(),
                run["push_bytes_up_per_record"].get<double>(),
                run["push_bytes_down_per_record"].get<double>());
    std::printf("  %-30s %12llu %12.2f %7.0f/%-5.0f\n", "pull",
                static_cast<unsigned long long>(lw["requests"].get<uint64_t>()),
                run["pull_requests_per_1000"].get<double>(),
                run["pull_bytes_up_per_record"].get<double>(),
                run["pull_bytes_down_per_record"].get<double>());
    std::printf("  peak RSS: A after capture %s, A after push %s, B after pull %s, hub %s\n",
                Mb(a["capture_rss"].get<uint64_t>()).c_str(),
                Mb(a["push_rss"].get<uint64_t>()).c_str(),
                Mb(b["pull_rss"].get<uint64_t>()).c_str(), Mb(hub_peak).c_str());
    std::fflush(stdout);
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) Die("cannot write " + json_path);
  }
  return 0;
}

}  // namespace
}  // namespace enlace::bench

int main(int argc, char** argv) { return enlace::bench::Main(argc, argv); }
