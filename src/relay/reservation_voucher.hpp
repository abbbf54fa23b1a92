// Circuit relay v2 reservation vouchers (libp2p/specs relay/circuit-v2.md): a signed envelope from
// the relay saying it serves `peer` until `expiration`.
//   message Voucher { bytes relay = 1; bytes peer = 2; uint64 expiration = 3; }
// Envelope domain "libp2p-relay-rsvp"; payload type the two bytes 0x03 0x02 (multicodec
// libp2p-relay-rsvp, 0x0302, written big-endian as go-libp2p and js-libp2p do, not as a uvarint).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <cstdint>
#include <string_view>

namespace punchgate {

inline constexpr std::string_view kReservationVoucherDomain = "libp2p-relay-rsvp";
inline constexpr std::string_view kReservationVoucherPayloadType{"\x03\x02", 2};
// Two Ed25519 peer ids and a timestamp are under 100 bytes; RSA peer ids are sha2-256 (34).
inline constexpr size_t kMaxReservationVoucherSize = 512;

struct ReservationVoucher {
  PeerId relay;             // field 1
  PeerId peer;              // field 2: the reserving peer
  uint64_t expiration = 0;  // field 3: unix seconds (UTC)

  // All three fields in field order (the spec's canonical form; matches go/js for nonzero values).
  Bytes encode() const;
  // All three fields are required and both ids must be valid peer ids. Unknown fields are skipped;
  // a repeated field keeps its last value.
  static Result<ReservationVoucher> decode(BytesView protobuf);

  friend bool operator==(const ReservationVoucher&, const ReservationVoucher&) = default;
};

// The envelope a relay puts in Reservation.voucher.
Bytes make_signed_voucher(const Identity& relay, const PeerId& peer, uint64_t expiration);

// Opens the envelope and checks domain, payload type, signature, that the signer is
// `expected_relay` and that the voucher names the signer as relay. The caller still compares
// voucher.peer with itself and the expiration with the clock / Reservation.expire.
Result<ReservationVoucher> verify_voucher(BytesView envelope, const PeerId& expected_relay);

}  // namespace punchgate
