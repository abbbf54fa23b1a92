#include "discovery/mdns_packet.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace punchgate::mdns {
namespace {

constexpr std::string_view kPeerA = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
constexpr std::string_view kPeerB = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC";

PeerId peer(std::string_view text) {
  auto p = PeerId::parse(text);
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? *p : PeerId();
}

Multiaddr ma(std::string_view text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m.ok()) << text << ": " << (m.ok() ? "" : m.error().message);
  return m.ok() ? *m : Multiaddr();
}

Bytes unhex(std::string_view hex) {
  Bytes out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ' && c != '\n') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// Hand-assembled DNS messages for the parser tests.
struct Packet {
  Bytes b;
  Packet& u8(uint8_t v) { b.push_back(static_cast<char>(v)); return *this; }
  Packet& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  Packet& u32(uint32_t v) { return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v)); }
  Packet& raw(std::string_view s) { b += s; return *this; }
  Packet& label(std::string_view s) { return u8(static_cast<uint8_t>(s.size())).raw(s); }
  Packet& name(std::string_view dotted) {
    auto n = encode_name(dotted);
    EXPECT_TRUE(n.ok()) << dotted;
    return raw(n.ok() ? *n : Bytes());
  }
  Packet& ptr(uint16_t offset) { return u16(static_cast<uint16_t>(0xC000 | offset)); }
  Packet& header(uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    return u16(0).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  // type, class, ttl and rdlength; the caller appends `rdlength` bytes of data.
  Packet& rr(uint16_t type, uint16_t cls, uint32_t ttl, uint16_t rdlength) {
    return u16(type).u16(cls).u32(ttl).u16(rdlength);
  }
  Packet& txt_rr(uint32_t ttl, const std::vector<std::string>& strings) {
    size_t len = 0;
    for (const auto& s : strings) len += 1 + s.size();
    rr(kTypeTxt, kClassIn, ttl, static_cast<uint16_t>(len));
    for (const auto& s : strings) label(s);  // a character-string has the same shape as a label
    return *this;
  }
};

std::string dnsaddr(std::string_view addr, std::string_view id) {
  return "dnsaddr=" + std::string(addr) + "/p2p/" + std::string(id);
}

std::vector<std::string> addr_texts(const DiscoveredPeer& p) {
  std::vector<std::string> out;
  for (const auto& a : p.addrs) out.push_back(a.to_string());
  return out;
}

// --- names ---------------------------------------------------------------------------------

TEST(MdnsName, EncodeAndText) {
  auto n = encode_name("_p2p._udp.local");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, Bytes("\x04_p2p\x04_udp\x05local\x00", 17));
  EXPECT_EQ(name_to_text(*n), "_p2p._udp.local");
  EXPECT_EQ(*encode_name("_P2P._UDP.Local."), *n);  // lowercased, trailing dot is the root
  EXPECT_FALSE(encode_name("a..b").ok());
  EXPECT_FALSE(encode_name(std::string(64, 'a') + ".local").ok());
  EXPECT_TRUE(encode_name(std::string(63, 'a') + ".local").ok());
  std::string long_name;
  for (int i = 0; i < 4; ++i) long_name += std::string(63, 'a') + ".";  // 4*64 + root = 257 bytes
  EXPECT_FALSE(encode_name(long_name).ok());
}

// --- query ---------------------------------------------------------------------------------

TEST(MdnsQuery, ByteExact) {
  // Checked by hand against RFC 1035 §4.1: id 0, flags 0, QDCOUNT 1, other counts 0, then
  // 4 "_p2p" 4 "_udp" 5 "local" 0, QTYPE 12 (PTR), QCLASS 1 (IN, QU bit clear).
  const Bytes expected = unhex(
      "0000 0000 0001 0000 0000 0000"
      "04 5f703270 04 5f756470 05 6c6f63616c 00"
      "000c 0001");
  EXPECT_EQ(build_query(), expected);
  EXPECT_EQ(build_query().size(), 33u);
}

