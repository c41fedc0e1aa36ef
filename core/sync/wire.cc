#include "enlace/wire.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "base/codec.h"
#include "base/compress.h"
#include "crypto/crypto.h"
#include "trust/doc_codec.h"

namespace enlace {

using internal::Decoder;
using internal::Encoder;
using internal::GetBool;
using internal::GetRole;
using internal::PutBool;
using internal::PutRole;

namespace {

// Each code's HTTP status. For a status, the first entry with it is the code
// a device reads back.
struct HttpCode {
  StatusCode code;
  int http;
};
constexpr HttpCode kHttpCodes[] = {
    {StatusCode::kOk, 200},
    {StatusCode::kInvalidArgument, 400},
    {StatusCode::kCorruption, 400},
    {StatusCode::kDecryptFailed, 400},
    {StatusCode::kUnauthenticated, 401},
    {StatusCode::kWrongPassphrase, 401},
    {StatusCode::kPermissionDenied, 403},
    {StatusCode::kNotFound, 404},
    {StatusCode::kFailedPrecondition, 409},
    {StatusCode::kAlreadyExists, 409},
    {StatusCode::kResourceExhausted, 413},
    {StatusCode::kInvalidArgument, 422},  // read back only: a report below k
    {StatusCode::kUnavailable, 503},
    {StatusCode::kIoError, 500},
    {StatusCode::kInternal, 500},
};

}  // namespace

int HttpStatusFor(StatusCode code) {
  for (const HttpCode& c : kHttpCodes) {
    if (c.code == code) return c.http;
  }
  return 500;
}

StatusCode StatusCodeForHttp(int http_status) {
  if (http_status == 500) return StatusCode::kUnavailable;
  for (const HttpCode& c : kHttpCodes) {
    if (c.http == http_status && c.http != 200) return c.code;
  }
  return StatusCode::kUnavailable;
}

namespace {

constexpr char kMagic[4] = {'E', 'N', 'L', 'C'};

enum class MessageType : uint8_t {
  kSyncRequest = 1,
  kSyncResponse = 2,
  kRegisterTeamRequest = 3,
  kCreateInviteRequest = 4,
  kJoinRequest = 5,
  kJoinResponse = 6,
  kMembersResponse = 7,
  kRevokedNotice = 8,
};

void Begin(Encoder& e, MessageType type) {
  e.Raw(internal::AsBytes(std::string_view(kMagic, 4)));
  e.U32(kProtocolVersion);
  e.U8(static_cast<uint8_t>(type));
}

Status Expect(Decoder& d, MessageType type) {
  std::array<uint8_t, 4> magic{};
  ENLACE_RETURN_IF_ERROR(d.Raw(magic, "envelope magic"));
  if (std::memcmp(magic.data(), kMagic, 4) != 0) return Status::Corruption("not an enlace message");
  uint32_t version = 0;
  ENLACE_RETURN_IF_ERROR(d.U32(version, "protocol version"));
  if (version != kProtocolVersion) {
    return Status::FailedPrecondition("protocol version " + std::to_string(version) +
                                      " is not supported (this side speaks " +
                                      std::to_string(kProtocolVersion) + ")");
  }
  uint8_t t = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(t, "message type"));
  if (t != static_cast<uint8_t>(type)) return Status::Corruption("unexpected message type");
  return Status::Ok();
}

// A write list: its count, then (when not empty) the size of the encoded
// list and one zstd frame of it. Writes of one batch share their team,
// device ids, collection and field names, which compress away; values are
// already compressed inside each write's ciphertext.
void PutWrites(Encoder& e, const std::vector<Bytes>& writes) {
  e.U32(static_cast<uint32_t>(writes.size()));
  if (writes.empty()) return;
  Encoder list;
  for (const auto& w : writes) list.Blob(w);
  const Bytes raw = list.Finish();
  e.U32(static_cast<uint32_t>(raw.size()));
  e.Blob(internal::Compress(raw));
}
Status GetWrites(Decoder& d, std::vector<Bytes>& writes, const WireLimits& l) {
  uint32_t n = 0;
  // Each write needs at least 4 bytes once decompressed; the frame itself
  // at least 1 per write in a sane encoder, which bounds the count by the
  // input before anything is allocated.
  ENLACE_RETURN_IF_ERROR(d.Count(n, l.max_writes, 1, "write list"));
  writes.clear();
  if (n == 0) return Status::Ok();
  uint32_t raw_size = 0;
  ENLACE_RETURN_IF_ERROR(d.U32(raw_size, "write list size"));
  if (raw_size > l.max_batch_bytes) {
    return Status::ResourceExhausted("write list of " + std::to_string(raw_size) +
                                     " bytes is over the limit of " +
                                     std::to_string(l.max_batch_bytes));
  }
  if (raw_size / 4 < n) return Status::Corruption("write list is shorter than its count");
  Bytes frame;
  // A frame is at most a little larger than what it holds (zstd's bound).
  const size_t max_frame = size_t{raw_size} + raw_size / 128 + 1024;
  ENLACE_RETURN_IF_ERROR(d.Blob(frame, max_frame, "write list"));
  ENLACE_ASSIGN_OR_RETURN(Bytes raw, internal::Decompress(frame, raw_size));
  Decoder list(raw);
  writes.resize(n);
  for (auto& w : writes) ENLACE_RETURN_IF_ERROR(list.Blob(w, l.max_write_bytes, "write"));
  return list.ExpectEnd("write list");
}

void PutDocs(Encoder& e, const std::vector<Bytes>& docs) {
  e.U32(static_cast<uint32_t>(docs.size()));
  for (const auto& x : docs) e.Blob(x);
}
Status GetDocs(Decoder& d, std::vector<Bytes>& docs, const WireLimits& l, const char* what) {
  uint32_t n = 0;
  ENLACE_RETURN_IF_ERROR(d.Count(n, l.max_documents, 4, what));
  docs.resize(n);
  for (auto& x : docs) ENLACE_RETURN_IF_ERROR(d.Blob(x, l.max_document_bytes, what));
  return Status::Ok();
}

void PutTrust(Encoder& e, const TrustUpdate& t) {
  e.U64(t.version);
  PutDocs(e, t.registries);
  PutDocs(e, t.admissions);
}
Status GetTrust(Decoder& d, TrustUpdate& t, const WireLimits& l) {
  ENLACE_RETURN_IF_ERROR(d.U64(t.version, "trust version"));
  ENLACE_RETURN_IF_ERROR(GetDocs(d, t.registries, l, "registries"));
  return GetDocs(d, t.admissions, l, "admissions");
}

// Decodes `body` as message `type` with `read`, catching every exit.
template <typename T, typename F>
Result<T> DecodeMessage(std::span<const uint8_t> body, MessageType type, F&& read) {
  Decoder d(body);
  T m;
  ENLACE_RETURN_IF_ERROR(Expect(d, type));
  ENLACE_RETURN_IF_ERROR(read(d, m));
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("message"));
  return m;
}

}  // namespace

