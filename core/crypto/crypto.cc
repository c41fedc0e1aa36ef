#include "crypto/crypto.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace enlace::internal {

namespace {
void RequireSodium() {
  if (!EnsureSodium().ok()) std::abort();  // no randomness: nothing safe is possible
}
}  // namespace

// ---- SecretBytes ----------------------------------------------------------------

SecretBytes::SecretBytes(size_t size) : size_(size) {
  RequireSodium();
  if (size == 0) return;
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) std::abort();
  sodium_memzero(data_, size);
}

SecretBytes::SecretBytes(const uint8_t* data, size_t size) : SecretBytes(size) {
  if (size > 0) std::memcpy(data_, data, size);
}

SecretBytes::~SecretBytes() { Release(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SecretBytes::Release() noexcept {
  if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes before freeing
  data_ = nullptr;
  size_ = 0;
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes s(size);
  if (size > 0) randombytes_buf(s.data(), size);
  return s;
}

bool SecretBytes::ConstantTimeEquals(const SecretBytes& other) const {
  return internal::ConstantTimeEquals(view(), other.view());
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- Argon2id -------------------------------------------------------------------

Status CheckPwhashParams(const PwhashParams& p) {
  if (p.opslimit < crypto_pwhash_OPSLIMIT_MIN || p.opslimit > crypto_pwhash_OPSLIMIT_MAX) {
    return Status::InvalidArgument("Argon2id opslimit out of range");
  }
  if (p.memlimit < crypto_pwhash_MEMLIMIT_MIN || p.memlimit > crypto_pwhash_MEMLIMIT_MAX ||
      p.memlimit > (uint64_t{1} << 32)) {
    return Status::InvalidArgument("Argon2id memlimit out of range");
  }
  return Status::Ok();
}

Result<SecretBytes> DeriveKeyFromPassphrase(std::string_view passphrase, ByteView salt,
                                            const PwhashParams& params, size_t size) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  ENLACE_RETURN_IF_ERROR(CheckPwhashParams(params));
  if (salt.size() != crypto_pwhash_SALTBYTES) return Status::InvalidArgument("bad salt size");
  SecretBytes key(size);
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(),
                    params.opslimit, static_cast<size_t>(params.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::ResourceExhausted("Argon2id ran out of memory");
  }
  return key;
}

// ---- KDF and hashing ------------------------------------------------------------

SecretBytes DeriveSubkey(const SecretBytes& master, uint64_t id, const char (&context)[9],
                         size_t size) {
  static_assert(crypto_kdf_CONTEXTBYTES == 8);
  RequireSodium();
  SecretBytes sub(size);
  if (master.size() != crypto_kdf_KEYBYTES ||
      crypto_kdf_derive_from_key(sub.data(), size, id, context, master.data()) != 0) {
    std::abort();  // programming error: sizes are fixed by callers
  }
  return sub;
}

std::array<uint8_t, kHashBytes> GenericHash(ByteView message, ByteView key) {
  RequireSodium();
  std::array<uint8_t, kHashBytes> out{};
  crypto_generichash(out.data(), out.size(), message.data(), message.size(),
                     key.empty() ? nullptr : key.data(), key.size());
  return out;
}

// ---- AEAD -----------------------------------------------------------------------

static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

AeadNonce RandomNonce() {
  AeadNonce n{};
  RandomFill(n);
  return n;
}

Bytes AeadSeal(const SecretBytes& key, const AeadNonce& nonce, ByteView plaintext, ByteView aad) {
  RequireSodium();
  if (key.size() != kAeadKeyBytes) std::abort();
  Bytes out(plaintext.size() + kAeadTagBytes);
  unsigned long long out_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                             plaintext.size(), aad.data(), aad.size(), nullptr,
                                             nonce.data(), key.data());
  out.resize(out_len);
  return out;
}

Result<SecretBytes> AeadOpen(const SecretBytes& key, const AeadNonce& nonce, ByteView ciphertext,
                             ByteView aad) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  if (key.size() != kAeadKeyBytes) return Status::InvalidArgument("bad AEAD key size");
  if (ciphertext.size() < kAeadTagBytes) return Status::DecryptFailed("ciphertext too short");
  SecretBytes plain(ciphertext.size() - kAeadTagBytes);
  unsigned long long plain_len = 0;
  // libsodium needs a non-null output pointer even for an empty plaintext.
  uint8_t empty_sink = 0;
  uint8_t* out = plain.empty() ? &empty_sink : plain.data();
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plain_len, nullptr, ciphertext.data(),
                                                 ciphertext.size(), aad.data(), aad.size(),
                                                 nonce.data(), key.data()) != 0) {
    return Status::DecryptFailed("ciphertext or its associated data failed authentication");
  }
  return plain;
}

