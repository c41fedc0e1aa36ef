// The device side of the sync protocol, sans I/O (DESIGN §1, §4).
//
// The core builds request bodies and signed headers; the caller's transport
// (libcurl in the CLI, the platform HTTP stack in an app, an in-memory pipe
// in tests) sends them and hands the response back. A round pushes the next
// batch of unsent writes and pulls the team's writes after the cursor; the
// cursor and the outbox advance only after the local transaction that
// applied the response commits, so a cut connection costs at most a batch.
//
// Not thread-safe; one session per replica at a time.
#ifndef ENLACE_SYNC_H_
#define ENLACE_SYNC_H_

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enlace/replica.h"
#include "enlace/status.h"
#include "enlace/wire.h"

namespace enlace {

// An HTTP request to send exactly as given (POST, path, headers, body).
struct OutgoingRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // signature headers included
  Bytes body;
};

// A hub error response as a Status: 400 kInvalidArgument, 401
// kUnauthenticated, 403 kPermissionDenied, 404 kNotFound, 409
// kFailedPrecondition, 413 kResourceExhausted, other kUnavailable. The
// message is the hub's plain-language reason.
Status StatusFromHubResponse(int http_status, std::string_view body);

// Reads the hub's clock from a response's x-enlace-hub-time header and, when
// the device's wall clock is more than `tolerance_ms` off, makes the
// device's clock (HLC and request times) follow the hub. Returns the
// correction now in force, in ms (0 when none).
int64_t FollowHubClock(Replica& replica, std::string_view hub_time_header,
                       uint64_t tolerance_ms = 5000);

// Batches start small, so that a cut link loses little, double after each
// completed round up to the maximum (a long sync needs few requests), and
// halve after a failed attempt (SyncSession::LinkFailed).
// Sizes count encoded writes before the batch is compressed.
struct SyncOptions {
  size_t first_push_bytes = 256 * 1024;  // the first request's writes
  size_t max_push_bytes = 7 << 20;       // the hub accepts 8 MiB bodies
  uint32_t first_pull_bytes = 1 << 20;   // the first response's writes
  uint32_t max_pull_bytes = 4 << 20;     // the hub serves at most 4 MiB
};

struct SyncProgress {
  uint64_t rounds = 0;
  uint64_t sent = 0;             // own writes the hub acknowledged
  uint64_t received = 0;         // others' writes merged here
  uint64_t ignored = 0;          // pulled writes already seen or superseded
  uint64_t refused = 0;          // pulled writes that failed verification (skipped)
  uint64_t restamped = 0;        // own writes re-made because this device's clock had run ahead
  std::string last_refusal;      // why the last one was refused
  uint64_t keys_received = 0;    // team key grants opened here
  uint64_t resealed = 0;         // own unsent writes sealed again under a newer team key
  uint64_t parked = 0;           // pulled writes kept aside for a team key not held yet
  uint32_t waiting_for_key = 0;  // the newest team key version they wait for (0: none)
  uint64_t refetch_pending = 0;  // refused log positions still to be delivered genuine
  bool registry_stored = false;  // the hub stored the registry change signed here
  std::string registry_refused;  // why the hub refused it ("" when it did not)
  // The hub had lost writes it had acknowledged (restored from a backup):
  // this device read its log again and sent back what it lacked.
  bool hub_behind = false;
  uint64_t resent = 0;  // own writes queued again for such a hub
  // Write numbers of other devices that their later writes promised and
  // the hub did not deliver when asked (§6.11): it lost or withholds them.
  uint64_t missing = 0;
};

class SyncSession {
 public:
  explicit SyncSession(Replica& replica, SyncOptions options = {});

  // The next round's request: pending writes (up to this round's push size) and the
  // pull cursor, signed by the device key.
  Result<OutgoingRequest> NextRequest();

  // Applies a 200 response body in one local transaction. Returns true when
  // another round is needed (more to push or to pull). Bad bodies change
  // nothing (kCorruption).
  Result<bool> HandleResponse(std::span<const uint8_t> body);

  // The link did not carry the last request (cut, timed out): the next
  // request's batches are half as large, down to 16 KiB, so that a slow or
  // flaky link still moves a little each round.
  void LinkFailed();

  const SyncProgress& progress() const { return progress_; }

 private:
  // The store's gaps this session has not asked for yet, at most `max`.
  Result<std::vector<SyncRequest::Wanted>> UnaskedGaps(size_t max);
  Replica& replica_;
  SyncOptions options_;
  SyncProgress progress_;
  size_t push_bytes_ = 0;               // this round's push size
  uint32_t pull_bytes_ = 0;             // this round's pull size
  uint64_t first_pushed_counter_ = 0;   // lowest counter in the last request
  uint64_t last_pushed_counter_ = 0;    // highest counter in the last request
  bool relay_sent_ = false;             // the last request carried the trust documents again
  uint64_t relay_from_ = 0;             // the hub's registry version when it was built
  bool relayed_chain_ = false;          // it carried registry versions the hub lacked
  uint64_t cursor_sent_ = 0;            // the pull cursor of the last request
  bool sent_registry_ = false;          // the last request carried a registry change
  std::vector<Bytes> sent_grants_;      // the key grants the last request carried
  std::vector<uint64_t> refetch_sent_;  // the log positions the last request asked for again
  std::vector<SyncRequest::Wanted> wanted_sent_;  // the gaps the last request asked for
  std::vector<SyncRequest::Wanted> asked_;        // the gaps this session asked for (once each)
  std::set<uint64_t> refused_seqs_;               // log positions refused this session
};

