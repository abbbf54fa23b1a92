// Feeds arbitrary bytes to a frame reader in input-chosen chunks; checks the buffer bound and
// that frames re-encode to exactly the bytes consumed.
#include "punchgate/wire/length_prefix.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace punchgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t max = data[0] % 64;  // small limits reach the bound checks quickly
  uint8_t s = data[1];
  BytesView in(reinterpret_cast<const char*>(data + 2), size - 2);

  UvarintFrameReader r(max);
  Bytes reencoded;
  size_t fed = 0;
  bool failed = false;
  while (fed < in.size() && !failed) {
    s = static_cast<uint8_t>(s * 73 + 41);
    // Respect the contract: never offer more than the free room (feed() refuses the excess).
    size_t chunk = std::min<size_t>(1 + (s % 23), r.capacity() - r.buffered());
    if (chunk == 0) std::abort();  // a full buffer always holds a complete frame or an error
    BytesView piece = in.substr(fed, chunk);
    if (!r.feed(piece).ok()) std::abort();
    fed += piece.size();
    if (r.buffered() > r.capacity()) std::abort();
    while (true) {
      auto f = r.next();
      if (!f.ok()) {
        failed = true;
        break;
      }
      if (!f->has_value()) break;
      if ((*f)->size() > max) std::abort();
      reencoded += frame_uvarint(**f);
    }
  }
  if (!failed) {
    // Consumed bytes = re-encoded frames (varints are minimal) followed by what is still buffered.
    if (reencoded + r.take_buffered() != in.substr(0, fed)) std::abort();
  }

  // feed_all must agree with piecewise feeding on the frames it returns.
  UvarintFrameReader r2(max);
  std::vector<Bytes> frames;
  auto st = r2.feed_all(in, frames);
  Bytes re2;
  for (const auto& f : frames) re2 += frame_uvarint(f);
  if (st.ok() && re2 + r2.take_buffered() != in) std::abort();
  return 0;
}
