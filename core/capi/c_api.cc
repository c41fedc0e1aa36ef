// The C API (enlace/enlace.h) over the C++ core: the one place where C meets
// C++. Every exported function is noexcept, catches everything, checks every
// pointer, and turns a Status into an enlace_code and a malloc'd message: each
// is one OnHandle (a call on a db or sync handle), Checked (no handle) or
// Guard, which do all of that around the body that states what it does.
#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "enlace/enlace.h"
#include "enlace/replica.h"
#include "enlace/status.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/team_schema.h"
#include "enlace/types.h"
#include "enlace/wire.h"
#include "enlace/write.h"

#ifndef ENLACE_VERSION_STRING
#define ENLACE_VERSION_STRING "0.0.0"
#endif

namespace {

using enlace::Replica;
using enlace::Status;
using enlace::StatusCode;

static_assert(static_cast<int>(StatusCode::kInvalidArgument) == ENLACE_INVALID_ARGUMENT);
static_assert(static_cast<int>(StatusCode::kWrongPassphrase) == ENLACE_WRONG_PASSPHRASE);
static_assert(static_cast<int>(StatusCode::kFailedPrecondition) == ENLACE_FAILED_PRECONDITION);
static_assert(static_cast<int>(StatusCode::kInternal) == ENLACE_INTERNAL);

constexpr char kKeyPrefix[] = "enlace-raw-key:";

// ENLACE_OPEN_TEST_KDF is taken only by a build with ENLACE_TEST_HOOKS (the
// CMake option the tests turn on): at Argon2id's cheapest cost a 6-digit PIN
// falls in minutes.
#ifdef ENLACE_TEST_HOOKS
constexpr bool kTestHooks = true;
#else
constexpr bool kTestHooks = false;
#endif

// One open device, shared by its db handle and the sync handles made from it.
struct DbState {
  std::mutex mu;
  std::unique_ptr<Replica> replica;  // null once closed
  std::string dir;
  bool key_made = false;  // opened with a raw key rather than a passphrase
};

char* Dup(std::string_view s) noexcept {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

int Fail(enlace_error* err, int code, std::string_view message) noexcept {
  if (err != nullptr) {
    std::free(err->message);
    err->code = code;
    err->message = Dup(message);
  }
  return code;
}

int Fail(enlace_error* err, const Status& s) noexcept {
  return Fail(err, static_cast<int>(s.code()), s.message());
}

int NullArg(enlace_error* err, const char* what) noexcept {
  return Fail(err, ENLACE_INVALID_ARGUMENT, std::string(what) + " is NULL");
}

// ENLACE_OK for an ok status, else the error.
int Code(enlace_error* err, const Status& s) { return s.ok() ? ENLACE_OK : Fail(err, s); }

// What a function returning R returns on failure: the error code, or NULL
// for a function that returns a pointer.
template <typename R>
R FailureAs([[maybe_unused]] int code) noexcept {
  if constexpr (std::is_pointer_v<R>) {
    return nullptr;
  } else {
    return code;
  }
}

// Runs `body` (returning an enlace_code or a pointer) so that nothing
// escapes: an exception becomes an error and the failure value (FailureAs).
template <typename F>
auto Guard(enlace_error* err, F&& body) noexcept -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return FailureAs<R>(Fail(err, ENLACE_RESOURCE_EXHAUSTED, "out of memory"));
  } catch (const std::exception& e) {
    return FailureAs<R>(Fail(err, ENLACE_INTERNAL, std::string("unexpected error: ") + e.what()));
  } catch (...) {
    return FailureAs<R>(Fail(err, ENLACE_INTERNAL, "unexpected error"));
  }
}

// A pointer argument that must not be NULL, with its name for the error.
struct Required {
  const char* name;
  const void* value;
};

// ENLACE_OK, or the error for the first NULL of `required`.
int CheckRequired(enlace_error* err, std::initializer_list<Required> required) {
  for (const Required& r : required) {
    if (r.value == nullptr) return NullArg(err, r.name);
  }
  return ENLACE_OK;
}

