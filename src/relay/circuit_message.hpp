// Circuit relay v2 messages (libp2p/specs relay/circuit-v2.md), carried as uvarint-length-prefixed
// protobuf frames on /libp2p/circuit/relay/0.2.0/hop and /stop (kRelayHopProtocol,
// kRelayStopProtocol in host/protocol_ids.hpp).
//   HopMessage  { Type type = 1; Peer peer = 2; Reservation reservation = 3; Limit limit = 4; Status status = 5; }
//   StopMessage { Type type = 1; Peer peer = 2; Limit limit = 3; Status status = 4; }
//   Peer        { bytes id = 1; repeated bytes addrs = 2; }
//   Reservation { uint64 expire = 1; repeated bytes addrs = 2; bytes voucher = 3; }
//   Limit       { uint32 duration = 1; uint64 data = 2; }
// Peer ids, addresses and the voucher stay the raw bytes they are on the wire; callers parse them
// (PeerId::from_bytes, Multiaddr::from_bytes, verify_voucher) and decide what to drop, since a
// relay may list addresses of transports we do not know.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

// go-libp2p and rust-libp2p read and write at most 4096 bytes per relay message.
inline constexpr size_t kMaxCircuitMessageSize = 4096;
inline constexpr size_t kMaxCircuitAddrs = 32;        // per Peer and per Reservation
inline constexpr size_t kMaxCircuitAddrSize = kMaxMultiaddrBytes;
inline constexpr size_t kMaxCircuitPeerIdSize = 128;  // multihashes; Ed25519 identity ones are 38

// STATUS on the wire; named StatusReply since an enumerator Status would shadow punchgate::Status.
enum class HopMessageType : int32_t { Reserve = 0, Connect = 1, StatusReply = 2 };
enum class StopMessageType : int32_t { Connect = 0, StatusReply = 1 };

// Proto enum numbers. Any other int32 a peer sends is kept as is (a newer status is still "not
// OK"), so decode() never fails on an unknown status and re-encoding preserves it.
enum class CircuitStatus : int32_t {
  Unused = 0,  // go-libp2p's proto3 zero value; never sent on purpose
  Ok = 100,
  ReservationRefused = 200,
  ResourceLimitExceeded = 201,
  PermissionDenied = 202,
  ConnectionFailed = 203,
  NoReservation = 204,
  MalformedMessage = 400,
  UnexpectedMessage = 401,
};

const char* to_string(HopMessageType t);
const char* to_string(StopMessageType t);
// "OK", "NO_RESERVATION", …; unknown values as "UNKNOWN(<n>)".
std::string to_string(CircuitStatus s);

struct CircuitPeer {
  Bytes id;                  // field 1: peer id multihash (proto2 required: always written)
  std::vector<Bytes> addrs;  // field 2: binary multiaddrs
  friend bool operator==(const CircuitPeer&, const CircuitPeer&) = default;
};

struct CircuitReservation {
  uint64_t expire = 0;           // field 1: unix seconds (UTC); always written, absent reads as 0
  std::vector<Bytes> addrs;      // field 2: the relay's public addrs including /p2p/<relay>
  std::optional<Bytes> voucher;  // field 3: signed envelope (reservation_voucher.hpp)
  friend bool operator==(const CircuitReservation&, const CircuitReservation&) = default;
};

// An absent field means "no limit"; so does a present 0 (spec), but the two are kept apart.
struct CircuitLimit {
  std::optional<uint32_t> duration;  // field 1: seconds
  std::optional<uint64_t> data;      // field 2: bytes in each direction
  friend bool operator==(const CircuitLimit&, const CircuitLimit&) = default;
};

struct HopMessage {
  HopMessageType type = HopMessageType::Reserve;  // field 1
  std::optional<CircuitPeer> peer;                // field 2
  std::optional<CircuitReservation> reservation;  // field 3
  std::optional<CircuitLimit> limit;              // field 4
  std::optional<CircuitStatus> status;            // field 5

  // Field-number order. `type` is always written (rust-libp2p requires it; go omits RESERVE=0).
  Bytes encode() const;
  Bytes encode_framed() const;  // with its uvarint length prefix
  // One protobuf message (without its length prefix). Absent type reads as RESERVE (go-libp2p).
  // Unknown fields are skipped; repeated sub-messages merge (protobuf rules). Errors: wrong wire
  // types, truncation, an unknown type, a duration over 2^32-1, a status outside int32, every cap.
  static Result<HopMessage> decode(BytesView protobuf);

  friend bool operator==(const HopMessage&, const HopMessage&) = default;
};

struct StopMessage {
  StopMessageType type = StopMessageType::Connect;  // field 1
  std::optional<CircuitPeer> peer;                  // field 2
  std::optional<CircuitLimit> limit;                // field 3
  std::optional<CircuitStatus> status;              // field 4

  // Same rules as HopMessage.
  Bytes encode() const;
  Bytes encode_framed() const;
  static Result<StopMessage> decode(BytesView protobuf);

  friend bool operator==(const StopMessage&, const StopMessage&) = default;
};

// A STATUS reply carrying only `s`: how a relay refuses a RESERVE or CONNECT, and how a STOP
// receiver answers. The OK replies that carry a reservation or limit are built by their servers.
inline HopMessage hop_status_reply(CircuitStatus s) {
  HopMessage m;
  m.type = HopMessageType::StatusReply;
  m.status = s;
  return m;
}

inline StopMessage stop_status_reply(CircuitStatus s) {
  StopMessage m;
  m.type = StopMessageType::StatusReply;
  m.status = s;
  return m;
}

}  // namespace punchgate
