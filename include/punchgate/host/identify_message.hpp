// The identify protobuf (libp2p/specs identify/README.md), used by /ipfs/id/1.0.0 and
// /ipfs/id/push/1.0.0. On the stream it travels uvarint-length-prefixed, as rust-libp2p,
// js-libp2p and go-libp2p frame it; go-libp2p may split one message over two frames, which
// the receiver merges, so decode_stream() accepts several.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <optional>
#include <string>
#include <vector>

namespace punchgate {

// One encoded message (listen/protocol lists can be long, so well above go-libp2p's 8 KiB).
inline constexpr size_t kMaxIdentifyMessageSize = 64 * 1024;
// Everything read from one identify stream, length prefixes included.
inline constexpr size_t kMaxIdentifyStreamSize = 2 * kMaxIdentifyMessageSize;
// Frames merged from one stream (go-libp2p reads up to 10).
inline constexpr size_t kMaxIdentifyStreamMessages = 10;
inline constexpr size_t kMaxIdentifyListenAddrs = 128;
inline constexpr size_t kMaxIdentifyAddrSize = 1024;  // listenAddrs entries and observedAddr
inline constexpr size_t kMaxIdentifyProtocols = 256;
inline constexpr size_t kMaxIdentifyProtocolSize = 256;
inline constexpr size_t kMaxIdentifyVersionSize = 1024;   // protocolVersion, agentVersion
inline constexpr size_t kMaxIdentifyPublicKeySize = 4096;  // fits RSA-4096 public keys

struct IdentifyMessage {
  std::optional<std::string> protocol_version;  // field 5
  std::optional<std::string> agent_version;     // field 6
  std::optional<Bytes> public_key;              // field 1, protobuf PublicKey
  std::optional<Bytes> observed_addr;           // field 4, binary multiaddr
  std::optional<Bytes> signed_peer_record;      // field 8, raw SignedEnvelope (not verified here)
  std::vector<Bytes> listen_addrs;              // field 2, binary multiaddrs
  std::vector<std::string> protocols;           // field 3

  // Protobuf encoding, fields in field-number order. Caps are the caller's business here.
  Bytes encode() const;
  // encode() with its uvarint length prefix: what a sender writes before closing its write side.
  Bytes encode_framed() const;

  // Decodes one protobuf message. Unknown fields are skipped; a known field with the wrong
  // wire type, truncated or malformed input, or any cap exceeded is an error.
  static Result<IdentifyMessage> decode(BytesView protobuf);
  // Decodes all bytes the peer wrote on an identify stream before closing it: one or more
  // length-prefixed messages (at most kMaxIdentifyStreamMessages), merged in order.
  static Result<IdentifyMessage> decode_stream(BytesView stream);

  // Protobuf merge: fields set in `other` replace ours, repeated fields append. Caps are enforced;
  // on error *this is unchanged.
  Status merge_from(const IdentifyMessage& other);

  friend bool operator==(const IdentifyMessage&, const IdentifyMessage&) = default;
};

}  // namespace punchgate
