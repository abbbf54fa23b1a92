// Decodes arbitrary identify messages (plain and framed); whatever decodes must round-trip.
#include "punchgate/host/identify_message.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace punchgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  auto m = IdentifyMessage::decode(in);
  if (m.ok()) {
    Bytes encoded = m->encode();
    auto again = IdentifyMessage::decode(encoded);
    if (!again.ok() || !(*again == *m)) std::abort();
    // Our encoding is canonical: encoding the decoded copy gives the same bytes.
    if (again->encode() != encoded) std::abort();
  }
  auto s = IdentifyMessage::decode_stream(in);
  if (s.ok()) {
    auto again = IdentifyMessage::decode_stream(s->encode_framed());
    if (!again.ok() || !(*again == *s)) std::abort();
  }
  return 0;
}