// An exported function without a handle: nothing escapes (Guard), each
// pointer of `required` is checked in order, then `body()` runs.
template <typename F>
auto Checked(enlace_error* err, std::initializer_list<Required> required, F&& body) noexcept
    -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  return Guard(err, [&]() -> R {
    if (int rc = CheckRequired(err, required); rc != ENLACE_OK) return FailureAs<R>(rc);
    return body();
  });
}

char* DupOrFail(enlace_error* err, std::string_view s) {
  char* out = Dup(s);
  if (out == nullptr) Fail(err, ENLACE_RESOURCE_EXHAUSTED, "out of memory");
  return out;
}

std::string_view Bytes(const uint8_t* body, size_t size) {
  return body == nullptr ? std::string_view()
                         : std::string_view(reinterpret_cast<const char*>(body), size);
}

int HubError(enlace_error* err, int http_status, const uint8_t* body, size_t size) {
  return Fail(err, enlace::StatusFromHubResponse(http_status, Bytes(body, size)));
}

}  // namespace

struct enlace_db {
  std::shared_ptr<DbState> state;
};

struct enlace_sync {
  std::mutex mu;
  std::shared_ptr<DbState> db;
  std::unique_ptr<enlace::SyncSession> session;
};

struct enlace_request {
  enlace::OutgoingRequest req;
};

