#include "autonat/autonat_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/protobuf_fields.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_writer.hpp>

namespace punchgate {

namespace {

enum MessageField : uint32_t { kType = 1, kDial = 2, kDialResponse = 3 };
enum DialField : uint32_t { kDialPeer = 1 };
enum PeerField : uint32_t { kPeerId = 1, kPeerAddrs = 2 };
enum ResponseField : uint32_t { kStatus = 1, kStatusText = 2, kAddr = 3 };

constexpr std::string_view kWhat = "autonat message";
constexpr std::string_view kWhatDial = "autonat dial";
constexpr std::string_view kWhatPeer = "autonat peer info";
constexpr std::string_view kWhatResponse = "autonat dial response";

using protobuf::read_bytes;
using protobuf::read_enum;
using protobuf::walk;

bool known_status(int32_t v) {
  switch (static_cast<AutonatStatus>(v)) {
    case AutonatStatus::Ok:
    case AutonatStatus::DialError:
    case AutonatStatus::DialRefused:
    case AutonatStatus::BadRequest:
    case AutonatStatus::InternalError: return true;
  }
  return false;
}

Status decode_peer(BytesView in, AutonatPeerInfo& out) {
  return walk(kWhatPeer, in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kPeerId && tag != kPeerAddrs) return false;
    auto v = read_bytes(kWhatPeer, r);
    if (!v) return v.error();
    if (tag == kPeerId) {
      if (v->size() > kMaxAutonatPeerIdSize)
        return make_error("{} id of {} bytes exceeds limit of {}", kWhatPeer, v->size(), kMaxAutonatPeerIdSize);
      out.id = Bytes(*v);
      return true;
    }
    // Counted before copying so a hostile list stops early.
    if (out.addrs.size() == kMaxAutonatAddrs)
      return make_error("{} lists more than {} addrs", kWhatPeer, kMaxAutonatAddrs);
    if (v->size() > kMaxMultiaddrBytes)
      return make_error("{} addr of {} bytes exceeds limit of {}", kWhatPeer, v->size(), kMaxMultiaddrBytes);
    out.addrs.emplace_back(*v);
    return true;
  });
}

Status decode_dial(BytesView in, AutonatDial& out) {
  return walk(kWhatDial, in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kDialPeer) return false;
    auto v = read_bytes(kWhatDial, r);
    if (!v) return v.error();
    PG_TRY(decode_peer(*v, out.peer ? *out.peer : out.peer.emplace()));
    return true;
  });
}

Status decode_response(BytesView in, AutonatDialResponse& out) {
  return walk(kWhatResponse, in, [&out](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    switch (tag) {
      case kStatus: {
        auto s = read_enum(kWhatResponse, r);
        if (!s) return s.error();
        if (!known_status(*s)) return make_error("{} has unknown status {}", kWhatResponse, *s);
        out.status = static_cast<AutonatStatus>(*s);
        return true;
      }
      case kStatusText: {
        auto v = read_bytes(kWhatResponse, r);
        if (!v) return v.error();
        if (v->size() > kMaxAutonatStatusTextSize)
          return make_error("{} status text of {} bytes exceeds limit of {}", kWhatResponse, v->size(),
                            kMaxAutonatStatusTextSize);
        out.status_text = std::string(*v);
        return true;
      }
      case kAddr: {
        auto v = read_bytes(kWhatResponse, r);
        if (!v) return v.error();
        if (v->size() > kMaxMultiaddrBytes)
          return make_error("{} addr of {} bytes exceeds limit of {}", kWhatResponse, v->size(), kMaxMultiaddrBytes);
        out.addr = Bytes(*v);
        return true;
      }
      default: return false;
    }
  });
}

}  // namespace

const char* to_string(AutonatType t) { return t == AutonatType::Dial ? "DIAL" : "DIAL_RESPONSE"; }