// ---- SyncRequest --------------------------------------------------------------------

Bytes Encode(const SyncRequest& m) {
  Encoder e;
  Begin(e, MessageType::kSyncRequest);
  e.U64(m.cursor);
  e.U64(m.members_version);
  e.U64(m.registry_version);
  e.U32(m.key_version);
  e.U32(m.max_response_bytes);
  e.Blob(m.registry);
  PutDocs(e, m.key_grants);
  PutWrites(e, m.writes);
  e.U32(static_cast<uint32_t>(m.refetch.size()));
  for (uint64_t q : m.refetch) e.U64(q);
  PutDocs(e, m.admissions);
  e.U32(static_cast<uint32_t>(m.wanted.size()));
  for (const auto& w : m.wanted) {
    e.Raw(w.device.bytes);
    e.U64(w.lo);
    e.U64(w.hi);
  }
  PutDocs(e, m.relay_registries);
  return e.Finish();
}

Result<SyncRequest> DecodeSyncRequest(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<SyncRequest>(
      body, MessageType::kSyncRequest, [&](Decoder& d, SyncRequest& m) {
        ENLACE_RETURN_IF_ERROR(d.U64(m.cursor, "cursor"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.members_version, "members version"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.registry_version, "registry version"));
        ENLACE_RETURN_IF_ERROR(d.U32(m.key_version, "key version"));
        ENLACE_RETURN_IF_ERROR(d.U32(m.max_response_bytes, "max response bytes"));
        ENLACE_RETURN_IF_ERROR(d.Blob(m.registry, l.max_document_bytes, "registry"));
        ENLACE_RETURN_IF_ERROR(GetDocs(d, m.key_grants, l, "key grants"));
        ENLACE_RETURN_IF_ERROR(GetWrites(d, m.writes, l));
        uint32_t n = 0;
        ENLACE_RETURN_IF_ERROR(d.Count(n, kMaxRefetch, 8, "refetch positions"));
        m.refetch.resize(n);
        for (auto& q : m.refetch) ENLACE_RETURN_IF_ERROR(d.U64(q, "refetch position"));
        ENLACE_RETURN_IF_ERROR(GetDocs(d, m.admissions, l, "admissions"));
        ENLACE_RETURN_IF_ERROR(d.Count(n, kMaxWanted, 32, "wanted ranges"));
        m.wanted.resize(n);
        for (auto& w : m.wanted) {
          ENLACE_RETURN_IF_ERROR(d.Raw(w.device.bytes, "wanted device"));
          ENLACE_RETURN_IF_ERROR(d.U64(w.lo, "wanted from"));
          ENLACE_RETURN_IF_ERROR(d.U64(w.hi, "wanted to"));
          if (w.lo == 0 || w.lo > w.hi || w.hi > Write::kMaxCounter) {
            return Status::Corruption("bad sync request: a wanted range is empty or out of range");
          }
        }
        ENLACE_RETURN_IF_ERROR(GetDocs(d, m.relay_registries, l, "relayed registries"));
        if (m.relay_registries.size() > kMaxRelayRegistries) {
          return Status::ResourceExhausted("bad sync request: more than 64 relayed registries");
        }
        return Status::Ok();
      });
}

