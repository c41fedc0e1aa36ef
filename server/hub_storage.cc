#include "hub_storage.h"

#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "crypto/crypto.h"
#include "enlace/registry.h"
#include "hub_restore.h"
#include "storage/sqlite.h"

namespace enlace::hub {

using internal::Db;
using internal::FromBlob;
using internal::Stmt;
using internal::Transaction;

namespace {

constexpr internal::Migration kMigrations[] = {
    {R"sql(
CREATE TABLE teams(
  team BLOB PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL,
  members_version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE devices(
  device BLOB PRIMARY KEY, team BLOB NOT NULL REFERENCES teams(team),
  name TEXT NOT NULL, role INTEGER NOT NULL, sign_pk BLOB NOT NULL, box_pk BLOB NOT NULL,
  joined_ms INTEGER NOT NULL, revoked_ms INTEGER) WITHOUT ROWID;
CREATE INDEX devices_by_team ON devices(team);
CREATE TABLE writes(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  team BLOB NOT NULL, device BLOB NOT NULL, counter INTEGER NOT NULL,
  encoded BLOB NOT NULL, received_ms INTEGER NOT NULL,
  UNIQUE(device, counter));
CREATE INDEX writes_by_team ON writes(team, seq);
CREATE TABLE bootstrap_tokens(
  token_hash BLOB PRIMARY KEY, created_ms INTEGER NOT NULL, used_ms INTEGER) WITHOUT ROWID;
CREATE TABLE invites(
  invite BLOB PRIMARY KEY, team BLOB NOT NULL, created_by BLOB NOT NULL, role INTEGER NOT NULL,
  verifier BLOB NOT NULL, envelope BLOB NOT NULL, created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL, used_ms INTEGER, used_by BLOB) WITHOUT ROWID;
CREATE TABLE nonces(
  device BLOB NOT NULL, nonce BLOB NOT NULL, seen_ms INTEGER NOT NULL,
  PRIMARY KEY(device, nonce)) WITHOUT ROWID;
CREATE INDEX nonces_by_time ON nonces(seen_ms);
)sql"},
    // 2: published reports (aggregates only) and read-only viewer tokens.
    {R"sql(
CREATE TABLE reports(
  id BLOB NOT NULL UNIQUE, team BLOB NOT NULL REFERENCES teams(team),
  publisher BLOB NOT NULL, published_at_ms INTEGER NOT NULL, title TEXT NOT NULL,
  from_date TEXT NOT NULL, to_date TEXT NOT NULL, k INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX reports_by_team ON reports(team, published_at_ms);
CREATE TABLE viewer_tokens(
  id BLOB PRIMARY KEY, team BLOB NOT NULL REFERENCES teams(team), hash BLOB NOT NULL,
  label TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE hub_keys(name TEXT PRIMARY KEY, key BLOB NOT NULL) WITHOUT ROWID;
)sql"},
    // 3: each write's record (clear metadata), for a record's history
    // (/v1/history). Rows stored before are filled on open (BackfillRecords).
    {R"sql(
ALTER TABLE writes ADD COLUMN collection TEXT;
ALTER TABLE writes ADD COLUMN record BLOB;
CREATE INDEX writes_by_record ON writes(team, collection, record, seq);
)sql"},
    // 4: the signed device registry (registry.h): every registry version,
    // the devices admitted by invite, invite grants, sealed team-key grants,
    // and what they make of each device.
    {R"sql(
CREATE TABLE registries(
  team BLOB NOT NULL, version INTEGER NOT NULL, encoded BLOB NOT NULL, stored_ms INTEGER NOT NULL,
  PRIMARY KEY(team, version)) WITHOUT ROWID;
CREATE TABLE admissions(
  device BLOB PRIMARY KEY, team BLOB NOT NULL, encoded BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX admissions_by_team ON admissions(team);
CREATE TABLE key_grants(
  recipient BLOB NOT NULL, version INTEGER NOT NULL, team BLOB NOT NULL, encoded BLOB NOT NULL,
  PRIMARY KEY(recipient, version)) WITHOUT ROWID;
ALTER TABLE invites ADD COLUMN grant_doc BLOB;
ALTER TABLE devices ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
)sql"},
    // 5: a device whose revocation a coordinator has asked for: the hub
    // takes no more of its writes, so the revocation's cut-off holds.
    {R"sql(
ALTER TABLE devices ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;
)sql"},
    // 6: the identity of the log (SyncResponse::log_id), new at every
    // restore (hub_restore.h).
    {R"sql(
CREATE TABLE hub_meta(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
)sql",
     &SetNewLogId},
    // 7: bootstrap tokens expire (NULL: made before, 72 h after created_ms).
    {R"sql(
ALTER TABLE bootstrap_tokens ADD COLUMN expires_ms INTEGER;
)sql"},
    // 8: scopes (docs/PROTOCOL.md §6.12): each write's scope (clear
    // metadata; rows before are in the team's scope), and the scopes the
    // team's newest registry assigns each device.
    {R"sql(
ALTER TABLE writes ADD COLUMN scope BLOB NOT NULL DEFAULT x'00000000000000000000000000000000';
CREATE TABLE device_scopes(
  device BLOB NOT NULL, scope BLOB NOT NULL, PRIMARY KEY(device, scope)) WITHOUT ROWID;
)sql"},
};

constexpr char kViewerTokenPrefix[] = "vt-";
constexpr size_t kViewerIdBytes = 16;
constexpr size_t kViewerSecretBytes = 32;

// Splits "vt-" + base64url(id[16] || secret[32]); false when malformed.
bool ParseViewerToken(std::string_view token, std::array<uint8_t, kViewerIdBytes>& id,
                      std::array<uint8_t, kViewerSecretBytes>& secret) {
  const std::string_view prefix(kViewerTokenPrefix);
  if (token.size() > 128 || token.substr(0, prefix.size()) != prefix) return false;
  token.remove_prefix(prefix.size());
  std::array<uint8_t, kViewerIdBytes + kViewerSecretBytes> raw{};
  size_t len = 0;
  if (sodium_base642bin(raw.data(), raw.size(), token.data(), token.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      len != raw.size()) {
    internal::Wipe(raw);
    return false;
  }
  std::memcpy(id.data(), raw.data(), id.size());
  std::memcpy(secret.data(), raw.data() + id.size(), secret.size());
  internal::Wipe(raw);
  return true;
}

class SqliteHubStorage final : public HubStorage {
 public:
  explicit SqliteHubStorage(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status Migrate() {
    ENLACE_RETURN_IF_ERROR(MigrateHubDatabase(*db_));
    ENLACE_ASSIGN_OR_RETURN(Stmt id, db_->Prepare("SELECT value FROM hub_meta "
                                                  "WHERE name = 'log_id'"));
    ENLACE_ASSIGN_OR_RETURN(bool row, id.Step());
    if (!row || id.ColumnBlob(0).size() != log_id_.size()) {
      return Status::Corruption("hub.db has no log identity");
    }
    std::memcpy(log_id_.data(), id.ColumnBlob(0).data(), log_id_.size());
    return BackfillRecords();
  }

  Status AddBootstrapToken(const TokenHash& token_hash, uint64_t now_ms,
                           uint64_t expires_ms) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT INTO bootstrap_tokens(token_hash, "
                                                  "created_ms, expires_ms) VALUES(?, ?, ?)"));
    return st.BindBlob(1, token_hash).BindU64(2, now_ms).BindU64(3, expires_ms).Exec();
  }

  Result<MembersResponse> RegisterTeam(const RegisterTeamRequest& req, const DeviceId& device,
                                       const TokenHash& token_hash, uint64_t now_ms) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ENLACE_ASSIGN_OR_RETURN(
        Stmt use, db_->Prepare("UPDATE bootstrap_tokens SET used_ms = ?1 WHERE token_hash = ?2 "
                               "AND used_ms IS NULL AND coalesce(expires_ms, created_ms + ?3) "
                               ">= ?1"));
    ENLACE_RETURN_IF_ERROR(
        use.BindU64(1, now_ms).BindBlob(2, token_hash).BindU64(3, kLegacyBootstrapTokenMs).Exec());
    ENLACE_ASSIGN_OR_RETURN(auto existing, FindDeviceLocked(device));
    if (db_->changes() != 1) {
      // A retry after a lost answer: the same device, key and team, with the
      // token it already used, gets the answer again.
      if (existing && existing->team == req.team &&
          existing->member.signing_key == req.signing_key && TokenUsedBy(token_hash)) {
        ENLACE_ASSIGN_OR_RETURN(MembersResponse again, MembersLocked(req.team, 0));
        return again;
      }
      return Status::PermissionDenied(
          "the bootstrap token is unknown, expired or was already used; ask the hub's operator "
          "for a new one (enlace-hub admin bootstrap-token)");
    }
    if (existing) return Status::AlreadyExists("this device is already registered");
    // The team's first registry: the registering device alone, signed by it.
    auto genesis = DecodeRegistry(req.registry);
    if (!genesis.ok()) return Status::InvalidArgument("the team's registry is malformed");
    ENLACE_RETURN_IF_ERROR(CheckGenesis(*genesis));
    if (genesis->team != req.team || genesis->entries[0].device != device ||
        genesis->entries[0].signing_key != req.signing_key ||
        genesis->entries[0].encryption_key != req.encryption_key) {
      return Status::PermissionDenied("the team's first registry must list the registering device");
    }
    ENLACE_ASSIGN_OR_RETURN(Stmt team, db_->Prepare("INSERT INTO teams(team, name, created_ms, "
                                                    "members_version) VALUES(?, ?, ?, 0)"));
    Status s = team.BindBlob(1, req.team.bytes).Bind(2, req.team_name).BindU64(3, now_ms).Exec();
    if (s.code() == StatusCode::kAlreadyExists) return Status::AlreadyExists("the team exists");
    ENLACE_RETURN_IF_ERROR(s);
    Member m;
    m.device = device;
    m.signing_key = req.signing_key;
    m.encryption_key = req.encryption_key;
    m.name = req.device_name;
    m.role = Role::kCoordinator;
    ENLACE_RETURN_IF_ERROR(InsertDevice(req.team, m, now_ms));
    ENLACE_RETURN_IF_ERROR(StoreRegistryLocked(*genesis, req.registry, now_ms));
    ENLACE_ASSIGN_OR_RETURN(MembersResponse members, MembersLocked(req.team, 0));
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    return members;
  }

  Result<std::optional<DeviceRecord>> FindDevice(const DeviceId& device) override {
    {
      // A hit needs no database, so it does not wait for a group commit.
      std::lock_guard cache(cache_mu_);
      if (auto it = device_cache_.find(device); it != device_cache_.end()) {
        return std::optional<DeviceRecord>(it->second);
      }
    }
    // Filled only here, outside any transaction, under mu_; every change to
    // the devices table (InsertDevice, RecomputeLocked) empties the cache
    // under mu_ before its commit, so no fill can read the state before a
    // change once the cache was emptied for it, and a rolled-back change
    // leaves it empty, not stale.
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto found, FindDeviceLocked(device));
    if (found) {
      std::lock_guard cache(cache_mu_);
      if (device_cache_.size() >= kDeviceCacheLimit) device_cache_.clear();
      device_cache_.emplace(device, *found);
    }
    return found;
  }

  Status RememberNonce(const DeviceId& device, const std::array<uint8_t, 16>& nonce,
                       uint64_t now_ms, uint64_t forget_before_ms) override {
    std::lock_guard lock(mu_);
    return RememberNonceLocked(device, nonce, now_ms, forget_before_ms);
  }

  Status RememberNonceLocked(const DeviceId& device, const std::array<uint8_t, 16>& nonce,
                             uint64_t now_ms, uint64_t forget_before_ms) {
    ENLACE_ASSIGN_OR_RETURN(Stmt prune, db_->Prepare("DELETE FROM nonces WHERE seen_ms < ?"));
    ENLACE_RETURN_IF_ERROR(prune.BindU64(1, forget_before_ms).Exec());
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT INTO nonces(device, nonce, seen_ms) "
                                                  "VALUES(?, ?, ?)"));
    Status s = st.BindBlob(1, device.bytes).BindBlob(2, nonce).BindU64(3, now_ms).Exec();
    if (s.code() == StatusCode::kAlreadyExists) return Status::AlreadyExists("replayed request");
    return s;
  }

  Status CreateInvite(const DeviceRecord& by, const CreateInviteRequest& req,
                      uint64_t now_ms) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st,
        db_->Prepare(
            "INSERT INTO invites(invite, team, created_by, role, verifier, "
            "envelope, created_ms, expires_ms, grant_doc) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    Status s = st.BindBlob(1, req.invite_id)
                   .BindBlob(2, by.team.bytes)
                   .BindBlob(3, by.member.device.bytes)
                   .Bind(4, static_cast<int64_t>(req.role))
                   .BindBlob(5, req.verifier)
                   .BindBlob(6, req.envelope)
                   .BindU64(7, now_ms)
                   .BindU64(8, req.expires_ms)
                   .BindBlob(9, req.grant)
                   .Exec();
    if (s.code() == StatusCode::kAlreadyExists) return Status::AlreadyExists("invite id in use");
    return s;
  }

  Result<JoinResponse> RedeemInvite(const JoinRequest& req, const DeviceId& device,
                                    uint64_t now_ms) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT team, role, verifier, envelope, "
                                                  "expires_ms, used_ms, grant_doc FROM invites "
                                                  "WHERE invite = ?"));
    st.BindBlob(1, req.invite_id);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    const Status refused = Status::PermissionDenied("the invite code is unknown, used or expired");
    if (!row) return refused;
    const auto verifier = st.ColumnBlob(2);
    if (!internal::ConstantTimeEquals(verifier, req.verifier)) return refused;
    if (!st.ColumnIsNull(5) || static_cast<uint64_t>(st.ColumnInt(4)) < now_ms) return refused;
    JoinResponse resp;
    resp.team = TeamId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))};
    resp.role = st.ColumnInt(1) == 1 ? Role::kCoordinator : Role::kField;
    const auto env = st.ColumnBlob(3);
    resp.envelope.assign(env.begin(), env.end());
    Admission admission;
    {
      auto grant = DecodeInviteGrant(st.ColumnBlob(6));
      if (!grant.ok()) return refused;
      admission.grant = std::move(*grant);
    }
    st.Reset();
    admission.device = device;
    admission.signing_key = req.signing_key;
    admission.encryption_key = req.encryption_key;
    admission.name = req.device_name;
    admission.binding = req.binding;
    ENLACE_ASSIGN_OR_RETURN(auto registry, LatestRegistryLocked(resp.team));
    if (!registry) return Status::Internal("the team has no registry");
    ENLACE_RETURN_IF_ERROR(CheckAdmission(admission, *registry));

    ENLACE_ASSIGN_OR_RETURN(auto existing, FindDeviceLocked(device));
    if (existing) return Status::AlreadyExists("this device is already registered");
    ENLACE_ASSIGN_OR_RETURN(Stmt use, db_->Prepare("UPDATE invites SET used_ms = ?, used_by = ? "
                                                   "WHERE invite = ?"));
    ENLACE_RETURN_IF_ERROR(
        use.BindU64(1, now_ms).BindBlob(2, device.bytes).BindBlob(3, req.invite_id).Exec());
    Member m;
    m.device = device;
    m.signing_key = req.signing_key;
    m.encryption_key = req.encryption_key;
    m.name = req.device_name;
    m.role = resp.role;
    ENLACE_RETURN_IF_ERROR(InsertDevice(resp.team, m, now_ms));
    ENLACE_ASSIGN_OR_RETURN(Stmt keep, db_->Prepare("INSERT INTO admissions(device, team, encoded) "
                                                    "VALUES(?, ?, ?)"));
    ENLACE_RETURN_IF_ERROR(keep.BindBlob(1, device.bytes)
                               .BindBlob(2, resp.team.bytes)
                               .BindBlob(3, EncodeAdmission(admission))
                               .Exec());
    ENLACE_RETURN_IF_ERROR(RecomputeLocked(resp.team));
    ENLACE_ASSIGN_OR_RETURN(MembersResponse members, MembersLocked(resp.team, 0));
    resp.trust = std::move(members.trust);
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    return resp;
  }

  // Group commit: concurrent syncs share one transaction and one fsync.
  // Each request waits in `group_`; the first to find no group committing
  // leads: it runs every waiting request in a savepoint of its own (a
  // refused request rolls back alone), commits once, and hands each its
  // answer. No answer leaves before the commit that makes it durable.
  Result<SyncResponse> Sync(const DeviceRecord& device, const std::vector<IncomingWrite>& writes,
                            const SyncRequest& req, size_t max_bytes, uint64_t now_ms,
                            const RequestNonce* nonce) override {
    SyncJob job{device, writes, req, max_bytes, now_ms, nonce, Status::Internal("not run")};
    std::unique_lock wait(group_mu_);
    group_.push_back(&job);
    group_cv_.wait(wait, [&] { return job.done || !group_leader_; });
    if (job.done) return std::move(job.result);
    group_leader_ = true;
    std::vector<SyncJob*> batch;
    batch.swap(group_);
    wait.unlock();
    RunSyncGroup(batch);
    wait.lock();
    group_leader_ = false;
    for (SyncJob* j : batch) j->done = true;
    group_cv_.notify_all();
    return std::move(job.result);
  }

  struct SyncJob {
    const DeviceRecord& device;
    const std::vector<IncomingWrite>& writes;
    const SyncRequest& req;
    size_t max_bytes;
    uint64_t now_ms;
    const RequestNonce* nonce;
    Result<SyncResponse> result;
    bool done = false;  // guarded by group_mu_
  };

  void RunSyncGroup(const std::vector<SyncJob*>& batch) {
    std::lock_guard lock(mu_);
    auto tx = Transaction::Begin(*db_);
    if (!tx.ok()) {
      for (SyncJob* j : batch) j->result = tx.status();
      return;
    }
    if (batch.size() == 1) {
      // Alone: no savepoint (its statement journal would copy every page
      // the request changes); a refusal rolls the transaction back.
      SyncJob& j = *batch.front();
      j.result = SyncLocked(j);
      if (j.result.ok()) {
        if (Status s = (*tx)->Commit(); !s.ok()) j.result = s;
      }
      return;
    }
    for (SyncJob* j : batch) {
      auto savepoint = Transaction::Begin(*db_);
      if (!savepoint.ok()) {
        j->result = savepoint.status();
        continue;
      }
      j->result = SyncLocked(*j);
      if (j->result.ok()) {
        if (Status s = (*savepoint)->Commit(); !s.ok()) j->result = s;
      }
      // Otherwise the savepoint rolls back this request's changes alone.
    }
    if (Status s = (*tx)->Commit(); !s.ok()) {
      for (SyncJob* j : batch) j->result = s;
    }
  }

  Result<SyncResponse> SyncLocked(const SyncJob& job) {
    const DeviceRecord& device = job.device;
    const std::vector<IncomingWrite>& writes = job.writes;
    const SyncRequest& req = job.req;
    const size_t max_bytes = job.max_bytes;
    const uint64_t now_ms = job.now_ms;
    const RequestNonce* nonce = job.nonce;
    const uint64_t cursor = req.cursor;
    if (nonce != nullptr) {
      // First, so that a replay stores nothing (the transaction rolls back).
      Status s = RememberNonceLocked(nonce->device, nonce->nonce, now_ms, nonce->forget_before_ms);
      if (s.code() == StatusCode::kAlreadyExists)
        return Status::Unauthenticated("replayed request");
      ENLACE_RETURN_IF_ERROR(s);
    }
    SyncResponse resp;
    const bool coordinator = device.member.role == Role::kCoordinator;
    for (const Bytes& relayed : req.relay_registries) {
      // A chain the hub lacks (restored from a backup), checked link by
      // link as if its signers sent it; the first link it cannot take ends
      // it, and the device learns from registry_version where the hub stands.
      auto r = DecodeRegistry(relayed);
      if (!r.ok() || r->team != device.team) break;
      std::vector<RevocationCutoff> ignored;
      ENLACE_ASSIGN_OR_RETURN(std::string refused,
                              AcceptRegistryLocked(device, relayed, now_ms, &ignored));
      if (!refused.empty()) break;
    }
    if (!req.registry.empty()) {
      ENLACE_ASSIGN_OR_RETURN(resp.registry_refused,
                              AcceptRegistryLocked(device, req.registry, now_ms, &resp.cutoffs));
    }
    if (!req.admissions.empty()) {
      ENLACE_RETURN_IF_ERROR(AcceptAdmissionsLocked(device.team, req.admissions, now_ms));
    }
    if (!req.key_grants.empty()) {
      ENLACE_RETURN_IF_ERROR(AcceptKeyGrantsLocked(device, coordinator, req.key_grants));
    }
    {
      // Usually unchanged: then no page is written.
      ENLACE_ASSIGN_OR_RETURN(Stmt kv, db_->Prepare("UPDATE devices SET key_version = ?1 "
                                                    "WHERE device = ?2 AND key_version != ?1"));
      ENLACE_RETURN_IF_ERROR(
          kv.BindU64(1, req.key_version).BindBlob(2, device.member.device.bytes).Exec());
    }
    uint32_t newest_own = 0;  // the newest key version this device holds or was granted
    if (!writes.empty()) {
      ENLACE_ASSIGN_OR_RETURN(Stmt frozen, db_->Prepare("SELECT frozen FROM devices "
                                                        "WHERE device = ?"));
      frozen.BindBlob(1, device.member.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool frow, frozen.Step());
      if (frow && frozen.ColumnInt(0) != 0) {
        return Status::PermissionDenied(
            "a coordinator is revoking this device: the hub takes no more of its writes");
      }
      // A write under a key version no coordinator has granted would stop
      // every device's pull before it (nobody can open it).
      ENLACE_ASSIGN_OR_RETURN(const uint64_t granted, GrantedKeyVersionLocked(device.team));
      for (const auto& w : writes) {
        if (w.key_version == 0 || w.key_version > granted) {
          return Status::InvalidArgument("a write is sealed under key version " +
                                         std::to_string(w.key_version) +
                                         ", which no coordinator of this team has granted (the "
                                         "newest is " +
                                         std::to_string(granted) + ")");
        }
      }
      ENLACE_ASSIGN_OR_RETURN(Stmt own, db_->Prepare("SELECT coalesce(max(version), 0) FROM "
                                                     "key_grants WHERE recipient = ?"));
      own.BindBlob(1, device.member.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool orow, own.Step());
      newest_own = static_cast<uint32_t>(
          std::max<uint64_t>(req.key_version, orow ? static_cast<uint64_t>(own.ColumnInt(0)) : 0));
    }
    // Keyed by dot: a retried batch stores nothing twice. (Not INSERT OR
    // IGNORE: that would burn an AUTOINCREMENT sequence number per ignored row.)
    ENLACE_ASSIGN_OR_RETURN(
        Stmt ins, db_->Prepare("INSERT INTO writes(team, device, counter, encoded, received_ms, "
                               "collection, record, scope) "
                               "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 "
                               "FROM writes WHERE device = ?2 AND counter = ?3)"));
    ENLACE_ASSIGN_OR_RETURN(Stmt existing, db_->Prepare("SELECT encoded FROM writes "
                                                        "WHERE device = ? AND counter = ?"));
    ENLACE_ASSIGN_OR_RETURN(Stmt highest, db_->Prepare("SELECT coalesce(max(counter), 0) FROM "
                                                       "writes WHERE device = ?"));
    uint64_t next_counter = 1;  // the one number above those stored this device may push
    if (!writes.empty()) {
      highest.BindBlob(1, device.member.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool hrow, highest.Step());
      next_counter = (hrow ? static_cast<uint64_t>(highest.ColumnInt(0)) : 0) + 1;
      highest.Reset();
    }
    // A coordinator holds every scope, a field device the team's and those
    // assigned to it (§6.12): it reads and writes those only.
    std::set<ScopeId> assigned;
    if (!coordinator) {
      ENLACE_ASSIGN_OR_RETURN(assigned, ScopesOfLocked(device.member.device));
    }
    const auto holds = [&](const ScopeId& scope) {
      return coordinator || scope.IsZero() || assigned.contains(scope);
    };
    for (const auto& w : writes) {
      // A void (no data) keeps its number's place in any scope.
      if (!w.is_void && !holds(w.scope)) {
        // Written before a coordinator took the scope back, or never
        // assigned: neither it nor what follows is stored; the answer's
        // trust update tells the device, which forgets the scope (§6.12).
        resp.out_of_scope = w.dot.counter;
        break;
      }
      if (w.key_version < newest_own) {
        // Sealed under a key older than one granted to this device (made
        // before its grant arrived, maybe readable by a revoked device):
        // neither it nor what follows is stored; the device seals them again.
        resp.reseal_below = newest_own;
        break;
      }
      // A retried write is stored once; a reused write number with other
      // content (a device restored from an old backup) is refused, never
      // acknowledged and dropped.
      existing.BindBlob(1, w.dot.device.bytes).BindU64(2, w.dot.counter);
      ENLACE_ASSIGN_OR_RETURN(bool found, existing.Step());
      const bool same = found && std::ranges::equal(existing.ColumnBlob(0), w.encoded);
      existing.Reset();
      if (found && !same) {
        return Status::FailedPrecondition(
            "write number " + std::to_string(w.dot.counter) +
            " of this device was already used for other content; the device was probably "
            "restored from an old backup and must rejoin the team");
      }
      if (found) continue;
      if (w.dot.counter > next_counter) {
        // A number above one this device never sent: neither it nor what
        // follows is stored, so that this device's numbers on the hub have
        // no gap a reader could not tell from a withheld write (§6.11). The
        // answer's acked_up_to tells the device where to resume.
        break;
      }
      if (w.dot.counter == next_counter) ++next_counter;
      ENLACE_ASSIGN_OR_RETURN(const RowKey row_key, RecordOf(w));
      ENLACE_RETURN_IF_ERROR(ins.BindBlob(1, device.team.bytes)
                                 .BindBlob(2, w.dot.device.bytes)
                                 .BindU64(3, w.dot.counter)
                                 .BindBlob(4, w.encoded)
                                 .BindU64(5, now_ms)
                                 .Bind(6, row_key.collection)
                                 .BindBlob(7, row_key.record.bytes)
                                 .BindBlob(8, row_key.scope.bytes)
                                 .Exec());
    }
    resp.hub_time_ms = now_ms;
    ENLACE_ASSIGN_OR_RETURN(Stmt acked, db_->Prepare("SELECT coalesce(max(counter), 0) FROM writes "
                                                     "WHERE device = ?"));
    acked.BindBlob(1, device.member.device.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool arow, acked.Step());
    resp.acked_up_to = arow ? static_cast<uint64_t>(acked.ColumnInt(0)) : 0;
    acked.Reset();
    resp.log_id = log_id_;
    {
      ENLACE_ASSIGN_OR_RETURN(Stmt end, db_->Prepare("SELECT coalesce(max(seq), 0) FROM writes"));
      ENLACE_ASSIGN_OR_RETURN(bool erow, end.Step());
      resp.log_end = erow ? static_cast<uint64_t>(end.ColumnInt(0)) : 0;
    }
    {
      ENLACE_ASSIGN_OR_RETURN(Stmt rv, db_->Prepare("SELECT coalesce(max(version), 0) FROM "
                                                    "registries WHERE team = ?"));
      rv.BindBlob(1, device.team.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool rrow, rv.Step());
      resp.registry_version = rrow ? static_cast<uint64_t>(rv.ColumnInt(0)) : 0;
    }

    // A stored write's scope column, as `holds` takes it.
    const auto readable = [&](std::span<const uint8_t> scope_blob) {
      return holds(ScopeId{FromBlob<std::array<uint8_t, 16>>(scope_blob)});
    };
    // Pull: the team's log after the cursor, skipping the device's own writes
    // (it has them) and those of scopes it may not read, but moving the
    // cursor past them.
    ENLACE_ASSIGN_OR_RETURN(Stmt pull, db_->Prepare("SELECT seq, device, encoded, scope FROM "
                                                    "writes WHERE team = ? AND seq > ? ORDER BY "
                                                    "seq"));
    pull.BindBlob(1, device.team.bytes).BindU64(2, cursor);
    resp.next_cursor = cursor;
    size_t total = 0;
    // Positions the device refused (a delivery altered on the way) come
    // first, as stored.
    if (!req.refetch.empty()) {
      ENLACE_ASSIGN_OR_RETURN(Stmt again, db_->Prepare("SELECT device, encoded, scope FROM "
                                                       "writes WHERE team = ? AND seq = ?"));
      for (uint64_t seq : req.refetch) {
        again.BindBlob(1, device.team.bytes).BindU64(2, seq);
        ENLACE_ASSIGN_OR_RETURN(bool row, again.Step());
        if (row &&
            DeviceId{FromBlob<std::array<uint8_t, 16>>(again.ColumnBlob(0))} !=
                device.member.device &&
            readable(again.ColumnBlob(2))) {
          const auto blob = again.ColumnBlob(1);
          total += blob.size();
          resp.writes.emplace_back(blob.begin(), blob.end());
          resp.seqs.push_back(seq);
        }
        again.Reset();
      }
    }
    // Adds one stored write to the answer; false (and `more`) when it does
    // not fit (the answer always takes one).
    const auto take = [&](std::span<const uint8_t> blob, uint64_t seq) {
      if (!resp.writes.empty() &&
          (total + blob.size() > max_bytes || resp.writes.size() >= WireLimits{}.max_writes)) {
        resp.more = true;
        return false;
      }
      total += blob.size();
      resp.writes.emplace_back(blob.begin(), blob.end());
      resp.seqs.push_back(seq);
      return true;
    };
    // Then write numbers the device lacks although later writes promised
    // them (§6.11), as stored, while they fit.
    if (!req.wanted.empty()) {
      ENLACE_ASSIGN_OR_RETURN(Stmt range,
                              db_->Prepare("SELECT seq, encoded, scope FROM writes WHERE "
                                           "device = ? AND counter >= ? AND "
                                           "counter <= ? AND team = ? ORDER BY counter"));
      for (const auto& w : req.wanted) {
        if (w.device == device.member.device || resp.more) continue;
        range.BindBlob(1, w.device.bytes).BindU64(2, w.lo).BindU64(3, w.hi);
        range.BindBlob(4, device.team.bytes);
        for (;;) {
          ENLACE_ASSIGN_OR_RETURN(bool row, range.Step());
          if (!row) break;
          if (!readable(range.ColumnBlob(2))) continue;
          if (!take(range.ColumnBlob(1), static_cast<uint64_t>(range.ColumnInt(0)))) break;
        }
        range.Reset();
      }
    }
    for (;;) {
      if (resp.more) break;
      ENLACE_ASSIGN_OR_RETURN(bool more, pull.Step());
      if (!more) break;
      const bool skip =
          DeviceId{FromBlob<std::array<uint8_t, 16>>(pull.ColumnBlob(1))} == device.member.device ||
          !readable(pull.ColumnBlob(3));
      if (!skip && !take(pull.ColumnBlob(2), static_cast<uint64_t>(pull.ColumnInt(0)))) break;
      resp.next_cursor = static_cast<uint64_t>(pull.ColumnInt(0));
    }
    pull.Reset();

    ENLACE_ASSIGN_OR_RETURN(uint64_t trust_version, TrustVersionLocked(device.team));
    if (trust_version != req.members_version) {
      ENLACE_ASSIGN_OR_RETURN(MembersResponse members,
                              MembersLocked(device.team, req.registry_version));
      resp.trust = std::move(members.trust);
    }
    ENLACE_ASSIGN_OR_RETURN(resp.key_grants,
                            KeyGrantsForLocked(device.member.device, req.key_version));
    if (coordinator) {
      ENLACE_ASSIGN_OR_RETURN(resp.needs_keys, NeedsKeysLocked(device, req.key_version));
    }
    return resp;
  }

  Result<std::vector<Bytes>> Registries(const TeamId& team) override {
    std::lock_guard lock(mu_);
    return RegistriesLocked(team, 0);
  }

  Result<std::vector<uint64_t>> MaxStoredCounters(const std::vector<DeviceId>& devices) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT coalesce(max(counter), 0) FROM writes "
                                                  "WHERE device = ?"));
    std::vector<uint64_t> out;
    out.reserve(devices.size());
    for (const DeviceId& d : devices) {
      st.BindBlob(1, d.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
      out.push_back(row ? static_cast<uint64_t>(st.ColumnInt(0)) : 0);
      st.Reset();
    }
    return out;
  }

  Result<HubCounts> Counts() override {
    std::lock_guard lock(mu_);
    HubCounts c;
    auto count = [&](const char* sql, uint64_t& out) -> Status {
      ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(sql));
      ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
      out = row ? static_cast<uint64_t>(st.ColumnInt(0)) : 0;
      return Status::Ok();
    };
    ENLACE_RETURN_IF_ERROR(count("SELECT count(*) FROM teams", c.teams));
    ENLACE_RETURN_IF_ERROR(count("SELECT count(*) FROM devices", c.devices));
    ENLACE_RETURN_IF_ERROR(count("SELECT count(*) FROM writes", c.writes));
    ENLACE_RETURN_IF_ERROR(
        count("SELECT count(*) FROM invites WHERE used_ms IS NULL", c.invites_open));
    ENLACE_RETURN_IF_ERROR(count("SELECT count(*) FROM reports", c.reports));
    ENLACE_RETURN_IF_ERROR(count("SELECT count(*) FROM viewer_tokens", c.viewer_tokens));
    return c;
  }

  Result<PublishReportAnswer> PublishReport(const DeviceRecord& by, const ReportMeta& meta,
                                            std::string_view body, uint64_t now_ms) override {
    // Team and body decide the id: a retried publication finds itself.
    Bytes keyed(by.team.bytes.begin(), by.team.bytes.end());
    keyed.insert(keyed.end(), body.begin(), body.end());
    const auto hash = internal::GenericHash(keyed);
    const std::span<const uint8_t> id(hash.data(), 16);
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ENLACE_ASSIGN_OR_RETURN(
        Stmt ins,
        db_->Prepare("INSERT INTO reports(id, team, publisher, published_at_ms, title, "
                     "from_date, to_date, k, body) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                     "?9 WHERE NOT EXISTS (SELECT 1 FROM reports WHERE id = ?1)"));
    ENLACE_RETURN_IF_ERROR(ins.BindBlob(1, id)
                               .BindBlob(2, by.team.bytes)
                               .BindBlob(3, by.member.device.bytes)
                               .BindU64(4, now_ms)
                               .Bind(5, meta.title)
                               .Bind(6, meta.from)
                               .Bind(7, meta.to)
                               .BindU64(8, meta.k)
                               .BindBlob(9, internal::AsBytes(body))
                               .Exec());
    ENLACE_ASSIGN_OR_RETURN(Stmt st,
                            db_->Prepare("SELECT published_at_ms FROM reports WHERE id = ?"));
    st.BindBlob(1, id);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return Status::Internal("the report was not stored");
    PublishReportAnswer answer{internal::ToHex(id), static_cast<uint64_t>(st.ColumnInt(0))};
    st.Reset();
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    return answer;
  }

  Result<std::vector<ReportListing>> ListReports(const TeamId& team) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("SELECT id, title, from_date, to_date, k, published_at_ms, publisher "
                              "FROM reports WHERE team = ? ORDER BY published_at_ms DESC, id"));
    st.BindBlob(1, team.bytes);
    std::vector<ReportListing> out;
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      ReportListing r;
      r.id = internal::ToHex(st.ColumnBlob(0));
      r.title = st.ColumnText(1);
      r.from = st.ColumnText(2);
      r.to = st.ColumnText(3);
      r.k = static_cast<uint32_t>(st.ColumnInt(4));
      r.published_at_ms = static_cast<uint64_t>(st.ColumnInt(5));
      r.publisher = DeviceId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(6))};
      out.push_back(std::move(r));
    }
    return out;
  }

  Result<std::optional<std::string>> GetReport(const TeamId& team, std::string_view id) override {
    auto raw = internal::FromHex(id);
    if (!raw.ok() || raw->size() != 16) return std::optional<std::string>();
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(Stmt st,
                            db_->Prepare("SELECT body FROM reports WHERE id = ? AND team = ?"));
    st.BindBlob(1, *raw).BindBlob(2, team.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<std::string>();
    const auto body = st.ColumnBlob(0);
    return std::optional<std::string>(std::string(body.begin(), body.end()));
  }

  Result<std::string> AddViewerToken(const TeamId& team, std::string_view label,
                                     uint64_t now_ms) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ENLACE_ASSIGN_OR_RETURN(Stmt known, db_->Prepare("SELECT 1 FROM teams WHERE team = ?"));
    known.BindBlob(1, team.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool exists, known.Step());
    known.Reset();
    if (!exists) return Status::NotFound("this hub has no team " + team.ToHex());
    ENLACE_ASSIGN_OR_RETURN(auto key, ViewerKeyLocked(true));
    std::array<uint8_t, kViewerIdBytes + kViewerSecretBytes> raw{};
    internal::RandomFill(raw);
    const std::span<const uint8_t> id(raw.data(), kViewerIdBytes);
    const auto hash = internal::GenericHash(
        std::span<const uint8_t>(raw.data() + kViewerIdBytes, kViewerSecretBytes), *key);
    internal::Wipe(*key);
    ENLACE_ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO viewer_tokens(id, team, hash, "
                                                   "label, created_ms) VALUES(?, ?, ?, ?, ?)"));
    Status s = ins.BindBlob(1, id)
                   .BindBlob(2, team.bytes)
                   .BindBlob(3, hash)
                   .Bind(4, label)
                   .BindU64(5, now_ms)
                   .Exec();
    std::string token = kViewerTokenPrefix + internal::ToBase64Url(raw);
    internal::Wipe(raw);
    ENLACE_RETURN_IF_ERROR(s);
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    return token;
  }

  Result<std::optional<ViewerRecord>> FindViewer(std::string_view token) override {
    std::array<uint8_t, kViewerIdBytes> id{};
    std::array<uint8_t, kViewerSecretBytes> secret{};
    if (!ParseViewerToken(token, id, secret)) return std::optional<ViewerRecord>();
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(auto key, ViewerKeyLocked(false));
    if (!key) {
      internal::Wipe(secret);
      return std::optional<ViewerRecord>();
    }
    const auto hash = internal::GenericHash(secret, *key);
    internal::Wipe(secret);
    internal::Wipe(*key);
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("SELECT team, hash, label FROM viewer_tokens WHERE id = ?"));
    st.BindBlob(1, id);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<ViewerRecord>();
    const auto stored = st.ColumnBlob(1);
    if (stored.size() != hash.size() || !internal::ConstantTimeEquals(stored, hash)) {
      return std::optional<ViewerRecord>();
    }
    ViewerRecord v;
    v.team = TeamId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))};
    v.id = internal::ToHex(id);
    v.label = st.ColumnText(2);
    return std::optional<ViewerRecord>(std::move(v));
  }

  Status Backup(const std::string& out_path) override {
    std::error_code ec;
    if (std::filesystem::exists(out_path, ec)) {
      return Status::AlreadyExists(out_path + " already exists; choose a new file");
    }
    sqlite3* dest = nullptr;
    int rc = sqlite3_open_v2(out_path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             nullptr);
    if (rc != SQLITE_OK) {
      Status s = internal::SqliteStatus(rc, dest, "open " + out_path);
      sqlite3_close_v2(dest);
      return s;
    }
    Status result;
    {
      std::lock_guard lock(mu_);
      sqlite3_backup* b = sqlite3_backup_init(dest, "main", db_->raw(), "main");
      if (b == nullptr) {
        result = internal::SqliteStatus(sqlite3_errcode(dest), dest, "backup");
      } else {
        rc = sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
        result = rc == SQLITE_DONE ? Status::Ok() : internal::SqliteStatus(rc, dest, "backup");
      }
    }
    sqlite3_close_v2(dest);
    if (result.ok()) ::chmod(out_path.c_str(), 0600);
    return result;
  }

  // ---- record history and verification ----

  Result<std::vector<Bytes>> RecordHistory(const TeamId& team, std::string_view collection,
                                           const RecordId& record, size_t max_writes) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT encoded FROM writes WHERE team = ? AND "
                                                  "collection = ? AND record = ? ORDER BY seq "
                                                  "LIMIT ?"));
    st.BindBlob(1, team.bytes).Bind(2, collection).BindBlob(3, record.bytes).BindU64(4, max_writes);
    return st.AllBlobs(0);
  }

  Status ScanWrites(const std::function<Status(const StoredWriteRow&)>& visit) override {
    std::lock_guard lock(mu_);
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT seq, team, device, counter, collection, "
                                                  "record, encoded FROM writes ORDER BY seq"));
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      StoredWriteRow row;
      row.seq = static_cast<uint64_t>(st.ColumnInt(0));
      row.team = TeamId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(1))};
      row.device = DeviceId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(2))};
      row.counter = static_cast<uint64_t>(st.ColumnInt(3));
      if (!st.ColumnIsNull(4)) row.collection = st.ColumnText(4);
      if (!st.ColumnIsNull(5) && st.ColumnBlob(5).size() == 16) {
        row.record = RecordId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(5))};
      }
      const auto blob = st.ColumnBlob(6);
      row.encoded.assign(blob.begin(), blob.end());
      ENLACE_RETURN_IF_ERROR(visit(row));
    }
    return Status::Ok();
  }

 private:
  // The clear metadata stored beside an incoming write: given, or decoded.
  struct RowKey {
    std::string collection;
    RecordId record;
    ScopeId scope;
  };
  static Result<RowKey> RecordOf(const IncomingWrite& w) {
    if (!w.collection.empty()) return RowKey{w.collection, w.record, w.scope};
    ENLACE_ASSIGN_OR_RETURN(Write decoded, Write::Decode(w.encoded));
    return RowKey{std::move(decoded.collection), decoded.record, decoded.scope};
  }

  // The scopes the team's newest registry assigns `device`.
  Result<std::set<ScopeId>> ScopesOfLocked(const DeviceId& device) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st,
                            db_->Prepare("SELECT scope FROM device_scopes WHERE device = ?"));
    st.BindBlob(1, device.bytes);
    std::set<ScopeId> out;
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.insert(ScopeId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))});
    }
    return out;
  }

  // Fills collection and record of rows stored before migration 3, decoding
  // each one's clear metadata. A row that does not decode stays unfilled
  // (admin verify reports it); it is tried again on the next open.
  Status BackfillRecords() {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("SELECT seq, encoded FROM writes WHERE collection IS NULL"));
    std::vector<std::pair<int64_t, std::pair<std::string, RecordId>>> found;
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      auto w = Write::Decode(st.ColumnBlob(1));
      if (!w.ok()) continue;
      found.push_back({st.ColumnInt(0), {std::move(w->collection), w->record}});
    }
    st.Reset();
    if (found.empty()) return Status::Ok();
    ENLACE_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ENLACE_ASSIGN_OR_RETURN(
        Stmt up, db_->Prepare("UPDATE writes SET collection = ?, record = ? WHERE seq = ?"));
    for (const auto& [seq, key] : found) {
      ENLACE_RETURN_IF_ERROR(
          up.Bind(1, key.first).BindBlob(2, key.second.bytes).Bind(3, seq).Exec());
    }
    return tx->Commit();
  }

  // The hub's key for viewer-token hashes; made on first use when `create`.
  Result<std::optional<std::array<uint8_t, 32>>> ViewerKeyLocked(bool create) {
    using Key = std::optional<std::array<uint8_t, 32>>;
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT key FROM hub_keys WHERE name = ?"));
    st.Bind(1, "viewer_tokens");
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row && st.ColumnBlob(0).size() == 32)
      return Key(FromBlob<std::array<uint8_t, 32>>(st.ColumnBlob(0)));
    st.Reset();
    if (row) return Status::Corruption("the hub's viewer-token key is damaged");
    if (!create) return Key();
    std::array<uint8_t, 32> key{};
    internal::RandomFill(key);
    ENLACE_ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO hub_keys(name, key) VALUES(?, ?)"));
    ENLACE_RETURN_IF_ERROR(ins.Bind(1, "viewer_tokens").BindBlob(2, key).Exec());
    return Key(key);
  }

  // True when the token exists and was used.
  bool TokenUsedBy(const TokenHash& token_hash) {
    auto st = db_->Prepare("SELECT used_ms FROM bootstrap_tokens WHERE token_hash = ?");
    if (!st.ok()) return false;
    st->BindBlob(1, token_hash);
    auto row = st->Step();
    return row.ok() && *row && !st->ColumnIsNull(0);
  }

  Status InsertDevice(const TeamId& team, const Member& m, uint64_t now_ms) {
    ForgetDevices();
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("INSERT INTO devices(device, team, name, role, sign_pk, box_pk, "
                              "joined_ms) VALUES(?, ?, ?, ?, ?, ?, ?)"));
    ENLACE_RETURN_IF_ERROR(st.BindBlob(1, m.device.bytes)
                               .BindBlob(2, team.bytes)
                               .Bind(3, m.name)
                               .Bind(4, static_cast<int64_t>(m.role))
                               .BindBlob(5, m.signing_key)
                               .BindBlob(6, m.encryption_key)
                               .BindU64(7, now_ms)
                               .Exec());
    ENLACE_ASSIGN_OR_RETURN(Stmt bump, db_->Prepare("UPDATE teams SET members_version = "
                                                    "members_version + 1 WHERE team = ?"));
    return bump.BindBlob(1, team.bytes).Exec();
  }

  // Empties the device cache; called with mu_ held.
  void ForgetDevices() {
    std::lock_guard cache(cache_mu_);
    device_cache_.clear();
  }

  Result<std::optional<DeviceRecord>> FindDeviceLocked(const DeviceId& device) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT team, name, role, sign_pk, box_pk, "
                                                  "joined_ms, revoked_ms, pending, revoked_after "
                                                  "FROM devices WHERE device = ?"));
    st.BindBlob(1, device.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<DeviceRecord>();
    DeviceRecord d;
    d.team = TeamId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))};
    Member& m = d.member;
    m.device = device;
    m.name = st.ColumnText(1);
    m.role = st.ColumnInt(2) == 1 ? Role::kCoordinator : Role::kField;
    m.signing_key = FromBlob<PublicKey32>(st.ColumnBlob(3));
    m.encryption_key = FromBlob<PublicKey32>(st.ColumnBlob(4));
    m.joined_ms = static_cast<uint64_t>(st.ColumnInt(5));
    m.revoked = !st.ColumnIsNull(6);
    m.revoked_ms = m.revoked ? static_cast<uint64_t>(st.ColumnInt(6)) : 0;
    m.pending = st.ColumnInt(7) != 0;
    m.revoked_after = static_cast<uint64_t>(st.ColumnInt(8));
    d.joined_ms = m.joined_ms;
    return std::optional<DeviceRecord>(std::move(d));
  }

  Result<uint64_t> TrustVersionLocked(const TeamId& team) {
    ENLACE_ASSIGN_OR_RETURN(Stmt v,
                            db_->Prepare("SELECT members_version FROM teams WHERE team = ?"));
    v.BindBlob(1, team.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool row, v.Step());
    return row ? static_cast<uint64_t>(v.ColumnInt(0)) : uint64_t{0};
  }

  // Every registry version of `team` above `after`, in order.
  Result<std::vector<Bytes>> RegistriesLocked(const TeamId& team, uint64_t after) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT encoded FROM registries WHERE team = ? "
                                                  "AND version > ? ORDER BY version"));
    st.BindBlob(1, team.bytes).BindU64(2, after);
    return st.AllBlobs(0);
  }

  Result<std::optional<Registry>> LatestRegistryLocked(const TeamId& team) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT encoded FROM registries WHERE team = ? "
                                                  "ORDER BY version DESC LIMIT 1"));
    st.BindBlob(1, team.bytes);
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<Registry>();
    ENLACE_ASSIGN_OR_RETURN(Registry r, DecodeRegistry(st.ColumnBlob(0)));
    return std::optional<Registry>(std::move(r));
  }

  Result<std::vector<Admission>> AdmissionsLocked(const TeamId& team) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT encoded FROM admissions WHERE team = ? "
                                                  "ORDER BY device"));
    st.BindBlob(1, team.bytes);
    std::vector<Admission> out;
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      ENLACE_ASSIGN_OR_RETURN(Admission a, DecodeAdmission(st.ColumnBlob(0)));
      out.push_back(std::move(a));
    }
    return out;
  }

  // Admissions a member sends again to a hub that lacks them (restored from
  // a backup). Each must pass CheckAdmission against the team's registry,
  // and its invite must not have expired: only the hub judges expiry, and
  // it cannot tell when the binding was made. A device it already knows is
  // left as it is.
  Status AcceptAdmissionsLocked(const TeamId& team, const std::vector<Bytes>& admissions,
                                uint64_t now_ms) {
    ENLACE_ASSIGN_OR_RETURN(auto registry, LatestRegistryLocked(team));
    if (!registry) return Status::Ok();
    ENLACE_ASSIGN_OR_RETURN(Stmt known, db_->Prepare("SELECT 1 FROM devices WHERE device = ?1 "
                                                     "UNION ALL SELECT 1 FROM admissions WHERE "
                                                     "device = ?1"));
    ENLACE_ASSIGN_OR_RETURN(Stmt keep, db_->Prepare("INSERT INTO admissions(device, team, encoded) "
                                                    "VALUES(?, ?, ?)"));
    ENLACE_ASSIGN_OR_RETURN(Stmt use, db_->Prepare("UPDATE invites SET used_ms = ?, used_by = ? "
                                                   "WHERE invite = ? AND used_ms IS NULL"));
    bool added = false;
    for (const auto& bytes : admissions) {
      auto a = DecodeAdmission(bytes);
      if (!a.ok() || a->grant.team != team || a->grant.expires_ms < now_ms ||
          !CheckAdmission(*a, *registry).ok()) {
        continue;
      }
      known.BindBlob(1, a->device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool present, known.Step());
      known.Reset();
      if (present) continue;
      ENLACE_RETURN_IF_ERROR(
          keep.BindBlob(1, a->device.bytes).BindBlob(2, team.bytes).BindBlob(3, bytes).Exec());
      ENLACE_RETURN_IF_ERROR(
          use.BindU64(1, now_ms).BindBlob(2, a->device.bytes).BindBlob(3, a->grant.invite).Exec());
      added = true;
    }
    return added ? RecomputeLocked(team) : Status::Ok();
  }

  // Stores a checked registry version and brings the devices in line.
  Status StoreRegistryLocked(const Registry& r, const Bytes& encoded, uint64_t now_ms) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("INSERT INTO registries(team, version, encoded, "
                                                  "stored_ms) VALUES(?, ?, ?, ?)"));
    ENLACE_RETURN_IF_ERROR(st.BindBlob(1, r.team.bytes)
                               .BindU64(2, r.version)
                               .BindBlob(3, encoded)
                               .BindU64(4, now_ms)
                               .Exec());
    return RecomputeLocked(r.team);
  }

  // The devices table follows the registry and admissions: role, name,
  // revocation, approval. A device neither lists is kept as pending, so it
  // can do nothing.
  Status RecomputeLocked(const TeamId& team) {
    ENLACE_ASSIGN_OR_RETURN(auto registry, LatestRegistryLocked(team));
    if (!registry) return Status::Ok();
    ForgetDevices();
    ENLACE_ASSIGN_OR_RETURN(auto admissions, AdmissionsLocked(team));
    ENLACE_ASSIGN_OR_RETURN(Stmt none, db_->Prepare("UPDATE devices SET pending = 1 "
                                                    "WHERE team = ?"));
    ENLACE_RETURN_IF_ERROR(none.BindBlob(1, team.bytes).Exec());
    ENLACE_ASSIGN_OR_RETURN(
        Stmt up, db_->Prepare("UPDATE devices SET name = ?, role = ?, revoked_ms = ?, "
                              "revoked_after = ?, pending = ? WHERE device = ? AND team = ?"));
    ENLACE_ASSIGN_OR_RETURN(Stmt known, db_->Prepare("SELECT 1 FROM devices WHERE device = ?"));
    for (const Member& m : EffectiveMembers(*registry, admissions)) {
      // A member this hub has no row for (it joined after the backup this
      // hub was restored from): its keys come from the signed documents.
      known.BindBlob(1, m.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool present, known.Step());
      known.Reset();
      if (!present) ENLACE_RETURN_IF_ERROR(InsertDevice(team, m, m.joined_ms));
      up.Bind(1, m.name).Bind(2, static_cast<int64_t>(m.role));
      if (m.revoked) {
        up.BindU64(3, m.revoked_ms);
      } else {
        up.BindNull(3);
      }
      ENLACE_RETURN_IF_ERROR(up.BindU64(4, m.revoked_after)
                                 .Bind(5, int64_t{m.pending ? 1 : 0})
                                 .BindBlob(6, m.device.bytes)
                                 .BindBlob(7, team.bytes)
                                 .Exec());
    }
    // The scopes each device is assigned, as the newest registry says.
    ENLACE_ASSIGN_OR_RETURN(Stmt clear,
                            db_->Prepare("DELETE FROM device_scopes WHERE device IN "
                                         "(SELECT device FROM devices WHERE team = ?)"));
    ENLACE_RETURN_IF_ERROR(clear.BindBlob(1, team.bytes).Exec());
    ENLACE_ASSIGN_OR_RETURN(Stmt assign,
                            db_->Prepare("INSERT INTO device_scopes(device, scope) VALUES(?, ?)"));
    for (const RegistryEntry& e : registry->entries) {
      for (const ScopeId& s : e.scopes) {
        ENLACE_RETURN_IF_ERROR(assign.BindBlob(1, e.device.bytes).BindBlob(2, s.bytes).Exec());
      }
    }
    ENLACE_ASSIGN_OR_RETURN(Stmt bump, db_->Prepare("UPDATE teams SET members_version = "
                                                    "members_version + 1 WHERE team = ?"));
    return bump.BindBlob(1, team.bytes).Exec();
  }

  // The trust documents a device at registry version `since` lacks.
  Result<MembersResponse> MembersLocked(const TeamId& team, uint64_t since) {
    MembersResponse out;
    ENLACE_ASSIGN_OR_RETURN(out.trust.version, TrustVersionLocked(team));
    ENLACE_ASSIGN_OR_RETURN(out.trust.registries, RegistriesLocked(team, since));
    ENLACE_ASSIGN_OR_RETURN(auto registry, LatestRegistryLocked(team));
    ENLACE_ASSIGN_OR_RETURN(auto admissions, AdmissionsLocked(team));
    for (const auto& a : admissions) {
      if (registry && registry->Find(a.device) != nullptr) continue;  // folded in
      out.trust.admissions.push_back(EncodeAdmission(a));
    }
    return out;
  }

  // Checks a coordinator's new registry version; "" when stored, else why not.
  // The newest team key version a coordinator of `team` has granted or
  // holds (1, the team's first key, at least).
  Result<uint64_t> GrantedKeyVersionLocked(const TeamId& team) {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st, db_->Prepare("SELECT max(1, (SELECT coalesce(max(version), 0) FROM key_grants "
                              "WHERE team = ?1), (SELECT coalesce(max(key_version), 0) FROM "
                              "devices WHERE team = ?1 AND role = ?2 AND revoked_ms IS NULL AND "
                              "pending = 0))"));
    st.BindBlob(1, team.bytes).Bind(2, static_cast<int64_t>(Role::kCoordinator));
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? static_cast<uint64_t>(st.ColumnInt(0)) : uint64_t{1};
  }

  Result<std::string> AcceptRegistryLocked(const DeviceRecord& by, const Bytes& encoded,
                                           uint64_t now_ms,
                                           std::vector<RevocationCutoff>* cutoffs) {
    auto next = DecodeRegistry(encoded);
    if (!next.ok()) return "the registry is malformed: " + next.status().message();
    {
      // A retry after a lost answer: the same bytes are already stored.
      ENLACE_ASSIGN_OR_RETURN(Stmt same, db_->Prepare("SELECT encoded FROM registries WHERE "
                                                      "team = ? AND version = ?"));
      same.BindBlob(1, by.team.bytes).BindU64(2, next->version);
      ENLACE_ASSIGN_OR_RETURN(bool row, same.Step());
      if (row && std::ranges::equal(same.ColumnBlob(0), encoded)) return std::string();
    }
    ENLACE_ASSIGN_OR_RETURN(auto current, LatestRegistryLocked(by.team));
    if (!current) return std::string("the team has no registry");
    // Usually its signer sends it; any member may send the team's registry
    // to a hub that lacks it (restored from a backup): the signature and
    // CheckSuccessor decide, not who carries it.
    if (Status s = CheckSuccessor(*current, *next); !s.ok()) return s.message();
    for (const auto& e : next->entries) {
      const RegistryEntry* before = current->Find(e.device);
      if (!e.revoked() || (before != nullptr && before->revoked())) continue;
      ENLACE_ASSIGN_OR_RETURN(Stmt max, db_->Prepare("SELECT coalesce(max(counter), 0) FROM "
                                                     "writes WHERE device = ?"));
      max.BindBlob(1, e.device.bytes);
      ENLACE_ASSIGN_OR_RETURN(bool row, max.Step());
      const uint64_t stored = row ? static_cast<uint64_t>(max.ColumnInt(0)) : 0;
      if (stored > e.revoked_after) {
        // The target outran the coordinator's cut-off. It may push no more
        // from now on, so the highest write stored is a cut-off that holds:
        // the coordinator signs the revocation again with it.
        ENLACE_ASSIGN_OR_RETURN(Stmt freeze,
                                db_->Prepare("UPDATE devices SET frozen = 1 WHERE device = ?"));
        ENLACE_RETURN_IF_ERROR(freeze.BindBlob(1, e.device.bytes).Exec());
        cutoffs->push_back(RevocationCutoff{e.device, stored});
      }
    }
    if (!cutoffs->empty()) {
      const RevocationCutoff& c = cutoffs->front();
      return "device " + c.device.ToHex().substr(0, 8) + " has sent writes up to number " +
             std::to_string(c.counter) +
             " that the revocation does not cover; the hub takes no more of its writes, sign the "
             "revocation again with that cut-off";
    }
    ENLACE_RETURN_IF_ERROR(StoreRegistryLocked(*next, encoded, now_ms));
    return std::string();
  }

  // Stores the valid key grants a coordinator signed, and those a member
  // sends again that were made for it (to a hub restored from a backup);
  // others are dropped.
  Status AcceptKeyGrantsLocked(const DeviceRecord& by, bool coordinator,
                               const std::vector<Bytes>& grants) {
    ENLACE_ASSIGN_OR_RETURN(auto registry, LatestRegistryLocked(by.team));
    if (!registry) return Status::Ok();
    ENLACE_ASSIGN_OR_RETURN(
        Stmt ins, db_->Prepare("INSERT OR REPLACE INTO key_grants(recipient, version, team, "
                               "encoded) VALUES(?, ?, ?, ?)"));
    for (const auto& bytes : grants) {
      auto g = DecodeKeyGrant(bytes);
      if (!g.ok() || !CheckKeyGrant(*g, *registry).ok()) continue;
      const bool own_issue = coordinator && g->issuer == by.member.device;
      if (!own_issue && g->recipient != by.member.device) continue;
      ENLACE_ASSIGN_OR_RETURN(auto recipient, FindDeviceLocked(g->recipient));
      if (!recipient || recipient->team != by.team || recipient->member.revoked) continue;
      ENLACE_RETURN_IF_ERROR(ins.BindBlob(1, g->recipient.bytes)
                                 .BindU64(2, g->version)
                                 .BindBlob(3, by.team.bytes)
                                 .BindBlob(4, bytes)
                                 .Exec());
    }
    return Status::Ok();
  }

  Result<std::vector<Bytes>> KeyGrantsForLocked(const DeviceId& device, uint32_t above) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st,
                            db_->Prepare("SELECT encoded FROM key_grants WHERE "
                                         "recipient = ? AND version > ? ORDER BY version"));
    st.BindBlob(1, device.bytes).BindU64(2, above);
    return st.AllBlobs(0);
  }

  // Active members other than `by` that have synced (so their key version
  // is known) without the team's newest key, and have no grant of it waiting.
  Result<std::vector<DeviceId>> NeedsKeysLocked(const DeviceRecord& by, uint32_t own_version) {
    ENLACE_ASSIGN_OR_RETURN(
        Stmt st,
        // The newest version is the newest a coordinator sealed or holds (the
        // asking coordinator's): what another device claims proves nothing.
        db_->Prepare("WITH newest AS (SELECT max(coalesce(max(version), 1), ?3) AS v FROM "
                     "key_grants WHERE team = ?1) "
                     "SELECT device FROM devices, newest WHERE team = ?1 AND device != ?2 AND "
                     "pending = 0 AND revoked_ms IS NULL AND key_version > 0 AND "
                     "key_version < newest.v AND NOT EXISTS (SELECT 1 FROM key_grants g WHERE "
                     "g.recipient = devices.device AND g.version >= newest.v) ORDER BY device"));
    st.BindBlob(1, by.team.bytes).BindBlob(2, by.member.device.bytes).BindU64(3, own_version);
    std::vector<DeviceId> out;
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      out.push_back(DeviceId{FromBlob<std::array<uint8_t, 16>>(st.ColumnBlob(0))});
    }
    return out;
  }

  // Bounds the memory of the device cache (a hub's devices, not requests).
  static constexpr size_t kDeviceCacheLimit = 100000;

  std::mutex mu_;
  std::unique_ptr<Db> db_;
  std::array<uint8_t, 16> log_id_{};  // hub_meta "log_id", read at open
  // Group commit of syncs (see Sync).
  std::mutex group_mu_;
  std::condition_variable group_cv_;
  std::vector<SyncJob*> group_;                    // waiting for the next group
  bool group_leader_ = false;                      // a group is running
  std::mutex cache_mu_;                            // taken after mu_, never before
  std::map<DeviceId, DeviceRecord> device_cache_;  // guarded by cache_mu_; see FindDevice
};

}  // namespace

Status MigrateHubDatabase(Db& db) { return internal::RunMigrations(db, kMigrations, "hub.db"); }

TokenHash HashToken(std::string_view token) {
  return internal::GenericHash(internal::AsBytes(token));
}

Result<std::unique_ptr<HubStorage>> OpenSqliteHubStorage(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IoError("cannot create " + data_dir + ": " + ec.message());
  ::chmod(data_dir.c_str(), 0700);
  const std::string path = (std::filesystem::path(data_dir) / "hub.db").string();
  ENLACE_ASSIGN_OR_RETURN(auto db, Db::Open(path));
  ::chmod(path.c_str(), 0600);
  ENLACE_RETURN_IF_ERROR(
      db->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                     "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; "
                     // Group commit's savepoints keep their statement journals
                     // in memory up to 64 KiB and spill bigger ones (a 7 MiB
                     // push) to a temporary file: SQLite's in-memory journal
                     // is a list it walks from the start on every read.
                     "PRAGMA cache_size=-65536;"));
  auto storage = std::make_unique<SqliteHubStorage>(std::move(db));
  ENLACE_RETURN_IF_ERROR(storage->Migrate());
  return std::unique_ptr<HubStorage>(std::move(storage));
}

}  // namespace enlace::hub
