#include "enlace/sync.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "base/codec.h"
#include "enlace/registry.h"
#include "replica/replica_impl.h"
#include "trust/team_impl.h"

namespace enlace {

using internal::SecretBytes;

namespace {

constexpr char kInvitePrefix[] = "enlace1.";
// Own unsent writes stamped further ahead of the (corrected) clock than this
// are re-stamped before they are pushed; the hub refuses 5 minutes.
constexpr uint64_t kRestampMarginMs = 60 * 1000;
constexpr char kInviteKdfContext[9] = "enlinvit";
constexpr uint64_t kInviteWrapSubkey = 1;
constexpr uint64_t kInviteVerifierSubkey = 2;

// Signs `body` for `method path` with the device key, at the corrected clock.
OutgoingRequest SignedRequest(Replica& replica, std::string path, Bytes body,
                              std::string method = "POST") {
  auto& impl = replica.impl();
  OutgoingRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  const uint64_t now = impl.clock().WallMs();
  std::array<uint8_t, 16> nonce{};
  internal::RandomFill(nonce);
  const Bytes input = RequestSigningInput(r.method, r.path, impl.device(), now, nonce, r.body);
  const auto sig = internal::Sign(impl.vault().secrets().signing.secret_key, input);
  r.headers = {{kHeaderDevice, impl.device().ToHex()},
               {kHeaderTime, std::to_string(now)},
               {kHeaderNonce, internal::ToHex(nonce)},
               {kHeaderSignature, internal::ToHex(sig)}};
  return r;
}

Status SetClockOffset(Replica::Impl& impl, int64_t offset) {
  impl.clock().SetWallClockOffsetMs(offset);
  return impl.store().SetMeta(internal::kMetaClockOffset, static_cast<uint64_t>(offset));
}

// Follows the hub's clock when this device's is more than `tolerance` off.
Status Follow(Replica::Impl& impl, uint64_t hub_ms, uint64_t tolerance_ms) {
  if (hub_ms == 0) return Status::Ok();
  const int64_t raw_offset = static_cast<int64_t>(hub_ms) -
                             static_cast<int64_t>(impl.clock().WallMs()) +
                             impl.clock().wall_clock_offset_ms();
  const int64_t magnitude = raw_offset < 0 ? -raw_offset : raw_offset;
  const int64_t offset = static_cast<uint64_t>(magnitude) > tolerance_ms ? raw_offset : 0;
  if (offset == impl.clock().wall_clock_offset_ms()) return Status::Ok();
  return SetClockOffset(impl, offset);
}

// ---- invite codes ------------------------------------------------------------------

struct InviteCode {
  std::string hub_url;
  std::string tls_pin;
  uint64_t expires_ms = 0;
  std::array<uint8_t, 16> invite_id{};
  SecretBytes secret;  // 32 bytes
};

std::string EncodeInviteCode(const InviteCode& c) {
  internal::Encoder e;
  e.String(c.hub_url);
  e.String(c.tls_pin);
  e.U64(c.expires_ms);
  e.Raw(c.invite_id);
  e.Raw(c.secret.view());
  Bytes raw = e.Finish();
  std::string code = kInvitePrefix + internal::ToBase64Url(raw);
  internal::Wipe(raw);
  return code;
}

Result<InviteCode> DecodeInviteCode(std::string_view code) {
  ENLACE_RETURN_IF_ERROR(internal::EnsureSodium());
  // People paste codes with stray spaces and line breaks.
  std::string clean;
  for (char ch : code) {
    if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t') clean += ch;
  }
  const std::string_view prefix(kInvitePrefix);
  if (clean.rfind(prefix, 0) != 0 || clean.size() > 4096) {
    return Status::InvalidArgument("this is not an enlace invite code");
  }
  Bytes raw(clean.size());
  size_t len = 0;
  if (sodium_base642bin(raw.data(), raw.size(), clean.data() + prefix.size(),
                        clean.size() - prefix.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return Status::InvalidArgument("the invite code is damaged (not base64)");
  }
  raw.resize(len);
  internal::Decoder d(raw);
  InviteCode c;
  std::array<uint8_t, 32> secret{};
  Status s = d.String(c.hub_url, 1024, "hub url");
  if (s.ok()) s = d.String(c.tls_pin, 256, "pin");
  if (s.ok()) s = d.U64(c.expires_ms, "expiry");
  if (s.ok()) s = d.Raw(c.invite_id, "invite id");
  if (s.ok()) s = d.Raw(secret, "secret");
  if (s.ok()) s = d.ExpectEnd("invite code");
  c.secret = SecretBytes(secret.data(), secret.size());
  internal::Wipe(secret);
  internal::Wipe(raw);
  if (!s.ok()) return Status::InvalidArgument("the invite code is damaged or incomplete");
  return c;
}

std::array<uint8_t, 32> InviteVerifier(const SecretBytes& secret) {
  const SecretBytes v =
      internal::DeriveSubkey(secret, kInviteVerifierSubkey, kInviteKdfContext, 32);
  std::array<uint8_t, 32> out{};
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Bytes InviteAad(const std::array<uint8_t, 16>& invite_id, const TeamId& team) {
  Bytes aad(invite_id.begin(), invite_id.end());
  aad.insert(aad.end(), team.bytes.begin(), team.bytes.end());
  return aad;
}

}  // namespace

Status StatusFromHubResponse(int http_status, std::string_view body) {
  std::string message;
  const auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    message = j["error"].get<std::string>();
  } else {
    message = "the hub answered HTTP " + std::to_string(http_status);
  }
  return Status(StatusCodeForHttp(http_status), std::move(message));
}

int64_t FollowHubClock(Replica& replica, std::string_view hub_time_header, uint64_t tolerance_ms) {
  auto& impl = replica.impl();
  if (!hub_time_header.empty() && hub_time_header.size() <= 19 &&
      hub_time_header.find_first_not_of("0123456789") == std::string_view::npos) {
    (void)Follow(impl, std::stoull(std::string(hub_time_header)), tolerance_ms);
  }
  return impl.clock().wall_clock_offset_ms();
}

// ---- SyncSession ------------------------------------------------------------------------

namespace {

// Whether the hub has lost what it had acknowledged to this device: its log
// has another identity (`enlace-hub admin restore` gives it a new one), ends
// before this device's cursor, or holds fewer of this device's writes than
// it had acknowledged (a database copied back by hand). Records the log's
// identity.
Result<bool> NoticeHubBehind(Replica::Impl& impl, const SyncResponse& resp, uint64_t cursor_sent) {
  auto& store = impl.store();
  ENLACE_ASSIGN_OR_RETURN(auto known, store.GetDocument(internal::kDocHubLogId));
  ENLACE_ASSIGN_OR_RETURN(const uint64_t acked_high, store.GetMeta(internal::kMetaAckedHigh));
  const Bytes id(resp.log_id.begin(), resp.log_id.end());
  const bool other_log = known.has_value() && *known != id;
  if (!known || other_log) ENLACE_RETURN_IF_ERROR(store.SetDocument(internal::kDocHubLogId, id));
  return other_log || resp.log_end < cursor_sent || resp.acked_up_to < acked_high;
}

}  // namespace

SyncSession::SyncSession(Replica& replica, SyncOptions options)
    : replica_(replica),
      options_(options),
      push_bytes_(std::max<size_t>(1, std::min(options.first_push_bytes, options.max_push_bytes))),
      pull_bytes_(
          std::max<uint32_t>(1, std::min(options.first_pull_bytes, options.max_pull_bytes))) {}

void SyncSession::LinkFailed() {
  constexpr size_t kFloor = 16 * 1024;
  push_bytes_ = std::max(std::min(kFloor, push_bytes_), push_bytes_ / 2);
  pull_bytes_ = std::max(std::min<uint32_t>(kFloor, pull_bytes_), pull_bytes_ / 2);
}

Result<OutgoingRequest> SyncSession::NextRequest() {
  auto& impl = replica_.impl();
  if (replica_.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  {
    // Writes made while this device's clock ran ahead would be refused by
    // the hub; once the clock follows the hub's, re-stamp them.
    ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
    ENLACE_ASSIGN_OR_RETURN(size_t restamped, impl.RestampFutureWrites(kRestampMarginMs));
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    progress_.restamped += restamped;
  }
  ENLACE_ASSIGN_OR_RETURN(auto pending, impl.store().PendingWrites(impl.device(), push_bytes_));
  SyncRequest req;
  ENLACE_ASSIGN_OR_RETURN(req.cursor, impl.store().GetMeta(internal::kMetaPullCursor));
  cursor_sent_ = req.cursor;
  ENLACE_ASSIGN_OR_RETURN(req.members_version, impl.store().GetMeta(internal::kMetaMembersVersion));
  ENLACE_ASSIGN_OR_RETURN(req.registry_version,
                          impl.store().GetMeta(internal::kMetaRegistryVersion));
  req.key_version = impl.CurrentKeyVersion();
  req.max_response_bytes = pull_bytes_;
  // Registry changes and key grants this device signed go first.
  ENLACE_ASSIGN_OR_RETURN(auto outgoing, impl.store().GetDocument(internal::kDocOutgoingRegistry));
  if (outgoing) req.registry = std::move(*outgoing);
  sent_registry_ = !req.registry.empty();
  ENLACE_ASSIGN_OR_RETURN(req.key_grants, impl.store().QueuedKeyGrants());
  ENLACE_ASSIGN_OR_RETURN(req.refetch, impl.store().RefetchPositions(kMaxRefetch));
  refetch_sent_ = req.refetch;
  sent_grants_ = req.key_grants;
  ENLACE_ASSIGN_OR_RETURN(const uint64_t relay, impl.store().GetMeta(internal::kMetaRelayPending));
  relay_sent_ = relay != 0;
  if (relay_sent_) {
    // The hub was found behind: what it may lack of the team's trust goes
    // with the writes, checked by the hub as if their signers sent them.
    ENLACE_ASSIGN_OR_RETURN(internal::RelayDocuments docs, internal::DocumentsToRelay(impl));
    req.admissions = std::move(docs.admissions);
    for (auto& g : docs.key_grants) req.key_grants.push_back(std::move(g));
  }
  // Registry versions the hub said it lacks (restored from a backup), as a
  // chain it checks link by link.
  ENLACE_ASSIGN_OR_RETURN(relay_from_, impl.store().GetMeta(internal::kMetaHubRegistryVersion));
  if (relay_from_ != 0 && relay_from_ < req.registry_version) {
    ENLACE_ASSIGN_OR_RETURN(req.relay_registries,
                            internal::RegistryChainAbove(impl, relay_from_, kMaxRelayRegistries));
  }
  relayed_chain_ = !req.relay_registries.empty();
  // Write numbers of others this device lacks: each asked for once a session.
  ENLACE_ASSIGN_OR_RETURN(req.wanted, UnaskedGaps(kMaxWanted));
  wanted_sent_ = req.wanted;
  first_pushed_counter_ = 0;
  last_pushed_counter_ = 0;
  for (auto& [counter, bytes] : pending) {
    if (first_pushed_counter_ == 0) first_pushed_counter_ = counter;
    last_pushed_counter_ = std::max(last_pushed_counter_, counter);
    req.writes.push_back(std::move(bytes));
  }
  return SignedRequest(replica_, kPathSync, Encode(req));
}

Result<std::vector<SyncRequest::Wanted>> SyncSession::UnaskedGaps(size_t max) {
  ENLACE_ASSIGN_OR_RETURN(auto gaps, replica_.impl().store().Gaps(max + asked_.size()));
  std::vector<SyncRequest::Wanted> out;
  for (const auto& g : gaps) {
    if (out.size() == max) break;
    const SyncRequest::Wanted wanted{g.device, g.lo, g.hi};
    if (std::find(asked_.begin(), asked_.end(), wanted) == asked_.end()) out.push_back(wanted);
  }
  return out;
}

Result<bool> SyncSession::HandleResponse(std::span<const uint8_t> body) {
  auto& impl = replica_.impl();
  ENLACE_ASSIGN_OR_RETURN(SyncResponse resp, DecodeSyncResponse(body));
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_RETURN_IF_ERROR(Follow(impl, resp.hub_time_ms, 5000));
  SyncProgress delta;
  ENLACE_ASSIGN_OR_RETURN(const bool behind, NoticeHubBehind(impl, resp, cursor_sent_));
  if (behind) {
    // The hub lost what it had acknowledged (restored from a backup). Its
    // trust is older than this device's: not applied. This device reads its
    // log again from the start, queues again its own writes the hub lacks,
    // and sends its trust documents with the next request.
    ENLACE_ASSIGN_OR_RETURN(delta.resent, impl.RequeueOwnAbove(resp.acked_up_to));
    ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaRelayPending, 1));
    ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaMembersVersion, 0));
    ENLACE_RETURN_IF_ERROR(impl.store().ClearRefetch());
    refetch_sent_.clear();
  } else {
    ENLACE_RETURN_IF_ERROR(internal::ApplyTrust(impl, resp.trust));
    if (relay_sent_) ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaRelayPending, 0));
  }
  uint64_t requeued = 0;
  if (!behind && first_pushed_counter_ > 0 && resp.acked_up_to + 1 < first_pushed_counter_) {
    // The hub stores this device's numbers only up to acked_up_to and takes
    // none after a number it lacks (§6.11): what it lacks goes first, as
    // writes or voids.
    ENLACE_ASSIGN_OR_RETURN(requeued, impl.RequeueOwnAbove(resp.acked_up_to));
  }
  ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaAckedHigh, resp.acked_up_to));
  ENLACE_RETURN_IF_ERROR(
      impl.store().SetMeta(internal::kMetaHubRegistryVersion, resp.registry_version));
  ENLACE_ASSIGN_OR_RETURN(const uint64_t own_registry,
                          impl.store().GetMeta(internal::kMetaRegistryVersion));
  // The chain relayed this round moved the hub on and more of it is left.
  const bool relay_more =
      relayed_chain_ && resp.registry_version > relay_from_ && resp.registry_version < own_registry;
  if (sent_registry_ && !resp.registry_refused.empty()) {
    ENLACE_ASSIGN_OR_RETURN(bool resigned, internal::ResignRevocations(impl, resp.cutoffs));
    if (!resigned) {
      // The hub would not store the registry this device signed: drop it
      // and say why; the caller may sync and sign again.
      ENLACE_RETURN_IF_ERROR(impl.store().DeleteDocument(internal::kDocOutgoingRegistry));
      delta.registry_refused = resp.registry_refused;
    }
  }
  if (!sent_grants_.empty()) {
    // The hub stored them in the same transaction as this answer.
    ENLACE_ASSIGN_OR_RETURN(auto queued, impl.store().QueuedKeyGrants());
    ENLACE_RETURN_IF_ERROR(impl.store().ClearKeyGrants());
    for (const auto& g : queued) {
      if (std::find(sent_grants_.begin(), sent_grants_.end(), g) != sent_grants_.end()) continue;
      auto grant = DecodeKeyGrant(g);
      if (grant.ok()) {
        ENLACE_RETURN_IF_ERROR(impl.store().QueueKeyGrant(grant->recipient, grant->version, g));
      }
    }
  }
  ENLACE_ASSIGN_OR_RETURN(delta.keys_received, internal::AcceptKeyGrants(impl, resp.key_grants));
  ENLACE_ASSIGN_OR_RETURN(const bool coordinator, internal::IsRegistryCoordinator(impl));
  if (coordinator) {
    // Devices that joined by invite become registry entries, so that the
    // registry alone names the team and invited coordinators can sign.
    if (!resp.trust.admissions.empty()) ENLACE_RETURN_IF_ERROR(internal::FoldAdmissions(impl));
    // Members that synced without the newest team key get it sealed.
    if (!resp.needs_keys.empty())
      ENLACE_RETURN_IF_ERROR(internal::QueueKeyGrantsFor(impl, resp.needs_keys));
  }
  // Writes kept aside for a key that has now arrived come first: they are
  // older in the log than anything in this answer.
  ENLACE_ASSIGN_OR_RETURN(auto unparked, impl.store().ParkedUpTo(impl.CurrentKeyVersion()));
  std::vector<uint64_t> seqs;
  std::vector<Bytes> incoming;
  for (auto& [seq, bytes] : unparked) {
    ENLACE_RETURN_IF_ERROR(impl.store().Unpark(seq));
    seqs.push_back(seq);
    incoming.push_back(std::move(bytes));
  }
  for (size_t i = 0; i < resp.writes.size(); ++i) {
    seqs.push_back(resp.seqs[i]);
    incoming.push_back(std::move(resp.writes[i]));
  }
  std::vector<Result<Write>> verified = impl.DecodeAndVerifyAll(incoming);
  // The write numbers of others whose signature verified, for gap detection.
  std::vector<internal::Store::WriterSeen> seen;
  const auto note = [&](const Write& w) {
    if (w.dot.device != impl.device())
      seen.push_back(
          {w.dot.device, w.dot.counter, w.accounted_from, w.format, w.scope, w.scope_prev});
  };
  for (size_t i = 0; i < incoming.size(); ++i) {
    const Bytes& bytes = incoming[i];
    Result<Write>& w = verified[i];
    if (!w.ok() && w.status().code() == StatusCode::kDecryptFailed) {
      auto header = Write::Decode(bytes, impl.options().limits);
      if (header.ok() && header->key_version > impl.CurrentKeyVersion()) {
        note(*header);  // the signature is checked before the key
        // Sealed under a team key this device does not hold (yet): kept
        // aside, and the pull goes on. A grant applies it later; writes
        // merged meanwhile that had seen it do not hide it (ApplyLate).
        ENLACE_RETURN_IF_ERROR(impl.store().Park(seqs[i], header->key_version, bytes));
        ENLACE_RETURN_IF_ERROR(impl.store().RemoveRefetch(seqs[i]));
        continue;
      }
    }
    if (!w.ok()) {
      // A write this device cannot verify is skipped, not fatal: one bad
      // write must not stop a team's sync. Unless the team's rules refuse
      // its writer (revoked, unknown, waiting for approval), the hub
      // checked it when it stored it, so the delivery was altered: its
      // position is asked for again until the genuine bytes arrive.
      // Counted once a session: the same position may come back asked for
      // again (refetch, or as a missing write number).
      if (refused_seqs_.insert(seqs[i]).second) ++delta.refused;
      delta.last_refusal = w.status().ToString();
      if (w.status().code() != StatusCode::kPermissionDenied) {
        ENLACE_RETURN_IF_ERROR(impl.store().AddRefetch(seqs[i]));
      }
      continue;
    }
    note(*w);
    auto applied = impl.ApplyChecked(*w, bytes);
    if (!applied.ok()) {
      // Refused before anything changed (a reused or impossible write number).
      if (applied.status().code() != StatusCode::kCorruption) return applied.status();
      ++delta.refused;
      delta.last_refusal = applied.status().ToString();
      continue;
    }
    ENLACE_RETURN_IF_ERROR(impl.store().RemoveRefetch(seqs[i]));
    const ApplyOutcome outcome = *applied;
    if (outcome == ApplyOutcome::kApplied) {
      ++delta.received;
    } else {
      ++delta.ignored;
    }
  }
  ENLACE_RETURN_IF_ERROR(impl.store().NoteSeen(seen));
  // A refetched position the hub did not send back is not in its log.
  for (uint64_t seq : refetch_sent_) {
    if (std::find(resp.seqs.begin(), resp.seqs.end(), seq) == resp.seqs.end()) {
      ENLACE_RETURN_IF_ERROR(impl.store().RemoveRefetch(seq));
    }
  }
  if (resp.out_of_scope != 0) {
    // The hub took none of this device's writes from that number on: it is
    // in a scope a coordinator took back (the trust above says so) or never
    // assigned. Its records leave this device and its numbers go as voids;
    // a write the registry still lets it make is the hub's fault.
    ENLACE_RETURN_IF_ERROR(internal::ForgetScopesNotHeld(impl).status());
    ENLACE_ASSIGN_OR_RETURN(auto still, impl.store().OwnEncoded(impl.device(), resp.out_of_scope));
    if (still) {
      ENLACE_ASSIGN_OR_RETURN(Write w, Write::Decode(*still, impl.options().limits));
      if (w.kind != WriteKind::kVoid) {
        return Status::PermissionDenied(
            "the hub refuses write " + std::to_string(resp.out_of_scope) + " of scope " +
            w.scope.ToHex().substr(0, 8) + ", which this device's registry lets it write");
      }
    }
  }
  if (resp.reseal_below != 0) {
    // The hub keeps no write sealed under a key older than one granted to
    // this device: make the unsent ones again under the newest key.
    if (impl.CurrentKeyVersion() < resp.reseal_below) {
      return Status::FailedPrecondition(
          "the hub wants writes sealed under team key version " +
          std::to_string(resp.reseal_below) +
          ", which this device could not open; ask a coordinator to sync");
    }
    ENLACE_ASSIGN_OR_RETURN(delta.resealed, impl.RestampFutureWrites(kRestampMarginMs, true));
  }
  // A hub found behind is read again from the start of its log, and so is
  // the log of a device assigned a new scope (its writes are behind).
  ENLACE_ASSIGN_OR_RETURN(const uint64_t rescan, impl.store().GetMeta(internal::kMetaRescan));
  if (rescan != 0) ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaRescan, 0));
  const uint64_t cursor = behind || rescan != 0 ? 0 : resp.next_cursor;
  const bool more = resp.more || behind || rescan != 0;
  // Only what this round pushed can be acknowledged by it.
  const uint64_t acked = std::min(resp.acked_up_to, last_pushed_counter_);
  ENLACE_ASSIGN_OR_RETURN(uint64_t pending_before, impl.store().PendingCount());
  ENLACE_RETURN_IF_ERROR(impl.store().AcknowledgeUpTo(acked));
  ENLACE_ASSIGN_OR_RETURN(uint64_t pending_after, impl.store().PendingCount());
  ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaPullCursor, cursor));
  ENLACE_RETURN_IF_ERROR(impl.store().SetMeta(internal::kMetaLastSyncMs, impl.clock().WallMs()));
  // A gap is asked for once a session, in a round whose answer had room
  // for everything (a full answer may have left some out). Gaps not asked
  // for yet (new this round, or left out) take another round.
  if (!resp.more) asked_.insert(asked_.end(), wanted_sent_.begin(), wanted_sent_.end());
  ENLACE_ASSIGN_OR_RETURN(const auto unasked, UnaskedGaps(1));
  const bool ask = !unasked.empty();
  ENLACE_ASSIGN_OR_RETURN(progress_.missing, impl.store().MissingCount());
  ENLACE_RETURN_IF_ERROR(tx->Commit());

  ++progress_.rounds;
  // The link carried a whole round: the next may be twice as large.
  push_bytes_ = std::min(push_bytes_ * 2, std::max<size_t>(1, options_.max_push_bytes));
  pull_bytes_ = static_cast<uint32_t>(std::min<uint64_t>(
      uint64_t{pull_bytes_} * 2, std::max<uint32_t>(1, options_.max_pull_bytes)));
  progress_.sent += pending_before - pending_after;
  progress_.received += delta.received;
  progress_.ignored += delta.ignored;
  progress_.refused += delta.refused;
  if (delta.refused > 0) progress_.last_refusal = delta.last_refusal;
  progress_.keys_received += delta.keys_received;
  progress_.resealed += delta.resealed;
  ENLACE_ASSIGN_OR_RETURN(auto parked, impl.store().ParkedSummary());
  progress_.parked = parked.first;
  progress_.waiting_for_key = parked.second;
  ENLACE_ASSIGN_OR_RETURN(progress_.refetch_pending, impl.store().RefetchCount());
  if (!delta.registry_refused.empty()) progress_.registry_refused = delta.registry_refused;
  if (sent_registry_ && resp.registry_refused.empty()) progress_.registry_stored = true;
  progress_.resent += delta.resent + requeued;
  if (behind) progress_.hub_behind = true;
  // Judged by the hub's counter, not by the outbox: another sync of this
  // device may have emptied it meanwhile (issue 15 item 4).
  if (first_pushed_counter_ > 0 && resp.acked_up_to < first_pushed_counter_ &&
      delta.resealed == 0 && !behind && requeued == 0 && resp.out_of_scope == 0) {
    return Status::Unavailable("the hub did not acknowledge the writes it was sent");
  }
  // More to pull, or more to push (writes, key grants) that this round did
  // not carry.
  ENLACE_ASSIGN_OR_RETURN(auto grants_left, impl.store().QueuedKeyGrants());
  ENLACE_ASSIGN_OR_RETURN(auto registry_left,
                          impl.store().GetDocument(internal::kDocOutgoingRegistry));
  return more || ask || relay_more || pending_after > 0 || !grants_left.empty() ||
         registry_left.has_value();
}

