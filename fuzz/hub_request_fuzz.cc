// libFuzzer target for the hub's request handling without sockets: the real
// HubHandler (server/routes.h) over the real SQLite HubStorage in a scratch
// folder, the way tests/support/hub_fixture.cc builds it, on a fixed
// clock. The hub holds a registered team: a coordinator, a joined field
// device, a published report and a viewer token; the fuzzer holds a pool of
// the field device's real encoded writes.
//
// The first input byte picks how the rest becomes an HttpRequest:
//   0  unsigned: endpoint, then "name: value" header lines up to an empty
//      line, then the body;
//   1  signed by the coordinator, 2 signed by the field device: endpoint,
//      then the body, with valid signature headers (the next byte may spoil
//      the signature, the time or the nonce);
//   3  a viewer's "authorization: Bearer" plus header lines and body, like 0;
//   4  a well-formed, signed POST /v1/sync of the field device whose writes
//      are picked from the pool (some with a byte flipped) plus one raw
//      write made of the rest of the input.
// The second byte picks the endpoint and method from a table; two entries
// take a fuzzed path (up to the first newline).
//
// Invariants: no crash, leak or UB; every answer is a 2xx or 4xx (never a
// 5xx: the hub's fault) with a body; a 200 to a signed sync decodes as a
// SyncResponse; /v1/health stays 200. The storage is recreated every
// kRecreateEvery inputs so nonces and stored writes do not pile up.
// ENLACE_FUZZ_TRACE=1 prints each request with the hub's answer.
//
// Seeds: fuzz/corpus/hub_request/ (fuzz_seeds). Build: scripts/fuzz.
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/vault.h"
#include "enlace/replica.h"
#include "enlace/report.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/wire.h"
#include "fuzz_team.h"
#include "fuzz_util.h"
#include "hub_request.h"
#include "hub_storage.h"
#include "replica/replica_impl.h"
#include "routes.h"
#include "temp_dir.h"

