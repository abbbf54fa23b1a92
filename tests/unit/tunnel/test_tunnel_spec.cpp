#include "punchgate/tunnel/tunnel_spec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace punchgate {
namespace {

// ed25519 test vector from peer-ids.md, as base58 and as a base32 CIDv1.
constexpr std::string_view kPeer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
constexpr std::string_view kPeerCid = "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";

std::string tunnel_text(std::string_view rest) { return std::string(kPeer) + std::string(rest); }

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

ExposeSpec expose_ok(std::string_view text) {
  auto r = parse_expose(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : ExposeSpec{};
}

TunnelSpec tunnel_ok(std::string_view text) {
  auto r = parse_tunnel(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : TunnelSpec{};
}

// The error must exist, be one line, name the whole spec, and mention `detail`.
void expect_expose_error(std::string_view text, std::string_view detail) {
  auto r = parse_expose(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  const std::string& m = r.error().message;
  EXPECT_TRUE(contains(m, "--expose")) << m;
  EXPECT_TRUE(contains(m, text)) << m;
  EXPECT_TRUE(contains(m, detail)) << "wanted \"" << detail << "\" in: " << m;
  EXPECT_FALSE(contains(m, "\n")) << m;
}

void expect_tunnel_error(std::string_view text, std::string_view detail) {
  auto r = parse_tunnel(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  const std::string& m = r.error().message;
  EXPECT_TRUE(contains(m, "--tunnel")) << m;
  EXPECT_TRUE(contains(m, text)) << m;
  EXPECT_TRUE(contains(m, detail)) << "wanted \"" << detail << "\" in: " << m;
  EXPECT_FALSE(contains(m, "\n")) << m;
}

// --- service names ---

TEST(ServiceName, Valid) {
  for (std::string_view n : {"echo", "a", "ssh-2", "web_8080", "A.b-c_d", "0day"}) {
    EXPECT_TRUE(validate_service_name(n).ok()) << n;
  }
  EXPECT_TRUE(validate_service_name(std::string(64, 'a')).ok());
}

TEST(ServiceName, Invalid) {
  EXPECT_TRUE(contains(validate_service_name("").error().message, "empty"));
  auto long_name = std::string(65, 'a');
  EXPECT_TRUE(contains(validate_service_name(long_name).error().message, "65"));
  for (std::string_view n : {"-echo", ".echo", "_echo"}) {
    auto st = validate_service_name(n);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_TRUE(contains(st.error().message, n)) << st.error().message;
    EXPECT_TRUE(contains(st.error().message, "start")) << st.error().message;
  }
  for (std::string_view n : {"ec ho", "ec/ho", "ec:ho", "ec@ho", "ec=ho", "écho"}) {
    auto st = validate_service_name(n);
    ASSERT_FALSE(st.ok()) << n;
  }
  EXPECT_TRUE(contains(validate_service_name("ec ho").error().message, "\" \""));
  // Control characters are escaped so the message stays on one line.
  auto st = validate_service_name("a\nb");
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(contains(st.error().message, "\n"));
  EXPECT_TRUE(contains(st.error().message, "a\\x0ab"));
}

// --- host:port ---

TEST(HostPort, Forms) {
  auto a = parse_host_port("127.0.0.1:22", false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 22);
  EXPECT_EQ(a->to_string(), "127.0.0.1:22");

  auto b = parse_host_port("[::1]:2222", false);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 2222);
  EXPECT_EQ(b->to_string(), "[::1]:2222");

  auto c = parse_host_port("localhost:65535", false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "localhost");
  EXPECT_EQ(c->port, 65535);

  auto d = parse_host_port("my-host.example.com:1", false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "my-host.example.com");

  auto e = parse_host_port("[2001:db8::a:b]:443", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "2001:db8::a:b");

  auto f = parse_host_port("[::ffff:10.0.0.1]:80", false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->host, "::ffff:10.0.0.1");
}

TEST(HostPort, PortZero) {
  EXPECT_TRUE(parse_host_port("0.0.0.0:0", true).ok());
  auto r = parse_host_port("0.0.0.0:0", false);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "0.0.0.0:0"));
  EXPECT_TRUE(contains(r.error().message, "port 0"));
}

TEST(HostPort, Rejects) {
  struct Case {
    std::string_view text, detail;
  };
  for (const auto& c : std::vector<Case>{
           {"", "empty"},
           {"127.0.0.1", "missing port"},
           {"127.0.0.1:", "missing port"},
           {":22", "host is empty"},
           {"127.0.0.1:65536", "out of range"},
           {"127.0.0.1:99999999999999999999", "out of range"},
           {"127.0.0.1:ssh", "not a number"},
           {"127.0.0.1:22x", "not a number"},
           {"127.0.0.1:-1", "not a number"},
           {"127.0.0.1:+22", "not a number"},
           {"127.0.0.1: 22", "not a number"},
           {"::1:22", "brackets"},
           {"fe80::1", "brackets"},
           {"[::1]", "missing port"},
           {"[::1]:", "missing port"},
           {"[::1:22", "missing ']'"},
           {"[::1]22", "expected ':PORT'"},
           {"[]:22", "empty IPv6"},
           {"[127.0.0.1]:22", "not a valid IPv6"},
           {"[::g]:22", "not a valid IPv6"},
           {"[fe80::1%eth0]:22", "not a valid IPv6"},
           {"256.0.0.1:22", "not a valid IPv4"},
           {"127.1:22", "not a valid IPv4"},
           {"1.2.3.4.5:22", "not a valid IPv4"},
           {"host_name:22", "contains \"_\""},
           {"ho st:22", "contains \" \""},
           {"a..b:22", "empty label"},
           {"example.com.:22", "empty label"},
           {"-bad.example:22", "'-'"},
       }) {
    auto r = parse_host_port(c.text, false);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.text;
    EXPECT_TRUE(contains(r.error().message, c.detail)) << c.text << " -> " << r.error().message;
  }
  auto long_host = std::string(254, 'a') + ":22";
  EXPECT_FALSE(parse_host_port(long_host, false).ok());
  std::string long_label = std::string(64, 'a') + ".com:22";
  EXPECT_FALSE(parse_host_port(long_label, false).ok());
  std::string max_host;
  while (max_host.size() + 64 <= 253) max_host += std::string(63, 'a') + ".";
  max_host += std::string(253 - max_host.size(), 'b');
  ASSERT_EQ(max_host.size(), 253u);
  EXPECT_TRUE(parse_host_port(max_host + ":22", false).ok());
}

// --- --expose ---

TEST(Expose, TcpDefault) {
  auto s = expose_ok("echo=127.0.0.1:7");
  EXPECT_EQ(s.name, "echo");
  EXPECT_EQ(s.target.host, "127.0.0.1");
  EXPECT_EQ(s.target.port, 7);
  EXPECT_EQ(s.transport, TunnelTransport::Tcp);
  EXPECT_EQ(s.to_string(), "echo=127.0.0.1:7");
}

TEST(Expose, ExplicitTcpAndUdp) {
  auto t = expose_ok("ssh=localhost:22/tcp");
  EXPECT_EQ(t.transport, TunnelTransport::Tcp);
  EXPECT_EQ(t.target.host, "localhost");
  EXPECT_EQ(t.to_string(), "ssh=localhost:22");

  auto u = expose_ok("dns=10.0.0.53:53/udp");
  EXPECT_EQ(u.transport, TunnelTransport::Udp);
  EXPECT_EQ(u.target.port, 53);
  EXPECT_EQ(u.to_string(), "dns=10.0.0.53:53/udp");
  EXPECT_STREQ(to_string(u.transport), "udp");
  EXPECT_STREQ(to_string(t.transport), "tcp");
}

TEST(Expose, Ipv6) {
  auto a = expose_ok("ssh=[::1]:22");
  EXPECT_EQ(a.target.host, "::1");
  EXPECT_EQ(a.target.port, 22);
  EXPECT_EQ(a.to_string(), "ssh=[::1]:22");

  auto b = expose_ok("web=[::1]:8080/udp");
  EXPECT_EQ(b.target.host, "::1");
  EXPECT_EQ(b.target.port, 8080);
  EXPECT_EQ(b.transport, TunnelTransport::Udp);
  EXPECT_EQ(b.to_string(), "web=[::1]:8080/udp");
}

TEST(Expose, RoundTripThroughToString) {
  for (std::string_view text : {"echo=127.0.0.1:7", "a.b_c-d=db.internal:5432", "web=[2001:db8::1]:443/udp",
                                "x=localhost:65535/udp", "y=1.2.3.4:1/tcp"}) {
    auto s = expose_ok(text);
    auto again = expose_ok(s.to_string());
    EXPECT_EQ(again.name, s.name);
    EXPECT_EQ(again.target, s.target);
    EXPECT_EQ(again.transport, s.transport);
  }
}

TEST(Expose, Rejects) {
  expect_expose_error("echo", "missing '='");
  expect_expose_error("echo127.0.0.1:7", "missing '='");
  expect_expose_error("=127.0.0.1:7", "service name is empty");
  expect_expose_error("ec ho=127.0.0.1:7", "contains");
  expect_expose_error("ec/ho=127.0.0.1:7", "contains");
  expect_expose_error("-echo=127.0.0.1:7", "start with");
  expect_expose_error("echo=", "empty");
  expect_expose_error("echo=127.0.0.1", "missing port");
  expect_expose_error("echo=127.0.0.1:", "missing port");
  expect_expose_error("echo=127.0.0.1:0", "port 0 is not allowed for an exposed service");
  expect_expose_error("echo=127.0.0.1:65536", "out of range");
  expect_expose_error("echo=127.0.0.1:seven", "\"seven\" is not a number");
  expect_expose_error("echo=::1:22", "brackets");
  expect_expose_error("echo=[::1]:22x", "not a number");
  expect_expose_error("echo=127.0.0.1:7 ", "not a number");
  expect_expose_error("echo=127.0.0.1:7/sctp", "unknown transport \"/sctp\"");
  expect_expose_error("echo=127.0.0.1:7/UDP", "unknown transport");
  expect_expose_error("echo=127.0.0.1:7/", "unknown transport");
  expect_expose_error("echo=127.0.0.1:7/udp/udp", "unknown transport");
  expect_expose_error("echo=127.0.0.1:7/udpx", "unknown transport");
  expect_expose_error("echo=bad_host:7", "bad_host");
  expect_expose_error("echo=999.0.0.1:7", "not a valid IPv4");
  expect_expose_error("echo=[::1", "missing ']'");
}

TEST(Expose, ErrorMessageShape) {
  auto r = parse_expose("echo=127.0.0.1:0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "invalid --expose \"echo=127.0.0.1:0\": port 0 is not allowed for an exposed service");
}

TEST(Expose, Duplicates) {
  std::vector<ExposeSpec> specs = {expose_ok("echo=127.0.0.1:7"), expose_ok("ssh=127.0.0.1:22"),
                                   expose_ok("dns=127.0.0.1:53/udp")};
  EXPECT_TRUE(validate_exposes(specs).ok());
  EXPECT_TRUE(validate_exposes({}).ok());

  // A name is unique across transports too.
  specs.push_back(expose_ok("echo=127.0.0.1:7/udp"));
  auto st = validate_exposes(specs);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "duplicate --expose name \"echo\"")) << st.error().message;
  EXPECT_TRUE(contains(st.error().message, "echo=127.0.0.1:7/udp")) << st.error().message;

