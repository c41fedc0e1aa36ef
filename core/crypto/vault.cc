#include "crypto/vault.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/codec.h"
#include "enlace/local_safety.h"

namespace enlace::internal {

namespace {

constexpr char kMagic[4] = {'E', 'N', 'L', 'V'};
constexpr uint8_t kVaultFormatV1 = 1;  // read only
constexpr uint8_t kVaultFormat = 2;
constexpr uint8_t kBundleFormatV1 = 1;  // read only: no local key, no seal generation
constexpr uint8_t kBundleFormat = 2;
constexpr size_t kMaxVaultBytes = 1 << 20;
constexpr uint64_t kMaxUnlockOpslimit = 4;                      // crypto_pwhash_OPSLIMIT_SENSITIVE
constexpr uint64_t kMaxUnlockMemlimit = 1024ull * 1024 * 1024;  // MEMLIMIT_SENSITIVE
constexpr size_t kMaxTeamKeys = 4096;
constexpr char kKdfContext[9] = "enlvault";
constexpr uint64_t kVerifierSubkey = 1;
constexpr uint64_t kEncryptionSubkey = 2;
constexpr uint64_t kDuressSubkey = 3;

std::atomic<uint64_t> g_derivations{0};

Result<SecretBytes> DeriveKek(std::string_view passphrase, ByteView salt,
                              const PwhashParams& params) {
  g_derivations.fetch_add(1, std::memory_order_relaxed);
  return DeriveKeyFromPassphrase(passphrase, salt, params, kKdfKeyBytes);
}

// An edited header must not make unlocking run for hours or exhaust memory:
// accept no more than the "sensitive" cost libsodium defines.
bool AcceptableUnlockParams(const PwhashParams& p) {
  return CheckPwhashParams(p).ok() && p.opslimit <= kMaxUnlockOpslimit &&
         p.memlimit <= kMaxUnlockMemlimit;
}

// ---- The secret bundle, built directly in guarded memory ------------------------

constexpr size_t kBundleFixedV1 = 1 + 16 + kSignSecretKeyBytes + kBoxSecretKeyBytes + 16 + 4;
constexpr size_t kBundleFixed = kBundleFixedV1 + kLocalKeyBytes + 8;
constexpr size_t kBundleKeyEntry = 4 + kAeadKeyBytes;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Precondition: s.local_key holds kLocalKeyBytes (Create and Update see to it).
SecretBytes EncodeBundle(const VaultSecrets& s) {
  SecretBytes out(kBundleFixed + s.team_keys.size() * kBundleKeyEntry);
  uint8_t* p = out.data();
  *p++ = kBundleFormat;
  std::memcpy(p, s.device.bytes.data(), 16), p += 16;
  std::memcpy(p, s.signing.secret_key.data(), kSignSecretKeyBytes), p += kSignSecretKeyBytes;
  std::memcpy(p, s.box.secret_key.data(), kBoxSecretKeyBytes), p += kBoxSecretKeyBytes;
  std::memcpy(p, s.team.bytes.data(), 16), p += 16;
  std::memcpy(p, s.local_key.data(), kLocalKeyBytes), p += kLocalKeyBytes;
  PutU64(p, s.seal_generation), p += 8;
  PutU32(p, static_cast<uint32_t>(s.team_keys.size())), p += 4;
  for (const auto& [version, key] : s.team_keys) {
    PutU32(p, version), p += 4;
    std::memcpy(p, key.data(), kAeadKeyBytes), p += kAeadKeyBytes;
  }
  return out;
}

Result<VaultSecrets> DecodeBundle(const SecretBytes& b) {
  const uint8_t format = b.empty() ? 0 : b.data()[0];
  const size_t fixed = format == kBundleFormatV1 ? kBundleFixedV1 : kBundleFixed;
  if ((format != kBundleFormat && format != kBundleFormatV1) || b.size() < fixed) {
    return Status::Corruption("vault contents are malformed");
  }
  const uint8_t* p = b.data() + 1;
  VaultSecrets s;
  std::memcpy(s.device.bytes.data(), p, 16), p += 16;
  ENLACE_ASSIGN_OR_RETURN(s.signing,
                          SigningKeyPair::FromSecret(SecretBytes(p, kSignSecretKeyBytes)));
  p += kSignSecretKeyBytes;
  ENLACE_ASSIGN_OR_RETURN(s.box, BoxKeyPair::FromSecret(SecretBytes(p, kBoxSecretKeyBytes)));
  p += kBoxSecretKeyBytes;
  std::memcpy(s.team.bytes.data(), p, 16), p += 16;
  if (format == kBundleFormat) {
    s.local_key = SecretBytes(p, kLocalKeyBytes);
    p += kLocalKeyBytes;
    s.seal_generation = GetU64(p);
    p += 8;
  }
  const uint32_t n = GetU32(p);
  p += 4;
  if (n > kMaxTeamKeys || b.size() != fixed + n * kBundleKeyEntry) {
    return Status::Corruption("vault contents are malformed");
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t version = GetU32(p);
    s.team_keys.emplace(version, SecretBytes(p + 4, kAeadKeyBytes));
    p += kBundleKeyEntry;
  }
  return s;
}

// ---- The file ---------------------------------------------------------------------

struct Header {
  PwhashParams params;
  std::array<uint8_t, kPwhashSaltBytes> salt{};
  PwhashParams duress_params;
  std::array<uint8_t, kPwhashSaltBytes> duress_salt{};
  std::array<uint8_t, kHashBytes> duress_verifier{};
};

Bytes EncodeHeader(const Header& h) {
  Encoder e;
  e.Raw(AsBytes(std::string_view(kMagic, 4)));
  e.U8(kVaultFormat);
  e.U64(h.params.opslimit);
  e.U64(h.params.memlimit);
  e.Raw(h.salt);
  e.U64(h.duress_params.opslimit);
  e.U64(h.duress_params.memlimit);
  e.Raw(h.duress_salt);
  e.Raw(h.duress_verifier);
  return e.Finish();
}

std::array<uint8_t, kHashBytes> Verifier(const SecretBytes& verifier_key, ByteView header) {
  return GenericHash(header, verifier_key.view());
}

// The duress verifier: keyed by a subkey of the duress KEK, over the duress
// params and salt (not the main header, which changes on every rewrap).
Result<std::array<uint8_t, kHashBytes>> DuressVerifier(
    std::string_view duress, const PwhashParams& params,
    const std::array<uint8_t, kPwhashSaltBytes>& salt) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(duress, salt, params));
  const SecretBytes key = DeriveSubkey(kek, kDuressSubkey, kKdfContext, kHashBytes);
  Encoder e;
  e.Raw(AsBytes(std::string_view("enlace duress v1")));
  e.U64(params.opslimit);
  e.U64(params.memlimit);
  e.Raw(salt);
  return GenericHash(e.Finish(), key.view());
}

}  // namespace

