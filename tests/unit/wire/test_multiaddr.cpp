#include "punchgate/wire/multiaddr.hpp"

#include "punchgate/wire/multibase.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <unordered_set>

namespace punchgate {
namespace {

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

Multiaddr must_parse(std::string_view text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m.ok()) << text << ": " << (m.ok() ? "" : m.error().message);
  return m.ok() ? *m : Multiaddr();
}

constexpr std::string_view kEdPeer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
constexpr std::string_view kEdPeerMultihashHex =
    "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";

struct Vector {
  std::string_view text;
  std::string_view hex;
};

// Text <-> binary pairs covering every supported protocol. The ip4/udp/tcp/ip6/ipfs ones match
// the vectors other multiaddr implementations test against; the rest follow from table.csv codes.
const std::vector<Vector>& vectors() {
  static const std::vector<Vector> v = {
      {"/ip4/127.0.0.1/udp/4001/quic-v1", "047f00000191020fa1cd03"},
      {"/ip4/127.0.0.1/udp/4001/quic", "047f00000191020fa1cc03"},
      {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
      {"/ip4/127.0.0.1/udp/0", "047f00000191020000"},
      {"/ip4/127.0.0.1/tcp/1234", "047f0000010604d2"},
      {"/ip4/255.255.255.255/tcp/65535", "04ffffffff06ffff"},
      {"/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000", "29200108a07ac542013ac986fffe317095061f40"},
      {"/ip6/::1/udp/4001/quic-v1", "2900000000000000000000000000000001" "91020fa1cd03"},
      {"/ip6/::/udp/1", "2900000000000000000000000000000000" "91020001"},
      {"/dns/example.com/udp/443/quic-v1", "350b6578616d706c652e636f6d910201bbcd03"},
      {"/dns4/example.com/tcp/443", "360b6578616d706c652e636f6d0601bb"},
      {"/dns6/a.b/udp/9", "3703612e6291020009"},
      {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
       "a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b0604d2"},
      {"/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
       "a50326" "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"},
      {"/p2p-circuit", "a202"},
      {"/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit",
       "040102030491020fa1cd03"
       "a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"
       "a202"},
  };
  return v;
}

TEST(Multiaddr, TextToBinaryVectors) {
  for (const auto& v : vectors()) {
    auto m = Multiaddr::parse(v.text);
    ASSERT_TRUE(m.ok()) << v.text << ": " << m.error().message;
    EXPECT_EQ(to_hex(m->to_bytes()), v.hex) << v.text;
    EXPECT_EQ(m->to_string(), v.text);
  }
}

TEST(Multiaddr, BinaryToTextVectors) {
  for (const auto& v : vectors()) {
    Bytes bin;
    for (size_t i = 0; i + 1 < v.hex.size(); i += 2) {
      bin.push_back(static_cast<char>(std::stoi(std::string(v.hex.substr(i, 2)), nullptr, 16)));
    }
    auto m = Multiaddr::from_bytes(bin);
    ASSERT_TRUE(m.ok()) << v.hex << ": " << m.error().message;
    EXPECT_EQ(m->to_string(), v.text);
    EXPECT_EQ(m->to_bytes(), bin);
    EXPECT_EQ(*m, must_parse(v.text));
  }
}

TEST(Multiaddr, ComponentsExposeBinaryValues) {
  auto m = must_parse("/ip4/10.0.0.1/udp/4001/quic-v1");
  const auto& c = m.components();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].protocol, MultiaddrProtocol::Ip4);
  EXPECT_EQ(to_hex(c[0].value), "0a000001");
  EXPECT_EQ(c[1].protocol, MultiaddrProtocol::Udp);
  EXPECT_EQ(to_hex(c[1].value), "0fa1");
  EXPECT_EQ(c[2].protocol, MultiaddrProtocol::QuicV1);
  EXPECT_TRUE(c[2].value.empty());
  EXPECT_EQ(protocol_name(MultiaddrProtocol::QuicV1), "quic-v1");
  EXPECT_EQ(protocol_name(MultiaddrProtocol::P2pCircuit), "p2p-circuit");
}

