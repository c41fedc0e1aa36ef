// Shared by the end-to-end suites (tests/e2e/): field devices driven
// through the real `enlace` CLI, a regional office (a real enlace-hub and its
// coordinator), and read-only looks at the SQLite files the binaries leave.
// Header-only: the binaries' paths come from the ENLACE_HUB_BIN and
// ENLACE_CLI_BIN definitions of each e2e executable.
#ifndef ENLACE_TESTS_SUPPORT_CLI_FIXTURE_H_
#define ENLACE_TESTS_SUPPORT_CLI_FIXTURE_H_

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "process.h"
#include "test_util.h"

namespace enlace::testing {

inline const std::string kHubBin = ENLACE_HUB_BIN;
inline const std::string kCliBin = ENLACE_CLI_BIN;

// One device: a home folder driven through the CLI.
struct CliDevice {
  std::string home;
  std::string passphrase = "una frase larga de prueba";

  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {kCliBin, "--home", home};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::map<std::string, std::string> Env(std::map<std::string, std::string> env = {}) const {
    env.emplace("ENLACE_PASSPHRASE", passphrase);
    env.emplace("ENLACE_KDF", "min");
    env.emplace("ENLACE_RETRY_BASE_MS", "20");
    env.emplace("LANGUAGE", "en");  // the suites read some of the CLI's English words
    return env;
  }
  RunResult Run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}, int timeout_s = 120) const {
    return testing::Run(Argv(args), Env(env), "", timeout_s);
  }
  // Runs with --json and requires exit 0.
  nlohmann::json Json(std::vector<std::string> args) const {
    args.insert(args.begin(), "--json");
    const RunResult r = Run(args);
    INFO("enlace ", args[1], " exit ", r.exit_code, " stdout: ", r.out, " stderr: ", r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  }
  void Ok(const std::vector<std::string>& args) const {
    const RunResult r = Run(args);
    INFO("enlace ", args[0], " exit ", r.exit_code, " stdout: ", r.out, " stderr: ", r.err);
    REQUIRE(r.exit_code == 0);
  }
  nlohmann::json Sync() const { return Json({"sync"}); }
  // `enlace init ARGS --token-file -` with `token` on standard input (a
  // token is never given in argv).
  RunResult Init(std::vector<std::string> args, const std::string& token,
                 const std::map<std::string, std::string>& env = {}) const {
    args.insert(args.begin(), "init");
    args.insert(args.end(), {"--token-file", "-"});
    return testing::Run(Argv(args), Env(env), token + "\n");
  }
};

// `enlace put` of an outreach encounter (schema pack collection
// `encounters`); `notes` must start with a letter (it stays a string).
inline std::vector<std::string> PutEncounter(const std::string& notes, int reached = 1,
                                             const std::string& place = "Apizaco") {
  return {"put",
          "encounters",
          "enc_Date=2026-11-29",
          "enc_Kind=Street",
          "enc_Place=" + place,
          "enc_FederalEntity=\"29\"",
          "enc_PeopleReached=" + std::to_string(reached),
          "enc_Notes=" + notes};
}

