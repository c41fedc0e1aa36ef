// The hub's storage, behind a small interface (DESIGN §5). The default is an
// embedded SQLite file in the data folder, in WAL mode; every operation is
// one transaction. The hub stores ciphertext and clear metadata only: it has
// no team key and never sees a value.
//
// Thread-safe: every method may be called from any pool thread.
#ifndef ENLACE_SERVER_HUB_STORAGE_H_
#define ENLACE_SERVER_HUB_STORAGE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"
#include "enlace/wire.h"
#include "enlace/write.h"
#include "report_check.h"

namespace enlace::hub {

using TokenHash = std::array<uint8_t, 32>;

// How long a bootstrap token stays usable by default, and the validity of
// one made before tokens had an expiry.
inline constexpr uint64_t kBootstrapTokenMs = 72ull * 3600 * 1000;
inline constexpr uint64_t kLegacyBootstrapTokenMs = kBootstrapTokenMs;

struct DeviceRecord {
  Member member;
  TeamId team;
  uint64_t joined_ms = 0;
};

// A checked write ready to be stored.
struct IncomingWrite {
  Dot dot;
  Bytes encoded;
  // The write's record (clear metadata), stored beside it for the record's
  // history. When `collection` is empty the storage decodes `encoded`.
  std::string collection;
  RecordId record;
  uint32_t key_version = 0;  // the team key version that sealed it
  ScopeId scope;             // its scope (with `collection`; else decoded)
  bool is_void = false;      // a void write (kVoid)
};

// One row of the hub's write log, as stored (for `admin verify`).
struct StoredWriteRow {
  uint64_t seq = 0;
  TeamId team;
  DeviceId device;
  uint64_t counter = 0;
  std::optional<std::string> collection;  // nullopt when not filled
  std::optional<RecordId> record;
  Bytes encoded;
};

// A signed request's nonce, remembered in the transaction of the work it
// asks for (replay memory, docs/PROTOCOL.md §4 step 5).
struct RequestNonce {
  DeviceId device;
  std::array<uint8_t, 16> nonce{};
  uint64_t forget_before_ms = 0;  // stored nonces older than this are dropped first
};

struct HubCounts {
  uint64_t teams = 0, devices = 0, writes = 0, invites_open = 0;
  uint64_t reports = 0, viewer_tokens = 0;
};

// A read-only viewer (the national commission): may read one team's
// published reports and nothing else.
struct ViewerRecord {
  TeamId team;
  std::string id;  // the token's public id, 32 hex (for logs; not the secret)
  std::string label;
};

class HubStorage {
 public:
  virtual ~HubStorage() = default;

  // Stores the hash of a one-time bootstrap token, usable until `expires_ms`.
  virtual Status AddBootstrapToken(const TokenHash& token_hash, uint64_t now_ms,
                                   uint64_t expires_ms) = 0;

  // Consumes the token, creates the team and registers `device` as its
  // first coordinator. kPermissionDenied for an unknown or used token,
  // kAlreadyExists for a known team or device.
  virtual Result<MembersResponse> RegisterTeam(const RegisterTeamRequest& request,
                                               const DeviceId& device, const TokenHash& token_hash,
                                               uint64_t now_ms) = 0;

  // The device as registered (nullopt when unknown). Answers from memory
  // after the first lookup; every change to the devices table here drops
  // what is remembered (no other process changes devices while serving).
  virtual Result<std::optional<DeviceRecord>> FindDevice(const DeviceId& device) = 0;

  // Records a request nonce; kAlreadyExists when it was seen before (a
  // replay). Nonces older than `forget_before_ms` are dropped.
  virtual Status RememberNonce(const DeviceId& device, const std::array<uint8_t, 16>& nonce,
                               uint64_t now_ms, uint64_t forget_before_ms) = 0;

  virtual Status CreateInvite(const DeviceRecord& by, const CreateInviteRequest& request,
                              uint64_t now_ms) = 0;

