// enlace-hub: a regional office's sync hub. One binary, one data folder.
//
//   enlace-hub serve --data DIR [--listen HOST:PORT] [--tls-cert F --tls-key F]
//                    [--insecure-plain-http] [--log-file F | --quiet] [--threads N]
//                    [--metrics-token-file F [--metrics-require-token]]
//                    [--max-connections N] [--max-connections-per-address N]
//                    [--max-body-memory-mib N] [--report-min-k N]
//   enlace-hub admin bootstrap-token --data DIR
//   enlace-hub admin viewer-token --data DIR --team TEAMHEX [--label TEXT]
//   enlace-hub admin backup --data DIR --out FILE
//   enlace-hub admin restore --data DIR --from FILE
//   enlace-hub admin pin --tls-cert F
//   enlace-hub admin verify --data DIR
#include <fcntl.h>
#include <malloc.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/bytes.h"
#include "hub_restore.h"
#include "hub_storage.h"
#include "hub_verify.h"
#include "net/server.h"
#include "net/tls_pin.h"
#include "routes.h"

namespace {

using enlace::Status;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitFailure = 2;

int Fail(const std::string& what, const Status& s) {
  std::cerr << "enlace-hub: " << what << ": " << s.message() << "\n";
  return kExitFailure;
}

// "HOST:PORT" or "[V6]:PORT".
bool ParseListen(const std::string& listen, std::string& host, uint16_t& port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

std::string NewToken() {
  std::array<uint8_t, 24> raw{};
  enlace::internal::RandomFill(raw);
  std::string token = "bt-" + enlace::internal::ToBase64Url(raw);
  enlace::internal::Wipe(raw);
  return token;
}

// The request log's destination: stderr, or a file appended to and opened
// again on SIGHUP (logrotate moves the file away, then sends SIGHUP).
// Thread-safe.
class LogSink {
 public:
  LogSink() = default;
  ~LogSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Opens `path` for appending (created 0640); false and *error on failure.
  bool Open(const std::string& path, std::string* error) {
    const int fd = OpenFile(path, error);
    if (fd < 0) return false;
    std::lock_guard lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    path_ = path;
    return true;
  }

  // Opens the file's path again; on failure keeps the old file and says so
  // in it. Without a file: nothing.
  void Reopen() {
    std::string path;
    {
      std::lock_guard lock(mu_);
      if (fd_ < 0) return;
      path = path_;
    }
    std::string error;
    const int fd = OpenFile(path, &error);
    if (fd < 0) {
      Write(nlohmann::json{{"event", "log_reopen_failed"}, {"error", error}}.dump());
      return;
    }
    {
      std::lock_guard lock(mu_);
      ::close(fd_);
      fd_ = fd;
    }
    Write(nlohmann::json{{"event", "log_reopened"}}.dump());
  }

  void Write(const std::string& line) {
    std::lock_guard lock(mu_);
    if (fd_ < 0) {
      std::cerr << line << "\n";
      return;
    }
    // One write per line, so lines stay whole; a full disk loses lines, not the hub.
    const std::string out = line + "\n";
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

 private:
  static int OpenFile(const std::string& path, std::string* error) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) *error = "cannot open " + path + ": " + std::strerror(errno);
    return fd;
  }

  std::mutex mu_;
  int fd_ = -1;
  std::string path_;
};

// The token of --metrics-token-file: the file's first line, without
// surrounding blanks; printable ASCII without spaces, 16 to 256 characters.
bool ReadMetricsToken(const std::string& path, std::string& token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "enlace-hub: cannot read --metrics-token-file " << path << "\n";
    return false;
  }
  std::getline(in, token);
  const auto first = token.find_first_not_of(" \t\r");
  const auto last = token.find_last_not_of(" \t\r");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  const bool printable = std::all_of(token.begin(), token.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (token.size() < 16 || token.size() > 256 || !printable) {
    std::cerr << "enlace-hub: --metrics-token-file must hold one token of 16 to 256 printable "
                 "characters without spaces (e.g. openssl rand -hex 32)\n";
    return false;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    std::cerr << "enlace-hub: warning: " << path
              << " is readable by every user; chmod 0600 (or 0640) it\n";
  }
  return true;
}

struct ServeArgs {
  std::string data, listen, cert, key, log_file, metrics_token_file;
  size_t threads = 4;
  bool quiet = false;
  bool insecure_plain_http = false;
  bool metrics_require_token = false;
  uint32_t report_min_k = 11;
  size_t max_connections = 256;
  size_t max_connections_per_address = 32;
  size_t max_body_memory_mib = 256;
};

// The network layer's counters, as Prometheus text.
std::string NetMetrics(const enlace::hub::NetStats& n) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, uint64_t value) {
    out += std::string("# TYPE ") + name + " " + type + "\n" + name + " " + std::to_string(value) +
           "\n";
  };
  metric("enlace_net_connections", "gauge", n.connections);
  metric("enlace_net_body_bytes_in_flight", "gauge", n.body_bytes_in_flight);
  metric("enlace_net_connections_refused_total", "counter", n.connections_refused);
  metric("enlace_net_connections_evicted_total", "counter", n.connections_evicted);
  metric("enlace_net_header_timeouts_total", "counter", n.header_timeouts);
  metric("enlace_net_idle_timeouts_total", "counter", n.idle_timeouts);
  metric("enlace_net_body_timeouts_total", "counter", n.body_timeouts);
  metric("enlace_net_unverified_bodies_refused_total", "counter", n.unverified_bodies_refused);
  metric("enlace_net_body_budget_refusals_total", "counter", n.body_budget_refusals);
  metric("enlace_net_tls_reloads_total", "counter", n.tls_reloads);
  metric("enlace_net_tls_reload_failures_total", "counter", n.tls_reload_failures);
  return out;
}