namespace {

// The locks one call on a handle holds, and the replica they guard.
struct Call {
  std::unique_lock<std::mutex> sync_lock;  // a sync handle's own lock, on a sync handle
  std::unique_lock<std::mutex> db_lock;
  Replica* replica = nullptr;
};

int Enter(enlace_db* db, Call& call, enlace_error* err) {
  if (db == nullptr || !db->state) return NullArg(err, "db");
  call.db_lock = std::unique_lock<std::mutex>(db->state->mu, std::try_to_lock);
  if (!call.db_lock.owns_lock()) {
    return Fail(err, ENLACE_BUSY, "the db handle is in use by another thread");
  }
  if (!db->state->replica) return Fail(err, ENLACE_CLOSED, "the db handle was closed");
  call.replica = db->state->replica.get();
  return ENLACE_OK;
}

int Enter(enlace_sync* sync, Call& call, enlace_error* err) {
  if (sync == nullptr || !sync->db) return NullArg(err, "sync");
  call.sync_lock = std::unique_lock<std::mutex>(sync->mu, std::try_to_lock);
  if (!call.sync_lock.owns_lock()) {
    return Fail(err, ENLACE_BUSY, "the sync handle is in use by another thread");
  }
  call.db_lock = std::unique_lock<std::mutex>(sync->db->mu, std::try_to_lock);
  if (!call.db_lock.owns_lock()) {
    return Fail(err, ENLACE_BUSY, "the db of this sync is in use by another thread");
  }
  if (!sync->db->replica || !sync->session) {
    return Fail(err, ENLACE_CLOSED, "the db handle of this sync was closed");
  }
  call.replica = sync->db->replica.get();
  return ENLACE_OK;
}

// The one shape of an exported function on a handle (enlace_db or
// enlace_sync): nothing escapes (Guard); the handle is checked and its lock
// held for the call (Enter); each pointer of `required` is checked, in order;
// then `body(replica)` runs. Returns what `body` returns (an enlace_code, or
// a pointer that is NULL on failure), or the failure value (FailureAs).
template <typename Handle, typename F>
auto OnHandle(Handle* handle, enlace_error* err, std::initializer_list<Required> required,
              F&& body) noexcept -> std::invoke_result_t<F&, Replica&> {
  using R = std::invoke_result_t<F&, Replica&>;
  return Guard(err, [&]() -> R {
    Call call;
    if (int rc = Enter(handle, call, err); rc != ENLACE_OK) return FailureAs<R>(rc);
    if (int rc = CheckRequired(err, required); rc != ENLACE_OK) return FailureAs<R>(rc);
    return body(*call.replica);
  });
}

enlace::ReplicaOptions Options(const char* dir, bool test_kdf) {
  enlace::ReplicaOptions o;
  o.dir = dir;
  o.kdf = test_kdf ? enlace::KdfCost::Minimum() : enlace::KdfCost::Interactive();
  o.hook = enlace::TeamSchemaHook();
  return o;
}

enlace_db* OpenOrCreate(bool create, const char* dir, std::string_view secret, bool test_kdf,
                        bool key_made, enlace_error* err) {
  if (sodium_init() < 0) {
    Fail(err, ENLACE_INTERNAL, "libsodium failed to initialise");
    return nullptr;
  }
  const enlace::ReplicaOptions o = Options(dir, test_kdf);
  auto r = create ? Replica::Create(o, secret) : Replica::Open(o, secret);
  if (!r.ok()) {
    Fail(err, r.status());
    return nullptr;
  }
  auto db = std::make_unique<enlace_db>();
  db->state = std::make_shared<DbState>();
  db->state->replica = std::move(r).value();
  db->state->dir = dir;
  db->state->key_made = key_made;
  return db.release();
}

// The raw key as the vault's secret: high entropy already, so the cheapest
// Argon2id cost is enough.
std::string KeySecret(const uint8_t* key) {
  char hex[2 * 32 + 1];
  sodium_bin2hex(hex, sizeof hex, key, 32);
  std::string out = std::string(kKeyPrefix) + hex;
  sodium_memzero(hex, sizeof hex);
  return out;
}

enlace_db* WithKey(bool create, const char* dir, const uint8_t* key, size_t key_size,
                   enlace_error* err) {
  if (key_size != 32) {
    Fail(err, ENLACE_INVALID_ARGUMENT, "the key must be 32 bytes");
    return nullptr;
  }
  std::string secret = KeySecret(key);
  enlace_db* db = OpenOrCreate(create, dir, secret, /*test_kdf=*/true, /*key_made=*/true, err);
  sodium_memzero(secret.data(), secret.size());
  return db;
}

enlace_request* NewRequest(enlace::OutgoingRequest req) {
  auto out = std::make_unique<enlace_request>();
  out->req = std::move(req);
  return out.release();
}

enlace_request* RequestOrFail(enlace::Result<enlace::OutgoingRequest> r, enlace_error* err) {
  if (!r.ok()) {
    Fail(err, r.status());
    return nullptr;
  }
  return NewRequest(std::move(r).value());
}

enlace::Result<enlace::RecordId> ParseId(const char* id) { return enlace::RecordId::FromHex(id); }

nlohmann::json ValueJson(const std::string& canonical) {
  nlohmann::json v = nlohmann::json::parse(canonical, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? nlohmann::json(canonical) : v;
}

nlohmann::json RecordJson(const enlace::Record& r) {
  nlohmann::json fields = nlohmann::json::object();
  nlohmann::json conflicts = nlohmann::json::array();
  for (const auto& [name, fv] : r.fields) {
    fields[name] = ValueJson(fv.value);
    if (fv.conflict()) conflicts.push_back(name);
  }
  if (r.delete_conflict) conflicts.push_back(enlace::kDeletedField);
  return {{"collection", r.collection},
          {"id", r.id.ToHex()},
          {"deleted", r.deleted},
          {"fields", fields},
          {"conflicts", conflicts}};
}

// A JSON text as compact UTF-8; invalid UTF-8 is replaced rather than thrown.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A hub answer to a request of this db: ENLACE_OK for a 200 with its body,
// else the error (a NULL body with a size, or the hub's refusal).
int HubAnswer(enlace_error* err, int http_status, const uint8_t* body, size_t size) {
  if (body == nullptr && size > 0) return NullArg(err, "body");
  if (http_status != 200) return HubError(err, http_status, body, size);
  return ENLACE_OK;
}

// `op(record id)` on the record `id` names; its Status as an enlace_code.
template <typename F>
int OnRecord(const char* id, enlace_error* err, F&& op) {
  auto rid = ParseId(id);
  if (!rid.ok()) return Fail(err, rid.status());
  return Code(err, op(*rid));
}

enlace_db* WithPassphrase(bool create, const char* dir, const char* passphrase, unsigned flags,
                          enlace_error* err) {
  const bool test_kdf = (flags & ENLACE_OPEN_TEST_KDF) != 0;
  if (test_kdf && !kTestHooks) {
    Fail(err, ENLACE_INVALID_ARGUMENT,
         "ENLACE_OPEN_TEST_KDF is for tests only; this libenlace was built without "
         "ENLACE_TEST_HOOKS and refuses it");
    return nullptr;
  }
  return OpenOrCreate(create, dir, passphrase, test_kdf, false, err);
}

}  // namespace

extern "C" {

// ---- library -------------------------------------------------------------------

const char* enlace_version(void) noexcept { return ENLACE_VERSION_STRING; }

int enlace_protocol_version(void) noexcept { return enlace::kProtocolVersion; }

size_t enlace_key_size(void) noexcept { return 32; }

size_t enlace_error_size(void) noexcept { return sizeof(enlace_error); }

int enlace_init(enlace_error* err) noexcept {
  if (sodium_init() < 0) return Fail(err, ENLACE_INTERNAL, "libsodium failed to initialise");
  return ENLACE_OK;
}

void enlace_free(void* p) noexcept { std::free(p); }

void enlace_error_clear(enlace_error* err) noexcept {
  if (err == nullptr) return;
  std::free(err->message);
  err->message = nullptr;
  err->code = ENLACE_OK;
}

const char* enlace_code_name(int code) noexcept {
  if (code >= ENLACE_OK && code <= ENLACE_INTERNAL) {
    return enlace::StatusCodeName(static_cast<StatusCode>(code));
  }
  if (code == ENLACE_BUSY) return "busy";
  if (code == ENLACE_CLOSED) return "closed";
  return "unknown";
}

// ---- vault ---------------------------------------------------------------------

enlace_db* enlace_db_create(const char* dir, const char* passphrase, unsigned flags,
                            enlace_error* err) noexcept {
  return Checked(err, {{"dir", dir}, {"passphrase", passphrase}},
                 [&] { return WithPassphrase(true, dir, passphrase, flags, err); });
}

enlace_db* enlace_db_open(const char* dir, const char* passphrase, unsigned flags,
                          enlace_error* err) noexcept {
  return Checked(err, {{"dir", dir}, {"passphrase", passphrase}},
                 [&] { return WithPassphrase(false, dir, passphrase, flags, err); });
}

enlace_db* enlace_db_create_with_key(const char* dir, const uint8_t* key, size_t key_size,
                                     enlace_error* err) noexcept {
  return Checked(err, {{"dir", dir}, {"key", key}},
                 [&] { return WithKey(true, dir, key, key_size, err); });
}

enlace_db* enlace_db_open_with_key(const char* dir, const uint8_t* key, size_t key_size,
                                   enlace_error* err) noexcept {
  return Checked(err, {{"dir", dir}, {"key", key}},
                 [&] { return WithKey(false, dir, key, key_size, err); });
}

int enlace_db_close(enlace_db* db, enlace_error* err) noexcept {
  return Guard(err, [&]() -> int {
    if (db == nullptr || !db->state) return NullArg(err, "db");
    std::unique_lock<std::mutex> lock(db->state->mu, std::try_to_lock);
    if (!lock.owns_lock())
      return Fail(err, ENLACE_BUSY, "the db handle is in use by another thread");
    db->state->replica.reset();
    return ENLACE_OK;
  });
}

void enlace_db_free(enlace_db* db) noexcept {
  if (db == nullptr) return;
  try {
    if (db->state) {
      std::lock_guard<std::mutex> lock(db->state->mu);
      db->state->replica.reset();
    }
  } catch (...) {
  }
  delete db;
}

int enlace_db_change_passphrase(enlace_db* db, const char* current, const char* next,
                                enlace_error* err) noexcept {
  return OnHandle(db, err, {{"current", current}, {"next", next}}, [&](Replica& r) -> int {
    if (db->state->key_made) {
      return Fail(err, ENLACE_FAILED_PRECONDITION,
                  "this vault is opened with a raw key; it has no passphrase to change");
    }
    return Code(err, r.ChangePassphrase(current, next));
  });
}

int enlace_db_wipe(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica&) -> int {
    db->state->replica.reset();
    // Overwritten, then deleted (WipeReplicaFiles), like enlace panic.
    if (Status s = enlace::WipeReplicaFiles(db->state->dir); !s.ok()) return Fail(err, s);
    std::error_code ec;
    std::filesystem::remove(db->state->dir, ec);  // only when empty; the app's own files stay
    return ENLACE_OK;
  });
}

