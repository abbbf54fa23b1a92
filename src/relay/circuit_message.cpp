#include "relay/circuit_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/protobuf_bounds.hpp"

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
constexpr TopFields kHopFields{"hop message", 1, 2, 3, 4, 5, static_cast<int32_t>(HopMessageType::StatusReply)};
constexpr TopFields kStopFields{"stop message", 1, 2, 0, 3, 4, static_cast<int32_t>(StopMessageType::StatusReply)};

// Both messages decoded into one shape, then copied out.
struct TopParts {
  int32_t type = 0;  // proto3 zero value when absent (go-libp2p omits RESERVE / CONNECT)
  std::optional<CircuitPeer> peer;
  std::optional<CircuitReservation> reservation;
  std::optional<CircuitLimit> limit;
  std::optional<CircuitStatus> status;
};

const char* wire_type_name(protozero::pbf_wire_type t) {
  switch (t) {
    case protozero::pbf_wire_type::varint: return "varint";
    case protozero::pbf_wire_type::fixed64: return "fixed64";
    case protozero::pbf_wire_type::length_delimited: return "length-delimited";
    case protozero::pbf_wire_type::fixed32: return "fixed32";
    default: return "unknown";
  }
}

BytesView as_view(protozero::data_view v) { return BytesView(v.data(), v.size()); }

// Walks the fields of one (sub)message. `on_field(reader, tag)` handles a known field and returns
// false for unknown ones, which are skipped. Key and length bounds are checked before protozero
// reads them (it narrows both to 32 bits); protozero exceptions propagate to the caller of decode.
template <typename OnField>
Status walk(const char* what, BytesView msg, OnField&& on_field) {
  protozero::pbf_reader r(msg.data(), msg.size());
  auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
  while (true) {
    if (!protobuf_key_fits(rest())) return make_error("circuit {} field key out of range", what);
    if (!r.next()) break;
    if (r.wire_type() == protozero::pbf_wire_type::length_delimited && !protobuf_length_fits(rest()))
      return make_error("circuit {} field {} runs past the end of the message", what, r.tag());
    Result<bool> handled = on_field(r, r.tag());
    if (!handled) return handled.error();
    if (!*handled) r.skip();
  }
  return {};
}

Status expect_wire(const char* what, const protozero::pbf_reader& r, protozero::pbf_wire_type want) {
  if (r.wire_type() == want) return {};
  return make_error("circuit {} field {} has wire type {}, expected {}", what, r.tag(), wire_type_name(r.wire_type()),
                    wire_type_name(want));
}

Result<BytesView> read_bytes(const char* what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::length_delimited));
  return as_view(r.get_view());
}

Result<uint64_t> read_varint(const char* what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::varint));
  return r.get_uint64();
}

// Enums are int32 on the wire; negative ones arrive sign-extended to 64 bits.
Result<int32_t> read_enum(const char* what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::varint));
  const int64_t v = r.get_int64();
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    return make_error("circuit {} field {} value {} is out of the int32 enum range", what, r.tag(), v);
  return static_cast<int32_t>(v);
}

Status add_addr(const char* what, std::vector<Bytes>& addrs, BytesView v) {
  // Counted before copying so a hostile list stops early.
  if (addrs.size() == kMaxCircuitAddrs) return make_error("circuit {} lists more than {} addrs", what, kMaxCircuitAddrs);
  if (v.size() > kMaxCircuitAddrSize)
    return make_error("circuit {} addr of {} bytes exceeds limit of {}", what, v.size(), kMaxCircuitAddrSize);
  addrs.emplace_back(v);
  return {};
}

// Sub-message decoders merge into `out`, as protobuf does for a repeated sub-message field.
Status decode_peer(BytesView in, CircuitPeer& out) {
  return walk("peer", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kPeerId && tag != kPeerAddrs) return false;
    auto v = read_bytes("peer", r);
    if (!v) return v.error();
    if (tag == kPeerAddrs) {
      PG_TRY(add_addr("peer", out.addrs, *v));
      return true;
    }
    if (v->size() > kMaxCircuitPeerIdSize)
      return make_error("circuit peer id of {} bytes exceeds limit of {}", v->size(), kMaxCircuitPeerIdSize);
    out.id = Bytes(*v);
    return true;
  });
}

Status decode_reservation(BytesView in, CircuitReservation& out) {
  return walk("reservation", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    switch (tag) {
      case kReservationExpire: {
        auto v = read_varint("reservation", r);
        if (!v) return v.error();
        out.expire = *v;
        return true;
      }
      case kReservationAddrs: {
        auto v = read_bytes("reservation", r);
        if (!v) return v.error();
        PG_TRY(add_addr("reservation", out.addrs, *v));
        return true;
      }
      case kReservationVoucher: {
        auto v = read_bytes("reservation", r);
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
  return walk("limit", in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kLimitDuration && tag != kLimitData) return false;
    auto v = read_varint("limit", r);
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
    return make_error("circuit {} of {} bytes exceeds limit of {}", f.what, protobuf.size(), kMaxCircuitMessageSize);
  TopParts m;
  try {
    Status s = walk(f.what, protobuf, [&](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
      if (tag == f.type) {
        auto t = read_enum(f.what, r);
        if (!t) return t.error();
        if (*t < 0 || *t > f.max_type) return make_error("circuit {} has unknown type {}", f.what, *t);
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
    return make_error("malformed circuit {}: {}", f.what, e.what());
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
