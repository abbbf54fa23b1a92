#include "punchgate/wire/varint.hpp"

namespace punchgate {

void put_uvarint(Bytes& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

size_t uvarint_size(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

Result<size_t> get_uvarint(BytesView in, uint64_t& value) {
  uint64_t v = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i >= kMaxUvarintLen) return make_error("varint longer than {} bytes", kMaxUvarintLen);
    auto b = static_cast<uint8_t>(in[i]);
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      // The spec demands minimal encodings: a trailing zero group is a second spelling of a value.
      if (b == 0 && i > 0) return make_error("varint is not minimally encoded");
      value = v;
      return i + 1;
    }
  }
  if (in.size() >= kMaxUvarintLen) return make_error("varint longer than {} bytes", kMaxUvarintLen);
  return size_t{0};
}

Result<uint64_t> take_uvarint(BytesView& in) {
  uint64_t v = 0;
  auto n = get_uvarint(in, v);
  if (!n) return n.error();
  if (*n == 0) return make_error("truncated varint");
  in.remove_prefix(*n);
  return v;
}

}  // namespace punchgate
