// One connection: (TLS handshake ->) DoRead -> OnHeader -> [OnBody] -> Handle
// -> Write -> OnWrite -> DoRead ..., all on the connection's strand.
#ifndef ENLACE_SERVER_NET_SESSION_H_
#define ENLACE_SERVER_NET_SESSION_H_

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "net/net_state.h"

namespace enlace::hub::internal {

// Serves `socket` (whose executor must be a strand) until the peer leaves, a
// limit is hit or the server stops. TLS when `tls` is non-null; `tls` and
// `state` must outlive the session. Never throws.
void StartSession(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls,
                  NetState& state) noexcept;

}  // namespace enlace::hub::internal

#endif  // ENLACE_SERVER_NET_SESSION_H_
