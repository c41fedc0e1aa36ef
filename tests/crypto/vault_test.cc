// The vault (core/crypto/vault.h): the device's keys wrapped under a passphrase.
// A wrong passphrase is a clear error that changes nothing; a damaged or
// tampered file is kCorruption (or, where damage cannot be told from a wrong
// passphrase, kWrongPassphrase), never a crash and never a silent success.
#include "crypto/vault.h"

#include <doctest/doctest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/codec.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "test_util.h"

namespace enlace::internal {
namespace {

using testing::TempDir;

constexpr char kPassphrase[] = "una frase de paso larga";

PwhashParams FastParams() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

// The file layout of vault.h, as cereal's portable binary archive writes it:
// each of the two archives starts with a one-byte endianness marker.
constexpr size_t kMagicAt = 1;
constexpr size_t kFormatAt = kMagicAt + 4;
constexpr size_t kOpslimitAt = kFormatAt + 1;
constexpr size_t kMemlimitAt = kOpslimitAt + 8;
constexpr size_t kSaltAt = kMemlimitAt + 8;
constexpr size_t kDuressOpslimitAt = kSaltAt + kPwhashSaltBytes;
constexpr size_t kDuressMemlimitAt = kDuressOpslimitAt + 8;
constexpr size_t kDuressSaltAt = kDuressMemlimitAt + 8;
constexpr size_t kDuressVerifierAt = kDuressSaltAt + kPwhashSaltBytes;
constexpr size_t kHeaderEnd = kDuressVerifierAt + kHashBytes;
constexpr size_t kVerifierAt = kHeaderEnd + 1;
constexpr size_t kNonceAt = kVerifierAt + kHashBytes;
constexpr size_t kCiphertextLenAt = kNonceAt + kAeadNonceBytes;
constexpr size_t kCiphertextAt = kCiphertextLenAt + 4;

Bytes ReadBytes(const std::string& path) {
  const std::string s = testing::ReadFile(path);
  return Bytes(s.begin(), s.end());
}

void WriteBytes(const std::string& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Recomputes the trailing checksum (unkeyed BLAKE2b-256 of everything
// before it), as a deliberate tamperer would.
void Reseal(Bytes& file) {
  REQUIRE(file.size() >= kHashBytes);
  const auto sum = GenericHash(ByteView(file.data(), file.size() - kHashBytes));
  std::copy(sum.begin(), sum.end(), file.end() - kHashBytes);
}

bool Contains(const Bytes& haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

uint32_t ReadU32(const Bytes& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b[at + i]) << (8 * i);
  return v;
}

VaultSecrets MakeSecrets() {
  VaultSecrets s;
  s.device = DeviceId::Random();
  s.signing = SigningKeyPair::Generate();
  s.box = BoxKeyPair::Generate();
  s.team = TeamId::Random();
  s.team_keys.emplace(1, SecretBytes::Random(kAeadKeyBytes));
  s.team_keys.emplace(7, SecretBytes::Random(kAeadKeyBytes));
  return s;
}

void CheckSameSecrets(const VaultSecrets& got, const VaultSecrets& want) {
  CHECK(got.device == want.device);
  CHECK(got.signing.public_key == want.signing.public_key);
  CHECK(got.signing.secret_key.ConstantTimeEquals(want.signing.secret_key));
  CHECK(got.box.public_key == want.box.public_key);
  CHECK(got.box.secret_key.ConstantTimeEquals(want.box.secret_key));
  CHECK(got.team == want.team);
  REQUIRE(got.team_keys.size() == want.team_keys.size());
  for (const auto& entry : want.team_keys) {
    const uint32_t version = entry.first;  // clang 14 cannot capture a binding in CAPTURE
    CAPTURE(version);
    auto it = got.team_keys.find(version);
    REQUIRE(it != got.team_keys.end());
    CHECK(it->second.ConstantTimeEquals(entry.second));
  }
}

// A vault written once, with a copy of what it holds.
struct VaultFixture {
  TempDir dir{/*in_memory_fs=*/true};
  std::string path = dir.File("vault.bin");
  VaultSecrets secrets = MakeSecrets();
  Bytes file;

  VaultFixture() {
    auto v = Vault::Create(path, kPassphrase, FastParams(), secrets.Clone());
    REQUIRE_MESSAGE(v.ok(), v.status().ToString());
    file = ReadBytes(path);
    REQUIRE(file.size() > kCiphertextAt + kHashBytes);
  }

  StatusCode UnlockCode(std::string_view passphrase = kPassphrase) const {
    auto v = Vault::Unlock(path, passphrase);
    return v.ok() ? StatusCode::kOk : v.status().code();
  }
};

TEST_CASE("a created vault unlocks with its passphrase and holds the same secrets") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  CheckSameSecrets((*v)->secrets(), f.secrets);
  CHECK((*v)->params().opslimit == FastParams().opslimit);
  CHECK((*v)->params().memlimit == FastParams().memlimit);
}

TEST_CASE("a vault without a team or team keys round trips too") {
  TempDir dir(true);
  VaultSecrets s = MakeSecrets();
  s.team = TeamId();
  s.team_keys.clear();
  REQUIRE(Vault::Create(dir.File("v"), kPassphrase, FastParams(), s.Clone()).ok());
  auto v = Vault::Unlock(dir.File("v"), kPassphrase);
  REQUIRE(v.ok());
  CheckSameSecrets((*v)->secrets(), s);
  CHECK((*v)->secrets().team.IsZero());
}

TEST_CASE("the vault file follows the documented layout") {
  VaultFixture f;
  CHECK(std::string(f.file.begin() + kMagicAt, f.file.begin() + kMagicAt + 4) == "ENLV");
  CHECK(f.file[kFormatAt] == 2);
  // The duress cost starts equal to the main cost.
  CHECK(std::equal(f.file.begin() + kOpslimitAt, f.file.begin() + kSaltAt,
                   f.file.begin() + kDuressOpslimitAt));
  // The ciphertext runs from its length prefix to the checksum.
  CHECK(ReadU32(f.file, kCiphertextLenAt) == f.file.size() - kHashBytes - kCiphertextAt);
  const auto sum = GenericHash(ByteView(f.file.data(), f.file.size() - kHashBytes));
  CHECK(std::equal(sum.begin(), sum.end(), f.file.end() - kHashBytes));
}

TEST_CASE("the vault file is private to its owner") {
  VaultFixture f;
  struct stat st {};
  REQUIRE(::stat(f.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(std::filesystem::exists(f.path + ".tmp"));
}

TEST_CASE("the vault file never holds a raw secret key or the passphrase") {
  VaultFixture f;
  const auto& s = f.secrets;
  CHECK_FALSE(Contains(f.file, s.signing.secret_key.view()));
  CHECK_FALSE(Contains(f.file, s.signing.secret_key.view().first(32)));  // the Ed25519 seed
  CHECK_FALSE(Contains(f.file, s.box.secret_key.view()));
  for (const auto& entry : s.team_keys) {
    const uint32_t version = entry.first;
    CAPTURE(version);
    CHECK_FALSE(Contains(f.file, entry.second.view()));
  }
  CHECK_FALSE(Contains(f.file, AsBytes(kPassphrase)));
  CHECK_FALSE(Contains(f.file, AsBytes("una frase")));
}

TEST_CASE("a wrong passphrase is kWrongPassphrase and leaves the file as it was") {
  VaultFixture f;
  for (std::string_view wrong :
       {"una frase de paso larg", "una frase de paso larga ", "Una frase de paso larga", "x", ""}) {
    CAPTURE(std::string(wrong));
    CHECK(f.UnlockCode(wrong) == StatusCode::kWrongPassphrase);
    CHECK(ReadBytes(f.path) == f.file);
    CHECK_FALSE(std::filesystem::exists(f.path + ".tmp"));
  }
  CHECK(f.UnlockCode() == StatusCode::kOk);
}

TEST_CASE("every single flipped byte of the vault file is refused, never opened") {
  VaultFixture f;
  for (size_t i = 0; i < f.file.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
      CAPTURE(i);
      CAPTURE(static_cast<int>(mask));
      Bytes bad = f.file;
      bad[i] ^= mask;
      WriteBytes(f.path, bad);
      const StatusCode code = f.UnlockCode();
      CHECK((code == StatusCode::kCorruption || code == StatusCode::kWrongPassphrase));
      CHECK(ReadBytes(f.path) == bad);  // a failed unlock writes nothing
    }
  }
  WriteBytes(f.path, f.file);
  CHECK(f.UnlockCode() == StatusCode::kOk);
}

TEST_CASE("a tampered vault ciphertext is kCorruption even with the checksum recomputed") {
  VaultFixture f;
  testing::ForEachFlippedByte(f.file, kCiphertextAt, f.file.size() - kHashBytes, [&](Bytes bad) {
    Reseal(bad);
    WriteBytes(f.path, bad);
    CHECK(f.UnlockCode() == StatusCode::kCorruption);
  });
}

TEST_CASE(
    "a tampered vault nonce or ciphertext length is kCorruption even with the checksum "
    "recomputed") {
  VaultFixture f;
  testing::ForEachFlippedByte(f.file, kNonceAt, kCiphertextAt, [&](Bytes bad) {
    Reseal(bad);
    WriteBytes(f.path, bad);
    CHECK(f.UnlockCode() == StatusCode::kCorruption);
  });
  SUBCASE("a byte inserted before the checksum") {
    Bytes bad = f.file;
    bad.insert(bad.end() - kHashBytes, 0x00);
    Reseal(bad);
    WriteBytes(f.path, bad);
    CHECK(f.UnlockCode() == StatusCode::kCorruption);
  }
}

TEST_CASE("a tampered vault header is refused even with the checksum recomputed") {
  VaultFixture f;
  auto tampered = [&f](size_t at, uint8_t mask) {
    Bytes bad = f.file;
    bad[at] ^= mask;
    Reseal(bad);
    WriteBytes(f.path, bad);
    return f.UnlockCode();
  };
  SUBCASE("magic and format are kCorruption") {
    for (size_t i = kMagicAt; i <= kFormatAt; ++i) {
      CAPTURE(i);
      CHECK(tampered(i, 0x01) == StatusCode::kCorruption);
    }
  }
  SUBCASE("KDF parameters out of range are kCorruption") {
    CHECK(tampered(kOpslimitAt, 0x01) == StatusCode::kCorruption);      // opslimit 1 -> 0
    CHECK(tampered(kMemlimitAt + 7, 0x80) == StatusCode::kCorruption);  // memlimit >= 2^63
  }
  SUBCASE("a cost above libsodium's sensitive level is refused before any work") {
    CHECK(tampered(kOpslimitAt + 4, 0x01) == StatusCode::kCorruption);  // opslimit ~2^32 passes
    CHECK(tampered(kMemlimitAt + 3, 0x80) == StatusCode::kCorruption);  // memlimit +2 GiB
  }
  SUBCASE("duress KDF parameters out of range are kCorruption") {
    CHECK(tampered(kDuressOpslimitAt, 0x01) == StatusCode::kCorruption);
    CHECK(tampered(kDuressMemlimitAt + 3, 0x80) == StatusCode::kCorruption);
  }
  SUBCASE("a changed duress salt or verifier reads as a wrong passphrase") {
    for (size_t i = kDuressSaltAt; i < kHeaderEnd; ++i) {
      CAPTURE(i);
      CHECK(tampered(i, 0x01) == StatusCode::kWrongPassphrase);
    }
  }
  SUBCASE("a different salt or cost cannot be told from a wrong passphrase") {
    for (size_t i = kSaltAt; i < kDuressOpslimitAt; ++i) {
      CAPTURE(i);
      CHECK(tampered(i, 0x01) == StatusCode::kWrongPassphrase);
    }
    CHECK(tampered(kOpslimitAt, 0x02) == StatusCode::kWrongPassphrase);  // opslimit 1 -> 3
  }
  SUBCASE("a damaged verifier reads as a wrong passphrase") {
    for (size_t i = kVerifierAt; i < kNonceAt; ++i) {
      CAPTURE(i);
      CHECK(tampered(i, 0x01) == StatusCode::kWrongPassphrase);
    }
  }
}

TEST_CASE("every truncation of the vault file is kCorruption") {
  VaultFixture f;
  for (size_t len = 0; len < f.file.size(); ++len) {
    CAPTURE(len);
    WriteBytes(f.path, ByteView(f.file.data(), len));
    CHECK(f.UnlockCode() == StatusCode::kCorruption);
  }
}

TEST_CASE("an oversized vault file is refused without reading it as a vault") {
  VaultFixture f;
  Bytes huge = f.file;
  huge.resize((size_t{1} << 20) + 1, 0);
  WriteBytes(f.path, huge);
  CHECK(f.UnlockCode() == StatusCode::kCorruption);
}

TEST_CASE("unlocking a missing vault is kNotFound") {
  TempDir dir(true);
  CHECK(Vault::Unlock(dir.File("nothing-here"), kPassphrase).status().code() ==
        StatusCode::kNotFound);
}

TEST_CASE("creating a vault over an existing file is kAlreadyExists and keeps the file") {
  VaultFixture f;
  CHECK(Vault::Create(f.path, "another passphrase", FastParams(), MakeSecrets()).status().code() ==
        StatusCode::kAlreadyExists);
  CHECK(ReadBytes(f.path) == f.file);
  CHECK(f.UnlockCode() == StatusCode::kOk);
}

TEST_CASE("creating a vault with an empty passphrase or bad KDF parameters is refused") {
  TempDir dir(true);
  const std::string path = dir.File("vault.bin");
  CHECK(Vault::Create(path, "", FastParams(), MakeSecrets()).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(Vault::Create(path, kPassphrase, PwhashParams{0, 0}, MakeSecrets()).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("changing the passphrase retires the old one and keeps the secrets") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  PwhashParams costlier = FastParams();
  costlier.opslimit += 1;
  REQUIRE((*v)->ChangePassphrase(kPassphrase, "nueva frase", costlier).ok());
  CHECK((*v)->params().opslimit == costlier.opslimit);

  const Bytes after = ReadBytes(f.path);
  CHECK_FALSE(std::equal(after.begin() + kSaltAt, after.begin() + kHeaderEnd,
                         f.file.begin() + kSaltAt));  // a fresh salt
  CHECK_FALSE(Contains(after, AsBytes("nueva frase")));
  CHECK(f.UnlockCode(kPassphrase) == StatusCode::kWrongPassphrase);
  auto reopened = Vault::Unlock(f.path, "nueva frase");
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  CheckSameSecrets((*reopened)->secrets(), f.secrets);
  CHECK((*reopened)->params().opslimit == costlier.opslimit);

  SUBCASE("the re-keyed vault object keeps writing under the new passphrase") {
    VaultSecrets next = (*v)->secrets().Clone();
    next.team_keys.emplace(8, SecretBytes::Random(kAeadKeyBytes));
    REQUIRE((*v)->Update(next.Clone()).ok());
    auto again = Vault::Unlock(f.path, "nueva frase");
    REQUIRE(again.ok());
    CheckSameSecrets((*again)->secrets(), next);
    CHECK(f.UnlockCode(kPassphrase) == StatusCode::kWrongPassphrase);
  }
  SUBCASE("and can change again, checking the new current passphrase") {
    CHECK((*v)->ChangePassphrase(kPassphrase, "tercera", FastParams()).code() ==
          StatusCode::kWrongPassphrase);
    REQUIRE((*v)->ChangePassphrase("nueva frase", "tercera", FastParams()).ok());
    CHECK(f.UnlockCode("tercera") == StatusCode::kOk);
  }
}

TEST_CASE(
    "changing the passphrase with a wrong current one is kWrongPassphrase and changes "
    "nothing") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  CHECK((*v)->ChangePassphrase("not it", "nueva frase", FastParams()).code() ==
        StatusCode::kWrongPassphrase);
  CHECK((*v)->ChangePassphrase("", "nueva frase", FastParams()).code() ==
        StatusCode::kWrongPassphrase);
  CHECK(ReadBytes(f.path) == f.file);
  CHECK(f.UnlockCode("nueva frase") == StatusCode::kWrongPassphrase);
  CHECK(f.UnlockCode() == StatusCode::kOk);

  SUBCASE("an empty new passphrase or bad parameters are refused too") {
    CHECK((*v)->ChangePassphrase(kPassphrase, "", FastParams()).code() ==
          StatusCode::kInvalidArgument);
    CHECK((*v)->ChangePassphrase(kPassphrase, "nueva frase", PwhashParams{0, 0}).code() ==
          StatusCode::kInvalidArgument);
    CHECK(ReadBytes(f.path) == f.file);
    CHECK(f.UnlockCode() == StatusCode::kOk);
  }
}

TEST_CASE("Update persists new secrets under the same passphrase") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  VaultSecrets next = (*v)->secrets().Clone();
  next.team_keys.emplace(2, SecretBytes::Random(kAeadKeyBytes));
  REQUIRE((*v)->Update(next.Clone()).ok());
  CheckSameSecrets((*v)->secrets(), next);

  const Bytes after = ReadBytes(f.path);
  CHECK(after != f.file);
  CHECK_FALSE(Contains(after, next.team_keys.at(2).view()));
  CHECK_FALSE(std::filesystem::exists(f.path + ".tmp"));
  auto reopened = Vault::Unlock(f.path, kPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  CheckSameSecrets((*reopened)->secrets(), next);
  CHECK((*reopened)->secrets().team_keys.size() == 3);
}

TEST_CASE("every vault write uses a fresh nonce") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  REQUIRE((*v)->Update((*v)->secrets().Clone()).ok());
  const Bytes after = ReadBytes(f.path);
  REQUIRE(after.size() == f.file.size());
  CHECK_FALSE(std::equal(after.begin() + kNonceAt, after.begin() + kCiphertextLenAt,
                         f.file.begin() + kNonceAt));
  CHECK(f.UnlockCode() == StatusCode::kOk);
}

TEST_CASE("a cloned VaultSecrets is a deep copy") {
  const VaultSecrets s = MakeSecrets();
  VaultSecrets c = s.Clone();
  CheckSameSecrets(c, s);
  CHECK(c.signing.secret_key.data() != s.signing.secret_key.data());
  c.team_keys.at(1).data()[0] ^= 0x01;
  CHECK_FALSE(c.team_keys.at(1).ConstantTimeEquals(s.team_keys.at(1)));
}

// ---- Through the Replica API ---------------------------------------------------------

TEST_CASE("Replica::Open with a wrong passphrase is kWrongPassphrase and the vault is unchanged") {
  TempDir dir;
  const ReplicaOptions options = testing::TestOptions(dir.File("r"));
  DeviceId device;
  {
    auto r = testing::MakeReplica(options, "correct horse");
    device = r->device_id();
  }
  const Bytes vault = ReadBytes(dir.File("r/vault.bin"));
  CHECK(Replica::Open(options, "wrong horse").status().code() == StatusCode::kWrongPassphrase);
  CHECK(ReadBytes(dir.File("r/vault.bin")) == vault);
  auto r = Replica::Open(options, "correct horse");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK((*r)->device_id() == device);
}

TEST_CASE("Replica::Open and Create report a missing or an existing vault") {
  TempDir dir;
  const ReplicaOptions options = testing::TestOptions(dir.File("r"));
  CHECK(Replica::Open(options, "correct horse").status().code() == StatusCode::kNotFound);
  { auto r = testing::MakeReplica(options); }
  CHECK(Replica::Create(options, "correct horse").status().code() == StatusCode::kAlreadyExists);
}

TEST_CASE(
    "Replica::ChangePassphrase: the new passphrase opens it after a restart, the old does "
    "not") {
  TempDir dir;
  const ReplicaOptions options = testing::TestOptions(dir.File("r"));
  DeviceId device;
  TeamId team;
  {
    auto r = testing::MakeReplica(options, "correct horse");
    device = r->device_id();
    auto t = CreateTeam(*r);
    REQUIRE(t.ok());
    team = *t;
    CHECK(r->ChangePassphrase("wrong horse", "battery staple").code() ==
          StatusCode::kWrongPassphrase);
    REQUIRE(r->ChangePassphrase("correct horse", "battery staple").ok());
  }
  CHECK(Replica::Open(options, "correct horse").status().code() == StatusCode::kWrongPassphrase);
  auto r = Replica::Open(options, "battery staple");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK((*r)->device_id() == device);
  CHECK((*r)->team() == team);
  CHECK((*r)->current_key_version() == 1);
  CHECK((*r)->Put("cases", std::nullopt, {{"status", "\"Active\""}}).ok());
}

}  // namespace
}  // namespace enlace::internal

namespace enlace::internal {
namespace {

// ---- Format 2: duress, format 1 migration, KDF raise ---------------------------------

// Rewrites a format 2 vault as the format 1 writer did (no duress fields),
// re-sealing its bundle under the v1 header: what a device made before
// format 2 holds.
Bytes AsFormat1(const Bytes& v2, std::string_view passphrase) {
  const ByteView header2(v2.data(), kHeaderEnd);
  PwhashParams params;
  params.opslimit = crypto_pwhash_OPSLIMIT_MIN;
  params.memlimit = crypto_pwhash_MEMLIMIT_MIN;
  const ByteView salt(v2.data() + kSaltAt, kPwhashSaltBytes);
  auto kek = DeriveKeyFromPassphrase(passphrase, salt, params, kKdfKeyBytes);
  REQUIRE(kek.ok());
  const SecretBytes verifier_key = DeriveSubkey(*kek, 1, "enlvault", kHashBytes);
  const SecretBytes encryption_key = DeriveSubkey(*kek, 2, "enlvault", kAeadKeyBytes);
  AeadNonce nonce{};
  std::copy_n(v2.begin() + kNonceAt, nonce.size(), nonce.begin());
  const ByteView ct(v2.data() + kCiphertextAt, v2.size() - kHashBytes - kCiphertextAt);
  auto bundle = AeadOpen(encryption_key, nonce, ct, header2);
  REQUIRE(bundle.ok());

  Encoder h;
  h.Raw(AsBytes("ENLV"));
  h.U8(1);
  h.U64(params.opslimit);
  h.U64(params.memlimit);
  h.Raw(salt);
  Bytes file = h.Finish();
  const AeadNonce nonce1 = RandomNonce();
  Encoder rest;
  rest.Raw(GenericHash(file, verifier_key.view()));
  rest.Raw(nonce1);
  rest.Blob(AeadSeal(encryption_key, nonce1, bundle->view(), file));
  const Bytes r = rest.Finish();
  file.insert(file.end(), r.begin(), r.end());
  file.resize(file.size() + kHashBytes);
  Reseal(file);
  return file;
}

TEST_CASE("a format 1 vault opens, and its next write makes it format 2") {
  VaultFixture f;
  const Bytes v1 = AsFormat1(f.file, kPassphrase);
  REQUIRE(v1[kFormatAt] == 1);
  WriteBytes(f.path, v1);
  CHECK(f.UnlockCode("not it") == StatusCode::kWrongPassphrase);
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  CHECK((*v)->loaded_format() == 1);
  CheckSameSecrets((*v)->secrets(), f.secrets);
  CHECK(ReadBytes(f.path) == v1);  // opening writes nothing

  REQUIRE((*v)->Update((*v)->secrets().Clone()).ok());
  const Bytes after = ReadBytes(f.path);
  CHECK(after[kFormatAt] == 2);
  auto again = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(again.ok());
  CHECK((*again)->loaded_format() == 2);
  CheckSameSecrets((*again)->secrets(), f.secrets);
}

TEST_CASE("the duress passphrase is told apart from a wrong one, and opens nothing") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  const Bytes before = ReadBytes(f.path);
  REQUIRE((*v)->SetDuress("frase de coaccion").ok());
  const Bytes after = ReadBytes(f.path);
  CHECK(after.size() == before.size());  // same layout with or without duress
  CHECK_FALSE(Contains(after, AsBytes("frase de coaccion")));