Status RereadLog(Replica& replica) {
  return replica.impl().store().SetMeta(internal::kMetaPullCursor, 0);
}

Result<SyncStatus> GetSyncStatus(Replica& replica) {
  auto& store = replica.impl().store();
  SyncStatus s;
  ENLACE_ASSIGN_OR_RETURN(s.pending_writes, store.PendingCount());
  ENLACE_ASSIGN_OR_RETURN(s.last_sync_ms, store.GetMeta(internal::kMetaLastSyncMs));
  ENLACE_ASSIGN_OR_RETURN(s.cursor, store.GetMeta(internal::kMetaPullCursor));
  s.clock_offset_ms = replica.clock().wall_clock_offset_ms();
  ENLACE_ASSIGN_OR_RETURN(s.members, store.ListMembers());
  ENLACE_ASSIGN_OR_RETURN(s.missing_writes, store.MissingCount());
  return s;
}

// ---- team registration and invites ------------------------------------------------------

Result<OutgoingRequest> BuildRegisterTeamRequest(Replica& replica, std::string_view team_name,
                                                 std::string_view device_name,
                                                 std::string_view bootstrap_token) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("create the team first");
  RegisterTeamRequest req;
  req.team = replica.team();
  req.team_name = team_name;
  req.device_name = device_name;
  req.bootstrap_token = bootstrap_token;
  req.signing_key = replica.public_keys().signing;
  req.encryption_key = replica.public_keys().encryption;
  // The team's first registry: this device alone, as coordinator, signed by
  // it. Kept once, so a retried registration sends the same document.
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto genesis, internal::LoadRegistry(impl));
  if (!genesis) {
    Registry r;
    r.team = replica.team();
    r.version = 1;
    RegistryEntry e;
    e.device = replica.device_id();
    e.signing_key = req.signing_key;
    e.encryption_key = req.encryption_key;
    e.name = device_name;
    e.role = Role::kCoordinator;
    r.entries.push_back(std::move(e));
    internal::SignRegistry(impl, r);
    ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
    ENLACE_RETURN_IF_ERROR(internal::AdoptAnchorRegistry(impl, r));
    ENLACE_RETURN_IF_ERROR(tx->Commit());
    genesis = std::move(r);
  }
  req.registry = EncodeRegistry(*genesis);
  return SignedRequest(replica, kPathRegisterTeam, Encode(req));
}

