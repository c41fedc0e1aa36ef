// Byte strings at the ground of the core: the types every layer passes
// around, hex, and the CSPRNG (libsodium's randombytes; crypto/ builds the
// cryptographic constructions on it).
#ifndef ENLACE_CORE_BASE_BYTES_H_
#define ENLACE_CORE_BASE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace::internal {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Calls sodium_init() once per process. Every entry point that uses
// libsodium calls this first; it is cheap after the first call.
Status EnsureSodium();

// Fills `out` from the CSPRNG. Aborts the process when libsodium cannot be
// initialised (no randomness: nothing safe is possible).
void RandomFill(std::span<uint8_t> out);
Bytes RandomBytes(size_t size);

// Overwrites `bytes` with zeros in a way the compiler cannot elide.
void Wipe(std::span<uint8_t> bytes);

// URL-safe base64 without padding (invite codes, tokens).
std::string ToBase64Url(ByteView bytes);

// Lower-case hex of `bytes`; and the inverse (kInvalidArgument on bad input).
std::string ToHex(ByteView bytes);
Result<Bytes> FromHex(std::string_view hex);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_BASE_BYTES_H_
