// Decodes arbitrary kad messages; whatever decodes must round-trip through our encoding.
#include "punchgate/kad/kad_message.hpp"

#include <cstddef>
#include <cstdint>

using namespace punchgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  auto m = KadMessage::decode(in);
  if (!m.ok()) return 0;
  const Bytes encoded = m->encode();
  // Canonical re-encoding can outgrow the input (type is always written, negative int32s take
  // ten bytes), so only an input near the size cap may legitimately fail to decode again.
  if (encoded.size() > kMaxKadMessageSize) return 0;
  auto again = KadMessage::decode(encoded);
  if (!again.ok() || !(*again == *m)) __builtin_trap();
  // Our encoding is canonical: encoding the decoded copy gives the same bytes.
  if (again->encode() != encoded) __builtin_trap();
  return 0;
}
