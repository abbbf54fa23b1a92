// The libp2p Noise handshake payload (libp2p/specs noise/README.md r5), carried encrypted in
// XX messages 2 and 3:
//   message NoiseExtensions { repeated bytes webtransport_certhashes = 1; repeated string stream_muxers = 2; }
//   message NoiseHandshakePayload { optional bytes identity_key = 1; optional bytes identity_sig = 2;
//                                   optional NoiseExtensions extensions = 4; }
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <optional>
#include <string>
#include <vector>

namespace punchgate {

// identity_key holds a PublicKey protobuf: at most 4096 bytes of key data (RSA) plus its header.
inline constexpr size_t kMaxNoiseIdentityKeySize = 4096 + 64;
inline constexpr size_t kMaxNoiseIdentitySigSize = 1024;  // RSA-8192 signatures are 1024 bytes
inline constexpr size_t kMaxNoiseCerthashes = 16;
inline constexpr size_t kMaxNoiseCerthashSize = 128;      // a multihash; sha2-256 is 34 bytes
inline constexpr size_t kMaxNoiseStreamMuxers = 32;
inline constexpr size_t kMaxNoiseStreamMuxerSize = 256;   // a protocol id such as "/yamux/1.0.0"

struct NoiseExtensions {
  std::vector<Bytes> webtransport_certhashes;  // field 1
  std::vector<std::string> stream_muxers;      // field 2
  friend bool operator==(const NoiseExtensions&, const NoiseExtensions&) = default;
};

struct NoiseHandshakePayload {
  Bytes identity_key;                     // field 1: libp2p PublicKey protobuf
  Bytes identity_sig;                     // field 2: signature over "noise-libp2p-static-key:" || static key
  std::optional<NoiseExtensions> extensions;  // field 4

  // identity_key and identity_sig are always written; extensions only when present.
  Bytes encode() const;
  // Both identity fields are required (libp2p cannot authenticate without them). Unknown fields
  // are skipped; a repeated identity field keeps the last value and repeated extensions merge
  // (protobuf rules); wrong wire types, truncation and every cap above are errors.
  static Result<NoiseHandshakePayload> decode(BytesView protobuf);

  friend bool operator==(const NoiseHandshakePayload&, const NoiseHandshakePayload&) = default;
};

}  // namespace punchgate
