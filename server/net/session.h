// One connection: (TLS handshake ->) ReadHeader -> OnHeader -> [ReadBodyPart
// -> OnBodyPart ...] -> Handle -> Write -> OnWrite -> DoRead -> OnFirstBytes
// -> ReadHeader ..., all on the connection's strand.
#ifndef ENLACE_SERVER_NET_SESSION_H_
#define ENLACE_SERVER_NET_SESSION_H_

#include <boost/asio/ip/tcp.hpp>

#include "net/net_state.h"

namespace enlace::hub::internal {

// Serves `socket` (whose executor must be a strand) until the peer leaves, a
// limit is hit or the server stops; or closes it at once when the
// connection limits refuse it (NetState::Admit). TLS when state.tls() is
// non-null (the session keeps that context alive). `state` must outlive the
// session. Never throws.
void StartSession(boost::asio::ip::tcp::socket socket, NetState& state) noexcept;

}  // namespace enlace::hub::internal

#endif  // ENLACE_SERVER_NET_SESSION_H_
