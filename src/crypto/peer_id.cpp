#include "punchgate/crypto/peer_id.hpp"

#include "punchgate/wire/multibase.hpp"
#include "punchgate/wire/varint.hpp"

#include <sodium.h>

namespace punchgate {

namespace {

// Keys whose protobuf encoding is at most this long are inlined (identity multihash).
constexpr size_t kMaxInlineKeyLen = 42;

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; a static makes it run once per process.
  [[maybe_unused]] static const int ready = sodium_init();
}

}  // namespace

PeerId PeerId::from_public_key(BytesView public_key_protobuf) {
  Bytes mh;
  if (public_key_protobuf.size() <= kMaxInlineKeyLen) {
    put_uvarint(mh, kMultihashIdentity);
    put_uvarint(mh, public_key_protobuf.size());
    mh.append(public_key_protobuf);
  } else {
    ensure_sodium();
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data_u8(public_key_protobuf), public_key_protobuf.size());
    put_uvarint(mh, kMultihashSha256);
    put_uvarint(mh, sizeof digest);
    mh.append(reinterpret_cast<const char*>(digest), sizeof digest);
  }
  return PeerId(std::move(mh));
}

Result<PeerId> PeerId::from_bytes(BytesView multihash) {
  auto valid = validate_peer_id_multihash(multihash);
  if (!valid) return make_error("invalid peer id multihash {}: {}", to_hex(multihash.substr(0, 64)), valid.error().message);
  return PeerId(Bytes(multihash));
}

Result<PeerId> PeerId::parse(std::string_view text) {
  auto mh = decode_peer_id_text(text);
  if (!mh) return mh.error();
  return PeerId(std::move(*mh));
}

std::string PeerId::to_base58() const { return base58btc_encode(multihash_); }

BytesView PeerId::inline_public_key() const {
  BytesView in = multihash_;
  auto code = take_uvarint(in);
  if (!code || *code != kMultihashIdentity) return {};
  auto len = take_uvarint(in);
  if (!len || *len != in.size()) return {};
  return in;
}

}  // namespace punchgate
