// Unlock back-off and wipe-after-N failures (issue 5, item 6).
//
// A small, unauthenticated state file in the replica folder, `unlock.state`,
// counts consecutive wrong passphrases. After kFreeAttempts failures, each
// further attempt made sooner than UnlockDelayMs(failures) after the last
// failure is refused without running Argon2id. A success resets the count.
// When a wipe threshold is set and the count reaches it, the replica's files
// are destroyed (WipeReplicaFiles).
//
// WARNING: whoever can edit the folder can delete or rewrite this file and so
// reset the counter; the back-off slows down guessing through this code
// only. Offline guessing against a copy of vault.bin is bounded by Argon2id
// alone (docs/THREAT_MODEL.md).
#ifndef ENLACE_CORE_CRYPTO_UNLOCK_GUARD_H_
#define ENLACE_CORE_CRYPTO_UNLOCK_GUARD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/vault.h"
#include "enlace/status.h"

namespace enlace::internal {

inline constexpr char kUnlockStateFile[] = "unlock.state";
inline constexpr uint32_t kFreeAttempts = 3;
inline constexpr uint64_t kMaxUnlockDelayMs = 15 * 60 * 1000;

struct UnlockState {
  uint32_t failures = 0;  // consecutive wrong passphrases
  uint64_t last_failure_ms = 0;
  uint32_t wipe_after = 0;  // 0: never
};

// The state in `dir`; a missing or unreadable file is the zero state.
UnlockState LoadUnlockState(const std::string& dir);
// Writes it atomically (unlock.state.tmp, fsync, rename), mode 0600.
Status SaveUnlockState(const std::string& dir, const UnlockState& state);

// 0 below kFreeAttempts failures, else 2^(failures-3) seconds, at most 15 min.
uint64_t UnlockDelayMs(uint32_t failures);
// How long from `now_ms` until the next attempt is allowed (0: now). A clock
// set back before the last failure counts as no time elapsed.
uint64_t UnlockWaitMs(const UnlockState& state, uint64_t now_ms);

// What UnlockGuarded found.
enum class UnlockOutcome { kOpened, kDuress };

// Unlocks `dir`/vault.bin under the back-off rules. kNotFound when there is
// no vault; kWrongPassphrase when the attempt is refused for back-off (no
// Argon2id run), when the passphrase is wrong (counted), or when the count
// reached wipe_after (the files were wiped; the message says so). With the
// duress passphrase returns no vault and `outcome` kDuress; the caller wipes.
// A success resets the count.
Result<std::unique_ptr<Vault>> UnlockGuarded(const std::string& dir, std::string_view passphrase,
                                             uint64_t now_ms, UnlockOutcome& outcome);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_CRYPTO_UNLOCK_GUARD_H_