// Makes the next sync read the hub's whole log again from its start
// (`enlace sync --full`): a repair for a device that missed writes (writes
// already held are recognised and skipped).
Status RereadLog(Replica& replica);

// What a device knows of its sync state.
struct SyncStatus {
  uint64_t pending_writes = 0;
  uint64_t last_sync_ms = 0;  // 0: never
  uint64_t cursor = 0;
  int64_t clock_offset_ms = 0;
  std::vector<Member> members;
  // Write numbers of other devices known to exist and not received (§6.11).
  uint64_t missing_writes = 0;
};
Result<SyncStatus> GetSyncStatus(Replica& replica);

// ---- joining a team ---------------------------------------------------------------

// The first coordinator: after Replica::CreateTeam, registers the team and
// this device on the hub with a one-time bootstrap token.
Result<OutgoingRequest> BuildRegisterTeamRequest(Replica& replica, std::string_view team_name,
                                                 std::string_view device_name,
                                                 std::string_view bootstrap_token);
Status HandleMembersResponse(Replica& replica, std::span<const uint8_t> body);

// Checks the body of a hub's 403 (RevokedNotice): true only when it holds
// a registry chain, from this device's own registry, that revokes this
// device; a hub cannot forge one. The caller then wipes the device.
Result<bool> CheckRevokedNotice(Replica& replica, std::span<const uint8_t> body);

// What an invite code tells before it is used.
struct InviteInfo {
  std::string hub_url;
  std::string tls_pin;  // "sha256//..." of the hub's public key, or ""
  uint64_t expires_ms = 0;
};
Result<InviteInfo> ParseInviteCode(std::string_view code);

// A coordinator's invite: the request that registers it on the hub and the
// one-time code to hand to the new device's holder, person to person. The
// code carries the hub URL, its TLS pin and the secret that unwraps the
// team keys; the hub only ever sees a verifier and the wrapped envelope.
struct PreparedInvite {
  OutgoingRequest request;
  std::string code;
  uint64_t expires_ms = 0;
};
Result<PreparedInvite> PrepareInvite(Replica& coordinator, std::string_view hub_url,
                                     std::string_view tls_pin, Role role, uint64_t valid_for_ms);

// After the hub stored `invite`: keeps it, so that it can be sent again to
// a hub restored from a backup that lacks it.
Status KeepInvite(Replica& coordinator, const PreparedInvite& invite);
// The kept invites a hub found behind may lack (SyncProgress::hub_behind):
// those not expired and not used by a member, each as a freshly signed
// request. Forgets the others.
Result<std::vector<OutgoingRequest>> InvitesToSendAgain(Replica& coordinator);

// A new device (fresh Replica, no team) redeems `code`.
Result<OutgoingRequest> BuildJoinRequest(Replica& replica, std::string_view code,
                                         std::string_view device_name);
// Unwraps the team keys with the code's secret and trusts the members.
Status HandleJoinResponse(Replica& replica, std::string_view code, std::span<const uint8_t> body);

// ---- published reports ------------------------------------------------------------------

// A coordinator publishes `report_json` (an aggregate, suppressed report in
// the format of docs/REPORTS.md) to its team's hub: POST /v1/reports,
// signed. Checked here only for size (kMaxReportBytes, else
// kResourceExhausted) and for being a JSON object (kInvalidArgument); the
// hub checks the rest and refuses a published value below k with HTTP 422.
// kFailedPrecondition without a team. The answer goes to
// DecodePublishReportAnswer (wire.h).
Result<OutgoingRequest> BuildPublishReportRequest(Replica& replica, std::string_view report_json);

// Any team member: GET /v1/reports, signed, empty body. The answer goes to
// DecodeReportList (wire.h).
Result<OutgoingRequest> BuildListReportsRequest(Replica& replica);

// Any team member: GET /v1/reports/<id>, signed. The answer is the report's
// JSON exactly as it was published. kInvalidArgument for an id that is not
// 32 hex characters (upper case is accepted).
Result<OutgoingRequest> BuildGetReportRequest(Replica& replica, std::string_view report_id);

// ---- record history (audit) ---------------------------------------------------------------

// Any team member: POST /v1/history, signed, for every write of one record
// the hub holds. The answer goes to DecodeHistoryResponse (wire.h) and its
// writes to AuditRecord (audit.h). kFailedPrecondition without a team;
// kInvalidArgument for a bad collection name.
Result<OutgoingRequest> BuildHistoryRequest(Replica& replica, std::string_view collection,
                                            const RecordId& record);

}  // namespace enlace

#endif  // ENLACE_SYNC_H_
