#include "punchgate/host/identify_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/protobuf_bounds.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

namespace punchgate {

namespace {

enum Field : uint32_t {
  kPublicKey = 1,
  kListenAddrs = 2,
  kProtocols = 3,
  kObservedAddr = 4,
  kProtocolVersion = 5,
  kAgentVersion = 6,
  kSignedPeerRecord = 8,
};

Status check_size(const char* what, size_t size, size_t max) {
  if (size > max) return make_error("identify {} of {} bytes exceeds limit of {}", what, size, max);
  return {};
}

Status check_caps(const IdentifyMessage& m) {
  if (m.protocol_version) PG_TRY(check_size("protocolVersion", m.protocol_version->size(), kMaxIdentifyVersionSize));
  if (m.agent_version) PG_TRY(check_size("agentVersion", m.agent_version->size(), kMaxIdentifyVersionSize));
  if (m.public_key) PG_TRY(check_size("publicKey", m.public_key->size(), kMaxIdentifyPublicKeySize));
  if (m.observed_addr) PG_TRY(check_size("observedAddr", m.observed_addr->size(), kMaxIdentifyAddrSize));
  if (m.signed_peer_record) {
    PG_TRY(check_size("signedPeerRecord", m.signed_peer_record->size(), kMaxIdentifyMessageSize));
  }
  if (m.listen_addrs.size() > kMaxIdentifyListenAddrs) {
    return make_error("identify lists {} listenAddrs, limit is {}", m.listen_addrs.size(), kMaxIdentifyListenAddrs);
  }
  for (const auto& a : m.listen_addrs) PG_TRY(check_size("listenAddr", a.size(), kMaxIdentifyAddrSize));
  if (m.protocols.size() > kMaxIdentifyProtocols) {
    return make_error("identify lists {} protocols, limit is {}", m.protocols.size(), kMaxIdentifyProtocols);
  }
  for (const auto& p : m.protocols) PG_TRY(check_size("protocol", p.size(), kMaxIdentifyProtocolSize));
  return {};
}


}  // namespace

Bytes IdentifyMessage::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  if (public_key) w.add_bytes(kPublicKey, *public_key);
  for (const auto& a : listen_addrs) w.add_bytes(kListenAddrs, a);
  for (const auto& p : protocols) w.add_string(kProtocols, p);
  if (observed_addr) w.add_bytes(kObservedAddr, *observed_addr);
  if (protocol_version) w.add_string(kProtocolVersion, *protocol_version);
  if (agent_version) w.add_string(kAgentVersion, *agent_version);
  if (signed_peer_record) w.add_bytes(kSignedPeerRecord, *signed_peer_record);
  return out;
}

Bytes IdentifyMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<IdentifyMessage> IdentifyMessage::decode(BytesView protobuf) {
  PG_TRY(check_size("message", protobuf.size(), kMaxIdentifyMessageSize));
  IdentifyMessage m;
  try {
    protozero::pbf_reader r(protobuf.data(), protobuf.size());
    auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
    while (true) {
      if (!protobuf_key_fits(rest())) return make_error("identify field key out of range");
      if (!r.next()) break;
      const uint32_t tag = r.tag();
      if (r.wire_type() == protozero::pbf_wire_type::length_delimited &&
          !protobuf_length_fits(rest())) {
        return make_error("identify field {} runs past the end of the message", tag);
      }
      const bool known = tag == kPublicKey || tag == kListenAddrs || tag == kProtocols || tag == kObservedAddr ||
                         tag == kProtocolVersion || tag == kAgentVersion || tag == kSignedPeerRecord;
      if (!known) {
        r.skip();
        continue;
      }
      // Every known field is bytes/string; checking first also keeps protozero's asserts quiet.
      if (r.wire_type() != protozero::pbf_wire_type::length_delimited) {
        return make_error("identify field {} has wire type {}, expected length-delimited", tag,
                          static_cast<int>(r.wire_type()));
      }
      const protozero::data_view v = r.get_view();
      BytesView value(v.data(), v.size());
      // Caps are checked per entry as we go so a hostile list stops early.
      switch (tag) {
        case kPublicKey:
          PG_TRY(check_size("publicKey", value.size(), kMaxIdentifyPublicKeySize));
          m.public_key = Bytes(value);
          break;
        case kListenAddrs:
          PG_TRY(check_size("listenAddr", value.size(), kMaxIdentifyAddrSize));
          if (m.listen_addrs.size() == kMaxIdentifyListenAddrs) {
            return make_error("identify lists more than {} listenAddrs", kMaxIdentifyListenAddrs);
          }
          m.listen_addrs.emplace_back(value);
          break;
        case kProtocols:
          PG_TRY(check_size("protocol", value.size(), kMaxIdentifyProtocolSize));
          if (m.protocols.size() == kMaxIdentifyProtocols) {
            return make_error("identify lists more than {} protocols", kMaxIdentifyProtocols);
          }
          m.protocols.emplace_back(value);
          break;
        case kObservedAddr:
          PG_TRY(check_size("observedAddr", value.size(), kMaxIdentifyAddrSize));
          m.observed_addr = Bytes(value);
          break;
        case kProtocolVersion:
          PG_TRY(check_size("protocolVersion", value.size(), kMaxIdentifyVersionSize));
          m.protocol_version = std::string(value);
          break;
        case kAgentVersion:
          PG_TRY(check_size("agentVersion", value.size(), kMaxIdentifyVersionSize));
          m.agent_version = std::string(value);
          break;
        case kSignedPeerRecord:
          m.signed_peer_record = Bytes(value);
          break;
        default:
          break;
      }
    }
  } catch (const protozero::exception& e) {
    return make_error("malformed identify message: {}", e.what());
  }
  return m;
}

Result<IdentifyMessage> IdentifyMessage::decode_stream(BytesView stream) {
  PG_TRY(check_size("stream", stream.size(), kMaxIdentifyStreamSize));
  if (stream.empty()) return make_error("identify stream closed without a message");
  UvarintFrameReader reader(kMaxIdentifyMessageSize);
  IdentifyMessage merged;
  size_t count = 0;
  while (true) {
    auto frame = reader.next();
    if (!frame) return frame.error();
    if (frame->has_value()) {
      // Counted as they appear so a stream of empty frames is refused early.
      if (++count > kMaxIdentifyStreamMessages) {
        return make_error("identify stream carries more than {} messages", kMaxIdentifyStreamMessages);
      }
      auto part = decode(**frame);
      if (!part) return part.error();
      PG_TRY(merged.merge_from(*part));
      continue;
    }
    if (stream.empty()) break;
    size_t take = std::min(stream.size(), reader.capacity() - reader.buffered());
    PG_TRY(reader.feed(stream.substr(0, take)));
    stream.remove_prefix(take);
  }
  if (!reader.idle()) return make_error("identify stream ends inside a message");
  return merged;
}

Status IdentifyMessage::merge_from(const IdentifyMessage& other) {
  IdentifyMessage next = *this;
  if (other.protocol_version) next.protocol_version = other.protocol_version;
  if (other.agent_version) next.agent_version = other.agent_version;
  if (other.public_key) next.public_key = other.public_key;
  if (other.observed_addr) next.observed_addr = other.observed_addr;
  if (other.signed_peer_record) next.signed_peer_record = other.signed_peer_record;
  next.listen_addrs.insert(next.listen_addrs.end(), other.listen_addrs.begin(), other.listen_addrs.end());
  next.protocols.insert(next.protocols.end(), other.protocols.begin(), other.protocols.end());
  PG_TRY(check_caps(next));
  *this = std::move(next);
  return {};
}

}  // namespace punchgate
