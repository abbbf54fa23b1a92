#include "punchgate/tunnel/tunnel_negotiation.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace punchgate {

namespace {

using nlohmann::json;

// The server decides which names exist; this bound only keeps junk out of logs and lookups.
constexpr size_t kMaxServiceNameOnWire = 256;
// Longest reason we send. Worst-case JSON escaping is 6 bytes per byte ("\u0001"), so this keeps
// any response far below kMaxTunnelMessage, which the peer's reader would otherwise reject.
constexpr size_t kMaxReasonOnWire = 4096;

// Compact JSON. The replace handler means invalid UTF-8 cannot throw (it becomes U+FFFD).
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Bytes with_length_prefix(const std::string& body) {
  Bytes out;
  out.reserve(4 + body.size());
  auto n = static_cast<uint32_t>(body.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += body;
  return out;
}

// Cuts at most `max` bytes without splitting a UTF-8 sequence.
std::string_view truncate_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;
  return s.substr(0, end);
}

// Parses a JSON object body, or says why not. `what` names the message in errors.
Result<json> parse_object(BytesView text, const char* what) {
  if (text.size() > kMaxTunnelMessage) {
    return make_error("tunnel {} is {} bytes (at most {})", what, text.size(), kMaxTunnelMessage);
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("tunnel {} is not valid JSON", what);
  if (!j.is_object()) return make_error("tunnel {} is not a JSON object (got {})", what, j.type_name());
  return j;
}

uint32_t read_be32(BytesView b) {
  return (uint32_t{static_cast<unsigned char>(b[0])} << 24) | (uint32_t{static_cast<unsigned char>(b[1])} << 16) |
         (uint32_t{static_cast<unsigned char>(b[2])} << 8) | uint32_t{static_cast<unsigned char>(b[3])};
}

}  // namespace

Bytes encode_tunnel_request(const TunnelRequest& r) {
  json j = json::object();
  j["service_name"] = r.service_name;
  return with_length_prefix(dump(j));
}

Bytes encode_tunnel_response(const TunnelResponse& r) {
  json j = json::object();
  j["accepted"] = r.accepted;
  // The accepted form is exactly {"accepted":true}: no reason field at all.
  if (!r.accepted) j["reason"] = std::string(truncate_utf8(r.reason, kMaxReasonOnWire));
  return with_length_prefix(dump(j));
}

Result<TunnelRequest> decode_tunnel_request(BytesView text) {
  auto parsed = parse_object(text, "request");
  if (!parsed.ok()) return parsed.error();
  const json& j = *parsed;
  auto it = j.find("service_name");
  if (it == j.end()) return make_error("tunnel request has no \"service_name\"");
  if (!it->is_string()) return make_error("tunnel request \"service_name\" is a {}, not a string", it->type_name());
  const auto& name = it->get_ref<const std::string&>();
  if (name.size() > kMaxServiceNameOnWire) {
    return make_error("tunnel request \"service_name\" is {} bytes (at most {})", name.size(), kMaxServiceNameOnWire);
  }
  return TunnelRequest{name};
}

Result<TunnelResponse> decode_tunnel_response(BytesView text) {
  auto parsed = parse_object(text, "response");
  if (!parsed.ok()) return parsed.error();
  const json& j = *parsed;
  auto acc = j.find("accepted");
  if (acc == j.end()) return make_error("tunnel response has no \"accepted\"");
  if (!acc->is_boolean()) return make_error("tunnel response \"accepted\" is a {}, not a bool", acc->type_name());
  TunnelResponse r;
  r.accepted = acc->get<bool>();
  auto reason = j.find("reason");
  // null is accepted as "no reason": a serializer may write an absent optional that way.
  if (reason != j.end() && !reason->is_null()) {
    if (!reason->is_string()) return make_error("tunnel response \"reason\" is a {}, not a string", reason->type_name());
    if (!r.accepted) r.reason = reason->get_ref<const std::string&>();
  }
  return r;
}

Result<std::optional<Bytes>> TunnelMessageReader::feed(BytesView data) {
  // Once the message is complete everything else belongs to the raw phase.
  if (done_) {
    rest_.append(data);
    return std::optional<Bytes>{};
  }
  // Header first, byte-exact, so the length check happens before any body is buffered.
  if (buf_.size() < 4) {
    size_t take = std::min(4 - buf_.size(), data.size());
    buf_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (buf_.size() < 4) return std::optional<Bytes>{};
  }
  // Checked on every call, so a rejected reader keeps failing rather than resynchronising.
  uint32_t len = read_be32(buf_);
  if (len > kMaxTunnelMessage) {
    return make_error("tunnel negotiation message declares {} bytes (at most {})", len, kMaxTunnelMessage);
  }
  size_t need = 4 + size_t{len} - buf_.size();
  size_t take = std::min(need, data.size());
  buf_.append(data.substr(0, take));
  data.remove_prefix(take);
  if (take < need) return std::optional<Bytes>{};
  done_ = true;
  Bytes body = buf_.substr(4);
  buf_.clear();
  buf_.shrink_to_fit();
  rest_.append(data);
  return std::optional<Bytes>{std::move(body)};
}

Bytes TunnelMessageReader::take_rest() { return std::exchange(rest_, Bytes{}); }

Bytes frame_datagram(BytesView payload) {
  // A datagram that cannot be framed is dropped (empty result), as UDP itself may drop it. Real
  // UDP payloads are at most 65527 bytes, so this never happens for received datagrams.
  if (payload.size() > 0xffff) return Bytes{};
  Bytes out;
  out.reserve(2 + payload.size());
  out.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.append(payload);
  return out;
}

void take_datagrams(Bytes& buf, std::vector<Bytes>& out, size_t max_out) {
  size_t pos = 0;
  size_t taken = 0;
  while (taken < max_out && buf.size() - pos >= 2) {
    size_t len = (size_t{static_cast<unsigned char>(buf[pos])} << 8) | static_cast<unsigned char>(buf[pos + 1]);
    if (buf.size() - pos - 2 < len) break;
    out.emplace_back(buf, pos + 2, len);
    pos += 2 + len;
    ++taken;
  }
  // One erase per call, not per datagram, keeps a burst of small frames linear.
  buf.erase(0, pos);
}

}  // namespace punchgate
