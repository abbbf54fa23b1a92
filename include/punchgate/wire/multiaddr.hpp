// Multiaddr: self-describing network addresses (multiformats/multiaddr), text and binary forms.
// Only the protocols punchgate speaks are known; anything else is rejected, never skipped, since
// dropping a component would silently change where an address points.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace punchgate {

// Multicodec codes (multiformats/multicodec table.csv).
enum class MultiaddrProtocol : uint32_t {
  Ip4 = 0x04,         // 4 bytes
  Tcp = 0x06,         // 2-byte big-endian port
  Ip6 = 0x29,         // 16 bytes
  Dns = 0x35,         // varint-length-prefixed name
  Dns4 = 0x36,
  Dns6 = 0x37,
  Udp = 0x0111,       // 2-byte big-endian port
  P2pCircuit = 0x0122,
  P2p = 0x01a5,       // varint-length-prefixed peer-id multihash
  Quic = 0x01cc,      // draft-29 QUIC, no value
  QuicV1 = 0x01cd,    // RFC 9000 QUIC, no value
};

// Text name of a protocol ("ip4", "quic-v1", …).
std::string_view protocol_name(MultiaddrProtocol p);

struct MultiaddrComponent {
  MultiaddrProtocol protocol = MultiaddrProtocol::Ip4;
  Bytes value;  // binary value as on the wire, without length prefix; empty when it has none

  friend bool operator==(const MultiaddrComponent&, const MultiaddrComponent&) = default;
  friend auto operator<=>(const MultiaddrComponent&, const MultiaddrComponent&) = default;
};

// Longest binary multiaddr accepted; real ones (even relayed, with a long DNS name) stay under
// 400 bytes. Text may be up to 6x longer than its binary (/p2p-circuit: 2 bytes, 12 characters),
// and every accepted binary multiaddr must have a parsable text form, hence the larger text cap.
inline constexpr size_t kMaxMultiaddrBytes = 1024;
inline constexpr size_t kMaxMultiaddrTextLen = 8 * kMaxMultiaddrBytes;

class Multiaddr {
 public:
  Multiaddr() = default;  // empty; parse/from_bytes never produce an empty multiaddr

  // Both enforce kMaxMultiaddrBytes on the binary form, so whatever one accepts the other does too.
  static Result<Multiaddr> parse(std::string_view text);
  static Result<Multiaddr> from_bytes(BytesView bytes);

  // Canonical text: ports in decimal, ip6 as inet_ntop writes it, /p2p/ in base58btc.
  std::string to_string() const;
  Bytes to_bytes() const;

  const std::vector<MultiaddrComponent>& components() const { return components_; }
  bool empty() const { return components_.empty(); }

  // This address followed by `inner` ("/ip4/…/p2p/R" + "/p2p-circuit/p2p/T").
  Multiaddr encapsulate(const Multiaddr& inner) const;
  // Appends /p2p/<id>. An empty PeerId appends nothing.
  Multiaddr with_peer_id(const PeerId& id) const;

  // The peer id when the address ends in /p2p/<id>. Only the last component counts: in
  // "/…/p2p/R/p2p-circuit" R is the relay, not the peer this address reaches.
  // Callers of peer_id() link crypto (PeerId::from_bytes); the wire layer itself does not.
  std::optional<BytesView> peer_id_multihash() const;
  std::optional<PeerId> peer_id() const;
  // Drops a trailing /p2p/<id>, if any.
  Multiaddr without_peer_id() const;
  // The first component is /ip4/0.0.0.0 or /ip6/:: (a wildcard bind, not a place to dial).
  bool is_unspecified_ip() const;
  // The first component is /ip4/127.x.x.x or /ip6/::1.
  bool is_loopback_ip() const;
  // Goes through a relay (contains /p2p-circuit).
  bool is_relayed() const;

  friend bool operator==(const Multiaddr&, const Multiaddr&) = default;
  friend auto operator<=>(const Multiaddr&, const Multiaddr&) = default;

 private:
  friend Multiaddr multiaddr_from_sockaddr(const sockaddr* sa, bool quic_v1);
  explicit Multiaddr(std::vector<MultiaddrComponent> c) : components_(std::move(c)) {}
  std::vector<MultiaddrComponent> components_;
};

inline std::optional<PeerId> Multiaddr::peer_id() const {
  auto mh = peer_id_multihash();
  if (!mh) return std::nullopt;
  auto id = PeerId::from_bytes(*mh);  // cannot fail: components are validated on construction
  if (!id) return std::nullopt;
  return std::move(id).value();
}

// --- QUIC transport helpers --------------------------------------------------------------

struct QuicEndpointAddr {
  std::string host;  // dotted quad, IPv6 text (no brackets) or DNS name
  bool is_dns = false;
  // AF_INET or AF_INET6 for IP literals; for names the family the resolver must return:
  // AF_INET for /dns4, AF_INET6 for /dns6, 0 (AF_UNSPEC) for /dns.
  int family = 0;
  uint16_t port = 0;
};

// Accepts exactly /ip4|ip6|dns|dns4|dns6/<host>/udp/<port>/quic-v1 with an optional trailing
// /p2p/<id>; anything else (tcp, draft-29 /quic, relays, …) is an error naming the address.
Result<QuicEndpointAddr> quic_endpoint_of(const Multiaddr& addr);

// /ip4|ip6/<addr>/udp/<port>/quic-v1 (or /quic when !quic_v1) for an AF_INET/AF_INET6 socket
// address. IPv4-mapped IPv6 (::ffff:a.b.c.d, as dual-stack sockets report IPv4 peers) becomes
// /ip4. Any other family gives an empty Multiaddr.
Multiaddr multiaddr_from_sockaddr(const sockaddr* sa, bool quic_v1);

// "a,b,c" of the addresses' text forms, for logs and command output.
std::string join_multiaddrs(const std::vector<Multiaddr>& addrs);

}  // namespace punchgate

template <>
struct std::hash<punchgate::Multiaddr> {
  size_t operator()(const punchgate::Multiaddr& m) const noexcept { return std::hash<std::string>{}(m.to_bytes()); }
};
