// Checks protozero does not make: it narrows field keys and length prefixes to 32 bits, so a
// length of 2^32+1 would read as 1. Decoders call these on the unread rest of a message before
// protozero's next()/getters; malformed varints are left for protozero to report.
#pragma once

#include "punchgate/core/bytes.hpp"

namespace punchgate {

// The next field key fits in 32 bits.
bool protobuf_key_fits(BytesView rest);
// The length prefix after the key fits in what is left of the message. `after_key` starts at
// the length prefix of a length-delimited field.
bool protobuf_length_fits(BytesView after_key);

}  // namespace punchgate
