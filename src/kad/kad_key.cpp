#include "punchgate/kad/kad_key.hpp"

#include <sodium.h>

#include <bit>

namespace punchgate {

static_assert(crypto_hash_sha256_BYTES == std::tuple_size_v<KadKey::Array>);

KadKey KadKey::from_key(BytesView raw_key) {
  // sodium_init is idempotent and thread-safe; a static makes it run once per process.
  [[maybe_unused]] static const int ready = sodium_init();
  Array digest{};
  crypto_hash_sha256(digest.data(), data_u8(raw_key), raw_key.size());
  return KadKey(digest);
}

KadKey KadKey::distance(const KadKey& other) const {
  Array d{};
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(bytes_[i] ^ other.bytes_[i]);
  return KadKey(d);
}

std::optional<size_t> KadKey::bucket_of(const KadKey& other) const {
  for (size_t i = 0; i < bytes_.size(); ++i) {
    const auto x = static_cast<uint8_t>(bytes_[i] ^ other.bytes_[i]);
    if (x != 0) {
      // Byte i holds bits 255-8i .. 248-8i of the big-endian number.
      const size_t leading_zeros = 8 * i + static_cast<size_t>(std::countl_zero(x));
      return 255 - leading_zeros;
    }
  }
  return std::nullopt;
}

}  // namespace punchgate
