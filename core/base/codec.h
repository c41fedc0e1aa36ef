// Bounded binary encoding on top of cereal's portable binary archive.
//
// cereal's own containers allocate whatever length the input claims before
// reading it; this module reads every length first, checks it against the
// caller's limit and against the bytes actually left, and only then
// allocates. cereal exceptions never leave this module.
#ifndef ENLACE_CORE_BASE_CODEC_H_
#define ENLACE_CORE_BASE_CODEC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "enlace/status.h"

namespace enlace::internal {

class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  void U8(uint8_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  // Fixed-size raw bytes (no length prefix).
  void Raw(ByteView bytes);
  // A u32 length prefix, then the bytes.
  void Blob(ByteView bytes);
  void String(std::string_view s) { Blob(AsBytes(s)); }

  // The encoding so far.
  Bytes Finish() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Decoder {
 public:
  // `input` must outlive the decoder.
  explicit Decoder(ByteView input);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Each returns kCorruption when the input ends early; a length over its
  // limit is kResourceExhausted. `what` names the field in the message.
  Status U8(uint8_t& v, const char* what);
  Status U32(uint32_t& v, const char* what);
  Status U64(uint64_t& v, const char* what);
  Status Raw(std::span<uint8_t> out, const char* what);
  Status Blob(Bytes& out, size_t max_len, const char* what);
  Status String(std::string& out, size_t max_len, const char* what);
  // Reads a u32 count and checks it against `max_count` and the bytes left
  // (each element needs at least `min_element_bytes`).
  Status Count(uint32_t& n, size_t max_count, size_t min_element_bytes, const char* what);

  size_t remaining() const;
  // kCorruption unless every byte was consumed.
  Status ExpectEnd(const char* what) const;

 private:
  Status Check(size_t need, const char* what) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace enlace::internal

#endif  // ENLACE_CORE_BASE_CODEC_H_
