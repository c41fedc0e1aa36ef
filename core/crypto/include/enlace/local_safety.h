// Local safety of a device's folder, with or without its passphrase: the
// passphrase's Argon2id cost, destroying the files (enlace panic, duress,
// wipe-after-N), and the unlock back-off. Replica::Open applies the
// back-off and the duress passphrase (enlace/replica.h).
#ifndef ENLACE_LOCAL_SAFETY_H_
#define ENLACE_LOCAL_SAFETY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "enlace/status.h"

namespace enlace {

// Argon2id cost of the passphrase. Interactive() is the default (64 MiB);
// Minimum() exists for tests only.
struct KdfCost {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;  // bytes
  static KdfCost Interactive();
  static KdfCost Moderate();
  static KdfCost Minimum();
};

// Destroys the files `names` (plain names, no '/') in `dir`: each regular
// file is overwritten with random bytes, then zeros (same length), fsynced
// and unlinked; then the folder is fsynced. Missing files are fine; a
// symbolic link is unlinked without following it; folders are left. Every
// name is tried even after an error; returns the first error (kIoError).
// Does not reach copies the file system or flash controller keeps (see
// docs/THREAT_MODEL.md).
Status WipeFiles(const std::string& dir, const std::vector<std::string>& names);

// WipeFiles on every file a replica keeps in `dir`: vault.bin, store.db and
// its -wal/-shm/-journal files, overlay.write (the team overlay case work
// keeps), unlock.state, and the
// temporary files their writers leave (*.tmp). The folder stays. The
// Replica on `dir` must be closed (destroyed) first, or not open at all: no
// passphrase is needed.
Status WipeReplicaFiles(const std::string& dir);

// The unlock back-off state of the replica in `dir` (unauthenticated).
struct UnlockThrottle {
  uint32_t failures = 0;    // consecutive wrong passphrases
  uint32_t wipe_after = 0;  // 0: never
  uint64_t wait_ms = 0;     // until the next attempt is allowed (0: now)
};
// Reads it without a passphrase; `now_ms` as from ReplicaOptions::clock.
UnlockThrottle ReadUnlockThrottle(const std::string& dir, uint64_t now_ms);

}  // namespace enlace

#endif  // ENLACE_LOCAL_SAFETY_H_
