#include "crypto/signed_envelope.hpp"

#include "punchgate/wire/protobuf_bounds.hpp"
#include "punchgate/wire/varint.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <cstdint>

namespace punchgate {
namespace {

enum EnvelopeField : uint32_t { kPublicKey = 1, kPayloadType = 2, kPayload = 3, kSignature = 5 };

BytesView as_view(protozero::data_view v) { return BytesView(v.data(), v.size()); }

Status check_size(const char* what, size_t size, size_t max) {
  if (size > max) return make_error("signed envelope {} of {} bytes exceeds limit of {}", what, size, max);
  return {};
}

}  // namespace

Bytes SignedEnvelope::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_bytes(kPublicKey, public_key);
  if (!payload_type.empty()) w.add_bytes(kPayloadType, payload_type);
  if (!payload.empty()) w.add_bytes(kPayload, payload);
  w.add_bytes(kSignature, signature);
  return out;
}

Result<SignedEnvelope> SignedEnvelope::decode(BytesView protobuf) {
  PG_TRY(check_size("message", protobuf.size(), kMaxSignedEnvelopeSize));
  SignedEnvelope env;
  try {
    protozero::pbf_reader r(protobuf.data(), protobuf.size());
    auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
    while (true) {
      // protozero narrows keys and lengths to 32 bits; check before it reads them.
      if (!protobuf_key_fits(rest())) return make_error("signed envelope field key out of range");
      if (!r.next()) break;
      const uint32_t tag = r.tag();
      const bool known = tag == kPublicKey || tag == kPayloadType || tag == kPayload || tag == kSignature;
      const bool delimited = r.wire_type() == protozero::pbf_wire_type::length_delimited;
      if (delimited && !protobuf_length_fits(rest()))
        return make_error("signed envelope field {} runs past the end of the message", tag);
      if (!known) {
        r.skip();
        continue;
      }
      if (!delimited) return make_error("signed envelope field {} is not length-delimited", tag);
      const BytesView v = as_view(r.get_view());
      switch (tag) {
        case kPublicKey:
          PG_TRY(check_size("public_key", v.size(), kMaxEnvelopePublicKeySize));
          env.public_key = Bytes(v);
          break;
        case kPayloadType:
          PG_TRY(check_size("payload_type", v.size(), kMaxEnvelopePayloadTypeSize));
          env.payload_type = Bytes(v);
          break;
        case kPayload:
          env.payload = Bytes(v);  // bounded by the message cap
          break;
        default:
          PG_TRY(check_size("signature", v.size(), kMaxEnvelopeSignatureSize));
          env.signature = Bytes(v);
          break;
      }
    }
  } catch (const protozero::exception& e) {
    return make_error("malformed signed envelope: {}", e.what());
  }
  if (env.public_key.empty()) return make_error("signed envelope has no public_key");
  if (env.signature.empty()) return make_error("signed envelope has no signature");
  return env;
}

Bytes envelope_signing_buffer(std::string_view domain, BytesView payload_type, BytesView payload) {
  Bytes buf;
  buf.reserve(3 * kMaxUvarintLen + domain.size() + payload_type.size() + payload.size());
  put_uvarint(buf, domain.size());
  buf.append(domain);
  put_uvarint(buf, payload_type.size());
  buf.append(payload_type);
  put_uvarint(buf, payload.size());
  buf.append(payload);
  return buf;
}

Bytes seal_signed_envelope(const Identity& signer, std::string_view domain, BytesView payload_type,
                           BytesView payload) {
  SignedEnvelope env;
  env.public_key = signer.public_key().to_protobuf();
  env.payload_type = Bytes(payload_type);
  env.payload = Bytes(payload);
  env.signature = signer.sign(envelope_signing_buffer(domain, payload_type, payload));
  return env.encode();
}

Result<OpenedEnvelope> open_signed_envelope(BytesView envelope, std::string_view domain) {
  auto env = SignedEnvelope::decode(envelope);
  if (!env) return env.error();
  auto key = PublicKey::from_protobuf(env->public_key);
  if (!key) return make_error("signed envelope public_key: {}", key.error().message);
  // PublicKey::verify only knows Ed25519; say so rather than report a bad signature.
  if (key->type != KeyType::Ed25519)
    return make_error("signed envelope key type {} is not supported (only Ed25519 can be verified)", key_type_name(key->type));
  if (!key->verify(envelope_signing_buffer(domain, env->payload_type, env->payload), env->signature))
    return make_error("signed envelope signature does not verify for domain \"{}\"", domain);
  OpenedEnvelope out;
  out.signer = key->peer_id();
  out.public_key = std::move(key).value();
  out.payload_type = std::move(env->payload_type);
  out.payload = std::move(env->payload);
  return out;
}

}  // namespace punchgate
