// Scopes (issue 17, docs/PROTOCOL.md §6.12) against the real hub handler
// and storage in process: a coordinator assigns a scope to a field device
// in the signed registry; the hub delivers each field device the team's
// scope and its own only, and takes its writes into those only.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "enlace/team.h"
#include "hub_fixture.h"
#include "trust/team_impl.h"

namespace enlace {
namespace {

using testing::HubTeam;
using testing::PushOf;
using testing::ScopedWrite;
using testing::SyncAll;

ScopeId Scope(uint8_t fill) {
  ScopeId s;
  s.bytes.fill(fill);
  return s;
}

// The hub's answer to `device` pushing exactly `writes` (200 expected).
SyncResponse Push(HubTeam& t, Replica& device, std::vector<Bytes> writes) {
  const hub::HttpResponse r = t.hub.Raw(PushOf(t, device, std::move(writes)));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto resp = DecodeSyncResponse(internal::AsBytes(r.body));
  REQUIRE(resp.ok());
  return *resp;
}

// Every device synced; the coordinator has folded both field devices into
// the registry (so it can assign them scopes).
void Settle(HubTeam& t) {
  for (int round = 0; round < 2; ++round) {
    SyncAll(t.hub, *t.coord);
    SyncAll(t.hub, *t.a);
    SyncAll(t.hub, *t.b);
  }
}

// Assigns `scope` to `device` (or takes it back) and brings everyone up
// to date.
void Assign(HubTeam& t, const DeviceId& device, const ScopeId& scope, bool assign = true) {
  REQUIRE((assign ? AssignScope(*t.coord, device, scope) : UnassignScope(*t.coord, device, scope))
              .ok());
  const SyncProgress p = SyncAll(t.hub, *t.coord);
  REQUIRE(p.registry_refused.empty());
  Settle(t);
}

// How many "cases" records `device` holds.
size_t CaseCount(Replica& device) {
  auto listed = device.List("cases");
  REQUIRE(listed.ok());
  return listed->size();
}

TEST_CASE("the hub delivers a field device the team's scope and its own, nothing else") {
  HubTeam t;
  Settle(t);
  const ScopeId caseload = Scope(0x51);
  Assign(t, t.a->device_id(), caseload);
  // The coordinator writes one record in the team's scope and one in ana's
  // caseload.
  REQUIRE(t.coord->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
  SyncAll(t.hub, *t.coord);
  REQUIRE(t.hub.Raw(PushOf(t, *t.coord, {ScopedWrite(*t.coord, caseload, 0)})).status == 200);
  // ana gets both; beto only the team's, and lacks nothing.
  const SyncProgress a = SyncAll(t.hub, *t.a);
  CHECK(a.received == 2);
  CHECK(a.missing == 0);
  const SyncProgress b = SyncAll(t.hub, *t.b);
  CHECK(b.received == 1);
  CHECK(b.missing == 0);
  CHECK(CaseCount(*t.a) == 2);
  CHECK(CaseCount(*t.b) == 1);
  // Asking for the caseload's write by its number, or by its position,
  // brings beto nothing either.
  SyncRequest ask;
  ask.key_version = t.b->current_key_version();
  ask.max_response_bytes = 1 << 20;
  ask.wanted = {{t.coord->device_id(), 1, 100}};
  ask.refetch = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const hub::HttpResponse r =
      t.hub.Raw(testing::SignedSyncRequest(*t.b, Encode(ask), t.clock.now_ms));
  REQUIRE(r.status == 200);
  auto resp = DecodeSyncResponse(internal::AsBytes(r.body));
  REQUIRE(resp.ok());
  for (const Bytes& bytes : resp->writes) {
    auto w = Write::Decode(bytes);
    REQUIRE(w.ok());
    CHECK(w->scope.IsZero());
  }
  // The coordinator holds every scope: ana's write there reaches it.
  REQUIRE(t.hub.Raw(PushOf(t, *t.a, {ScopedWrite(*t.a, caseload, 0)})).status == 200);
  CHECK(SyncAll(t.hub, *t.coord).received == 1);
  CHECK(SyncAll(t.hub, *t.b).received == 0);
}

TEST_CASE("a field device cannot write into a scope no coordinator assigned it") {
  HubTeam t;
  Settle(t);
  const ScopeId caseload = Scope(0x52);
  Assign(t, t.a->device_id(), caseload);
  // beto pushes a write into ana's caseload, then one in the team's scope:
  // neither is stored, and the answer names the first.
  const SyncResponse refused =
      Push(t, *t.b, {ScopedWrite(*t.b, caseload, 0), ScopedWrite(*t.b, ScopeId{}, 0)});
  CHECK(refused.out_of_scope == 1);
  CHECK(refused.acked_up_to == 0);
  CHECK(SyncAll(t.hub, *t.a).received == 0);
  // ana's own write there is taken and reaches the coordinator.
  REQUIRE(t.hub.Raw(PushOf(t, *t.a, {ScopedWrite(*t.a, caseload, 0)})).status == 200);
  CHECK(SyncAll(t.hub, *t.coord).received == 1);
  // A void (no data) keeps its number's place in any scope: beto's number
  // 1 was refused, so his number 1 may be a void there.
  auto counter = t.b->impl().store().SetMeta("write_counter", 0);
  REQUIRE(counter.ok());
  const SyncResponse voided = Push(t, *t.b, {ScopedWrite(*t.b, caseload, 0, true)});
  CHECK(voided.out_of_scope == 0);
  CHECK(voided.acked_up_to == 1);
}

TEST_CASE("a scope taken back is no longer delivered, and its writes are refused") {
  HubTeam t;
  Settle(t);
  const ScopeId caseload = Scope(0x53);
  Assign(t, t.a->device_id(), caseload);
  REQUIRE(t.hub.Raw(PushOf(t, *t.coord, {ScopedWrite(*t.coord, caseload, 0)})).status == 200);
  CHECK(SyncAll(t.hub, *t.a).received == 1);
  Assign(t, t.a->device_id(), caseload, false);
  REQUIRE(t.hub.Raw(PushOf(t, *t.coord, {ScopedWrite(*t.coord, caseload, 1)})).status == 200);
  const SyncProgress a = SyncAll(t.hub, *t.a);
  CHECK(a.received == 0);
  CHECK(a.missing == 0);
  CHECK(Push(t, *t.a, {ScopedWrite(*t.a, caseload, 0)}).out_of_scope != 0);
}

TEST_CASE("a scope taken back leaves the field device; its unsent edits there become voids") {
  HubTeam t;
  Settle(t);
  const ScopeId caseload = Scope(0x56);
  Assign(t, t.a->device_id(), caseload);
  // The coordinator opens a record in ana's caseload, and one in the team's.
  auto in_scope = t.coord->Put("cases", std::nullopt, {{"status", "\"Active\""}}, caseload);
  REQUIRE(in_scope.ok());
  auto shared = t.coord->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(shared.ok());
  SyncAll(t.hub, *t.coord);
  CHECK(SyncAll(t.hub, *t.a).received == 2);
  CHECK(*t.a->ScopeOf("cases", *in_scope) == caseload);
  SyncAll(t.hub, *t.b);
  CHECK(t.b->Get("cases", *in_scope).status().code() == StatusCode::kNotFound);
  CHECK(t.b->ScopeOf("cases", *in_scope).status().code() == StatusCode::kNotFound);
  CHECK(t.b->ScopeOf("cases", *shared)->IsZero());
  // A record keeps its scope.
  CHECK(t.coord->Put("cases", *in_scope, {{"status", "\"Closed\""}}, ScopeId{}).status().code() ==
        StatusCode::kInvalidArgument);
  // ana edits both offline; meanwhile the coordinator takes the caseload
  // back.
  REQUIRE(t.a->Put("cases", *in_scope, {{"status", "\"FollowUp\""}}).ok());
  REQUIRE(t.a->Put("cases", *shared, {{"status", "\"FollowUp\""}}).ok());
  REQUIRE(UnassignScope(*t.coord, t.a->device_id(), caseload).ok());
  SyncAll(t.hub, *t.coord);
  // ana's next sync: the case leaves her device with every write of it,
  // her edit there goes as a void, her edit of the shared record goes on.
  const SyncProgress p = SyncAll(t.hub, *t.a);
  CHECK(p.missing == 0);
  CHECK(t.a->Get("cases", *in_scope).status().code() == StatusCode::kNotFound);
  CHECK(t.a->impl().store().DotsOf({"cases", *in_scope})->empty());
  CHECK(t.a->PendingWrites(SIZE_MAX)->empty());
  const SyncProgress c = SyncAll(t.hub, *t.coord);
  CHECK(c.missing == 0);
  CHECK(t.coord->Get("cases", *in_scope)->fields.at("status").value == "\"Active\"");
  CHECK(t.coord->Get("cases", *shared)->fields.at("status").value == "\"FollowUp\"");
  // Assigned again, the case comes back whole.
  Assign(t, t.a->device_id(), caseload);
  auto back = t.a->Get("cases", *in_scope);
  REQUIRE(back.ok());
  CHECK(back->fields.at("status").value == "\"Active\"");
}

TEST_CASE("a write that moves a record into another scope is refused by every reader") {
  HubTeam t;
  Settle(t);
  const ScopeId caseload = Scope(0x57);
  Assign(t, t.a->device_id(), caseload);
  auto shared = t.coord->Put("cases", std::nullopt, {{"status", "\"Active\""}});
  REQUIRE(shared.ok());
  SyncAll(t.hub, *t.coord);
  SyncAll(t.hub, *t.a);
  // ana signs an edit of the team's record but names her caseload: only
  // the holders of that scope would get it, and the record would split.
  const SyncResponse pushed = Push(t, *t.a, {ScopedWrite(*t.a, caseload, 0, false, &*shared)});
  REQUIRE(pushed.out_of_scope == 0);
  const SyncProgress c = SyncAll(t.hub, *t.coord);
  CHECK(c.received == 0);
  CHECK(c.refused == 1);
  CHECK(t.coord->Get("cases", *shared)->fields.at("status").value == "\"Active\"");
  CHECK(t.coord->ScopeOf("cases", *shared)->IsZero());
}

TEST_CASE("scopes are a coordinator's to assign, never the team's own, and travel signed") {
  HubTeam t;
  Settle(t);
  // A field device cannot assign itself anything.
  CHECK(AssignScope(*t.a, t.a->device_id(), Scope(0x54)).code() == StatusCode::kPermissionDenied);
  // The team's scope is everyone's.
  CHECK(AssignScope(*t.coord, t.a->device_id(), ScopeId{}).code() == StatusCode::kInvalidArgument);
  // At most kMaxScopesPerDevice scopes per device: a registry version
  // giving beto that many is signed and stored, one more is refused.
  {
    auto& impl = t.coord->impl();
    auto next = internal::DraftRegistry(impl);
    REQUIRE(next.ok());
    for (auto& e : next->entries) {
      if (e.device != t.b->device_id()) continue;
      for (size_t i = 0; i < kMaxScopesPerDevice; ++i) {
        ScopeId s;
        s.bytes[0] = 0xa0;
        s.bytes[14] = static_cast<uint8_t>(i >> 8);
        s.bytes[15] = static_cast<uint8_t>(i);
        e.scopes.push_back(s);
      }
    }
    internal::SignRegistry(impl, *next);
    REQUIRE(impl.store().SetDocument(internal::kDocOutgoingRegistry, EncodeRegistry(*next)).ok());
    REQUIRE(SyncAll(t.hub, *t.coord).registry_stored);
  }
  CHECK(AssignScope(*t.coord, t.b->device_id(), Scope(0xa1)).code() ==
        StatusCode::kInvalidArgument);
  REQUIRE(UnassignScope(*t.coord, t.b->device_id(), Scope(0xa1)).ok());  // not held: no change
  CHECK_FALSE(*RegistryChangePending(*t.coord));
  // Assigning twice changes nothing the second time; every device sees the
  // assignment in its checked registry.
  Assign(t, t.a->device_id(), Scope(0x54));
  REQUIRE(AssignScope(*t.coord, t.a->device_id(), Scope(0x54)).ok());
  CHECK_FALSE(*RegistryChangePending(*t.coord));
  for (Replica* d : {t.coord.get(), t.a.get(), t.b.get()}) {
    auto registry = internal::LoadRegistry(d->impl());
    REQUIRE(registry.ok());
    REQUIRE(registry->has_value());
    const RegistryEntry* e = (*registry)->Find(t.a->device_id());
    REQUIRE(e != nullptr);
    CHECK(e->scopes == std::vector<ScopeId>{Scope(0x54)});
    CHECK(e->InScope(Scope(0x54)));
    CHECK_FALSE(e->InScope(Scope(0x55)));
    CHECK(e->InScope(ScopeId{}));
  }
}

}  // namespace
}  // namespace enlace
