// Unsigned LEB128 varints as multiformats/unsigned-varint defines them (at most 9 bytes, minimal).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstdint>

namespace punchgate {

inline constexpr size_t kMaxUvarintLen = 9;

void put_uvarint(Bytes& out, uint64_t value);
size_t uvarint_size(uint64_t value);

// Decodes a varint at the front of `in`.
// ok(n > 0): value set, n bytes used; ok(0): `in` ends inside the varint (need more bytes);
// error: longer than 9 bytes or not minimally encoded.
Result<size_t> get_uvarint(BytesView in, uint64_t& value);

// Like get_uvarint but for a complete buffer: consumes from `in`, an incomplete varint is an error.
Result<uint64_t> take_uvarint(BytesView& in);

}  // namespace punchgate
