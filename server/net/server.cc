#include "net/server.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <csignal>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "net/listener.h"
#include "net/net_state.h"

namespace enlace::hub {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using error_code = boost::system::error_code;

void SetError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

// A TLS 1.2+ server context with the PEM chain and key, or null and *error.
std::shared_ptr<ssl::context> MakeTlsContext(const std::string& cert_file,
                                             const std::string& key_file, std::string* error) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1 | ssl::context::no_compression,
                       ec);
  if (ec || SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
    SetError(error, "cannot restrict TLS to 1.2 and later");
    return nullptr;
  }
  if (context->use_certificate_chain_file(cert_file, ec); ec) {
    SetError(error, "cannot load TLS certificate chain " + cert_file + ": " + ec.message());
    return nullptr;
  }
  if (context->use_private_key_file(key_file, ssl::context::pem, ec); ec) {
    SetError(error, "cannot load TLS private key " + key_file + ": " + ec.message());
    return nullptr;
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    SetError(error, "TLS private key " + key_file + " does not match certificate " + cert_file);
    return nullptr;
  }
  return context;
}

}  // namespace

// Declaration order is destruction order in reverse: the io_context (whose
// destructor destroys pending handlers, and with them sessions) goes before
// the NetState and TLS context that sessions use, and after the I/O objects.
struct Server::Impl {
  Impl(Handler& handler, ServerOptions options)
      : state(handler, std::move(options)),
        ioc(static_cast<int>(std::clamp<size_t>(state.options().threads, 1, 1024))),
        strand(asio::make_strand(ioc)),
        signals(strand),
        reload_signals(strand) {}

  void Stop() {
    if (!state.BeginStop()) return;
    listener->Stop();
    asio::post(strand, [this] {
      error_code ignored;
      signals.cancel(ignored);
      signals.clear(ignored);  // SIGINT/SIGTERM: default action again
      // SIGHUP stays caught (and ignored) until the Server is destroyed:
      // logrotate's HUP during a shutdown must not kill the process.
      reload_signals.cancel(ignored);
    });
  }

  bool ReloadTls(std::string* error) {
    if (!tls) return true;
    const ServerOptions& opts = state.options();
    std::string why;
    auto context = MakeTlsContext(opts.tls_cert_file, opts.tls_key_file, &why);
    if (!context) {
      state.counters().tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
      state.Log("tls_reload_failed", "", why + "; still serving the previous certificate");
      SetError(error, std::move(why));
      return false;
    }
    state.SetTls(std::move(context));
    state.counters().tls_reloads.fetch_add(1, std::memory_order_relaxed);
    state.Log("tls_reloaded", "", opts.tls_cert_file);
    return true;
  }

  void WaitForReload() {
    reload_signals.async_wait([this](error_code ec, int) {
      if (ec || state.stopping()) return;
      if (reopen) {
        try {
          reopen();
        } catch (const std::exception& e) {
          state.Log("reopen_failed", "", e.what());
        } catch (...) {
          state.Log("reopen_failed", "", "unknown exception");
        }
      }
      ReloadTls(nullptr);
      WaitForReload();
    });
  }

  // Runs handlers until the io_context runs out of work. An exception that
  // escapes a handler is logged and the loop goes on.
  void RunThread() noexcept {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        state.Log("uncaught_exception", "", e.what());
      } catch (...) {
        state.Log("uncaught_exception", "", "unknown exception");
      }
    }
  }

  bool tls = false;
  internal::NetState state;
  asio::io_context ioc;
  asio::strand<asio::io_context::executor_type> strand;  // signals
  asio::signal_set signals;                              // SIGINT, SIGTERM
  asio::signal_set reload_signals;                       // SIGHUP
  std::function<void()> reopen;                          // on SIGHUP, before the TLS reload
  std::shared_ptr<internal::Listener> listener;
};

std::optional<bool> ListensOnLoopback(const std::string& host) noexcept {
  try {
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    error_code ec;
    const auto endpoints = resolver.resolve(
        host, "0", asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) return std::nullopt;
    return internal::IsLoopback(endpoints.begin()->endpoint().address());
  } catch (...) {
    return std::nullopt;
  }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() = default;

std::unique_ptr<Server> Server::Create(ServerOptions options, Handler& handler,
                                       std::string* error) noexcept {
  try {
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      SetError(error, "TLS needs both a certificate file and a key file");
      return nullptr;
    }
    auto impl = std::make_unique<Impl>(handler, std::move(options));
    const ServerOptions& opts = impl->state.options();
    if (!opts.tls_cert_file.empty()) {
      auto context = MakeTlsContext(opts.tls_cert_file, opts.tls_key_file, error);
      if (!context) return nullptr;
      impl->state.SetTls(std::move(context));
      impl->tls = true;
    }
    impl->listener =
        internal::Listener::Create(impl->ioc, opts.host, opts.port, impl->state, error);
    if (!impl->listener) return nullptr;
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  } catch (const std::exception& e) {
    SetError(error, std::string("cannot create the server: ") + e.what());
    return nullptr;
  } catch (...) {
    SetError(error, "cannot create the server");
    return nullptr;
  }
}

uint16_t Server::port() const { return impl_->listener->port(); }

bool Server::tls() const { return impl_->tls; }

bool Server::loopback() const { return internal::IsLoopback(impl_->listener->address()); }

NetStats Server::stats() const { return impl_->state.Stats(); }

bool Server::ReloadTls(std::string* error) noexcept {
  try {
    return impl_->ReloadTls(error);
  } catch (const std::exception& e) {
    SetError(error, e.what());
    return false;
  } catch (...) {
    SetError(error, "unknown exception");
    return false;
  }
}

void Server::StopOnSignals() noexcept {
  Impl* impl = impl_.get();
  error_code ec;
  impl->signals.add(SIGINT, ec);
  if (!ec) impl->signals.add(SIGTERM, ec);
  if (ec) {
    impl->state.Log("signals_failed", "", ec.message());
    return;
  }
  impl->signals.async_wait([impl](error_code wait_ec, int) {
    if (!wait_ec) impl->Stop();
  });
}

void Server::ReloadOnSignal(std::function<void()> reopen) noexcept {
  Impl* impl = impl_.get();
  impl->reopen = std::move(reopen);
  error_code ec;
  impl->reload_signals.add(SIGHUP, ec);
  if (ec) {
    impl->state.Log("signals_failed", "", ec.message());
    return;
  }
  impl->WaitForReload();
}

void Server::Run() noexcept {
  Impl* impl = impl_.get();
  try {
    impl->listener->Start();
  } catch (const std::exception& e) {
    impl->state.Log("start_failed", "", e.what());
    return;
  }
  const size_t threads = std::clamp<size_t>(impl->state.options().threads, 1, 1024);
  std::vector<std::thread> pool;
  try {
    pool.reserve(threads - 1);
    for (size_t i = 1; i < threads; ++i) pool.emplace_back([impl] { impl->RunThread(); });
  } catch (const std::exception& e) {
    // Serve with the threads we have.
    impl->state.Log("thread_failed", "", e.what());
  }
  impl->RunThread();
  for (std::thread& thread : pool) thread.join();
}

void Server::Stop() noexcept {
  try {
    impl_->Stop();
  } catch (const std::exception& e) {
    impl_->state.Log("stop_failed", "", e.what());
  }
}

}  // namespace enlace::hub
