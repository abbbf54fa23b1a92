#include "relay/circuit_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/protobuf_fields.hpp"

#include <fmt/format.h>
#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <cstdint>
#include <limits>
#include <utility>

namespace punchgate {

namespace {

enum PeerField : uint32_t { kPeerId = 1, kPeerAddrs = 2 };
enum ReservationField : uint32_t { kReservationExpire = 1, kReservationAddrs = 2, kReservationVoucher = 3 };
enum LimitField : uint32_t { kLimitDuration = 1, kLimitData = 2 };

// Field numbers of the two top-level messages; they differ only in where limit and status sit
// and in HopMessage's reservation (0 = the message has none).
struct TopFields {
  const char* what;
  uint32_t type, peer, reservation, limit, status;
  int32_t max_type;
};
constexpr TopFields kHopFields{"circuit hop message", 1, 2, 3, 4, 5, static_cast<int32_t>(HopMessageType::StatusReply)};
constexpr TopFields kStopFields{"circuit stop message", 1, 2, 0, 3, 4, static_cast<int32_t>(StopMessageType::StatusReply)};

// Both messages decoded into one shape, then copied out.
struct TopParts {
  int32_t type = 0;  // proto3 zero value when absent (go-libp2p omits RESERVE / CONNECT)
  std::optional<CircuitPeer> peer;
  std::optional<CircuitReservation> reservation;
  std::optional<CircuitLimit> limit;
  std::optional<CircuitStatus> status;
};

using protobuf::read_bytes;
using protobuf::read_enum;
using protobuf::read_varint;
using protobuf::walk;

Status add_addr(const char* what, std::vector<Bytes>& addrs, BytesView v) {
  // Counted before copying so a hostile list stops early.
  if (addrs.size() == kMaxCircuitAddrs) return make_error("{} lists more than {} addrs", what, kMaxCircuitAddrs);
  if (v.size() > kMaxCircuitAddrSize)
    return make_error("{} addr of {} bytes exceeds limit of {}", what, v.size(), kMaxCircuitAddrSize);
  addrs.emplace_back(v);
  return {};
}

// Sub-message decoders merge into `out`, as protobuf does for a repeated sub-message field.
Status decode_peer(BytesView in, CircuitPeer& out) {
  return walk("circuit peer", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kPeerId && tag != kPeerAddrs) return false;
    auto v = read_bytes("circuit peer", r);
    if (!v) return v.error();
    if (tag == kPeerAddrs) {
      PG_TRY(add_addr("circuit peer", out.addrs, *v));
      return true;
    }
    if (v->size() > kMaxCircuitPeerIdSize)
      return make_error("circuit peer id of {} bytes exceeds limit of {}", v->size(), kMaxCircuitPeerIdSize);
    out.id = Bytes(*v);
    return true;
  });
}

Status decode_reservation(BytesView in, CircuitReservation& out) {
  return walk("circuit reservation", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    switch (tag) {
      case kReservationExpire: {
        auto v = read_varint("circuit reservation", r);
        if (!v) return v.error();
        out.expire = *v;
        return true;
      }
      case kReservationAddrs: {
        auto v = read_bytes("circuit reservation", r);
        if (!v) return v.error();
        PG_TRY(add_addr("circuit reservation", out.addrs, *v));
        return true;
      }
      case kReservationVoucher: {
        auto v = read_bytes("circuit reservation", r);
        if (!v) return v.error();
        out.voucher = Bytes(*v);  // bounded by the message cap; verify_voucher applies its own
        return true;
      }
      default:
        return false;
    }
  });
}

Status decode_limit(BytesView in, CircuitLimit& out) {
  return walk("circuit limit", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kLimitDuration && tag != kLimitData) return false;
    auto v = read_varint("circuit limit", r);
    if (!v) return v.error();
    if (tag == kLimitData) {
      out.data = *v;
      return true;
    }
    // Other decoders would silently truncate to 32 bits, turning a long limit into a short one.
    if (*v > std::numeric_limits<uint32_t>::max())
      return make_error("circuit limit duration {} does not fit in uint32", *v);
    out.duration = static_cast<uint32_t>(*v);
    return true;
  });
}