TEST(MdnsQuery, RoundTrip) {
  auto m = parse_message(build_query());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(m->is_response());
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(name_to_text(m->questions[0].name), "_p2p._udp.local");
  EXPECT_EQ(m->questions[0].type, kTypePtr);
  EXPECT_EQ(m->questions[0].qclass, kClassIn);
  EXPECT_FALSE(m->questions[0].unicast_response);
  EXPECT_TRUE(is_peer_query(*m));
  EXPECT_TRUE(extract_peers(*m, PeerId()).empty());
}

TEST(MdnsQuery, Recognition) {
  // QU bit set, mixed case, ANY type: still our question.
  Packet p;
  p.header(0, 1, 0, 0, 0).name("_P2P._Udp.LOCAL").u16(kTypeAny).u16(0x8001);
  auto m = parse_message(p.b);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->questions[0].unicast_response);
  EXPECT_TRUE(is_peer_query(*m));

  Packet other;
  other.header(0, 1, 0, 0, 0).name("_http._tcp.local").u16(kTypePtr).u16(kClassIn);
  EXPECT_FALSE(is_peer_query(*parse_message(other.b)));

  Packet a_record;
  a_record.header(0, 1, 0, 0, 0).name("_p2p._udp.local").u16(1).u16(kClassIn);
  EXPECT_FALSE(is_peer_query(*parse_message(a_record.b)));

  Packet not_query;  // opcode 4 (NOTIFY)
  not_query.header(0x2000, 1, 0, 0, 0).name("_p2p._udp.local").u16(kTypePtr).u16(kClassIn);
  EXPECT_FALSE(is_peer_query(*parse_message(not_query.b)));
}

// --- response ------------------------------------------------------------------------------

TEST(MdnsResponse, ByteExact) {
  // One address, instance "x". Hand-checked layout:
  //   header: id 0, flags 0x8400 (QR, AA), QD 0, AN 1, NS 0, AR 1
  //   answer @12: _p2p._udp.local PTR IN ttl 120, rdlength 4: 01 'x' + pointer to offset 12
  //   additional: pointer to offset 39 (12 + 17 name + 10 fixed = the PTR's rdata, "x._p2p…"),
  //               TXT, class 0x8001 (cache-flush + IN), ttl 120, rdlength 95, one 94-byte string.
  const std::string txt = dnsaddr("/ip4/1.2.3.4/udp/4001/quic-v1", kPeerA);
  ASSERT_EQ(txt.size(), 94u);
  const Bytes expected = unhex(
                             "0000 8400 0000 0001 0000 0001"
                             "04 5f703270 04 5f756470 05 6c6f63616c 00"
                             "000c 0001 00000078 0004 01 78 c00c"
                             "c027 0010 8001 00000078 005f 5e") +
                         txt;
  auto packets = build_response(peer(kPeerA), "x", {ma("/ip4/1.2.3.4/udp/4001/quic-v1")});
  ASSERT_TRUE(packets.ok()) << packets.error().message;
  ASSERT_EQ(packets->size(), 1u);
  EXPECT_EQ((*packets)[0], expected);
}

TEST(MdnsResponse, RoundTrip) {
  const std::string label = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
  std::vector<Multiaddr> addrs = {ma("/ip4/192.168.1.7/udp/4001/quic-v1"), ma("/ip6/fe80::1/udp/4001/quic-v1"),
                                  ma("/ip4/10.0.0.1/udp/5/quic-v1/p2p/" + std::string(kPeerA))};
  auto packets = build_response(peer(kPeerA), label, addrs);
  ASSERT_TRUE(packets.ok()) << packets.error().message;
  ASSERT_EQ(packets->size(), 1u);

  auto m = parse_message((*packets)[0]);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->is_response());
  EXPECT_EQ(m->flags, 0x8400);
  EXPECT_TRUE(m->questions.empty());
  ASSERT_EQ(m->answers.size(), 1u);
  const DnsRecord& ptr = m->answers[0];
  EXPECT_EQ(ptr.type, kTypePtr);
  EXPECT_FALSE(ptr.cache_flush);
  EXPECT_EQ(ptr.ttl, kRecordTtlSeconds);
  EXPECT_EQ(name_to_text(ptr.name), "_p2p._udp.local");
  // Names are kept lowercased: the case of the label does not matter for matching.
  EXPECT_EQ(name_to_text(ptr.ptr_target), "abcdefghijklmnopqrstuvwxyz0123456789._p2p._udp.local");
  ASSERT_EQ(m->additionals.size(), 3u);
  for (const DnsRecord& r : m->additionals) {
    EXPECT_EQ(r.type, kTypeTxt);
    EXPECT_TRUE(r.cache_flush);
    EXPECT_EQ(r.name, ptr.ptr_target);
    ASSERT_EQ(r.txt.size(), 1u);
  }
  EXPECT_EQ(m->additionals[0].txt[0], dnsaddr("/ip4/192.168.1.7/udp/4001/quic-v1", kPeerA));
  // An address that already carries our /p2p/ gets it once, not twice.
  EXPECT_EQ(m->additionals[2].txt[0], dnsaddr("/ip4/10.0.0.1/udp/5/quic-v1", kPeerA));

  EXPECT_FALSE(is_peer_query(*m));
  auto peers = extract_peers(*m, peer(kPeerB));
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].peer, peer(kPeerA));
  EXPECT_EQ(addr_texts(peers[0]), (std::vector<std::string>{"/ip4/192.168.1.7/udp/4001/quic-v1",
                                                             "/ip6/fe80::1/udp/4001/quic-v1",
                                                             "/ip4/10.0.0.1/udp/5/quic-v1"}));
  // Our own response (multicast loop brings it back) teaches nothing.
  EXPECT_TRUE(extract_peers(*m, peer(kPeerA)).empty());
}

