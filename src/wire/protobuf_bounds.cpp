#include "punchgate/wire/protobuf_bounds.hpp"

#include <cstdint>
#include <optional>
#include <utility>

namespace punchgate {

namespace {

// A permissive varint peek (protobuf allows padded varints): nullopt if malformed or truncated.
std::optional<std::pair<uint64_t, size_t>> peek_varint(BytesView in) {
  uint64_t v = 0;
  for (size_t i = 0; i < in.size() && i < 10; ++i) {
    auto b = static_cast<uint8_t>(in[i]);
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return std::pair<uint64_t, size_t>{v, i + 1};
  }
  return std::nullopt;
}

}  // namespace

bool protobuf_key_fits(BytesView rest) {
  auto k = peek_varint(rest);
  return !k || k->first <= UINT32_MAX;
}

bool protobuf_length_fits(BytesView after_key) {
  auto n = peek_varint(after_key);
  return !n || n->first <= after_key.size() - n->second;
}

}  // namespace punchgate