inline std::string BootstrapToken(const std::string& data) {
  const RunResult r = Run({kHubBin, "admin", "bootstrap-token", "--data", data});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::string token = r.out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

// The hub's Prometheus text (GET /metrics).
inline std::string HubMetrics(int port) {
  return RawExchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

// The value of an unlabelled metric in the hub's Prometheus text; -1 when absent.
inline int64_t MetricValue(int port, const std::string& name) {
  const std::string text = HubMetrics(port);
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + name.size() + 2, nullptr, 10);
}

// A regional office: a hub on 127.0.0.1 (port 0) and its team's coordinator.
struct Office {
  TempDir dir;
  std::string data = dir.File("hub");
  std::unique_ptr<HubProcess> hub;
  CliDevice coord{dir.File("coord")};

  explicit Office(const std::string& team = "Tlaxcala") {
    hub = std::make_unique<HubProcess>(kHubBin, data, "127.0.0.1:0",
                                       std::vector<std::string>{"--quiet"});
    const RunResult r = coord.Init({"--hub", hub->url(), "--team", team, "--name", "coordinadora"},
                                   BootstrapToken(data));
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  std::string Invite(const std::string& role = "field") {
    return coord.Json({"invite", "--role", role})["code"].get<std::string>();
  }
  CliDevice Join(const std::string& name) {
    CliDevice d{dir.File(name)};
    d.Ok({"join", Invite(), "--name", name});
    return d;
  }
  std::string hub_db() const { return data + "/hub.db"; }
  // Kills (SIGKILL) or stops the hub and starts it again on the same port.
  void RestartHub(bool kill) {
    const int port = hub->port();
    if (kill) {
      hub->Kill();
    } else {
      hub->Stop();
    }
    hub.reset();
    hub = std::make_unique<HubProcess>(kHubBin, data, "127.0.0.1:" + std::to_string(port),
                                       std::vector<std::string>{"--quiet"});
  }
};

// ---- SQLite, read-only ----------------------------------------------------------------------

// A read-only connection to a database file another process wrote (and may
// still be writing, or died writing).
class ReadOnlyDb {
 public:
  explicit ReadOnlyDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
    REQUIRE_MESSAGE(rc == SQLITE_OK, "cannot open " << path << ": " << sqlite3_errstr(rc));
    sqlite3_busy_timeout(db_, 5000);
  }
  ~ReadOnlyDb() { sqlite3_close(db_); }
  ReadOnlyDb(const ReadOnlyDb&) = delete;
  ReadOnlyDb& operator=(const ReadOnlyDb&) = delete;

  // Every row of `sql`, each column as text ("NULL" for null, hex for blobs).
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    const int prc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    REQUIRE_MESSAGE(prc == SQLITE_OK, sql << ": " << sqlite3_errmsg(db_));
    std::vector<std::vector<std::string>> rows;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) row.push_back(Column(st, i));
      rows.push_back(std::move(row));
    }
    const std::string error = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    REQUIRE_MESSAGE(rc == SQLITE_DONE, sql << ": " << error);
    return rows;
  }
  int64_t Int(const std::string& sql) {
    const auto rows = Rows(sql);
    REQUIRE(rows.size() == 1);
    return std::strtoll(rows[0][0].c_str(), nullptr, 10);
  }
  // "ok", or what PRAGMA integrity_check found.
  std::string IntegrityCheck() {
    std::string out;
    for (const auto& row : Rows("PRAGMA integrity_check"))
      out += (out.empty() ? "" : "; ") + row[0];
    return out;
  }
  // table -> "<rows> rows, <BLAKE2b of the sorted rows>", for every table
  // but those in `skip`: two equal digests mean equal contents.
  std::map<std::string, std::string> TableDigests(const std::set<std::string>& skip = {}) {
    std::map<std::string, std::string> out;
    for (const auto& t : Rows("SELECT name FROM sqlite_master WHERE type = 'table'")) {
      const std::string& table = t[0];
      if (skip.contains(table)) continue;
      std::vector<std::string> lines;
      for (const auto& row : Rows("SELECT * FROM \"" + table + "\"")) {
        std::string line;
        for (const auto& v : row) line += std::to_string(v.size()) + ":" + v + "|";
        lines.push_back(std::move(line));
      }
      std::sort(lines.begin(), lines.end());
      std::string all;
      for (const auto& l : lines) all += l + "\n";
      const auto hash = internal::GenericHash(internal::AsBytes(all));
      out[table] = std::to_string(lines.size()) + " rows, " + internal::ToHex(hash);
    }
    return out;
  }

 private:
  static std::string Column(sqlite3_stmt* st, int i) {
    switch (sqlite3_column_type(st, i)) {
      case SQLITE_NULL:
        return "NULL";
      case SQLITE_BLOB: {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, i));
        const auto n = static_cast<size_t>(sqlite3_column_bytes(st, i));
        return "x" + internal::ToHex(std::span<const uint8_t>(p, n));
      }
      default:
        return reinterpret_cast<const char*>(sqlite3_column_text(st, i));
    }
  }
  sqlite3* db_ = nullptr;
};

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_CLI_FIXTURE_H_