VaultSecrets VaultSecrets::Clone() const {
  VaultSecrets c;
  c.device = device;
  c.signing.public_key = signing.public_key;
  c.signing.secret_key = signing.secret_key.Clone();
  c.box.public_key = box.public_key;
  c.box.secret_key = box.secret_key.Clone();
  c.team = team;
  for (const auto& [v, k] : team_keys) c.team_keys.emplace(v, k.Clone());
  c.local_key = local_key.Clone();
  c.seal_generation = seal_generation;
  return c;
}

uint64_t Vault::DerivationCount() { return g_derivations.load(std::memory_order_relaxed); }

void Vault::RandomDuress() {
  duress_params_ = params_;
  RandomFill(duress_salt_);
  RandomFill(duress_verifier_);
}

Status Vault::Derive(std::string_view passphrase) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(passphrase, salt_, params_));
  verifier_key_ = DeriveSubkey(kek, kVerifierSubkey, kKdfContext, kHashBytes);
  encryption_key_ = DeriveSubkey(kek, kEncryptionSubkey, kKdfContext, kAeadKeyBytes);
  return Status::Ok();
}

Result<std::unique_ptr<Vault>> Vault::Create(const std::string& path, std::string_view passphrase,
                                             const PwhashParams& params, VaultSecrets secrets) {
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  ENLACE_RETURN_IF_ERROR(CheckPwhashParams(params));
  if (passphrase.empty()) return Status::InvalidArgument("the passphrase is empty");
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return Status::AlreadyExists("a vault already exists here");
  std::unique_ptr<Vault> v(new Vault());
  v->path_ = path;
  v->params_ = params;
  RandomFill(v->salt_);
  v->RandomDuress();
  ENLACE_RETURN_IF_ERROR(v->Derive(passphrase));
  if (secrets.local_key.empty()) secrets.local_key = SecretBytes::Random(kLocalKeyBytes);
  v->secrets_ = std::move(secrets);
  ENLACE_RETURN_IF_ERROR(v->WriteFile());
  return v;
}

