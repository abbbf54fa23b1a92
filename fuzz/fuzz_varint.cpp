// Decodes varints from arbitrary bytes and checks the decoder against the encoder: an accepted
// varint re-encodes to exactly the bytes consumed, and get_uvarint/take_uvarint agree.
#include "punchgate/wire/varint.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace punchgate;

namespace {

[[noreturn]] void fail(const char* what, BytesView in) {
  std::fprintf(stderr, "fuzz_varint: %s: %s\n", what, to_hex(in).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  // Walk the input as a sequence of varints, as a frame parser would.
  while (!in.empty()) {
    uint64_t value = 0;
    auto n = get_uvarint(in, value);
    BytesView taken = in;
    auto took = take_uvarint(taken);
    if (!n.ok()) {
      if (took.ok()) fail("take_uvarint accepted what get_uvarint refused", in);
      if (taken.size() != in.size()) fail("failed take_uvarint consumed input", in);
      break;
    }
    if (*n == 0) {
      // Incomplete: only possible when every byte so far has the continuation bit.
      if (in.size() >= kMaxUvarintLen) fail("incomplete varint longer than the limit", in);
      for (char c : in) {
        if ((static_cast<uint8_t>(c) & 0x80) == 0) fail("incomplete despite a final byte", in);
      }
      if (took.ok()) fail("take_uvarint accepted an incomplete varint", in);
      break;
    }
    if (*n > kMaxUvarintLen) fail("consumed more than the limit", in);
    if (!took.ok() || *took != value || in.size() - taken.size() != *n) fail("get/take disagree", in);
    Bytes re;
    put_uvarint(re, value);
    if (re != in.substr(0, *n)) fail("re-encoding differs from the accepted bytes", in);
    if (re.size() != uvarint_size(value)) fail("uvarint_size disagrees with put_uvarint", in);
    in.remove_prefix(*n);
  }
  return 0;
}
