#include "punchgate/kad/kad_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/protobuf_bounds.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <cstdint>
#include <optional>
#include <utility>

namespace punchgate {

namespace {

enum MessageField : uint32_t {
  kType = 1,
  kKey = 2,
  kRecord = 3,
  kCloserPeers = 8,
  kProviderPeers = 9,
  kClusterLevelRaw = 10,
};
enum RecordField : uint32_t { kRecordKey = 1, kRecordValue = 2, kRecordTimeReceived = 5 };
enum PeerField : uint32_t { kPeerId = 1, kPeerAddrs = 2, kPeerConnection = 3 };

// RFC 3339 with nanoseconds is ~35 characters; anything much longer is not a timestamp.
constexpr size_t kMaxTimeReceivedSize = 128;


Status check_size(const char* what, size_t size, size_t max) {
  if (size > max) return make_error("kad {} of {} bytes exceeds limit of {}", what, size, max);
  return {};
}

const char* wire_type_name(protozero::pbf_wire_type t) {
  switch (t) {
    case protozero::pbf_wire_type::varint: return "varint";
    case protozero::pbf_wire_type::fixed64: return "fixed64";
    case protozero::pbf_wire_type::length_delimited: return "length-delimited";
    case protozero::pbf_wire_type::fixed32: return "fixed32";
    default: return "unknown";
  }
}

// Walks the fields of one (sub)message. `on_field(reader, tag)` handles a field it knows and
// returns false for unknown ones, which are skipped. Wire types are checked before any protozero
// getter runs, which also keeps protozero's debug asserts quiet. protozero exceptions propagate
// to decode(), which catches them.
template <typename OnField>
Status walk(const char* what, BytesView msg, OnField&& on_field) {
  protozero::pbf_reader r(msg.data(), msg.size());
  auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
  while (true) {
    if (!protobuf_key_fits(rest())) return make_error("kad {} field key out of range", what);
    if (!r.next()) break;
    if (r.wire_type() == protozero::pbf_wire_type::length_delimited && !protobuf_length_fits(rest())) {
      return make_error("kad {} field {} runs past the end of the message", what, r.tag());
    }
    Result<bool> handled = on_field(r, r.tag());
    if (!handled) return handled.error();
    if (!*handled) r.skip();
  }
  return {};
}

Status expect_wire(const char* what, const protozero::pbf_reader& r, protozero::pbf_wire_type want) {
  if (r.wire_type() == want) return {};
  return make_error("kad {} field {} has wire type {}, expected {}", what, r.tag(), wire_type_name(r.wire_type()),
                    wire_type_name(want));
}

BytesView as_view(protozero::data_view v) { return BytesView(v.data(), v.size()); }

// Proto3 merge semantics: a repeated occurrence of the record field merges into what came before.
Status decode_record(BytesView in, KadRecord& rec) {
  return walk("record", in, [&rec](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    if (tag != kRecordKey && tag != kRecordValue && tag != kRecordTimeReceived) return false;
    PG_TRY(expect_wire("record", r, protozero::pbf_wire_type::length_delimited));
    BytesView v = as_view(r.get_view());
    switch (tag) {
      case kRecordKey:
        PG_TRY(check_size("record key", v.size(), kMaxKadKeySize));
        rec.key = Bytes(v);
        break;
      case kRecordValue:
        PG_TRY(check_size("record value", v.size(), kMaxKadRecordValueSize));
        rec.value = Bytes(v);
        break;
      default:
        PG_TRY(check_size("record timeReceived", v.size(), kMaxTimeReceivedSize));
        rec.time_received = std::string(v);
        break;
    }
    return true;
  });
}

Result<KadPeer> decode_peer(BytesView in) {
  KadPeer peer;
  Status s = walk("peer", in, [&peer](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
    switch (tag) {
      case kPeerId: {
        PG_TRY(expect_wire("peer", r, protozero::pbf_wire_type::length_delimited));
        BytesView v = as_view(r.get_view());
        PG_TRY(check_size("peer id", v.size(), kMaxKadPeerIdSize));
        peer.id = Bytes(v);
        return true;
      }
      case kPeerAddrs: {
        PG_TRY(expect_wire("peer", r, protozero::pbf_wire_type::length_delimited));
        BytesView v = as_view(r.get_view());
        PG_TRY(check_size("peer addr", v.size(), kMaxKadAddrSize));
        if (peer.addrs.size() == kMaxKadAddrsPerPeer) {
          return make_error("kad peer lists more than {} addrs", kMaxKadAddrsPerPeer);
        }
        peer.addrs.emplace_back(v);
        return true;
      }
      case kPeerConnection: {
        PG_TRY(expect_wire("peer", r, protozero::pbf_wire_type::varint));
        const int32_t c = r.get_enum();
        // Lenient: a newer peer may know more connection states; to us they mean "unknown".
        peer.connection = (c >= 0 && c <= static_cast<int32_t>(KadConnectionType::CannotConnect))
                              ? static_cast<KadConnectionType>(c)
                              : KadConnectionType::NotConnected;
        return true;
      }
      default:
        return false;
    }
  });
  if (!s) return s.error();
  return peer;
}

Bytes encode_record(const KadRecord& rec) {
  Bytes out;
  protozero::pbf_writer w(out);
  if (!rec.key.empty()) w.add_bytes(kRecordKey, rec.key);
  if (!rec.value.empty()) w.add_bytes(kRecordValue, rec.value);
  if (!rec.time_received.empty()) w.add_string(kRecordTimeReceived, rec.time_received);
  return out;
}

Bytes encode_peer(const KadPeer& peer) {
  Bytes out;
  protozero::pbf_writer w(out);
  if (!peer.id.empty()) w.add_bytes(kPeerId, peer.id);
  for (const auto& a : peer.addrs) w.add_bytes(kPeerAddrs, a);
  if (peer.connection != KadConnectionType::NotConnected) {
    w.add_enum(kPeerConnection, static_cast<int32_t>(peer.connection));
  }
  return out;
}

}  // namespace

const char* to_string(KadMessageType t) {
  switch (t) {
    case KadMessageType::PutValue: return "PUT_VALUE";
    case KadMessageType::GetValue: return "GET_VALUE";
    case KadMessageType::AddProvider: return "ADD_PROVIDER";
    case KadMessageType::GetProviders: return "GET_PROVIDERS";
    case KadMessageType::FindNode: return "FIND_NODE";
    case KadMessageType::Ping: return "PING";
  }
  return "UNKNOWN";
}

Bytes KadMessage::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_enum(kType, static_cast<int32_t>(type));
  if (!key.empty()) w.add_bytes(kKey, key);
  if (record) w.add_message(kRecord, encode_record(*record));
  for (const auto& p : closer_peers) w.add_message(kCloserPeers, encode_peer(p));
  for (const auto& p : provider_peers) w.add_message(kProviderPeers, encode_peer(p));
  if (cluster_level_raw != 0) w.add_int32(kClusterLevelRaw, cluster_level_raw);
  return out;
}

