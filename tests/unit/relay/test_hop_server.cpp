#include "relay/hop_server.hpp"
#include "relay/relay_limits.hpp"
#include "relay/reservation_voucher.hpp"

#include "punchgate/crypto/identity.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

Multiaddr addr(std::string_view text) {
  auto a = Multiaddr::parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : Multiaddr();
}

HopMessage connect_to(const PeerId& dst) {
  HopMessage m;
  m.type = HopMessageType::Connect;
  m.peer = CircuitPeer{dst.bytes(), {}};
  return m;
}

std::optional<CircuitStatus> refusal_status(const HopConnectResult& r) {
  EXPECT_FALSE(r.admitted.has_value());
  if (!r.refusal) return std::nullopt;
  EXPECT_EQ(r.refusal->type, HopMessageType::StatusReply);
  EXPECT_FALSE(r.refusal->limit.has_value());
  return r.refusal->status;
}

struct Peers {
  Identity relay = Identity::generate();
  PeerId a = Identity::generate().peer_id();
  PeerId b = Identity::generate().peer_id();
  PeerId c = Identity::generate().peer_id();
  PeerId d = Identity::generate().peer_id();
};

const std::vector<Multiaddr> kNoAddrs;

}  // namespace

TEST(HopServer, ReserveAcceptsWithSignedVoucher) {
  Peers p;
  HopServer server(p.relay, RelayLimits{});
  auto r = server.reserve(p.a, kNoAddrs, 1'700'000'000);

  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.expire, 1'700'003'600u);
  EXPECT_EQ(r.reply.type, HopMessageType::StatusReply);
  EXPECT_EQ(r.reply.status, CircuitStatus::Ok);
  EXPECT_FALSE(r.reply.peer.has_value());
  EXPECT_EQ(r.reply.limit, (CircuitLimit{3600u, uint64_t{1} << 30}));
  ASSERT_TRUE(r.reply.reservation.has_value());
  EXPECT_EQ(r.reply.reservation->expire, 1'700'003'600u);
  EXPECT_TRUE(r.reply.reservation->addrs.empty());
  ASSERT_TRUE(r.reply.reservation->voucher.has_value());

  auto v = verify_voucher(*r.reply.reservation->voucher, p.relay.peer_id());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->relay, p.relay.peer_id());
  EXPECT_EQ(v->peer, p.a);
  EXPECT_EQ(v->expiration, 1'700'003'600u);
  EXPECT_FALSE(verify_voucher(*r.reply.reservation->voucher, p.b).ok());

  // What goes on the wire reads back the same.
  auto decoded = HopMessage::decode(r.reply.encode());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, r.reply);

  EXPECT_EQ(server.reservation_count(), 1u);
  EXPECT_TRUE(server.has_reservation(p.a, 1'700'003'599));
  EXPECT_FALSE(server.has_reservation(p.a, 1'700'003'600));
  EXPECT_FALSE(server.has_reservation(p.b, 1'700'000'000));
}

TEST(HopServer, ReservationAddrsEndInRelayPeerId) {
  Peers p;
  HopServer server(p.relay, RelayLimits{});
  const std::string relay_id = p.relay.peer_id().to_base58();
  const std::vector<Multiaddr> addrs{
      addr("/ip4/1.2.3.4/udp/4001/quic-v1"),
      addr("/ip6/2001:db8::1/udp/4001/quic-v1"),
      addr("/ip4/5.6.7.8/udp/4001/quic-v1/p2p/" + relay_id),                   // already named: not doubled
      addr("/ip4/9.9.9.9/udp/1/quic-v1/p2p/" + relay_id + "/p2p-circuit"),  // relayed: skipped
      Multiaddr(),                                                              // empty: skipped
  };
  auto r = server.reserve(p.a, addrs, 1000);
  ASSERT_TRUE(r.accepted);
  const std::vector<Bytes> want{
      addr("/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" + relay_id).to_bytes(),
      addr("/ip6/2001:db8::1/udp/4001/quic-v1/p2p/" + relay_id).to_bytes(),
      addr("/ip4/5.6.7.8/udp/4001/quic-v1/p2p/" + relay_id).to_bytes(),
  };
  EXPECT_EQ(r.reply.reservation->addrs, want);
}

TEST(HopServer, ReservationReplyStaysWithinMessageSize) {
  Peers p;
  HopServer server(p.relay, RelayLimits{});
  std::vector<Multiaddr> addrs;
  for (int i = 0; i < 40; ++i)
    addrs.push_back(addr("/dns4/" + std::string(200, static_cast<char>('a' + i % 26)) + ".example/udp/4001/quic-v1"));
  auto r = server.reserve(p.a, addrs, 1000);
  ASSERT_TRUE(r.accepted);
  const Bytes wire = r.reply.encode();
  EXPECT_LE(wire.size(), kMaxCircuitMessageSize);
  // Each address is ~260 bytes with /p2p: about 15 fit, fewer than the 32 the cap allows.
  EXPECT_GT(r.reply.reservation->addrs.size(), 10u);
  EXPECT_LT(r.reply.reservation->addrs.size(), 20u);
  EXPECT_EQ(r.reply.reservation->addrs.front(), addrs.front().with_peer_id(p.relay.peer_id()).to_bytes());
  EXPECT_TRUE(HopMessage::decode(wire).ok());
}

TEST(HopServer, CapRefusesNewPeersButRenews) {
  Peers p;
  RelayLimits limits;
  limits.max_reservations = 2;
  limits.reservation_ttl_s = 100;
  HopServer server(p.relay, limits);
  ASSERT_TRUE(server.reserve(p.a, kNoAddrs, 1000).accepted);
  ASSERT_TRUE(server.reserve(p.b, kNoAddrs, 1010).accepted);

  auto refused = server.reserve(p.c, kNoAddrs, 1020);
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.expire, 0u);
  EXPECT_EQ(refused.reply, hop_status_reply(CircuitStatus::ReservationRefused));
  EXPECT_FALSE(refused.reply.reservation.has_value());
  EXPECT_FALSE(server.has_reservation(p.c, 1020));
  EXPECT_EQ(server.reservation_count(), 2u);

  // Renewal at the cap: accepted, only the expiry moves.
  auto renewed = server.reserve(p.a, kNoAddrs, 1050);
  EXPECT_TRUE(renewed.accepted);
  EXPECT_EQ(renewed.expire, 1150u);
  EXPECT_EQ(renewed.reply.reservation->expire, 1150u);
  EXPECT_EQ(server.reservation_count(), 2u);
  EXPECT_TRUE(server.has_reservation(p.a, 1149));

  // b expired at 1110 but was not swept: its slot goes to c rather than refusing it.
  auto after = server.reserve(p.c, kNoAddrs, 1110);
  EXPECT_TRUE(after.accepted);
  EXPECT_EQ(after.expire, 1210u);
  EXPECT_EQ(server.reservation_count(), 2u);
  EXPECT_FALSE(server.has_reservation(p.b, 1110));
  EXPECT_TRUE(server.has_reservation(p.a, 1110));
  EXPECT_TRUE(server.has_reservation(p.c, 1110));
}

TEST(HopServer, ExpireDropsDueReservations) {
  Peers p;
  RelayLimits limits;
  limits.reservation_ttl_s = 100;
  HopServer server(p.relay, limits);
  server.reserve(p.a, kNoAddrs, 1000);
  server.reserve(p.b, kNoAddrs, 1050);

  EXPECT_TRUE(server.expire(1099).empty());
  EXPECT_EQ(server.reservation_count(), 2u);

  EXPECT_EQ(server.expire(1100), std::vector<PeerId>{p.a});
  EXPECT_EQ(server.reservation_count(), 1u);
  EXPECT_FALSE(server.has_reservation(p.a, 1000));  // gone, whatever the clock says
  EXPECT_TRUE(server.has_reservation(p.b, 1100));

  EXPECT_EQ(server.expire(5000), std::vector<PeerId>{p.b});
  EXPECT_EQ(server.reservation_count(), 0u);
  EXPECT_TRUE(server.expire(5000).empty());
}

TEST(HopServer, ConnectRefusalsInOrder) {
  Peers p;
  RelayLimits limits;
  limits.reservation_ttl_s = 100;
  limits.max_circuits = 0;  // every admission would fail last, on resources
  HopServer server(p.relay, limits);

  HopMessage no_peer;
  no_peer.type = HopMessageType::Connect;
  EXPECT_EQ(refusal_status(server.connect(p.a, no_peer, 1000)), CircuitStatus::MalformedMessage);

  HopMessage bad_id = connect_to(p.b);
  bad_id.peer->id = "not a multihash"s;
  EXPECT_EQ(refusal_status(server.connect(p.a, bad_id, 1000)), CircuitStatus::MalformedMessage);
  bad_id.peer->id.clear();
  EXPECT_EQ(refusal_status(server.connect(p.a, bad_id, 1000)), CircuitStatus::MalformedMessage);

  // Self-dial is refused before the reservation is looked at, with or without one.
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.a), 1000)), CircuitStatus::PermissionDenied);
  server.reserve(p.a, kNoAddrs, 1000);
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.a), 1000)), CircuitStatus::PermissionDenied);

  // No reservation comes before resource limits.
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.b), 1000)), CircuitStatus::NoReservation);
  EXPECT_EQ(refusal_status(server.connect(p.b, connect_to(p.a), 1100)), CircuitStatus::NoReservation);  // expired
  EXPECT_EQ(refusal_status(server.connect(p.b, connect_to(p.a), 1099)), CircuitStatus::ResourceLimitExceeded);
  EXPECT_EQ(server.circuit_count(), 0u);
}