Status Vault::WriteFile() {
  const Bytes header =
      EncodeHeader(Header{params_, salt_, duress_params_, duress_salt_, duress_verifier_});
  const auto verifier = Verifier(verifier_key_, header);
  const AeadNonce nonce = RandomNonce();
  const SecretBytes bundle = EncodeBundle(secrets_);
  const Bytes ciphertext = AeadSeal(encryption_key_, nonce, bundle.view(), header);

  // Two archives back to back: the header (the associated data) and the rest.
  Encoder e;
  e.Raw(verifier);
  e.Raw(nonce);
  e.Blob(ciphertext);
  Bytes file = header;
  const Bytes rest = e.Finish();
  file.insert(file.end(), rest.begin(), rest.end());
  const auto checksum = GenericHash(file);
  file.insert(file.end(), checksum.begin(), checksum.end());
  ENLACE_RETURN_IF_ERROR(WriteFileAtomically(path_, file));
  local_key_unsaved_ = false;
  return Status::Ok();
}

Result<std::unique_ptr<Vault>> Vault::Unlock(const std::string& path, std::string_view passphrase,
                                             bool* duress_matched) {
  if (duress_matched != nullptr) *duress_matched = false;
  ENLACE_RETURN_IF_ERROR(EnsureSodium());
  ENLACE_ASSIGN_OR_RETURN(Bytes file, ReadWholeFile(path, kMaxVaultBytes));
  if (file.size() < kHashBytes) return Status::Corruption("vault file is truncated");
  const ByteView body(file.data(), file.size() - kHashBytes);
  const auto checksum = GenericHash(body);
  if (!ConstantTimeEquals(checksum, ByteView(file.data() + body.size(), kHashBytes))) {
    return Status::Corruption("vault file is damaged (checksum mismatch)");
  }

  Decoder d(body);
  std::array<uint8_t, 4> magic{};
  uint8_t format = 0;
  Header h;
  ENLACE_RETURN_IF_ERROR(d.Raw(magic, "vault magic"));
  if (std::memcmp(magic.data(), kMagic, 4) != 0) return Status::Corruption("not an enlace vault");
  ENLACE_RETURN_IF_ERROR(d.U8(format, "vault format"));
  if (format != kVaultFormat && format != kVaultFormatV1) {
    return Status::Corruption("unsupported vault format");
  }
  ENLACE_RETURN_IF_ERROR(d.U64(h.params.opslimit, "opslimit"));
  ENLACE_RETURN_IF_ERROR(d.U64(h.params.memlimit, "memlimit"));
  ENLACE_RETURN_IF_ERROR(d.Raw(h.salt, "salt"));
  if (format == kVaultFormat) {
    ENLACE_RETURN_IF_ERROR(d.U64(h.duress_params.opslimit, "duress opslimit"));
    ENLACE_RETURN_IF_ERROR(d.U64(h.duress_params.memlimit, "duress memlimit"));
    ENLACE_RETURN_IF_ERROR(d.Raw(h.duress_salt, "duress salt"));
    ENLACE_RETURN_IF_ERROR(d.Raw(h.duress_verifier, "duress verifier"));
  }
  if (!AcceptableUnlockParams(h.params) ||
      (format == kVaultFormat && !AcceptableUnlockParams(h.duress_params))) {
    return Status::Corruption("vault KDF parameters invalid");
  }
  const ByteView header_bytes = body.first(body.size() - d.remaining());

  Decoder rest(body.subspan(header_bytes.size()));
  std::array<uint8_t, kHashBytes> stored_verifier{};
  AeadNonce nonce{};
  Bytes ciphertext;
  ENLACE_RETURN_IF_ERROR(rest.Raw(stored_verifier, "verifier"));
  ENLACE_RETURN_IF_ERROR(rest.Raw(nonce, "nonce"));
  // A length over the limit is damage here, not a resource problem: the whole
  // file is already known to be under kMaxVaultBytes.
  if (Status s = rest.Blob(ciphertext, kMaxVaultBytes, "vault ciphertext"); !s.ok()) {
    return Status::Corruption(s.message());
  }
  ENLACE_RETURN_IF_ERROR(rest.ExpectEnd("vault"));

  std::unique_ptr<Vault> v(new Vault());
  v->path_ = path;
  v->params_ = h.params;
  v->salt_ = h.salt;
  v->loaded_format_ = format;
  if (format == kVaultFormat) {
    v->duress_params_ = h.duress_params;
    v->duress_salt_ = h.duress_salt;
    v->duress_verifier_ = h.duress_verifier;
  } else {
    v->RandomDuress();  // written as format 2 on the next write
  }
  ENLACE_RETURN_IF_ERROR(v->Derive(passphrase));
  if (!ConstantTimeEquals(Verifier(v->verifier_key_, header_bytes), stored_verifier)) {
    if (format == kVaultFormat) {
      ENLACE_ASSIGN_OR_RETURN(auto duress,
                              DuressVerifier(passphrase, h.duress_params, h.duress_salt));
      if (ConstantTimeEquals(duress, h.duress_verifier) && duress_matched != nullptr) {
        *duress_matched = true;
      }
    }
    return Status::WrongPassphrase("the passphrase does not open this vault");
  }
  auto bundle = AeadOpen(v->encryption_key_, nonce, ciphertext, header_bytes);
  if (!bundle.ok()) return Status::Corruption("vault contents were altered");
  ENLACE_ASSIGN_OR_RETURN(v->secrets_, DecodeBundle(*bundle));
  if (v->secrets_.local_key.empty()) {
    v->secrets_.local_key = SecretBytes::Random(kLocalKeyBytes);
    v->local_key_unsaved_ = true;
  }
  return v;
}

