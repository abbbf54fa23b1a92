// Internals of the libp2p TLS certificate (tls/tls.md), exposed for unit tests and fuzzing:
// a bounded DER reader/writer, the SignedKey codec, a certificate splitter that returns the raw
// byte ranges the verifier needs, and a certificate builder with knobs for building bad certificates.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace punchgate::tls_internal {

inline constexpr std::string_view kSignedKeyOid = "1.3.6.1.4.1.53594.1.1";
// DER content octets of that OID.
inline constexpr std::string_view kSignedKeyOidDer{"\x2b\x06\x01\x04\x01\x83\xa2\x5a\x01\x01", 10};
inline constexpr std::string_view kHandshakePrefix = "libp2p-tls-handshake:";
inline constexpr size_t kMaxCertificateLen = 64 * 1024;

// ---- DER ----

inline constexpr uint8_t kTagBoolean = 0x01;
inline constexpr uint8_t kTagInteger = 0x02;
inline constexpr uint8_t kTagBitString = 0x03;
inline constexpr uint8_t kTagOctetString = 0x04;
inline constexpr uint8_t kTagOid = 0x06;
inline constexpr uint8_t kTagSequence = 0x30;

struct DerTlv {
  uint8_t tag = 0;
  BytesView value;  // content octets
  BytesView whole;  // tag + length + content
};

// Reads one TLV from the front of `in` and advances `in` past it. Single-byte tags only; definite
// lengths only, short form or long form with 1..4 length bytes, minimally encoded; the content
// must fit in `in`.
Result<DerTlv> der_read(BytesView& in);
// Like der_read, but the tag must be `tag`; `what` names the element in errors.
Result<DerTlv> der_expect(BytesView& in, uint8_t tag, std::string_view what);
// Appends tag, minimal definite length and `value`.
void der_append(Bytes& out, uint8_t tag, BytesView value);
// Dotted text of an OID's content octets ("1.3.6.1..."); "<malformed OID>" when not decodable.
std::string oid_to_string(BytesView oid_content);

// ---- SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING } ----

struct SignedKey {
  Bytes public_key;  // protobuf PublicKey
  Bytes signature;
};
Bytes encode_signed_key(BytesView public_key_proto, BytesView signature);
// Exactly one SEQUENCE of exactly two OCTET STRINGs, nothing trailing.
Result<SignedKey> decode_signed_key(BytesView der);

// ---- Certificate splitting ----

struct CertExtension {
  BytesView oid;  // content octets
  bool critical = false;
  BytesView value;  // extnValue content octets
};

struct CertificateParts {
  BytesView tbs;                      // whole TBSCertificate TLV: the bytes the self-signature covers
  BytesView tbs_signature_algorithm;  // whole AlgorithmIdentifier TLV inside the TBS
  BytesView signature_algorithm;      // whole outer AlgorithmIdentifier TLV
  BytesView signature;                // signatureValue without the unused-bits octet
  BytesView spki;                     // whole SubjectPublicKeyInfo TLV
  std::vector<CertExtension> extensions;
};

// Walks an X.509 certificate's DER just far enough to return the ranges above. Strict DER framing,
// no trailing bytes; the views point into `der`.
Result<CertificateParts> split_certificate(BytesView der);

// ---- Certificate building ----

struct X509CrtDeleter {
  void operator()(gnutls_x509_crt_t c) const { gnutls_x509_crt_deinit(c); }
};
struct X509PrivkeyDeleter {
  void operator()(gnutls_x509_privkey_t k) const { gnutls_x509_privkey_deinit(k); }
};
using UniqueX509Crt = std::unique_ptr<std::remove_pointer_t<gnutls_x509_crt_t>, X509CrtDeleter>;
using UniqueX509Privkey = std::unique_ptr<std::remove_pointer_t<gnutls_x509_privkey_t>, X509PrivkeyDeleter>;

struct RawExtension {
  std::string oid;  // dotted text
  Bytes value;      // extnValue content
  bool critical = false;
};

struct CertBuildOptions {
  // Produces the SignedKey extension value from the DER SubjectPublicKeyInfo of the certificate key;
  // returning nullopt leaves the extension out.
  std::function<std::optional<Bytes>(BytesView spki_der)> signed_key;
  bool signed_key_critical = true;
  std::vector<RawExtension> extra_extensions;  // added after the SignedKey extension
  std::chrono::seconds not_before_offset = std::chrono::hours(-1);        // relative to now
  std::chrono::seconds not_after_offset = std::chrono::hours(24 * 365);  // relative to now
  bool self_sign_with_other_key = false;  // sign with a key other than the certified one
};

// The production recipe: SignedKey from `identity` over "libp2p-tls-handshake:" + SPKI.
CertBuildOptions default_build_options(const Identity& identity);
// The SignedKey extension value for `identity` and a certificate key SPKI.
Bytes make_signed_key_extension(const Identity& identity, BytesView spki_der);

struct BuiltCertificate {
  UniqueX509Crt crt;
  UniqueX509Privkey key;
  Bytes der;
};

// Fresh ECDSA P-256 key, self-signed X.509 v3 with SHA-256, random positive serial.
Result<BuiltCertificate> build_certificate(const CertBuildOptions& options);

}  // namespace punchgate::tls_internal