TEST(Multiaddr, CanonicalisesTextForms) {
  // CIDv1 peer id and the old /ipfs/ name are accepted, printed as base58 under /p2p/.
  EXPECT_EQ(must_parse("/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe").to_string(),
            "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  EXPECT_EQ(must_parse("/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC").to_string(),
            "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC");
  EXPECT_EQ(must_parse("/ip6/2001:DB8:0:0:0:0:0:1/udp/1").to_string(), "/ip6/2001:db8::1/udp/1");
  EXPECT_EQ(must_parse("/ip4/1.2.3.4/udp/0080").to_string(), "/ip4/1.2.3.4/udp/80");
  EXPECT_EQ(must_parse("/ip4/1.2.3.4/udp/80/").to_string(), "/ip4/1.2.3.4/udp/80");
  EXPECT_EQ(must_parse("/ip6/::ffff:1.2.3.4/udp/1").to_string(), "/ip6/::ffff:1.2.3.4/udp/1");
}

struct Reject {
  std::string_view text;
  std::vector<std::string_view> want;  // substrings the error must contain
};

TEST(Multiaddr, TextRejectsNameTheProblem) {
  const std::vector<Reject> cases = {
      {"", {"empty multiaddr"}},
      {"/", {"no components"}},
      {"ip4/1.2.3.4", {"does not start with '/'", "\"ip4/1.2.3.4\""}},
      {"/ip4", {"missing value for ip4", "\"/ip4\""}},
      {"/ip4/1.2.3.4/udp", {"missing value for udp", "\"/ip4/1.2.3.4/udp\""}},
      {"/ip4/1.2.3.4/udp/", {"missing value for udp"}},
      {"/ip4/1.2.3.4/udp/70000", {"invalid udp \"70000\"", "\"/ip4/1.2.3.4/udp/70000\"", "above 65535"}},
      {"/ip4/1.2.3.4/tcp/65536", {"invalid tcp \"65536\""}},
      {"/ip4/1.2.3.4/udp/12a", {"invalid udp \"12a\"", "not a port number"}},
      {"/ip4/1.2.3.4/udp/-1", {"invalid udp \"-1\""}},
      {"/ip4/1.2.3.4/udp/+1", {"invalid udp \"+1\""}},
      {"/ip4/1.2.3.4/udp/999999999999", {"invalid udp \"999999999999\"", "above 65535"}},
      {"/ip4/1.2.3.4/udp/00000000000000080", {}},  // leading zeros are only spelling
      {"/ip4/1.2.3.256", {"invalid ip4 \"1.2.3.256\"", "not an IPv4 address"}},
      {"/ip4/1.2.3", {"invalid ip4 \"1.2.3\""}},
      {"/ip4/::1", {"invalid ip4 \"::1\""}},
      {"/ip6/1.2.3.4", {"invalid ip6 \"1.2.3.4\"", "not an IPv6 address"}},
      {"/ip6/fe80::1%eth0", {"invalid ip6 \"fe80::1%eth0\""}},
      {"/ip6/2001:db8:::1", {"invalid ip6"}},
      {"/ip4/1.2.3.4/udp/1/quic-v1/garbage", {"unknown protocol \"garbage\"", "\"/ip4/1.2.3.4/udp/1/quic-v1/garbage\""}},
      {"/ip4/1.2.3.4/udp/1/quic-v1/", {}},  // one trailing slash is fine: handled below
      {"/ip4/1.2.3.4//udp/1", {"empty protocol name"}},
      {"/ip4/1.2.3.4/udp/1//", {"empty protocol name"}},
      {"/ws", {"unknown protocol \"ws\""}},
      {"/unix/tmp", {"unknown protocol \"unix\""}},
      {"/p2p/notapeerid", {"invalid p2p \"notapeerid\""}},
      {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK", {"invalid p2p"}},
      {"/dns4", {"missing value for dns4"}},
  };
  for (const auto& c : cases) {
    auto m = Multiaddr::parse(c.text);
    if (c.want.empty()) {
      EXPECT_TRUE(m.ok()) << c.text;
      continue;
    }
    ASSERT_FALSE(m.ok()) << c.text << " parsed as " << m->to_string();
    for (auto w : c.want) EXPECT_TRUE(contains(m.error().message, w)) << c.text << ": " << m.error().message;
  }
}

TEST(Multiaddr, TextRejectsOverlong) {
  std::string text = "/dns/" + std::string(kMaxMultiaddrTextLen, 'a');
  auto m = Multiaddr::parse(text);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(contains(m.error().message, "longer than")) << m.error().message;
  auto long_name = Multiaddr::parse("/dns/" + std::string(256, 'a'));
  ASSERT_FALSE(long_name.ok());
  EXPECT_TRUE(contains(long_name.error().message, "longer than 255")) << long_name.error().message;
  EXPECT_TRUE(Multiaddr::parse("/dns/" + std::string(255, 'a')).ok());

  // Short text can still encode to too many bytes; parse applies the binary cap as well.
  std::string many;
  while (many.size() < 3000) many += "/ip4/1.2.3.4";
  auto big = Multiaddr::parse(many);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(contains(big.error().message, "more than the 1024 allowed")) << big.error().message;
}

TEST(Multiaddr, TextRejectsControlCharactersInNames) {
  auto m = Multiaddr::parse(std::string_view("/dns/a\0b/udp/1", 14));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(contains(m.error().message, "0x00")) << m.error().message;
  EXPECT_FALSE(Multiaddr::parse("/dns/a\nb").ok());
  // UTF-8 names pass through untouched.
  EXPECT_EQ(must_parse("/dns/b\xc3\xbc" "cher.example").to_string(), "/dns/b\xc3\xbc" "cher.example");
}

Bytes bin(std::initializer_list<uint8_t> b) { return Bytes(b.begin(), b.end()); }

TEST(Multiaddr, BinaryRejectsNameTheProblem) {
  struct Case {
    Bytes in;
    std::vector<std::string_view> want;
  };
  const std::vector<Case> cases = {
      {Bytes{}, {"empty binary multiaddr"}},
      {bin({0x04, 0x7f, 0x00, 0x00}), {"ip4 value needs 4 bytes, 3 left", "047f0000", "offset 0"}},
      {bin({0x04, 0x7f, 0x00, 0x00, 0x01, 0x91}), {"truncated varint", "offset 5"}},
      {bin({0x04, 0x7f, 0x00, 0x00, 0x01, 0x91, 0x02, 0x0f}), {"udp value needs 2 bytes, 1 left"}},
      {bin({0xdd, 0x03}), {"unknown protocol code 0x1dd"}},  // /ws: real, but not ours
      {bin({0x90, 0x03, 0x00}), {"unknown protocol code 0x190"}},  // /unix
      {bin({0x84, 0x00}), {"not minimally encoded"}},
      {bin({0x35, 0x00}), {"empty DNS name"}},
      {bin({0x35, 0x03, 'a', '/', 'b'}), {"0x2f"}},
      {bin({0x35, 0x05, 'a', 'b'}), {"dns value needs 5 bytes, 2 left"}},
      {bin({0x35, 0x80, 0x02}), {"dns value length 256 is above the 255 allowed"}},
      {bin({0x35, 0x80}), {"dns value length", "truncated"}},
      {bin({0xa5, 0x03, 0x02, 0x12, 0x00}), {"sha2-256 multihash length 0 is not 32"}},
      {bin({0xa5, 0x03, 0x03, 0x11, 0x01, 0x00}), {"code 0x11"}},
      {bin({0xa5, 0x03, 0x00}), {"empty multihash"}},
  };
  for (const auto& c : cases) {
    auto m = Multiaddr::from_bytes(c.in);
    ASSERT_FALSE(m.ok()) << to_hex(c.in) << " parsed as " << m->to_string();
    for (auto w : c.want) EXPECT_TRUE(contains(m.error().message, w)) << to_hex(c.in) << ": " << m.error().message;
  }
  EXPECT_FALSE(Multiaddr::from_bytes(Bytes(kMaxMultiaddrBytes + 1, '\x04')).ok());
  // The longest accepted binary still has a parsable text form (found by fuzz_multiaddr).
  Bytes circuits;
  while (circuits.size() + 2 <= kMaxMultiaddrBytes) circuits += bin({0xa2, 0x02});
  auto many = Multiaddr::from_bytes(circuits);
  ASSERT_TRUE(many.ok()) << many.error().message;
  auto text = Multiaddr::parse(many->to_string());
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, *many);
}

