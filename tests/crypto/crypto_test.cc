// The libsodium wrappers of core/crypto/crypto.h: secret memory, AEAD, signatures,
// sealed boxes, Argon2id, hashing and hex. Golden vectors pin the primitives
// so that swapping one is a visible decision.
#include "crypto/crypto.h"

#include <doctest/doctest.h>
#include <sodium.h>

#include <string>
#include <type_traits>
#include <utility>

#include "test_util.h"

namespace enlace::internal {
namespace {

Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

SecretBytes SecretOf(std::string_view s) {
  return SecretBytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

PwhashParams FastParams() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

Bytes Salt(uint8_t fill) { return Bytes(kPwhashSaltBytes, fill); }

// ---- SecretBytes -----------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<SecretBytes>, "secrets must not be copied");
static_assert(!std::is_copy_assignable_v<SecretBytes>, "secrets must not be copied");
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);

TEST_CASE("a new SecretBytes of a given size is zero-filled, and a default one is empty") {
  SecretBytes zeros(40);
  REQUIRE(zeros.size() == 40);
  REQUIRE(zeros.data() != nullptr);
  CHECK(sodium_is_zero(zeros.data(), zeros.size()) == 1);
  CHECK_FALSE(zeros.empty());

  SecretBytes none;
  CHECK(none.empty());
  CHECK(none.size() == 0);
  CHECK(none.data() == nullptr);
  CHECK(SecretBytes(0).empty());
}

TEST_CASE("SecretBytes built from bytes holds a copy of them") {
  const Bytes src = ToBytes("the quick brown fox");
  SecretBytes s(src.data(), src.size());
  REQUIRE(s.size() == src.size());
  CHECK(s.data() != src.data());
  CHECK(Bytes(s.view().begin(), s.view().end()) == src);
}

TEST_CASE("moving SecretBytes transfers the buffer and leaves the source empty") {
  SecretBytes a = SecretOf("move me");
  const uint8_t* const buffer = a.data();

  SecretBytes b(std::move(a));
  CHECK(b.data() == buffer);
  CHECK(b.size() == 7);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
  CHECK(a.data() == nullptr);

  SecretBytes c = SecretOf("something else, longer");
  c = std::move(b);
  CHECK(c.data() == buffer);
  CHECK(c.size() == 7);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(ConstantTimeEquals(c.view(), AsBytes("move me")));

  SUBCASE("self move-assignment keeps the contents") {
    SecretBytes& alias = c;
    c = std::move(alias);
    CHECK(c.data() == buffer);
    CHECK(ConstantTimeEquals(c.view(), AsBytes("move me")));
  }
}

TEST_CASE("Clone makes an independent copy in its own buffer") {
  SecretBytes original = SecretOf("0123456789abcdef");
  SecretBytes copy = original.Clone();
  CHECK(copy.data() != original.data());
  CHECK(copy.ConstantTimeEquals(original));
  copy.data()[0] ^= 0x01;
  CHECK_FALSE(copy.ConstantTimeEquals(original));
  CHECK(original.data()[0] == '0');
  CHECK(SecretBytes().Clone().empty());
}

TEST_CASE("constant-time equality compares contents and sizes") {
  const SecretBytes a = SecretOf("abcdefgh");
  CHECK(a.ConstantTimeEquals(SecretOf("abcdefgh")));
  CHECK_FALSE(a.ConstantTimeEquals(SecretOf("abcdefgi")));  // last byte differs
  CHECK_FALSE(a.ConstantTimeEquals(SecretOf("bbcdefgh")));  // first byte differs
  CHECK_FALSE(a.ConstantTimeEquals(SecretOf("abcdefg")));   // shorter prefix
  CHECK_FALSE(a.ConstantTimeEquals(SecretOf("abcdefghi")));
  CHECK_FALSE(a.ConstantTimeEquals(SecretBytes()));
  CHECK(SecretBytes().ConstantTimeEquals(SecretBytes()));

  CHECK(ConstantTimeEquals(AsBytes("xyz"), AsBytes("xyz")));
  CHECK_FALSE(ConstantTimeEquals(AsBytes("xyz"), AsBytes("xyw")));
  CHECK_FALSE(ConstantTimeEquals(AsBytes("xyz"), AsBytes("xy")));
  CHECK(ConstantTimeEquals(ByteView(), ByteView()));
}

TEST_CASE("random secrets have the requested size and differ from each other") {
  const SecretBytes a = SecretBytes::Random(32);
  const SecretBytes b = SecretBytes::Random(32);
  REQUIRE(a.size() == 32);
  REQUIRE(b.size() == 32);
  CHECK_FALSE(a.ConstantTimeEquals(b));
  CHECK(sodium_is_zero(a.data(), a.size()) == 0);
  CHECK(SecretBytes::Random(0).empty());

  CHECK(RandomBytes(24).size() == 24);
  CHECK(RandomBytes(24) != RandomBytes(24));
  CHECK(RandomNonce() != RandomNonce());
}

// ---- AEAD ------------------------------------------------------------------------

struct AeadFixture {
  SecretBytes key = SecretBytes::Random(kAeadKeyBytes);
  AeadNonce nonce = RandomNonce();
  Bytes plaintext = ToBytes(
      "Mar\xc3\xad"
      "a, 17, Oaxaca");
  Bytes aad = ToBytes("team|cases|record|dot");
  Bytes ciphertext = AeadSeal(key, nonce, plaintext, aad);
};

TEST_CASE("AEAD seal then open returns the plaintext") {
  AeadFixture f;
  CHECK(f.ciphertext.size() == f.plaintext.size() + kAeadTagBytes);
  CHECK(f.ciphertext.size() > f.plaintext.size());
  auto opened = AeadOpen(f.key, f.nonce, f.ciphertext, f.aad);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK(ConstantTimeEquals(opened->view(), f.plaintext));

  Bytes out;
  REQUIRE(AeadOpenData(f.key, f.nonce, f.ciphertext, f.aad, out).ok());
  CHECK(out == f.plaintext);
}

TEST_CASE("AEAD ciphertext does not contain the plaintext and depends on the nonce") {
  AeadFixture f;
  const std::string ct(f.ciphertext.begin(), f.ciphertext.end());
  CHECK(ct.find("Oaxaca") == std::string::npos);
  AeadNonce other = f.nonce;
  other[0] ^= 0x01;
  CHECK(AeadSeal(f.key, other, f.plaintext, f.aad) != f.ciphertext);
}

TEST_CASE("AEAD of an empty plaintext and empty associated data round trips") {
  const SecretBytes key = SecretBytes::Random(kAeadKeyBytes);
  const AeadNonce nonce = RandomNonce();
  const Bytes ct = AeadSeal(key, nonce, {}, {});
  CHECK(ct.size() == kAeadTagBytes);
  auto opened = AeadOpen(key, nonce, ct, {});
  REQUIRE(opened.ok());
  CHECK(opened->empty());
  Bytes out = ToBytes("junk");
  REQUIRE(AeadOpenData(key, nonce, ct, {}, out).ok());
  CHECK(out.empty());
  // Even an empty message is authenticated.
  CHECK(AeadOpen(SecretBytes::Random(kAeadKeyBytes), nonce, ct, {}).status().code() ==
        StatusCode::kDecryptFailed);
}

TEST_CASE("AEAD open fails with kDecryptFailed under the wrong key") {
  AeadFixture f;
  const SecretBytes wrong = SecretBytes::Random(kAeadKeyBytes);
  CHECK(AeadOpen(wrong, f.nonce, f.ciphertext, f.aad).status().code() ==
        StatusCode::kDecryptFailed);
  SecretBytes off_by_one_bit = f.key.Clone();
  off_by_one_bit.data()[kAeadKeyBytes - 1] ^= 0x80;
  CHECK(AeadOpen(off_by_one_bit, f.nonce, f.ciphertext, f.aad).status().code() ==
        StatusCode::kDecryptFailed);
  Bytes out;
  CHECK(AeadOpenData(wrong, f.nonce, f.ciphertext, f.aad, out).code() ==
        StatusCode::kDecryptFailed);
  CHECK(out.empty());  // nothing partial
}

TEST_CASE("AEAD open fails with kDecryptFailed for every single flipped ciphertext byte") {
  AeadFixture f;
  for (size_t i = 0; i < f.ciphertext.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      CAPTURE(i);
      CAPTURE(static_cast<int>(mask));
      Bytes bad = f.ciphertext;
      bad[i] ^= mask;
      CHECK(AeadOpen(f.key, f.nonce, bad, f.aad).status().code() == StatusCode::kDecryptFailed);
      Bytes out;
      CHECK(AeadOpenData(f.key, f.nonce, bad, f.aad, out).code() == StatusCode::kDecryptFailed);
      CHECK(out.empty());
    }
  }
}

TEST_CASE("AEAD open fails with kDecryptFailed for every truncation of the ciphertext") {
  AeadFixture f;
  for (size_t len = 0; len < f.ciphertext.size(); ++len) {
    CAPTURE(len);
    const ByteView prefix(f.ciphertext.data(), len);
    CHECK(AeadOpen(f.key, f.nonce, prefix, f.aad).status().code() == StatusCode::kDecryptFailed);
    Bytes out;
    CHECK(AeadOpenData(f.key, f.nonce, prefix, f.aad, out).code() == StatusCode::kDecryptFailed);
    // Dropping leading bytes is no better.
    const ByteView suffix(f.ciphertext.data() + f.ciphertext.size() - len, len);
    CHECK(AeadOpen(f.key, f.nonce, suffix, f.aad).status().code() == StatusCode::kDecryptFailed);
  }
  Bytes longer = f.ciphertext;
  longer.push_back(0);
  CHECK(AeadOpen(f.key, f.nonce, longer, f.aad).status().code() == StatusCode::kDecryptFailed);
}

TEST_CASE("AEAD open fails with kDecryptFailed when the associated data changed") {
  AeadFixture f;
  testing::ForEachFlippedByte(f.aad, [&](const Bytes& bad) {
    CHECK(AeadOpen(f.key, f.nonce, f.ciphertext, bad).status().code() ==
          StatusCode::kDecryptFailed);
  });
  Bytes shorter(f.aad.begin(), f.aad.end() - 1);
  CHECK(AeadOpen(f.key, f.nonce, f.ciphertext, shorter).status().code() ==
        StatusCode::kDecryptFailed);
  Bytes longer = f.aad;
  longer.push_back('x');
  CHECK(AeadOpen(f.key, f.nonce, f.ciphertext, longer).status().code() ==
        StatusCode::kDecryptFailed);
  CHECK(AeadOpen(f.key, f.nonce, f.ciphertext, {}).status().code() == StatusCode::kDecryptFailed);
}

TEST_CASE("AEAD open fails with kDecryptFailed when the nonce changed") {
  AeadFixture f;
  testing::ForEachFlippedByte(f.nonce, [&](const AeadNonce& bad) {
    CHECK(AeadOpen(f.key, bad, f.ciphertext, f.aad).status().code() == StatusCode::kDecryptFailed);
  });
}

TEST_CASE("AEAD open refuses a key of the wrong size") {
  AeadFixture f;
  CHECK(AeadOpen(SecretBytes::Random(16), f.nonce, f.ciphertext, f.aad).status().code() ==
        StatusCode::kInvalidArgument);
  Bytes out;
  CHECK(AeadOpenData(SecretBytes(), f.nonce, f.ciphertext, f.aad, out).code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Wipe zeroes the bytes") {
  Bytes b = ToBytes("sensitive");
  Wipe(b);
  CHECK(b == Bytes(9, 0));
  Wipe(std::span<uint8_t>());  // an empty span is fine
}

// ---- Ed25519 ----------------------------------------------------------------------

TEST_CASE("a signature verifies for its message and key only") {
  const SigningKeyPair kp = SigningKeyPair::Generate();
  REQUIRE(kp.secret_key.size() == kSignSecretKeyBytes);
  const Bytes msg = ToBytes("write 1 of device a");
  const Signature sig = Sign(kp.secret_key, msg);
  CHECK(VerifySignature(kp.public_key, msg, sig));

  SUBCASE("a tampered message does not verify") {
    testing::ForEachFlippedByte(
        msg, [&](const Bytes& bad) { CHECK_FALSE(VerifySignature(kp.public_key, bad, sig)); });
    CHECK_FALSE(VerifySignature(kp.public_key, ByteView(msg.data(), msg.size() - 1), sig));
    CHECK_FALSE(VerifySignature(kp.public_key, {}, sig));
  }
  SUBCASE("a tampered signature does not verify") {
    testing::ForEachFlippedByte(
        sig, [&](const Signature& bad) { CHECK_FALSE(VerifySignature(kp.public_key, msg, bad)); });
    CHECK_FALSE(VerifySignature(kp.public_key, msg, Signature{}));
  }
  SUBCASE("another key does not verify") {
    const SigningKeyPair other = SigningKeyPair::Generate();
    CHECK(other.public_key != kp.public_key);
    CHECK_FALSE(VerifySignature(other.public_key, msg, sig));
    SignPublicKey flipped = kp.public_key;
    flipped[0] ^= 0x01;
    CHECK_FALSE(VerifySignature(flipped, msg, sig));
    CHECK_FALSE(VerifySignature(SignPublicKey{}, msg, sig));
  }
}

TEST_CASE("Ed25519 signatures are deterministic") {
  const SigningKeyPair kp = SigningKeyPair::Generate();
  const Bytes msg = ToBytes("same message");
  CHECK(Sign(kp.secret_key, msg) == Sign(kp.secret_key, msg));
  CHECK(Sign(kp.secret_key, msg) != Sign(kp.secret_key, ToBytes("other message")));
}

TEST_CASE("a signing key pair rebuilt from its secret has the same public key") {
  const SigningKeyPair kp = SigningKeyPair::Generate();
  auto rebuilt = SigningKeyPair::FromSecret(kp.secret_key.Clone());
  REQUIRE(rebuilt.ok());
  CHECK(rebuilt->public_key == kp.public_key);
  CHECK(rebuilt->secret_key.ConstantTimeEquals(kp.secret_key));
  const Bytes msg = ToBytes("m");
  CHECK(VerifySignature(kp.public_key, msg, Sign(rebuilt->secret_key, msg)));
  CHECK(SigningKeyPair::FromSecret(SecretBytes::Random(32)).status().code() ==
        StatusCode::kCorruption);
  CHECK(SigningKeyPair::Generate().public_key != kp.public_key);
}

// ---- Sealed boxes -----------------------------------------------------------------

TEST_CASE("a sealed box opens with the recipient's key pair") {
  const BoxKeyPair recipient = BoxKeyPair::Generate();
  const Bytes msg = ToBytes("team key bundle");
  const Bytes sealed = SealTo(recipient.public_key, msg);
  CHECK(sealed.size() == msg.size() + kSealOverheadBytes);
  auto opened = OpenSealed(recipient, sealed);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK(ConstantTimeEquals(opened->view(), msg));
  // Sealing is randomised (a fresh ephemeral key every time).
  CHECK(SealTo(recipient.public_key, msg) != sealed);

  const Bytes empty_sealed = SealTo(recipient.public_key, {});
  auto empty = OpenSealed(recipient, empty_sealed);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("a sealed box does not open with another key pair or when altered") {
  const BoxKeyPair recipient = BoxKeyPair::Generate();
  const BoxKeyPair other = BoxKeyPair::Generate();
  const Bytes sealed = SealTo(recipient.public_key, ToBytes("team key bundle"));
  CHECK(OpenSealed(other, sealed).status().code() == StatusCode::kDecryptFailed);

  testing::ForEachFlippedByte(sealed, [&](const Bytes& bad) {
    CHECK(OpenSealed(recipient, bad).status().code() == StatusCode::kDecryptFailed);
  });
  for (size_t len = 0; len < sealed.size(); ++len) {
    CAPTURE(len);
    CHECK(OpenSealed(recipient, ByteView(sealed.data(), len)).status().code() ==
          StatusCode::kDecryptFailed);
  }
  BoxKeyPair keyless;
  keyless.public_key = recipient.public_key;
  CHECK(OpenSealed(keyless, sealed).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a box key pair rebuilt from its secret has the same public key and opens its boxes") {
  const BoxKeyPair kp = BoxKeyPair::Generate();
  auto rebuilt = BoxKeyPair::FromSecret(kp.secret_key.Clone());
  REQUIRE(rebuilt.ok());
  CHECK(rebuilt->public_key == kp.public_key);
  const Bytes sealed = SealTo(kp.public_key, ToBytes("hello"));
  CHECK(OpenSealed(*rebuilt, sealed).ok());
  CHECK(BoxKeyPair::FromSecret(SecretBytes::Random(31)).status().code() == StatusCode::kCorruption);
}

// ---- Argon2id ---------------------------------------------------------------------

TEST_CASE("Argon2id derives the same key from the same passphrase, salt and parameters") {
  auto a = DeriveKeyFromPassphrase("correct horse", Salt(7), FastParams(), 32);
  auto b = DeriveKeyFromPassphrase("correct horse", Salt(7), FastParams(), 32);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->size() == 32);
  CHECK(a->ConstantTimeEquals(*b));
  CHECK(sodium_is_zero(a->data(), a->size()) == 0);
}

TEST_CASE("Argon2id keys differ for a different salt, passphrase or cost") {
  auto base = DeriveKeyFromPassphrase("correct horse", Salt(7), FastParams(), 32);
  REQUIRE(base.ok());
  Bytes salt = Salt(7);
  salt[kPwhashSaltBytes - 1] ^= 0x01;
  auto other_salt = DeriveKeyFromPassphrase("correct horse", salt, FastParams(), 32);
  auto other_pass = DeriveKeyFromPassphrase("correct horsf", Salt(7), FastParams(), 32);
  PwhashParams costlier = FastParams();
  costlier.opslimit += 1;
  auto other_cost = DeriveKeyFromPassphrase("correct horse", Salt(7), costlier, 32);
  REQUIRE(other_salt.ok());
  REQUIRE(other_pass.ok());
  REQUIRE(other_cost.ok());
  CHECK_FALSE(base->ConstantTimeEquals(*other_salt));
  CHECK_FALSE(base->ConstantTimeEquals(*other_pass));
  CHECK_FALSE(base->ConstantTimeEquals(*other_cost));
}

TEST_CASE("Argon2id refuses out-of-range parameters and a bad salt with kInvalidArgument") {
  const uint64_t ops_min = crypto_pwhash_OPSLIMIT_MIN;
  const uint64_t mem_min = crypto_pwhash_MEMLIMIT_MIN;
  CHECK(CheckPwhashParams(FastParams()).ok());
  CHECK(CheckPwhashParams({crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE})
            .ok());
  CHECK(CheckPwhashParams({ops_min, uint64_t{1} << 32}).ok());  // the cap is inclusive

  for (const PwhashParams& bad :
       {PwhashParams{0, 0}, PwhashParams{ops_min - 1, mem_min}, PwhashParams{ops_min, mem_min - 1},
        PwhashParams{uint64_t{crypto_pwhash_OPSLIMIT_MAX} + 1, mem_min},
        PwhashParams{ops_min, (uint64_t{1} << 32) + 1}, PwhashParams{ops_min, UINT64_MAX}}) {
    CAPTURE(bad.opslimit);
    CAPTURE(bad.memlimit);
    CHECK(CheckPwhashParams(bad).code() == StatusCode::kInvalidArgument);
    CHECK(DeriveKeyFromPassphrase("pw", Salt(1), bad, 32).status().code() ==
          StatusCode::kInvalidArgument);
  }
  CHECK(DeriveKeyFromPassphrase("pw", Bytes(kPwhashSaltBytes - 1, 1), FastParams(), 32)
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(DeriveKeyFromPassphrase("pw", Bytes(kPwhashSaltBytes + 1, 1), FastParams(), 32)
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(DeriveKeyFromPassphrase("pw", {}, FastParams(), 32).status().code() ==
        StatusCode::kInvalidArgument);
}

// ---- KDF and hashing --------------------------------------------------------------

TEST_CASE("subkeys are deterministic and differ by id and context") {
  const SecretBytes master = SecretBytes::Random(kKdfKeyBytes);
  const SecretBytes k1 = DeriveSubkey(master, 1, "enlvault", 32);
  CHECK(k1.size() == 32);
  CHECK(k1.ConstantTimeEquals(DeriveSubkey(master, 1, "enlvault", 32)));
  CHECK_FALSE(k1.ConstantTimeEquals(DeriveSubkey(master, 2, "enlvault", 32)));
  CHECK_FALSE(k1.ConstantTimeEquals(DeriveSubkey(master, 1, "enlvaulu", 32)));
  CHECK_FALSE(
      k1.ConstantTimeEquals(DeriveSubkey(SecretBytes::Random(kKdfKeyBytes), 1, "enlvault", 32)));
  CHECK_FALSE(k1.ConstantTimeEquals(master));
}

TEST_CASE("GenericHash is BLAKE2b-256 (golden vectors)") {
  CHECK(ToHex(GenericHash(AsBytes("abc"))) ==
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  CHECK(ToHex(GenericHash(AsBytes(""))) ==
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST_CASE("a keyed GenericHash depends on the key") {
  const Bytes key1(32, 0x01);
  const Bytes key2(32, 0x02);
  const auto unkeyed = GenericHash(AsBytes("abc"));
  const auto keyed1 = GenericHash(AsBytes("abc"), key1);
  CHECK(keyed1 != unkeyed);
  CHECK(keyed1 == GenericHash(AsBytes("abc"), key1));
  CHECK(keyed1 != GenericHash(AsBytes("abc"), key2));
  CHECK(keyed1 != GenericHash(AsBytes("abd"), key1));
}

// ---- Hex --------------------------------------------------------------------------

TEST_CASE("hex encodes lower-case and decodes back") {
  const Bytes bytes = {0x00, 0x01, 0xab, 0x7f, 0xff};
  CHECK(ToHex(bytes) == "0001ab7fff");
  CHECK(ToHex(ByteView()) == "");
  auto back = FromHex("0001ab7fff");
  REQUIRE(back.ok());
  CHECK(*back == bytes);
  auto upper = FromHex("0001AB7FFF");
  REQUIRE(upper.ok());
  CHECK(*upper == bytes);
  auto empty = FromHex("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  const Bytes random = RandomBytes(100);
  auto round = FromHex(ToHex(random));
  REQUIRE(round.ok());
  CHECK(*round == random);
}

TEST_CASE("bad hex is refused with kInvalidArgument") {
  const std::string_view bads[] = {"0",    "abc",   "zz",    "0g",
                                   "g0",   "00 11", " 0011", "0011 ",
                                   "0x00", "-1",    "00:11", std::string_view("\0\0", 2)};
  for (std::string_view bad : bads) {
    CAPTURE(std::string(bad));
    CHECK(FromHex(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace enlace::internal