char* enlace_db_device_id(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) { return DupOrFail(err, r.device_id().ToHex()); });
}

char* enlace_db_team_id(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) {
    const enlace::TeamId team = r.team();
    return DupOrFail(err, team.IsZero() ? std::string() : team.ToHex());
  });
}

char* enlace_db_status(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) -> char* {
    auto s = enlace::GetSyncStatus(r);
    if (!s.ok()) return Fail(err, s.status()), nullptr;
    const enlace::TeamId team = r.team();
    const nlohmann::json j = {{"device", r.device_id().ToHex()},
                              {"team", team.IsZero() ? std::string() : team.ToHex()},
                              {"pending_writes", s->pending_writes},
                              {"last_sync_ms", s->last_sync_ms},
                              {"cursor", s->cursor},
                              {"clock_offset_ms", s->clock_offset_ms},
                              {"members", s->members.size()}};
    return DupOrFail(err, Dump(j));
  });
}

// ---- requests --------------------------------------------------------------------

const char* enlace_request_method(const enlace_request* req) noexcept {
  return req == nullptr ? nullptr : req->req.method.c_str();
}

const char* enlace_request_path(const enlace_request* req) noexcept {
  return req == nullptr ? nullptr : req->req.path.c_str();
}

size_t enlace_request_header_count(const enlace_request* req) noexcept {
  return req == nullptr ? 0 : req->req.headers.size();
}