Status HandleMembersResponse(Replica& replica, std::span<const uint8_t> body) {
  ENLACE_ASSIGN_OR_RETURN(MembersResponse resp, DecodeMembersResponse(body));
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_RETURN_IF_ERROR(internal::ApplyTrust(impl, resp.trust));
  return tx->Commit();
}

Result<InviteInfo> ParseInviteCode(std::string_view code) {
  ENLACE_ASSIGN_OR_RETURN(InviteCode c, DecodeInviteCode(code));
  return InviteInfo{c.hub_url, c.tls_pin, c.expires_ms};
}

Result<PreparedInvite> PrepareInvite(Replica& coordinator, std::string_view hub_url,
                                     std::string_view tls_pin, Role role, uint64_t valid_for_ms) {
  auto& impl = coordinator.impl();
  ENLACE_ASSIGN_OR_RETURN(auto registry, internal::LoadRegistry(impl));
  if (!registry) {
    return Status::FailedPrecondition("this device has no device registry yet; sync first");
  }
  // With approval required the envelope names the team but holds no key:
  // the keys come as a grant when a coordinator approves the device.
  ENLACE_ASSIGN_OR_RETURN(SecretBytes keys, registry->approval_required
                                                ? internal::TeamIdBundle(impl)
                                                : internal::TeamKeyBundle(impl));
  InviteCode code;
  code.hub_url = hub_url;
  code.tls_pin = tls_pin;
  code.expires_ms = impl.clock().WallMs() + valid_for_ms;
  internal::RandomFill(code.invite_id);
  code.secret = SecretBytes::Random(32);

  CreateInviteRequest req;
  req.invite_id = code.invite_id;
  req.verifier = InviteVerifier(code.secret);
  req.expires_ms = code.expires_ms;
  req.role = role;
  InviteGrant grant;
  grant.team = coordinator.team();
  grant.invite = code.invite_id;
  grant.role = role;
  grant.needs_approval = registry->approval_required;
  grant.expires_ms = code.expires_ms;
  ENLACE_ASSIGN_OR_RETURN(grant.invite_key, InvitePublicKey(code.secret.view()));
  grant.issuer = coordinator.device_id();
  grant.signature =
      internal::Sign(impl.vault().secrets().signing.secret_key, InviteGrantSigningInput(grant));
  req.grant = EncodeInviteGrant(grant);
  // The envelope holds the team keys and the registry as this coordinator
  // knows it: the new device's trust anchor, which the hub cannot change.
  const Bytes anchor = EncodeRegistry(*registry);
  SecretBytes bundle(4 + keys.size() + anchor.size());
  for (int i = 0; i < 4; ++i) bundle.data()[i] = static_cast<uint8_t>(keys.size() >> (8 * i));
  std::copy(keys.data(), keys.data() + keys.size(), bundle.data() + 4);
  std::copy(anchor.begin(), anchor.end(), bundle.data() + 4 + keys.size());
  const SecretBytes wrap = internal::DeriveSubkey(code.secret, kInviteWrapSubkey, kInviteKdfContext,
                                                  internal::kAeadKeyBytes);
  const auto nonce = internal::RandomNonce();
  const Bytes sealed =
      internal::AeadSeal(wrap, nonce, bundle.view(), InviteAad(code.invite_id, coordinator.team()));
  req.envelope.assign(nonce.begin(), nonce.end());
  req.envelope.insert(req.envelope.end(), sealed.begin(), sealed.end());

  PreparedInvite out;
  out.request = SignedRequest(coordinator, kPathCreateInvite, Encode(req));
  out.code = EncodeInviteCode(code);
  out.expires_ms = code.expires_ms;
  return out;
}