TEST(HopServer, ConnectAdmits) {
  Peers p;
  HopServer server(p.relay, RelayLimits{});
  server.reserve(p.b, kNoAddrs, 1000);
  auto r = server.connect(p.a, connect_to(p.b), 1001);
  ASSERT_TRUE(r.admitted.has_value());
  EXPECT_FALSE(r.refusal.has_value());
  EXPECT_EQ(r.admitted->src, p.a);
  EXPECT_EQ(r.admitted->dst, p.b);
  EXPECT_EQ(r.admitted->limit, (CircuitLimit{3600u, uint64_t{1} << 30}));
  EXPECT_EQ(server.circuit_count(), 1u);
  EXPECT_EQ(server.circuit_count(p.a), 1u);
  EXPECT_EQ(server.circuit_count(p.b), 1u);
  EXPECT_EQ(server.circuit_count(p.c), 0u);

  auto second = server.connect(p.c, connect_to(p.b), 1001);
  ASSERT_TRUE(second.admitted.has_value());
  EXPECT_NE(second.admitted->circuit_id, r.admitted->circuit_id);
  EXPECT_EQ(server.circuit_count(p.b), 2u);
}

TEST(HopServer, PerPeerCapCountsBothEnds) {
  Peers p;
  RelayLimits limits;
  limits.max_circuits_per_peer = 2;
  HopServer server(p.relay, limits);
  for (const PeerId* peer : {&p.a, &p.b, &p.c, &p.d}) server.reserve(*peer, kNoAddrs, 1000);

  ASSERT_TRUE(server.connect(p.c, connect_to(p.a), 1000).admitted);
  ASSERT_TRUE(server.connect(p.c, connect_to(p.b), 1000).admitted);
  // c is at its cap as a source.
  EXPECT_EQ(refusal_status(server.connect(p.c, connect_to(p.d), 1000)), CircuitStatus::ResourceLimitExceeded);
  // ... and as a destination: circuits it opened count there too.
  EXPECT_EQ(refusal_status(server.connect(p.d, connect_to(p.c), 1000)), CircuitStatus::ResourceLimitExceeded);

  ASSERT_TRUE(server.connect(p.d, connect_to(p.a), 1000).admitted);
  // a now has two circuits as destination, so it cannot dial out either.
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.b), 1000)), CircuitStatus::ResourceLimitExceeded);
  EXPECT_EQ(refusal_status(server.connect(p.b, connect_to(p.a), 1000)), CircuitStatus::ResourceLimitExceeded);
  // b and d each have one.
  ASSERT_TRUE(server.connect(p.b, connect_to(p.d), 1000).admitted);
  EXPECT_EQ(server.circuit_count(), 4u);
  EXPECT_EQ(server.circuit_count(p.a), 2u);
  EXPECT_EQ(server.circuit_count(p.b), 2u);
  EXPECT_EQ(server.circuit_count(p.c), 2u);
  EXPECT_EQ(server.circuit_count(p.d), 2u);
}

