// The real Server on 127.0.0.1 (port 0) with a small test Handler, driven by
// plain POSIX sockets and the OpenSSL C API.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "local_address.h"
#include "net/server.h"
#include "net/tls_pin.h"

namespace enlace::hub {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Echoes the request; "/throw" throws, "/slow" sleeps, "/small..." accepts
// at most 16 body bytes. A request with "X-Device: known" is admitted to
// bodies over the unverified budget.
class TestHandler final : public Handler {
 public:
  HttpResponse Handle(const HttpRequest& request) override {
    ++calls;
    if (request.target == "/hold") {
      // Busy until released: the connection is not waiting meanwhile.
      ++holding;
      while (!release_holds) std::this_thread::sleep_for(5ms);
    }
    if (request.target.starts_with("/small")) ++small_calls;
    if (request.target == "/throw") throw std::runtime_error("boom");
    if (request.target == "/slow") {
      slow_started = true;
      std::this_thread::sleep_for(slow_for);
    }
    HttpResponse response;
    response.content_type = "text/plain";
    response.headers["X-Method"] = request.method;
    response.headers["X-Test-Echo"] = request.Header("x-test");
    response.headers["X-Remote"] = request.remote.empty() ? "missing" : "present";
    response.headers["X-Loopback"] = request.from_loopback ? "yes" : "no";
    if (request.target == "/status/204") response.status = 204;
    if (request.target == "/status/42") response.status = 42;
    if (request.target == "/bad-header") {
      response.headers["X-Bad"] = "a\r\nInjected: yes";
      response.headers["Content-Length"] = "999";
    }
    response.body =
        request.method == "GET" || request.method == "HEAD" ? request.target : request.body;
    return response;
  }
  size_t MaxBodyBytes(std::string_view target) const override {
    return target.starts_with("/small") ? 16 : 1u << 20;
  }
  bool AdmitBody(const HttpRequest& head) override {
    ++admit_calls;
    CHECK(head.body.empty());
    return head.Header("x-device") == "known";
  }

  std::atomic<int> calls{0};
  std::atomic<int> admit_calls{0};
  std::atomic<int> holding{0};
  std::atomic<bool> release_holds{false};
  std::atomic<int> small_calls{0};
  std::atomic<bool> slow_started{false};
  std::chrono::milliseconds slow_for{500};
};

ServerOptions TestOptions() {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 4;
  options.header_timeout = 2000ms;
  options.idle_timeout = 2000ms;
  options.body_timeout = 2000ms;
  options.write_timeout = 2000ms;
  return options;
}

// Every timeout at `t`.
ServerOptions PatientOptions(std::chrono::milliseconds t = 30000ms) {
  ServerOptions options = TestOptions();
  options.header_timeout = t;
  options.idle_timeout = t;
  options.body_timeout = t;
  return options;
}

// Runs a Server on a background thread; stops and joins it on destruction.
class TestServer {
 public:
  explicit TestServer(ServerOptions options = TestOptions(), bool stop_on_signals = false,
                      bool reload_on_signal = false) {
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    std::string error;
    server_ = Server::Create(std::move(options), handler, &error);
    REQUIRE_MESSAGE(server_ != nullptr, error);
    if (stop_on_signals) server_->StopOnSignals();
    if (reload_on_signal) server_->ReloadOnSignal([this] { ++reopened; });
    thread_ = std::thread([this] {
      server_->Run();
      returned_ = true;
    });
  }
  ~TestServer() { Stop(); }

  uint16_t port() const { return server_->port(); }
  Server& server() { return *server_; }