  // The same target under two names is fine.
  EXPECT_TRUE(validate_exposes({expose_ok("a=127.0.0.1:7"), expose_ok("b=127.0.0.1:7")}).ok());
}

// --- --tunnel ---

TEST(Tunnel, TcpDefault) {
  auto s = tunnel_ok(tunnel_text(":ssh@127.0.0.1:2222"));
  EXPECT_EQ(s.peer.to_base58(), kPeer);
  EXPECT_EQ(s.service, "ssh");
  EXPECT_EQ(s.bind.host, "127.0.0.1");
  EXPECT_EQ(s.bind.port, 2222);
  EXPECT_EQ(s.transport, TunnelTransport::Tcp);
  EXPECT_EQ(s.to_string(), tunnel_text(":ssh@127.0.0.1:2222"));
}

TEST(Tunnel, UdpTcpIpv6Hostname) {
  auto u = tunnel_ok(tunnel_text(":dns@127.0.0.1:5353/udp"));
  EXPECT_EQ(u.transport, TunnelTransport::Udp);
  EXPECT_EQ(u.to_string(), tunnel_text(":dns@127.0.0.1:5353/udp"));

  auto t = tunnel_ok(tunnel_text(":ssh@127.0.0.1:2222/tcp"));
  EXPECT_EQ(t.transport, TunnelTransport::Tcp);

  auto v6 = tunnel_ok(tunnel_text(":ssh@[::1]:2222"));
  EXPECT_EQ(v6.bind.host, "::1");
  EXPECT_EQ(v6.bind.port, 2222);
  EXPECT_EQ(v6.to_string(), tunnel_text(":ssh@[::1]:2222"));

  auto v6u = tunnel_ok(tunnel_text(":dns@[::]:53/udp"));
  EXPECT_EQ(v6u.bind.host, "::");
  EXPECT_EQ(v6u.transport, TunnelTransport::Udp);

  auto h = tunnel_ok(tunnel_text(":web@localhost:8080"));
  EXPECT_EQ(h.bind.host, "localhost");
}

