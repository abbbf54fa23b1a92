// The Kademlia DHT message (libp2p/specs kad-dht/README.md), carried on /punchgate/kad/1.0.0
// as uvarint-length-prefixed protobuf frames. Peer ids and addresses are kept as the raw bytes
// they are on the wire; callers parse them (PeerId::from_bytes, Multiaddr::from_bytes) and drop
// entries that do not parse.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

// One framed message on the wire. Records may be 64 KiB; the rest of a message (20 closer peers
// with a few addresses each) stays well below the remainder.
inline constexpr size_t kMaxKadMessageSize = 128 * 1024;
inline constexpr size_t kMaxKadRecordValueSize = 64 * 1024;  // PUT_VALUE values above this are refused
inline constexpr size_t kMaxKadKeySize = 1024;
inline constexpr size_t kMaxKadPeersPerMessage = 64;   // closerPeers / providerPeers each
inline constexpr size_t kMaxKadAddrsPerPeer = 32;
inline constexpr size_t kMaxKadAddrSize = 1024;
inline constexpr size_t kMaxKadPeerIdSize = 128;

enum class KadMessageType : int32_t {
  PutValue = 0,
  GetValue = 1,
  AddProvider = 2,
  GetProviders = 3,
  FindNode = 4,
  Ping = 5,
};
const char* to_string(KadMessageType t);

enum class KadConnectionType : int32_t {
  NotConnected = 0,
  Connected = 1,
  CanConnect = 2,
  CannotConnect = 3,
};

struct KadRecord {
  Bytes key;                  // field 1
  Bytes value;                // field 2
  std::string time_received;  // field 5, RFC 3339 (informational; we do not trust it)
  friend bool operator==(const KadRecord&, const KadRecord&) = default;
};

struct KadPeer {
  Bytes id;                  // field 1, peer id multihash
  std::vector<Bytes> addrs;  // field 2, binary multiaddrs
  KadConnectionType connection = KadConnectionType::NotConnected;  // field 3
  friend bool operator==(const KadPeer&, const KadPeer&) = default;
};

struct KadMessage {
  KadMessageType type = KadMessageType::Ping;  // field 1
  int32_t cluster_level_raw = 0;              // field 10 (unused, kept for round trips)
  Bytes key;                                  // field 2
  std::optional<KadRecord> record;            // field 3
  std::vector<KadPeer> closer_peers;          // field 8
  std::vector<KadPeer> provider_peers;        // field 9

  // Protobuf encoding (proto3 defaults omitted except `type`, which is always written since
  // go/js peers expect it; PUT_VALUE=0 would otherwise vanish).
  Bytes encode() const;
  // encode() with its uvarint length prefix.
  Bytes encode_framed() const;
  // Decodes one protobuf message. Unknown fields are skipped; wrong wire types, truncation,
  // an unknown message type and every cap above are errors.
  static Result<KadMessage> decode(BytesView protobuf);

  friend bool operator==(const KadMessage&, const KadMessage&) = default;
};

}  // namespace punchgate