  // Stops and joins; false when Run has not returned within `within`.
  bool Stop(std::chrono::milliseconds within = 20000ms) {
    if (!thread_.joinable()) return true;
    server_->Stop();
    return Join(within);
  }
  bool Join(std::chrono::milliseconds within) {
    const auto deadline = Clock::now() + within;
    while (!returned_ && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    if (!returned_) return false;
    thread_.join();
    return true;
  }
  bool returned() const { return returned_; }
  bool Logged(std::string_view event) {
    std::lock_guard<std::mutex> lock(log_mu_);
    for (const std::string& line : log_) {
      if (line.find(event) != std::string::npos) return true;
    }
    return false;
  }
  // Waits up to `within` for `event` in the log.
  bool LoggedWithin(std::string_view event, std::chrono::milliseconds within) {
    const auto deadline = Clock::now() + within;
    while (!Logged(event)) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  // Waits up to `within` until `done(stats)`.
  template <class Done>
  bool StatsWithin(Done done, std::chrono::milliseconds within = 10000ms) {
    const auto deadline = Clock::now() + within;
    while (!done(server_->stats())) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  TestHandler handler;
  std::atomic<int> reopened{0};

 private:
  std::mutex log_mu_;
  std::vector<std::string> log_;
  std::unique_ptr<Server> server_;
  std::atomic<bool> returned_{false};
  std::thread thread_;
};

struct Reply {
  int status = 0;  // 0: the connection closed (or timed out) first
  std::map<std::string, std::string> headers;
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool Has(const std::string& name) const { return headers.count(name) != 0; }
};

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// A blocking client connection, plain or TLS (no verification), to `to`
// (IPv4, default 127.0.0.1) from the local address `from` (any when empty;
// Linux routes all of 127.0.0.0/8 to the loopback interface, so
// "127.0.0.2" is a second loopback client address).
class Connection {
 public:
  explicit Connection(uint16_t port, const std::string& from = "",
                      const std::string& to = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval timeout{10, 0};  // no test hangs on a read
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (!from.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      REQUIRE(::inet_pton(AF_INET, from.c_str(), &local.sin_addr) == 1);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, to.c_str(), &address.sin_addr) == 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { Close(); }

  bool connected() const { return connected_; }

  // TLS handshake over the connected socket; `max_version` 0: no cap.
  bool StartTls(int max_version = 0) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return false;
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
    if (max_version != 0) {
      // Let the client offer old versions, so only the server can refuse.
      SSL_CTX_set_security_level(ctx_.get(), 0);
      SSL_CTX_set_min_proto_version(ctx_.get(), 0);
      SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    }
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    const bool ok = SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
    return ok;
  }
  std::string TlsVersion() const { return ssl_ ? SSL_get_version(ssl_.get()) : ""; }
  // The pin (tls_pin.h's form) of the certificate the server presented.
  std::string PeerPin() const {
    if (!ssl_) return "";
    X509* cert = SSL_get_peer_certificate(ssl_.get());
    if (cert == nullptr) return "";
    unsigned char* der = nullptr;
    const int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    X509_free(cert);
    if (length <= 0) return "";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<size_t>(length), digest);
    OPENSSL_free(der);
    unsigned char base64[64] = {};
    EVP_EncodeBlock(base64, digest, sizeof(digest));
    return "sha256//" + std::string(reinterpret_cast<char*>(base64));
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      long n = 0;
      if (ssl_) {
        n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
      } else {
        n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (no body for a HEAD request, 1xx, 204 and 304).
  Reply Read(bool head_request = false) {
    Reply reply;
    size_t end = 0;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore()) return reply;
    }
    const std::string head = pending_.substr(0, end);
    pending_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) return reply;
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line =
          head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t value = colon + 1;
      while (value < line.size() && line[value] == ' ') ++value;
      reply.headers[Lower(line.substr(0, colon))] = line.substr(value);
    }
    reply.status = std::atoi(status_line.substr(9, 3).c_str());
    const bool bodyless =
        head_request || reply.status < 200 || reply.status == 204 || reply.status == 304;
    if (!bodyless && reply.Has("content-length")) {
      const size_t length = std::stoul(reply.Header("content-length"));
      while (pending_.size() < length) {
        if (!ReadMore()) return Reply{};
      }
      reply.body = pending_.substr(0, length);
      pending_.erase(0, length);
    }
    return reply;
  }

  // True when the peer closes (EOF or reset) within `within`; data that
  // arrives meanwhile is discarded.
  bool ClosedWithin(std::chrono::milliseconds within) {
    const auto deadline = Clock::now() + within;
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 1))) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
    return false;
  }

  void Close() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool ReadMore() {
    char buffer[4096];
    long n = 0;
    if (ssl_) {
      n = SSL_read(ssl_.get(), buffer, sizeof(buffer));
      if (n <= 0) ERR_clear_error();
    } else {
      n = ::recv(fd_, buffer, sizeof(buffer), 0);
    }
    if (n <= 0) return false;
    pending_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::string pending_;
};

std::string Post(const std::string& target, const std::string& body,
                 const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers + "\r\n";
}

// One fresh connection, one request; the reply.
Reply RoundTrip(uint16_t port, const std::string& request) {
  Connection connection(port);
  REQUIRE(connection.connected());
  REQUIRE(connection.Send(request));
  return connection.Read();
}

// The server answers a fresh request.
bool Serves(uint16_t port) {
  const Reply reply = RoundTrip(port, Post("/echo", "still here"));
  return reply.status == 200 && reply.body == "still here";
}

// Runs `command` with /bin/sh; its stdout, and its exit status in *status.
std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  *status = ::pclose(pipe);
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "enlace_net_XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A self-signed P-256 certificate and key for CN=localhost, made with the
// `openssl` command (Debian package "openssl").
struct TestCertificate {
  TestCertificate() {
    int status = 0;
    Shell("openssl version >/dev/null 2>&1", &status);
    REQUIRE_MESSAGE(status == 0, "the openssl command is missing (apt-get install openssl)");
    Shell(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -keyout " +
            key + " -out " + cert + " >/dev/null 2>&1",
        &status);
    REQUIRE_MESSAGE(status == 0, "openssl req failed");
  }
  TempDir dir;
  std::string cert = dir.Path("cert.pem");
  std::string key = dir.Path("key.pem");
};

