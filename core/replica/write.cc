#include "enlace/write.h"

#include <cstring>

#include "base/codec.h"
#include "base/compress.h"
#include "replica/write_internal.h"

namespace enlace {

using internal::Decoder;
using internal::Encoder;

Status ValidateName(std::string_view name, const char* what) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(std::string(what) + " name " + why);
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 64) return bad("is longer than 64 characters");
  const auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(name[0])) return bad("must start with a letter");
  for (char c : name) {
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '_' && c != '.' && c != '-') {
      return bad("may hold only letters, digits, '_', '.' and '-'");
    }
  }
  return Status::Ok();
}

namespace {

void EncodeMeta(Encoder& e, const Write& w) {
  e.U8(w.format);
  e.Raw(w.team.bytes);
  e.String(w.collection);
  e.Raw(w.record.bytes);
  e.Raw(w.dot.device.bytes);
  e.U64(w.dot.counter);
  e.U64(w.hlc.value);
  e.U32(static_cast<uint32_t>(w.context.size()));
  for (const auto& [device, counter] : w.context.entries()) {
    e.Raw(device.bytes);
    e.U64(counter);
  }
  e.U32(static_cast<uint32_t>(w.fields.size()));
  for (const auto& f : w.fields) e.String(f);
  e.U8(static_cast<uint8_t>(w.kind));
  e.U32(w.key_version);
  if (w.format >= 3) e.U64(w.accounted_from);
  if (w.format >= 4) {
    e.Raw(w.scope.bytes);
    e.U64(w.scope_prev);
  }
}

// A bad name in received bytes is malformed input (kCorruption), not a bad
// argument from the caller.
Status CheckDecodedName(std::string_view name, const char* what) {
  const Status s = ValidateName(name, what);
  if (!s.ok()) return Status::Corruption("bad write: " + s.message());
  return Status::Ok();
}

}  // namespace

Bytes Write::EncodeMetadata() const {
  Encoder e;
  EncodeMeta(e, *this);
  return e.Finish();
}

Bytes Write::SignedBytes() const {
  Encoder e;
  EncodeMeta(e, *this);
  e.Raw(nonce);
  e.Blob(ciphertext);
  return e.Finish();
}

Bytes Write::Encode() const {
  // What the signature covers, then the signature.
  Bytes out = SignedBytes();
  out.insert(out.end(), signature.begin(), signature.end());
  return out;
}

