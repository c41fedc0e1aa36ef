// Sealing, verifying and opening writes: the crypto half of enlace/write.h.
#ifndef ENLACE_CORE_REPLICA_WRITE_INTERNAL_H_
#define ENLACE_CORE_REPLICA_WRITE_INTERNAL_H_

#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "enlace/write.h"

namespace enlace::internal {

// Encrypts `values` (JSON texts, one per write.fields entry, in order) under
// `team_key` with the write's metadata as associated data, then signs it.
// Fills nonce, ciphertext and signature of `write`.
Status SealWrite(Write& write, const std::vector<std::string>& values, const SecretBytes& team_key,
                 const SecretBytes& signing_secret_key);

// kUnauthenticated unless the signature verifies under `signer`.
Status VerifyWriteSignature(const Write& write, const SignPublicKey& signer);

// Decrypts the payload: one JSON text per field, in order. kDecryptFailed
// when the ciphertext or any metadata was altered or the key is wrong;
// kCorruption when the payload does not match the field list.
Result<std::vector<std::string>> OpenWritePayload(const Write& write, const SecretBytes& team_key);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_REPLICA_WRITE_INTERNAL_H_