// ---- SyncResponse -------------------------------------------------------------------

Bytes Encode(const SyncResponse& m) {
  Encoder e;
  Begin(e, MessageType::kSyncResponse);
  e.U64(m.hub_time_ms);
  e.U64(m.acked_up_to);
  e.U64(m.next_cursor);
  PutBool(e, m.more);
  PutTrust(e, m.trust);
  e.String(m.registry_refused);
  PutDocs(e, m.key_grants);
  e.U32(static_cast<uint32_t>(m.needs_keys.size()));
  for (const auto& id : m.needs_keys) e.Raw(id.bytes);
  e.U32(static_cast<uint32_t>(m.seqs.size()));
  for (uint64_t q : m.seqs) e.U64(q);
  PutWrites(e, m.writes);
  e.U32(m.reseal_below);
  e.U32(static_cast<uint32_t>(m.cutoffs.size()));
  for (const auto& c : m.cutoffs) {
    e.Raw(c.device.bytes);
    e.U64(c.counter);
  }
  e.Raw(m.log_id);
  e.U64(m.log_end);
  e.U64(m.registry_version);
  e.U64(m.out_of_scope);
  return e.Finish();
}

Result<SyncResponse> DecodeSyncResponse(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<SyncResponse>(
      body, MessageType::kSyncResponse, [&](Decoder& d, SyncResponse& m) {
        ENLACE_RETURN_IF_ERROR(d.U64(m.hub_time_ms, "hub time"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.acked_up_to, "acked"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.next_cursor, "next cursor"));
        ENLACE_RETURN_IF_ERROR(GetBool(d, m.more, "more"));
        ENLACE_RETURN_IF_ERROR(GetTrust(d, m.trust, l));
        ENLACE_RETURN_IF_ERROR(d.String(m.registry_refused, l.max_text_bytes, "refusal"));
        ENLACE_RETURN_IF_ERROR(GetDocs(d, m.key_grants, l, "key grants"));
        uint32_t n = 0;
        ENLACE_RETURN_IF_ERROR(d.Count(n, l.max_members, 16, "needs keys"));
        m.needs_keys.resize(n);
        for (auto& id : m.needs_keys) ENLACE_RETURN_IF_ERROR(d.Raw(id.bytes, "needs keys"));
        ENLACE_RETURN_IF_ERROR(d.Count(n, l.max_writes, 8, "log positions"));
        m.seqs.resize(n);
        for (auto& q : m.seqs) ENLACE_RETURN_IF_ERROR(d.U64(q, "log position"));
        ENLACE_RETURN_IF_ERROR(GetWrites(d, m.writes, l));
        if (m.seqs.size() != m.writes.size()) {
          return Status::Corruption("every pulled write needs its log position");
        }
        ENLACE_RETURN_IF_ERROR(d.U32(m.reseal_below, "reseal below"));
        ENLACE_RETURN_IF_ERROR(d.Count(n, l.max_members, 24, "revocation cut-offs"));
        m.cutoffs.resize(n);
        for (auto& c : m.cutoffs) {
          ENLACE_RETURN_IF_ERROR(d.Raw(c.device.bytes, "cut-off device"));
          ENLACE_RETURN_IF_ERROR(d.U64(c.counter, "cut-off counter"));
        }
        ENLACE_RETURN_IF_ERROR(d.Raw(m.log_id, "log id"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.log_end, "log end"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.registry_version, "registry version"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.out_of_scope, "out of scope"));
        return Status::Ok();
      });
}

