// libFuzzer target: the libp2p TLS certificate verifier and the DER pieces beneath it, on arbitrary bytes.
#include "punchgate/crypto/tls_certificate.hpp"

#include "crypto/tls_certificate_internal.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace punchgate;
  const BytesView in = view_of(data, size);

  // Whole pipeline: must return an error (or a peer id) for every input, never crash.
  auto peer = verify_libp2p_certificate(in);
  if (peer.ok() && peer->empty()) __builtin_trap();

  // Pieces the pipeline only reaches behind a valid self-signature.
  auto parts = tls_internal::split_certificate(in);
  if (parts.ok()) {
    for (const auto& ext : parts->extensions) (void)tls_internal::oid_to_string(ext.oid);
  }
  auto signed_key = tls_internal::decode_signed_key(in);
  if (signed_key.ok()) {
    // Re-encoding a decoded SignedKey reproduces the (strict DER) input.
    if (tls_internal::encode_signed_key(signed_key->public_key, signed_key->signature) != in) __builtin_trap();
    (void)PublicKey::from_protobuf(signed_key->public_key);
  }
  BytesView rest = in;
  for (int i = 0; i < 64 && !rest.empty(); ++i) {
    auto tlv = tls_internal::der_read(rest);
    if (!tlv.ok()) break;
    // der_append of the parsed element must reproduce its bytes exactly.
    Bytes again;
    tls_internal::der_append(again, tlv->tag, tlv->value);
    if (again != tlv->whole) __builtin_trap();
  }
  (void)tls_internal::oid_to_string(in);
  return 0;
}
