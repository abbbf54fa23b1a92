#include "transport/quic_tls.hpp"

#include "transport/quic_connection.hpp"

#include <ngtcp2/ngtcp2_crypto_gnutls.h>

namespace punchgate {

namespace {

// TLS 1.3 only. Middlebox compatibility mode must be off for QUIC (RFC 9001 section 8.4).
constexpr char kPriority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

}  // namespace

int quic_verify_certificate(gnutls_session_t session) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
  if (!ref || !ref->user_data) return GNUTLS_E_CERTIFICATE_ERROR;
  auto* conn = static_cast<QuicConnection*>(ref->user_data);
  return conn->verify_peer_certificate(session) == 0 ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

void install_quic_verify_callback(const TlsCertificate& cert) {
  gnutls_certificate_set_verify_function(cert.credentials(), quic_verify_certificate);
}

Result<gnutls_session_t> make_quic_tls_session(Endpoint role, const TlsCertificate& cert,
                                               ngtcp2_crypto_conn_ref* ref) {
  gnutls_session_t s = nullptr;
  unsigned flags = role == Endpoint::Dialer ? GNUTLS_CLIENT : (GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET);
  if (int rv = gnutls_init(&s, flags); rv != 0) return make_error("gnutls_init: {}", gnutls_strerror(rv));
  auto fail = [&](const char* what, int rv) -> Error {
    gnutls_deinit(s);
    return make_error("{}: {}", what, gnutls_strerror(rv));
  };
  const char* err_pos = nullptr;
  if (int rv = gnutls_priority_set_direct(s, kPriority, &err_pos); rv != 0) return fail("gnutls priority", rv);
  int rv = role == Endpoint::Dialer ? ngtcp2_crypto_gnutls_configure_client_session(s)
                                    : ngtcp2_crypto_gnutls_configure_server_session(s);
  if (rv != 0) return fail("ngtcp2 gnutls setup", GNUTLS_E_INTERNAL_ERROR);
  gnutls_session_set_ptr(s, ref);
  if (int r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cert.credentials()); r != 0) {
    return fail("gnutls credentials", r);
  }
  if (role == Endpoint::Listener) gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  gnutls_datum_t alpn{reinterpret_cast<unsigned char*>(const_cast<char*>(kLibp2pAlpn)), sizeof(kLibp2pAlpn) - 1};
  if (int r = gnutls_alpn_set_protocols(s, &alpn, 1, GNUTLS_ALPN_MANDATORY); r != 0) return fail("gnutls alpn", r);
  return s;
}

}  // namespace punchgate
