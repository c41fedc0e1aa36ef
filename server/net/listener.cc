#include "net/listener.h"

#include <boost/asio/post.hpp>
#include <chrono>
#include <exception>

#include "net/session.h"

namespace enlace::hub::internal {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// After a failed accept (say, out of file descriptors), wait this long before
// the next one instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetry{100};
// Connections taken from the kernel's queue per turn of the event loop: one
// by async_accept, the rest by non-blocking accepts. One per turn let a
// flood of connects queue up in front of a device's connect whenever the
// pool was busy (a device waited 0.5-1.7 s in hub_load --attack).
constexpr int kAcceptBatch = 64;

void SetError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

}  // namespace

Listener::Listener(asio::io_context& ioc, NetState& state)
    : ioc_(ioc),
      strand_(asio::make_strand(ioc)),
      acceptor_(strand_),
      retry_(strand_),
      state_(state) {}

std::shared_ptr<Listener> Listener::Create(asio::io_context& ioc, const std::string& host,
                                           uint16_t port, NetState& state,
                                           std::string* error) noexcept {
  try {
    std::shared_ptr<Listener> listener(new Listener(ioc, state));
    const std::string where = host + ":" + std::to_string(port);
    error_code ec;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(
        host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
      SetError(error, "cannot resolve " + where + ": " + (ec ? ec.message() : "no address"));
      return nullptr;
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    tcp::acceptor& acceptor = listener->acceptor_;
    if (acceptor.open(endpoint.protocol(), ec); ec) {
      SetError(error, "cannot open a socket for " + where + ": " + ec.message());
      return nullptr;
    }
    if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
      SetError(error, "cannot set SO_REUSEADDR: " + ec.message());
      return nullptr;
    }
    if (acceptor.bind(endpoint, ec); ec) {
      SetError(error, "cannot bind " + where + ": " + ec.message());
      return nullptr;
    }
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
      SetError(error, "cannot listen on " + where + ": " + ec.message());
      return nullptr;
    }
    if (acceptor.non_blocking(true, ec); ec) {
      SetError(error, "cannot make the listening socket non-blocking: " + ec.message());
      return nullptr;
    }
    const tcp::endpoint bound = acceptor.local_endpoint(ec);
    if (ec) {
      SetError(error, "cannot read the bound address: " + ec.message());
      return nullptr;
    }
    listener->port_ = bound.port();
    listener->address_ = bound.address();
    return listener;
  } catch (const std::exception& e) {
    SetError(error, std::string("cannot listen: ") + e.what());
    return nullptr;
  }
}

void Listener::Start() {
  asio::post(strand_, [self = shared_from_this()] {
    if (!self->state_.stopping()) self->DoAccept();
  });
}

void Listener::Stop() {
  asio::post(strand_, [self = shared_from_this()] {
    error_code ignored;
    self->retry_.cancel();
    self->acceptor_.close(ignored);
  });
}

void Listener::DoAccept() {
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(asio::make_strand(ioc_),
                         [self = shared_from_this()](error_code ec, tcp::socket socket) {
                           self->OnAccept(ec, std::move(socket));
                         });
}

void Listener::OnAccept(error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open() || state_.stopping()) return;  // `socket`, if any, closes
  if (ec) {
    state_.Log("accept_failed", "", ec.message());
    retry_.expires_after(kAcceptRetry);
    retry_.async_wait([self = shared_from_this()](error_code wait_ec) {
      if (!wait_ec && self->acceptor_.is_open()) self->DoAccept();
    });
    return;
  }
  // The connection limits are applied as each session registers.
  StartSession(std::move(socket), state_);
  for (int i = 1; i < kAcceptBatch; ++i) {
    tcp::socket next(asio::make_strand(ioc_));
    acceptor_.accept(next, ec);
    if (ec)
      break;  // would_block: the queue is empty; other errors: the next async_accept sees them
    StartSession(std::move(next), state_);
  }
  DoAccept();
}

}  // namespace enlace::hub::internal
