// mDNS messages for libp2p peer discovery (libp2p/specs discovery/mdns.md): a sans-IO DNS codec
// (RFC 1035 framing, RFC 6762 multicast conventions) that builds our query and response and
// pulls peers out of others' responses. Every length is checked before it is read and every
// count is capped, so arbitrary datagrams can only produce an error.
//
// Wire shape (the one rust-libp2p and go-libp2p use):
//   query:    question  _p2p._udp.local PTR IN
//   response: answer    _p2p._udp.local PTR <instance>._p2p._udp.local
//             additional <instance>._p2p._udp.local TXT "dnsaddr=<multiaddr>/p2p/<peer id>"
//             (one TXT record per address, each character-string at most 255 bytes)
// <instance> is a random label, so the peer id never has to fit a 63-byte DNS label.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace punchgate::mdns {

inline constexpr std::string_view kServiceName = "_p2p._udp.local";

inline constexpr uint16_t kTypePtr = 12;
inline constexpr uint16_t kTypeTxt = 16;
inline constexpr uint16_t kTypeAny = 255;
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kClassAny = 255;

inline constexpr uint16_t kFlagResponse = 0x8000;       // QR
inline constexpr uint16_t kFlagAuthoritative = 0x0400;  // AA: set on every mDNS response (RFC 6762 §18.4)
inline constexpr uint16_t kClassTopBit = 0x8000;        // QU in questions, cache-flush in records

// RFC 6762 §17: no mDNS packet exceeds 9000 bytes; anything larger is not ours to parse.
inline constexpr size_t kMaxPacketBytes = 9000;
// Far more than any discovery message carries; a header announcing more is rejected outright.
inline constexpr size_t kMaxQuestions = 64;
inline constexpr size_t kMaxRecords = 256;  // answers + authorities + additionals
// RFC 1035 §3.1: a name, in wire form with its length bytes and root, is at most 255 bytes.
inline constexpr size_t kMaxNameBytes = 255;
// Compression pointers followed while reading one name. Each must also point strictly before the
// previous one, so loops are impossible anyway; the cap bounds the work on a long chain.
inline constexpr size_t kMaxPointerJumps = 128;
inline constexpr size_t kMaxLabelBytes = 63;
inline constexpr size_t kMaxTxtStringBytes = 255;
// We build responses that fit one Ethernet MTU (1500 - IP - UDP, with headroom for IP options),
// since RFC 6762 §17 asks to avoid fragmentation; more addresses go into further packets.
inline constexpr size_t kMaxResponseBytes = 1400;
// TTL of the records we send. RFC 6762 §10 recommends 120 s for records naming a host's
// addresses; nothing here expires them yet (discovered addresses stay in the peer store).
inline constexpr uint32_t kRecordTtlSeconds = 120;
// What one response may teach us: peers (PTR targets) and addresses per peer.
inline constexpr size_t kMaxPeersPerMessage = 16;
inline constexpr size_t kMaxAddrsPerPeer = 32;

// Names are kept in uncompressed wire form with ASCII letters lowercased, so comparing two names
// (case-insensitive by RFC 1035 §2.3.3) is comparing bytes, with no escaping ambiguity.
using DnsName = Bytes;

// Wire form of a dotted name ("_p2p._udp.local"); error on an empty or over-long label or name.
Result<DnsName> encode_name(std::string_view dotted);
// Dotted text of a wire-form name, for logs and tests (bytes outside printable ASCII as \xNN).
std::string name_to_text(BytesView wire);

struct DnsQuestion {
  DnsName name;
  uint16_t type = 0;
  uint16_t qclass = 0;            // without the QU bit
  bool unicast_response = false;  // QU bit (RFC 6762 §5.4)
};

struct DnsRecord {
  DnsName name;
  uint16_t type = 0;
  uint16_t rclass = 0;      // without the cache-flush bit
  bool cache_flush = false;  // RFC 6762 §10.2
  uint32_t ttl = 0;
  DnsName ptr_target;         // PTR records only
  std::vector<Bytes> txt;     // TXT records only: the character-strings, in order
};

struct DnsMessage {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::vector<DnsQuestion> questions;
  std::vector<DnsRecord> answers;
  std::vector<DnsRecord> authorities;
  std::vector<DnsRecord> additionals;

  bool is_response() const { return (flags & kFlagResponse) != 0; }
  unsigned opcode() const { return (flags >> 11) & 0xF; }
  unsigned rcode() const { return flags & 0xF; }
};

// Parses a whole DNS message. Any framing error (truncation, bad label, pointer loop or forward
// pointer, over-long name, counts above the caps, bad PTR/TXT rdata) fails the whole message:
// past a malformed record there is no trustworthy offset for the next one. Record types other
// than PTR and TXT are framed and kept without their rdata.
Result<DnsMessage> parse_message(BytesView packet);

// The query for PTR _p2p._udp.local: id 0, since RFC 6762 §18.1 wants multicast queries to
// carry id 0, and the QU bit clear, since we want answers multicast so every node learns them.
Bytes build_query();

// Our response: the PTR answer plus one TXT record per address, split over as many packets as
// needed to keep each within kMaxResponseBytes (every packet repeats the PTR answer, so each
// stands alone). Addresses whose TXT string would exceed 255 bytes, or that end in another
// peer's /p2p/, are left out. Empty result
// when no address fits (there is nothing useful to announce). `instance_label` must be 1 to 63
// bytes without dots.
Result<std::vector<Bytes>> build_response(const PeerId& self, std::string_view instance_label,
                                          const std::vector<Multiaddr>& addrs,
                                          uint32_t ttl = kRecordTtlSeconds);

// True for an mDNS query (QR clear, opcode 0) asking for PTR (or ANY) records of _p2p._udp.local.
bool is_peer_query(const DnsMessage& msg);

struct DiscoveredPeer {
  PeerId peer;
  std::vector<Multiaddr> addrs;  // without the trailing /p2p/<peer>
};

// Peers announced by an mDNS response (QR set, opcode 0, rcode 0): every PTR record for
// _p2p._udp.local names an instance, whose TXT records (in answers or additionals) carry
// "dnsaddr=<multiaddr>/p2p/<id>" strings. The first valid string fixes the instance's peer id;
// strings that do not parse, lack the /p2p/ suffix, name another peer or carry a second /p2p/
// right before it are ignored, as are
// records with TTL 0 (RFC 6762 §10.1 goodbyes), `self`, and instances with no usable address.
// Instances naming the same peer are merged. At most kMaxPeersPerMessage peers with at most
// kMaxAddrsPerPeer addresses each.
std::vector<DiscoveredPeer> extract_peers(const DnsMessage& msg, const PeerId& self);

}  // namespace punchgate::mdns
