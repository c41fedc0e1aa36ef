// The real Server on 127.0.0.1 (port 0) with a small test Handler, driven by
// plain POSIX sockets and the OpenSSL C API.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

#include "net/server.h"
#include "net/tls_pin.h"

namespace enlace::hub {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Echoes the request; "/throw" throws, "/slow" sleeps, "/small..." accepts
// at most 16 body bytes.
class TestHandler final : public Handler {
 public:
  HttpResponse Handle(const HttpRequest& request) override {
    ++calls;
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

  std::atomic<int> calls{0};
  std::atomic<int> small_calls{0};
  std::atomic<bool> slow_started{false};
  std::chrono::milliseconds slow_for{500};
};

ServerOptions TestOptions() {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 4;
  options.read_timeout = 2000ms;
  options.write_timeout = 2000ms;
  return options;
}

// Runs a Server on a background thread; stops and joins it on destruction.
class TestServer {
 public:
  explicit TestServer(ServerOptions options = TestOptions(), bool stop_on_signals = false) {
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    std::string error;
    server_ = Server::Create(std::move(options), handler, &error);
    REQUIRE_MESSAGE(server_ != nullptr, error);
    if (stop_on_signals) server_->StopOnSignals();
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

  TestHandler handler;

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

// A blocking client connection to 127.0.0.1, plain or TLS (no verification).
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval timeout{10, 0};  // no test hangs on a read
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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
  ServerOptions options = TestOptions();
  options.read_timeout = 30000ms;  // an answer can only come from the header
  TestServer server(options);
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

TEST_CASE("a silent client, or one stalling mid-request, is disconnected after read_timeout") {
  ServerOptions options = TestOptions();
  options.read_timeout = 300ms;
  TestServer server(options);
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

TEST_CASE("connections beyond max_connections are closed at once") {
  ServerOptions options = TestOptions();
  options.max_connections = 2;
  options.read_timeout = 30000ms;
  TestServer server(options);
  auto first = std::make_unique<Connection>(server.port());
  Connection second(server.port());
  REQUIRE(first->Send(Get("/1")));
  REQUIRE(second.Send(Get("/2")));
  CHECK(first->Read().status == 200);  // both are registered now
  CHECK(second.Read().status == 200);

  Connection third(server.port());
  CHECK(third.ClosedWithin(5000ms));
  CHECK(server.Logged("net.connection_limit"));

  first.reset();  // frees a slot once the server notices
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    Connection next(server.port());
    served = next.Send(Get("/again")) && next.Read().status == 200;
    if (!served) std::this_thread::sleep_for(50ms);
  }
  CHECK(served);
}

TEST_CASE("Stop lets an in-flight request finish, closes idle connections, then Run returns") {
  ServerOptions options = TestOptions();
  options.read_timeout = 30000ms;  // idle connections must close because of Stop
  TestServer server(options);
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

TEST_CASE("TLS: a client that never handshakes is disconnected after read_timeout") {
  TestCertificate certificate;
  ServerOptions options = TestOptions();
  options.tls_cert_file = certificate.cert;
  options.tls_key_file = certificate.key;
  options.read_timeout = 300ms;
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
