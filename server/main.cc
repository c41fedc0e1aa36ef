// enlace-hub: a regional office's sync hub. One binary, one data folder.
//
//   enlace-hub serve --data DIR [--listen HOST:PORT] [--tls-cert F --tls-key F]
//                    [--report-min-k N]
//   enlace-hub admin bootstrap-token --data DIR
//   enlace-hub admin viewer-token --data DIR --team TEAMHEX [--label TEXT]
//   enlace-hub admin backup --data DIR --out FILE
//   enlace-hub admin restore --data DIR --from FILE
//   enlace-hub admin pin --tls-cert F
//   enlace-hub admin verify --data DIR
#include <malloc.h>
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

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

int Serve(const std::string& data, const std::string& listen, const std::string& cert,
          const std::string& key, size_t threads, bool quiet, uint32_t report_min_k) {
  enlace::hub::ServerOptions net;
  if (!ParseListen(listen, net.host, net.port)) {
    std::cerr << "enlace-hub: --listen wants HOST:PORT, e.g. 127.0.0.1:8443 (port 0 picks one)\n";
    return kExitUsage;
  }
  if (cert.empty() != key.empty()) {
    std::cerr << "enlace-hub: --tls-cert and --tls-key go together\n";
    return kExitUsage;
  }
  net.tls_cert_file = cert;
  net.tls_key_file = key;
  net.threads = threads;
  // Request and response buffers (up to the 8 MiB body limit) come and go
  // on every request: keep freed memory in the allocator instead of giving
  // it back to the kernel each time (madvise, munmap and the TLB flushes on
  // every core they cost were ~15 % of the hub's CPU under load). Memory
  // stays bounded by the peak of what the requests in flight hold.
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);

  // One hub per folder, and no restore under a serving hub.
  std::error_code mk;
  std::filesystem::create_directories(data, mk);
  auto folder_lock = enlace::hub::DataFolderLock::Acquire(data);
  if (!folder_lock.ok()) return Fail("cannot serve " + data, folder_lock.status());
  auto storage = enlace::hub::OpenSqliteHubStorage(data);
  if (!storage.ok()) return Fail("cannot open the data folder " + data, storage.status());

  std::mutex log_mu;
  enlace::hub::HubOptions options;
  options.report_min_k = report_min_k;
  if (!quiet) {
    options.log = [&log_mu](const std::string& line) {
      std::lock_guard lock(log_mu);
      std::cerr << line << "\n";
    };
  }
  net.log = options.log;
  enlace::hub::HubHandler handler(**storage, options);

  std::string error;
  auto server = enlace::hub::Server::Create(net, handler, &error);
  if (!server) {
    std::cerr << "enlace-hub: cannot listen on " << listen << ": " << error << "\n";
    return kExitFailure;
  }
  server->StopOnSignals();
  std::string pin;
  if (!cert.empty()) {
    pin = enlace::hub::PublicKeyPin(cert, &error);
    if (pin.empty()) {
      std::cerr << "enlace-hub: cannot read the certificate " << cert << ": " << error << "\n";
      return kExitFailure;
    }
  }
  const std::string scheme = cert.empty() ? "http" : "https";
  const std::string url_host =
      net.host.find(':') != std::string::npos ? "[" + net.host + "]" : net.host;
  // One line on stdout that scripts and tests read to learn the port.
  std::cout << "enlace-hub listening on " << scheme << "://" << url_host << ":" << server->port()
            << (pin.empty() ? "" : " pin " + pin) << std::endl;
  nlohmann::json start = {{"event", "start"},
                          {"data", data},
                          {"port", server->port()},
                          {"tls", !cert.empty()},
                          {"threads", threads}};
  start["report_min_k"] = report_min_k;
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

  std::string data, listen = "127.0.0.1:8443", cert, key, out, team_hex, label;
  size_t threads = 4;
  bool quiet = false;
  uint32_t report_min_k = 11;

  auto* serve = app.add_subcommand("serve", "Run the hub.");
  serve->add_option("--data", data, "Data folder (created if missing; keep it backed up)")
      ->required();
  serve->add_option("--listen", listen, "HOST:PORT to listen on; port 0 picks a free port")
      ->capture_default_str();
  serve->add_option("--tls-cert", cert, "PEM certificate chain: serve HTTPS");
  serve->add_option("--tls-key", key, "PEM private key of --tls-cert");
  serve->add_option("--threads", threads, "Worker threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_flag("--quiet", quiet, "No request log on stderr");
  serve
      ->add_option("--report-min-k", report_min_k,
                   "Smallest k a published report may use; a report with a count between 1 "
                   "and k-1 is refused")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  serve->footer(
      "Example: enlace-hub serve --data /var/lib/enlace --listen 0.0.0.0:8443 "
      "--tls-cert hub.crt --tls-key hub.key");

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

  if (serve->parsed()) return Serve(data, listen, cert, key, threads, quiet, report_min_k);

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
          std::cout << "FAILED seq " << f.seq << " team " << f.team.ToHex().substr(0, 8)
                    << " device " << f.device.ToHex().substr(0, 8) << ": " << f.reason << "\n";
        });
    if (!summary.ok()) return Fail("cannot read the stored writes", summary.status());
    std::cout << summary->checked << " writes checked, " << summary->failed << " failed"
              << std::endl;
    return summary->failed == 0 ? kExitOk : 1;  // 1: some write failed
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
