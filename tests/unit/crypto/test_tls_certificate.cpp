#include "punchgate/crypto/tls_certificate.hpp"

#include "crypto/tls_certificate_internal.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <gnutls/abstract.h>

#include <ctime>
#include <deque>
#include <string>
#include <vector>

namespace punchgate {
namespace {

using namespace tls_internal;

Bytes unhex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// tls/tls.md test vectors.
constexpr std::string_view kSpecEd25519Cert =
    "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a3008"
    "06035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c7"
    "3c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a"
    "3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b904"
    "40d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cf"
    "d4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55"
    "e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77";
constexpr std::string_view kSpecEd25519PeerId = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv";
constexpr std::string_view kSpecEcdsaCert =
    "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a3008"
    "06035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c7"
    "3c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c230"
    "81bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf"
    "30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d2"
    "05e8a1ad29f2044730450220064ea8124774caf8f50e57f436aa62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9"
    "222cb6cc51f954d04a4e2e5450f8805fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4484705f610ab"
    "51ed376f19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5d1f3435bcf375cb0e5088a";
constexpr std::string_view kSpecSecp256k1Cert =
    "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a3008"
    "06035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c7"
    "3c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea3818430"
    "8181307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ececf7f71e4955892776c0970542efd689d"
    "2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a385eedc34ecf464c7a8ab022026b3109b8a3f40ef833169777eb2aa"
    "337cfb6282f188de0666d1bcec2a4690dd300a06082a8648ce3d0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e"
    "6b8b27f93dc00ed58545d9fe022100b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0";
constexpr std::string_view kSpecInvalidCert =
    "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a3008"
    "06035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c7"
    "3c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c230"
    "81bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf"
    "30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d2"
    "05e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adb"
    "a24ee0362e490641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabb"
    "efb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0df";

Bytes build_der(const CertBuildOptions& options) {
  auto built = build_certificate(options);
  EXPECT_TRUE(built.ok()) << built.error().message;
  return built.ok() ? built->der : Bytes();
}

void expect_rejected(BytesView der, std::string_view expect_substring) {
  auto r = verify_libp2p_certificate(der);
  ASSERT_FALSE(r.ok()) << "accepted, expected an error containing '" << expect_substring << "'";
  EXPECT_NE(r.error().message.find(expect_substring), std::string::npos) << r.error().message;
}

Bytes handshake_message(BytesView spki) {
  Bytes m(kHandshakePrefix);
  m.append(spki);
  return m;
}

// ---- DER and SignedKey codec ----

TEST(Der, ReadsShortAndLongForms) {
  Bytes long_value(300, 'v');
  Bytes enc;
  der_append(enc, kTagOctetString, long_value);
  EXPECT_EQ(enc.substr(0, 4), unhex("0482012c"));
  der_append(enc, kTagInteger, "\x05");
  BytesView in = enc;
  auto a = der_read(in);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->tag, kTagOctetString);
  EXPECT_EQ(a->value, long_value);
  EXPECT_EQ(a->whole.size(), 304u);
  auto b = der_read(in);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->value, "\x05");
  EXPECT_TRUE(in.empty());

  Bytes v128(128, 'x');
  Bytes e128;
  der_append(e128, kTagOctetString, v128);
  EXPECT_EQ(e128.substr(0, 3), unhex("048180"));
}

TEST(Der, RejectsMalformedFraming) {
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"empty", ""},
      {"one byte", unhex("04")},
      {"indefinite", unhex("3080000000")},
      {"five length bytes", unhex("04850000000001") + "x"},
      {"non-minimal long form", unhex("04810141")},
      {"leading zero length byte", unhex("0482000141")},
      {"overrun", unhex("040541")},
      {"long form overrun", unhex("0482ffff41")},
      {"truncated length bytes", unhex("0482ff")},
      {"multi-byte tag", unhex("1f0100")},
  };
  for (const auto& [name, bytes] : cases) {
    BytesView in = bytes;
    EXPECT_FALSE(der_read(in).ok()) << name;
  }
}

TEST(Der, OidText) {
  EXPECT_EQ(oid_to_string(kSignedKeyOidDer), kSignedKeyOid);
  EXPECT_EQ(oid_to_string(unhex("551d13")), "2.5.29.19");
  EXPECT_EQ(oid_to_string(unhex("2a8648ce3d0201")), "1.2.840.10045.2.1");
  EXPECT_EQ(oid_to_string(unhex("2b86")), "<malformed OID>");
  EXPECT_EQ(oid_to_string(unhex("2b8001")), "<malformed OID>");
  EXPECT_EQ(oid_to_string(""), "<malformed OID>");
}

