// The public-key pin a client gives libcurl (CURLOPT_PINNEDPUBLICKEY) to
// trust the hub's certificate without a certificate authority.
#ifndef ENLACE_SERVER_NET_TLS_PIN_H_
#define ENLACE_SERVER_NET_TLS_PIN_H_

#include <string>

namespace enlace::hub {

// "sha256//" + base64(SHA-256 of the DER SubjectPublicKeyInfo) of the first
// certificate in the PEM file `cert_file` (the leaf of a chain). Returns ""
// and sets *error (if non-null) when the file cannot be read or holds no
// certificate. Thread-safe; never throws.
std::string PublicKeyPin(const std::string& cert_file, std::string* error) noexcept;

}  // namespace enlace::hub

#endif  // ENLACE_SERVER_NET_TLS_PIN_H_
