// Decodes arbitrary bytes as circuit relay v2 hop/stop messages, a signed envelope and a
// reservation voucher; whatever decodes must round-trip through our encoding.
#include "crypto/signed_envelope.hpp"
#include "relay/circuit_message.hpp"
#include "relay/reservation_voucher.hpp"

#include <cstddef>
#include <cstdint>

using namespace punchgate;

namespace {

// decode(x) ok => decode(encode(decode(x))) == decode(x), and encode is canonical.
template <typename Msg>
void round_trip(BytesView in, size_t cap) {
  auto m = Msg::decode(in);
  if (!m.ok()) return;
  const Bytes encoded = m->encode();
  // Re-encoding can outgrow the input (type and expire are always written, negative enums take
  // ten bytes), so only an input near the size cap may legitimately fail to decode again.
  if (encoded.size() > cap) return;
  auto again = Msg::decode(encoded);
  if (!again.ok() || !(*again == *m)) __builtin_trap();
  if (again->encode() != encoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const BytesView in = view_of(data, size);
  round_trip<HopMessage>(in, kMaxCircuitMessageSize);
  round_trip<StopMessage>(in, kMaxCircuitMessageSize);
  round_trip<SignedEnvelope>(in, kMaxSignedEnvelopeSize);
  round_trip<ReservationVoucher>(in, kMaxReservationVoucherSize);

  // Signature checks on hostile envelopes: a random input never verifies, but key parsing and
  // the checks before it run. The relay id is arbitrary (Ed25519 identity multihash of zeros).
  static const PeerId relay = PeerId::from_public_key(Bytes("\x08\x01\x12\x20", 4) + Bytes(32, '\0'));
  (void)verify_voucher(in, relay);
  if (auto hop = HopMessage::decode(in); hop.ok() && hop->reservation && hop->reservation->voucher) {
    (void)verify_voucher(*hop->reservation->voucher, relay);
  }
  return 0;
}