Status Vault::Update(VaultSecrets secrets) {
  if (secrets.local_key.empty()) secrets.local_key = secrets_.local_key.Clone();
  secrets.seal_generation = std::max(secrets.seal_generation, secrets_.seal_generation);
  VaultSecrets previous = std::move(secrets_);
  secrets_ = std::move(secrets);
  Status s = WriteFile();
  if (!s.ok()) {
    secrets_ = std::move(previous);
  } else {
    loaded_format_ = kVaultFormat;
  }
  return s;
}

Status Vault::EnsureLocalKey() { return local_key_unsaved_ ? WriteFile() : Status::Ok(); }

Status Vault::SetSealGeneration(uint64_t generation) {
  if (generation <= secrets_.seal_generation) return Status::Ok();
  VaultSecrets next = secrets_.Clone();
  next.seal_generation = generation;
  return Update(std::move(next));
}

Status Vault::ChangePassphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                               const PwhashParams& params) {
  ENLACE_RETURN_IF_ERROR(CheckPwhashParams(params));
  if (new_passphrase.empty()) return Status::InvalidArgument("the new passphrase is empty");
  ENLACE_ASSIGN_OR_RETURN(const bool current, IsMainPassphrase(old_passphrase));
  if (!current) return Status::WrongPassphrase("the current passphrase is not correct");
  // The main passphrase is checked first on unlock: one equal to the duress
  // passphrase would silently switch the duress passphrase off.
  ENLACE_ASSIGN_OR_RETURN(auto as_duress,
                          DuressVerifier(new_passphrase, duress_params_, duress_salt_));
  if (ConstantTimeEquals(as_duress, duress_verifier_)) {
    return Status::InvalidArgument("the new passphrase is the duress passphrase");
  }
  return Rewrap(new_passphrase, params);
}