TEST(Multiaddr, EncapsulateAndPeerIdSuffix) {
  auto relay = must_parse("/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC");
  auto circuit = relay.encapsulate(must_parse(std::string("/p2p-circuit/p2p/") + std::string(kEdPeer)));
  EXPECT_EQ(circuit.to_string(),
            "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit/p2p/" +
                std::string(kEdPeer));
  ASSERT_TRUE(circuit.peer_id_multihash().has_value());
  EXPECT_EQ(to_hex(*circuit.peer_id_multihash()), kEdPeerMultihashHex);
  EXPECT_EQ(circuit.without_peer_id().to_string(),
            "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit");

  // A relay listen address names the relay, not a peer: no peer id.
  auto listen = circuit.without_peer_id();
  EXPECT_FALSE(listen.peer_id_multihash().has_value());
  EXPECT_EQ(listen.without_peer_id(), listen);

  auto plain = must_parse("/ip4/1.2.3.4/udp/4001/quic-v1");
  EXPECT_FALSE(plain.peer_id_multihash().has_value());
  EXPECT_EQ(plain.without_peer_id(), plain);
  EXPECT_EQ(relay.without_peer_id(), plain);
  EXPECT_EQ(Multiaddr().encapsulate(plain), plain);
}

TEST(Multiaddr, EqualityOrderingAndHash) {
  auto a = must_parse("/ip4/1.2.3.4/udp/1/quic-v1");
  auto b = must_parse("/ip4/1.2.3.4/udp/2/quic-v1");
  EXPECT_EQ(a, must_parse("/ip4/1.2.3.4/udp/01/quic-v1"));
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  std::unordered_set<Multiaddr> set{a, b, must_parse("/ip4/1.2.3.4/udp/1/quic-v1")};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(Multiaddr().empty());
  EXPECT_EQ(Multiaddr().to_string(), "");
  EXPECT_EQ(Multiaddr().to_bytes(), "");
}

