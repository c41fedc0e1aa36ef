#include "base/bytes.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

namespace enlace::internal {

Status EnsureSodium() {
  static const int result = sodium_init();  // thread-safe; -1 only on failure
  if (result < 0) return Status::Internal("libsodium could not be initialised");
  return Status::Ok();
}

void RandomFill(std::span<uint8_t> out) {
  if (!EnsureSodium().ok()) std::abort();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

Bytes RandomBytes(size_t size) {
  Bytes b(size);
  RandomFill(b);
  return b;
}

void Wipe(std::span<uint8_t> bytes) {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

std::string ToBase64Url(ByteView bytes) {
  if (!EnsureSodium().ok()) std::abort();
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string ToHex(ByteView bytes) {
  if (!EnsureSodium().ok()) std::abort();
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

Result<Bytes> FromHex(std::string_view hex) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  if (hex.size() % 2 != 0) return Status::InvalidArgument("hex string has odd length");
  if (hex.empty()) return Bytes{};  // sodium_hex2bin's output must not be null
  Bytes out(hex.size() / 2);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != out.size() || end != hex.data() + hex.size()) {
    return Status::InvalidArgument("not a hex string");
  }
  return out;
}

}  // namespace enlace::internal
