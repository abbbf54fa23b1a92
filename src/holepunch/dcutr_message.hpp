// DCUtR messages (libp2p/specs relay/DCUtR.md), uvarint-length-prefixed protobuf on /libp2p/dcutr
// (kDcutrProtocol in host/protocol_ids.hpp):
//   HolePunch { Type type = 1; repeated bytes ObsAddrs = 2; }   Type: CONNECT = 100, SYNC = 300
// Addresses stay raw bytes here; dcutr_exchange parses them and decides which are dialable.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace punchgate {

// The spec: implementations SHOULD refuse messages over 4 KiB.
inline constexpr size_t kMaxDcutrMessageSize = 4096;
inline constexpr size_t kMaxDcutrAddrs = 32;

enum class DcutrType : int32_t { Connect = 100, Sync = 300 };
const char* to_string(DcutrType t);

struct DcutrMessage {
  DcutrType type = DcutrType::Connect;  // field 1
  std::vector<Bytes> obs_addrs;         // field 2: binary multiaddrs

  Bytes encode() const;
  Bytes encode_framed() const;  // with its uvarint length prefix
  // One protobuf message (no prefix). A missing or unknown type is an error (there is no
  // meaningful default); unknown fields are skipped; every cap is checked before copying.
  static Result<DcutrMessage> decode(BytesView protobuf);

  friend bool operator==(const DcutrMessage&, const DcutrMessage&) = default;
};

}  // namespace punchgate
