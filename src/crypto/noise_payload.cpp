#include "crypto/noise_payload.hpp"

#include "punchgate/wire/protobuf_bounds.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <cstdint>

namespace punchgate {
namespace {

enum PayloadField : uint32_t { kIdentityKey = 1, kIdentitySig = 2, kExtensions = 4 };
enum ExtensionsField : uint32_t { kCerthashes = 1, kStreamMuxers = 2 };

// No payload can be larger than the Noise message that carries it.
constexpr size_t kMaxPayloadSize = 65535;

BytesView as_view(protozero::data_view v) { return BytesView(v.data(), v.size()); }

Status check_size(const char* what, size_t size, size_t max) {
  if (size > max) return make_error("noise payload {} of {} bytes exceeds limit of {}", what, size, max);
  return {};
}

// Walks one (sub)message whose known fields are all length-delimited. `on_field(tag, value)`
// returns false for unknown tags, which are skipped whatever their wire type. Bounds are checked
// before protozero reads (it narrows keys and lengths to 32 bits); protozero exceptions reach decode().
template <typename OnField>
Status walk(const char* what, BytesView msg, OnField&& on_field) {
  protozero::pbf_reader r(msg.data(), msg.size());
  auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
  while (true) {
    if (!protobuf_key_fits(rest())) return make_error("noise {} field key out of range", what);
    if (!r.next()) break;
    const bool delimited = r.wire_type() == protozero::pbf_wire_type::length_delimited;
    if (delimited && !protobuf_length_fits(rest()))
      return make_error("noise {} field {} runs past the end of the message", what, r.tag());
    const uint32_t tag = r.tag();
    if (!delimited) {
      // Every field we know is bytes/string/message; a known tag with another type is malformed.
      Result<bool> known = on_field(tag, std::optional<BytesView>{});
      if (!known) return known.error();
      if (*known) return make_error("noise {} field {} has the wrong wire type", what, tag);
      r.skip();
      continue;
    }
    BytesView value = as_view(r.get_view());
    Result<bool> handled = on_field(tag, std::optional<BytesView>{value});
    if (!handled) return handled.error();
  }
  return {};
}

Status decode_extensions(BytesView in, NoiseExtensions& ext) {
  return walk("extensions", in, [&ext](uint32_t tag, std::optional<BytesView> v) -> Result<bool> {
    if (tag != kCerthashes && tag != kStreamMuxers) return false;
    if (!v) return true;  // known tag, wrong wire type: walk() reports it
    if (tag == kCerthashes) {
      if (ext.webtransport_certhashes.size() == kMaxNoiseCerthashes)
        return make_error("noise payload lists more than {} webtransport certhashes", kMaxNoiseCerthashes);
      PG_TRY(check_size("webtransport certhash", v->size(), kMaxNoiseCerthashSize));
      ext.webtransport_certhashes.emplace_back(*v);
    } else {
      if (ext.stream_muxers.size() == kMaxNoiseStreamMuxers)
        return make_error("noise payload lists more than {} stream muxers", kMaxNoiseStreamMuxers);
      PG_TRY(check_size("stream muxer", v->size(), kMaxNoiseStreamMuxerSize));
      ext.stream_muxers.emplace_back(*v);
    }
    return true;
  });
}

}  // namespace

Bytes NoiseHandshakePayload::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_bytes(kIdentityKey, identity_key);
  w.add_bytes(kIdentitySig, identity_sig);
  if (extensions) {
    Bytes ext;
    protozero::pbf_writer we(ext);
    for (const auto& h : extensions->webtransport_certhashes) we.add_bytes(kCerthashes, h);
    for (const auto& m : extensions->stream_muxers) we.add_string(kStreamMuxers, m);
    w.add_message(kExtensions, ext);
  }
  return out;
}

Result<NoiseHandshakePayload> NoiseHandshakePayload::decode(BytesView protobuf) {
  PG_TRY(check_size("message", protobuf.size(), kMaxPayloadSize));
  NoiseHandshakePayload p;
  bool have_key = false, have_sig = false;
  try {
    Status s = walk("payload", protobuf, [&](uint32_t tag, std::optional<BytesView> v) -> Result<bool> {
      if (tag != kIdentityKey && tag != kIdentitySig && tag != kExtensions) return false;
      if (!v) return true;
      switch (tag) {
        case kIdentityKey:
          PG_TRY(check_size("identity_key", v->size(), kMaxNoiseIdentityKeySize));
          p.identity_key = Bytes(*v);
          have_key = true;
          break;
        case kIdentitySig:
          PG_TRY(check_size("identity_sig", v->size(), kMaxNoiseIdentitySigSize));
          p.identity_sig = Bytes(*v);
          have_sig = true;
          break;
        default:
          if (!p.extensions) p.extensions.emplace();
          PG_TRY(decode_extensions(*v, *p.extensions));
          break;
      }
      return true;
    });
    if (!s) return s.error();
  } catch (const protozero::exception& e) {
    return make_error("malformed noise payload: {}", e.what());
  }
  if (!have_key) return make_error("noise payload has no identity_key");
  if (!have_sig) return make_error("noise payload has no identity_sig");
  return p;
}

}  // namespace punchgate
