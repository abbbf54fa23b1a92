// The libp2p TLS handshake certificate (tls/tls.md): a self-signed X.509 certificate for a fresh
// key, carrying the SignedKey extension (OID 1.3.6.1.4.1.53594.1.1) that binds it to the host key.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <memory>

namespace punchgate {

// Owns a gnutls certificate credentials object holding the certificate + its fresh ECDSA P-256 key.
class TlsCertificate {
 public:
  static Result<TlsCertificate> generate(const Identity& identity);

  gnutls_certificate_credentials_t credentials() const { return creds_.get(); }
  const Bytes& der() const { return der_; }

 private:
  struct CredsDeleter {
    void operator()(gnutls_certificate_credentials_t c) const { gnutls_certificate_free_credentials(c); }
  };
  std::unique_ptr<std::remove_pointer_t<gnutls_certificate_credentials_t>, CredsDeleter> creds_;
  Bytes der_;
};

// Checks a peer's DER certificate per tls/tls.md: validity period, self-signature, exactly one
// SignedKey extension, host-key signature over "libp2p-tls-handshake:" + SubjectPublicKeyInfo.
// Returns the peer id of the host key it carries.
Result<PeerId> verify_libp2p_certificate(BytesView der);

}  // namespace punchgate
