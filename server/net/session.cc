#include "net/session.h"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace enlace::hub::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr char kServerName[] = "enlace-hub";
// A connection we close after an unfinished request drains what the client
// still sends for at most this long (bounded by header_timeout too), so that
// our answer is not lost to a TCP reset.
// It reads at most kMaxDrain bytes so: enough for what a client's buffers
// hold in flight, and a sender of junk cannot make the hub read its 8 MiB.
constexpr std::chrono::milliseconds kMaxLinger{5000};
constexpr size_t kDrainChunk = 16 * 1024;
constexpr size_t kMaxDrain = 1024 * 1024;
// What the first read of an idle keep-alive connection asks for.
constexpr size_t kFirstRead = 4 * 1024;

std::string_view View(beast::string_view s) { return std::string_view(s.data(), s.size()); }

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IsFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Fields the network layer owns; a Handler's values for them are dropped.
bool IsFramingField(std::string_view lower_name) {
  return lower_name == "content-length" || lower_name == "transfer-encoding" ||
         lower_name == "connection" || lower_name == "server" || lower_name == "content-type";
}

std::string RemoteOf(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

// The request's head; its body stays in `message`.
HttpRequest ToHttpRequest(const Request& message, const std::string& remote, bool loopback) {
  HttpRequest request;
  request.method = std::string(View(message.method_string()));
  request.target = std::string(View(message.target()));
  for (const auto& field : message) {
    auto [it, inserted] =
        request.headers.emplace(Lower(View(field.name_string())), std::string(View(field.value())));
    // A repeated field is one comma-separated list (RFC 9110, 5.3).
    if (!inserted) {
      it->second += ", ";
      it->second += View(field.value());
    }
  }
  request.remote = remote;
  request.from_loopback = loopback;
  return request;
}

// What a Handler that threw answers; the request was read whole, so the
// connection stays usable.
HttpResponse InternalError() {
  HttpResponse response;
  response.status = 500;
  response.content_type = "text/plain; charset=utf-8";
  response.body = "internal error\n";
  return response;
}

Response TextResponse(http::status status, std::string_view text, unsigned version) {
  Response response{status, version};
  response.set(http::field::server, kServerName);
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(false);
  response.body() = std::string(text) + "\n";
  response.prepare_payload();
  return response;
}

Response ToResponse(HttpResponse&& in, unsigned version, bool head_request, bool keep_alive) {
  // A final status is 2xx-5xx; anything else is a Handler bug.
  if (in.status < 200 || in.status > 599) {
    return ToResponse(InternalError(), version, head_request, keep_alive);
  }
  Response response;
  response.version(version);
  response.result(static_cast<unsigned>(in.status));
  response.set(http::field::server, kServerName);
  if (!in.content_type.empty() && IsFieldValue(in.content_type)) {
    response.set(http::field::content_type, in.content_type);
  }
  for (const auto& [name, value] : in.headers) {
    if (!IsToken(name) || !IsFieldValue(value) || IsFramingField(Lower(name))) continue;
    response.insert(name, value);
  }
  response.keep_alive(keep_alive);
  if (in.status == 204 || in.status == 304) {
    // No body and no Content-Length (RFC 9110, 8.6).
  } else if (head_request) {
    response.content_length(in.body.size());
  } else {
    response.body() = std::move(in.body);
    response.prepare_payload();
  }
  return response;
}

bool IsParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

enum class Phase {
  kHandshake,  // TLS handshake
  kWaiting,    // idle, or reading a request's header
  kRequest,    // a request's body is being read, or it is handled or answered
  kClosing,    // answered; draining or shutting TLS down before the close
};

enum class After { kKeepAlive, kClose };

// A share of NetState's body budget, given back on destruction.
class BodyReservation {
 public:
  BodyReservation(NetState& state, uint64_t bytes) : state_(state), bytes_(bytes) {}
  ~BodyReservation() { state_.ReleaseBody(bytes_); }
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;

 private:
  NetState& state_;
  const uint64_t bytes_;
};

// How a connection's peer is known.
struct Peer {
  std::string remote;       // "address:port", for logs
  std::string address_key;  // for the per-address limit
  bool loopback = false;
};

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `tls` (non-null exactly when Stream is TlsStream) stays alive as long
  // as the session.
  Session(NetState& state, Peer peer, tcp::socket socket, std::shared_ptr<asio::ssl::context> tls)
      : SessionBase(state, std::move(peer.address_key)),
        tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())),
        remote_(std::move(peer.remote)),
        loopback_(peer.loopback) {}

  // Registers with the NetState and begins on the connection's strand;
  // false when the connection limits refuse it (it then closes).
  bool Start() {
    if (!state_.Admit(this->shared_from_this())) return false;
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::Begin, this->shared_from_this()));
    return true;
  }

  void CloseIfIdle() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      const bool idle = self->phase_ == Phase::kHandshake || self->phase_ == Phase::kClosing ||
                        (self->phase_ == Phase::kWaiting && self->buffer_.size() == 0);
      // The pending operation completes with operation_aborted; the session
      // then ends and its socket closes.
      if (idle) beast::get_lowest_layer(self->stream_).cancel();
    });
  }

  void Evict() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->close_requested_ = true;  // if busy: close after the answer
      if (self->waiting_) beast::get_lowest_layer(self->stream_).cancel();
    });
  }

 private:
  static Stream MakeStream(tcp::socket socket, asio::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  const ServerOptions& options() const { return state_.options(); }
  std::shared_ptr<Session> self() { return this->shared_from_this(); }

  // The connection may be closed to make room for another (server.h).
  void Waiting(bool waiting) {
    if (waiting_ == waiting) return;
    waiting_ = waiting;
    SetWaiting(waiting);
  }

  static bool TimedOut(const error_code& ec) { return ec == beast::error::timeout; }

  void Begin() {
    if constexpr (kTls) {
      if (state_.stopping()) return;
      phase_ = Phase::kHandshake;
      beast::get_lowest_layer(stream_).expires_after(options().header_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::OnHandshake, self()));
    } else {
      ReadHeader();
    }
  }

  void OnHandshake(error_code ec) {
    if (ec) {
      if (TimedOut(ec)) {
        state_.counters().header_timeouts.fetch_add(1, std::memory_order_relaxed);
      } else if (ec != asio::error::operation_aborted) {
        state_.LogThrottled("tls_handshake_failed", remote_, ec.message());
      }
      return;  // the session ends; its socket closes
    }
    ReadHeader();
  }

  // Between requests: waits (idle_timeout) for the next request's first
  // byte, unless pipelined bytes are already here.
  void DoRead() {
    if (state_.stopping() || close_requested_) return;  // between requests: just close
    phase_ = Phase::kWaiting;
    Waiting(true);
    if (buffer_.size() > 0) return ReadHeader();
    beast::get_lowest_layer(stream_).expires_after(options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            beast::bind_front_handler(&Session::OnFirstBytes, self()));
  }

  void OnFirstBytes(error_code ec, size_t n) {
    if (ec) {
      if (TimedOut(ec)) state_.counters().idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      return;  // peer left, idle too long, stop or eviction: close
    }
    buffer_.commit(n);
    ReadHeader();
  }

  // Reads a request's header within header_timeout (from the connection's
  // start for its first request, from the first byte for later ones).
  void ReadHeader() {
    if (state_.stopping() && buffer_.size() == 0) return;
    phase_ = Phase::kWaiting;
    Waiting(true);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(options().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // No body limit while the header is read: the limit depends on the target,
    // and Beast would check a Content-Length against the default (1 MB).
    // (Not boost::none: Beast 1.74 compares a Content-Length with an empty
    // optional limit as exceeding it.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::get_lowest_layer(stream_).expires_after(options().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, self()));
  }

  void OnHeader(error_code ec, size_t) {
    if (ec) {
      if (ec == http::error::body_limit) {
        return Reject(http::status::payload_too_large, "request body too large");
      }
      if (ec == http::error::header_limit) {
        return Reject(http::status::request_header_fields_too_large, "request header too large");
      }
      if (IsParseError(ec)) return Reject(http::status::bad_request, "malformed request");
      if (TimedOut(ec)) state_.counters().header_timeouts.fetch_add(1, std::memory_order_relaxed);
      return;  // peer left, timeout, stop, eviction: close unanswered
    }
    phase_ = Phase::kRequest;
    const Request& request = parser_->get();
    head_ = ToHttpRequest(request, remote_, loopback_);
    // A transfer coding that does not end in chunked leaves the body's length
    // unknowable (RFC 9112, 6.3); Beast would read it until the close.
    if (request.count(http::field::transfer_encoding) > 0 && !parser_->chunked()) {
      return Reject(http::status::bad_request, "unsupported transfer coding");
    }
    const auto length = parser_->content_length();
    const bool has_body = parser_->chunked() || (length && *length > 0);
    size_t limit = 0;
    bool admitted = false;
    try {
      limit = state_.handler().MaxBodyBytes(View(request.target()));
      if (has_body && (!length || *length <= limit)) admitted = state_.handler().AdmitBody(head_);
    } catch (const std::exception& e) {
      state_.Log("handler_threw", remote_, e.what());
      return Reject(http::status::internal_server_error, "internal error");
    } catch (...) {
      state_.Log("handler_threw", remote_, "MaxBodyBytes or AdmitBody");
      return Reject(http::status::internal_server_error, "internal error");
    }
    if (length && *length > limit) {
      return Reject(http::status::payload_too_large, "request body too large");
    }
    limit_lowered_ = false;
    if (!admitted && limit > options().unverified_body_bytes) {
      limit = options().unverified_body_bytes;
      limit_lowered_ = true;
      if (length && *length > limit) {
        state_.counters().unverified_bodies_refused.fetch_add(1, std::memory_order_relaxed);
        return Reject(http::status::payload_too_large,
                      "request body too large for a sender that is not a known device");
      }
    }
    // A known sender's request is no longer waiting; an unknown sender's
    // stays so until its body has arrived.
    if (!has_body || admitted) Waiting(false);
    parser_->body_limit(static_cast<std::uint64_t>(limit));  // for chunked bodies
    if (has_body) {
      const uint64_t reserve = length ? *length : limit;
      if (!state_.ReserveBody(reserve)) {
        state_.counters().body_budget_refusals.fetch_add(1, std::memory_order_relaxed);
        state_.LogThrottled("body_budget_full", remote_,
                            "answered 503: request bodies in memory at their limit");
        return Reject(http::status::service_unavailable, "busy, try again", "1");
      }
      body_reservation_.emplace(state_, reserve);
    }
    if (parser_->is_done()) return Handle();
    const auto expect = request[http::field::expect];
    if (request.version() >= 11 && beast::iequals(expect, "100-continue")) {
      continue_ = http::response<http::empty_body>(http::status::continue_, request.version());
      beast::get_lowest_layer(stream_).expires_after(options().write_timeout);
      return http::async_write(stream_, continue_,
                               beast::bind_front_handler(&Session::OnContinue, self()));
    }
    ReadBody();
  }

  void OnContinue(error_code ec, size_t) {
    if (ec) return;
    ReadBody();
  }

  void ReadBody() {
    body_start_ = std::chrono::steady_clock::now();
    ReadBodyPart();
  }

  // The next part of the body, by a deadline that keeps the body's average
  // rate at min_body_rate or more after body_timeout.
  void ReadBodyPart() {
    const uint64_t received = parser_->get().body().size();
    const uint64_t rate = std::max<size_t>(options().min_body_rate, 1);
    const auto allowance = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(static_cast<double>(received) / static_cast<double>(rate)));
    beast::get_lowest_layer(stream_).expires_at(body_start_ + options().body_timeout + allowance);
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnBodyPart, self()));
  }

  void OnBodyPart(error_code ec, size_t) {
    if (ec == http::error::body_limit) {
      if (!limit_lowered_) return Reject(http::status::payload_too_large, "request body too large");
      state_.counters().unverified_bodies_refused.fetch_add(1, std::memory_order_relaxed);
      return Reject(http::status::payload_too_large,
                    "request body too large for a sender that is not a known device");
    }
    if (ec && IsParseError(ec)) return Reject(http::status::bad_request, "malformed request");
    if (ec) {
      if (TimedOut(ec)) state_.counters().body_timeouts.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!parser_->is_done()) return ReadBodyPart();
    Handle();
  }

  // Runs the Handler on this pool thread and answers.
  void Handle() {
    Waiting(false);
    Request message = parser_->release();
    parser_.reset();
    const unsigned version = message.version();
    const bool head_request = message.method() == http::verb::head;
    const bool wants_keep_alive = message.keep_alive();
    head_.body = std::move(message.body());
    message = {};
    HttpResponse answer;
    try {
      answer = state_.handler().Handle(head_);
    } catch (const std::exception& e) {
      state_.Log("handler_threw", remote_, e.what());
      answer = InternalError();
    } catch (...) {
      state_.Log("handler_threw", remote_, "unknown exception");
      answer = InternalError();
    }
    head_ = {};
    body_reservation_.reset();
    // Read after the Handler returns: a Stop() meanwhile ends this connection.
    const bool keep_alive = wants_keep_alive && !state_.stopping() && !close_requested_;
    Write(ToResponse(std::move(answer), version, head_request, keep_alive),
          keep_alive ? After::kKeepAlive : After::kClose);
  }

  // Answers without handling and closes: the rest of the request is unread.
  void Reject(http::status status, std::string_view text, std::string_view retry_after = {}) {
    phase_ = Phase::kRequest;
    parser_.reset();
    head_ = {};
    body_reservation_.reset();
    Response response = TextResponse(status, text, 11);
    if (!retry_after.empty()) {
      response.set(http::field::retry_after,
                   beast::string_view(retry_after.data(), retry_after.size()));
    }
    Write(std::move(response), After::kClose);
  }

  void Write(Response response, After after) {
    phase_ = Phase::kRequest;
    response_ = std::move(response);
    beast::get_lowest_layer(stream_).expires_after(options().write_timeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, self(), after));
  }

  void OnWrite(After after, error_code ec, size_t) {
    response_ = {};
    if (ec) return;
    if (after == After::kClose) return Close();
    DoRead();
  }

  // Closes after an answer. Plain: half-close, then drain until the client
  // closes too, so an unread request body cannot turn our close into a reset
  // that destroys the answer. TLS: send close_notify and wait (bounded) for
  // the peer's. When the server is stopping: close at once.
  void Close() {
    phase_ = Phase::kClosing;
    Waiting(true);  // going away: its slot may go to a new connection
    auto& lowest = beast::get_lowest_layer(stream_);
    if (state_.stopping()) {
      error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;  // the session ends; its socket closes
    }
    lowest.expires_after(std::min<std::chrono::milliseconds>(options().header_timeout, kMaxLinger));
    if constexpr (kTls) {
      stream_.async_shutdown(beast::bind_front_handler(&Session::OnShutdown, self()));
    } else {
      error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
      buffer_.clear();
      Drain();
    }
  }

  void OnShutdown(error_code) {}  // the session ends; its socket closes

  void Drain() {
    beast::get_lowest_layer(stream_).async_read_some(
        buffer_.prepare(kDrainChunk), beast::bind_front_handler(&Session::OnDrain, self()));
  }

  void OnDrain(error_code ec, size_t n) {
    if (ec) return;                     // EOF, deadline or stop: the session ends
    drained_ += n;                      // the bytes were never committed: discarded
    if (drained_ >= kMaxDrain) return;  // the session ends; its socket closes
    Drain();
  }

  // Declared before stream_: built first, destroyed after it.
  const std::shared_ptr<asio::ssl::context> tls_;
  Stream stream_;
  const std::string remote_;
  const bool loopback_;
  Phase phase_ = Phase::kWaiting;
  bool waiting_ = true;  // as last told to the NetState; it starts so
  bool close_requested_ = false;
  bool limit_lowered_ = false;  // the body limit is the unverified budget
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest head_;  // the request being read or handled, without its body until Handle
  std::optional<BodyReservation> body_reservation_;
  std::chrono::steady_clock::time_point body_start_;
  size_t drained_ = 0;  // bytes discarded after the answer (Close)
  http::response<http::empty_body> continue_;
  Response response_;
};

}  // namespace

void StartSession(tcp::socket socket, NetState& state) noexcept {
  try {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    const tcp::endpoint endpoint = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    Peer peer;
    peer.remote = RemoteOf(endpoint);
    peer.address_key = AddressKey(endpoint.address());
    peer.loopback = IsLoopback(endpoint.address());
    if (auto tls = state.tls()) {
      std::make_shared<Session<TlsStream>>(state, std::move(peer), std::move(socket),
                                           std::move(tls))
          ->Start();
    } else {
      std::make_shared<Session<PlainStream>>(state, std::move(peer), std::move(socket), nullptr)
          ->Start();
    }
  } catch (const std::exception& e) {
    state.Log("session_failed", "", e.what());
  } catch (...) {
    state.Log("session_failed", "", "unknown exception");
  }
}

}  // namespace enlace::hub::internal