namespace {

// The kept invites (KeepInvite) that have not expired at `now`, decoded,
// each with its encoded request.
Result<std::vector<std::pair<CreateInviteRequest, Bytes>>> UnexpiredInvites(internal::Store& store,
                                                                            uint64_t now) {
  std::vector<std::pair<CreateInviteRequest, Bytes>> out;
  ENLACE_ASSIGN_OR_RETURN(auto doc, store.GetDocument(internal::kDocOpenInvites));
  if (!doc) return out;
  ENLACE_ASSIGN_OR_RETURN(std::vector<Bytes> kept, internal::DecodeList(*doc));
  for (auto& body : kept) {
    auto req = DecodeCreateInviteRequest(body);
    if (req.ok() && req->expires_ms >= now) out.emplace_back(std::move(*req), std::move(body));
  }
  return out;
}

Status SetKeptInvites(internal::Store& store, std::vector<Bytes> bodies) {
  return store.SetDocument(internal::kDocOpenInvites, internal::EncodeList(bodies));
}

}  // namespace

Status KeepInvite(Replica& coordinator, const PreparedInvite& invite) {
  auto& impl = coordinator.impl();
  auto& store = impl.store();
  ENLACE_ASSIGN_OR_RETURN(auto tx, store.Begin());
  // Expired ones go: the list stays as long as the invites still open.
  ENLACE_ASSIGN_OR_RETURN(auto open, UnexpiredInvites(store, impl.clock().WallMs()));
  std::vector<Bytes> kept;
  for (auto& [req, body] : open) kept.push_back(std::move(body));
  kept.push_back(invite.request.body);
  ENLACE_RETURN_IF_ERROR(SetKeptInvites(store, std::move(kept)));
  return tx->Commit();
}