TEST(SignedKey, RoundTrip) {
  Identity id = Identity::generate();
  Bytes pk = id.public_key().to_protobuf();
  Bytes sig = id.sign("x");
  Bytes enc = encode_signed_key(pk, sig);
  EXPECT_EQ(static_cast<uint8_t>(enc[0]), 0x30);
  auto dec = decode_signed_key(enc);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(dec->public_key, pk);
  EXPECT_EQ(dec->signature, sig);

  Bytes big(1000, 'k');
  auto dec_big = decode_signed_key(encode_signed_key(big, big));
  ASSERT_TRUE(dec_big.ok()) << dec_big.error().message;
  EXPECT_EQ(dec_big->public_key, big);
}

TEST(SignedKey, RejectsWrongShapes) {
  Bytes ok = encode_signed_key("pk", "sig");
  EXPECT_FALSE(decode_signed_key(ok + Bytes(1, '\0')).ok());  // trailing
  EXPECT_FALSE(decode_signed_key(ok.substr(0, ok.size() - 1)).ok());  // truncated
  Bytes one;
  der_append(one, kTagOctetString, "pk");
  Bytes seq1;
  der_append(seq1, kTagSequence, one);
  EXPECT_FALSE(decode_signed_key(seq1).ok());  // one element
  Bytes three = one + one + one;
  Bytes seq3;
  der_append(seq3, kTagSequence, three);
  EXPECT_FALSE(decode_signed_key(seq3).ok());  // three elements
  Bytes bitstrings;
  der_append(bitstrings, kTagBitString, "\x00pk");
  der_append(bitstrings, kTagBitString, "\x00sig");
  Bytes seqb;
  der_append(seqb, kTagSequence, bitstrings);
  EXPECT_FALSE(decode_signed_key(seqb).ok());  // BIT STRINGs (the old draft) are not OCTET STRINGs
  EXPECT_FALSE(decode_signed_key(one).ok());   // not a SEQUENCE
  EXPECT_FALSE(decode_signed_key("").ok());
}

// ---- generation ----

TEST(TlsCertificate, GeneratedCertificateVerifiesToOurPeerId) {
  Identity id = Identity::generate();
  auto cert = TlsCertificate::generate(id);
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_NE(cert->credentials(), nullptr);
  ASSERT_FALSE(cert->der().empty());
  auto peer = verify_libp2p_certificate(cert->der());
  ASSERT_TRUE(peer.ok()) << peer.error().message;
  EXPECT_EQ(*peer, id.peer_id());

  // Fresh key and serial every time.
  auto cert2 = TlsCertificate::generate(id);
  ASSERT_TRUE(cert2.ok());
  EXPECT_NE(cert2->der(), cert->der());
  auto peer2 = verify_libp2p_certificate(cert2->der());
  ASSERT_TRUE(peer2.ok()) << peer2.error().message;
  EXPECT_EQ(*peer2, id.peer_id());
}

TEST(TlsCertificate, GeneratedCertificateShape) {
  Identity id = Identity::generate();
  auto cert = TlsCertificate::generate(id);
  ASSERT_TRUE(cert.ok()) << cert.error().message;

  auto parts = split_certificate(cert->der());
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  // js-libp2p reads the first extension: SignedKey must come first (it is the only one).
  ASSERT_EQ(parts->extensions.size(), 1u);
  EXPECT_EQ(parts->extensions[0].oid, kSignedKeyOidDer);
  EXPECT_TRUE(parts->extensions[0].critical);
  auto sk = decode_signed_key(parts->extensions[0].value);
  ASSERT_TRUE(sk.ok()) << sk.error().message;
  EXPECT_EQ(sk->public_key, id.public_key().to_protobuf());
  EXPECT_TRUE(id.public_key().verify(handshake_message(parts->spki), sk->signature));

  gnutls_x509_crt_t raw = nullptr;
  ASSERT_EQ(gnutls_x509_crt_init(&raw), 0);
  UniqueX509Crt crt(raw);
  gnutls_datum_t d{reinterpret_cast<unsigned char*>(const_cast<char*>(cert->der().data())),
                   static_cast<unsigned>(cert->der().size())};
  ASSERT_EQ(gnutls_x509_crt_import(crt.get(), &d, GNUTLS_X509_FMT_DER), 0);
  EXPECT_EQ(gnutls_x509_crt_get_version(crt.get()), 3);
  EXPECT_EQ(gnutls_x509_crt_get_signature_algorithm(crt.get()), GNUTLS_SIGN_ECDSA_SHA256);
  unsigned bits = 0;
  EXPECT_EQ(gnutls_x509_crt_get_pk_algorithm(crt.get(), &bits), GNUTLS_PK_ECDSA);
  gnutls_ecc_curve_t curve{};
  ASSERT_EQ(gnutls_x509_crt_get_pk_ecc_raw(crt.get(), &curve, nullptr, nullptr), 0);
  EXPECT_EQ(curve, GNUTLS_ECC_CURVE_SECP256R1);
  const time_t now = std::time(nullptr);
  const time_t nb = gnutls_x509_crt_get_activation_time(crt.get());
  const time_t na = gnutls_x509_crt_get_expiration_time(crt.get());
  EXPECT_LE(nb, now - 3500);
  EXPECT_GE(nb, now - 3700);
  EXPECT_GE(na, now + 364 * 86400);
  unsigned char serial[40];
  size_t serial_len = sizeof serial;
  ASSERT_EQ(gnutls_x509_crt_get_serial(crt.get(), serial, &serial_len), 0);
  EXPECT_GE(serial_len, 8u);
  EXPECT_EQ(serial[0] & 0x80, 0);  // positive
}

