// libp2p signed envelopes (libp2p/specs RFC/0002-signed-envelopes.md): a payload, a type hint and
// the signer's public key, signed under a domain string that is not carried on the wire.
//   message Envelope { PublicKey public_key = 1; bytes payload_type = 2; bytes payload = 3;
//                      bytes signature = 5; }
// The RFC text still says signature = 4; go-, rust- and js-libp2p all use 5, so do we.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <string_view>

namespace punchgate {

// Signed peer records carry a handful of addresses and vouchers under 300 bytes; 16 KiB leaves
// room for RSA keys and large records while keeping a hostile envelope cheap.
inline constexpr size_t kMaxSignedEnvelopeSize = 16 * 1024;
inline constexpr size_t kMaxEnvelopePublicKeySize = 4096 + 64;  // PublicKey protobuf, RSA-sized
inline constexpr size_t kMaxEnvelopePayloadTypeSize = 256;     // a multicodec or a short path
inline constexpr size_t kMaxEnvelopeSignatureSize = 1024;      // RSA-8192 signatures are 1024 bytes

// The envelope as it is on the wire; decode() checks structure only, not the signature.
struct SignedEnvelope {
  Bytes public_key;    // field 1: libp2p PublicKey protobuf, kept as received
  Bytes payload_type;  // field 2
  Bytes payload;       // field 3
  Bytes signature;     // field 5

  // Field order; public_key and signature always written, empty payload_type/payload omitted
  // (proto3, as go/js/rust write them, so a re-encoded envelope is byte-identical to theirs).
  Bytes encode() const;
  // Unknown fields are skipped, a repeated field keeps its last value; a missing or empty
  // public_key or signature, wrong wire types, truncation and the caps above are errors.
  static Result<SignedEnvelope> decode(BytesView protobuf);

  friend bool operator==(const SignedEnvelope&, const SignedEnvelope&) = default;
};

// What open_signed_envelope() vouches for: `payload` was signed by `signer` under the domain.
struct OpenedEnvelope {
  PublicKey public_key;
  PeerId signer;  // derived from public_key
  Bytes payload_type;
  Bytes payload;
};

// The buffer the signature covers: uvarint(len(domain)) || domain || uvarint(len(payload_type))
// || payload_type || uvarint(len(payload)) || payload.
Bytes envelope_signing_buffer(std::string_view domain, BytesView payload_type, BytesView payload);

// Signs the buffer above with `signer` and returns the encoded envelope.
Bytes seal_signed_envelope(const Identity& signer, std::string_view domain, BytesView payload_type,
                           BytesView payload);

// Decodes `envelope`, parses its key and verifies the signature under `domain`. Only Ed25519
// signers can be verified; other key types are an error naming the type. The payload type is
// returned, not checked: callers compare it with what they expect.
Result<OpenedEnvelope> open_signed_envelope(BytesView envelope, std::string_view domain);

}  // namespace punchgate
