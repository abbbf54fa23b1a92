#include "holepunch/dcutr_message.hpp"

#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/multiaddr.hpp"
#include "punchgate/wire/protobuf_fields.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_writer.hpp>

#include <optional>

namespace punchgate {

namespace {
enum Field : uint32_t { kType = 1, kObsAddrs = 2 };
constexpr std::string_view kWhat = "dcutr message";
}  // namespace

const char* to_string(DcutrType t) { return t == DcutrType::Connect ? "CONNECT" : "SYNC"; }

Bytes DcutrMessage::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_enum(kType, static_cast<int32_t>(type));
  for (const Bytes& a : obs_addrs) w.add_bytes(kObsAddrs, a);
  return out;
}

Bytes DcutrMessage::encode_framed() const { return frame_uvarint(encode()); }

Result<DcutrMessage> DcutrMessage::decode(BytesView protobuf) {
  if (protobuf.size() > kMaxDcutrMessageSize) {
    return make_error("{} of {} bytes exceeds limit of {}", kWhat, protobuf.size(), kMaxDcutrMessageSize);
  }
  DcutrMessage m;
  std::optional<int32_t> type;
  try {
    Status s = protobuf::walk(kWhat, protobuf, [&](protozero::pbf_reader& r, uint32_t tag) -> Result<bool> {
      if (tag == kType) {
        auto t = protobuf::read_enum(kWhat, r);
        if (!t) return t.error();
        type = *t;
        return true;
      }
      if (tag != kObsAddrs) return false;
      auto v = protobuf::read_bytes(kWhat, r);
      if (!v) return v.error();
      if (m.obs_addrs.size() == kMaxDcutrAddrs) return make_error("{} lists more than {} addrs", kWhat, kMaxDcutrAddrs);
      if (v->size() > kMaxMultiaddrBytes) {
        return make_error("{} addr of {} bytes exceeds limit of {}", kWhat, v->size(), kMaxMultiaddrBytes);
      }
      m.obs_addrs.emplace_back(*v);
      return true;
    });
    if (!s) return s.error();
  } catch (const protozero::exception& e) {
    return make_error("malformed {}: {}", kWhat, e.what());
  }
  if (!type) return make_error("{} has no type", kWhat);
  if (*type != static_cast<int32_t>(DcutrType::Connect) && *type != static_cast<int32_t>(DcutrType::Sync)) {
    return make_error("{} has unknown type {}", kWhat, *type);
  }
  m.type = static_cast<DcutrType>(*type);
  return m;
}

}  // namespace punchgate
