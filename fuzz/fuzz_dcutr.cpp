// Untrusted bytes into the DCUtR message decoder and both sides of the exchange.
#include "holepunch/dcutr_exchange.hpp"

#include <cstddef>
#include <cstdint>

using namespace punchgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  if (auto m = DcutrMessage::decode(in)) {
    auto again = DcutrMessage::decode(m->encode());
    if (!again || !(*again == *m)) __builtin_trap();  // what we accept we re-encode faithfully
  }
  auto ours = Multiaddr::parse("/ip4/192.0.2.1/udp/4001/quic-v1");
  DcutrResponder responder({*ours});
  DcutrInitiator initiator({*ours});
  (void)initiator.connect(0);
  size_t chunk = size == 0 ? 1 : 1 + data[0] % 32;
  for (size_t at = 0; at < in.size(); at += chunk) {
    BytesView piece = in.substr(at, chunk);
    (void)responder.feed(piece);
    if (auto step = initiator.feed(piece, at); step && step->punch && initiator.can_retry()) {
      (void)initiator.connect(at + 1);
    }
  }
  return 0;
}
