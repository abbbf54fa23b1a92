// yamux frame header codec (libp2p/specs yamux/README.md, "Framing"): every frame starts with a
// 12-byte big-endian header: version (1), type (1), flags (2), stream id (4), length (4). Only Data
// frames carry a body (`length` bytes); for the other types `length` is a window delta (Window
// Update), an opaque value (Ping) or an error code (Go Away).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstdint>

namespace punchgate {

inline constexpr size_t kYamuxHeaderLen = 12;
inline constexpr uint8_t kYamuxVersion = 0;
// Every stream starts with this window in both directions; larger windows are announced by a
// Window Update delta on top of it.
inline constexpr uint32_t kYamuxInitialWindow = 256 * 1024;

enum class YamuxType : uint8_t { Data = 0, WindowUpdate = 1, Ping = 2, GoAway = 3 };

// Flag bits. Bits beyond these are ignored on receipt (hashicorp once defined 0x10 for LZW).
inline constexpr uint16_t kYamuxSyn = 0x1;
inline constexpr uint16_t kYamuxAck = 0x2;
inline constexpr uint16_t kYamuxFin = 0x4;
inline constexpr uint16_t kYamuxRst = 0x8;

// Go Away codes. Peers may send other values; they are reported as received.
enum class YamuxGoAwayCode : uint32_t { Normal = 0, ProtocolError = 1, InternalError = 2 };

struct YamuxHeader {
  YamuxType type = YamuxType::Data;
  uint16_t flags = 0;
  uint32_t stream_id = 0;
  uint32_t length = 0;

  bool has(uint16_t flag) const { return (flags & flag) != 0; }
  bool operator==(const YamuxHeader&) const = default;
};

// Appends the 12 header bytes (version 0).
void append_yamux_header(Bytes& out, const YamuxHeader& h);
Bytes encode_yamux_header(const YamuxHeader& h);

// Appends a Data frame: header with length = payload size, then the payload. Payloads longer
// than 2^32 - 1 are a programming error (asserted).
void append_yamux_data_frame(Bytes& out, uint16_t flags, uint32_t stream_id, BytesView payload);

// Decodes the header at the front of `in` (bytes past the first 12 are ignored). Fails when fewer
// than 12 bytes are given, the version is not 0 or the type is unknown.
Result<YamuxHeader> decode_yamux_header(BytesView in);

}  // namespace punchgate