Result<std::vector<OutgoingRequest>> InvitesToSendAgain(Replica& coordinator) {
  auto& impl = coordinator.impl();
  auto& store = impl.store();
  ENLACE_ASSIGN_OR_RETURN(auto tx, store.Begin());
  ENLACE_ASSIGN_OR_RETURN(auto open, UnexpiredInvites(store, impl.clock().WallMs()));
  // Invites a member joined with: the registry's entries and the admissions.
  std::set<InviteId> used;
  ENLACE_ASSIGN_OR_RETURN(auto registry, internal::LoadRegistry(impl));
  if (registry) {
    for (const auto& e : registry->entries) used.insert(e.invite);
  }
  ENLACE_ASSIGN_OR_RETURN(internal::RelayDocuments docs, internal::DocumentsToRelay(impl));
  for (const auto& bytes : docs.admissions) {
    auto a = DecodeAdmission(bytes);
    if (a.ok()) used.insert(a->grant.invite);
  }
  std::vector<OutgoingRequest> out;
  std::vector<Bytes> still;
  for (auto& [req, body] : open) {
    if (used.contains(req.invite_id)) continue;
    out.push_back(SignedRequest(coordinator, kPathCreateInvite, body));
    still.push_back(std::move(body));
  }
  ENLACE_RETURN_IF_ERROR(SetKeptInvites(store, std::move(still)));
  ENLACE_RETURN_IF_ERROR(tx->Commit());
  return out;
}

