// The vault: a device's secret keys and team keys, wrapped under a key derived
// from the passphrase with Argon2id. Nothing secret is ever on disk unwrapped.
//
// File layout (all integers little endian):
//   magic "ENLV" | format u8 | opslimit u64 | memlimit u64 | salt[16]
//   | verifier[32] | nonce[24] | ciphertext_len u32 | ciphertext | checksum[32]
// The passphrase key KEK = Argon2id(passphrase, salt, params) yields two
// subkeys: one keys a BLAKE2b verifier over the header (so a wrong passphrase
// is told apart from a damaged file without decrypting), one encrypts the
// secret bundle with the header as associated data. The checksum, an unkeyed
// BLAKE2b of everything before it, detects accidental damage.
//
// Not thread-safe.
#ifndef ENLACE_CORE_SRC_VAULT_H_
#define ENLACE_CORE_SRC_VAULT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "crypto.h"
#include "enlace/types.h"

namespace enlace::internal {

// What the vault protects.
struct VaultSecrets {
  DeviceId device;
  SigningKeyPair signing;
  BoxKeyPair box;
  TeamId team;                                // zero until the device has a team
  std::map<uint32_t, SecretBytes> team_keys;  // key version -> 32-byte key

  VaultSecrets Clone() const;
};

class Vault {
 public:
  // Writes a new vault at `path` (kAlreadyExists if a file is there).
  static Result<std::unique_ptr<Vault>> Create(const std::string& path, std::string_view passphrase,
                                               const PwhashParams& params, VaultSecrets secrets);

  // Opens the vault. kWrongPassphrase when the passphrase does not match,
  // kCorruption when the file is damaged or tampered, kNotFound when absent.
  // A failed unlock changes nothing on disk.
  static Result<std::unique_ptr<Vault>> Unlock(const std::string& path,
                                               std::string_view passphrase);

  const VaultSecrets& secrets() const { return secrets_; }

  // Replaces the secrets and rewrites the file atomically (same passphrase).
  Status Update(VaultSecrets secrets);

  // Re-wraps everything under `new_passphrase` (fresh salt) after checking
  // `old_passphrase` in constant time against the current one; kWrongPassphrase
  // leaves the file untouched.
  Status ChangePassphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                          const PwhashParams& params);

  const PwhashParams& params() const { return params_; }

 private:
  Vault() = default;
  Status Derive(std::string_view passphrase);  // sets verifier/enc keys from salt_ + params_
  Status WriteFile() const;                    // atomic: temp file, fsync, rename

  std::string path_;
  PwhashParams params_;
  std::array<uint8_t, kPwhashSaltBytes> salt_{};
  SecretBytes verifier_key_;
  SecretBytes encryption_key_;
  VaultSecrets secrets_;
};

// Writes `data` to `path` atomically: a temporary file in the same folder,
// fsync, rename, fsync of the folder. Mode 0600.
Status WriteFileAtomically(const std::string& path, ByteView data);
Result<Bytes> ReadWholeFile(const std::string& path, size_t max_bytes);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_SRC_VAULT_H_
