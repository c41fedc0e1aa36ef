#include "base/codec.h"

#include <cereal/archives/portable_binary.hpp>
#include <sstream>
#include <streambuf>

namespace enlace::internal {

// ---- Encoder ---------------------------------------------------------------------

struct Encoder::Impl {
  std::ostringstream stream;
  cereal::PortableBinaryOutputArchive archive{stream};
};

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;

void Encoder::U8(uint8_t v) { impl_->archive(v); }
void Encoder::U32(uint32_t v) { impl_->archive(v); }
void Encoder::U64(uint64_t v) { impl_->archive(v); }

void Encoder::Raw(ByteView bytes) {
  if (!bytes.empty()) {
    impl_->archive(cereal::binary_data(const_cast<uint8_t*>(bytes.data()), bytes.size()));
  }
}

void Encoder::Blob(ByteView bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  Raw(bytes);
}

Bytes Encoder::Finish() const {
  const std::string s = impl_->stream.str();
  return Bytes(s.begin(), s.end());
}

// ---- Decoder ---------------------------------------------------------------------

namespace {
// A read-only streambuf over caller memory that can tell how much is left.
class SpanBuf : public std::streambuf {
 public:
  explicit SpanBuf(ByteView in) {
    char* p = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
    setg(p, p, p + in.size());
  }
  size_t left() const { return static_cast<size_t>(egptr() - gptr()); }
};
}  // namespace

struct Decoder::Impl {
  explicit Impl(ByteView in) : buf(in), stream(&buf) {}
  SpanBuf buf;
  std::istream stream;
  std::unique_ptr<cereal::PortableBinaryInputArchive> archive;
  bool started = false;
};

Decoder::Decoder(ByteView input) : impl_(std::make_unique<Impl>(input)) {}
Decoder::~Decoder() = default;

size_t Decoder::remaining() const { return impl_->buf.left(); }

Status Decoder::Check(size_t need, const char* what) const {
  if (!impl_->started) {
    // The archive reads its one-byte endianness marker on construction.
    if (impl_->buf.left() < 1) return Status::Corruption(std::string("input ends before ") + what);
    // One encoding only: cereal would accept a big-endian marker (any byte
    // but 1) and byte-swap, giving every message a second valid form.
    if (impl_->buf.sgetc() != 1) return Status::Corruption("unsupported archive byte order");
    try {
      impl_->archive = std::make_unique<cereal::PortableBinaryInputArchive>(impl_->stream);
    } catch (const std::exception&) {
      return Status::Corruption("unreadable archive header");
    }
    impl_->started = true;
  }
  if (impl_->buf.left() < need) return Status::Corruption(std::string("input ends inside ") + what);
  return Status::Ok();
}

namespace {
template <typename T>
Status ReadScalar(cereal::PortableBinaryInputArchive& ar, T& v, const char* what) {
  try {
    ar(v);
  } catch (const std::exception&) {
    return Status::Corruption(std::string("cannot read ") + what);
  }
  return Status::Ok();
}
}  // namespace

Status Decoder::U8(uint8_t& v, const char* what) {
  ENLACE_RETURN_IF_ERROR(Check(1, what));
  return ReadScalar(*impl_->archive, v, what);
}

Status Decoder::U32(uint32_t& v, const char* what) {
  ENLACE_RETURN_IF_ERROR(Check(4, what));
  return ReadScalar(*impl_->archive, v, what);
}

Status Decoder::U64(uint64_t& v, const char* what) {
  ENLACE_RETURN_IF_ERROR(Check(8, what));
  return ReadScalar(*impl_->archive, v, what);
}

Status Decoder::Raw(std::span<uint8_t> out, const char* what) {
  ENLACE_RETURN_IF_ERROR(Check(out.size(), what));
  if (out.empty()) return Status::Ok();
  try {
    (*impl_->archive)(cereal::binary_data(out.data(), out.size()));
  } catch (const std::exception&) {
    return Status::Corruption(std::string("cannot read ") + what);
  }
  return Status::Ok();
}

Status Decoder::Blob(Bytes& out, size_t max_len, const char* what) {
  uint32_t len = 0;
  ENLACE_RETURN_IF_ERROR(U32(len, what));
  if (len > max_len) {
    return Status::ResourceExhausted(std::string(what) + " is " + std::to_string(len) +
                                     " bytes, limit " + std::to_string(max_len));
  }
  ENLACE_RETURN_IF_ERROR(Check(len, what));  // before allocating
  out.assign(len, 0);
  return Raw(out, what);
}

Status Decoder::String(std::string& out, size_t max_len, const char* what) {
  Bytes b;
  ENLACE_RETURN_IF_ERROR(Blob(b, max_len, what));
  out.assign(b.begin(), b.end());
  return Status::Ok();
}

Status Decoder::Count(uint32_t& n, size_t max_count, size_t min_element_bytes, const char* what) {
  ENLACE_RETURN_IF_ERROR(U32(n, what));
  if (n > max_count) {
    return Status::ResourceExhausted(std::string(what) + " has " + std::to_string(n) +
                                     " entries, limit " + std::to_string(max_count));
  }
  if (static_cast<uint64_t>(n) * min_element_bytes > remaining()) {
    return Status::Corruption(std::string(what) + " claims more entries than the input holds");
  }
  return Status::Ok();
}

Status Decoder::ExpectEnd(const char* what) const {
  ENLACE_RETURN_IF_ERROR(Check(0, what));
  if (remaining() != 0) return Status::Corruption(std::string("trailing bytes after ") + what);
  return Status::Ok();
}

}  // namespace enlace::internal