TEST(QuicEndpoint, AcceptsIpAndDnsForms) {
  auto ep = quic_endpoint_of(must_parse("/ip4/192.0.2.7/udp/4001/quic-v1"));
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->host, "192.0.2.7");
  EXPECT_FALSE(ep->is_dns);
  EXPECT_EQ(ep->family, AF_INET);
  EXPECT_EQ(ep->port, 4001);

  ep = quic_endpoint_of(must_parse(std::string("/ip6/2001:db8::5/udp/65535/quic-v1/p2p/") + std::string(kEdPeer)));
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->host, "2001:db8::5");
  EXPECT_EQ(ep->family, AF_INET6);
  EXPECT_EQ(ep->port, 65535);

  struct DnsCase {
    std::string_view text;
    int family;
  };
  for (auto [text, family] : {DnsCase{"/dns/relay.example/udp/443/quic-v1", AF_UNSPEC},
                              DnsCase{"/dns4/relay.example/udp/443/quic-v1", AF_INET},
                              DnsCase{"/dns6/relay.example/udp/443/quic-v1", AF_INET6}}) {
    ep = quic_endpoint_of(must_parse(text));
    ASSERT_TRUE(ep.ok()) << text << ": " << ep.error().message;
    EXPECT_EQ(ep->host, "relay.example");
    EXPECT_TRUE(ep->is_dns);
    EXPECT_EQ(ep->family, family) << text;
    EXPECT_EQ(ep->port, 443);
  }
}

