#include "hub_fixture.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <array>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "enlace/team.h"
#include "replica/replica_impl.h"
#include "replica/write_internal.h"

namespace enlace::testing {

InProcessHub::InProcessHub(const std::string& data_dir, FakeClock* clock) : data_dir_(data_dir) {
  auto storage = hub::OpenSqliteHubStorage(data_dir);
  REQUIRE_MESSAGE(storage.ok(), storage.status().ToString());
  storage_ = std::move(storage).value();
  hub::HubOptions options;
  if (clock != nullptr) options.clock = clock->AsWallClock();
  handler_ = std::make_unique<hub::HubHandler>(*storage_, options);
}

HubReply InProcessHub::Send(const OutgoingRequest& request) {
  const hub::HttpResponse resp = handler_->Handle(ToHttpRequest(request));
  auto it = resp.headers.find(kHeaderHubTime);
  return HubReply{resp.status, resp.body, it == resp.headers.end() ? "" : it->second};
}

std::string InProcessHub::NewBootstrapToken() {
  const std::string token = "tok-" + RecordId::Random().ToHex();
  REQUIRE(storage_->AddBootstrapToken(hub::HashToken(token), 1, UINT64_MAX / 2).ok());
  return token;
}

std::unique_ptr<Replica> InitCoordinator(InProcessHub& hub, const ReplicaOptions& options,
                                         const std::string& team_name) {
  auto r = MakeReplica(options);
  REQUIRE(CreateTeam(*r).ok());
  auto req = BuildRegisterTeamRequest(*r, team_name, "coordinator", hub.NewBootstrapToken());
  REQUIRE(req.ok());
  const HubReply reply = hub.Send(*req);
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  REQUIRE(HandleMembersResponse(*r, reply.bytes()).ok());
  return r;
}

std::unique_ptr<Replica> JoinDevice(InProcessHub& hub, Replica& coordinator,
                                    const ReplicaOptions& options, const std::string& name,
                                    Role role) {
  auto invite = PrepareInvite(coordinator, "http://hub.test", "", role, 72ull * 3600 * 1000);
  REQUIRE_MESSAGE(invite.ok(), invite.status().ToString());
  const HubReply created = hub.Send(invite->request);
  REQUIRE_MESSAGE(created.status == 200, created.body);
  auto r = MakeReplica(options);
  auto join = BuildJoinRequest(*r, invite->code, name);
  REQUIRE_MESSAGE(join.ok(), join.status().ToString());
  const HubReply joined = hub.Send(*join);
  REQUIRE_MESSAGE(joined.status == 200, joined.body);
  const Status s = HandleJoinResponse(*r, invite->code, joined.bytes());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return r;
}

void ExecSql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO(sql, ": ", error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

hub::HttpRequest PushOf(HubTeam& t, Replica& device, std::vector<Bytes> writes) {
  SyncRequest req;
  req.key_version = device.current_key_version();
  req.max_response_bytes = 1 << 20;
  req.writes = std::move(writes);
  return SignedSyncRequest(device, Encode(req), t.clock.now_ms);
}

Bytes ScopedWrite(Replica& writer, const ScopeId& scope, uint64_t prev, bool as_void,
                  const RecordId* record) {
  auto& impl = writer.impl();
  auto counter = impl.store().GetMeta("write_counter");
  REQUIRE(counter.ok());
  Write w;
  w.team = writer.team();
  w.collection = as_void ? kVoidCollection : "cases";
  if (!as_void) w.record = record != nullptr ? *record : RecordId::Random();
  w.dot = Dot{writer.device_id(), *counter + 1};
  w.hlc = HlcTimestamp::From(impl.clock().WallMs(), 0);
  if (!as_void) w.fields = {"status"};
  w.kind = as_void ? WriteKind::kVoid : WriteKind::kPut;
  w.key_version = writer.current_key_version();
  w.accounted_from = 1;
  w.scope = scope;
  w.scope_prev = prev;
  auto key = impl.TeamKey(w.key_version);
  REQUIRE(key.ok());
  std::vector<std::string> values;
  if (!as_void) values.push_back("\"Active\"");
  REQUIRE(internal::SealWrite(w, values, **key, impl.vault().secrets().signing.secret_key).ok());
  REQUIRE(impl.store().SetMeta("write_counter", *counter + 1).ok());
  return w.Encode();
}

SyncProgress SyncAll(InProcessHub& hub, Replica& replica, SyncOptions options) {
  SyncSession session(replica, options);
  for (int round = 0; round < 10000; ++round) {
    auto req = session.NextRequest();
    REQUIRE_MESSAGE(req.ok(), req.status().ToString());
    const HubReply reply = hub.Send(*req);
    FollowHubClock(replica, reply.hub_time);
    REQUIRE_MESSAGE(reply.status == 200, reply.body);
    auto more = session.HandleResponse(reply.bytes());
    REQUIRE_MESSAGE(more.ok(), more.status().ToString());
    if (!*more) return session.progress();
  }
  FAIL("sync did not finish");
  return session.progress();
}

hub::HttpRequest NextSyncRequest(Replica& device) {
  SyncSession session(device);
  auto req = session.NextRequest();
  REQUIRE_MESSAGE(req.ok(), req.status().ToString());
  return ToHttpRequest(*req);
}

void SignRequest(Replica& signer, hub::HttpRequest& request, uint64_t time_ms) {
  std::array<uint8_t, 16> nonce{};
  internal::RandomFill(nonce);
  const Bytes input = RequestSigningInput(request.method, request.target, signer.device_id(),
                                          time_ms, nonce, internal::AsBytes(request.body));
  const auto sig = internal::Sign(signer.impl().vault().secrets().signing.secret_key, input);
  request.headers[kHeaderDevice] = signer.device_id().ToHex();
  request.headers[kHeaderTime] = std::to_string(time_ms);
  request.headers[kHeaderNonce] = internal::ToHex(nonce);
  request.headers[kHeaderSignature] = internal::ToHex(sig);
}

hub::HttpRequest SignedSyncRequest(Replica& signer, const Bytes& body, uint64_t time_ms) {
  hub::HttpRequest request;
  request.method = "POST";
  request.target = kPathSync;
  request.body.assign(body.begin(), body.end());
  SignRequest(signer, request, time_ms);
  return request;
}

std::string ErrorOf(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    return j["error"].get<std::string>();
  }
  return "";
}

}  // namespace enlace::testing
