// Feeds arbitrary bytes, in input-chosen chunk sizes, to a multistream dialer and listener.
#include "punchgate/wire/multistream.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace punchgate;

namespace {

// Checks outcome invariants that hold whatever the peer sends.
void check(const MultistreamOutcome& out) {
  if (out.state == MultistreamState::Selected && out.protocol.empty()) std::abort();
  if (out.state == MultistreamState::Failed && out.error.empty()) std::abort();
  if (out.state != MultistreamState::Selected && !out.leftover.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: chunking seed; the rest is the peer's byte stream.
  uint8_t seed = data[0];
  BytesView in(reinterpret_cast<const char*>(data + 1), size - 1);

  MultistreamDialer dialer({"/a", "/ipfs/ping/1.0.0", "/b"});
  (void)dialer.start();
  MultistreamListener listener({"/a", "/b"});
  MultistreamListener predicate_listener([](std::string_view p) { return p.size() % 3 == 0; }, {"/abc"});

  size_t consumed = 0;
  Bytes dialer_app, listener_app;
  uint8_t s = seed;
  while (consumed < in.size()) {
    s = static_cast<uint8_t>(s * 73 + 41);
    size_t chunk = 1 + (s % 17);
    if (s & 0x80) chunk = in.size();  // sometimes everything at once
    BytesView piece = in.substr(consumed, chunk);
    consumed += piece.size();
    auto d = dialer.feed(piece);
    check(d);
    dialer_app += d.leftover;
    auto l = listener.feed(piece);
    check(l);
    listener_app += l.leftover;
    check(predicate_listener.feed(piece));
  }
  // Everything after negotiation reaches the application: never more than was fed.
  if (dialer_app.size() > in.size() || listener_app.size() > in.size()) std::abort();
  return 0;
}
