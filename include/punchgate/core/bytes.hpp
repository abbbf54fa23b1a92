// Byte buffers. std::string is the byte container throughout, since protozero reads and writes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <optional>

namespace punchgate {

using Bytes = std::string;
using BytesView = std::string_view;

inline const uint8_t* data_u8(BytesView b) { return reinterpret_cast<const uint8_t*>(b.data()); }
inline BytesView view_of(const uint8_t* p, size_t n) { return BytesView(reinterpret_cast<const char*>(p), n); }

std::string to_hex(BytesView b);
// Lower- or upper-case hex digits, even count; nullopt otherwise.
std::optional<Bytes> from_hex(std::string_view hex);

}  // namespace punchgate