// ---- RegisterTeamRequest --------------------------------------------------------------

Bytes Encode(const RegisterTeamRequest& m) {
  Encoder e;
  Begin(e, MessageType::kRegisterTeamRequest);
  e.Raw(m.team.bytes);
  e.String(m.team_name);
  e.String(m.bootstrap_token);
  e.String(m.device_name);
  e.Raw(m.signing_key);
  e.Raw(m.encryption_key);
  e.Blob(m.registry);
  return e.Finish();
}

Result<RegisterTeamRequest> DecodeRegisterTeamRequest(std::span<const uint8_t> body,
                                                      const WireLimits& l) {
  return DecodeMessage<RegisterTeamRequest>(
      body, MessageType::kRegisterTeamRequest, [&](Decoder& d, RegisterTeamRequest& m) {
        ENLACE_RETURN_IF_ERROR(d.Raw(m.team.bytes, "team"));
        ENLACE_RETURN_IF_ERROR(d.String(m.team_name, l.max_text_bytes, "team name"));
        ENLACE_RETURN_IF_ERROR(d.String(m.bootstrap_token, l.max_text_bytes, "token"));
        ENLACE_RETURN_IF_ERROR(d.String(m.device_name, l.max_text_bytes, "device name"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.signing_key, "signing key"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.encryption_key, "encryption key"));
        return d.Blob(m.registry, l.max_document_bytes, "registry");
      });
}

// ---- CreateInviteRequest ----------------------------------------------------------------

Bytes Encode(const CreateInviteRequest& m) {
  Encoder e;
  Begin(e, MessageType::kCreateInviteRequest);
  e.Raw(m.invite_id);
  e.Raw(m.verifier);
  e.U64(m.expires_ms);
  PutRole(e, m.role);
  e.Blob(m.envelope);
  e.Blob(m.grant);
  return e.Finish();
}

Result<CreateInviteRequest> DecodeCreateInviteRequest(std::span<const uint8_t> body,
                                                      const WireLimits& l) {
  return DecodeMessage<CreateInviteRequest>(
      body, MessageType::kCreateInviteRequest, [&](Decoder& d, CreateInviteRequest& m) {
        ENLACE_RETURN_IF_ERROR(d.Raw(m.invite_id, "invite id"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.verifier, "verifier"));
        ENLACE_RETURN_IF_ERROR(d.U64(m.expires_ms, "expiry"));
        ENLACE_RETURN_IF_ERROR(GetRole(d, m.role));
        ENLACE_RETURN_IF_ERROR(d.Blob(m.envelope, l.max_envelope_bytes, "envelope"));
        return d.Blob(m.grant, 1024, "invite grant");
      });
}

// ---- Join -------------------------------------------------------------------------------

Bytes Encode(const JoinRequest& m) {
  Encoder e;
  Begin(e, MessageType::kJoinRequest);
  e.Raw(m.invite_id);
  e.Raw(m.verifier);
  e.String(m.device_name);
  e.Raw(m.signing_key);
  e.Raw(m.encryption_key);
  e.Raw(m.binding);
  return e.Finish();
}

Result<JoinRequest> DecodeJoinRequest(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<JoinRequest>(
      body, MessageType::kJoinRequest, [&](Decoder& d, JoinRequest& m) {
        ENLACE_RETURN_IF_ERROR(d.Raw(m.invite_id, "invite id"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.verifier, "verifier"));
        ENLACE_RETURN_IF_ERROR(d.String(m.device_name, l.max_text_bytes, "device name"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.signing_key, "signing key"));
        ENLACE_RETURN_IF_ERROR(d.Raw(m.encryption_key, "encryption key"));
        return d.Raw(m.binding, "admission binding");
      });
}