Result<OutgoingRequest> BuildJoinRequest(Replica& replica, std::string_view code,
                                         std::string_view device_name) {
  if (!replica.team().IsZero()) return Status::FailedPrecondition("this device already has a team");
  // Expiry is the hub's to judge: a new phone's clock may well be wrong.
  ENLACE_ASSIGN_OR_RETURN(InviteCode c, DecodeInviteCode(code));
  JoinRequest req;
  req.invite_id = c.invite_id;
  req.verifier = InviteVerifier(c.secret);
  req.device_name = device_name;
  req.signing_key = replica.public_keys().signing;
  req.encryption_key = replica.public_keys().encryption;
  Admission a;
  a.grant.invite = c.invite_id;
  a.device = replica.device_id();
  a.signing_key = req.signing_key;
  a.encryption_key = req.encryption_key;
  a.name = req.device_name;
  ENLACE_RETURN_IF_ERROR(SignAdmission(a, c.secret.view()));
  req.binding = a.binding;
  return SignedRequest(replica, kPathJoin, Encode(req));
}

Status HandleJoinResponse(Replica& replica, std::string_view code, std::span<const uint8_t> body) {
  ENLACE_ASSIGN_OR_RETURN(InviteCode c, DecodeInviteCode(code));
  ENLACE_ASSIGN_OR_RETURN(JoinResponse resp, DecodeJoinResponse(body));
  if (resp.envelope.size() < internal::kAeadNonceBytes + internal::kAeadTagBytes) {
    return Status::Corruption("the invite envelope is malformed");
  }
  internal::AeadNonce nonce{};
  std::memcpy(nonce.data(), resp.envelope.data(), nonce.size());
  const SecretBytes wrap = internal::DeriveSubkey(c.secret, kInviteWrapSubkey, kInviteKdfContext,
                                                  internal::kAeadKeyBytes);
  const internal::ByteView sealed(resp.envelope.data() + nonce.size(),
                                  resp.envelope.size() - nonce.size());
  ENLACE_ASSIGN_OR_RETURN(
      SecretBytes bundle,
      internal::AeadOpen(wrap, nonce, sealed, InviteAad(c.invite_id, resp.team)));
  // u32 keys length | team-key bundle | the inviter's registry.
  size_t keys_len = 0;
  if (bundle.size() >= 4) {
    for (int i = 0; i < 4; ++i) keys_len |= static_cast<size_t>(bundle.data()[i]) << (8 * i);
  }
  if (bundle.size() < 4 || keys_len > bundle.size() - 4) {
    return Status::Corruption("the invite envelope is malformed");
  }
  const SecretBytes keys(bundle.data() + 4, keys_len);
  ENLACE_ASSIGN_OR_RETURN(Registry anchor,
                          DecodeRegistry(std::span<const uint8_t>(bundle.data() + 4 + keys_len,
                                                                  bundle.size() - 4 - keys_len)));
  if (anchor.team != resp.team) return Status::Corruption("the invite is for another team");
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(auto tx, impl.store().Begin());
  ENLACE_RETURN_IF_ERROR(internal::AdoptTeamKeyBundle(impl, keys));
  if (replica.team() != resp.team) return Status::Corruption("the invite is for another team");
  ENLACE_RETURN_IF_ERROR(internal::AdoptAnchorRegistry(impl, anchor));
  ENLACE_RETURN_IF_ERROR(internal::ApplyTrust(impl, resp.trust));
  return tx->Commit();
}