TEST(MdnsResponse, SplitsIntoPacketsAndSkipsOverlongAddresses) {
  std::vector<Multiaddr> addrs;
  for (int i = 0; i < 40; ++i) addrs.push_back(ma("/ip4/10.0.0." + std::to_string(i) + "/udp/4001/quic-v1"));
  // dnsaddr= + /dns/<200 chars>/udp/1/quic-v1 + /p2p/<52> is well over 255 bytes.
  addrs.push_back(ma("/dns/" + std::string(200, 'a') + "/udp/1/quic-v1"));
  auto packets = build_response(peer(kPeerA), "inst", addrs);
  ASSERT_TRUE(packets.ok()) << packets.error().message;
  ASSERT_GT(packets->size(), 1u);
  std::vector<std::string> seen;
  for (const Bytes& p : *packets) {
    EXPECT_LE(p.size(), kMaxResponseBytes);
    auto m = parse_message(p);
    ASSERT_TRUE(m.ok()) << m.error().message;
    ASSERT_EQ(m->answers.size(), 1u);  // every packet stands alone
    auto peers = extract_peers(*m, PeerId());
    ASSERT_EQ(peers.size(), 1u);
    for (auto& t : addr_texts(peers[0])) seen.push_back(t);
  }
  ASSERT_EQ(seen.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(seen[i], "/ip4/10.0.0." + std::to_string(i) + "/udp/4001/quic-v1");
}

TEST(MdnsResponse, NothingToAnnounceAndBadLabels) {
  auto none = build_response(peer(kPeerA), "x", {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  const std::vector<Multiaddr> one = {ma("/ip4/1.2.3.4/udp/1/quic-v1")};
  EXPECT_FALSE(build_response(peer(kPeerA), "", one).ok());
  EXPECT_FALSE(build_response(peer(kPeerA), "a.b", one).ok());
  EXPECT_FALSE(build_response(peer(kPeerA), std::string(64, 'a'), one).ok());
  // An address of another peer is not ours to announce.
  auto foreign = build_response(peer(kPeerA), "x", {ma("/ip4/1.2.3.4/udp/1/quic-v1/p2p/" + std::string(kPeerB))});
  ASSERT_TRUE(foreign.ok());
  EXPECT_TRUE(foreign->empty());
  EXPECT_TRUE(build_response(peer(kPeerA), std::string(63, 'a'), one).ok());
}

// --- parsing other implementations' shapes ---------------------------------------------------

TEST(MdnsParse, CompressionPointersAndCase) {
  // go-libp2p style: PTR answer, then TXT in additionals whose owner name is compressed to the
  // PTR target, which itself ends in a pointer; names in odd case; an SRV and an A record that
  // we frame and skip; one TXT record carrying several strings.
  Packet p;
  p.header(0x8400, 0, 1, 0, 3);
  const uint16_t service_at = static_cast<uint16_t>(p.b.size());  // 12
  p.label("_P2P").label("_UDP").label("local").u8(0).rr(kTypePtr, kClassIn, 120, 5 + 2);
  const uint16_t instance_at = static_cast<uint16_t>(p.b.size());  // 39: "Peer" + pointer to 12
  p.label("Peer").ptr(service_at);
  // SRV (type 33): priority, weight, port, target "host.local"
  p.ptr(instance_at).rr(33, 0x8001, 120, 6 + 12).u16(0).u16(0).u16(4001).name("host.local");
  // A (type 1) for host.local, its owner compressed to the SRV target
  p.ptr(static_cast<uint16_t>(p.b.size() - 12)).rr(1, 0x8001, 120, 4).raw(std::string("\x0a\x00\x00\x01", 4));
  // TXT: owner is a pointer to the instance name, which itself ends in a pointer (a chain).
  p.ptr(instance_at).txt_rr(120, {"id=whatever", dnsaddr("/ip4/10.0.0.1/udp/4001/quic-v1", kPeerA), "",
                                  "DNSADDR=/ip4/10.0.0.2/udp/4001/quic-v1/p2p/" + std::string(kPeerA)});

  auto m = parse_message(p.b);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->additionals.size(), 3u);
  EXPECT_EQ(m->additionals[0].type, 33);
  EXPECT_EQ(name_to_text(m->additionals[1].name), "host.local");
  EXPECT_EQ(name_to_text(m->additionals[2].name), "peer._p2p._udp.local");
  EXPECT_EQ(m->additionals[2].txt.size(), 4u);
  auto peers = extract_peers(*m, PeerId());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].peer, peer(kPeerA));
  EXPECT_EQ(addr_texts(peers[0]),
            (std::vector<std::string>{"/ip4/10.0.0.1/udp/4001/quic-v1", "/ip4/10.0.0.2/udp/4001/quic-v1"}));
}

