// Kademlia keyspace: every key and peer id is placed at sha256(its bytes), and closeness is the
// XOR of two such points read as a 256-bit big-endian number (kad-dht/README.md).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <array>
#include <cstdint>
#include <optional>

namespace punchgate {

class KadKey {
 public:
  using Array = std::array<uint8_t, 32>;
  KadKey() = default;
  explicit KadKey(const Array& a) : bytes_(a) {}

  static KadKey from_key(BytesView raw_key);  // sha256(raw_key)
  static KadKey of_peer(const PeerId& peer) { return from_key(peer.bytes()); }

  const Array& bytes() const { return bytes_; }
  KadKey distance(const KadKey& other) const;  // XOR
  // Bucket of `other` seen from this key: 255 - (leading zero bits of the distance), i.e. the
  // index of the highest differing bit; nullopt when the keys are equal.
  std::optional<size_t> bucket_of(const KadKey& other) const;

  friend bool operator==(const KadKey&, const KadKey&) = default;
  friend auto operator<=>(const KadKey&, const KadKey&) = default;  // as big-endian numbers

 private:
  Array bytes_{};
};

}  // namespace punchgate
