#include "relay/reservation_voucher.hpp"

#include "crypto/signed_envelope.hpp"
#include "punchgate/wire/protobuf_bounds.hpp"

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <optional>

namespace punchgate {
namespace {

enum VoucherField : uint32_t { kRelay = 1, kPeer = 2, kExpiration = 3 };

}  // namespace

Bytes ReservationVoucher::encode() const {
  Bytes out;
  protozero::pbf_writer w(out);
  w.add_bytes(kRelay, relay.bytes());
  w.add_bytes(kPeer, peer.bytes());
  w.add_uint64(kExpiration, expiration);
  return out;
}

Result<ReservationVoucher> ReservationVoucher::decode(BytesView protobuf) {
  if (protobuf.size() > kMaxReservationVoucherSize)
    return make_error("reservation voucher of {} bytes exceeds limit of {}", protobuf.size(), kMaxReservationVoucherSize);
  std::optional<BytesView> relay, peer;
  std::optional<uint64_t> expiration;
  try {
    protozero::pbf_reader r(protobuf.data(), protobuf.size());
    auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
    while (true) {
      // protozero narrows keys and lengths to 32 bits; check before it reads them.
      if (!protobuf_key_fits(rest())) return make_error("reservation voucher field key out of range");
      if (!r.next()) break;
      const uint32_t tag = r.tag();
      const auto wt = r.wire_type();
      if (wt == protozero::pbf_wire_type::length_delimited && !protobuf_length_fits(rest()))
        return make_error("reservation voucher field {} runs past the end of the message", tag);
      if (tag == kRelay || tag == kPeer) {
        if (wt != protozero::pbf_wire_type::length_delimited)
          return make_error("reservation voucher field {} is not length-delimited", tag);
        const auto v = r.get_view();
        (tag == kRelay ? relay : peer) = BytesView(v.data(), v.size());
      } else if (tag == kExpiration) {
        if (wt != protozero::pbf_wire_type::varint) return make_error("reservation voucher expiration is not a varint");
        expiration = r.get_uint64();
      } else {
        r.skip();
      }
    }
  } catch (const protozero::exception& e) {
    return make_error("malformed reservation voucher: {}", e.what());
  }
  if (!relay) return make_error("reservation voucher has no relay");
  if (!peer) return make_error("reservation voucher has no peer");
  if (!expiration) return make_error("reservation voucher has no expiration");
  auto relay_id = PeerId::from_bytes(*relay);
  if (!relay_id) return make_error("reservation voucher relay: {}", relay_id.error().message);
  auto peer_id = PeerId::from_bytes(*peer);
  if (!peer_id) return make_error("reservation voucher peer: {}", peer_id.error().message);
  return ReservationVoucher{std::move(relay_id).value(), std::move(peer_id).value(), *expiration};
}

Bytes make_signed_voucher(const Identity& relay, const PeerId& peer, uint64_t expiration) {
  const ReservationVoucher v{relay.peer_id(), peer, expiration};
  return seal_signed_envelope(relay, kReservationVoucherDomain, kReservationVoucherPayloadType, v.encode());
}

Result<ReservationVoucher> verify_voucher(BytesView envelope, const PeerId& expected_relay) {
  auto opened = open_signed_envelope(envelope, kReservationVoucherDomain);
  if (!opened) return make_error("reservation voucher: {}", opened.error().message);
  if (opened->payload_type != kReservationVoucherPayloadType)
    return make_error("reservation voucher has payload type {}, expected {}", to_hex(opened->payload_type.substr(0, 16)),
                      to_hex(kReservationVoucherPayloadType));
  if (opened->signer != expected_relay)
    return make_error("reservation voucher signed by {}, expected relay {}", opened->signer.to_base58(),
                      expected_relay.to_base58());
  auto voucher = ReservationVoucher::decode(opened->payload);
  if (!voucher) return voucher.error();
  // A relay could sign a voucher naming another relay; only its own counts.
  if (voucher->relay != opened->signer)
    return make_error("reservation voucher names relay {} but is signed by {}", voucher->relay.to_base58(),
                      opened->signer.to_base58());
  return voucher;
}

}  // namespace punchgate