const char* enlace_request_header_name(const enlace_request* req, size_t i) noexcept {
  if (req == nullptr || i >= req->req.headers.size()) return nullptr;
  return req->req.headers[i].first.c_str();
}

const char* enlace_request_header_value(const enlace_request* req, size_t i) noexcept {
  if (req == nullptr || i >= req->req.headers.size()) return nullptr;
  return req->req.headers[i].second.c_str();
}

const uint8_t* enlace_request_body(const enlace_request* req, size_t* size) noexcept {
  if (req == nullptr) {
    if (size != nullptr) *size = 0;
    return nullptr;
  }
  if (size != nullptr) *size = req->req.body.size();
  return req->req.body.data();
}

void enlace_request_free(enlace_request* req) noexcept { delete req; }

int enlace_hub_check(int http_status, const uint8_t* body, size_t size,
                     enlace_error* err) noexcept {
  return Guard(err, [&]() -> int {
    if (http_status == 200) return ENLACE_OK;
    return HubError(err, http_status, body, size);
  });
}

// ---- team ------------------------------------------------------------------------

enlace_request* enlace_db_register_team_request(enlace_db* db, const char* team_name,
                                                const char* device_name,
                                                const char* bootstrap_token,
                                                enlace_error* err) noexcept {
  return OnHandle(
      db, err,
      {{"team_name", team_name},
       {"device_name", device_name},
       {"bootstrap_token", bootstrap_token}},
      [&](Replica& r) -> enlace_request* {
        if (r.team().IsZero()) {
          auto team = enlace::CreateTeam(r);
          if (!team.ok()) return Fail(err, team.status()), nullptr;
        }
        return RequestOrFail(
            enlace::BuildRegisterTeamRequest(r, team_name, device_name, bootstrap_token), err);
      });
}

int enlace_db_register_team_response(enlace_db* db, int http_status, const uint8_t* body,
                                     size_t size, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) -> int {
    if (int rc = HubAnswer(err, http_status, body, size); rc != ENLACE_OK) return rc;
    return Code(err, enlace::HandleMembersResponse(r, {body, size}));
  });
}

enlace_request* enlace_db_invite_request(enlace_db* db, const char* hub_url, const char* tls_pin,
                                         int role, uint64_t valid_for_ms, char** code,
                                         enlace_error* err) noexcept {
  return OnHandle(db, err, {{"hub_url", hub_url}, {"code", code}},
                  [&](Replica& r) -> enlace_request* {
                    if (role != ENLACE_ROLE_COORDINATOR && role != ENLACE_ROLE_FIELD) {
                      Fail(err, ENLACE_INVALID_ARGUMENT,
                           "role must be ENLACE_ROLE_COORDINATOR or ENLACE_ROLE_FIELD");
                      return nullptr;
                    }
                    auto p = enlace::PrepareInvite(r, hub_url, tls_pin == nullptr ? "" : tls_pin,
                                                   static_cast<enlace::Role>(role), valid_for_ms);
                    if (!p.ok()) return Fail(err, p.status()), nullptr;
                    char* c = DupOrFail(err, p->code);
                    if (c == nullptr) return nullptr;
                    enlace_request* req = NewRequest(std::move(p->request));
                    *code = c;
                    return req;
                  });
}