TEST(MdnsParse, RustLibp2pShapeBareInstanceName) {
  // rust-libp2p names the instance with a single label (no service suffix) and puts the TXT
  // records in additionals; matching goes by the PTR target, whatever it is.
  Packet p;
  p.header(0x8400, 0, 1, 0, 1);
  p.name("_p2p._udp.local").rr(kTypePtr, kClassIn, 360, 5).label("abc").u8(0);
  p.label("abc").u8(0).txt_rr(360, {dnsaddr("/ip4/192.168.0.2/tcp/4001", kPeerB)});
  auto m = parse_message(p.b);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto peers = extract_peers(*m, PeerId());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].peer, peer(kPeerB));
  EXPECT_EQ(addr_texts(peers[0]), (std::vector<std::string>{"/ip4/192.168.0.2/tcp/4001"}));
}

TEST(MdnsParse, RelayedAddressKeepsItsRelay) {
  const std::string relayed = "/ip4/5.6.7.8/udp/4001/quic-v1/p2p/" + std::string(kPeerB) + "/p2p-circuit";
  auto packets = build_response(peer(kPeerA), "r", {ma(relayed)});
  ASSERT_TRUE(packets.ok());
  ASSERT_EQ(packets->size(), 1u);
  auto m = parse_message((*packets)[0]);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto peers = extract_peers(*m, PeerId());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].peer, peer(kPeerA));
  EXPECT_EQ(addr_texts(peers[0]), (std::vector<std::string>{relayed}));
}

