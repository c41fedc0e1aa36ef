// Accepts connections and hands each, on its own strand, to a session.
#ifndef ENLACE_SERVER_NET_LISTENER_H_
#define ENLACE_SERVER_NET_LISTENER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "net/net_state.h"

namespace enlace::hub::internal {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Resolves `host`, binds `port` and listens. Returns nullptr and sets
  // *error on failure; never throws. `ioc` and `state` must outlive the
  // listener.
  static std::shared_ptr<Listener> Create(boost::asio::io_context& ioc, const std::string& host,
                                          uint16_t port, NetState& state,
                                          std::string* error) noexcept;

  uint16_t port() const { return port_; }
  // The bound address.
  const boost::asio::ip::address& address() const { return address_; }

  // Begin accepting; stop accepting (closing the socket). Thread-safe: both
  // act on the listener's strand, Stop after Start, and Start not at all
  // once the NetState is stopping.
  void Start();
  void Stop();

 private:
  Listener(boost::asio::io_context& ioc, NetState& state);
  void DoAccept();
  void OnAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  NetState& state_;
  uint16_t port_ = 0;
  boost::asio::ip::address address_;
};

}  // namespace enlace::hub::internal

#endif  // ENLACE_SERVER_NET_LISTENER_H_
