#include "transport/yamux_frame.hpp"

#include <cassert>
#include <limits>

namespace punchgate {

namespace {

void put_u16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

void append_yamux_header(Bytes& out, const YamuxHeader& h) {
  out.push_back(static_cast<char>(kYamuxVersion));
  out.push_back(static_cast<char>(h.type));
  put_u16(out, h.flags);
  put_u32(out, h.stream_id);
  put_u32(out, h.length);
}

Bytes encode_yamux_header(const YamuxHeader& h) {
  Bytes out;
  out.reserve(kYamuxHeaderLen);
  append_yamux_header(out, h);
  return out;
}

void append_yamux_data_frame(Bytes& out, uint16_t flags, uint32_t stream_id, BytesView payload) {
  assert(payload.size() <= std::numeric_limits<uint32_t>::max());
  out.reserve(out.size() + kYamuxHeaderLen + payload.size());
  append_yamux_header(out, {YamuxType::Data, flags, stream_id, static_cast<uint32_t>(payload.size())});
  out.append(payload);
}

Result<YamuxHeader> decode_yamux_header(BytesView in) {
  if (in.size() < kYamuxHeaderLen)
    return make_error("yamux header needs {} bytes, got {}", kYamuxHeaderLen, in.size());
  const uint8_t* p = data_u8(in);
  if (p[0] != kYamuxVersion) return make_error("unsupported yamux version {}", p[0]);
  if (p[1] > static_cast<uint8_t>(YamuxType::GoAway)) return make_error("unknown yamux frame type {}", p[1]);
  YamuxHeader h;
  h.type = static_cast<YamuxType>(p[1]);
  h.flags = static_cast<uint16_t>((uint16_t{p[2]} << 8) | p[3]);
  h.stream_id = get_u32(p + 4);
  h.length = get_u32(p + 8);
  return h;
}

}  // namespace punchgate
