#include "net/tls_pin.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <vector>

namespace enlace::hub {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// `what` plus OpenSSL's first queued reason, and an empty OpenSSL error queue.
std::string Fail(const std::string& what, std::string* error) {
  if (error != nullptr) {
    *error = what;
    if (unsigned long code = ERR_get_error(); code != 0) {
      char reason[256];
      ERR_error_string_n(code, reason, sizeof(reason));
      *error += ": ";
      *error += reason;
    }
  }
  ERR_clear_error();
  return std::string();
}

}  // namespace

std::string PublicKeyPin(const std::string& cert_file, std::string* error) noexcept {
  try {
    std::unique_ptr<FILE, FileCloser> file(std::fopen(cert_file.c_str(), "rb"));
    if (!file) return Fail("cannot open certificate file " + cert_file, error);
    std::unique_ptr<X509, X509Free> cert(PEM_read_X509(file.get(), nullptr, nullptr, nullptr));
    if (!cert) return Fail("no PEM certificate in " + cert_file, error);
    std::unique_ptr<EVP_PKEY, PkeyFree> key(X509_get_pubkey(cert.get()));
    if (!key) return Fail("cannot read the public key of " + cert_file, error);

    const int der_size = i2d_PUBKEY(key.get(), nullptr);
    if (der_size <= 0) return Fail("cannot encode the public key of " + cert_file, error);
    std::vector<unsigned char> der(static_cast<size_t>(der_size));
    unsigned char* cursor = der.data();
    if (i2d_PUBKEY(key.get(), &cursor) != der_size) {
      return Fail("cannot encode the public key of " + cert_file, error);
    }

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    if (EVP_Digest(der.data(), der.size(), digest, &digest_size, EVP_sha256(), nullptr) != 1) {
      return Fail("SHA-256 failed", error);
    }
    // Base64 of 32 bytes: 44 characters and a terminating NUL.
    unsigned char base64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const int base64_size = EVP_EncodeBlock(base64, digest, static_cast<int>(digest_size));
    return "sha256//" +
           std::string(reinterpret_cast<const char*>(base64), static_cast<size_t>(base64_size));
  } catch (const std::exception& e) {
    return Fail(e.what(), error);
  }
}

}  // namespace enlace::hub