TEST(MdnsParse, IgnoresWhatDoesNotParse) {
  Packet p;
  p.header(0x8400, 0, 3, 0, 5);
  const uint16_t service_at = static_cast<uint16_t>(p.b.size());
  p.name("_p2p._udp.local").rr(kTypePtr, kClassIn, 120, 3).label("a").u8(0);
  p.ptr(service_at).rr(kTypePtr, kClassIn, 120, 3).label("b").u8(0);
  p.ptr(service_at).rr(kTypePtr, kClassIn, 0, 3).label("c").u8(0);  // goodbye: ignored
  p.name("a").txt_rr(120, {
                              "dnsaddr=/ip4/1.2.3.4/udp/1/quic-v1",                        // no /p2p/
                              "dnsaddr=not a multiaddr",                                  // garbage
                              "dnsaddr=/ip4/1.2.3.4/udp/1/quic-v1/p2p/12D3KooWnotapeer",  // bad id
                              dnsaddr("/ip4/1.1.1.1/udp/1/quic-v1", kPeerA),             // fixes the peer
                              dnsaddr("/ip4/2.2.2.2/udp/1/quic-v1", kPeerB),             // another peer: ignored
                              dnsaddr("/ip4/1.1.1.1/udp/1/quic-v1", kPeerA),             // duplicate
                              dnsaddr("/ip4/7.7.7.7/udp/1/quic-v1/p2p/" + std::string(kPeerB), kPeerA),  // 2 ids
                          });
  p.name("b").txt_rr(120, {dnsaddr("/ip4/3.3.3.3/udp/1/quic-v1", kPeerA)});  // same peer: merged
  p.name("c").txt_rr(120, {dnsaddr("/ip4/4.4.4.4/udp/1/quic-v1", kPeerB)});
  p.name("a").txt_rr(0, {dnsaddr("/ip4/5.5.5.5/udp/1/quic-v1", kPeerA)});  // TTL 0
  p.name("zzz").txt_rr(120, {dnsaddr("/ip4/6.6.6.6/udp/1/quic-v1", kPeerB)});  // no PTR names it
  auto m = parse_message(p.b);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto peers = extract_peers(*m, PeerId());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].peer, peer(kPeerA));
  EXPECT_EQ(addr_texts(peers[0]),
            (std::vector<std::string>{"/ip4/1.1.1.1/udp/1/quic-v1", "/ip4/3.3.3.3/udp/1/quic-v1"}));

  // The same records in a message with an error rcode, or a non-response, count for nothing.
  Bytes bad_rcode = p.b;
  bad_rcode[3] = static_cast<char>(bad_rcode[3] | 0x03);
  EXPECT_TRUE(extract_peers(*parse_message(bad_rcode), PeerId()).empty());
  Bytes as_query = p.b;
  as_query[2] = 0;
  EXPECT_TRUE(extract_peers(*parse_message(as_query), PeerId()).empty());
}

// --- malformed input -----------------------------------------------------------------------

TEST(MdnsParse, PointerLoopsAndForwardPointersRejected) {
  {  // a name that is a pointer to itself
    Packet p;
    p.header(0, 1, 0, 0, 0).ptr(12).u16(kTypePtr).u16(kClassIn);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // label then a pointer back to the label: points before itself, yet loops forever
    Packet p;
    p.header(0, 1, 0, 0, 0).label("a").ptr(12).u16(kTypePtr).u16(kClassIn);
    auto m = parse_message(p.b);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("backwards"), std::string::npos) << m.error().message;
  }
  {  // forward pointer
    Packet p;
    p.header(0, 1, 0, 0, 0).ptr(14).name("x").u16(kTypePtr).u16(kClassIn);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // two names pointing at each other: the first is a forward pointer
    Packet p;
    p.header(0, 2, 0, 0, 0).ptr(18).u16(kTypePtr).u16(kClassIn).ptr(12).u16(kTypePtr).u16(kClassIn);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // a pointer into the PTR rdata region that loops through a later segment
    Packet p;
    p.header(0x8400, 0, 1, 0, 0).name("_p2p._udp.local").rr(kTypePtr, kClassIn, 1, 4).label("q").ptr(39);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // a legitimate chain of pointers, each strictly backwards, is fine
    Packet p;
    p.header(0, 3, 0, 0, 0);
    p.name("local").u16(kTypePtr).u16(kClassIn);                // @12
    p.label("_udp").ptr(12).u16(kTypePtr).u16(kClassIn);        // @23
    p.label("_p2p").ptr(23).u16(kTypePtr).u16(kClassIn);        // @34
    auto m = parse_message(p.b);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(name_to_text(m->questions[2].name), "_p2p._udp.local");
    EXPECT_TRUE(is_peer_query(*m));
  }
}

