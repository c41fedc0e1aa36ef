// The vault: a device's secret keys and team keys, wrapped under a key derived
// from the passphrase with Argon2id. Nothing secret is ever on disk unwrapped.
//
// File layout, format 2 (all integers little endian):
//   header = magic "ENLV" | format u8 (2) | opslimit u64 | memlimit u64 | salt[16]
//            | duress_opslimit u64 | duress_memlimit u64 | duress_salt[16]
//            | duress_verifier[32]
//   file   = header | verifier[32] | nonce[24] | ciphertext_len u32 | ciphertext
//            | checksum[32]
// Format 1 (still read) has no duress fields. A format 1 vault opens and is
// rewritten as format 2 on its next write.
//
// The secret bundle inside the ciphertext, format 2 (little endian):
//   format u8 (2) | device[16] | signing secret[64] | box secret[32] | team[16]
//   | local_key[32] | seal_generation u64 | n u32 | n x (version u32 | key[32])
// Bundle format 1 (still read) has no local key and no seal generation:
// Unlock gives it a fresh local key in memory, written by EnsureLocalKey or
// the next write.
//
// The passphrase key KEK = Argon2id(passphrase, salt, params) yields two
// subkeys: one keys a BLAKE2b verifier over the header (so a wrong passphrase
// is told apart from a damaged file without decrypting), one encrypts the
// secret bundle with the header as associated data. The checksum, an unkeyed
// BLAKE2b of everything before it, detects accidental damage.
//
// Duress: DKEK = Argon2id(duress passphrase, duress_salt, duress params);
// duress_verifier = BLAKE2b keyed by a DKEK subkey over the duress params and
// salt. With no duress passphrase set, duress_salt and duress_verifier are
// random bytes, so a reader of the file cannot tell whether one is set. The
// duress params are the main params when the duress passphrase is set; a
// later KDF raise (RaiseParams) leaves them as they were, set or not.
//
// Not thread-safe.
#ifndef ENLACE_CORE_CRYPTO_VAULT_H_
#define ENLACE_CORE_CRYPTO_VAULT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "enlace/types.h"

namespace enlace::internal {

// What the vault protects.
struct VaultSecrets {
  DeviceId device;
  SigningKeyPair signing;
  BoxKeyPair box;
  TeamId team;                                // zero until the device has a team
  std::map<uint32_t, SecretBytes> team_keys;  // key version -> 32-byte key
  // A random key for sealing this device's own files (the trust seal of
  // store.db, replica/store.h); never leaves the vault. Create gives
  // secrets without one a fresh one.
  SecretBytes local_key;  // kLocalKeyBytes
  // The generation of the store's newest committed trust seal, as far as
  // the vault knows (0: never sealed). Never decreases.
  uint64_t seal_generation = 0;

  VaultSecrets Clone() const;
};

inline constexpr size_t kLocalKeyBytes = 32;

class Vault {
 public:
  // Writes a new vault at `path` (kAlreadyExists if a file is there).
  static Result<std::unique_ptr<Vault>> Create(const std::string& path, std::string_view passphrase,
                                               const PwhashParams& params, VaultSecrets secrets);

  // Opens the vault. kWrongPassphrase when the passphrase does not match,
  // kCorruption when the file is damaged or tampered, kNotFound when absent.
  // A failed unlock changes nothing on disk. When the main passphrase does
  // not match, the duress verifier is checked (a second Argon2id, constant-
  // time compare); if `passphrase` is the duress passphrase the result is
  // still kWrongPassphrase and `*duress_matched` (when given) is set to true:
  // the caller decides what to destroy.
  static Result<std::unique_ptr<Vault>> Unlock(const std::string& path, std::string_view passphrase,
                                               bool* duress_matched = nullptr);

  const VaultSecrets& secrets() const { return secrets_; }

  // Replaces the secrets and rewrites the file atomically (same passphrase).
  // The local key is kept when `secrets` has none, and the seal generation
  // never goes below the stored one.
  Status Update(VaultSecrets secrets);

  // Writes the local key that Unlock gave a vault from before it (bundle
  // format 1); does nothing when the file already holds it.
  Status EnsureLocalKey();
  // Records that the store committed trust seal `generation`; does nothing
  // when the vault already records it or a later one.
  Status SetSealGeneration(uint64_t generation);

  // Re-wraps everything under `new_passphrase` (fresh salt) after checking
  // `old_passphrase` in constant time against the current one; kWrongPassphrase
  // leaves the file untouched.
  Status ChangePassphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                          const PwhashParams& params);

  const PwhashParams& params() const { return params_; }
  // The format the file had when it was read (1 or 2); every write is format 2.
  uint8_t loaded_format() const { return loaded_format_; }

  // Sets the duress passphrase (fresh duress salt, the main params) and
  // rewrites the file. kInvalidArgument when `duress` is empty or is the
  // main passphrase (checked by deriving with the main salt).
  Status SetDuress(std::string_view duress);

  // Re-wraps under `passphrase` (which must be the one this vault was
  // unlocked with) with a fresh salt and, for each of opslimit and memlimit,
  // the larger of the stored and `wanted` values: never a downgrade. Does
  // nothing when the stored params are already at least `wanted`.
  // Sets `*raised` to whether the file was rewritten.
  Status RaiseParams(std::string_view passphrase, const PwhashParams& wanted, bool* raised);

  // Argon2id derivations run by vault code in this process (tests count them).
  static uint64_t DerivationCount();

 private:
  Vault() = default;
  Status Derive(std::string_view passphrase);  // sets verifier/enc keys from salt_ + params_
  Status WriteFile();                          // atomic: temp file, fsync, rename
  void RandomDuress();                         // random duress salt and verifier
  // Whether `passphrase` is the main passphrase (Argon2id, then a
  // constant-time comparison of verifiers).
  Result<bool> IsMainPassphrase(std::string_view passphrase) const;
  // Re-wraps the secrets under `passphrase` with `params` and a fresh salt,
  // writes the file, then adopts the new keys (unchanged on error).
  Status Rewrap(std::string_view passphrase, const PwhashParams& params);

  std::string path_;
  PwhashParams params_;
  std::array<uint8_t, kPwhashSaltBytes> salt_{};
  PwhashParams duress_params_;
  std::array<uint8_t, kPwhashSaltBytes> duress_salt_{};
  std::array<uint8_t, kHashBytes> duress_verifier_{};
  uint8_t loaded_format_ = 2;
  bool local_key_unsaved_ = false;  // given by Unlock, not in the file yet
  SecretBytes verifier_key_;
  SecretBytes encryption_key_;
  VaultSecrets secrets_;
};

// Writes `data` to `path` atomically: a temporary file in the same folder,
// fsync, rename, fsync of the folder. Mode 0600 (also when a temporary file
// was left wider).
Status WriteFileAtomically(const std::string& path, ByteView data);

// Narrows the folder `dir` to 0700 and each replica file in it that is there
// (those WipeReplicaFiles destroys) to 0600, so what an older version made
// wider becomes the owner's alone. Best effort: a file it cannot change is
// left as it is. Symbolic links are not followed.
void MakeReplicaFilesPrivate(const std::string& dir);
Result<Bytes> ReadWholeFile(const std::string& path, size_t max_bytes);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_CRYPTO_VAULT_H_
