// libFuzzer target: noise-libp2p parsing on arbitrary bytes. The first byte picks the target:
//   0: NoiseHandshakePayload::decode (whatever decodes must round-trip)
//   1: NoiseTransportDecoder fed the input in input-chosen chunks, then an encode/decode round trip
//   2: responder fed arbitrary message 1 then arbitrary message 3 (any framing)
//   3: responder fed a genuine message 1, then arbitrary message 3
//   4: initiator fed arbitrary message 2
// Keys and identities are fixed so every input replays the same way.
#include "crypto/noise_handshake.hpp"
#include "crypto/noise_payload.hpp"
#include "crypto/noise_transport.hpp"

#include <cstddef>
#include <cstdint>

using namespace punchgate;

namespace {

const Identity& identity() {
  // libp2p/specs peer-ids test vector key.
  static const Identity id = *Identity::from_protobuf(*from_hex(
      "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b3"
      "4b871c3cacf6010f0e42d474fce27e"));
  return id;
}

NoiseSecret fixed(char fill) { return NoiseSecret::from_bytes(Bytes(kNoiseKeyLen, fill)).value(); }

NoiseHandshake::FixedKeys keys(char s, char e) { return {fixed(s), fixed(e)}; }

void fuzz_payload(BytesView in) {
  auto p = NoiseHandshakePayload::decode(in);
  if (!p.ok()) return;
  auto again = NoiseHandshakePayload::decode(p->encode());
  if (!again.ok() || !(*again == *p)) __builtin_trap();
}

void fuzz_transport(BytesView in) {
  // Chunk sizes come from the input itself, so the fuzzer explores frame boundaries.
  NoiseTransportDecoder dec(NoiseCipherState(fixed('k')));
  Bytes plaintext;
  BytesView rest = in;
  size_t step = 1;
  while (!rest.empty() && !dec.failed()) {
    const size_t n = std::min(rest.size(), step);
    (void)dec.decode(rest.substr(0, n), plaintext);
    rest.remove_prefix(n);
    step = 1 + static_cast<uint8_t>(in[n % in.size()]) * 37;
  }
  if (!plaintext.empty()) __builtin_trap();  // nobody without the key can forge a frame

  NoiseTransportEncoder enc(NoiseCipherState(fixed('r')));
  NoiseTransportDecoder dec2(NoiseCipherState(fixed('r')));
  auto wire = enc.encode(in);
  if (!wire.ok()) __builtin_trap();
  Bytes out;
  for (size_t off = 0; off < wire->size(); off += 1000) {
    if (!dec2.decode(BytesView(*wire).substr(off, 1000), out).ok()) __builtin_trap();
  }
  if (out != in || !dec2.idle()) __builtin_trap();
}

// Splits `in` at a position chosen by its first byte.
std::pair<BytesView, BytesView> split_input(BytesView in) {
  if (in.empty()) return {in, in};
  const size_t at = static_cast<uint8_t>(in[0]) * in.size() / 256;
  return {in.substr(1, at > 0 ? at - 1 : 0), in.substr(std::max<size_t>(at, 1))};
}

void fuzz_responder(BytesView in) {
  auto resp = NoiseHandshake::responder_with_keys(identity(), keys('s', 'e'));
  auto [m1, m3] = split_input(in);
  auto s2 = resp.feed(m1);
  if (!s2.ok()) return;
  auto s4 = resp.feed(m3);
  if (s4.ok() && s4->session) __builtin_trap();  // message 3 needs keys the fuzzer does not have
}

void fuzz_responder_after_genuine_m1(BytesView in) {
  auto init = NoiseHandshake::initiator_with_keys(identity(), std::nullopt, keys('S', 'E'));
  auto resp = NoiseHandshake::responder_with_keys(identity(), keys('s', 'e'));
  auto m1 = init.start();
  if (!m1.ok()) __builtin_trap();
  auto s2 = resp.feed(*m1);
  if (!s2.ok() || s2->to_send.empty()) __builtin_trap();
  auto s4 = resp.feed(in);
  (void)s4;
  // Feeding again must not crash whatever state the responder is in.
  (void)resp.feed(in);
}

void fuzz_initiator(BytesView in) {
  auto init = NoiseHandshake::initiator_with_keys(identity(), identity().peer_id(), keys('S', 'E'));
  if (!init.start().ok()) __builtin_trap();
  auto s3 = init.feed(in);
  if (s3.ok() && s3->session) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const BytesView in = view_of(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: fuzz_payload(in); break;
    case 1: fuzz_transport(in); break;
    case 2: fuzz_responder(in); break;
    case 3: fuzz_responder_after_genuine_m1(in); break;
    default: fuzz_initiator(in); break;
  }
  return 0;
}