TEST_CASE("a request gets the handler's response, with Server and Content-Length") {
  TestServer server;
  const Reply reply =
      RoundTrip(server.port(), Post("/echo", "hello", "X-Test: Mixed Case\r\nx-test-other: 1\r\n"));
  CHECK(reply.status == 200);
  CHECK(reply.body == "hello");
  CHECK(reply.Header("server") == "enlace-hub");
  CHECK(reply.Header("content-type") == "text/plain");
  CHECK(reply.Header("content-length") == "5");
  CHECK(reply.Header("x-method") == "POST");
  CHECK(reply.Header("x-test-echo") == "Mixed Case");  // looked up lower-case
  CHECK(reply.Header("x-remote") == "present");
}

TEST_CASE("two requests share one keep-alive connection, also when pipelined") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.connected());
  REQUIRE(connection.Send(Post("/echo", "one")));
  CHECK(connection.Read().body == "one");
  REQUIRE(connection.Send(Get("/two")));
  const Reply second = connection.Read();
  CHECK(second.status == 200);
  CHECK(second.body == "/two");

  REQUIRE(connection.Send(Post("/echo", "three") + Post("/echo", "four")));
  CHECK(connection.Read().body == "three");
  CHECK(connection.Read().body == "four");
  CHECK(server.handler.calls == 4);
}

TEST_CASE("a 204 has no body and the connection stays usable") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send(Get("/status/204")));
  const Reply reply = connection.Read();
  CHECK(reply.status == 204);
  CHECK_FALSE(reply.Has("content-length"));
  REQUIRE(connection.Send(Get("/after")));
  CHECK(connection.Read().body == "/after");
}

TEST_CASE("a HEAD request gets the length of the body but not the body") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send("HEAD /thirteen-chr HTTP/1.1\r\nHost: x\r\n\r\n"));
  const Reply reply = connection.Read(/*head_request=*/true);
  CHECK(reply.status == 200);
  CHECK(reply.Header("content-length") == "13");
  REQUIRE(connection.Send(Get("/next")));
  CHECK(connection.Read().body == "/next");
}

TEST_CASE("a handler's invalid and framing headers are dropped") {
  TestServer server;
  const Reply reply = RoundTrip(server.port(), Get("/bad-header"));
  CHECK(reply.status == 200);
  CHECK_FALSE(reply.Has("x-bad"));
  CHECK_FALSE(reply.Has("injected"));
  CHECK(reply.Header("content-length") == std::to_string(std::string("/bad-header").size()));
}

TEST_CASE("a handler's invalid status becomes 500") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send(Get("/status/42")));
  CHECK(connection.Read().status == 500);
  REQUIRE(connection.Send(Get("/after")));
  CHECK(connection.Read().body == "/after");
}

TEST_CASE("garbage gets 400 and a close; the server keeps serving") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send(std::string("\x01\x02 not http at all\r\n\r\n")));
  const Reply reply = connection.Read();
  CHECK(reply.status == 400);
  CHECK(reply.Header("connection") == "close");
  CHECK(connection.ClosedWithin(5000ms));
  CHECK(Serves(server.port()));
  CHECK(server.handler.calls == 1);
}

TEST_CASE("a request cut short by the client does not disturb the server") {
  TestServer server;
  {
    Connection connection(server.port());
    REQUIRE(connection.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
  }
  {
    Connection connection(server.port());
    REQUIRE(connection.Send("GET /half-a-hea"));
  }
  CHECK(Serves(server.port()));
  CHECK(server.handler.calls == 1);
}

TEST_CASE("a Content-Length over the target's limit gets 413 before any body is sent") {
  TestServer server(PatientOptions());  // an answer can only come from the header
  Connection connection(server.port());
  REQUIRE(connection.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
  const Reply reply = connection.Read();
  CHECK(reply.status == 413);
  CHECK(connection.ClosedWithin(5000ms));
  CHECK(server.handler.small_calls == 0);

  // Within the limit the same target works.
  CHECK(RoundTrip(server.port(), Post("/small", "sixteen bytes!!!")).status == 200);
}

TEST_CASE("a body sent anyway after the 413 does not hide the 413") {
  TestServer server;
  Connection connection(server.port());
  const std::string body(256 * 1024, 'x');
  REQUIRE(connection.Send(Post("/small", body)));
  CHECK(connection.Read().status == 413);
}

TEST_CASE("after a 413 the server reads at most 1 MiB more of the refused body, then closes") {
  TestServer server(PatientOptions());
  Connection connection(server.port());
  REQUIRE(connection.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n"));
  // Sends up to 64 MiB. Without the cap the server would read it all
  // within its 5 s linger (loopback); with it, what gets through is 1 MiB
  // plus what the two sockets' buffers hold.
  const std::string chunk(64 * 1024, 'j');
  size_t sent = 0;
  while (sent < (64u << 20) && connection.Send(chunk)) sent += chunk.size();
  CHECK(sent < (32u << 20));
  CHECK(server.handler.small_calls == 0);
}

TEST_CASE("a chunked body over the limit gets 413") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(
      connection.Send("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "20\r\n" +
                      std::string(32, 'y') + "\r\n0\r\n\r\n"));
  CHECK(connection.Read().status == 413);
  CHECK(server.handler.small_calls == 0);

  Connection ok(server.port());
  REQUIRE(
      ok.Send("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n0\r\n\r\n"));
  const Reply reply = ok.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == "hello");
}

TEST_CASE("Expect: 100-continue gets 100 within the limit and 413 beyond it") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  CHECK(connection.Read().status == 100);
  REQUIRE(connection.Send("hello"));
  const Reply reply = connection.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == "hello");

  Connection big(server.port());
  REQUIRE(big.Send(
      "POST /small HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n"));
  CHECK(big.Read().status == 413);
}