Result<Write> Write::Decode(std::span<const uint8_t> bytes, const WriteLimits& limits) {
  Decoder d(bytes);
  Write w;
  uint8_t version = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(version, "format version"));
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return Status::Corruption("unsupported write format version " + std::to_string(version));
  }
  w.format = version;
  ENLACE_RETURN_IF_ERROR(d.Raw(w.team.bytes, "team id"));
  ENLACE_RETURN_IF_ERROR(d.String(w.collection, limits.max_name_bytes, "collection"));
  ENLACE_RETURN_IF_ERROR(CheckDecodedName(w.collection, "collection"));
  ENLACE_RETURN_IF_ERROR(d.Raw(w.record.bytes, "record id"));
  ENLACE_RETURN_IF_ERROR(d.Raw(w.dot.device.bytes, "device id"));
  ENLACE_RETURN_IF_ERROR(d.U64(w.dot.counter, "counter"));
  if (w.dot.counter == 0 || w.dot.counter > kMaxCounter) {
    return Status::Corruption("bad write: counter out of range");
  }
  ENLACE_RETURN_IF_ERROR(d.U64(w.hlc.value, "hlc"));

  uint32_t n = 0;
  ENLACE_RETURN_IF_ERROR(d.Count(n, limits.max_context_entries, 24, "context"));
  DeviceId previous;
  for (uint32_t i = 0; i < n; ++i) {
    Dot entry;
    ENLACE_RETURN_IF_ERROR(d.Raw(entry.device.bytes, "context device"));
    ENLACE_RETURN_IF_ERROR(d.U64(entry.counter, "context counter"));
    // Canonical form only: strictly increasing devices, no zero counters.
    if ((i > 0 && !(previous < entry.device)) || entry.counter == 0 ||
        entry.counter > kMaxCounter) {
      return Status::Corruption("bad write: context is not canonical");
    }
    // A write cannot have seen itself or its writer's later writes.
    if (entry.device == w.dot.device && entry.counter >= w.dot.counter) {
      return Status::Corruption("bad write: context claims the writer's own later writes");
    }
    previous = entry.device;
    w.context.Add(entry);
  }

  ENLACE_RETURN_IF_ERROR(d.Count(n, limits.max_fields, 4, "field list"));
  w.fields.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::string f;
    ENLACE_RETURN_IF_ERROR(d.String(f, limits.max_name_bytes, "field name"));
    ENLACE_RETURN_IF_ERROR(CheckDecodedName(f, "field"));
    if (i > 0 && !(w.fields.back() < f)) {
      return Status::Corruption("bad write: field names not sorted and unique");
    }
    w.fields.push_back(std::move(f));
  }
  uint8_t kind = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(kind, "kind"));
  const uint8_t last_kind = version >= 3 ? 4 : 3;
  if (kind < 1 || kind > last_kind) return Status::Corruption("bad write: unknown kind");
  w.kind = static_cast<WriteKind>(kind);
  if (w.kind == WriteKind::kDelete && !w.fields.empty()) {
    return Status::Corruption("bad write: a delete sets no fields");
  }
  if (w.kind == WriteKind::kVoid && (!w.fields.empty() || !w.context.empty() ||
                                     w.collection != kVoidCollection || !w.record.IsZero())) {
    return Status::Corruption(
        "bad write: a void names no field, no context and no record but its own");
  }
  ENLACE_RETURN_IF_ERROR(d.U32(w.key_version, "key version"));
  if (version >= 3) {
    ENLACE_RETURN_IF_ERROR(d.U64(w.accounted_from, "accounted from"));
    if (w.accounted_from == 0 || w.accounted_from > kMaxCounter) {
      return Status::Corruption("bad write: accounted-from number out of range");
    }
  }
  if (version >= 4) {
    ENLACE_RETURN_IF_ERROR(d.Raw(w.scope.bytes, "scope"));
    ENLACE_RETURN_IF_ERROR(d.U64(w.scope_prev, "previous number in scope"));
    // Below its own number; a promise reaches no lower than accounted_from.
    if (w.scope_prev >= w.dot.counter || (w.scope_prev != 0 && w.scope_prev < w.accounted_from)) {
      return Status::Corruption("bad write: previous number in scope out of range");
    }
  }
  ENLACE_RETURN_IF_ERROR(d.Raw(w.nonce, "nonce"));
  ENLACE_RETURN_IF_ERROR(d.Blob(w.ciphertext, limits.max_ciphertext_bytes, "ciphertext"));
  ENLACE_RETURN_IF_ERROR(d.Raw(w.signature, "signature"));
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("write"));
  return w;
}

