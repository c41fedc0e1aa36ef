// The record history messages (wire.h, docs/PROTOCOL.md §17): round trips,
// and every truncation, oversized length and stray byte refused.
#include <doctest/doctest.h>

#include "enlace/wire.h"

namespace enlace {
namespace {

TEST_CASE("history messages round-trip") {
  HistoryRequest req{"encounters", RecordId::Random()};
  auto back = DecodeHistoryRequest(Encode(req));
  REQUIRE(back.ok());
  CHECK(back->collection == req.collection);
  CHECK(back->record == req.record);

  HistoryResponse resp;
  resp.writes = {Bytes{1, 2, 3}, Bytes{}, Bytes(300, 7)};
  auto again = DecodeHistoryResponse(Encode(resp));
  REQUIRE(again.ok());
  CHECK(again->writes == resp.writes);
  CHECK(DecodeHistoryResponse(Encode(HistoryResponse{}))->writes.empty());
}

TEST_CASE("every truncated or extended history message is refused, never read past its end") {
  const Bytes request = Encode(HistoryRequest{"cases", RecordId::Random()});
  for (size_t n = 0; n < request.size(); ++n) {
    CHECK_FALSE(DecodeHistoryRequest({request.data(), n}).ok());
  }
  Bytes longer = request;
  longer.push_back(0);
  CHECK_FALSE(DecodeHistoryRequest(longer).ok());

  HistoryResponse resp;
  resp.writes = {Bytes(40, 1), Bytes(9, 2)};
  const Bytes response = Encode(resp);
  for (size_t n = 0; n < response.size(); ++n) {
    CHECK_FALSE(DecodeHistoryResponse({response.data(), n}).ok());
  }
  longer = response;
  longer.push_back(0);
  CHECK_FALSE(DecodeHistoryResponse(longer).ok());
}

TEST_CASE("history lengths are checked against the limits before anything is allocated") {
  // A collection name over 64 bytes.
  CHECK(DecodeHistoryRequest(Encode(HistoryRequest{std::string(65, 'c'), RecordId::Random()}))
            .status()
            .code() == StatusCode::kResourceExhausted);
  // A write count over max_writes, and a write over max_write_bytes.
  HistoryResponse resp;
  resp.writes.assign(3, Bytes{1});
  WireLimits small;
  small.max_writes = 2;
  CHECK(DecodeHistoryResponse(Encode(resp), small).status().code() ==
        StatusCode::kResourceExhausted);
  small = WireLimits{};
  small.max_write_bytes = 8;
  resp.writes = {Bytes(9, 1)};
  CHECK(DecodeHistoryResponse(Encode(resp), small).status().code() ==
        StatusCode::kResourceExhausted);
  // A count claiming more writes than bytes left.
  Bytes lying = Encode(HistoryResponse{});
  lying[10] = 0xff;
  lying[11] = 0xff;
  CHECK_FALSE(DecodeHistoryResponse(lying).ok());
  // One message type is not the other.
  CHECK_FALSE(DecodeHistoryResponse(Encode(HistoryRequest{"cases", RecordId::Random()})).ok());
  CHECK_FALSE(DecodeHistoryRequest(Encode(HistoryResponse{})).ok());
  CHECK_FALSE(DecodeHistoryRequest(Encode(SyncRequest{})).ok());
}

}  // namespace
}  // namespace enlace
