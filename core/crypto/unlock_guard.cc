#include "crypto/unlock_guard.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "enlace/local_safety.h"

namespace enlace::internal {

namespace {

constexpr size_t kMaxStateBytes = 4096;
constexpr char kStateMagic[] = "enlace-unlock-state 1";

std::string StatePath(const std::string& dir) {
  return (std::filesystem::path(dir) / kUnlockStateFile).string();
}

std::string Seconds(uint64_t ms) { return std::to_string((ms + 999) / 1000); }

}  // namespace

UnlockState LoadUnlockState(const std::string& dir) {
  UnlockState state;
  auto bytes = ReadWholeFile(StatePath(dir), kMaxStateBytes);
  if (!bytes.ok()) return state;
  std::istringstream in(std::string(bytes->begin(), bytes->end()));
  std::string line;
  if (!std::getline(in, line) || line != kStateMagic) return state;
  UnlockState read;
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "failures") {
      read.failures = static_cast<uint32_t>(std::min<uint64_t>(value, UINT32_MAX));
    } else if (key == "last_failure_ms") {
      read.last_failure_ms = value;
    } else if (key == "wipe_after") {
      read.wipe_after = static_cast<uint32_t>(std::min<uint64_t>(value, UINT32_MAX));
    }
  }
  return read;
}

Status SaveUnlockState(const std::string& dir, const UnlockState& state) {
  std::ostringstream out;
  out << kStateMagic << "\nfailures " << state.failures << "\nlast_failure_ms "
      << state.last_failure_ms << "\nwipe_after " << state.wipe_after << "\n";
  const std::string text = out.str();
  return WriteFileAtomically(StatePath(dir), AsBytes(std::string_view(text)));
}

uint64_t UnlockDelayMs(uint32_t failures) {
  if (failures < kFreeAttempts) return 0;
  const uint32_t exponent = failures - kFreeAttempts;
  if (exponent >= 20) return kMaxUnlockDelayMs;  // 2^20 s is far over the cap
  return std::min<uint64_t>((uint64_t{1} << exponent) * 1000, kMaxUnlockDelayMs);
}

uint64_t UnlockWaitMs(const UnlockState& state, uint64_t now_ms) {
  const uint64_t delay = UnlockDelayMs(state.failures);
  if (delay == 0) return 0;
  const uint64_t elapsed = now_ms > state.last_failure_ms ? now_ms - state.last_failure_ms : 0;
  return elapsed >= delay ? 0 : delay - elapsed;
}

Result<std::unique_ptr<Vault>> UnlockGuarded(const std::string& dir, std::string_view passphrase,
                                             uint64_t now_ms, UnlockOutcome& outcome) {
  outcome = UnlockOutcome::kOpened;
  const std::string vault_path = (std::filesystem::path(dir) / "vault.bin").string();
  std::error_code ec;
  if (!std::filesystem::exists(vault_path, ec)) return Status::NotFound("no vault in " + dir);

  UnlockState state = LoadUnlockState(dir);
  if (const uint64_t wait = UnlockWaitMs(state, now_ms); wait > 0) {
    if (now_ms < state.last_failure_ms) {
      // The clock went back: restart the wait from now rather than forever.
      state.last_failure_ms = now_ms;
      (void)SaveUnlockState(dir, state);
    }
    return Status::WrongPassphrase("too many wrong passphrases: wait " + Seconds(wait) +
                                   " seconds before trying again");
  }

  bool duress = false;
  auto vault = Vault::Unlock(vault_path, passphrase, &duress);
  if (duress) {
    outcome = UnlockOutcome::kDuress;
    return std::unique_ptr<Vault>();
  }
  if (vault.ok()) {
    if (state.failures != 0) {
      state.failures = 0;
      state.last_failure_ms = 0;
      // Best effort: a read-only folder must not stop the device opening.
      (void)SaveUnlockState(dir, state);
    }
    return vault;
  }
  if (vault.status().code() != StatusCode::kWrongPassphrase) return vault.status();

  state.failures = state.failures == UINT32_MAX ? UINT32_MAX : state.failures + 1;
  state.last_failure_ms = now_ms;
  if (state.wipe_after != 0 && state.failures >= state.wipe_after) {
    const Status wiped = WipeReplicaFiles(dir);
    if (!wiped.ok()) {
      return Status::WrongPassphrase(
          "wrong passphrase " + std::to_string(state.failures) +
          " times: destroying the data on this device failed: " + wiped.message());
    }
    return Status::WrongPassphrase("wrong passphrase " + std::to_string(state.failures) +
                                   " times: the data on this device was destroyed");
  }
  // Best effort: a folder that cannot be written still answers "wrong".
  (void)SaveUnlockState(dir, state);
  if (const uint64_t delay = UnlockDelayMs(state.failures); delay > 0) {
    return Status::WrongPassphrase("the passphrase does not open this vault; wait " +
                                   Seconds(delay) + " seconds before the next attempt");
  }
  return vault.status();
}

}  // namespace enlace::internal

namespace enlace {

UnlockThrottle ReadUnlockThrottle(const std::string& dir, uint64_t now_ms) {
  const internal::UnlockState state = internal::LoadUnlockState(dir);
  return UnlockThrottle{state.failures, state.wipe_after, internal::UnlockWaitMs(state, now_ms)};
}

}  // namespace enlace
