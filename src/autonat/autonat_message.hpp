// AutoNAT v1 messages (libp2p/specs autonat/README.md), uvarint-length-prefixed protobuf on
// /libp2p/autonat/1.0.0 (kAutonatProtocol in host/protocol_ids.hpp):
//   Message      { MessageType type = 1; Dial dial = 2; DialResponse dialResponse = 3; }
//   Dial         { PeerInfo peer = 1; }
//   PeerInfo     { bytes id = 1; repeated bytes addrs = 2; }
//   DialResponse { ResponseStatus status = 1; string statusText = 2; bytes addr = 3; }
// Every field is proto2 optional, so the codec keeps absence visible; the server and client
// decide what a usable request or response must carry. Addresses stay raw bytes here.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

// go-libp2p caps AutoNAT v1 messages at 4 KiB too; 32 addresses of a few dozen bytes fit easily.
inline constexpr size_t kMaxAutonatMessageSize = 4096;
inline constexpr size_t kMaxAutonatAddrs = 32;
inline constexpr size_t kMaxAutonatPeerIdSize = 128;  // real ones are 34-38 bytes
inline constexpr size_t kMaxAutonatStatusTextSize = 512;

enum class AutonatType : int32_t { Dial = 0, DialResponse = 1 };
enum class AutonatStatus : int32_t {
  Ok = 0,
  DialError = 100,
  DialRefused = 101,
  BadRequest = 200,
  InternalError = 300,
};
const char* to_string(AutonatType t);
const char* to_string(AutonatStatus s);  // as the spec spells them: "OK", "E_DIAL_ERROR", …

struct AutonatPeerInfo {
  std::optional<Bytes> id;   // peer id multihash
  std::vector<Bytes> addrs;  // binary multiaddrs
  friend bool operator==(const AutonatPeerInfo&, const AutonatPeerInfo&) = default;
};

struct AutonatDial {
  std::optional<AutonatPeerInfo> peer;
  friend bool operator==(const AutonatDial&, const AutonatDial&) = default;
};

struct AutonatDialResponse {
  std::optional<AutonatStatus> status;
  std::optional<std::string> status_text;
  std::optional<Bytes> addr;  // binary multiaddr the server reached
  friend bool operator==(const AutonatDialResponse&, const AutonatDialResponse&) = default;
};

struct AutonatMessage {
  std::optional<AutonatType> type;
  std::optional<AutonatDial> dial;
  std::optional<AutonatDialResponse> dial_response;

  // DIAL asking for `peer` at `addrs` (at most kMaxAutonatAddrs are taken).
  static AutonatMessage dial_request(const PeerId& peer, const std::vector<Multiaddr>& addrs);
  // DIAL_RESPONSE; `text` is cut to kMaxAutonatStatusTextSize.
  static AutonatMessage response(AutonatStatus status, std::string text, std::optional<Multiaddr> addr = {});

  Bytes encode() const;
  Bytes encode_framed() const;  // with its uvarint length prefix
  // One protobuf message (no prefix). Unknown enum values are errors, unknown fields are
  // skipped, sub-messages repeated on the wire merge (as protobuf does); every cap is checked
  // before anything is copied.
  static Result<AutonatMessage> decode(BytesView protobuf);

  friend bool operator==(const AutonatMessage&, const AutonatMessage&) = default;
};

}  // namespace punchgate
