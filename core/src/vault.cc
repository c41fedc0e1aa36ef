#include "vault.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "codec.h"

namespace enlace::internal {

namespace {

constexpr char kMagic[4] = {'E', 'N', 'L', 'V'};
constexpr uint8_t kVaultFormat = 1;
constexpr uint8_t kBundleFormat = 1;
constexpr size_t kMaxVaultBytes = 1 << 20;
constexpr uint64_t kMaxUnlockOpslimit = 4;                      // crypto_pwhash_OPSLIMIT_SENSITIVE
constexpr uint64_t kMaxUnlockMemlimit = 1024ull * 1024 * 1024;  // MEMLIMIT_SENSITIVE
constexpr size_t kMaxTeamKeys = 4096;
constexpr char kKdfContext[9] = "enlvault";
constexpr uint64_t kVerifierSubkey = 1;
constexpr uint64_t kEncryptionSubkey = 2;

// ---- The secret bundle, built directly in guarded memory ------------------------

constexpr size_t kBundleFixed = 1 + 16 + kSignSecretKeyBytes + kBoxSecretKeyBytes + 16 + 4;
constexpr size_t kBundleKeyEntry = 4 + kAeadKeyBytes;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

SecretBytes EncodeBundle(const VaultSecrets& s) {
  SecretBytes out(kBundleFixed + s.team_keys.size() * kBundleKeyEntry);
  uint8_t* p = out.data();
  *p++ = kBundleFormat;
  std::memcpy(p, s.device.bytes.data(), 16), p += 16;
  std::memcpy(p, s.signing.secret_key.data(), kSignSecretKeyBytes), p += kSignSecretKeyBytes;
  std::memcpy(p, s.box.secret_key.data(), kBoxSecretKeyBytes), p += kBoxSecretKeyBytes;
  std::memcpy(p, s.team.bytes.data(), 16), p += 16;
  PutU32(p, static_cast<uint32_t>(s.team_keys.size())), p += 4;
  for (const auto& [version, key] : s.team_keys) {
    PutU32(p, version), p += 4;
    std::memcpy(p, key.data(), kAeadKeyBytes), p += kAeadKeyBytes;
  }
  return out;
}

Result<VaultSecrets> DecodeBundle(const SecretBytes& b) {
  if (b.size() < kBundleFixed || b.data()[0] != kBundleFormat) {
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
  const uint32_t n = GetU32(p);
  p += 4;
  if (n > kMaxTeamKeys || b.size() != kBundleFixed + n * kBundleKeyEntry) {
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
};

Bytes EncodeHeader(const Header& h) {
  Encoder e;
  e.Raw(AsBytes(std::string_view(kMagic, 4)));
  e.U8(kVaultFormat);
  e.U64(h.params.opslimit);
  e.U64(h.params.memlimit);
  e.Raw(h.salt);
  return e.Finish();
}

std::array<uint8_t, kHashBytes> Verifier(const SecretBytes& verifier_key, ByteView header) {
  return GenericHash(header, verifier_key.view());
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
  return c;
}

Status Vault::Derive(std::string_view passphrase) {
  ENLACE_ASSIGN_OR_RETURN(SecretBytes kek,
                          DeriveKeyFromPassphrase(passphrase, salt_, params_, kKdfKeyBytes));
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
  ENLACE_RETURN_IF_ERROR(v->Derive(passphrase));
  v->secrets_ = std::move(secrets);
  ENLACE_RETURN_IF_ERROR(v->WriteFile());
  return v;
}

Status Vault::WriteFile() const {
  const Bytes header = EncodeHeader(Header{params_, salt_});
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
  return WriteFileAtomically(path_, file);
}

Result<std::unique_ptr<Vault>> Vault::Unlock(const std::string& path, std::string_view passphrase) {
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
  if (format != kVaultFormat) return Status::Corruption("unsupported vault format");
  ENLACE_RETURN_IF_ERROR(d.U64(h.params.opslimit, "opslimit"));
  ENLACE_RETURN_IF_ERROR(d.U64(h.params.memlimit, "memlimit"));
  ENLACE_RETURN_IF_ERROR(d.Raw(h.salt, "salt"));
  // An edited header must not make unlocking run for hours or exhaust memory:
  // accept no more than the "sensitive" cost libsodium defines.
  if (!CheckPwhashParams(h.params).ok() || h.params.opslimit > kMaxUnlockOpslimit ||
      h.params.memlimit > kMaxUnlockMemlimit) {
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
  ENLACE_RETURN_IF_ERROR(v->Derive(passphrase));
  if (!ConstantTimeEquals(Verifier(v->verifier_key_, header_bytes), stored_verifier)) {
    return Status::WrongPassphrase("the passphrase does not open this vault");
  }
  auto bundle = AeadOpen(v->encryption_key_, nonce, ciphertext, header_bytes);
  if (!bundle.ok()) return Status::Corruption("vault contents were altered");
  ENLACE_ASSIGN_OR_RETURN(v->secrets_, DecodeBundle(*bundle));
  return v;
}

Status Vault::Update(VaultSecrets secrets) {
  VaultSecrets previous = std::move(secrets_);
  secrets_ = std::move(secrets);
  Status s = WriteFile();
  if (!s.ok()) secrets_ = std::move(previous);
  return s;
}

Status Vault::ChangePassphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                               const PwhashParams& params) {
  ENLACE_RETURN_IF_ERROR(CheckPwhashParams(params));
  if (new_passphrase.empty()) return Status::InvalidArgument("the new passphrase is empty");
  ENLACE_ASSIGN_OR_RETURN(SecretBytes old_kek,
                          DeriveKeyFromPassphrase(old_passphrase, salt_, params_, kKdfKeyBytes));
  if (!DeriveSubkey(old_kek, kVerifierSubkey, kKdfContext, kHashBytes)
           .ConstantTimeEquals(verifier_key_)) {
    return Status::WrongPassphrase("the current passphrase is not correct");
  }
  Vault next;
  next.path_ = path_;
  next.params_ = params;
  RandomFill(next.salt_);
  ENLACE_RETURN_IF_ERROR(next.Derive(new_passphrase));
  next.secrets_ = secrets_.Clone();
  ENLACE_RETURN_IF_ERROR(next.WriteFile());
  params_ = next.params_;
  salt_ = next.salt_;
  verifier_key_ = std::move(next.verifier_key_);
  encryption_key_ = std::move(next.encryption_key_);
  return Status::Ok();
}

// ---- Files --------------------------------------------------------------------------

Status WriteFileAtomically(const std::string& path, ByteView data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot create " + tmp + ": " + std::strerror(errno));
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