Bytes KadMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<KadMessage> KadMessage::decode(BytesView protobuf) {
  PG_TRY(check_size("message", protobuf.size(), kMaxKadMessageSize));
  KadMessage m;
  // Proto3: an absent enum is its zero value. go-libp2p omits type for PUT_VALUE.
  m.type = KadMessageType::PutValue;
  try {
    Status s = walk("message", protobuf, [&m](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
      switch (tag) {
        case kType: {
          PG_TRY(expect_wire("message", r, protozero::pbf_wire_type::varint));
          const int32_t t = r.get_enum();
          if (t < 0 || t > static_cast<int32_t>(KadMessageType::Ping)) {
            return make_error("kad message has unknown type {}", t);
          }
          m.type = static_cast<KadMessageType>(t);
          return true;
        }
        case kClusterLevelRaw:
          PG_TRY(expect_wire("message", r, protozero::pbf_wire_type::varint));
          m.cluster_level_raw = r.get_int32();
          return true;
        case kKey: {
          PG_TRY(expect_wire("message", r, protozero::pbf_wire_type::length_delimited));
          BytesView v = as_view(r.get_view());
          PG_TRY(check_size("key", v.size(), kMaxKadKeySize));
          m.key = Bytes(v);
          return true;
        }
        case kRecord: {
          PG_TRY(expect_wire("message", r, protozero::pbf_wire_type::length_delimited));
          BytesView v = as_view(r.get_view());
          if (!m.record) m.record.emplace();
          PG_TRY(decode_record(v, *m.record));
          return true;
        }
        case kCloserPeers:
        case kProviderPeers: {
          PG_TRY(expect_wire("message", r, protozero::pbf_wire_type::length_delimited));
          auto& list = tag == kCloserPeers ? m.closer_peers : m.provider_peers;
          // Counted before decoding so a hostile list stops early.
          if (list.size() == kMaxKadPeersPerMessage) {
            return make_error("kad message lists more than {} {}", kMaxKadPeersPerMessage,
                              tag == kCloserPeers ? "closerPeers" : "providerPeers");
          }
          auto peer = decode_peer(as_view(r.get_view()));
          if (!peer) return peer.error();
          list.push_back(std::move(peer).value());
          return true;
        }
        default:
          return false;
      }
    });
    if (!s) return s.error();
  } catch (const protozero::exception& e) {
    return make_error("malformed kad message: {}", e.what());
  }
  return m;
}

}  // namespace punchgate