// An in-memory TLS 1.3 handshake with mutual authentication using the generated credentials; each
// side checks the other's certificate with verify_libp2p_certificate.
struct Pipe {
  std::deque<char> a_to_b, b_to_a;
};
struct Endpoint {
  std::deque<char>* in;
  std::deque<char>* out;
};
ssize_t push_fn(gnutls_transport_ptr_t p, const void* data, size_t len) {
  auto* e = static_cast<Endpoint*>(p);
  const char* c = static_cast<const char*>(data);
  e->out->insert(e->out->end(), c, c + len);
  return static_cast<ssize_t>(len);
}
ssize_t pull_fn(gnutls_transport_ptr_t p, void* data, size_t len) {
  auto* e = static_cast<Endpoint*>(p);
  if (e->in->empty()) {
    errno = EAGAIN;
    return -1;
  }
  size_t n = std::min(len, e->in->size());
  std::copy_n(e->in->begin(), n, static_cast<char*>(data));
  e->in->erase(e->in->begin(), e->in->begin() + static_cast<std::ptrdiff_t>(n));
  return static_cast<ssize_t>(n);
}
int verify_cb(gnutls_session_t s) {
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(s, &n);
  if (n != 1) return -1;
  auto peer = verify_libp2p_certificate(view_of(certs[0].data, certs[0].size));
  auto* expected = static_cast<PeerId*>(gnutls_session_get_ptr(s));
  return peer.ok() && *peer == *expected ? 0 : -1;
}