TEST(Tunnel, CidPeerId) {
  auto s = tunnel_ok(std::string(kPeerCid) + ":ssh@127.0.0.1:2222");
  EXPECT_EQ(s.peer.to_base58(), kPeer);
  // to_string normalises the peer id to base58.
  EXPECT_EQ(s.to_string(), tunnel_text(":ssh@127.0.0.1:2222"));
}

TEST(Tunnel, Rejects) {
  expect_tunnel_error(tunnel_text(""), "missing ':'");
  expect_tunnel_error(":ssh@127.0.0.1:2222", "missing peer id");
  expect_tunnel_error("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0:ssh@127.0.0.1:2222",
                      "bad peer id \"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0\"");
  expect_tunnel_error("notapeer:ssh@127.0.0.1:2222", "bad peer id \"notapeer\"");
  expect_tunnel_error("127.0.0.1:2222", "bad peer id");
  expect_tunnel_error(tunnel_text(":ssh"), "missing '@'");
  expect_tunnel_error(tunnel_text(":ssh127.0.0.1:2222"), "missing '@'");
  expect_tunnel_error(tunnel_text(":@127.0.0.1:2222"), "service name is empty");
  expect_tunnel_error(tunnel_text(":s$h@127.0.0.1:2222"), "contains \"$\"");
  expect_tunnel_error(tunnel_text(":ssh@"), "empty");
  expect_tunnel_error(tunnel_text(":ssh@127.0.0.1"), "missing port");
  expect_tunnel_error(tunnel_text(":ssh@127.0.0.1:0"), "port 0 is not allowed for a tunnel bind");
  expect_tunnel_error(tunnel_text(":ssh@127.0.0.1:65536"), "out of range");
  expect_tunnel_error(tunnel_text(":ssh@127.0.0.1:22x"), "not a number");
  expect_tunnel_error(tunnel_text(":ssh@::1:2222"), "brackets");
  expect_tunnel_error(tunnel_text(":ssh@[::1]:2222/sctp"), "unknown transport \"/sctp\"");
  expect_tunnel_error(tunnel_text(":ssh@127.0.0.1:2222@x"), "not a number");
  expect_tunnel_error(tunnel_text(":ssh@[::1]:2222 "), "not a number");
  expect_tunnel_error(tunnel_text(":ssh@bad_host:2222"), "bad_host");
}