std::string RefusePlainHttp(const std::string& listen) {
  return "enlace-hub: refusing plain HTTP on " + listen +
         ", which is not a loopback address: request signatures, team and device ids and every "
         "ciphertext would cross the network unprotected. Give --tls-cert and --tls-key, listen "
         "on 127.0.0.1 behind a TLS-terminating proxy, or, only when such a proxy on this "
         "machine or a trusted network stands in front, --insecure-plain-http\n";
}

int Serve(const ServeArgs& args) {
  enlace::hub::ServerOptions net;
  if (!ParseListen(args.listen, net.host, net.port)) {
    std::cerr << "enlace-hub: --listen wants HOST:PORT, e.g. 127.0.0.1:8443 (port 0 picks one)\n";
    return kExitUsage;
  }
  if (args.cert.empty() != args.key.empty()) {
    std::cerr << "enlace-hub: --tls-cert and --tls-key go together\n";
    return kExitUsage;
  }
  // Before anything is created on disk. (A host that does not resolve is
  // left to Server::Create, which says so.)
  if (args.cert.empty() && !args.insecure_plain_http) {
    const std::optional<bool> loopback = enlace::hub::ListensOnLoopback(net.host);
    if (loopback.has_value() && !*loopback) {
      std::cerr << RefusePlainHttp(args.listen);
      return kExitUsage;
    }
  }
  enlace::hub::HubOptions options;
  if (!args.metrics_token_file.empty()) {
    std::string token;
    if (!ReadMetricsToken(args.metrics_token_file, token)) return kExitUsage;
    options.metrics_token_hash = enlace::hub::HashToken(token);
    sodium_memzero(token.data(), token.size());
  }
  if (args.metrics_require_token && !options.metrics_token_hash) {
    std::cerr << "enlace-hub: --metrics-require-token needs --metrics-token-file\n";
    return kExitUsage;
  }
  options.metrics_from_loopback = !args.metrics_require_token;
  net.tls_cert_file = args.cert;
  net.tls_key_file = args.key;
  net.threads = args.threads;
  net.max_connections = args.max_connections;
  net.max_connections_per_address = args.max_connections_per_address;
  net.max_body_bytes_in_flight = args.max_body_memory_mib << 20;
  // Request and response buffers (up to the 8 MiB body limit) come and go
  // on every request: keep freed memory in the allocator instead of giving
  // it back to the kernel each time (madvise, munmap and the TLB flushes on
  // every core they cost were ~15 % of the hub's CPU under load). Memory
  // stays bounded by the peak of what the requests in flight hold, and
  // request bodies by max_body_bytes_in_flight.
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);

  LogSink sink;
  if (!args.log_file.empty()) {
    std::string error;
    if (!sink.Open(args.log_file, &error)) {
      std::cerr << "enlace-hub: --log-file: " << error << "\n";
      return kExitFailure;
    }
  }

  // One hub per folder, and no restore under a serving hub.
  std::error_code mk;
  std::filesystem::create_directories(args.data, mk);
  auto folder_lock = enlace::hub::DataFolderLock::Acquire(args.data);
  if (!folder_lock.ok()) return Fail("cannot serve " + args.data, folder_lock.status());

  auto storage = enlace::hub::OpenSqliteHubStorage(args.data);
  if (!storage.ok()) return Fail("cannot open the data folder " + args.data, storage.status());

  options.report_min_k = args.report_min_k;
  if (!args.quiet) {
    options.log = [&sink](const std::string& line) { sink.Write(line); };
  }
  net.log = options.log;
  // Set once the server exists; /metrics is not served before Run().
  const enlace::hub::Server* running = nullptr;
  options.extra_metrics = [&running] {
    return running == nullptr ? std::string() : NetMetrics(running->stats());
  };
  enlace::hub::HubHandler handler(**storage, options);

  std::string error;
  auto server = enlace::hub::Server::Create(net, handler, &error);
  if (!server) {
    std::cerr << "enlace-hub: cannot listen on " << args.listen << ": " << error << "\n";
    return kExitFailure;
  }
  // Checked again on the bound address: a name may resolve differently.
  if (!server->tls() && !server->loopback() && !args.insecure_plain_http) {
    std::cerr << RefusePlainHttp(args.listen);
    return kExitUsage;
  }
  running = server.get();
  server->StopOnSignals();
  server->ReloadOnSignal([&sink] { sink.Reopen(); });
  std::string pin;
  if (!args.cert.empty()) {
    pin = enlace::hub::PublicKeyPin(args.cert, &error);
    if (pin.empty()) {
      std::cerr << "enlace-hub: cannot read the certificate " << args.cert << ": " << error << "\n";
      return kExitFailure;
    }
  }
  const std::string scheme = args.cert.empty() ? "http" : "https";
  const std::string url_host =
      net.host.find(':') != std::string::npos ? "[" + net.host + "]" : net.host;
  // One line on stdout that scripts and tests read to learn the port.
  std::cout << "enlace-hub listening on " << scheme << "://" << url_host << ":" << server->port()
            << (pin.empty() ? "" : " pin " + pin) << std::endl;
  nlohmann::json start = {{"event", "start"},
                          {"data", args.data},
                          {"port", server->port()},
                          {"tls", !args.cert.empty()},
                          {"threads", args.threads}};
  start["report_min_k"] = args.report_min_k;
  start["max_connections"] = args.max_connections;
  start["max_connections_per_address"] = args.max_connections_per_address;
  start["max_body_memory_mib"] = args.max_body_memory_mib;
  start["metrics"] = options.metrics_token_hash
                         ? (options.metrics_from_loopback ? "loopback or token" : "token")
                         : "loopback";
  if (options.log) options.log(start.dump());
  server->Run();
  if (options.log) options.log(nlohmann::json{{"event", "stop"}}.dump());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "enlace-hub: libsodium failed to initialise\n";
    return kExitFailure;
  }
  CLI::App app{
      "enlace-hub: the sync hub of an enlace organisation. It stores only ciphertext: "
      "it never holds a team key or sees a value."};
  app.require_subcommand(1);
  app.set_version_flag(
      "--version", "enlace-hub 0.1.0 (protocol " + std::to_string(enlace::kProtocolVersion) + ")");

  std::string data, cert, out, team_hex, label;
  ServeArgs serve_args;
  serve_args.listen = "127.0.0.1:8443";

  auto* serve = app.add_subcommand(
      "serve",
      "Run the hub. SIGINT/SIGTERM stop it gracefully; SIGHUP reopens --log-file and reloads "
      "the TLS certificate and key for new connections.");
  serve
      ->add_option("--data", serve_args.data, "Data folder (created if missing; keep it backed up)")
      ->required();
  serve
      ->add_option("--listen", serve_args.listen,
                   "HOST:PORT to listen on; port 0 picks a free port. Plain HTTP only on a "
                   "loopback address unless --insecure-plain-http")
      ->capture_default_str();
  serve->add_option("--tls-cert", serve_args.cert, "PEM certificate chain: serve HTTPS");
  serve->add_option("--tls-key", serve_args.key, "PEM private key of --tls-cert");
  serve->add_flag("--insecure-plain-http", serve_args.insecure_plain_http,
                  "Allow plain HTTP on a non-loopback address: only behind a TLS-terminating "
                  "proxy on the same machine, or on a trusted network");
  serve->add_option("--threads", serve_args.threads, "Worker threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  auto* quiet = serve->add_flag("--quiet", serve_args.quiet, "No request log");
  serve
      ->add_option("--log-file", serve_args.log_file,
                   "Append the JSON request log to this file (created 0640) instead of stderr; "
                   "SIGHUP opens it again (for logrotate)")
      ->excludes(quiet);
  serve->add_option("--metrics-token-file", serve_args.metrics_token_file,
                    "File holding a token (16-256 characters) that lets GET /metrics be read "
                    "from anywhere with authorization: Bearer <token>; without it, only from "
                    "a loopback address");
  serve->add_flag("--metrics-require-token", serve_args.metrics_require_token,
                  "Ask for the token from loopback too (a reverse proxy on this machine makes "
                  "every request look local)");
  serve
      ->add_option("--max-connections", serve_args.max_connections,
                   "Open connections at most; at the limit the connection waiting longest "
                   "without a request is closed for a new one")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve
      ->add_option("--max-connections-per-address", serve_args.max_connections_per_address,
                   "Open connections per remote IPv4 address or IPv6 /64 at most (raise it for "
                   "many devices behind one NAT)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve
      ->add_option("--max-body-memory-mib", serve_args.max_body_memory_mib,
                   "Request bodies held in memory at once, in MiB; beyond it requests get 503 "
                   "and are retried")
      ->check(CLI::Range(16, 65536))
      ->capture_default_str();
  serve
      ->add_option("--report-min-k", serve_args.report_min_k,
                   "Smallest k a published report may use; a report with a count between 1 "
                   "and k-1 is refused")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  serve->footer(
      "Example: enlace-hub serve --data /var/lib/enlace --listen 0.0.0.0:8443 "
      "--tls-cert hub.crt --tls-key hub.key --log-file /var/log/enlace/hub.log");

  auto* admin =
      app.add_subcommand("admin", "Operator tasks on a data folder (safe while serving).");
  admin->require_subcommand(1);
  auto* token = admin->add_subcommand("bootstrap-token",
                                      "Print a one-time token for a new team's first coordinator "
                                      "(enlace init --token ...).");
  token->add_option("--data", data, "Data folder")->required();
  uint32_t valid_hours = 72;
  token->add_option("--valid-hours", valid_hours, "Hours the token stays usable")
      ->check(CLI::Range(1, 720))
      ->capture_default_str();
  auto* viewer = admin->add_subcommand(
      "viewer-token",
      "Print a read-only token with which a team's published reports can be read without a "
      "device (e.g. by the national commission). Shown once; the hub keeps only a hash.");
  viewer->add_option("--data", data, "Data folder")->required();
  viewer->add_option("--team", team_hex, "Team id, 32 hex characters (enlace status shows it)")
      ->required();
  viewer->add_option("--label", label, "Who holds the token, for the operator's records");
  auto* backup = admin->add_subcommand(
      "backup", "Write a consistent copy of the hub database while it serves.");
  backup->add_option("--data", data, "Data folder")->required();
  backup->add_option("--out", out, "New file to write (must not exist)")->required();
  std::string from;
  auto* restore = admin->add_subcommand(
      "restore",
      "Put a backup in place of the hub database (stop the hub first). The database it "
      "replaces is kept beside it. The restored log gets a new identity: each device, at its "
      "next sync, reads it again and sends back what the hub lost, so that once every device "
      "has synced nothing written before the restore is missing (docs/OPERATIONS.md).");
  restore->add_option("--data", data, "Data folder")->required();
  restore->add_option("--from", from, "Backup file (written by admin backup)")->required();
  auto* pin = admin->add_subcommand(
      "pin", "Print the TLS public-key pin of a certificate (what invite codes carry).");
  pin->add_option("--tls-cert", cert, "PEM certificate")->required();

  // ---- admin verify: every stored write against its writer's key
  auto* verify = admin->add_subcommand(
      "verify",
      "Check every stored write: it decodes, its writer is a device of its team on this hub, "
      "its signature verifies with that device's key, and it sits in the right row. Prints one "
      "line per failure; exit 0 when all pass, 1 when any fails. Works on a stopped hub's folder.");
  verify->add_option("--data", data, "Data folder")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (serve->parsed()) return Serve(serve_args);

  if (token->parsed()) {
    auto storage = enlace::hub::OpenSqliteHubStorage(data);
    if (!storage.ok()) return Fail("cannot open the data folder " + data, storage.status());
    const std::string t = NewToken();
    const auto now = enlace::SystemWallClockMs();
    const uint64_t expires = now + uint64_t{valid_hours} * 3600 * 1000;
    Status s = (*storage)->AddBootstrapToken(enlace::hub::HashToken(t), now, expires);
    if (!s.ok()) return Fail("cannot store the token", s);
    std::cout << t << std::endl;
    std::cerr << "enlace-hub: usable once, for " << valid_hours
              << " hours. The coordinator gives it to enlace init on its standard input or in a "
                 "file (--token-file), never on the command line.\n";
    return kExitOk;
  }
  if (viewer->parsed()) {
    auto team = enlace::TeamId::FromHex(team_hex);
    if (!team.ok()) {
      std::cerr << "enlace-hub: --team wants the team id, 32 hex characters\n";
      return kExitUsage;
    }
    if (label.size() > 256) {
      std::cerr << "enlace-hub: --label is limited to 256 bytes\n";
      return kExitUsage;
    }
    auto storage = enlace::hub::OpenSqliteHubStorage(data);
    if (!storage.ok()) return Fail("cannot open the data folder " + data, storage.status());
    auto t = (*storage)->AddViewerToken(*team, label, enlace::SystemWallClockMs());
    if (!t.ok()) return Fail("cannot make the token", t.status());
    std::cout << *t << std::endl;
    std::cerr << "enlace-hub: keep this token safe; it is shown only once. It reads the team's "
                 "published reports: authorization: Bearer <token> on GET /v1/reports\n";
    return kExitOk;
  }
  if (backup->parsed()) {
    auto storage = enlace::hub::OpenSqliteHubStorage(data);
    if (!storage.ok()) return Fail("cannot open the data folder " + data, storage.status());
    Status s = (*storage)->Backup(out);
    if (!s.ok()) return Fail("backup failed", s);
    std::cerr << "enlace-hub: backup written to " << out << "\n";
    return kExitOk;
  }
  if (restore->parsed()) {
    int crash_at = 0;
#ifdef ENLACE_TEST_HOOKS
    // Tests kill the restore at each of its steps (hub_restore.h).
    if (const char* at = std::getenv("ENLACE_TEST_RESTORE_CRASH_AT")) crash_at = std::atoi(at);
#endif
    auto r = enlace::hub::RestoreHub(data, from, crash_at);
    if (!r.ok()) return Fail("restore failed", r.status());
    std::cerr << "enlace-hub: restored " << r->writes << " writes from " << from << " into " << data
              << "\n";
    if (!r->kept.empty()) {
      std::cerr << "enlace-hub: the database it replaced is kept as " << r->kept << "\n";
    }
    std::cerr << "enlace-hub: start the hub; every device sends back what the backup lacks at "
                 "its next sync (ask every team member to sync once)\n";
    return kExitOk;
  }
  if (verify->parsed()) {
    auto storage = enlace::hub::OpenSqliteHubStorage(data);
    if (!storage.ok()) return Fail("cannot open the data folder " + data, storage.status());
    auto summary =
        enlace::hub::VerifyStoredWrites(**storage, [](const enlace::hub::VerifyFailure& f) {
          if (f.seq != 0) std::cout << "FAILED seq " << f.seq;
          if (f.seq == 0) std::cout << "MISSING";
          std::cout << " team " << f.team.ToHex().substr(0, 8) << " device "
                    << f.device.ToHex().substr(0, 8) << ": " << f.reason << "\n";
        });
    if (!summary.ok()) return Fail("cannot read the stored writes", summary.status());
    std::cout << summary->checked << " writes checked, " << summary->failed << " failed";
    if (summary->missing_numbers > 0) {
      std::cout << ", " << summary->missing_numbers << " devices with missing write numbers";
    }
    std::cout << std::endl;
    // 1: some write failed or is missing
    return summary->failed == 0 && summary->missing_numbers == 0 ? kExitOk : 1;
  }
  if (pin->parsed()) {
    std::string error;
    const std::string p = enlace::hub::PublicKeyPin(cert, &error);
    if (p.empty()) {
      std::cerr << "enlace-hub: " << error << "\n";
      return kExitFailure;
    }
    std::cout << p << std::endl;
    return kExitOk;
  }
  return kExitUsage;
}
