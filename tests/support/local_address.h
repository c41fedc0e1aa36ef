// The machine's own non-loopback address, for tests that must see a peer
// that is not on loopback. Header-only and without doctest: server/net's
// net_test (which links no test-support library) uses it too.
#ifndef ENLACE_TESTS_SUPPORT_LOCAL_ADDRESS_H_
#define ENLACE_TESTS_SUPPORT_LOCAL_ADDRESS_H_

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <string>

namespace enlace::testing {

// A local IPv4 address that is not a loopback one, or "".
inline std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_LOCAL_ADDRESS_H_