TEST(HopServer, TotalCircuitCapAndRelease) {
  Peers p;
  RelayLimits limits;
  limits.max_circuits = 3;
  HopServer server(p.relay, limits);
  server.reserve(p.a, kNoAddrs, 1000);

  std::set<uint64_t> ids;
  for (const PeerId* src : {&p.b, &p.c, &p.d}) {
    auto r = server.connect(*src, connect_to(p.a), 1000);
    ASSERT_TRUE(r.admitted);
    ids.insert(r.admitted->circuit_id);
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(server.circuit_count(), 3u);
  const PeerId e = Identity::generate().peer_id();
  EXPECT_EQ(refusal_status(server.connect(e, connect_to(p.a), 1000)), CircuitStatus::ResourceLimitExceeded);

  server.circuit_closed(*ids.begin());
  EXPECT_EQ(server.circuit_count(), 2u);
  EXPECT_EQ(server.circuit_count(p.a), 2u);
  auto again = server.connect(e, connect_to(p.a), 1000);
  ASSERT_TRUE(again.admitted);
  EXPECT_FALSE(ids.count(again.admitted->circuit_id));  // ids are not reused
}

TEST(HopServer, CircuitClosedReleasesCounts) {
  Peers p;
  RelayLimits limits;
  limits.max_circuits_per_peer = 1;
  HopServer server(p.relay, limits);
  server.reserve(p.b, kNoAddrs, 1000);

  auto first = server.connect(p.a, connect_to(p.b), 1000);
  ASSERT_TRUE(first.admitted);
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.b), 1000)), CircuitStatus::ResourceLimitExceeded);

  server.circuit_closed(first.admitted->circuit_id + 100);  // unknown: ignored
  EXPECT_EQ(server.circuit_count(), 1u);

  server.circuit_closed(first.admitted->circuit_id);
  EXPECT_EQ(server.circuit_count(), 0u);
  EXPECT_EQ(server.circuit_count(p.a), 0u);
  EXPECT_EQ(server.circuit_count(p.b), 0u);
  server.circuit_closed(first.admitted->circuit_id);  // twice: harmless
  EXPECT_EQ(server.circuit_count(), 0u);

  EXPECT_TRUE(server.connect(p.a, connect_to(p.b), 1000).admitted);
  EXPECT_EQ(server.circuit_count(), 1u);
}