// ---- published reports ------------------------------------------------------------------

Result<OutgoingRequest> BuildPublishReportRequest(Replica& replica, std::string_view report_json) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  if (report_json.size() > kMaxReportBytes) {
    return Status::ResourceExhausted("the report is larger than " +
                                     std::to_string(kMaxReportBytes / 1024) + " KiB");
  }
  const auto j = nlohmann::json::parse(report_json.begin(), report_json.end(), nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("the report is not a JSON object");
  return SignedRequest(replica, kReportsPath, Bytes(report_json.begin(), report_json.end()));
}

Result<OutgoingRequest> BuildListReportsRequest(Replica& replica) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  return SignedRequest(replica, kReportsPath, Bytes(), "GET");
}

Result<OutgoingRequest> BuildGetReportRequest(Replica& replica, std::string_view report_id) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  std::string id(report_id);
  std::transform(id.begin(), id.end(), id.begin(), [](char c) {
    return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (!IsReportId(id)) return Status::InvalidArgument("a report id is 32 hex characters");
  return SignedRequest(replica, std::string(kReportsPath) + "/" + id, Bytes(), "GET");
}

// ---- record history (audit) ---------------------------------------------------------------

Result<OutgoingRequest> BuildHistoryRequest(Replica& replica, std::string_view collection,
                                            const RecordId& record) {
  if (replica.team().IsZero()) return Status::FailedPrecondition("this device has no team yet");
  ENLACE_RETURN_IF_ERROR(ValidateName(collection, "collection"));
  HistoryRequest req;
  req.collection = collection;
  req.record = record;
  return SignedRequest(replica, kPathHistory, Encode(req));
}

Result<bool> CheckRevokedNotice(Replica& replica, std::span<const uint8_t> body) {
  auto& impl = replica.impl();
  ENLACE_ASSIGN_OR_RETURN(RevokedNotice notice, DecodeRevokedNotice(body));
  ENLACE_ASSIGN_OR_RETURN(auto current, internal::LoadRegistry(impl));
  if (!current) return false;
  auto newest = FollowChain(*current, notice.registries);
  if (!newest.ok()) return false;
  const RegistryEntry* self = newest->Find(impl.device());
  return self != nullptr && self->revoked();
}

}  // namespace enlace
