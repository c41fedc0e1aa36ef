// The sync protocol's messages and request signatures (docs/PROTOCOL.md).
//
// Every body is an envelope: magic "ENLC", protocol version, message type,
// then the message encoded with cereal's portable binary archive. Decoding
// checks every length against WireLimits before allocating; bad input is an
// error (kCorruption, kResourceExhausted), never a crash. Both sides (the
// hub and the device's sync engine) use these types.
#ifndef ENLACE_WIRE_H_
#define ENLACE_WIRE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/limits.h"
#include "enlace/member.h"
#include "enlace/registry.h"
#include "enlace/status.h"
#include "enlace/types.h"
#include "enlace/write.h"

namespace enlace {

inline constexpr uint16_t kProtocolVersion = 7;

// Endpoints.
inline constexpr char kPathSync[] = "/v1/sync";
inline constexpr char kPathRegisterTeam[] = "/v1/teams";
inline constexpr char kPathCreateInvite[] = "/v1/invites";
inline constexpr char kPathJoin[] = "/v1/join";
inline constexpr char kPathHealth[] = "/v1/health";
inline constexpr char kPathMetrics[] = "/metrics";

// Request signature headers (lower-case), and the hub's clock on every response.
inline constexpr char kHeaderDevice[] = "x-enlace-device";
inline constexpr char kHeaderTime[] = "x-enlace-time";
inline constexpr char kHeaderNonce[] = "x-enlace-nonce";
inline constexpr char kHeaderSignature[] = "x-enlace-signature";
inline constexpr char kHeaderHubTime[] = "x-enlace-hub-time";

// The HTTP status a hub answers a refusal with (kOk: 200), and the error a
// device reads back from a status: 400 kInvalidArgument (also 422, a report
// with a published count below k), 401 kUnauthenticated, 403
// kPermissionDenied, 404 kNotFound, 409 kFailedPrecondition, 413
// kResourceExhausted, anything else kUnavailable. One table serves both.
int HttpStatusFor(StatusCode code);
StatusCode StatusCodeForHttp(int http_status);

// How far a request's time may be from the hub's clock.
inline constexpr uint64_t kRequestFreshnessMs = 5 * 60 * 1000;

// ---- messages -----------------------------------------------------------------

// Device -> hub, POST /v1/sync: push a batch, pull after a cursor.
struct SyncRequest {
  uint64_t cursor = 0;            // the hub log position already pulled
  uint64_t members_version = 0;   // the TrustUpdate version the device holds
  uint64_t registry_version = 0;  // the newest registry version it checked
  uint32_t key_version = 0;       // the newest team key version it holds
  uint32_t max_response_bytes = 1 << 20;
  Bytes registry;                 // a coordinator's new registry version, or empty
  std::vector<Bytes> key_grants;  // a coordinator's KeyGrants for other members
  std::vector<Bytes> writes;      // own encoded writes, in counter order
  // Log positions to deliver again: writes this device refused (a delivery
  // altered on the way) whose genuine bytes it still wants.
  std::vector<uint64_t> refetch;
  // Sent after the device found the hub behind what it had acknowledged
  // (restored from a backup): the admissions of its last trust update, which
  // the hub stores when it lacks them (§18.3 documents are self-certifying).
  std::vector<Bytes> admissions;
  // Write numbers of other devices this device lacks although their later
  // writes promised them (§6.11): the hub delivers those it stores.
  struct Wanted {
    DeviceId device;
    uint64_t lo = 0, hi = 0;  // inclusive, 1 <= lo <= hi
    friend bool operator==(const Wanted&, const Wanted&) = default;
  };
  std::vector<Wanted> wanted;
  // Registry versions the hub lacks (its `registry_version` is below this
  // device's), ascending: each signed by a coordinator of the one before, so
  // the hub checks them as a chain whoever carries them (§9). At most
  // kMaxRelayRegistries; the rest go in the next request.
  std::vector<Bytes> relay_registries;
};

// At most this many positions in one request's refetch list.
inline constexpr size_t kMaxRefetch = 64;
// At most this many ranges in one request's wanted list.
inline constexpr size_t kMaxWanted = 64;
// At most this many registry versions relayed in one request.
inline constexpr size_t kMaxRelayRegistries = 64;

// Hub -> device.
struct SyncResponse {
  uint64_t hub_time_ms = 0;
  uint64_t acked_up_to = 0;          // every own write with counter <= this is stored
  uint64_t next_cursor = 0;          // pull from here next time
  bool more = false;                 // more writes wait after next_cursor
  TrustUpdate trust;                 // only when the device's members_version is behind
  std::string registry_refused;      // why the request's registry was not stored ("" if it was)
  std::vector<Bytes> key_grants;     // KeyGrants to this device above its key version
  std::vector<DeviceId> needs_keys;  // to a coordinator: members missing the newest key
  std::vector<uint64_t> seqs;        // the log position of each of `writes`
  std::vector<Bytes> writes;         // refetched positions first, then the log after the cursor
  // Not 0: the hub stored this request's writes only up to the first one
  // sealed under a team key older than this version (the newest granted to
  // the device); the device seals its unsent writes again under its newest
  // key (the grant comes in key_grants) and pushes them next round.
  uint32_t reseal_below = 0;
  std::vector<RevocationCutoff> cutoffs;  // with registry_refused: sign the revocation again
  // The identity of the hub's log: random, new at every `enlace-hub admin
  // restore`. A device that sees it change, or sees the log end before its
  // cursor, knows the hub lost writes it had acknowledged (§9).
  std::array<uint8_t, 16> log_id{};
  uint64_t log_end = 0;  // the hub's highest log position (any team)
  // The newest registry version the hub stores for the device's team, after
  // this request: a device holding a newer one relays what the hub lacks.
  uint64_t registry_version = 0;
  // Not 0: the hub stored this request's writes only up to this number of
  // the device, a write in a scope no coordinator assigned it (§6.12): its
  // registry (in `trust`) takes that scope back; the device forgets it,
  // and the numbers go as voids.
  uint64_t out_of_scope = 0;
};

// First coordinator, POST /v1/teams, authorised by a one-time bootstrap token.
struct RegisterTeamRequest {
  TeamId team;
  std::string team_name;
  std::string bootstrap_token;
  std::string device_name;
  PublicKey32 signing_key{};
  PublicKey32 encryption_key{};
  Bytes registry;  // the team's first Registry, signed by this device
};

// Coordinator, POST /v1/invites: the hub keeps only a verifier and an opaque
// envelope (the team keys wrapped under a secret that lives in the code).
struct CreateInviteRequest {
  std::array<uint8_t, 16> invite_id{};
  std::array<uint8_t, 32> verifier{};
  uint64_t expires_ms = 0;
  Role role = Role::kField;
  Bytes envelope;
  Bytes grant;  // the InviteGrant, signed by the coordinator
};

// New device, POST /v1/join.
struct JoinRequest {
  std::array<uint8_t, 16> invite_id{};
  std::array<uint8_t, 32> verifier{};
  std::string device_name;
  PublicKey32 signing_key{};
  PublicKey32 encryption_key{};
  std::array<uint8_t, 64> binding{};  // Admission::binding, signed with the invite's key
};

struct JoinResponse {
  TeamId team;
  Role role = Role::kField;
  Bytes envelope;
  TrustUpdate trust;  // every registry version and admission of the team
};

// Answer to team registration: the team's trust documents. Invite creation
// answers an empty one (version 0), which carries nothing to apply.
struct MembersResponse {
  TrustUpdate trust;
};

// The body of a 403 to a revoked device's request: every registry version
// of its team. A device that can check the chain from its own registry to
// one revoking it destroys its data (remote wipe); the hub cannot forge it.
struct RevokedNotice {
  std::vector<Bytes> registries;
};

Bytes Encode(const SyncRequest& m);
Bytes Encode(const SyncResponse& m);
Bytes Encode(const RegisterTeamRequest& m);
Bytes Encode(const CreateInviteRequest& m);
Bytes Encode(const JoinRequest& m);
Bytes Encode(const JoinResponse& m);
Bytes Encode(const MembersResponse& m);
Bytes Encode(const RevokedNotice& m);

Result<SyncRequest> DecodeSyncRequest(std::span<const uint8_t> body, const WireLimits& l = {});
Result<SyncResponse> DecodeSyncResponse(std::span<const uint8_t> body, const WireLimits& l = {});
Result<RegisterTeamRequest> DecodeRegisterTeamRequest(std::span<const uint8_t> body,
                                                      const WireLimits& l = {});
Result<CreateInviteRequest> DecodeCreateInviteRequest(std::span<const uint8_t> body,
                                                      const WireLimits& l = {});
Result<JoinRequest> DecodeJoinRequest(std::span<const uint8_t> body, const WireLimits& l = {});
Result<JoinResponse> DecodeJoinResponse(std::span<const uint8_t> body, const WireLimits& l = {});
Result<MembersResponse> DecodeMembersResponse(std::span<const uint8_t> body,
                                              const WireLimits& l = {});
Result<RevokedNotice> DecodeRevokedNotice(std::span<const uint8_t> body, const WireLimits& l = {});

// ---- request signatures ----------------------------------------------------------

struct RequestSignature {
  DeviceId device;
  uint64_t time_ms = 0;
  std::array<uint8_t, 16> nonce{};
  std::array<uint8_t, 64> signature{};
};

// The bytes a request signature covers: method, path, signing device,
// time, nonce and the BLAKE2b-256 of the body, newline separated.
Bytes RequestSigningInput(std::string_view method, std::string_view path, const DeviceId& device,
                          uint64_t time_ms, std::span<const uint8_t, 16> nonce,
                          std::span<const uint8_t> body);

// Reads the four signature headers through `header` (name -> value, "" when
// absent). kUnauthenticated when one is missing or malformed.
Result<RequestSignature> ParseRequestSignature(
    const std::function<std::string(std::string_view)>& header);

// kUnauthenticated unless `sig` is `signing_key`'s signature of the request.
Status VerifyRequestSignature(const RequestSignature& sig, const PublicKey32& signing_key,
                              std::string_view method, std::string_view path,
                              std::span<const uint8_t> body);

// ---- published reports -------------------------------------------------------------
//
// A coordinator publishes an aggregate, small-cell-suppressed report (JSON,
// docs/REPORTS.md) to its team's hub; team members (signed requests) and the
// team's viewer tokens (`authorization: Bearer vt-...`) read it back. These
// answers are JSON, not envelopes (docs/PROTOCOL.md §16).

// POST publishes (coordinator only), GET lists; GET kReportsPath + "/" + id
// fetches one report, byte for byte as it was published.
inline constexpr char kReportsPath[] = "/v1/reports";
inline constexpr char kHeaderAuthorization[] = "authorization";
// The largest report the hub accepts, in bytes of JSON.
inline constexpr size_t kMaxReportBytes = 256 * 1024;

// The hub's answer to a publication.
struct PublishReportAnswer {
  std::string id;  // 32 lower-case hex characters
  uint64_t published_at_ms = 0;
  friend bool operator==(const PublishReportAnswer&, const PublishReportAnswer&) = default;
};

// One entry of GET /v1/reports, newest first.
struct ReportListing {
  std::string id;
  std::string title;
  std::string from;  // "YYYY-MM-DD" or ""
  std::string to;
  uint32_t k = 0;
  uint64_t published_at_ms = 0;
  DeviceId publisher;
  friend bool operator==(const ReportListing&, const ReportListing&) = default;
};

// The JSON texts of the answers, and their parsers. A parser refuses
// anything that is not exactly the documented shape (kCorruption).
std::string EncodePublishReportAnswer(const PublishReportAnswer& answer);
Result<PublishReportAnswer> DecodePublishReportAnswer(std::string_view body);
std::string EncodeReportList(const std::vector<ReportListing>& reports);
Result<std::vector<ReportListing>> DecodeReportList(std::string_view body);

// True for a report id as the hub makes them: 32 lower-case hex characters.
bool IsReportId(std::string_view id);

// ---- record history (audit) --------------------------------------------------------------
//
// Any team member, POST /v1/history, signed like /v1/sync: every write of one
// record the hub holds for the member's team, in log order, exactly as
// stored, so the device can verify each one (enlace/audit.h). The hub keeps
// no team key: it selects by the clear collection and record id only.

inline constexpr char kPathHistory[] = "/v1/history";

struct HistoryRequest {
  std::string collection;  // 1..64 bytes (WriteLimits::max_name_bytes)
  RecordId record;
};

struct HistoryResponse {
  std::vector<Bytes> writes;  // encoded writes of the record, in log order
};

Bytes Encode(const HistoryRequest& m);
Bytes Encode(const HistoryResponse& m);
Result<HistoryRequest> DecodeHistoryRequest(std::span<const uint8_t> body,
                                            const WireLimits& l = {});
Result<HistoryResponse> DecodeHistoryResponse(std::span<const uint8_t> body,
                                              const WireLimits& l = {});

}  // namespace enlace

#endif  // ENLACE_WIRE_H_
