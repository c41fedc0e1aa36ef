// A device's request as the hub's request handler takes it, without
// sockets: what the in-process hub (hub_fixture.h), the request tests and
// hub_request_fuzz hand to hub::HubHandler. Header-only, so
// enlace_test_support_core needs no hub; its users link enlace_hub_lib.
#ifndef ENLACE_TESTS_SUPPORT_HUB_REQUEST_H_
#define ENLACE_TESTS_SUPPORT_HUB_REQUEST_H_

#include "enlace/sync.h"
#include "routes.h"

namespace enlace::testing {

inline hub::HttpRequest ToHttpRequest(const OutgoingRequest& request) {
  hub::HttpRequest r;
  r.method = request.method;
  r.target = request.path;
  for (const auto& [k, v] : request.headers) r.headers[k] = v;
  r.body.assign(request.body.begin(), request.body.end());
  return r;
}

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_HUB_REQUEST_H_
