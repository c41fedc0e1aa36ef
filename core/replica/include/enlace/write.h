// The write: enlace's unit of change (DESIGN §2).
//
// One write is one local transaction on one record. Its clear metadata (team,
// collection, record, dot, HLC, causal context, field names, kind, key
// version) is bound as associated data to one XChaCha20-Poly1305 payload
// holding the values, encrypted under the team key; the whole is signed with
// the writer's Ed25519 key. The same bytes live on the device, on the wire and
// on the hub, which can check the signature but never read a value.
#ifndef ENLACE_WRITE_H_
#define ENLACE_WRITE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "enlace/status.h"
#include "enlace/types.h"

namespace enlace {

enum class WriteKind : uint8_t {
  kPut = 1,     // sets the named fields; the record exists
  kDelete = 2,  // tombstone: the record is deleted, values kept for a restore
  kErase = 3,   // tombstone that also overwrites every field it saw with null
  // Accounts for a write number its writer used for a write it never sent
  // (superseded or erased before a sync) or no longer holds to send again:
  // no fields, no values, no effect on any record. Collection
  // kVoidCollection, record id zero, empty context (format 3 on).
  kVoid = 4,
};

// The collection every void write names.
inline constexpr char kVoidCollection[] = "enlace.void";

// Limits checked while decoding, before anything is allocated.
struct WriteLimits {
  size_t max_name_bytes = 64;             // collection and field names
  size_t max_fields = 512;                // field names in one write
  size_t max_context_entries = 4096;      // devices in a causal context
  size_t max_ciphertext_bytes = 1 << 20;  // one payload
};

// The reserved field that holds a record's existence register: `false` while
// the record lives, `true` once deleted. Every write sets it.
inline constexpr char kDeletedField[] = "$deleted";

struct Write {
  // 2: the payload may be compressed before it is encrypted. 3: the
  // metadata ends with `accounted_from`, and kVoid writes exist. 4: then
  // `scope` and `scope_prev`. Formats 1 to 3 (made before) still decode and
  // open.
  static constexpr uint8_t kFormatVersion = 4;
  static constexpr uint8_t kOldestFormatVersion = 1;
  // Counters are stored as SQLite integers: at most 2^63 - 1.
  static constexpr uint64_t kMaxCounter = (uint64_t{1} << 63) - 1;

  uint8_t format = kFormatVersion;  // as decoded; signed with the metadata
  TeamId team;
  std::string collection;
  RecordId record;
  Dot dot;
  HlcTimestamp hlc;
  VersionVector context;            // the writer's causal context of this record
  std::vector<std::string> fields;  // user fields whose values the payload holds
  WriteKind kind = WriteKind::kPut;
  uint32_t key_version = 0;  // which team key encrypted the payload
  // Format 3 on: the writer's promise that every write number of its own
  // from this one up to dot.counter is a write or a void it sends to the
  // hub, so a reader that sees dot.counter can tell a number it lacks in
  // between (docs/PROTOCOL.md §6.11). 0 in formats 1 and 2 (no promise).
  uint64_t accounted_from = 0;
  // Format 4 on: the scope the write belongs to (zero: the team's shared
  // scope), and the writer's previous write number in that scope (0: none
  // since accounted_from). A reader of the scope that sees this write and
  // not scope_prev knows it lacks a write (§6.11), whatever the writer wrote
  // in scopes the reader does not hold. 0 in formats 1 to 3.
  ScopeId scope;
  uint64_t scope_prev = 0;
  std::array<uint8_t, 24> nonce{};
  Bytes ciphertext;
  std::array<uint8_t, 64> signature{};

  // The canonical encoding of the clear metadata: the AEAD associated data.
  Bytes EncodeMetadata() const;
  // The bytes the signature covers: metadata, nonce and ciphertext.
  Bytes SignedBytes() const;
  // The full wire and storage encoding.
  Bytes Encode() const;

  // Decodes and checks structure and limits (not the signature, not the
  // payload). kCorruption for malformed input, kResourceExhausted for a
  // length over `limits`.
  static Result<Write> Decode(std::span<const uint8_t> bytes, const WriteLimits& limits = {});
};

// Checks a collection or field name: 1..64 characters of [A-Za-z0-9_.-],
// starting with a letter.
Status ValidateName(std::string_view name, const char* what);

// Collections whose name starts with this prefix belong to enlace itself
// (case work keeps the team's schema overlay there); Replica::Put, Delete and
// Erase refuse them, and they are not listed as conflicts.
inline constexpr char kReservedCollectionPrefix[] = "enlace.";

// True for a collection name in the reserved "enlace." namespace.
inline bool IsReservedCollection(std::string_view collection) {
  return collection.substr(0, sizeof(kReservedCollectionPrefix) - 1) == kReservedCollectionPrefix;
}

}  // namespace enlace

#endif  // ENLACE_WRITE_H_
