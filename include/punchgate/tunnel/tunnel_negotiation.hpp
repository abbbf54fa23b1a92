// Tunnel negotiation wire (the Rust Punchgate's, keep exact): each message is a 4-byte big-endian
// length followed by that many bytes of JSON, at most 64 KiB.
//   request  {"service_name":"echo"}
//   response {"accepted":true} | {"accepted":false,"reason":"…"}
// After the response, the stream carries raw bytes (TCP) or framed datagrams (UDP).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <optional>
#include <string>
#include <vector>

namespace punchgate {

inline constexpr size_t kMaxTunnelMessage = 64 * 1024;

struct TunnelRequest {
  std::string service_name;
};

struct TunnelResponse {
  bool accepted = false;
  std::string reason;  // only when !accepted
};

Bytes encode_tunnel_request(const TunnelRequest& r);
Bytes encode_tunnel_response(const TunnelResponse& r);
// Decode the JSON body (without the length prefix). Unknown fields are ignored; missing or
// mistyped required fields are errors.
Result<TunnelRequest> decode_tunnel_request(BytesView json);
Result<TunnelResponse> decode_tunnel_response(BytesView json);

// Incremental reader for one length-prefixed message at the front of a stream.
// feed() returns: ok(nullopt) need more; ok(body) complete — remaining bytes (which belong to
// the raw phase) are available from take_rest(); error on an oversized length.
class TunnelMessageReader {
 public:
  Result<std::optional<Bytes>> feed(BytesView data);
  Bytes take_rest();

 private:
  Bytes buf_;
  bool done_ = false;
  Bytes rest_;
};

// UDP over a stream: each datagram is a 2-byte big-endian length + payload (empty allowed).
Bytes frame_datagram(BytesView payload);
// Splits complete datagrams off the front of `buf` (consuming them), appending to `out`.
// Never fails: any 16-bit length is valid. At most `max_out` datagrams per call.
void take_datagrams(Bytes& buf, std::vector<Bytes>& out, size_t max_out = 1024);

}  // namespace punchgate