TEST(HopServer, PeerDisconnectedDropsReservation) {
  Peers p;
  HopServer server(p.relay, RelayLimits{});
  server.reserve(p.b, kNoAddrs, 1000);
  server.reserve(p.c, kNoAddrs, 1000);
  auto circuit = server.connect(p.a, connect_to(p.b), 1000);
  ASSERT_TRUE(circuit.admitted);

  EXPECT_TRUE(server.peer_disconnected(p.b));
  EXPECT_FALSE(server.has_reservation(p.b, 1000));
  EXPECT_TRUE(server.has_reservation(p.c, 1000));
  EXPECT_EQ(server.reservation_count(), 1u);
  EXPECT_EQ(refusal_status(server.connect(p.a, connect_to(p.b), 1000)), CircuitStatus::NoReservation);
  EXPECT_FALSE(server.peer_disconnected(p.b));
  EXPECT_FALSE(server.peer_disconnected(p.a));

  // Its open circuit stays counted until the caller closes it.
  EXPECT_EQ(server.circuit_count(p.b), 1u);
  server.circuit_closed(circuit.admitted->circuit_id);
  EXPECT_EQ(server.circuit_count(p.b), 0u);
}

TEST(RelayLimits, CircuitLimitOmitsZeroFields) {
  RelayLimits limits;
  EXPECT_EQ(circuit_limit(limits), (CircuitLimit{3600u, uint64_t{1} << 30}));

  limits.circuit_duration_s = 0;
  limits.circuit_data_bytes = 4096;
  EXPECT_EQ(circuit_limit(limits), (CircuitLimit{std::nullopt, 4096u}));

  limits.circuit_duration_s = 120;
  limits.circuit_data_bytes = 0;
  EXPECT_EQ(circuit_limit(limits), (CircuitLimit{120u, std::nullopt}));

  limits.circuit_duration_s = 0;
  EXPECT_EQ(circuit_limit(limits), std::nullopt);

  // Unlimited circuits: no limit field in the reservation reply or the admission.
  Peers p;
  HopServer server(p.relay, limits);
  auto r = server.reserve(p.b, kNoAddrs, 1000);
  ASSERT_TRUE(r.accepted);
  EXPECT_FALSE(r.reply.limit.has_value());
  auto c = server.connect(p.a, connect_to(p.b), 1000);
  ASSERT_TRUE(c.admitted);
  EXPECT_FALSE(c.admitted->limit.has_value());
  EXPECT_EQ(server.limits().circuit_duration_s, 0u);
}

