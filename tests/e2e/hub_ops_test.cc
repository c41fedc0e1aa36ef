// The hub binary as an operator runs it (issue 15): the request log in a
// file that logrotate moves away (SIGHUP), the TLS certificate replaced
// under a running hub (SIGHUP), plain HTTP refused off loopback, /metrics
// for loopback or a token, and the limits on what an unknown sender may
// make the hub hold (big bodies, memory, connections).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_fixture.h"
#include "enlace/team.h"
#include "hub_fixture.h"
#include "local_address.h"
#include "raw_http.h"

namespace enlace {
namespace {

using namespace std::chrono_literals;
using testing::HttpReply;
using testing::HubProcess;
using testing::kHubBin;
using testing::ReadFile;
using testing::Run;
using testing::RunResult;
using testing::TempDir;

using testing::NonLoopbackAddress;

// A blocking IPv4 connection to `to`:port from `from` (any when empty);
// closed on destruction.
class Socket {
 public:
  Socket(int port, const std::string& to = "127.0.0.1", const std::string& from = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    if (!from.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      REQUIRE(::inet_pton(AF_INET, from.c_str(), &local.sin_addr) == 1);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(::inet_pton(AF_INET, to.c_str(), &address.sin_addr) == 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // False once the peer has closed.
  bool Send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Everything until the peer closes or `within` passes.
  std::string ReadAll(std::chrono::milliseconds within = 10000ms) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[65536];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  // No more bytes from us (the peer then sees the end of our request).
  void ShutdownSend() { ::shutdown(fd_, SHUT_WR); }
  // True when the peer closes within `within`.
  bool ClosedWithin(std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buffer[4096];
      if (::recv(fd_, buffer, sizeof(buffer), 0) <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

std::string Get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "Connection: close\r\n\r\n";
}

// One request on a fresh connection; the parsed reply.
HttpReply Exchange(int port, const std::string& request, const std::string& to = "127.0.0.1",
                   const std::string& from = "") {
  Socket socket(port, to, from);
  REQUIRE(socket.Send(request));
  return testing::ParseHttpReply(socket.ReadAll());
}

// The head of `request` (its headers, the given Content-Length,
// "Connection: close"), without the body.
std::string HeadOf(const hub::HttpRequest& request, size_t content_length) {
  std::string out = request.method + " " + request.target + " HTTP/1.1\r\nHost: x\r\n";
  for (const auto& [name, value] : request.headers) out += name + ": " + value + "\r\n";
  return out + "Content-Length: " + std::to_string(content_length) +
         "\r\nConnection: close\r\n\r\n";
}

// Waits up to 10 s for `text` in the file at `path`.
bool FileGets(const std::string& path, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(path) && ReadFile(path).find(text) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A process's peak resident memory (VmHWM), in bytes; 0 when unknown.
uint64_t PeakRss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// A self-signed P-256 certificate and its key, with the openssl command.
void MakeCertificate(const std::string& cert, const std::string& key) {
  const RunResult r = Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                           "/CN=localhost", "-keyout", key, "-out", cert});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

// The pin of the certificate the server on 127.0.0.1:port presents to a new
// TLS connection, read with the openssl command.
std::string ServedPin(int port) {
  const RunResult r =
      Run({"/bin/sh", "-c",
           "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
               " -servername localhost </dev/null 2>/dev/null | openssl x509 -pubkey -noout |"
               " openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"});
  REQUIRE(r.exit_code == 0);
  std::string pin = r.out;
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  return "sha256//" + pin;
}

std::string AdminPin(const std::string& cert) {
  const RunResult r = Run({kHubBin, "admin", "pin", "--tls-cert", cert});
  REQUIRE(r.exit_code == 0);
  std::string pin = r.out;
  while (!pin.empty() && pin.back() == '\n') pin.pop_back();
  return pin;
}

TEST_CASE("serve --log-file logs to the file; after logrotate's move, SIGHUP opens a new one") {
  TempDir dir;
  const std::string log = dir.File("requests.log");
  HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0", {"--log-file", log});
  CHECK(Exchange(hub.port(), Get("/v1/health?first")).status == 200);
  REQUIRE(FileGets(log, "\"event\":\"start\""));
  REQUIRE(FileGets(log, "\"path\":\"/v1/health\""));
  struct stat st {};
  REQUIRE(::stat(log.c_str(), &st) == 0);
  CHECK((st.st_mode & 0007) == 0);  // not readable by others
  CHECK((st.st_mode & 0777 & ~0640) == 0);
  // Nothing of the request log on stderr.
  CHECK(hub.Log().find("\"event\":\"request\"") == std::string::npos);

  // logrotate: move the file away; the hub writes on into the moved file
  // until SIGHUP.
  const std::string rotated = dir.File("requests.log.1");
  std::filesystem::rename(log, rotated);
  CHECK(Exchange(hub.port(), Get("/v1/nothing-before")).status == 404);
  REQUIRE(FileGets(rotated, "/v1/nothing-before"));
  CHECK_FALSE(std::filesystem::exists(log));

  REQUIRE(::kill(hub.pid(), SIGHUP) == 0);
  REQUIRE(FileGets(log, "\"event\":\"log_reopened\""));
  CHECK(Exchange(hub.port(), Get("/v1/nothing-after")).status == 404);
  CHECK(FileGets(log, "/v1/nothing-after"));
  CHECK(ReadFile(rotated).find("/v1/nothing-after") == std::string::npos);
  // Still alive, and stops as before.
  CHECK(Exchange(hub.port(), Get("/v1/health")).status == 200);
  CHECK(hub.Stop() == 0);
  CHECK(FileGets(log, "\"event\":\"stop\""));
}

TEST_CASE("without --log-file, SIGHUP no longer ends the hub") {
  TempDir dir;
  HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0", {"--quiet"});
  REQUIRE(::kill(hub.pid(), SIGHUP) == 0);
  std::this_thread::sleep_for(200ms);
  CHECK(Exchange(hub.port(), Get("/v1/health")).status == 200);
  CHECK(hub.Stop() == 0);  // was 129 (killed by SIGHUP)
}

TEST_CASE("--log-file and --quiet exclude each other; an unwritable log file stops the start") {
  TempDir dir;
  const RunResult both = Run({kHubBin, "serve", "--data", dir.File("hub"), "--listen",
                              "127.0.0.1:0", "--quiet", "--log-file", dir.File("x.log")});
  CHECK(both.exit_code == 1);
  const RunResult unwritable =
      Run({kHubBin, "serve", "--data", dir.File("hub"), "--listen", "127.0.0.1:0", "--log-file",
           dir.File("no/such/folder/hub.log")});
  CHECK(unwritable.exit_code == 2);
  CHECK(unwritable.err.find("--log-file") != std::string::npos);
}

TEST_CASE("SIGHUP reloads the TLS certificate for new connections; a broken one keeps the old") {
  TempDir dir;
  MakeCertificate(dir.File("a.crt"), dir.File("a.key"));
  MakeCertificate(dir.File("b.crt"), dir.File("b.key"));
  const std::string cert = dir.File("hub.crt");
  const std::string key = dir.File("hub.key");
  const auto overwrite = std::filesystem::copy_options::overwrite_existing;
  std::filesystem::copy_file(dir.File("a.crt"), cert, overwrite);
  std::filesystem::copy_file(dir.File("a.key"), key, overwrite);
  const std::string log = dir.File("requests.log");
  HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0",
                 {"--tls-cert", cert, "--tls-key", key, "--log-file", log});
  const std::string pin_a = AdminPin(dir.File("a.crt"));
  const std::string pin_b = AdminPin(dir.File("b.crt"));
  REQUIRE(pin_a != pin_b);
  CHECK(hub.pin() == pin_a);
  CHECK(ServedPin(hub.port()) == pin_a);

  // A certificate renewal: new files in place, then SIGHUP.
  std::filesystem::copy_file(dir.File("b.crt"), cert, overwrite);
  std::filesystem::copy_file(dir.File("b.key"), key, overwrite);
  REQUIRE(::kill(hub.pid(), SIGHUP) == 0);
  REQUIRE(FileGets(log, "net.tls_reloaded"));
  CHECK(ServedPin(hub.port()) == pin_b);

  // A half-copied renewal (the new certificate, the old key): refused,
  // logged, and the hub keeps serving with B.
  std::filesystem::copy_file(dir.File("a.crt"), cert, overwrite);
  REQUIRE(::kill(hub.pid(), SIGHUP) == 0);
  REQUIRE(FileGets(log, "net.tls_reload_failed"));
  CHECK(ServedPin(hub.port()) == pin_b);
  CHECK(ReadFile(log).find("PRIVATE KEY") == std::string::npos);
  CHECK(hub.Stop() == 0);
}

TEST_CASE("plain HTTP on a non-loopback address is refused unless --insecure-plain-http") {
  TempDir dir;
  std::vector<std::string> public_addresses = {"0.0.0.0:0"};
  if (const std::string address = NonLoopbackAddress(); !address.empty()) {
    public_addresses.push_back(address + ":0");
  }
  for (const std::string& listen : public_addresses) {
    CAPTURE(listen);
    const RunResult r =
        Run({kHubBin, "serve", "--data", dir.File("hub"), "--listen", listen, "--quiet"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("refusing plain HTTP") != std::string::npos);
    CHECK(r.err.find("--insecure-plain-http") != std::string::npos);
    CHECK(r.out.find("listening") == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.File("hub")));  // nothing made on disk
  }
  // Asked for explicitly, it serves.
  {
    HubProcess hub(kHubBin, dir.File("hub"), "0.0.0.0:0", {"--quiet", "--insecure-plain-http"});
    CHECK(Exchange(hub.port(), Get("/v1/health")).status == 200);
  }
  // Loopback stays plain.
  for (const std::string listen : {"127.0.0.1:0", "127.0.0.2:0", "localhost:0"}) {
    CAPTURE(listen);
    HubProcess hub(kHubBin, dir.File("hub"), listen, {"--quiet"});
    const std::string to = listen == "127.0.0.2:0" ? "127.0.0.2" : "127.0.0.1";
    CHECK(Exchange(hub.port(), Get("/v1/health"), to).status == 200);
  }
  // With TLS any address is fine.
  MakeCertificate(dir.File("hub.crt"), dir.File("hub.key"));
  HubProcess tls(kHubBin, dir.File("hub"), "0.0.0.0:0",
                 {"--quiet", "--tls-cert", dir.File("hub.crt"), "--tls-key", dir.File("hub.key")});
  CHECK(tls.url().rfind("https://", 0) == 0);
}

TEST_CASE("/metrics: loopback or the token; --metrics-require-token asks loopback too") {
  TempDir dir;
  const std::string token = "0123456789abcdef0123456789abcdef";
  const std::string token_file = dir.File("metrics.token");
  {
    std::ofstream(token_file) << token << "\n";
    ::chmod(token_file.c_str(), 0600);
  }
  const std::string log = dir.File("requests.log");
  const std::string bearer = "Authorization: Bearer " + token + "\r\n";

  SUBCASE("without a token file, loopback only") {
    HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0", {"--quiet"});
    const HttpReply local = Exchange(hub.port(), Get("/metrics"));
    CHECK(local.status == 200);
    CHECK(local.body.find("enlace_devices") != std::string::npos);
    CHECK(local.body.find("enlace_net_connections") != std::string::npos);
  }
  SUBCASE("--metrics-require-token: missing 401, wrong 403, right 200") {
    HubProcess hub(
        kHubBin, dir.File("hub"), "127.0.0.1:0",
        {"--log-file", log, "--metrics-token-file", token_file, "--metrics-require-token"});
    const HttpReply missing = Exchange(hub.port(), Get("/metrics"));
    CHECK(missing.status == 401);
    CHECK(missing.body.find("enlace_devices") == std::string::npos);
    const HttpReply wrong =
        Exchange(hub.port(), Get("/metrics", "Authorization: Bearer not-the-token-000000\r\n"));
    CHECK(wrong.status == 403);
    CHECK(wrong.body.find("enlace_devices") == std::string::npos);
    const HttpReply right = Exchange(hub.port(), Get("/metrics", bearer));
    CHECK(right.status == 200);
    CHECK(right.body.find("enlace_devices") != std::string::npos);
    REQUIRE(FileGets(log, "\"path\":\"/metrics\""));
    CHECK(ReadFile(log).find(token) == std::string::npos);
    CHECK(ReadFile(log).find("not-the-token") == std::string::npos);
  }
  SUBCASE("from a non-loopback address: the token or nothing") {
    const std::string address = NonLoopbackAddress();
    if (address.empty()) {
      MESSAGE("no non-loopback IPv4 address here: --metrics-require-token covers the refusal");
      return;
    }
    HubProcess hub(kHubBin, dir.File("hub"), "0.0.0.0:0",
                   {"--quiet", "--insecure-plain-http", "--metrics-token-file", token_file});
    const HttpReply missing = Exchange(hub.port(), Get("/metrics"), address);
    CHECK(missing.status == 401);
    CHECK(missing.body.find("enlace_devices") == std::string::npos);
    CHECK(Exchange(hub.port(), Get("/metrics", bearer), address).status == 200);
    CHECK(Exchange(hub.port(), Get("/metrics"), "127.0.0.1").status == 200);
  }
  SUBCASE("bad token files stop the start") {
    const std::string short_file = dir.File("short.token");
    std::ofstream(short_file) << "short\n";
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{"--metrics-token-file", short_file},
          std::vector<std::string>{"--metrics-token-file", dir.File("missing.token")},
          std::vector<std::string>{"--metrics-require-token"}}) {
      std::vector<std::string> argv = {kHubBin,    "serve",       "--data", dir.File("hub"),
                                       "--listen", "127.0.0.1:0", "--quiet"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      const RunResult r = Run(argv);
      CHECK(r.exit_code == 1);
      CHECK(r.err.find("metrics") != std::string::npos);
    }
  }
}

TEST_CASE(
    "a body over 64 KiB is read only from a registered device; bodies in memory are bounded") {
  testing::Office o;
  const int port = o.hub->port();
  auto coord = Replica::Open(testing::TestOptions(o.coord.home), o.coord.passphrase);
  REQUIRE_MESSAGE(coord.ok(), coord.status().ToString());
  TempDir scratch;
  auto stranger = testing::MakeReplica(testing::TestOptions(scratch.File("stranger")));
  REQUIRE(CreateTeam(*stranger).ok());
  const std::string junk(100 * 1024, 'j');

  // Unsigned, and signed by a device the hub does not know: 413 before the body.
  const HttpReply unsigned_reply =
      Exchange(port, "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 102400\r\n\r\n" + junk);
  CHECK(unsigned_reply.status == 413);
  CHECK(unsigned_reply.body.find("not a known device") != std::string::npos);
  hub::HttpRequest request;
  request.method = "POST";
  request.target = kPathSync;
  request.body = junk;
  testing::SignRequest(*stranger, request, SystemWallClockMs());
  CHECK(Exchange(port, HeadOf(request, junk.size()) + junk).status == 413);
  // The coordinator's device: read whole, and refused by the handler for
  // what it is (not a sync request).
  testing::SignRequest(**coord, request, SystemWallClockMs());
  const HttpReply read = Exchange(port, HeadOf(request, junk.size()) + junk);
  CHECK(read.status == 400);
  CHECK(testing::ErrorOf(read.body).find("bad sync request") != std::string::npos);
}

TEST_CASE("junk 8 MiB bodies do not grow the hub; memory for admitted bodies is bounded") {
  TempDir dir;
  // The smallest body budget: two 8 MiB pushes.
  auto hub = std::make_unique<HubProcess>(
      kHubBin, dir.File("hub"), "127.0.0.1:0",
      std::vector<std::string>{"--quiet", "--max-body-memory-mib", "16"});
  const int port = hub->port();
  const uint64_t peak_before = PeakRss(hub->pid());
  REQUIRE(peak_before > 0);
  // 40 unsigned 8 MiB bodies at once (before: 40 x 8 MiB held in memory).
  const std::string junk(8u << 20, 'j');
  std::vector<std::unique_ptr<Socket>> sockets;
  for (int i = 0; i < 40; ++i) {
    sockets.push_back(
        std::make_unique<Socket>(port, "127.0.0.1", "127.0.2." + std::to_string(1 + i)));
  }
  std::atomic<int> refused{0};
  std::vector<std::thread> senders;
  for (auto& socket : sockets) {
    senders.emplace_back([&, s = socket.get()] {
      s->Send("POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n");
      s->Send(junk);  // the hub may close first
      s->ShutdownSend();
      if (testing::ParseHttpReply(s->ReadAll()).status == 413) ++refused;
    });
  }
  for (auto& t : senders) t.join();
  CHECK(refused == 40);
  const uint64_t peak_after = PeakRss(hub->pid());
  INFO("hub peak RSS before ", peak_before >> 20, " MiB, after ", peak_after >> 20, " MiB");
  CHECK(peak_after < peak_before + (32u << 20));

  // A registered device's big bodies: two fit in the budget, a third waits
  // its turn with 503.
  const std::string coord_home = dir.File("coord");
  testing::CliDevice coord{coord_home};
  const testing::RunResult init =
      coord.Init({"--hub", hub->url(), "--team", "Tlaxcala", "--name", "coordinadora"},
                 testing::BootstrapToken(dir.File("hub")));
  REQUIRE_MESSAGE(init.exit_code == 0, init.err);
  auto replica = Replica::Open(testing::TestOptions(coord_home), coord.passphrase);
  REQUIRE_MESSAGE(replica.ok(), replica.status().ToString());
  hub::HttpRequest request;
  request.method = "POST";
  request.target = kPathSync;
  testing::SignRequest(**replica, request, SystemWallClockMs());
  const std::string head = HeadOf(request, 8u << 20);
  auto first = std::make_unique<Socket>(port);
  auto second = std::make_unique<Socket>(port);
  REQUIRE(first->Send(head + "x"));
  REQUIRE(second->Send(head + "x"));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (testing::MetricValue(port, "enlace_net_body_bytes_in_flight") != (16 << 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(testing::MetricValue(port, "enlace_net_body_bytes_in_flight") == (16 << 20));
  const HttpReply busy = Exchange(port, head);
  CHECK(busy.status == 503);
  CHECK(busy.headers.at("retry-after") == "1");
  CHECK(testing::MetricValue(port, "enlace_net_body_budget_refusals_total") == 1);
  // The two give up: their share comes back.
  first.reset();
  second.reset();
  while (testing::MetricValue(port, "enlace_net_body_bytes_in_flight") != 0 &&
         std::chrono::steady_clock::now() < deadline + 10s) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(testing::MetricValue(port, "enlace_net_body_bytes_in_flight") == 0);
  CHECK(testing::MetricValue(port, "enlace_net_unverified_bodies_refused_total") == 40);
}

TEST_CASE("--max-connections-per-address: one address's idle connections make room for its own") {
  TempDir dir;
  HubProcess hub(kHubBin, dir.File("hub"), "127.0.0.1:0",
                 {"--quiet", "--max-connections-per-address", "2"});
  Socket a(hub.port(), "127.0.0.1", "127.0.0.5");
  std::this_thread::sleep_for(100ms);  // a waits longest
  Socket b(hub.port(), "127.0.0.1", "127.0.0.5");
  Socket c(hub.port(), "127.0.0.1", "127.0.0.5");
  CHECK(a.ClosedWithin(5000ms));
  CHECK_FALSE(b.ClosedWithin(200ms));
  CHECK_FALSE(c.ClosedWithin(200ms));
  CHECK(testing::MetricValue(hub.port(), "enlace_net_connections_evicted_total") == 1);
}

}  // namespace
}  // namespace enlace