Result<bool> Vault::IsMainPassphrase(std::string_view passphrase) const {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(passphrase, salt_, params_));
  return DeriveSubkey(kek, kVerifierSubkey, kKdfContext, kHashBytes)
      .ConstantTimeEquals(verifier_key_);
}

Status Vault::Rewrap(std::string_view passphrase, const PwhashParams& params) {
  Vault next;
  next.path_ = path_;
  next.params_ = params;
  next.duress_params_ = duress_params_;
  next.duress_salt_ = duress_salt_;
  next.duress_verifier_ = duress_verifier_;
  RandomFill(next.salt_);
  ENLACE_RETURN_IF_ERROR(next.Derive(passphrase));
  next.secrets_ = secrets_.Clone();
  ENLACE_RETURN_IF_ERROR(next.WriteFile());
  local_key_unsaved_ = false;
  params_ = next.params_;
  salt_ = next.salt_;
  verifier_key_ = std::move(next.verifier_key_);
  encryption_key_ = std::move(next.encryption_key_);
  loaded_format_ = kVaultFormat;
  return Status::Ok();
}

Status Vault::SetDuress(std::string_view duress) {
  if (duress.empty()) return Status::InvalidArgument("the duress passphrase is empty");
  ENLACE_ASSIGN_OR_RETURN(const bool is_main, IsMainPassphrase(duress));
  if (is_main) {
    return Status::InvalidArgument("the duress passphrase must differ from the passphrase");
  }
  std::array<uint8_t, kPwhashSaltBytes> salt{};
  RandomFill(salt);
  ENLACE_ASSIGN_OR_RETURN(auto verifier, DuressVerifier(duress, params_, salt));
  const PwhashParams old_params = duress_params_;
  const auto old_salt = duress_salt_;
  const auto old_verifier = duress_verifier_;
  duress_params_ = params_;
  duress_salt_ = salt;
  duress_verifier_ = verifier;
  if (Status s = WriteFile(); !s.ok()) {
    duress_params_ = old_params;
    duress_salt_ = old_salt;
    duress_verifier_ = old_verifier;
    return s;
  }
  loaded_format_ = kVaultFormat;
  return Status::Ok();
}

Status Vault::RaiseParams(std::string_view passphrase, const PwhashParams& wanted, bool* raised) {
  if (raised != nullptr) *raised = false;
  const PwhashParams next_params{std::max(params_.opslimit, wanted.opslimit),
                                 std::max(params_.memlimit, wanted.memlimit)};
  if (next_params.opslimit == params_.opslimit && next_params.memlimit == params_.memlimit) {
    return Status::Ok();
  }
  ENLACE_RETURN_IF_ERROR(CheckPwhashParams(next_params));
  if (!AcceptableUnlockParams(next_params)) {
    return Status::InvalidArgument("KDF parameters above what an unlock accepts");
  }
  ENLACE_RETURN_IF_ERROR(Rewrap(passphrase, next_params));
  if (raised != nullptr) *raised = true;
  return Status::Ok();
}

// ---- Files --------------------------------------------------------------------------

Status WriteFileAtomically(const std::string& path, ByteView data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot create " + tmp + ": " + std::strerror(errno));
  if (::fchmod(fd, 0600) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError("cannot make " + tmp + " private: " + err);
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IoError("cannot write " + tmp + ": " + err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError("cannot flush " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError("cannot replace " + path + ": " + std::strerror(errno));
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<Bytes> ReadWholeFile(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no file at " + path);
    return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 0 || static_cast<size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Status::Corruption(path + " is larger than a vault can be");
  }
  Bytes out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace enlace::internal

namespace enlace {

// ---- KdfCost (enlace/local_safety.h) ----

KdfCost KdfCost::Interactive() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}
KdfCost KdfCost::Moderate() {
  return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
}
KdfCost KdfCost::Minimum() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

}  // namespace enlace
