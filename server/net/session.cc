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
// still sends for at most this long (bounded by read_timeout too), so that
// our answer is not lost to a TCP reset.
constexpr std::chrono::milliseconds kMaxLinger{5000};
constexpr size_t kDrainChunk = 16 * 1024;

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

std::string RemoteOf(const tcp::socket& socket) {
  error_code ec;
  const tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

HttpRequest ToHttpRequest(Request&& message, const std::string& remote) {
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
  request.body = std::move(message.body());
  request.remote = remote;
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
  kWaiting,    // reading a request's header; idle while no byte has arrived
  kRequest,    // a request is being read, handled or answered
  kClosing,    // answered; draining or shutting TLS down before the close
};

enum class After { kKeepAlive, kClose };

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class... StreamArgs>
  Session(NetState& state, std::string remote, StreamArgs&&... stream_args)
      : SessionBase(state),
        stream_(std::forward<StreamArgs>(stream_args)...),
        remote_(std::move(remote)) {}

  // Registers with the NetState and begins on the connection's strand.
  void Start() {
    state_.Add(this->shared_from_this());
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::Begin, this->shared_from_this()));
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

 private:
  const ServerOptions& options() const { return state_.options(); }
  std::shared_ptr<Session> self() { return this->shared_from_this(); }

  void Begin() {
    if constexpr (kTls) {
      if (state_.stopping()) return;
      phase_ = Phase::kHandshake;
      beast::get_lowest_layer(stream_).expires_after(options().read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::OnHandshake, self()));
    } else {
      DoRead();
    }
  }

  void OnHandshake(error_code ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted) {
        state_.Log("tls_handshake_failed", remote_, ec.message());
      }
      return;  // the session ends; its socket closes
    }
    DoRead();
  }

  void DoRead() {
    if (state_.stopping()) return;  // between requests: just close
    phase_ = Phase::kWaiting;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(options().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // No body limit while the header is read: the limit depends on the target,
    // and Beast would check a Content-Length against the default (1 MB).
    // (Not boost::none: Beast 1.74 compares a Content-Length with an empty
    // optional limit as exceeding it.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // One deadline for the whole request, header and body.
    beast::get_lowest_layer(stream_).expires_after(options().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, self()));
  }

  void OnHeader(error_code ec, size_t) {
    if (ec) {
      phase_ = Phase::kRequest;
      if (ec == http::error::body_limit) {
        return Reject(http::status::payload_too_large, "request body too large");
      }
      if (ec == http::error::header_limit) {
        return Reject(http::status::request_header_fields_too_large, "request header too large");
      }
      if (IsParseError(ec)) return Reject(http::status::bad_request, "malformed request");
      return;  // peer left, timeout, stop: close unanswered
    }
    phase_ = Phase::kRequest;
    const Request& request = parser_->get();
    size_t limit = 0;
    try {
      limit = state_.handler().MaxBodyBytes(View(request.target()));
    } catch (const std::exception& e) {
      state_.Log("handler_threw", remote_, e.what());
      return Reject(http::status::internal_server_error, "internal error");
    } catch (...) {
      state_.Log("handler_threw", remote_, "MaxBodyBytes");
      return Reject(http::status::internal_server_error, "internal error");
    }
    // A transfer coding that does not end in chunked leaves the body's length
    // unknowable (RFC 9112, 6.3); Beast would read it until the close.
    if (request.count(http::field::transfer_encoding) > 0 && !parser_->chunked()) {
      return Reject(http::status::bad_request, "unsupported transfer coding");
    }
    if (const auto length = parser_->content_length(); length && *length > limit) {
      return Reject(http::status::payload_too_large, "request body too large");
    }
    parser_->body_limit(static_cast<std::uint64_t>(limit));  // for chunked bodies
    if (parser_->is_done()) return Handle();
    const auto expect = request[http::field::expect];
    if (request.version() >= 11 && beast::iequals(expect, "100-continue")) {
      continue_ = http::response<http::empty_body>(http::status::continue_, request.version());
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
    // Still under the deadline set when the header read began.
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, self()));
  }

  void OnBody(error_code ec, size_t) {
    if (ec == http::error::body_limit) {
      return Reject(http::status::payload_too_large, "request body too large");
    }
    if (ec && IsParseError(ec)) return Reject(http::status::bad_request, "malformed request");
    if (ec) return;
    Handle();
  }

  // Runs the Handler on this pool thread and answers.
  void Handle() {
    Request message = parser_->release();
    const unsigned version = message.version();
    const bool head_request = message.method() == http::verb::head;
    const bool wants_keep_alive = message.keep_alive();
    HttpResponse answer;
    try {
      answer = state_.handler().Handle(ToHttpRequest(std::move(message), remote_));
    } catch (const std::exception& e) {
      state_.Log("handler_threw", remote_, e.what());
      answer = InternalError();
    } catch (...) {
      state_.Log("handler_threw", remote_, "unknown exception");
      answer = InternalError();
    }
    // Read after the Handler returns: a Stop() meanwhile ends this connection.
    const bool keep_alive = wants_keep_alive && !state_.stopping();
    Write(ToResponse(std::move(answer), version, head_request, keep_alive),
          keep_alive ? After::kKeepAlive : After::kClose);
  }

  // Answers without handling and closes: the rest of the request is unread.
  void Reject(http::status status, std::string_view text) {
    Write(TextResponse(status, text, 11), After::kClose);
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
    auto& lowest = beast::get_lowest_layer(stream_);
    if (state_.stopping()) {
      error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;  // the session ends; its socket closes
    }
    lowest.expires_after(std::min<std::chrono::milliseconds>(options().read_timeout, kMaxLinger));
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

  void OnDrain(error_code ec, size_t) {
    if (ec) return;  // EOF, deadline or stop: the session ends
    Drain();         // the bytes were never committed: discarded
  }

  Stream stream_;
  const std::string remote_;
  Phase phase_ = Phase::kWaiting;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::empty_body> continue_;
  Response response_;
};

}  // namespace

void StartSession(tcp::socket socket, asio::ssl::context* tls, NetState& state) noexcept {
  try {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::string remote = RemoteOf(socket);
    if (tls != nullptr) {
      std::make_shared<Session<TlsStream>>(state, std::move(remote), std::move(socket), *tls)
          ->Start();
    } else {
      std::make_shared<Session<PlainStream>>(state, std::move(remote), std::move(socket))->Start();
    }
  } catch (const std::exception& e) {
    state.Log("session_failed", "", e.what());
  } catch (...) {
    state.Log("session_failed", "", "unknown exception");
  }
}

}  // namespace enlace::hub::internal
