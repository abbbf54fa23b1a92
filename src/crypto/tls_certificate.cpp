// The libp2p TLS handshake certificate (tls/tls.md): generation with gnutls, verification by hand.
#include "punchgate/crypto/tls_certificate.hpp"

#include "crypto/tls_certificate_internal.hpp"

#include <gnutls/abstract.h>
#include <sodium.h>

#include <array>
#include <ctime>

namespace punchgate {
namespace tls_internal {
namespace {

struct PubkeyDeleter {
  void operator()(gnutls_pubkey_t k) const { gnutls_pubkey_deinit(k); }
};
using UniquePubkey = std::unique_ptr<std::remove_pointer_t<gnutls_pubkey_t>, PubkeyDeleter>;

// A gnutls-allocated datum released with gnutls_free.
struct GnutlsDatum {
  gnutls_datum_t d{nullptr, 0};
  GnutlsDatum() = default;
  GnutlsDatum(const GnutlsDatum&) = delete;
  GnutlsDatum& operator=(const GnutlsDatum&) = delete;
  ~GnutlsDatum() { gnutls_free(d.data); }
  BytesView view() const { return view_of(d.data, d.size); }
};

gnutls_datum_t datum_of(BytesView b) {
  // gnutls takes non-const pointers for input data it does not modify.
  return gnutls_datum_t{const_cast<unsigned char*>(data_u8(b)), static_cast<unsigned int>(b.size())};
}

Error gnutls_failure(std::string_view what, int rc) {
  return make_error("{}: {} ({})", what, gnutls_strerror(rc), rc);
}

Result<UniquePubkey> pubkey_of(gnutls_x509_crt_t crt) {
  gnutls_pubkey_t raw = nullptr;
  if (int rc = gnutls_pubkey_init(&raw); rc < 0) return gnutls_failure("gnutls_pubkey_init", rc);
  UniquePubkey pub(raw);
  if (int rc = gnutls_pubkey_import_x509(pub.get(), crt, 0); rc < 0)
    return gnutls_failure("certificate public key", rc);
  return pub;
}

Result<Bytes> spki_der_of(gnutls_x509_crt_t crt) {
  auto pub = pubkey_of(crt);
  if (!pub) return pub.error();
  GnutlsDatum out;
  if (int rc = gnutls_pubkey_export2(pub->get(), GNUTLS_X509_FMT_DER, &out.d); rc < 0)
    return gnutls_failure("exporting SubjectPublicKeyInfo", rc);
  return Bytes(out.view());
}

Result<UniqueX509Privkey> fresh_p256_key() {
  gnutls_x509_privkey_t raw = nullptr;
  if (int rc = gnutls_x509_privkey_init(&raw); rc < 0) return gnutls_failure("gnutls_x509_privkey_init", rc);
  UniqueX509Privkey key(raw);
  if (int rc = gnutls_x509_privkey_generate(key.get(), GNUTLS_PK_ECDSA,
                                            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
      rc < 0)
    return gnutls_failure("generating the ECDSA P-256 certificate key", rc);
  return key;
}

std::string utc_text(time_t t) {
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return fmt::format("{} (unix)", static_cast<long long>(t));
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

// Signature algorithms accepted on the self-signature: nothing with a hash shorter than 256 bits.
bool acceptable_signature_algorithm(gnutls_sign_algorithm_t a) {
  switch (a) {
    case GNUTLS_SIGN_ECDSA_SHA256:
    case GNUTLS_SIGN_ECDSA_SHA384:
    case GNUTLS_SIGN_ECDSA_SHA512:
    case GNUTLS_SIGN_ECDSA_SECP256R1_SHA256:
    case GNUTLS_SIGN_ECDSA_SECP384R1_SHA384:
    case GNUTLS_SIGN_ECDSA_SECP521R1_SHA512:
    case GNUTLS_SIGN_RSA_SHA256:
    case GNUTLS_SIGN_RSA_SHA384:
    case GNUTLS_SIGN_RSA_SHA512:
    case GNUTLS_SIGN_RSA_PSS_SHA256:
    case GNUTLS_SIGN_RSA_PSS_SHA384:
    case GNUTLS_SIGN_RSA_PSS_SHA512:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA256:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA384:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA512:
    case GNUTLS_SIGN_EDDSA_ED25519:
    case GNUTLS_SIGN_EDDSA_ED448:
      return true;
    default:
      return false;
  }
}

}  // namespace

// ---- DER ----

Result<DerTlv> der_read(BytesView& in) {
  if (in.size() < 2) return make_error("DER: truncated element header ({} bytes left)", in.size());
  const auto tag = static_cast<uint8_t>(in[0]);
  if ((tag & 0x1f) == 0x1f) return make_error("DER: multi-byte tag 0x{:02x} not supported", tag);
  const auto first = static_cast<uint8_t>(in[1]);
  size_t header = 2;
  size_t len = 0;
  if (first < 0x80) {
    len = first;
  } else if (first == 0x80) {
    return make_error("DER: indefinite length (tag 0x{:02x})", tag);
  } else {
    const size_t n = first & 0x7f;
    if (n > 4) return make_error("DER: length of {} bytes is too long (tag 0x{:02x})", n, tag);
    if (in.size() < 2 + n) return make_error("DER: truncated length (tag 0x{:02x})", tag);
    if (static_cast<uint8_t>(in[2]) == 0) return make_error("DER: non-minimal length (tag 0x{:02x})", tag);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(in[2 + i]);
    if (v < 0x80) return make_error("DER: long form for a short length {} (tag 0x{:02x})", v, tag);
    len = static_cast<size_t>(v);
    header += n;
  }
  if (len > in.size() - header)
    return make_error("DER: element (tag 0x{:02x}) of {} bytes overruns the {} bytes left", tag, len,
                      in.size() - header);
  DerTlv tlv{tag, in.substr(header, len), in.substr(0, header + len)};
  in.remove_prefix(header + len);
  return tlv;
}

Result<DerTlv> der_expect(BytesView& in, uint8_t tag, std::string_view what) {
  if (in.empty()) return make_error("{}: missing", what);
  if (static_cast<uint8_t>(in[0]) != tag)
    return make_error("{}: tag 0x{:02x}, expected 0x{:02x}", what, static_cast<uint8_t>(in[0]), tag);
  auto r = der_read(in);
  if (!r) return make_error("{}: {}", what, r.error().message);
  return r;
}

void der_append(Bytes& out, uint8_t tag, BytesView value) {
  out.push_back(static_cast<char>(tag));
  const size_t len = value.size();
  if (len < 0x80) {
    out.push_back(static_cast<char>(len));
  } else {
    std::array<char, 8> be{};
    size_t n = 0;
    for (size_t v = len; v != 0; v >>= 8) be[n++] = static_cast<char>(v & 0xff);
    out.push_back(static_cast<char>(0x80 | n));
    while (n > 0) out.push_back(be[--n]);
  }
  out.append(value);
}

std::string oid_to_string(BytesView oid) {
  if (oid.empty()) return "<malformed OID>";
  std::string text;
  uint64_t arc = 0;
  bool first = true;
  size_t digits = 0;
  for (size_t i = 0; i < oid.size(); ++i) {
    const auto b = static_cast<uint8_t>(oid[i]);
    if (digits == 0 && b == 0x80) return "<malformed OID>";  // non-minimal arc
    if (++digits > 9) return "<malformed OID>";              // arc beyond 63 bits
    arc = (arc << 7) | (b & 0x7f);
    if (b & 0x80) continue;
    if (first) {
      const uint64_t top = arc < 40 ? 0 : arc < 80 ? 1 : 2;
      text = fmt::format("{}.{}", top, arc - top * 40);
      first = false;
    } else {
      text += fmt::format(".{}", arc);
    }
    arc = 0;
    digits = 0;
  }
  if (digits != 0) return "<malformed OID>";  // ends inside an arc
  return text;
}

// ---- SignedKey ----

Bytes encode_signed_key(BytesView public_key_proto, BytesView signature) {
  Bytes body;
  der_append(body, kTagOctetString, public_key_proto);
  der_append(body, kTagOctetString, signature);
  Bytes out;
  der_append(out, kTagSequence, body);
  return out;
}

Result<SignedKey> decode_signed_key(BytesView der) {
  BytesView in = der;
  auto seq = der_expect(in, kTagSequence, "SignedKey");
  if (!seq) return seq.error();
  if (!in.empty()) return make_error("SignedKey: {} trailing bytes after the SEQUENCE", in.size());
  BytesView body = seq->value;
  auto pk = der_expect(body, kTagOctetString, "SignedKey publicKey");
  if (!pk) return pk.error();
  auto sig = der_expect(body, kTagOctetString, "SignedKey signature");
  if (!sig) return sig.error();
  if (!body.empty()) return make_error("SignedKey: {} unexpected bytes after the signature", body.size());
  return SignedKey{Bytes(pk->value), Bytes(sig->value)};
}

// ---- Certificate splitting ----

namespace {

Status split_extensions(BytesView explicit_content, std::vector<CertExtension>& out) {
  BytesView in = explicit_content;
  auto list = der_expect(in, kTagSequence, "certificate extensions");
  if (!list) return list.error();
  if (!in.empty()) return make_error("certificate extensions: trailing bytes");
  BytesView items = list->value;
  if (items.empty()) return make_error("certificate extensions: empty list");
  while (!items.empty()) {
    auto ext = der_expect(items, kTagSequence, "certificate extension");
    if (!ext) return ext.error();
    BytesView e = ext->value;
    auto oid = der_expect(e, kTagOid, "certificate extension OID");
    if (!oid) return oid.error();
    if (oid->value.empty()) return make_error("certificate extension OID: empty");
    bool critical = false;
    if (!e.empty() && static_cast<uint8_t>(e[0]) == kTagBoolean) {
      auto b = der_read(e);
      if (!b) return make_error("certificate extension {} critical flag: {}", oid_to_string(oid->value), b.error().message);
      if (b->value.size() != 1)
        return make_error("certificate extension {} critical flag: BOOLEAN of {} bytes", oid_to_string(oid->value),
                          b->value.size());
      critical = b->value[0] != 0;
    }
    auto value = der_expect(e, kTagOctetString, "certificate extension value");
    if (!value) return make_error("extension {}: {}", oid_to_string(oid->value), value.error().message);
    if (!e.empty()) return make_error("certificate extension {}: trailing bytes", oid_to_string(oid->value));
    out.push_back(CertExtension{oid->value, critical, value->value});
  }
  return {};
}

}  // namespace

Result<CertificateParts> split_certificate(BytesView der) {
  CertificateParts parts;
  BytesView in = der;
  auto cert = der_expect(in, kTagSequence, "Certificate");
  if (!cert) return cert.error();
  if (!in.empty()) return make_error("certificate: {} trailing bytes after the DER", in.size());

  BytesView c = cert->value;
  auto tbs = der_expect(c, kTagSequence, "TBSCertificate");
  if (!tbs) return tbs.error();
  auto sig_alg = der_expect(c, kTagSequence, "certificate signatureAlgorithm");
  if (!sig_alg) return sig_alg.error();
  auto sig = der_expect(c, kTagBitString, "certificate signatureValue");
  if (!sig) return sig.error();
  if (!c.empty()) return make_error("Certificate: unexpected bytes after signatureValue");
  if (sig->value.empty() || sig->value[0] != 0)
    return make_error("certificate signatureValue: not a whole number of bytes");
  parts.tbs = tbs->whole;
  parts.signature_algorithm = sig_alg->whole;
  parts.signature = sig->value.substr(1);

  BytesView t = tbs->value;
  if (!t.empty() && static_cast<uint8_t>(t[0]) == 0xa0) {
    auto version = der_read(t);
    if (!version) return make_error("TBSCertificate version: {}", version.error().message);
  }
  auto serial = der_expect(t, kTagInteger, "TBSCertificate serialNumber");
  if (!serial) return serial.error();
  auto tbs_sig_alg = der_expect(t, kTagSequence, "TBSCertificate signature");
  if (!tbs_sig_alg) return tbs_sig_alg.error();
  parts.tbs_signature_algorithm = tbs_sig_alg->whole;
  for (std::string_view what : {"TBSCertificate issuer", "TBSCertificate validity", "TBSCertificate subject"}) {
    auto r = der_expect(t, kTagSequence, what);
    if (!r) return r.error();
  }
  auto spki = der_expect(t, kTagSequence, "TBSCertificate subjectPublicKeyInfo");
  if (!spki) return spki.error();
  parts.spki = spki->whole;

  // Optional [1] issuerUniqueID, [2] subjectUniqueID, [3] extensions, in that order.
  int last = 0;
  while (!t.empty()) {
    auto f = der_read(t);
    if (!f) return make_error("TBSCertificate: {}", f.error().message);
    const int number = f->tag & 0x1f;
    const bool context = (f->tag & 0xc0) == 0x80;
    if (!context || number < 1 || number > 3 || number <= last)
      return make_error("TBSCertificate: unexpected element with tag 0x{:02x}", f->tag);
    last = number;
    if (number == 3) {
      if (f->tag != 0xa3) return make_error("TBSCertificate extensions: tag 0x{:02x}, expected 0xa3", f->tag);
      PG_TRY(split_extensions(f->value, parts.extensions));
    }
  }
  return parts;
}

// ---- Certificate building ----

Bytes make_signed_key_extension(const Identity& identity, BytesView spki_der) {
  Bytes msg(kHandshakePrefix);
  msg.append(spki_der);
  return encode_signed_key(identity.public_key().to_protobuf(), identity.sign(msg));
}

CertBuildOptions default_build_options(const Identity& identity) {
  CertBuildOptions o;
  // Copy the identity into the closure: the options may outlive the caller's reference.
  o.signed_key = [id = identity](BytesView spki) -> std::optional<Bytes> { return make_signed_key_extension(id, spki); };
  return o;
}

Result<BuiltCertificate> build_certificate(const CertBuildOptions& options) {
  auto key = fresh_p256_key();
  if (!key) return key.error();

  gnutls_x509_crt_t raw = nullptr;
  if (int rc = gnutls_x509_crt_init(&raw); rc < 0) return gnutls_failure("gnutls_x509_crt_init", rc);
  UniqueX509Crt crt(raw);

  if (int rc = gnutls_x509_crt_set_version(crt.get(), 3); rc < 0) return gnutls_failure("setting version", rc);

  // Random positive serial, 16 bytes, first byte non-zero so the INTEGER is minimal.
  std::array<uint8_t, 16> serial{};
  randombytes_buf(serial.data(), serial.size());
  serial[0] = static_cast<uint8_t>((serial[0] & 0x7f) | 0x01);
  if (int rc = gnutls_x509_crt_set_serial(crt.get(), serial.data(), serial.size()); rc < 0)
    return gnutls_failure("setting serial", rc);

  const time_t now = std::time(nullptr);
  if (int rc = gnutls_x509_crt_set_activation_time(crt.get(), now + options.not_before_offset.count()); rc < 0)
    return gnutls_failure("setting notBefore", rc);
  if (int rc = gnutls_x509_crt_set_expiration_time(crt.get(), now + options.not_after_offset.count()); rc < 0)
    return gnutls_failure("setting notAfter", rc);
  if (int rc = gnutls_x509_crt_set_key(crt.get(), key->get()); rc < 0)
    return gnutls_failure("setting certificate key", rc);

  if (options.signed_key) {
    auto spki = spki_der_of(crt.get());
    if (!spki) return spki.error();
    if (auto ext = options.signed_key(*spki)) {
      if (int rc = gnutls_x509_crt_set_extension_by_oid(crt.get(), std::string(kSignedKeyOid).c_str(), ext->data(),
                                                        ext->size(), options.signed_key_critical ? 1 : 0);
          rc < 0)
        return gnutls_failure("adding the SignedKey extension", rc);
    }
  }
  for (const auto& e : options.extra_extensions) {
    if (int rc = gnutls_x509_crt_set_extension_by_oid(crt.get(), e.oid.c_str(), e.value.data(), e.value.size(),
                                                      e.critical ? 1 : 0);
        rc < 0)
      return gnutls_failure(fmt::format("adding extension {}", e.oid), rc);
  }

  UniqueX509Privkey other_key;
  gnutls_x509_privkey_t signer = key->get();
  if (options.self_sign_with_other_key) {
    auto k = fresh_p256_key();
    if (!k) return k.error();
    other_key = std::move(*k);
    signer = other_key.get();
  }
  if (int rc = gnutls_x509_crt_sign2(crt.get(), crt.get(), signer, GNUTLS_DIG_SHA256, 0); rc < 0)
    return gnutls_failure("self-signing the certificate", rc);

  GnutlsDatum der;
  if (int rc = gnutls_x509_crt_export2(crt.get(), GNUTLS_X509_FMT_DER, &der.d); rc < 0)
    return gnutls_failure("exporting the certificate", rc);
  return BuiltCertificate{std::move(crt), std::move(*key), Bytes(der.view())};
}

}  // namespace tls_internal

// ---- Public API ----

Result<TlsCertificate> TlsCertificate::generate(const Identity& identity) {
  auto built = tls_internal::build_certificate(tls_internal::default_build_options(identity));
  if (!built) return make_error("TLS certificate: {}", built.error().message);

  gnutls_certificate_credentials_t raw = nullptr;
  if (int rc = gnutls_certificate_allocate_credentials(&raw); rc < 0)
    return make_error("TLS certificate: gnutls_certificate_allocate_credentials: {}", gnutls_strerror(rc));
  TlsCertificate out;
  out.creds_.reset(raw);
  gnutls_x509_crt_t chain[1] = {built->crt.get()};
  if (int rc = gnutls_certificate_set_x509_key(out.creds_.get(), chain, 1, built->key.get()); rc < 0)
    return make_error("TLS certificate: gnutls_certificate_set_x509_key: {}", gnutls_strerror(rc));
  out.der_ = std::move(built->der);
  return out;
}

Result<PeerId> verify_libp2p_certificate(BytesView der) {
  using namespace tls_internal;
  if (der.empty()) return make_error("certificate: empty");
  if (der.size() > kMaxCertificateLen)
    return make_error("certificate: {} bytes, larger than the {} byte limit", der.size(), kMaxCertificateLen);

  auto parts = split_certificate(der);
  if (!parts) return make_error("certificate: {}", parts.error().message);

  gnutls_x509_crt_t raw = nullptr;
  if (int rc = gnutls_x509_crt_init(&raw); rc < 0) return make_error("certificate: gnutls_x509_crt_init: {}", gnutls_strerror(rc));
  UniqueX509Crt crt(raw);
  const gnutls_datum_t d = datum_of(der);
  if (int rc = gnutls_x509_crt_import(crt.get(), &d, GNUTLS_X509_FMT_DER); rc < 0)
    return make_error("certificate: not a valid X.509 certificate: {}", gnutls_strerror(rc));

  // Extensions: exactly one SignedKey; no critical extension we do not understand.
  const CertExtension* signed_key_ext = nullptr;
  for (const auto& ext : parts->extensions) {
    if (ext.oid == kSignedKeyOidDer) {
      if (signed_key_ext) return make_error("certificate: more than one libp2p SignedKey extension");
      signed_key_ext = &ext;
    } else if (ext.critical) {
      return make_error("certificate: unsupported critical extension {}", oid_to_string(ext.oid));
    }
  }
  if (!signed_key_ext) return make_error("certificate: no libp2p SignedKey extension ({})", kSignedKeyOid);

  // Validity period.
  const time_t not_before = gnutls_x509_crt_get_activation_time(crt.get());
  const time_t not_after = gnutls_x509_crt_get_expiration_time(crt.get());
  if (not_before == static_cast<time_t>(-1) || not_after == static_cast<time_t>(-1))
    return make_error("certificate: unreadable validity period");
  const time_t now = std::time(nullptr);
  if (now < not_before) return make_error("certificate: not valid before {} (now {})", utc_text(not_before), utc_text(now));
  if (now > not_after) return make_error("certificate: expired at {} (now {})", utc_text(not_after), utc_text(now));

  // Self-signature, checked by hand: the chain verifier would reject the critical SignedKey extension.
  if (parts->tbs_signature_algorithm != parts->signature_algorithm)
    return make_error("certificate: inner and outer signature algorithms differ");
  const int alg = gnutls_x509_crt_get_signature_algorithm(crt.get());
  if (alg < 0 || !acceptable_signature_algorithm(static_cast<gnutls_sign_algorithm_t>(alg))) {
    const char* name = alg > 0 ? gnutls_sign_get_name(static_cast<gnutls_sign_algorithm_t>(alg)) : nullptr;
    return make_error("certificate: unsupported self-signature algorithm {}", name ? name : "(unknown)");
  }
  auto pub = pubkey_of(crt.get());
  if (!pub) return make_error("certificate: {}", pub.error().message);
  const gnutls_datum_t tbs = datum_of(parts->tbs);
  const gnutls_datum_t sig = datum_of(parts->signature);
  if (int rc = gnutls_pubkey_verify_data2(pub->get(), static_cast<gnutls_sign_algorithm_t>(alg), 0, &tbs, &sig); rc < 0)
    return make_error("certificate: self-signature does not verify: {}", gnutls_strerror(rc));

  // SignedKey: the host key and its signature over the certificate key.
  auto signed_key = decode_signed_key(signed_key_ext->value);
  if (!signed_key) return make_error("certificate: {}", signed_key.error().message);
  auto host_key = PublicKey::from_protobuf(signed_key->public_key);
  if (!host_key) return make_error("certificate: SignedKey host key: {}", host_key.error().message);
  if (host_key->type != KeyType::Ed25519) {
    static constexpr const char* kNames[] = {"RSA", "Ed25519", "Secp256k1", "ECDSA"};
    const int t = static_cast<int>(host_key->type);
    return make_error("certificate: host key type {} ({}) is not supported (only Ed25519)", t, kNames[t]);
  }
  Bytes msg(kHandshakePrefix);
  msg.append(parts->spki);
  if (!host_key->verify(msg, signed_key->signature))
    return make_error("certificate: SignedKey signature does not verify against the host key");
  return host_key->peer_id();
}

}  // namespace punchgate