Result<TopParts> decode_top(const TopFields& f, BytesView protobuf) {
  if (protobuf.size() > kMaxCircuitMessageSize)
    return make_error("{} of {} bytes exceeds limit of {}", f.what, protobuf.size(), kMaxCircuitMessageSize);
  TopParts m;
  try {
    Status s = walk(f.what, protobuf, [&](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
      if (tag == f.type) {
        auto t = read_enum(f.what, r);
        if (!t) return t.error();
        if (*t < 0 || *t > f.max_type) return make_error("{} has unknown type {}", f.what, *t);
        m.type = *t;
        return true;
      }
      if (tag == f.status) {
        auto st = read_enum(f.what, r);
        if (!st) return st.error();
        m.status = static_cast<CircuitStatus>(*st);
        return true;
      }
      if (tag == f.peer || tag == f.limit || (f.reservation != 0 && tag == f.reservation)) {
        auto v = read_bytes(f.what, r);
        if (!v) return v.error();
        Status sub;
        if (tag == f.peer) {
          sub = decode_peer(*v, m.peer ? *m.peer : m.peer.emplace());
        } else if (tag == f.limit) {
          sub = decode_limit(*v, m.limit ? *m.limit : m.limit.emplace());
        } else {
          sub = decode_reservation(*v, m.reservation ? *m.reservation : m.reservation.emplace());
        }
        if (!sub) return sub.error();
        return true;
      }
      return false;
    });
    if (!s) return s.error();
  } catch (const protozero::exception& e) {
    return make_error("malformed {}: {}", f.what, e.what());
  }
  return m;
}

Bytes encode_peer(const CircuitPeer& p) {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_bytes(kPeerId, p.id);
  for (const auto& a : p.addrs) w.add_bytes(kPeerAddrs, a);
  return out;
}

Bytes encode_reservation(const CircuitReservation& rsv) {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_uint64(kReservationExpire, rsv.expire);
  for (const auto& a : rsv.addrs) w.add_bytes(kReservationAddrs, a);
  if (rsv.voucher) w.add_bytes(kReservationVoucher, *rsv.voucher);
  return out;
}

Bytes encode_limit(const CircuitLimit& l) {
  Bytes out;
  protozero::pbf_writer w(out);
  if (l.duration) w.add_uint32(kLimitDuration, *l.duration);
  if (l.data) w.add_uint64(kLimitData, *l.data);
  return out;
}

Bytes encode_top(const TopFields& f, int32_t type, const std::optional<CircuitPeer>& peer,
                 const std::optional<CircuitReservation>* reservation, const std::optional<CircuitLimit>& limit,
                 const std::optional<CircuitStatus>& status) {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_enum(f.type, type);
  if (peer) w.add_message(f.peer, encode_peer(*peer));
  if (reservation && *reservation) w.add_message(f.reservation, encode_reservation(**reservation));
  if (limit) w.add_message(f.limit, encode_limit(*limit));
  if (status) w.add_enum(f.status, static_cast<int32_t>(*status));
  return out;
}

}  // namespace

const char* to_string(HopMessageType t) {
  switch (t) {
    case HopMessageType::Reserve: return "RESERVE";
    case HopMessageType::Connect: return "CONNECT";
    case HopMessageType::StatusReply: return "STATUS";
  }
  return "UNKNOWN";
}

const char* to_string(StopMessageType t) {
  switch (t) {
    case StopMessageType::Connect: return "CONNECT";
    case StopMessageType::StatusReply: return "STATUS";
  }
  return "UNKNOWN";
}

std::string to_string(CircuitStatus s) {
  switch (s) {
    case CircuitStatus::Unused: return "UNUSED";
    case CircuitStatus::Ok: return "OK";
    case CircuitStatus::ReservationRefused: return "RESERVATION_REFUSED";
    case CircuitStatus::ResourceLimitExceeded: return "RESOURCE_LIMIT_EXCEEDED";
    case CircuitStatus::PermissionDenied: return "PERMISSION_DENIED";
    case CircuitStatus::ConnectionFailed: return "CONNECTION_FAILED";
    case CircuitStatus::NoReservation: return "NO_RESERVATION";
    case CircuitStatus::MalformedMessage: return "MALFORMED_MESSAGE";
    case CircuitStatus::UnexpectedMessage: return "UNEXPECTED_MESSAGE";
  }
  return fmt::format("UNKNOWN({})", static_cast<int32_t>(s));
}

Bytes HopMessage::encode() const {
  return encode_top(kHopFields, static_cast<int32_t>(type), peer, &reservation, limit, status);
}

Bytes HopMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<HopMessage> HopMessage::decode(BytesView protobuf) {
  auto parts = decode_top(kHopFields, protobuf);
  if (!parts) return parts.error();
  HopMessage m;
  m.type = static_cast<HopMessageType>(parts->type);
  m.peer = std::move(parts->peer);
  m.reservation = std::move(parts->reservation);
  m.limit = std::move(parts->limit);
  m.status = parts->status;
  return m;
}

Bytes StopMessage::encode() const {
  return encode_top(kStopFields, static_cast<int32_t>(type), peer, nullptr, limit, status);
}

Bytes StopMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<StopMessage> StopMessage::decode(BytesView protobuf) {
  auto parts = decode_top(kStopFields, protobuf);
  if (!parts) return parts.error();
  StopMessage m;
  m.type = static_cast<StopMessageType>(parts->type);
  m.peer = std::move(parts->peer);
  m.limit = std::move(parts->limit);
  m.status = parts->status;
  return m;
}

}  // namespace punchgate