enlace_request* enlace_db_join_request(enlace_db* db, const char* code, const char* device_name,
                                       enlace_error* err) noexcept {
  return OnHandle(db, err, {{"code", code}, {"device_name", device_name}}, [&](Replica& r) {
    return RequestOrFail(enlace::BuildJoinRequest(r, code, device_name), err);
  });
}

int enlace_db_join_response(enlace_db* db, const char* code, int http_status, const uint8_t* body,
                            size_t size, enlace_error* err) noexcept {
  return OnHandle(db, err, {{"code", code}}, [&](Replica& r) -> int {
    if (int rc = HubAnswer(err, http_status, body, size); rc != ENLACE_OK) return rc;
    return Code(err, enlace::HandleJoinResponse(r, code, {body, size}));
  });
}

char* enlace_invite_hub_url(const char* code, enlace_error* err) noexcept {
  return Checked(err, {{"code", code}}, [&]() -> char* {
    auto info = enlace::ParseInviteCode(code);
    if (!info.ok()) return Fail(err, info.status()), nullptr;
    return DupOrFail(err, info->hub_url);
  });
}

// ---- records -----------------------------------------------------------------------

char* enlace_db_put(enlace_db* db, const char* collection, const char* id, const char* fields_json,
                    enlace_error* err) noexcept {
  return OnHandle(db, err, {{"collection", collection}, {"fields_json", fields_json}},
                  [&](Replica& r) -> char* {
                    std::optional<enlace::RecordId> rid;
                    if (id != nullptr && *id != '\0') {
                      auto parsed = ParseId(id);
                      if (!parsed.ok()) return Fail(err, parsed.status()), nullptr;
                      rid = *parsed;
                    }
                    const nlohmann::json j = nlohmann::json::parse(fields_json, nullptr, false);
                    if (j.is_discarded() || !j.is_object()) {
                      Fail(err, ENLACE_INVALID_ARGUMENT, "fields_json is not a JSON object");
                      return nullptr;
                    }
                    enlace::Fields fields;
                    for (const auto& [name, value] : j.items()) fields[name] = Dump(value);
                    auto put = r.Put(collection, rid, fields);
                    if (!put.ok()) return Fail(err, put.status()), nullptr;
                    return DupOrFail(err, put->ToHex());
                  });
}

char* enlace_db_get(enlace_db* db, const char* collection, const char* id,
                    enlace_error* err) noexcept {
  return OnHandle(db, err, {{"collection", collection}, {"id", id}}, [&](Replica& r) -> char* {
    auto rid = ParseId(id);
    if (!rid.ok()) return Fail(err, rid.status()), nullptr;
    auto rec = r.Get(collection, *rid);
    if (!rec.ok()) return Fail(err, rec.status()), nullptr;
    return DupOrFail(err, Dump(RecordJson(*rec)));
  });
}

char* enlace_db_list(enlace_db* db, const char* collection, enlace_error* err) noexcept {
  return OnHandle(db, err, {{"collection", collection}}, [&](Replica& r) -> char* {
    auto recs = r.List(collection);
    if (!recs.ok()) return Fail(err, recs.status()), nullptr;
    nlohmann::json out = nlohmann::json::array();
    for (const enlace::Record& rec : *recs) out.push_back(RecordJson(rec));
    return DupOrFail(err, Dump(out));
  });
}

int enlace_db_delete(enlace_db* db, const char* collection, const char* id,
                     enlace_error* err) noexcept {
  return OnHandle(db, err, {{"collection", collection}, {"id", id}}, [&](Replica& r) {
    return OnRecord(id, err,
                    [&](const enlace::RecordId& rid) { return r.Delete(collection, rid); });
  });
}