Bytes Encode(const JoinResponse& m) {
  Encoder e;
  Begin(e, MessageType::kJoinResponse);
  e.Raw(m.team.bytes);
  PutRole(e, m.role);
  e.Blob(m.envelope);
  PutTrust(e, m.trust);
  return e.Finish();
}

Result<JoinResponse> DecodeJoinResponse(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<JoinResponse>(
      body, MessageType::kJoinResponse, [&](Decoder& d, JoinResponse& m) {
        ENLACE_RETURN_IF_ERROR(d.Raw(m.team.bytes, "team"));
        ENLACE_RETURN_IF_ERROR(GetRole(d, m.role));
        ENLACE_RETURN_IF_ERROR(d.Blob(m.envelope, l.max_envelope_bytes, "envelope"));
        return GetTrust(d, m.trust, l);
      });
}

Bytes Encode(const MembersResponse& m) {
  Encoder e;
  Begin(e, MessageType::kMembersResponse);
  PutTrust(e, m.trust);
  return e.Finish();
}

Bytes Encode(const RevokedNotice& m) {
  Encoder e;
  Begin(e, MessageType::kRevokedNotice);
  PutDocs(e, m.registries);
  return e.Finish();
}

Result<RevokedNotice> DecodeRevokedNotice(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<RevokedNotice>(
      body, MessageType::kRevokedNotice,
      [&](Decoder& d, RevokedNotice& m) { return GetDocs(d, m.registries, l, "registries"); });
}

Result<MembersResponse> DecodeMembersResponse(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<MembersResponse>(
      body, MessageType::kMembersResponse,
      [&](Decoder& d, MembersResponse& m) { return GetTrust(d, m.trust, l); });
}

// ---- request signatures ------------------------------------------------------------------

Bytes RequestSigningInput(std::string_view method, std::string_view path, const DeviceId& device,
                          uint64_t time_ms, std::span<const uint8_t, 16> nonce,
                          std::span<const uint8_t> body) {
  const auto body_hash = internal::GenericHash(body);
  std::string s = "enlace-request-v1\n";
  s += method;
  s += '\n';
  s += path;
  s += '\n';
  s += device.ToHex();
  s += '\n';
  s += std::to_string(time_ms);
  s += '\n';
  s += internal::ToHex(nonce);
  s += '\n';
  s += internal::ToHex(body_hash);
  return Bytes(s.begin(), s.end());
}

Result<RequestSignature> ParseRequestSignature(
    const std::function<std::string(std::string_view)>& header) {
  RequestSignature sig;
  const std::string device = header(kHeaderDevice);
  const std::string time = header(kHeaderTime);
  const std::string nonce = header(kHeaderNonce);
  const std::string signature = header(kHeaderSignature);
  if (device.empty() || time.empty() || nonce.empty() || signature.empty()) {
    return Status::Unauthenticated("request is not signed");
  }
  auto id = DeviceId::FromHex(device);
  if (!id.ok()) return Status::Unauthenticated("bad device header");
  sig.device = *id;
  if (time.size() > 19 || time.find_first_not_of("0123456789") != std::string::npos) {
    return Status::Unauthenticated("bad time header");
  }
  sig.time_ms = std::stoull(time);
  auto n = internal::FromHex(nonce);
  if (!n.ok() || n->size() != sig.nonce.size()) return Status::Unauthenticated("bad nonce header");
  std::memcpy(sig.nonce.data(), n->data(), sig.nonce.size());
  auto s = internal::FromHex(signature);
  if (!s.ok() || s->size() != sig.signature.size()) {
    return Status::Unauthenticated("bad signature header");
  }
  std::memcpy(sig.signature.data(), s->data(), sig.signature.size());
  return sig;
}

Status VerifyRequestSignature(const RequestSignature& sig, const PublicKey32& signing_key,
                              std::string_view method, std::string_view path,
                              std::span<const uint8_t> body) {
  const Bytes input = RequestSigningInput(method, path, sig.device, sig.time_ms, sig.nonce, body);
  if (!internal::VerifySignature(signing_key, input, sig.signature)) {
    return Status::Unauthenticated("request signature does not verify");
  }
  return Status::Ok();
}

// ---- published reports ------------------------------------------------------------------

