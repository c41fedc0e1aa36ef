// RAII wrappers over libsodium: the only place in enlace that calls a
// cryptographic primitive. Nothing here is hand-made.
#ifndef ENLACE_CORE_CRYPTO_CRYPTO_H_
#define ENLACE_CORE_CRYPTO_CRYPTO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "enlace/status.h"

namespace enlace::internal {

// A move-only buffer of secret bytes in sodium_malloc memory (guard pages,
// mlock where allowed), wiped on destruction. Never printed; compared only in
// constant time.
class SecretBytes {
 public:
  SecretBytes() = default;
  // Allocates `size` zeroed bytes. Aborts the process if guarded memory
  // cannot be allocated (as libsodium itself does on misuse).
  explicit SecretBytes(size_t size);
  SecretBytes(const uint8_t* data, size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // `size` bytes from the CSPRNG.
  static SecretBytes Random(size_t size);

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteView view() const { return {data_, size_}; }
  SecretBytes Clone() const { return SecretBytes(data_, size_); }

  // Constant-time equality (sodium_memcmp); sizes are not secret.
  bool ConstantTimeEquals(const SecretBytes& other) const;

 private:
  void Release() noexcept;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Constant-time comparison of two equally long byte strings.
bool ConstantTimeEquals(ByteView a, ByteView b);

// ---- Argon2id (crypto_pwhash) ------------------------------------------------

inline constexpr size_t kPwhashSaltBytes = 16;

struct PwhashParams {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;  // bytes
};

// Rejects parameters outside libsodium's allowed range (kInvalidArgument).
Status CheckPwhashParams(const PwhashParams& params);

// Derives `size` key bytes from `passphrase` with Argon2id13.
Result<SecretBytes> DeriveKeyFromPassphrase(std::string_view passphrase, ByteView salt,
                                            const PwhashParams& params, size_t size);

// ---- Key derivation and hashing -----------------------------------------------

inline constexpr size_t kKdfKeyBytes = 32;
// Derives subkey `id` of `size` bytes under an 8-character context.
SecretBytes DeriveSubkey(const SecretBytes& master, uint64_t id, const char (&context)[9],
                         size_t size);

inline constexpr size_t kHashBytes = 32;
// BLAKE2b-256 of `message`, keyed when `key` is non-empty.
std::array<uint8_t, kHashBytes> GenericHash(ByteView message, ByteView key = {});

// ---- XChaCha20-Poly1305 (IETF) AEAD ---------------------------------------------

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;
using AeadNonce = std::array<uint8_t, kAeadNonceBytes>;

AeadNonce RandomNonce();

// Encrypts `plaintext` bound to `aad`. Precondition: key.size() == kAeadKeyBytes.
Bytes AeadSeal(const SecretBytes& key, const AeadNonce& nonce, ByteView plaintext, ByteView aad);

// Decrypts and authenticates. kDecryptFailed on any mismatch; nothing partial
// is returned. The plaintext lives in guarded memory.
Result<SecretBytes> AeadOpen(const SecretBytes& key, const AeadNonce& nonce, ByteView ciphertext,
                             ByteView aad);

// Like AeadOpen, but decrypts bulk data (record payloads) into ordinary
// memory: a guarded allocation per value would cost two page mappings. The
// caller wipes `out` with Wipe() once done.
Status AeadOpenData(const SecretBytes& key, const AeadNonce& nonce, ByteView ciphertext,
                    ByteView aad, Bytes& out);

// ---- Ed25519 signatures ----------------------------------------------------------

inline constexpr size_t kSignPublicKeyBytes = 32;
inline constexpr size_t kSignSecretKeyBytes = 64;
inline constexpr size_t kSignatureBytes = 64;
using SignPublicKey = std::array<uint8_t, kSignPublicKeyBytes>;
using Signature = std::array<uint8_t, kSignatureBytes>;

struct SigningKeyPair {
  SignPublicKey public_key{};
  SecretBytes secret_key;  // kSignSecretKeyBytes

  static SigningKeyPair Generate();
  // Rebuilds the pair from a 64-byte secret key (which embeds the public key).
  static Result<SigningKeyPair> FromSecret(SecretBytes secret_key);
};

Signature Sign(const SecretBytes& secret_key, ByteView message);
// True only for a valid signature of `message` by `public_key`.
bool VerifySignature(const SignPublicKey& public_key, ByteView message, const Signature& sig);

// ---- X25519 sealed boxes -----------------------------------------------------------

inline constexpr size_t kBoxPublicKeyBytes = 32;
inline constexpr size_t kBoxSecretKeyBytes = 32;
inline constexpr size_t kSealOverheadBytes = 48;
using BoxPublicKey = std::array<uint8_t, kBoxPublicKeyBytes>;

struct BoxKeyPair {
  BoxPublicKey public_key{};
  SecretBytes secret_key;  // kBoxSecretKeyBytes

  static BoxKeyPair Generate();
  // Rebuilds the pair from a 32-byte secret key.
  static Result<BoxKeyPair> FromSecret(SecretBytes secret_key);
};

// Anonymous sealed box (crypto_box_seal) to `recipient`.
Bytes SealTo(const BoxPublicKey& recipient, ByteView message);
// Opens a sealed box; kDecryptFailed when it was not sealed to this key pair.
Result<SecretBytes> OpenSealed(const BoxKeyPair& keys, ByteView sealed);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_CRYPTO_CRYPTO_H_