namespace enlace::fuzz {

const char kTargetName[] = "hub_request_fuzz";

namespace {

constexpr int kRecreateEvery = 2000;

struct Endpoint {
  const char* method;
  const char* path;
  bool fuzzed_suffix;  // path + fuzzed text up to the first newline
};

// {report} stands for the published report's id.
constexpr Endpoint kEndpoints[] = {
    {"POST", "/v1/sync", false},
    {"POST", "/v1/teams", false},
    {"POST", "/v1/invites", false},
    {"POST", "/v1/join", false},
    {"POST", "/v1/reports", false},
    {"GET", "/v1/reports", false},
    {"GET", "{report}", false},
    {"GET", "/v1/health", false},
    {"GET", "/metrics", false},
    {"GET", "/v1/reports/", true},
    {"POST", "", true},
    {"GET", "/v1/sync?cursor=1", false},
};
constexpr size_t kEndpointCount = sizeof(kEndpoints) / sizeof(kEndpoints[0]);

// Reads the input front to back.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Up to (and without) the next newline, which is consumed.
  std::string Line() {
    std::string out;
    while (pos_ < size_ && data_[pos_] != '\n') out.push_back(static_cast<char>(data_[pos_++]));
    if (pos_ < size_) ++pos_;
    return out;
  }
  bool AtLineEnd() const { return pos_ < size_ && data_[pos_] == '\n'; }
  bool Done() const { return pos_ >= size_; }
  std::string Rest() {
    std::string out(reinterpret_cast<const char*>(data_ + pos_), size_ - pos_);
    pos_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// "name: value" lines up to an empty line (or the end); names lower-cased.
void ReadHeaders(Reader& in, hub::HttpRequest& r) {
  for (int i = 0; i < 16 && !in.Done(); ++i) {
    if (in.AtLineEnd()) {
      in.Line();
      return;
    }
    const std::string line = in.Line();
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
}

class Fixture {
 public:
  Fixture() {
    scratch_dir = dir_.path();
    storage_ = Must(hub::OpenSqliteHubStorage(dir_.File("hub")), "open hub storage");
    hub::HubOptions options;
    options.clock = [] { return kClockMs; };
    handler_ = std::make_unique<hub::HubHandler>(*storage_, options);

    const std::string token = "tok-bootstrap-fuzz";
    Must(storage_->AddBootstrapToken(hub::HashToken(token), kClockMs,
                                     kClockMs + hub::kBootstrapTokenMs),
         "bootstrap token");
    coord_ = Must(Replica::Create(FuzzOptions(dir_.File("coord")), kPassphrase), "create");
    Must(CreateTeam(*coord_).status(), "create team");
    auto reg = Send(Must(BuildRegisterTeamRequest(*coord_, "Fuzz", "coord", token), "register"));
    Expect(reg.status == 200, "register: " + reg.body);
    Must(HandleMembersResponse(*coord_, AsBytes(reg.body)), "members");

    field_ = Must(Replica::Create(FuzzOptions(dir_.File("field")), kPassphrase), "create");
    auto invite =
        Must(PrepareInvite(*coord_, "http://hub.test", "", Role::kField, 3600 * 1000), "invite");
    auto created = Send(invite.request);
    Expect(created.status == 200, "create invite: " + created.body);
    auto joined = Send(Must(BuildJoinRequest(*field_, invite.code, "field"), "join"));
    Expect(joined.status == 200, "join: " + joined.body);
    Must(HandleJoinResponse(*field_, invite.code, AsBytes(joined.body)), "join response");

    // A report to list and fetch.
    auto table = Must(report::Tabulate({{"sex", {}, {}}}, Rows()), "tabulate");
    auto published = Must(report::Suppress(table), "suppress");
    published.title = "fuzz";
    // A closed calendar year, audited as the CLI does before publishing.
    published.from = "2025-01-01";
    published.to = "2025-12-31";
    Must(report::SuppressAcross(published, {}), "suppress across");
    auto pub =
        Send(Must(BuildPublishReportRequest(*coord_, report::RenderJson(published)), "publish"));
    Expect(pub.status == 200, "publish: " + pub.body);
    report_path_ =
        std::string(kReportsPath) + "/" + Must(DecodePublishReportAnswer(pub.body), "answer").id;
    viewer_token_ = Must(storage_->AddViewerToken(coord_->team(), "fuzz", kClockMs), "viewer");

    // The pool of real writes (not yet pushed).
    for (int i = 0; i < kRecordCount; ++i) {
      Must(field_->Put("cases", FixedRecord(i), {{"status", "\"Active\""}, {"age", "30"}}).status(),
           "put");
    }
    Must(field_->Delete("cases", FixedRecord(1)), "delete");
    for (auto& [counter, bytes] : Must(field_->PendingWrites(SIZE_MAX), "pending")) {
      pool_.push_back(bytes);
    }
  }

  ~Fixture() {
    handler_.reset();
    storage_.reset();
  }

  hub::HttpResponse Handle(const hub::HttpRequest& r) {
    hub::HttpResponse resp = handler_->Handle(r);
    if (trace_) {
      std::fprintf(stderr, "%s %s -> %d %.120s\n", r.method.c_str(), r.target.c_str(), resp.status,
                   resp.status == 200 ? "" : resp.body.c_str());
    }
    Expect(resp.status >= 200 && resp.status < 500,
           "the hub answered " + std::to_string(resp.status) + " to " + r.method + " " + r.target +
               ": " + resp.body);
    return resp;
  }

  hub::HttpResponse Send(const OutgoingRequest& o) { return Handle(testing::ToHttpRequest(o)); }

  // Signature headers of `r` by `who`; `spoil` 1 flips a signature byte,
  // 2 moves the time 10 minutes ahead, 3 reuses the previous nonce.
  void Sign(Replica& who, hub::HttpRequest& r, int spoil) {
    std::array<uint8_t, 16> nonce{};
    if (spoil != 3) ++nonce_counter_;
    for (int i = 0; i < 8; ++i) nonce[i] = static_cast<uint8_t>(nonce_counter_ >> (8 * i));
    const uint64_t time = kClockMs + (spoil == 2 ? 10 * 60 * 1000 : 0);
    auto& impl = who.impl();
    const Bytes input =
        RequestSigningInput(r.method, r.target, impl.device(), time, nonce, AsBytes(r.body));
    auto sig = internal::Sign(impl.vault().secrets().signing.secret_key, input);
    if (spoil == 1) sig[7] ^= 1;
    r.headers[kHeaderDevice] = impl.device().ToHex();
    r.headers[kHeaderTime] = std::to_string(time);
    r.headers[kHeaderNonce] = internal::ToHex(nonce);
    r.headers[kHeaderSignature] = internal::ToHex(sig);
  }

  Replica& coord() { return *coord_; }
  Replica& field() { return *field_; }
  const std::vector<Bytes>& pool() const { return pool_; }
  const std::string& report_path() const { return report_path_; }
  const std::string& viewer_token() const { return viewer_token_; }

 private:
  static std::vector<std::vector<std::string>> Rows() {
    std::vector<std::vector<std::string>> rows;
    for (int i = 0; i < 20; ++i) rows.push_back({"F"});
    for (int i = 0; i < 15; ++i) rows.push_back({"M"});
    return rows;
  }

  testing::TempDir dir_{testing::TempDir::Under{"/tmp", "enlace-hubfuzz-"}};  // removed last
  std::unique_ptr<hub::HubStorage> storage_;
  std::unique_ptr<hub::HubHandler> handler_;
  std::unique_ptr<Replica> coord_, field_;
  std::vector<Bytes> pool_;
  std::string report_path_, viewer_token_;
  uint64_t nonce_counter_ = 0;
  bool trace_ = std::getenv("ENLACE_FUZZ_TRACE") != nullptr;
};

Fixture* fixture = nullptr;
int inputs = 0;

void Recreate() {
  delete fixture;
  fixture = new Fixture();
}

}  // namespace
}  // namespace enlace::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace enlace::fuzz;
  Recreate();
  std::atexit([] { delete fixture; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enlace;
  using namespace enlace::fuzz;
  if (++inputs % kRecreateEvery == 0) {
    hub::HttpRequest health;
    health.method = "GET";
    health.target = kPathHealth;
    Expect(fixture->Handle(health).status == 200, "health is not 200");
    Recreate();
  }
  Fixture& f = *fixture;
  Reader in(data, size);
  const uint8_t mode_byte = in.Byte();
  const int mode = mode_byte % 5;
  const int spoil = (mode_byte / 5) % 4;
  hub::HttpRequest r;
  r.remote = "fuzz";
  r.from_loopback = (mode_byte & 0x80) != 0;  // /metrics: served, or refused

  if (mode == 4) {
    SyncRequest sync;
    sync.cursor = in.Byte();
    sync.members_version = in.Byte() % 4;
    sync.max_response_bytes = static_cast<uint32_t>(in.Byte()) << (in.Byte() % 16);
    const int n = in.Byte() % 8;
    for (int i = 0; i < n; ++i) {
      const uint8_t pick = in.Byte();
      Bytes w = f.pool()[pick % f.pool().size()];
      if (pick & 0x80) w[in.Byte() * 7 % w.size()] ^= static_cast<uint8_t>(1u << (pick % 8));
      sync.writes.push_back(std::move(w));
    }
    const std::string rest = in.Rest();
    if (!rest.empty()) sync.writes.emplace_back(rest.begin(), rest.end());
    const Bytes body = Encode(sync);
    r.method = "POST";
    r.target = kPathSync;
    r.body.assign(body.begin(), body.end());
    f.Sign(f.field(), r, spoil == 3 ? 0 : spoil);
    const hub::HttpResponse resp = f.Handle(r);
    if (resp.status == 200) {
      auto decoded = DecodeSyncResponse(AsBytes(resp.body));
      Expect(decoded.ok(), "a 200 sync answer does not decode: " + decoded.status().ToString());
    }
    return 0;
  }

  const uint8_t endpoint_byte = in.Byte();
  const Endpoint& e = kEndpoints[endpoint_byte % kEndpointCount];
  r.method = e.method;
  if (endpoint_byte & 0x80) r.method = r.method == "GET" ? "POST" : "GET";
  if (endpoint_byte & 0x40 && (endpoint_byte & 0x20)) r.method = "PUT";
  r.target = std::string_view(e.path) == "{report}" ? f.report_path() : e.path;
  if (e.fuzzed_suffix) r.target += in.Line();

  switch (mode) {
    case 0:
      ReadHeaders(in, r);
      break;
    case 3:
      r.headers[kHeaderAuthorization] = "Bearer " + f.viewer_token();
      ReadHeaders(in, r);
      break;
    default:
      break;
  }
  r.body = in.Rest();
  if (mode == 1) f.Sign(f.coord(), r, spoil);
  if (mode == 2) f.Sign(f.field(), r, spoil);
  const hub::HttpResponse resp = f.Handle(r);
  Expect(resp.status == 200 || !resp.body.empty(), "an error answer without a body");
  return 0;
}