Status AeadOpenData(const SecretBytes& key, const AeadNonce& nonce, ByteView ciphertext,
                    ByteView aad, Bytes& out) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  if (key.size() != kAeadKeyBytes) return Status::InvalidArgument("bad AEAD key size");
  if (ciphertext.size() < kAeadTagBytes) return Status::DecryptFailed("ciphertext too short");
  out.assign(ciphertext.size() - kAeadTagBytes + 1, 0);  // +1: never a null pointer
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &plain_len, nullptr, ciphertext.data(),
                                                 ciphertext.size(), aad.data(), aad.size(),
                                                 nonce.data(), key.data()) != 0) {
    Wipe(out);
    out.clear();
    return Status::DecryptFailed("ciphertext or its associated data failed authentication");
  }
  out.resize(plain_len);
  return Status::Ok();
}

// ---- key pairs ----------------------------------------------------------------------

namespace {

// A fresh pair from `keypair` (crypto_sign_keypair, crypto_box_keypair).
template <typename Pair>
Pair GeneratePair(size_t secret_bytes, int (*keypair)(unsigned char*, unsigned char*)) {
  RequireSodium();
  Pair kp;
  kp.secret_key = SecretBytes(secret_bytes);
  keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

// The pair of `secret_key`, its public key computed by `to_public`.
template <typename Pair>
Result<Pair> PairFromSecret(SecretBytes secret_key, size_t secret_bytes, const std::string& kind,
                            int (*to_public)(unsigned char*, const unsigned char*)) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  if (secret_key.size() != secret_bytes) return Status::Corruption("bad " + kind + " key size");
  Pair kp;
  if (to_public(kp.public_key.data(), secret_key.data()) != 0) {
    return Status::Corruption("bad " + kind + " secret key");
  }
  kp.secret_key = std::move(secret_key);
  return kp;
}

}  // namespace

// ---- Ed25519 ----------------------------------------------------------------------

static_assert(kSignPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignSecretKeyBytes == crypto_sign_SECRETKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);

SigningKeyPair SigningKeyPair::Generate() {
  return GeneratePair<SigningKeyPair>(kSignSecretKeyBytes, crypto_sign_keypair);
}

Result<SigningKeyPair> SigningKeyPair::FromSecret(SecretBytes secret_key) {
  return PairFromSecret<SigningKeyPair>(std::move(secret_key), kSignSecretKeyBytes, "signing",
                                        crypto_sign_ed25519_sk_to_pk);
}

Signature Sign(const SecretBytes& secret_key, ByteView message) {
  RequireSodium();
  if (secret_key.size() != kSignSecretKeyBytes) std::abort();
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key.data());
  return sig;
}

bool VerifySignature(const SignPublicKey& public_key, ByteView message, const Signature& sig) {
  if (!EnsureSodium().ok()) return false;
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

// ---- X25519 sealed boxes -------------------------------------------------------------

static_assert(kBoxPublicKeyBytes == crypto_box_PUBLICKEYBYTES);
static_assert(kBoxSecretKeyBytes == crypto_box_SECRETKEYBYTES);
static_assert(kSealOverheadBytes == crypto_box_SEALBYTES);

BoxKeyPair BoxKeyPair::Generate() {
  return GeneratePair<BoxKeyPair>(kBoxSecretKeyBytes, crypto_box_keypair);
}

Result<BoxKeyPair> BoxKeyPair::FromSecret(SecretBytes secret_key) {
  return PairFromSecret<BoxKeyPair>(std::move(secret_key), kBoxSecretKeyBytes, "box",
                                    crypto_scalarmult_base);
}

Bytes SealTo(const BoxPublicKey& recipient, ByteView message) {
  RequireSodium();
  Bytes out(message.size() + kSealOverheadBytes);
  crypto_box_seal(out.data(), message.data(), message.size(), recipient.data());
  return out;
}

Result<SecretBytes> OpenSealed(const BoxKeyPair& keys, ByteView sealed) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  if (sealed.size() < kSealOverheadBytes) return Status::DecryptFailed("sealed box too short");
  if (keys.secret_key.size() != kBoxSecretKeyBytes) {
    return Status::InvalidArgument("bad box secret key size");
  }
  SecretBytes plain(sealed.size() - kSealOverheadBytes);
  uint8_t empty_sink = 0;
  uint8_t* out = plain.empty() ? &empty_sink : plain.data();
  if (crypto_box_seal_open(out, sealed.data(), sealed.size(), keys.public_key.data(),
                           keys.secret_key.data()) != 0) {
    return Status::DecryptFailed("sealed box was not sealed to this device or was altered");
  }
  return plain;
}

}  // namespace enlace::internal