TEST(CircuitMessage, StatusReplies) {
  const HopMessage hop = hop_status_reply(CircuitStatus::NoReservation);
  EXPECT_EQ(hop.type, HopMessageType::StatusReply);
  EXPECT_EQ(hop.status, CircuitStatus::NoReservation);
  // type = STATUS (2), status = 204 (uvarint cc 01).
  EXPECT_EQ(hop.encode(), "\x08\x02\x28\xcc\x01"s);

  const StopMessage stop = stop_status_reply(CircuitStatus::ConnectionFailed);
  EXPECT_EQ(stop.type, StopMessageType::StatusReply);
  // type = STATUS (1), status (field 4) = 203 (cb 01).
  EXPECT_EQ(stop.encode(), "\x08\x01\x20\xcb\x01"s);
}

TEST(CircuitBudget, SplitsPerDirection) {
  CircuitBudget budget(10);
  EXPECT_EQ(budget.take(CircuitBudget::kSrcToDst, 4), 4u);
  EXPECT_FALSE(budget.exhausted());
  EXPECT_EQ(budget.take(CircuitBudget::kDstToSrc, 9), 9u);
  EXPECT_FALSE(budget.exhausted());
  EXPECT_EQ(budget.take(0, 8), 6u);  // only what is left
  EXPECT_TRUE(budget.exhausted());
  EXPECT_EQ(budget.take(0, 5), 0u);
  EXPECT_EQ(budget.bytes(0), 10u);
  EXPECT_EQ(budget.bytes(1), 9u);
  EXPECT_EQ(budget.take(1, 3), 1u);
  EXPECT_EQ(budget.bytes(1), 10u);
  EXPECT_EQ(budget.take(0, 0), 0u);

  // Either direction alone exhausts the circuit.
  CircuitBudget other(5);
  EXPECT_EQ(other.take(1, 5), 5u);
  EXPECT_TRUE(other.exhausted());
  EXPECT_EQ(other.bytes(0), 0u);
  EXPECT_EQ(other.take(0, 2), 2u);

  // Out-of-range directions pass nothing and record nothing.
  CircuitBudget odd(5);
  EXPECT_EQ(odd.take(2, 3), 0u);
  EXPECT_EQ(odd.take(-1, 3), 0u);
  EXPECT_EQ(odd.bytes(2), 0u);
  EXPECT_EQ(odd.bytes(0) + odd.bytes(1), 0u);
}

TEST(CircuitBudget, Unlimited) {
  CircuitBudget budget(0);
  const size_t big = std::numeric_limits<size_t>::max();
  EXPECT_EQ(budget.take(0, 1u << 20), 1u << 20);
  EXPECT_EQ(budget.take(1, 7), 7u);
  EXPECT_EQ(budget.bytes(0), uint64_t{1} << 20);
  EXPECT_EQ(budget.bytes(1), 7u);
  EXPECT_FALSE(budget.exhausted());
  EXPECT_EQ(budget.take(0, big), big);
  EXPECT_EQ(budget.take(0, big), big);  // the count saturates instead of wrapping
  EXPECT_EQ(budget.bytes(0), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(budget.exhausted());
}