TEST(QuicEndpoint, RejectsEverythingElse) {
  for (std::string_view text : {
           "/ip4/1.2.3.4/udp/4001",
           "/ip4/1.2.3.4/udp/4001/quic",
           "/ip4/1.2.3.4/tcp/4001",
           "/ip4/1.2.3.4/udp/4001/quic-v1/p2p-circuit",
           "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit/p2p/"
           "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
           "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
           "/udp/4001/quic-v1/ip4/1.2.3.4",
           "/p2p-circuit/udp/1/quic-v1",
           "/ip4/1.2.3.4/ip4/1.2.3.4/quic-v1",
       }) {
    auto ep = quic_endpoint_of(must_parse(text));
    ASSERT_FALSE(ep.ok()) << text;
    EXPECT_TRUE(contains(ep.error().message, text.substr(0, 40))) << ep.error().message;
    EXPECT_TRUE(contains(ep.error().message, "not a QUIC address")) << ep.error().message;
  }
  auto ep = quic_endpoint_of(Multiaddr());
  EXPECT_FALSE(ep.ok());
}

TEST(SockaddrConversion, Ipv4AndIpv6) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(4001);
  ASSERT_EQ(inet_pton(AF_INET, "198.51.100.9", &sin.sin_addr), 1);
  auto m = multiaddr_from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), true);
  EXPECT_EQ(m.to_string(), "/ip4/198.51.100.9/udp/4001/quic-v1");
  EXPECT_EQ(multiaddr_from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), false).to_string(),
            "/ip4/198.51.100.9/udp/4001/quic");

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(65000);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr), 1);
  m = multiaddr_from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), true);
  EXPECT_EQ(m.to_string(), "/ip6/2001:db8::42/udp/65000/quic-v1");

  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:203.0.113.1", &sin6.sin6_addr), 1);
  m = multiaddr_from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), true);
  EXPECT_EQ(m.to_string(), "/ip4/203.0.113.1/udp/65000/quic-v1");

  // The result is a valid multiaddr: it survives a binary round trip and quic_endpoint_of.
  auto again = Multiaddr::from_bytes(m.to_bytes());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, m);
  auto ep = quic_endpoint_of(m);
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->port, 65000);

  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_TRUE(multiaddr_from_sockaddr(&unix_like, true).empty());
  EXPECT_TRUE(multiaddr_from_sockaddr(nullptr, true).empty());
}

TEST(Multiaddr, WithPeerIdOnEmptyIdIsNoOp) {
  auto plain = must_parse("/ip4/1.2.3.4/udp/1/quic-v1");
  EXPECT_EQ(plain.with_peer_id(PeerId()), plain);
}

}  // namespace
}  // namespace punchgate

namespace punchgate {
namespace {

TEST(MultiaddrIpKind, UnspecifiedAndLoopback) {
  auto m = [](const char* t) { return *Multiaddr::parse(t); };
  EXPECT_TRUE(m("/ip4/0.0.0.0/udp/1/quic-v1").is_unspecified_ip());
  EXPECT_TRUE(m("/ip6/::/udp/1/quic-v1").is_unspecified_ip());
  EXPECT_FALSE(m("/ip4/0.0.0.1/udp/1/quic-v1").is_unspecified_ip());
  EXPECT_FALSE(m("/dns4/localhost/udp/1/quic-v1").is_unspecified_ip());
  EXPECT_TRUE(m("/ip4/127.9.9.9/udp/1/quic-v1").is_loopback_ip());
  EXPECT_TRUE(m("/ip6/::1/udp/1/quic-v1").is_loopback_ip());
  EXPECT_FALSE(m("/ip6/::2/udp/1/quic-v1").is_loopback_ip());
  EXPECT_FALSE(m("/ip4/128.0.0.1/udp/1/quic-v1").is_loopback_ip());
  EXPECT_EQ(join_multiaddrs({m("/ip4/1.2.3.4/udp/5/quic-v1"), m("/ip6/::1/udp/6/quic-v1")}),
            "/ip4/1.2.3.4/udp/5/quic-v1,/ip6/::1/udp/6/quic-v1");
  EXPECT_EQ(join_multiaddrs({}), "");
  EXPECT_FALSE(m("/ip4/1.2.3.4/udp/5/quic-v1").is_relayed());
  EXPECT_TRUE(m("/ip4/1.2.3.4/udp/5/quic-v1/p2p/12D3KooWQnm7Rhe2sUbAEWahJEy84MH6ZzrBXDGWnF4P2qodZUp6/p2p-circuit")
                  .is_relayed());
}

}  // namespace
}  // namespace punchgate