const char* to_string(AutonatStatus s) {
  switch (s) {
    case AutonatStatus::Ok: return "OK";
    case AutonatStatus::DialError: return "E_DIAL_ERROR";
    case AutonatStatus::DialRefused: return "E_DIAL_REFUSED";
    case AutonatStatus::BadRequest: return "E_BAD_REQUEST";
    case AutonatStatus::InternalError: return "E_INTERNAL_ERROR";
  }
  return "UNKNOWN";
}

AutonatMessage AutonatMessage::dial_request(const PeerId& peer, const std::vector<Multiaddr>& addrs) {
  AutonatPeerInfo info;
  info.id = peer.bytes();
  for (const Multiaddr& a : addrs) {
    if (info.addrs.size() == kMaxAutonatAddrs) break;
    info.addrs.push_back(a.to_bytes());
  }
  AutonatMessage m;
  m.type = AutonatType::Dial;
  m.dial = AutonatDial{std::move(info)};
  return m;
}

AutonatMessage AutonatMessage::response(AutonatStatus status, std::string text, std::optional<Multiaddr> addr) {
  if (text.size() > kMaxAutonatStatusTextSize) text.resize(kMaxAutonatStatusTextSize);
  AutonatDialResponse r;
  r.status = status;
  r.status_text = std::move(text);
  if (addr) r.addr = addr->to_bytes();
  AutonatMessage m;
  m.type = AutonatType::DialResponse;
  m.dial_response = std::move(r);
  return m;
}

Bytes AutonatMessage::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  if (type) w.add_enum(kType, static_cast<int32_t>(*type));
  if (dial) {
    Bytes d;
    protozero::pbf_writer dw(d);
    if (dial->peer) {
      Bytes p;
      protozero::pbf_writer pw(p);
      if (dial->peer->id) pw.add_bytes(kPeerId, *dial->peer->id);
      for (const Bytes& a : dial->peer->addrs) pw.add_bytes(kPeerAddrs, a);
      dw.add_message(kDialPeer, p);
    }
    w.add_message(kDial, d);
  }
  if (dial_response) {
    Bytes r;
    protozero::pbf_writer rw(r);
    if (dial_response->status) rw.add_enum(kStatus, static_cast<int32_t>(*dial_response->status));
    if (dial_response->status_text) rw.add_string(kStatusText, *dial_response->status_text);
    if (dial_response->addr) rw.add_bytes(kAddr, *dial_response->addr);
    w.add_message(kDialResponse, r);
  }
  return out;
}

Bytes AutonatMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<AutonatMessage> AutonatMessage::decode(BytesView protobuf) {
  if (protobuf.size() > kMaxAutonatMessageSize) {
    return make_error("{} of {} bytes exceeds limit of {}", kWhat, protobuf.size(), kMaxAutonatMessageSize);
  }
  AutonatMessage m;
  try {
    Status s = walk(kWhat, protobuf, [&m](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
      switch (tag) {
        case kType: {
          auto t = read_enum(kWhat, r);
          if (!t) return t.error();
          if (*t != static_cast<int32_t>(AutonatType::Dial) && *t != static_cast<int32_t>(AutonatType::DialResponse))
            return make_error("{} has unknown type {}", kWhat, *t);
          m.type = static_cast<AutonatType>(*t);
          return true;
        }
        case kDial: {
          auto v = read_bytes(kWhat, r);
          if (!v) return v.error();
          PG_TRY(decode_dial(*v, m.dial ? *m.dial : m.dial.emplace()));
          return true;
        }
        case kDialResponse: {
          auto v = read_bytes(kWhat, r);
          if (!v) return v.error();
          PG_TRY(decode_response(*v, m.dial_response ? *m.dial_response : m.dial_response.emplace()));
          return true;
        }
        default: return false;
      }
    });
    if (!s) return s.error();
  } catch (const protozero::exception& e) {
    return make_error("malformed {}: {}", kWhat, e.what());
  }
  return m;
}

}  // namespace punchgate