TEST(Tunnel, Duplicates) {
  std::vector<TunnelSpec> specs = {tunnel_ok(tunnel_text(":ssh@127.0.0.1:2222")),
                                   // Same port, other transport: different sockets.
                                   tunnel_ok(tunnel_text(":dns@127.0.0.1:2222/udp")),
                                   // Same port, other host.
                                   tunnel_ok(tunnel_text(":web@127.0.0.2:2222")),
                                   tunnel_ok(tunnel_text(":web@[::1]:2222"))};
  EXPECT_TRUE(validate_tunnels(specs).ok());
  EXPECT_TRUE(validate_tunnels({}).ok());

  auto with = [&](std::string_view extra) {
    auto copy = specs;
    copy.push_back(tunnel_ok(tunnel_text(extra)));
    return validate_tunnels(copy);
  };
  auto st = with(":other@127.0.0.1:2222/tcp");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "duplicate tunnel bind 127.0.0.1:2222/tcp")) << st.error().message;
  EXPECT_TRUE(contains(st.error().message, ":other@127.0.0.1:2222")) << st.error().message;

  auto udp = with(":x@127.0.0.1:2222/udp");
  ASSERT_FALSE(udp.ok());
  EXPECT_TRUE(contains(udp.error().message, "127.0.0.1:2222/udp")) << udp.error().message;

  // The same IPv6 address written differently is still the same bind.
  auto v6 = with(":x@[0:0::1]:2222");
  ASSERT_FALSE(v6.ok());
  EXPECT_TRUE(contains(v6.error().message, "[0:0::1]:2222/tcp")) << v6.error().message;

  // Hostnames compare case-insensitively.
  auto h1 = validate_tunnels({tunnel_ok(tunnel_text(":a@LocalHost:1")), tunnel_ok(tunnel_text(":b@localhost:1"))});
  EXPECT_FALSE(h1.ok());
}

}  // namespace
}  // namespace punchgate