TEST_CASE("a header over max_header_bytes gets 431") {
  ServerOptions options = TestOptions();
  options.max_header_bytes = 4096;
  TestServer server(options);
  Connection connection(server.port());
  REQUIRE(connection.Send(Get("/big", "X-Big: " + std::string(8000, 'a') + "\r\n")));
  CHECK(connection.Read().status == 431);
  CHECK(Serves(server.port()));
  // Just under the limit is fine.
  CHECK(RoundTrip(server.port(), Get("/ok", "X-Big: " + std::string(3000, 'a') + "\r\n")).status ==
        200);
}

TEST_CASE("a silent client, or one stalling mid-request, is disconnected after its timeout") {
  TestServer server(PatientOptions(300ms));
  Connection silent(server.port());
  REQUIRE(silent.connected());
  Connection stalling(server.port());
  REQUIRE(stalling.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  CHECK(silent.ClosedWithin(10000ms));
  CHECK(stalling.ClosedWithin(10000ms));
  CHECK(Serves(server.port()));
  CHECK(server.handler.calls == 1);
}

TEST_CASE("a handler that throws gets 500; the connection and the server carry on") {
  TestServer server;
  Connection connection(server.port());
  REQUIRE(connection.Send(Get("/throw")));
  const Reply reply = connection.Read();
  CHECK(reply.status == 500);
  CHECK(reply.Header("server") == "enlace-hub");
  REQUIRE(connection.Send(Get("/after")));
  CHECK(connection.Read().body == "/after");
  CHECK(server.Logged("net.handler_threw"));
  CHECK(Serves(server.port()));
}

TEST_CASE("many clients at once are all served") {
  TestServer server;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      Connection connection(server.port());
      for (int i = 0; i < 25; ++i) {
        const std::string body = std::to_string(c) + "/" + std::to_string(i);
        if (!connection.Send(Post("/echo", body))) return;
        const Reply reply = connection.Read();
        if (reply.status == 200 && reply.body == body) ++good;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  CHECK(good == 8 * 25);
}

// Opens a connection (from `from`) and waits until the server has
// registered it, so that connections are admitted in a known order.
std::unique_ptr<Connection> Register(TestServer& server, size_t open_before,
                                     const std::string& from = "") {
  auto connection = std::make_unique<Connection>(server.port(), from);
  REQUIRE(connection->connected());
  REQUIRE(server.StatsWithin([&](const NetStats& s) { return s.connections > open_before; }));
  return connection;
}

// Sends "/hold" on each connection and waits until the handler holds them all.
void Hold(TestServer& server, std::vector<std::unique_ptr<Connection>>& connections) {
  const int before = server.handler.holding;
  for (auto& connection : connections) REQUIRE(connection->Send(Get("/hold")));
  const auto deadline = Clock::now() + 10s;
  while (server.handler.holding < before + static_cast<int>(connections.size()) &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(server.handler.holding == before + static_cast<int>(connections.size()));
}

TEST_CASE("at max_connections a new connection closes the one that has waited longest") {
  ServerOptions options = PatientOptions();
  options.max_connections = 3;
  TestServer server(options);
  auto a = Register(server, 0);
  auto b = Register(server, 1);
  auto c = Register(server, 2);

  Connection d(server.port());
  REQUIRE(d.Send(Get("/d")));
  CHECK(d.Read().status == 200);
  CHECK(a->ClosedWithin(5000ms));
  CHECK_FALSE(b->ClosedWithin(200ms));
  CHECK_FALSE(c->ClosedWithin(200ms));
  CHECK(server.server().stats().connections_evicted == 1);
  CHECK(server.server().stats().connections_refused == 0);
  CHECK(server.Logged("net.connection_evicted"));
}

TEST_CASE("a connection whose request is being handled is not closed for a new one") {
  ServerOptions options = PatientOptions();
  options.max_connections = 2;
  TestServer server(options);
  std::vector<std::unique_ptr<Connection>> busy;
  busy.push_back(Register(server, 0));
  busy.push_back(Register(server, 1));
  Hold(server, busy);

  // Nothing waits: the new connection is refused, the held requests go on.
  Connection refused(server.port());
  CHECK(refused.ClosedWithin(5000ms));
  CHECK(server.server().stats().connections_refused == 1);
  CHECK(server.server().stats().connections_evicted == 0);
  CHECK(server.Logged("net.connection_limit"));

  server.handler.release_holds = true;
  for (auto& connection : busy) CHECK(connection->Read().status == 200);
  REQUIRE(server.StatsWithin([](const NetStats& s) { return s.connections_waiting == 2; }));
  // Both are idle now: a new connection takes a slot from one of them.
  CHECK(Serves(server.port()));
}

TEST_CASE("one address cannot take more than max_connections_per_address; others are served") {
  ServerOptions options = PatientOptions();
  options.max_connections = 64;
  options.max_connections_per_address = 4;
  options.threads = 8;  // four are held by the handler
  TestServer server(options);
  // An idle connection from a second loopback address, older than all.
  auto other = Register(server, 0, "127.0.0.2");
  std::vector<std::unique_ptr<Connection>> first;
  for (size_t i = 0; i < 4; ++i) first.push_back(Register(server, 1 + i, "127.0.0.1"));
  Hold(server, first);

  // 127.0.0.1 is at its cap and none of its connections waits: refused,
  // although the server has room and `other` has waited longest.
  Connection fifth(server.port(), "127.0.0.1");
  CHECK(fifth.ClosedWithin(5000ms));
  CHECK(server.server().stats().connections_refused == 1);
  // Health from the second loopback address is still answered.
  {
    Connection health(server.port(), "127.0.0.2");
    REQUIRE(health.Send(Get("/v1/health")));
    CHECK(health.Read().status == 200);
  }

  server.handler.release_holds = true;
  for (auto& connection : first) REQUIRE(connection->Read().status == 200);
  // A session waits again once its write has completed, which can come after
  // the client has read the reply: wait for all five to be waiting.
  REQUIRE(server.StatsWithin([](const NetStats& s) { return s.connections_waiting == 5; }));
  // Now 127.0.0.1's four are idle: a fifth closes one of them, not `other`.
  Connection again(server.port(), "127.0.0.1");
  REQUIRE(again.Send(Get("/again")));
  CHECK(again.Read().status == 200);
  int closed = 0;
  for (auto& connection : first) closed += connection->ClosedWithin(1000ms) ? 1 : 0;
  CHECK(closed == 1);
  CHECK_FALSE(other->ClosedWithin(200ms));
  CHECK(server.server().stats().connections_evicted == 1);
}

TEST_CASE("an idle flood from many addresses does not lock out a request") {
  ServerOptions options = PatientOptions();
  options.max_connections = 16;
  TestServer server(options);
  // A request being handled when the flood comes.
  std::vector<std::unique_ptr<Connection>> busy;
  busy.push_back(Register(server, 0, "127.0.0.3"));
  Hold(server, busy);

  std::vector<std::unique_ptr<Connection>> flood;
  for (int i = 1; i <= 60; ++i) {
    flood.push_back(std::make_unique<Connection>(server.port(), "127.0.1." + std::to_string(i)));
    REQUIRE(flood.back()->connected());
  }
  REQUIRE(server.StatsWithin(
      [](const NetStats& s) { return s.connections_evicted + s.connections_refused >= 45; }));
  // Before, the 17th connection on was refused: this request would fail.
  Connection legit(server.port(), "127.0.0.9");
  REQUIRE(legit.Send(Post("/echo", "through the flood")));
  const Reply reply = legit.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == "through the flood");
  CHECK(server.server().stats().connections_refused == 0);

  server.handler.release_holds = true;
  CHECK(busy[0]->Read().status == 200);  // never closed for the flood
  CHECK(server.server().stats().connections <= 16 + 1);
}

TEST_CASE("a header dripped byte by byte is cut after header_timeout though bytes keep coming") {
  ServerOptions options = PatientOptions();
  options.header_timeout = 500ms;
  TestServer server(options);
  Connection slow(server.port());
  REQUIRE(slow.Send("GET /drip HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {  // up to 10 s, a byte every 50 ms
    closed = !slow.Send("a") || slow.ClosedWithin(50ms);
  }
  CHECK(closed);
  CHECK(server.handler.calls == 0);
  // Counted once the server's side has run, maybe after the client saw the close.
  CHECK(server.StatsWithin([](const NetStats& s) { return s.header_timeouts == 1; }));
  CHECK(Serves(server.port()));
}

TEST_CASE("a keep-alive connection may idle past header_timeout, until idle_timeout") {
  ServerOptions options = PatientOptions();
  options.header_timeout = 300ms;
  options.idle_timeout = 1500ms;
  TestServer server(options);
  Connection connection(server.port());
  REQUIRE(connection.Send(Get("/one")));
  CHECK(connection.Read().status == 200);
  std::this_thread::sleep_for(700ms);  // longer than header_timeout
  REQUIRE(connection.Send(Get("/two")));
  CHECK(connection.Read().body == "/two");
  CHECK(connection.ClosedWithin(10000ms));
  CHECK(server.StatsWithin([](const NetStats& s) { return s.idle_timeouts == 1; }));
  CHECK(server.server().stats().header_timeouts == 0);
}

TEST_CASE("a body below min_body_rate is cut; one above it is read") {
  ServerOptions options = PatientOptions();
  options.body_timeout = 500ms;
  options.min_body_rate = 2000;
  TestServer server(options);
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Device: known\r\nContent-Length: 4000\r\n\r\n";

  Connection slow(server.port());
  REQUIRE(slow.Send(head));
  bool closed = false;
  for (int i = 0; i < 50 && !closed; ++i) {  // 10 bytes every 200 ms: 50 B/s, for up to 10 s
    closed = !slow.Send(std::string(10, 's')) || slow.ClosedWithin(200ms);
  }
  CHECK(closed);
  CHECK(server.StatsWithin([](const NetStats& s) { return s.body_timeouts == 1; }));

  Connection fast(server.port());
  REQUIRE(fast.Send(head));
  for (int i = 0; i < 4; ++i) {  // about 20 kB/s
    std::this_thread::sleep_for(50ms);
    REQUIRE(fast.Send(std::string(1000, 'f')));
  }
  const Reply reply = fast.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == std::string(4000, 'f'));
  CHECK(server.handler.calls == 1);
}

TEST_CASE("a body over unverified_body_bytes is read only for a sender the handler admits") {
  ServerOptions options = TestOptions();
  options.unverified_body_bytes = 1000;
  TestServer server(options);
  const std::string big(5000, 'b');

  Connection unknown(server.port());
  REQUIRE(unknown.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"));
  const Reply refused = unknown.Read();
  CHECK(refused.status == 413);
  CHECK(refused.body.find("not a known device") != std::string::npos);
  CHECK(unknown.ClosedWithin(5000ms));
  CHECK(server.handler.calls == 0);
  CHECK(server.handler.admit_calls == 1);
  CHECK(server.server().stats().unverified_bodies_refused == 1);

  const Reply known = RoundTrip(server.port(), Post("/echo", big, "X-Device: known\r\n"));
  CHECK(known.status == 200);
  CHECK(known.body == big);
  // Up to the budget no admission is needed.
  CHECK(RoundTrip(server.port(), Post("/echo", std::string(1000, 's'))).status == 200);
  // A chunked body from an unknown sender gets the budget as its limit.
  Connection chunked(server.port());
  REQUIRE(chunked.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       std::string("5dc\r\n") + std::string(1500, 'c') + "\r\n0\r\n\r\n"));
  CHECK(chunked.Read().status == 413);
  CHECK(server.server().stats().unverified_bodies_refused == 2);
  // A request without a body is not asked about.
  const int asked = server.handler.admit_calls;
  CHECK(RoundTrip(server.port(), Get("/no-body")).status == 200);
  CHECK(server.handler.admit_calls == asked);
}

TEST_CASE("bodies in memory stay within max_body_bytes_in_flight; beyond it 503 and Retry-After") {
  ServerOptions options = PatientOptions();
  options.max_body_bytes_in_flight = 100000;
  TestServer server(options);
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Device: known\r\nContent-Length: 30000\r\n\r\n";
  std::vector<std::unique_ptr<Connection>> holders;
  for (int i = 0; i < 3; ++i) {
    holders.push_back(std::make_unique<Connection>(server.port()));
    REQUIRE(holders.back()->Send(head + std::string(10, 'h')));
  }
  REQUIRE(server.StatsWithin([](const NetStats& s) { return s.body_bytes_in_flight == 90000; }));

  for (int i = 0; i < 10; ++i) {
    Connection more(server.port());
    REQUIRE(more.Send(head));
    const Reply reply = more.Read();
    CHECK(reply.status == 503);
    CHECK(reply.Header("retry-after") == "1");
  }
  CHECK(server.server().stats().body_budget_refusals == 10);
  CHECK(server.server().stats().body_bytes_in_flight == 90000);
  CHECK(server.handler.calls == 0);

  for (auto& holder : holders) {
    REQUIRE(holder->Send(std::string(30000 - 10, 'h')));
    const Reply reply = holder->Read();
    CHECK(reply.status == 200);
    CHECK(reply.body.size() == 30000);
  }
  CHECK(server.StatsWithin([](const NetStats& s) { return s.body_bytes_in_flight == 0; }));
  CHECK(RoundTrip(server.port(), Post("/echo", std::string(30000, 'n'), "X-Device: known\r\n"))
            .status == 200);
  // A body bigger than the whole budget is read when it is alone.
  CHECK(RoundTrip(server.port(), Post("/echo", std::string(150000, 'w'), "X-Device: known\r\n"))
            .status == 200);
  CHECK(server.StatsWithin([](const NetStats& s) { return s.body_bytes_in_flight == 0; }));
}

using testing::NonLoopbackAddress;

TEST_CASE("the handler learns whether the peer's address is a loopback one") {
  ServerOptions options = TestOptions();
  options.host = "0.0.0.0";
  TestServer server(options);
  CHECK_FALSE(server.server().loopback());
  for (const std::string from : {"127.0.0.1", "127.0.0.2"}) {
    Connection connection(server.port(), from);
    REQUIRE(connection.Send(Get("/who")));
    CHECK(connection.Read().Header("x-loopback") == "yes");
  }
  const std::string address = NonLoopbackAddress();
  if (address.empty()) {
    MESSAGE("no non-loopback IPv4 address on this machine: the remote case is not exercised here");
    return;
  }
  Connection remote(server.port(), "", address);
  REQUIRE(remote.connected());
  REQUIRE(remote.Send(Get("/who")));
  CHECK(remote.Read().Header("x-loopback") == "no");
}

TEST_CASE("Server::loopback tells a loopback listening address from others") {
  TestServer local;
  CHECK(local.server().loopback());
  ServerOptions options = TestOptions();
  options.host = "0.0.0.0";
  TestServer all(options);
  CHECK_FALSE(all.server().loopback());
}

TEST_CASE("Stop lets an in-flight request finish, closes idle connections, then Run returns") {
  TestServer server(PatientOptions());  // idle connections must close because of Stop
  server.handler.slow_for = 700ms;

  Connection idle(server.port());
  REQUIRE(idle.Send(Get("/warm-up")));
  REQUIRE(idle.Read().status == 200);

  Connection slow(server.port());
  REQUIRE(slow.Send(Get("/slow")));
  const auto deadline = Clock::now() + 10s;
  while (!server.handler.slow_started && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  REQUIRE(server.handler.slow_started);

  server.server().Stop();
  server.server().Stop();  // idempotent
  const Reply reply = slow.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == "/slow");
  CHECK(reply.Header("connection") == "close");
  CHECK(idle.ClosedWithin(10000ms));
  // `slow` stays open: Run must not wait for its client (nor for a timeout).
  CHECK(server.Join(4000ms));

  Connection refused(server.port());
  CHECK_FALSE(refused.connected());
}

TEST_CASE("Stop before Run makes Run return at once") {
  TestHandler handler;
  std::string error;
  auto server = Server::Create(TestOptions(), handler, &error);
  REQUIRE_MESSAGE(server != nullptr, error);
  server->Stop();
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    server->Run();
    returned = true;
  });
  const auto deadline = Clock::now() + 10s;
  while (!returned && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  CHECK(returned);
  runner.join();
}

TEST_CASE("SIGTERM stops a server that called StopOnSignals") {
  TestServer server(TestOptions(), /*stop_on_signals=*/true);
  REQUIRE(Serves(server.port()));
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  CHECK(server.Join(10000ms));
}

TEST_CASE("Create reports errors instead of throwing") {
  TestHandler handler;
  std::string error;
  TestServer running;
  ServerOptions taken = TestOptions();
  taken.port = running.port();
  CHECK(Server::Create(taken, handler, &error) == nullptr);
  CHECK(error.find("bind") != std::string::npos);

  ServerOptions half_tls = TestOptions();
  half_tls.tls_cert_file = "/nonexistent/cert.pem";
  error.clear();
  CHECK(Server::Create(half_tls, handler, &error) == nullptr);
  CHECK_FALSE(error.empty());

  ServerOptions missing = half_tls;
  missing.tls_key_file = "/nonexistent/key.pem";
  error.clear();
  CHECK(Server::Create(missing, handler, &error) == nullptr);
  CHECK(error.find("certificate") != std::string::npos);

  ServerOptions bad_host = TestOptions();
  bad_host.host = "300.1.2.3";
  error.clear();
  CHECK(Server::Create(bad_host, handler, nullptr) == nullptr);  // a null error is fine
}

TEST_CASE("TLS: requests over TLS 1.2+, plain HTTP and old TLS are turned away") {
  TestCertificate certificate;
  ServerOptions options = TestOptions();
  options.tls_cert_file = certificate.cert;
  options.tls_key_file = certificate.key;
  TestServer server(options);
  CHECK(server.server().tls());

  Connection connection(server.port());
  REQUIRE(connection.StartTls());
  CHECK((connection.TlsVersion() == "TLSv1.3" || connection.TlsVersion() == "TLSv1.2"));
  REQUIRE(connection.Send(Post("/echo", "over tls")));
  Reply reply = connection.Read();
  CHECK(reply.status == 200);
  CHECK(reply.body == "over tls");
  REQUIRE(connection.Send(Get("/again")));  // keep-alive over TLS
  CHECK(connection.Read().body == "/again");

  Connection tls12(server.port());
  REQUIRE(tls12.StartTls(TLS1_2_VERSION));
  CHECK(tls12.TlsVersion() == "TLSv1.2");

  Connection plain(server.port());
  REQUIRE(plain.Send(Get("/plain")));
  CHECK(plain.ClosedWithin(5000ms));

  Connection old(server.port());
  CHECK_FALSE(old.StartTls(TLS1_1_VERSION));

  Connection after(server.port());
  REQUIRE(after.StartTls());
  REQUIRE(after.Send(Get("/after")));
  CHECK(after.Read().body == "/after");
  CHECK(server.Logged("net.tls_handshake_failed"));
}

TEST_CASE("TLS: a client that never handshakes is disconnected after header_timeout") {
  TestCertificate certificate;
  ServerOptions options = PatientOptions();
  options.tls_cert_file = certificate.cert;
  options.tls_key_file = certificate.key;
  options.header_timeout = 300ms;
  TestServer server(options);
  Connection silent(server.port());
  REQUIRE(silent.connected());
  CHECK(silent.ClosedWithin(10000ms));
}

TEST_CASE("TLS: a key that does not match the certificate is refused") {
  TestCertificate first;
  TestCertificate second;
  ServerOptions options = TestOptions();
  options.tls_cert_file = first.cert;
  options.tls_key_file = second.key;
  TestHandler handler;
  std::string error;
  CHECK(Server::Create(options, handler, &error) == nullptr);
  CHECK(error.find("key") != std::string::npos);
}

TEST_CASE("SIGHUP reloads the certificate for new connections; a broken one keeps the old") {
  TestCertificate a;
  TestCertificate b;
  TempDir dir;
  const std::string cert = dir.Path("hub.crt");
  const std::string key = dir.Path("hub.key");
  const auto put = [&](const TestCertificate& from) {
    const auto overwrite = std::filesystem::copy_options::overwrite_existing;
    std::filesystem::copy_file(from.cert, cert, overwrite);
    std::filesystem::copy_file(from.key, key, overwrite);
  };
  put(a);
  ServerOptions options = TestOptions();
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  TestServer server(options, /*stop_on_signals=*/false, /*reload_on_signal=*/true);
  const std::string pin_a = PublicKeyPin(a.cert, nullptr);
  const std::string pin_b = PublicKeyPin(b.cert, nullptr);
  REQUIRE(pin_a != pin_b);

  Connection before(server.port());
  REQUIRE(before.StartTls());
  CHECK(before.PeerPin() == pin_a);

  put(b);
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  REQUIRE(server.LoggedWithin("net.tls_reloaded", 10000ms));
  CHECK(server.reopened == 1);
  {
    Connection after(server.port());
    REQUIRE(after.StartTls());
    CHECK(after.PeerPin() == pin_b);
    REQUIRE(after.Send(Get("/b")));
    CHECK(after.Read().status == 200);
  }
  // A connection from before the reload goes on with the old certificate.
  REQUIRE(before.Send(Get("/still-a")));
  CHECK(before.Read().body == "/still-a");

  // A broken certificate, then a key of another certificate: logged, and
  // new connections still get B.
  {
    std::FILE* f = std::fopen(cert.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n", f);
    std::fclose(f);
  }
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  REQUIRE(server.LoggedWithin("net.tls_reload_failed", 10000ms));
  std::filesystem::copy_file(a.cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::string error;
  CHECK_FALSE(server.server().ReloadTls(&error));  // A's certificate, B's key
  CHECK(error.find("key") != std::string::npos);
  Connection later(server.port());
  REQUIRE(later.StartTls());
  CHECK(later.PeerPin() == pin_b);
  CHECK(server.server().stats().tls_reloads == 1);
  CHECK(server.server().stats().tls_reload_failures == 2);
  CHECK(server.reopened == 2);
}

TEST_CASE("SIGHUP does not stop a plain server, nor one that is already stopping") {
  TestServer server(TestOptions(), /*stop_on_signals=*/false, /*reload_on_signal=*/true);
  std::string error;
  CHECK(server.server().ReloadTls(&error));  // nothing to reload
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  const auto deadline = Clock::now() + 10s;
  while (server.reopened == 0 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  CHECK(server.reopened == 1);
  CHECK(Serves(server.port()));
  REQUIRE(server.Stop());
  // Stopped, not yet destroyed: SIGHUP is still caught (a default action
  // would end this test process).
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  std::this_thread::sleep_for(100ms);
  CHECK(server.reopened == 1);
}

TEST_CASE("PublicKeyPin matches the openssl command line, and reports bad files") {
  TestCertificate certificate;
  std::string error;
  const std::string pin = PublicKeyPin(certificate.cert, &error);
  CHECK(error.empty());
  REQUIRE(pin.starts_with("sha256//"));
  CHECK(pin.size() == 8 + 44);

  int status = 0;
  std::string expected = Shell("openssl x509 -in " + certificate.cert +
                                   " -pubkey -noout | openssl pkey -pubin -outform der |"
                                   " openssl dgst -sha256 -binary | base64",
                               &status);
  REQUIRE(status == 0);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) {
    expected.pop_back();
  }
  CHECK(pin == "sha256//" + expected);

  CHECK(PublicKeyPin(certificate.dir.Path("missing.pem"), &error).empty());
  CHECK(error.find("cannot open") != std::string::npos);
  error.clear();
  CHECK(PublicKeyPin(certificate.key, &error).empty());  // a key, not a certificate
  CHECK_FALSE(error.empty());
  CHECK(PublicKeyPin(certificate.key, nullptr).empty());
}

}  // namespace
}  // namespace enlace::hub
