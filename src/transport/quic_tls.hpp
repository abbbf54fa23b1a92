// gnutls session setup for libp2p over QUIC: TLS 1.3 only, ALPN "libp2p", both sides present
// certificates, peers checked by hand in a verify callback (tls/tls.md).
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/crypto/tls_certificate.hpp"
#include "punchgate/transport/connection.hpp"

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

namespace punchgate {

inline constexpr char kLibp2pAlpn[] = "libp2p";

// Installs the peer-verification callback on the shared credentials (once per certificate).
void install_quic_verify_callback(const TlsCertificate& cert);

// Returns an owned gnutls session (caller frees with gnutls_deinit) bound to `ref`.
Result<gnutls_session_t> make_quic_tls_session(Endpoint role, const TlsCertificate& cert,
                                               ngtcp2_crypto_conn_ref* ref);

}  // namespace punchgate