int enlace_db_erase(enlace_db* db, const char* collection, const char* id,
                    enlace_error* err) noexcept {
  return OnHandle(db, err, {{"collection", collection}, {"id", id}}, [&](Replica& r) {
    return OnRecord(id, err, [&](const enlace::RecordId& rid) { return r.Erase(collection, rid); });
  });
}

char* enlace_db_conflicts(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) -> char* {
    auto cs = r.Conflicts();
    if (!cs.ok()) return Fail(err, cs.status()), nullptr;
    nlohmann::json out = nlohmann::json::array();
    for (const enlace::Conflict& c : *cs) {
      nlohmann::json values = nlohmann::json::array();
      for (const enlace::SiblingValue& v : c.siblings) {
        values.push_back({{"value", ValueJson(v.value)}, {"device", v.dot.device.ToHex()}});
      }
      out.push_back({{"collection", c.collection},
                     {"id", c.id.ToHex()},
                     {"field", c.field},
                     {"shown", ValueJson(c.shown)},
                     {"values", values}});
    }
    return DupOrFail(err, Dump(out));
  });
}

int enlace_db_resolve(enlace_db* db, const char* collection, const char* id, const char* field,
                      const char* value_json, enlace_error* err) noexcept {
  return OnHandle(
      db, err,
      {{"collection", collection}, {"id", id}, {"field", field}, {"value_json", value_json}},
      [&](Replica& r) {
        return OnRecord(id, err, [&](const enlace::RecordId& rid) {
          return r.Resolve(collection, rid, field, value_json);
        });
      });
}

// ---- sync --------------------------------------------------------------------------

enlace_sync* enlace_sync_begin(enlace_db* db, enlace_error* err) noexcept {
  return OnHandle(db, err, {}, [&](Replica& r) -> enlace_sync* {
    if (r.team().IsZero()) {
      Fail(err, ENLACE_FAILED_PRECONDITION,
           "this device has no team yet: register a team or join one first");
      return nullptr;
    }
    auto sync = std::make_unique<enlace_sync>();
    sync->db = db->state;
    sync->session = std::make_unique<enlace::SyncSession>(r);
    return sync.release();
  });
}

enlace_request* enlace_sync_next_request(enlace_sync* sync, enlace_error* err) noexcept {
  return OnHandle(sync, err, {},
                  [&](Replica&) { return RequestOrFail(sync->session->NextRequest(), err); });
}

int enlace_sync_handle_response(enlace_sync* sync, int http_status, const uint8_t* body,
                                size_t size, const char* hub_time_header, int* more,
                                enlace_error* err) noexcept {
  return OnHandle(sync, err, {{"more", more}}, [&](Replica& r) -> int {
    *more = 0;
    if (body == nullptr && size > 0) return NullArg(err, "body");
    if (hub_time_header != nullptr && *hub_time_header != '\0') {
      enlace::FollowHubClock(r, hub_time_header);
    }
    if (http_status != 200) return HubError(err, http_status, body, size);
    auto h = sync->session->HandleResponse({body, size});
    if (!h.ok()) return Fail(err, h.status());
    *more = *h ? 1 : 0;
    return ENLACE_OK;
  });
}

char* enlace_sync_progress(enlace_sync* sync, enlace_error* err) noexcept {
  return Guard(err, [&]() -> char* {
    if (sync == nullptr || !sync->session) return NullArg(err, "sync"), nullptr;
    std::unique_lock<std::mutex> lock(sync->mu, std::try_to_lock);
    if (!lock.owns_lock()) {
      Fail(err, ENLACE_BUSY, "the sync handle is in use by another thread");
      return nullptr;
    }
    const enlace::SyncProgress& p = sync->session->progress();
    const nlohmann::json j = {{"rounds", p.rounds},
                              {"sent", p.sent},
                              {"received", p.received},
                              {"ignored", p.ignored},
                              {"refused", p.refused},
                              {"restamped", p.restamped},
                              {"last_refusal", p.last_refusal},
                              {"missing", p.missing}};
    return DupOrFail(err, Dump(j));
  });
}

void enlace_sync_free(enlace_sync* sync) noexcept { delete sync; }

}  // extern "C"