TEST(MdnsParse, NameLimits) {
  {  // reserved label types 0x40 and 0x80
    for (uint8_t t : {0x40, 0x80}) {
      Packet p;
      p.header(0, 1, 0, 0, 0).u8(t).u8(0).u8(0).u16(kTypePtr).u16(kClassIn);
      EXPECT_FALSE(parse_message(p.b).ok()) << int(t);
    }
  }
  {  // 255 bytes is the limit: 3 labels of 63 + 1 of 61 + root = 4*64 - 2 + 1 = 255
    Packet ok;
    ok.header(0, 1, 0, 0, 0);
    for (int i = 0; i < 3; ++i) ok.label(std::string(63, 'a'));
    ok.label(std::string(61, 'b')).u8(0).u16(kTypePtr).u16(kClassIn);
    auto m = parse_message(ok.b);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->questions[0].name.size(), 255u);

    Packet too_long;
    too_long.header(0, 1, 0, 0, 0);
    for (int i = 0; i < 3; ++i) too_long.label(std::string(63, 'a'));
    too_long.label(std::string(62, 'b')).u8(0).u16(kTypePtr).u16(kClassIn);
    EXPECT_FALSE(parse_message(too_long.b).ok());
  }
  {  // the limit holds across pointers: a long suffix reached by pointer plus a long prefix
    Packet p;
    p.header(0, 2, 0, 0, 0);
    for (int i = 0; i < 3; ++i) p.label(std::string(63, 'a'));
    p.u8(0).u16(kTypePtr).u16(kClassIn);  // 193-byte name at offset 12
    p.label(std::string(63, 'c')).ptr(12).u16(kTypePtr).u16(kClassIn);  // 64 + 193 = 257 > 255
    EXPECT_FALSE(parse_message(p.b).ok());
  }
}

TEST(MdnsParse, TruncationAtEveryOffset) {
  auto packets = build_response(peer(kPeerA), "inst", {ma("/ip4/1.2.3.4/udp/4001/quic-v1"),
                                                       ma("/ip6/::1/udp/4001/quic-v1")});
  ASSERT_TRUE(packets.ok());
  const Bytes& full = (*packets)[0];
  ASSERT_TRUE(parse_message(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(parse_message(BytesView(full).substr(0, n)).ok()) << "prefix of " << n << " bytes parsed";
  }
  const Bytes query = build_query();
  for (size_t n = 0; n < query.size(); ++n) EXPECT_FALSE(parse_message(BytesView(query).substr(0, n)).ok()) << n;
}

TEST(MdnsParse, RdataBounds) {
  {  // TXT character-string longer than its record
    Packet p;
    p.header(0x8400, 0, 1, 0, 0).name("a").rr(kTypeTxt, kClassIn, 1, 3).u8(5).raw("ab");
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // PTR target running past its rdlength (the bytes exist, but belong to the next record)
    Packet p;
    p.header(0x8400, 0, 2, 0, 0).name("a").rr(kTypePtr, kClassIn, 1, 2).label("b").u8(0);
    p.name("a").rr(1, kClassIn, 1, 0);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // rdlength beyond the packet
    Packet p;
    p.header(0x8400, 0, 1, 0, 0).name("a").rr(1, kClassIn, 1, 100).raw("abcd");
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {  // an empty TXT record (zero-length rdata) is valid and carries nothing
    Packet p;
    p.header(0x8400, 0, 1, 0, 0).name("a").rr(kTypeTxt, kClassIn, 1, 0);
    auto m = parse_message(p.b);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_TRUE(m->answers[0].txt.empty());
  }
}

TEST(MdnsParse, CountAndSizeCaps) {
  {
    Packet p;
    p.header(0, static_cast<uint16_t>(kMaxQuestions + 1), 0, 0, 0);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {
    Packet p;
    p.header(0x8400, 0, 100, 100, 100);
    auto m = parse_message(p.b);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("records exceed"), std::string::npos) << m.error().message;
  }
  {  // counts larger than the data: truncation, not an over-read
    Packet p;
    p.header(0x8400, 0, 0xFFFF, 0, 0);
    EXPECT_FALSE(parse_message(p.b).ok());
  }
  {
    Bytes big(kMaxPacketBytes + 1, '\0');
    EXPECT_FALSE(parse_message(big).ok());
  }
  {  // trailing bytes after the counted sections are tolerated
    Bytes q = build_query() + "junk";
    EXPECT_TRUE(parse_message(q).ok());
  }
}

}  // namespace
}  // namespace punchgate::mdns