  // Redeems an invite for `device`: kPermissionDenied for an unknown, used or
  // expired invite or a wrong verifier (compared in constant time),
  // kAlreadyExists when the device is already registered.
  virtual Result<JoinResponse> RedeemInvite(const JoinRequest& request, const DeviceId& device,
                                            uint64_t now_ms) = 0;

  // In one transaction: stores a coordinator's new registry version when it
  // follows the team's (else says why in registry_refused) and its valid key
  // grants; stores `writes` (idempotent: keyed by dot); returns the team's
  // writes after req.cursor from other devices, up to `max_bytes`, the trust
  // documents the device lacks, its key grants, and (to a coordinator) the
  // members missing the newest team key. `req.writes` is not used.
  // With `nonce`, the request's nonce is remembered in the same transaction
  // (one commit per request): kUnauthenticated "replayed request", and
  // nothing stored, when it was seen before.
  virtual Result<SyncResponse> Sync(const DeviceRecord& device,
                                    const std::vector<IncomingWrite>& writes,
                                    const SyncRequest& req, size_t max_bytes, uint64_t now_ms,
                                    const RequestNonce* nonce = nullptr) = 0;

  // Every registry version of `team`, in order (the body of a revoked
  // device's 403).
  virtual Result<std::vector<Bytes>> Registries(const TeamId& team) = 0;

  // The highest write counter the hub holds for each of `devices` (0 when
  // none), in order (one lock, one prepared query).
  virtual Result<std::vector<uint64_t>> MaxStoredCounters(const std::vector<DeviceId>& devices) = 0;

  virtual Result<HubCounts> Counts() = 0;

  // ---- published reports (docs/PROTOCOL.md §16) ----

  // Stores a checked report of `by`'s team. The id is derived from the team
  // and the body, so publishing the same bytes again (a retry) stores
  // nothing new and answers the first publication's id and time.
  virtual Result<PublishReportAnswer> PublishReport(const DeviceRecord& by, const ReportMeta& meta,
                                                    std::string_view body, uint64_t now_ms) = 0;
  // The team's reports, newest first.
  virtual Result<std::vector<ReportListing>> ListReports(const TeamId& team) = 0;
  // The body of report `id` (32 hex) exactly as published; nullopt when the
  // team has no such report (another team's report included).
  virtual Result<std::optional<std::string>> GetReport(const TeamId& team, std::string_view id) = 0;

  // Makes a viewer token for `team` and returns it; the hub keeps only its
  // id and a keyed BLAKE2b-256 hash of its secret. kNotFound for an unknown
  // team. The token cannot be shown again.
  virtual Result<std::string> AddViewerToken(const TeamId& team, std::string_view label,
                                             uint64_t now_ms) = 0;
  // The viewer a token belongs to (hash compared in constant time), or
  // nullopt for a malformed or unknown token.
  virtual Result<std::optional<ViewerRecord>> FindViewer(std::string_view token) = 0;

  // A consistent copy of the database at `out_path` while serving.
  virtual Status Backup(const std::string& out_path) = 0;

  // ---- record history and verification (docs/PROTOCOL.md, /v1/history) ----

  // The encoded writes of one record of `team`, in log order, at most
  // `max_writes` (the oldest first).
  virtual Result<std::vector<Bytes>> RecordHistory(const TeamId& team, std::string_view collection,
                                                   const RecordId& record, size_t max_writes) = 0;
  // Calls `visit` for every stored write in log order, with the row's own
  // columns; stops at the first error `visit` returns. Holds the storage
  // for the whole scan (an admin task).
  virtual Status ScanWrites(const std::function<Status(const StoredWriteRow&)>& visit) = 0;
};

// Opens (creating if needed) the SQLite storage in `data_dir`/hub.db.
Result<std::unique_ptr<HubStorage>> OpenSqliteHubStorage(const std::string& data_dir);

// The BLAKE2b-256 of a bootstrap token, as stored.
TokenHash HashToken(std::string_view token);

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_HUB_STORAGE_H_