bool IsReportId(std::string_view id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

namespace {

using nlohmann::json;

// The member `name` of `j` as T, or kCorruption naming it.
template <typename T>
Status JsonField(const json& j, const char* name, T& out) {
  const auto it = j.find(name);
  if (it == j.end()) return Status::Corruption(std::string("the answer has no ") + name);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Status::Corruption(std::string("bad ") + name + " in the answer");
    out = it->template get<std::string>();
  } else {
    if (!it->is_number_unsigned() || it->template get<uint64_t>() > std::numeric_limits<T>::max()) {
      return Status::Corruption(std::string("bad ") + name + " in the answer");
    }
    out = static_cast<T>(it->template get<uint64_t>());
  }
  return Status::Ok();
}

}  // namespace

std::string EncodePublishReportAnswer(const PublishReportAnswer& a) {
  return json{{"id", a.id}, {"published_at_ms", a.published_at_ms}}.dump();
}

Result<PublishReportAnswer> DecodePublishReportAnswer(std::string_view body) {
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return Status::Corruption("the hub's answer is not a JSON object");
  PublishReportAnswer a;
  ENLACE_RETURN_IF_ERROR(JsonField(j, "id", a.id));
  ENLACE_RETURN_IF_ERROR(JsonField(j, "published_at_ms", a.published_at_ms));
  if (!IsReportId(a.id)) return Status::Corruption("bad report id in the answer");
  return a;
}

std::string EncodeReportList(const std::vector<ReportListing>& reports) {
  json list = json::array();
  for (const auto& r : reports) {
    list.push_back({{"id", r.id},
                    {"title", r.title},
                    {"from", r.from},
                    {"to", r.to},
                    {"k", r.k},
                    {"published_at_ms", r.published_at_ms},
                    {"publisher", r.publisher.ToHex()}});
  }
  return json{{"reports", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<ReportListing>> DecodeReportList(std::string_view body) {
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object() || !j.contains("reports") || !j["reports"].is_array()) {
    return Status::Corruption("the hub's report list is malformed");
  }
  std::vector<ReportListing> out;
  for (const auto& e : j["reports"]) {
    if (!e.is_object()) return Status::Corruption("the hub's report list is malformed");
    ReportListing r;
    std::string publisher;
    ENLACE_RETURN_IF_ERROR(JsonField(e, "id", r.id));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "title", r.title));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "from", r.from));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "to", r.to));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "k", r.k));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "published_at_ms", r.published_at_ms));
    ENLACE_RETURN_IF_ERROR(JsonField(e, "publisher", publisher));
    if (!IsReportId(r.id)) return Status::Corruption("bad report id in the answer");
    auto device = DeviceId::FromHex(publisher);
    if (!device.ok()) return Status::Corruption("bad publisher in the answer");
    r.publisher = *device;
    out.push_back(std::move(r));
  }
  return out;
}

// ---- record history (audit) --------------------------------------------------------------
// Message types from 32 up belong to this block, so that the numbers of the
// enum above can grow without meeting them.

namespace {
constexpr auto kHistoryRequestType = static_cast<MessageType>(32);
constexpr auto kHistoryResponseType = static_cast<MessageType>(33);
constexpr size_t kMaxCollectionBytes = WriteLimits{}.max_name_bytes;
}  // namespace

Bytes Encode(const HistoryRequest& m) {
  Encoder e;
  Begin(e, kHistoryRequestType);
  e.String(m.collection);
  e.Raw(m.record.bytes);
  return e.Finish();
}

Result<HistoryRequest> DecodeHistoryRequest(std::span<const uint8_t> body, const WireLimits&) {
  return DecodeMessage<HistoryRequest>(
      body, kHistoryRequestType, [&](Decoder& d, HistoryRequest& m) {
        ENLACE_RETURN_IF_ERROR(d.String(m.collection, kMaxCollectionBytes, "collection"));
        return d.Raw(m.record.bytes, "record id");
      });
}

Bytes Encode(const HistoryResponse& m) {
  Encoder e;
  Begin(e, kHistoryResponseType);
  PutWrites(e, m.writes);
  return e.Finish();
}

Result<HistoryResponse> DecodeHistoryResponse(std::span<const uint8_t> body, const WireLimits& l) {
  return DecodeMessage<HistoryResponse>(
      body, kHistoryResponseType,
      [&](Decoder& d, HistoryResponse& m) { return GetWrites(d, m.writes, l); });
}

}  // namespace enlace