TEST(TlsCertificate, CredentialsCompleteAMutualTls13Handshake) {
  Identity server_id = Identity::generate();
  Identity client_id = Identity::generate();
  auto server_cert = TlsCertificate::generate(server_id);
  auto client_cert = TlsCertificate::generate(client_id);
  ASSERT_TRUE(server_cert.ok() && client_cert.ok());

  Pipe pipe;
  Endpoint server_ep{&pipe.a_to_b, &pipe.b_to_a};
  Endpoint client_ep{&pipe.b_to_a, &pipe.a_to_b};
  gnutls_session_t server = nullptr;
  gnutls_session_t client = nullptr;
  ASSERT_EQ(gnutls_init(&server, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
  ASSERT_EQ(gnutls_init(&client, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
  PeerId expect_client = client_id.peer_id();
  PeerId expect_server = server_id.peer_id();
  for (auto [s, cert, ep, expect] : {std::tuple{server, &*server_cert, &server_ep, &expect_client},
                                     std::tuple{client, &*client_cert, &client_ep, &expect_server}}) {
    ASSERT_EQ(gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3", nullptr), 0);
    ASSERT_EQ(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cert->credentials()), 0);
    gnutls_transport_set_ptr(s, ep);
    gnutls_transport_set_push_function(s, push_fn);
    gnutls_transport_set_pull_function(s, pull_fn);
    gnutls_session_set_ptr(s, expect);
    gnutls_session_set_verify_function(s, verify_cb);
  }
  gnutls_certificate_server_set_request(server, GNUTLS_CERT_REQUIRE);

  int rs = GNUTLS_E_AGAIN, rc = GNUTLS_E_AGAIN;
  for (int i = 0; i < 50 && (rs != 0 || rc != 0); ++i) {
    if (rc != 0) rc = gnutls_handshake(client);
    if (rs != 0) rs = gnutls_handshake(server);
    if ((rc < 0 && gnutls_error_is_fatal(rc)) || (rs < 0 && gnutls_error_is_fatal(rs))) break;
  }
  EXPECT_EQ(rc, 0) << gnutls_strerror(rc);
  EXPECT_EQ(rs, 0) << gnutls_strerror(rs);
  EXPECT_EQ(gnutls_protocol_get_version(client), GNUTLS_TLS1_3);
  gnutls_deinit(server);
  gnutls_deinit(client);
}

// ---- verification: spec vectors ----

TEST(VerifyCertificate, SpecEd25519Vector) {
  auto peer = verify_libp2p_certificate(unhex(kSpecEd25519Cert));
  ASSERT_TRUE(peer.ok()) << peer.error().message;
  EXPECT_EQ(peer->to_base58(), kSpecEd25519PeerId);
}

TEST(VerifyCertificate, SpecVectorsWithUnsupportedHostKeys) {
  expect_rejected(unhex(kSpecEcdsaCert), "host key type 3 (ECDSA) is not supported");
  expect_rejected(unhex(kSpecSecp256k1Cert), "host key type 2 (Secp256k1) is not supported");
  expect_rejected(unhex(kSpecInvalidCert), "certificate");
}

// ---- verification: bad certificates ----

TEST(VerifyCertificate, ExtensionSignedByAnotherKeyIsRejected) {
  Identity id = Identity::generate();
  Identity other = Identity::generate();
  CertBuildOptions o;
  o.signed_key = [&](BytesView spki) -> std::optional<Bytes> {
    return encode_signed_key(id.public_key().to_protobuf(), other.sign(handshake_message(spki)));
  };
  expect_rejected(build_der(o), "SignedKey signature does not verify");
}

TEST(VerifyCertificate, ExtensionOverAnotherCertificateKeyIsRejected) {
  Identity id = Identity::generate();
  // A signature lifted from another certificate (over a different SPKI).
  auto donor = build_certificate(default_build_options(id));
  ASSERT_TRUE(donor.ok());
  auto donor_parts = split_certificate(donor->der);
  ASSERT_TRUE(donor_parts.ok());
  Bytes lifted(donor_parts->extensions.at(0).value);
  CertBuildOptions o;
  o.signed_key = [&](BytesView) -> std::optional<Bytes> { return lifted; };
  expect_rejected(build_der(o), "SignedKey signature does not verify");
}

TEST(VerifyCertificate, TamperedExtensionSignatureIsRejected) {
  Identity id = Identity::generate();
  CertBuildOptions o;
  o.signed_key = [&](BytesView spki) -> std::optional<Bytes> {
    Bytes sig = id.sign(handshake_message(spki));
    sig[5] ^= 0x40;
    return encode_signed_key(id.public_key().to_protobuf(), sig);
  };
  expect_rejected(build_der(o), "SignedKey signature does not verify");
}

TEST(VerifyCertificate, TamperedCertificateBytesAreRejected) {
  Identity id = Identity::generate();
  auto cert = TlsCertificate::generate(id);
  ASSERT_TRUE(cert.ok());
  auto parts = split_certificate(cert->der());
  ASSERT_TRUE(parts.ok());

  // A byte of the self-signature (the last byte of the DER is inside the ECDSA s value).
  Bytes sig_tampered = cert->der();
  sig_tampered.back() ^= 0x01;
  expect_rejected(sig_tampered, "certificate");

  // A byte inside the signed TBSCertificate: the serial number.
  Bytes tbs_tampered = cert->der();
  BytesView tbs_view = parts->tbs;
  auto tbs = der_read(tbs_view);
  ASSERT_TRUE(tbs.ok());
  BytesView fields = tbs->value;
  ASSERT_TRUE(der_read(fields).ok());  // version [0]
  auto serial = der_read(fields);
  ASSERT_TRUE(serial.ok());
  ASSERT_EQ(serial->tag, kTagInteger);
  const size_t serial_offset = static_cast<size_t>(serial->value.data() - cert->der().data());
  tbs_tampered[serial_offset + 3] ^= 0x01;
  expect_rejected(tbs_tampered, "self-signature does not verify");

  // A byte of the SignedKey host key inside the extension (also covered by the self-signature).
  Bytes ext_tampered = cert->der();
  const size_t ext_offset = static_cast<size_t>(parts->extensions[0].value.data() - cert->der().data());
  ext_tampered[ext_offset + 10] ^= 0x01;
  expect_rejected(ext_tampered, "self-signature does not verify");
}

TEST(VerifyCertificate, MissingExtensionIsRejected) {
  CertBuildOptions o;  // no signed_key callback: no extension
  expect_rejected(build_der(o), "no libp2p SignedKey extension");
  CertBuildOptions o2;
  o2.signed_key = [](BytesView) -> std::optional<Bytes> { return std::nullopt; };
  o2.extra_extensions.push_back({"2.5.29.19", unhex("3000"), false});  // basicConstraints, other OID
  expect_rejected(build_der(o2), "no libp2p SignedKey extension");
}

TEST(VerifyCertificate, WrongSelfSignatureIsRejected) {
  Identity id = Identity::generate();
  CertBuildOptions o = default_build_options(id);
  o.self_sign_with_other_key = true;
  expect_rejected(build_der(o), "self-signature does not verify");
}

TEST(VerifyCertificate, ValidityPeriodIsChecked) {
  Identity id = Identity::generate();
  CertBuildOptions expired = default_build_options(id);
  expired.not_before_offset = -std::chrono::hours(48);
  expired.not_after_offset = -std::chrono::hours(24);
  expect_rejected(build_der(expired), "expired");
  CertBuildOptions future = default_build_options(id);
  future.not_before_offset = std::chrono::hours(24);
  future.not_after_offset = std::chrono::hours(48);
  expect_rejected(build_der(future), "not valid before");
}

TEST(VerifyCertificate, CriticalityRules) {
  Identity id = Identity::generate();
  CertBuildOptions unknown_critical = default_build_options(id);
  unknown_critical.extra_extensions.push_back({"1.2.3.4.5", unhex("0500"), true});
  expect_rejected(build_der(unknown_critical), "unsupported critical extension 1.2.3.4.5");

  CertBuildOptions unknown_noncritical = default_build_options(id);
  unknown_noncritical.extra_extensions.push_back({"1.2.3.4.5", unhex("0500"), false});
  auto ok1 = verify_libp2p_certificate(build_der(unknown_noncritical));
  ASSERT_TRUE(ok1.ok()) << ok1.error().message;
  EXPECT_EQ(*ok1, id.peer_id());

  CertBuildOptions noncritical_signed_key = default_build_options(id);
  noncritical_signed_key.signed_key_critical = false;
  auto ok2 = verify_libp2p_certificate(build_der(noncritical_signed_key));
  ASSERT_TRUE(ok2.ok()) << ok2.error().message;
  EXPECT_EQ(*ok2, id.peer_id());
}

TEST(VerifyCertificate, MalformedExtensionContentIsRejected) {
  Identity id = Identity::generate();
  CertBuildOptions garbage;
  garbage.signed_key = [](BytesView) -> std::optional<Bytes> { return Bytes("\x30\x03\x04\x01", 4); };
  expect_rejected(build_der(garbage), "SignedKey");

  CertBuildOptions bad_proto;
  bad_proto.signed_key = [&](BytesView spki) -> std::optional<Bytes> {
    return encode_signed_key(unhex("0801"), id.sign(handshake_message(spki)));
  };
  expect_rejected(build_der(bad_proto), "SignedKey host key");

  CertBuildOptions rsa_host;
  rsa_host.signed_key = [&](BytesView spki) -> std::optional<Bytes> {
    return encode_signed_key(unhex("08001203010203"), id.sign(handshake_message(spki)));
  };
  expect_rejected(build_der(rsa_host), "host key type 0 (RSA) is not supported");
}

TEST(VerifyCertificate, GarbageIsRejected) {
  expect_rejected("", "empty");
  expect_rejected("not a certificate", "certificate");
  expect_rejected(Bytes(kMaxCertificateLen + 1, '\x30'), "limit");
  Bytes random(600, '\0');
  for (int i = 0; i < 200; ++i) {
    randombytes_buf(random.data(), random.size());
    if (i % 2) random[0] = '\x30';
    EXPECT_FALSE(verify_libp2p_certificate(random).ok());
  }

  Identity id = Identity::generate();
  auto cert = TlsCertificate::generate(id);
  ASSERT_TRUE(cert.ok());
  const Bytes& der = cert->der();
  for (size_t n : {size_t{1}, size_t{10}, der.size() / 2, der.size() - 1})
    expect_rejected(BytesView(der).substr(0, n), "certificate");
  expect_rejected(der + Bytes(1, '\0'), "trailing");
}

}  // namespace
}  // namespace punchgate