  bool duress = true;
  auto wrong = Vault::Unlock(f.path, "otra frase", &duress);
  CHECK(wrong.status().code() == StatusCode::kWrongPassphrase);
  CHECK_FALSE(duress);
  auto forced = Vault::Unlock(f.path, "frase de coaccion", &duress);
  CHECK(forced.status().code() == StatusCode::kWrongPassphrase);
  CHECK(duress);
  auto right = Vault::Unlock(f.path, kPassphrase, &duress);
  REQUIRE(right.ok());
  CHECK_FALSE(duress);
  CheckSameSecrets((*right)->secrets(), f.secrets);
}

TEST_CASE("without a duress passphrase no passphrase reports duress") {
  VaultFixture f;
  for (std::string_view p : {"", "x", "frase de coaccion", "una frase de paso larg"}) {
    bool duress = true;
    CHECK(Vault::Unlock(f.path, p, &duress).status().code() == StatusCode::kWrongPassphrase);
    CHECK_FALSE(duress);
  }
}

TEST_CASE("a duress passphrase must be non-empty and differ from the passphrase") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  CHECK((*v)->SetDuress("").code() == StatusCode::kInvalidArgument);
  CHECK((*v)->SetDuress(kPassphrase).code() == StatusCode::kInvalidArgument);
  CHECK(ReadBytes(f.path) == f.file);
  REQUIRE((*v)->SetDuress("frase de coaccion").ok());
  // ... nor can the passphrase become the duress passphrase.
  CHECK((*v)->ChangePassphrase(kPassphrase, "frase de coaccion", FastParams()).code() ==
        StatusCode::kInvalidArgument);
  REQUIRE((*v)->ChangePassphrase(kPassphrase, "nueva frase", FastParams()).ok());
  bool duress = false;
  CHECK(Vault::Unlock(f.path, "frase de coaccion", &duress).status().code() ==
        StatusCode::kWrongPassphrase);
  CHECK(duress);  // the duress passphrase survives a passphrase change
  CHECK(Vault::Unlock(f.path, "nueva frase").ok());
}

TEST_CASE("RaiseParams re-wraps with the stronger cost, never a weaker one") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  REQUIRE((*v)->SetDuress("frase de coaccion").ok());
  bool raised = true;
  // Weaker or equal: nothing happens.
  REQUIRE((*v)->RaiseParams(kPassphrase, FastParams(), &raised).ok());
  CHECK_FALSE(raised);
  const PwhashParams stronger{FastParams().opslimit + 1, FastParams().memlimit * 2};
  REQUIRE((*v)->RaiseParams(kPassphrase, stronger, &raised).ok());
  CHECK(raised);
  // A mixed request takes the larger of each.
  REQUIRE(
      (*v)->RaiseParams(kPassphrase, {FastParams().opslimit, stronger.memlimit * 2}, &raised).ok());
  CHECK(raised);
  auto again = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(again.ok());
  CHECK((*again)->params().opslimit == stronger.opslimit);
  CHECK((*again)->params().memlimit == stronger.memlimit * 2);
  CheckSameSecrets((*again)->secrets(), f.secrets);
  bool duress = false;
  CHECK_FALSE(Vault::Unlock(f.path, "frase de coaccion", &duress).ok());
  CHECK(duress);  // the duress verifier keeps its own cost
  // A cost an unlock would refuse is refused here too.
  CHECK((*again)->RaiseParams(kPassphrase, {crypto_pwhash_OPSLIMIT_MAX, 0}, &raised).code() ==
        StatusCode::kInvalidArgument);
}

// ---- The local key and the seal generation (bundle format 2) -----------------------

// `v2` with its secret bundle replaced by `bundle`, sealed under the same
// header and passphrase: a vault as an earlier writer of the bundle left it.
Bytes WithBundle(const Bytes& v2, ByteView bundle, std::string_view passphrase) {
  const ByteView header(v2.data(), kHeaderEnd);
  const ByteView salt(v2.data() + kSaltAt, kPwhashSaltBytes);
  auto kek = DeriveKeyFromPassphrase(passphrase, salt, FastParams(), kKdfKeyBytes);
  REQUIRE(kek.ok());
  const SecretBytes encryption_key = DeriveSubkey(*kek, 2, "enlvault", kAeadKeyBytes);
  Bytes file(header.begin(), header.end());
  Encoder rest;
  rest.Raw(ByteView(v2.data() + kVerifierAt, kHashBytes));  // over the header: unchanged
  const AeadNonce nonce = RandomNonce();
  rest.Raw(nonce);
  rest.Blob(AeadSeal(encryption_key, nonce, bundle, header));
  const Bytes r = rest.Finish();
  file.insert(file.end(), r.begin(), r.end());
  file.resize(file.size() + kHashBytes);
  Reseal(file);
  return file;
}

// The secret bundle as format 1 wrote it: no local key, no seal generation.
Bytes BundleV1(const VaultSecrets& s) {
  Bytes b = {1};
  const auto add = [&b](ByteView bytes) { b.insert(b.end(), bytes.begin(), bytes.end()); };
  const auto add_u32 = [&b](uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  add(s.device.bytes);
  add(s.signing.secret_key.view());
  add(s.box.secret_key.view());
  add(s.team.bytes);
  add_u32(static_cast<uint32_t>(s.team_keys.size()));
  for (const auto& [version, key] : s.team_keys) {
    add_u32(version);
    add(key.view());
  }
  return b;
}

TEST_CASE("a vault from before the local key gets one in memory, written once, then kept") {
  VaultFixture f;
  WriteBytes(f.path, WithBundle(f.file, BundleV1(f.secrets), kPassphrase));
  const Bytes old = ReadBytes(f.path);
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  CheckSameSecrets((*v)->secrets(), f.secrets);
  CHECK((*v)->secrets().local_key.size() == kLocalKeyBytes);
  CHECK((*v)->secrets().seal_generation == 0);
  CHECK(ReadBytes(f.path) == old);  // opening writes nothing

  REQUIRE((*v)->EnsureLocalKey().ok());
  const Bytes written = ReadBytes(f.path);
  CHECK(written != old);
  CHECK_FALSE(Contains(written, (*v)->secrets().local_key.view()));
  auto again = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(again.ok());
  CHECK((*again)->secrets().local_key.ConstantTimeEquals((*v)->secrets().local_key));
  CheckSameSecrets((*again)->secrets(), f.secrets);
  REQUIRE((*again)->EnsureLocalKey().ok());
  CHECK(ReadBytes(f.path) == written);  // nothing left to write
}

TEST_CASE("Update keeps the local key and never lowers the seal generation") {
  VaultFixture f;
  auto v = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(v.ok());
  const SecretBytes key = (*v)->secrets().local_key.Clone();
  REQUIRE(key.size() == kLocalKeyBytes);
  REQUIRE((*v)->SetSealGeneration(4).ok());
  VaultSecrets next = (*v)->secrets().Clone();
  next.local_key = SecretBytes();
  next.seal_generation = 2;
  REQUIRE((*v)->Update(std::move(next)).ok());
  REQUIRE((*v)->SetSealGeneration(3).ok());
  auto again = Vault::Unlock(f.path, kPassphrase);
  REQUIRE(again.ok());
  CHECK((*again)->secrets().local_key.ConstantTimeEquals(key));
  CHECK((*again)->secrets().seal_generation == 4);
  // A passphrase change keeps both.
  REQUIRE((*again)->ChangePassphrase(kPassphrase, "otra frase larga", FastParams()).ok());
  auto changed = Vault::Unlock(f.path, "otra frase larga");
  REQUIRE(changed.ok());
  CHECK((*changed)->secrets().local_key.ConstantTimeEquals(key));
  CHECK((*changed)->secrets().seal_generation == 4);
}

}  // namespace
}  // namespace enlace::internal