namespace internal {

namespace {

// Format 2 payloads start with one of these bytes.
constexpr uint8_t kPayloadPlain = 0;
constexpr uint8_t kPayloadZstd = 1;
// A decompressed payload is never larger than a write's whole ciphertext limit.
constexpr size_t kMaxPayloadBytes = WriteLimits{}.max_ciphertext_bytes;
// Payloads this small rarely shrink by more than the frame header costs.
constexpr size_t kCompressFrom = 64;

Result<std::vector<std::string>> DecodeValuesOf(ByteView plain, size_t fields) {
  Decoder d(plain);
  uint32_t n = 0;
  ENLACE_RETURN_IF_ERROR(d.Count(n, fields, 4, "payload"));
  if (n != fields) return Status::Corruption("payload does not match the field list");
  std::vector<std::string> values(n);
  for (auto& v : values) {
    ENLACE_RETURN_IF_ERROR(d.String(v, plain.size(), "payload value"));
  }
  ENLACE_RETURN_IF_ERROR(d.ExpectEnd("payload"));
  return values;
}

// Inside authenticated ciphertext any malformation is corruption, whatever
// length it claims.
Result<std::vector<std::string>> DecodeValues(ByteView plain, size_t fields) {
  auto values = DecodeValuesOf(plain, fields);
  if (!values.ok() && values.status().code() != StatusCode::kCorruption) {
    return Status::Corruption("payload is malformed: " + values.status().message());
  }
  return values;
}

// Format 1: the encoded values. Format 2: a marker byte, then either the
// encoded values or their u32 length and one zstd frame of them.
Result<std::vector<std::string>> DecodePayload(uint8_t format, ByteView plain, size_t fields) {
  if (format == 1) return DecodeValues(plain, fields);
  Decoder d(plain);
  uint8_t encoding = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(encoding, "payload encoding"));
  if (encoding == kPayloadPlain) return DecodeValues(plain.last(d.remaining()), fields);
  if (encoding != kPayloadZstd) return Status::Corruption("payload has an unknown encoding");
  uint32_t size = 0;
  ENLACE_RETURN_IF_ERROR(d.U32(size, "payload size"));
  if (size > kMaxPayloadBytes) return Status::Corruption("payload is too large");
  ENLACE_ASSIGN_OR_RETURN(Bytes values, Decompress(plain.last(d.remaining()), size));
  auto decoded = DecodeValues(values, fields);
  Wipe(values);
  return decoded;
}

Bytes EncodePayload(uint8_t format, const std::vector<std::string>& values) {
  Encoder payload;
  payload.U32(static_cast<uint32_t>(values.size()));
  for (const auto& v : values) payload.String(v);
  Bytes encoded = payload.Finish();
  if (format == 1) return encoded;
  Encoder out;
  bool compressed = false;
  if (encoded.size() >= kCompressFrom) {
    Bytes frame = Compress(encoded);
    if (!frame.empty() && frame.size() + 4 < encoded.size()) {
      out.U8(kPayloadZstd);
      out.U32(static_cast<uint32_t>(encoded.size()));
      out.Raw(frame);
      compressed = true;
    }
    Wipe(frame);
  }
  if (!compressed) {
    out.U8(kPayloadPlain);
    out.Raw(encoded);
  }
  Wipe(encoded);
  return out.Finish();
}

}  // namespace

Status SealWrite(Write& write, const std::vector<std::string>& values, const SecretBytes& team_key,
                 const SecretBytes& signing_secret_key) {
  if (values.size() != write.fields.size()) {
    return Status::Internal("SealWrite: one value per field expected");
  }
  if (write.format >= 3 &&
      (write.accounted_from == 0 || write.accounted_from > Write::kMaxCounter)) {
    return Status::Internal("SealWrite: a format 3 write needs its accounted-from number");
  }
  Bytes plain = EncodePayload(write.format, values);
  write.nonce = RandomNonce();
  write.ciphertext = AeadSeal(team_key, write.nonce, plain, write.EncodeMetadata());
  Wipe(plain);
  write.signature = Sign(signing_secret_key, write.SignedBytes());
  return Status::Ok();
}

Status VerifyWriteSignature(const Write& write, const SignPublicKey& signer) {
  if (!VerifySignature(signer, write.SignedBytes(), write.signature)) {
    return Status::Unauthenticated("write signature does not verify");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> OpenWritePayload(const Write& write, const SecretBytes& team_key) {
  Bytes plain;
  ENLACE_RETURN_IF_ERROR(
      AeadOpenData(team_key, write.nonce, write.ciphertext, write.EncodeMetadata(), plain));
  auto values = DecodePayload(write.format, plain, write.fields.size());
  Wipe(plain);
  return values;
}

}  // namespace internal
}  // namespace enlace
