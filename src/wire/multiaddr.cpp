#include "punchgate/wire/multiaddr.hpp"

#include "punchgate/wire/multibase.hpp"
#include "punchgate/wire/varint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace punchgate {

namespace {

enum class ValueKind { None, Fixed, LengthPrefixed };

struct ProtocolInfo {
  MultiaddrProtocol protocol;
  std::string_view name;
  ValueKind kind;
  size_t size;  // Fixed: exact value size; LengthPrefixed: maximum value size
};

// DNS names are at most 253 characters; 255 leaves room for a trailing dot.
constexpr size_t kMaxDnsNameLen = 255;

constexpr std::array<ProtocolInfo, 11> kProtocols = {{
    {MultiaddrProtocol::Ip4, "ip4", ValueKind::Fixed, 4},
    {MultiaddrProtocol::Tcp, "tcp", ValueKind::Fixed, 2},
    {MultiaddrProtocol::Ip6, "ip6", ValueKind::Fixed, 16},
    {MultiaddrProtocol::Dns, "dns", ValueKind::LengthPrefixed, kMaxDnsNameLen},
    {MultiaddrProtocol::Dns4, "dns4", ValueKind::LengthPrefixed, kMaxDnsNameLen},
    {MultiaddrProtocol::Dns6, "dns6", ValueKind::LengthPrefixed, kMaxDnsNameLen},
    {MultiaddrProtocol::Udp, "udp", ValueKind::Fixed, 2},
    {MultiaddrProtocol::P2pCircuit, "p2p-circuit", ValueKind::None, 0},
    {MultiaddrProtocol::P2p, "p2p", ValueKind::LengthPrefixed, kMaxIdentityDigestLen + 4},
    {MultiaddrProtocol::Quic, "quic", ValueKind::None, 0},
    {MultiaddrProtocol::QuicV1, "quic-v1", ValueKind::None, 0},
}};

const ProtocolInfo* find_by_code(uint64_t code) {
  for (const auto& p : kProtocols) {
    if (static_cast<uint64_t>(p.protocol) == code) return &p;
  }
  return nullptr;
}

const ProtocolInfo* find_by_name(std::string_view name) {
  // "ipfs" is the historical name of p2p; still accepted on input, never printed.
  if (name == "ipfs") name = "p2p";
  for (const auto& p : kProtocols) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ProtocolInfo& info_of(MultiaddrProtocol protocol) {
  const ProtocolInfo* p = find_by_code(static_cast<uint64_t>(protocol));
  assert(p != nullptr);  // MultiaddrProtocol only names table entries
  return *p;
}

bool is_dns(MultiaddrProtocol p) {
  return p == MultiaddrProtocol::Dns || p == MultiaddrProtocol::Dns4 || p == MultiaddrProtocol::Dns6;
}

// A name must survive the text form: no '/' (the separator) and no control characters.
// Non-ASCII bytes pass, since names may be UTF-8 (IDNs).
Status check_dns_name(std::string_view name) {
  if (name.empty()) return make_error("empty DNS name");
  if (name.size() > kMaxDnsNameLen) {
    return make_error("DNS name of {} bytes is longer than {}", name.size(), kMaxDnsNameLen);
  }
  for (char c : name) {
    auto u = static_cast<uint8_t>(c);
    if (c == '/' || u < 0x20 || u == 0x7f) return make_error("DNS name {} contains byte 0x{:02x}", quote_for_error(name), u);
  }
  return {};
}

// Checks a binary value against the protocol's rules (shared by both parsers, so anything
// from_bytes accepts can be printed and parsed back).
Status check_value(const ProtocolInfo& info, BytesView value) {
  if (info.kind == ValueKind::Fixed && value.size() != info.size) {
    return make_error("{} value has {} bytes, want {}", info.name, value.size(), info.size);
  }
  if (is_dns(info.protocol)) return check_dns_name(value);
  if (info.protocol == MultiaddrProtocol::P2p) return validate_peer_id_multihash(value);
  return {};
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return make_error("not a port number");
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return make_error("not a port number");
    port = port * 10 + static_cast<uint32_t>(c - '0');
    if (port > 65535) return make_error("port is above 65535");  // also stops overflow
  }
  return static_cast<uint16_t>(port);
}

// Text value -> binary value. Errors here are short reasons; parse() adds the context.
Result<Bytes> value_from_text(const ProtocolInfo& info, std::string_view text) {
  switch (info.protocol) {
    case MultiaddrProtocol::Ip4:
    case MultiaddrProtocol::Ip6: {
      int family = info.protocol == MultiaddrProtocol::Ip4 ? AF_INET : AF_INET6;
      std::array<unsigned char, 16> out{};
      // inet_pton wants a NUL-terminated copy; anything longer than INET6_ADDRSTRLEN is not an address.
      if (text.size() >= INET6_ADDRSTRLEN || inet_pton(family, std::string(text).c_str(), out.data()) != 1) {
        return make_error("not an {} address", info.name == "ip4" ? "IPv4" : "IPv6");
      }
      return Bytes(reinterpret_cast<const char*>(out.data()), info.size);
    }
    case MultiaddrProtocol::Tcp:
    case MultiaddrProtocol::Udp: {
      auto port = parse_port(text);
      if (!port) return port.error();
      Bytes b(2, '\0');
      b[0] = static_cast<char>(*port >> 8);
      b[1] = static_cast<char>(*port & 0xff);
      return b;
    }
    case MultiaddrProtocol::Dns:
    case MultiaddrProtocol::Dns4:
    case MultiaddrProtocol::Dns6: {
      PG_TRY(check_dns_name(text));
      return Bytes(text);
    }
    case MultiaddrProtocol::P2p:
      return decode_peer_id_text(text);
    case MultiaddrProtocol::P2pCircuit:
    case MultiaddrProtocol::Quic:
    case MultiaddrProtocol::QuicV1:
      break;
  }
  return Bytes{};
}

// Binary value (already validated) -> text.
std::string value_to_text(const MultiaddrComponent& c) {
  const auto* v = data_u8(c.value);
  switch (c.protocol) {
    case MultiaddrProtocol::Ip4:
      return fmt::format("{}.{}.{}.{}", v[0], v[1], v[2], v[3]);
    case MultiaddrProtocol::Ip6: {
      std::array<char, INET6_ADDRSTRLEN> buf{};
      inet_ntop(AF_INET6, v, buf.data(), buf.size());
      return buf.data();
    }
    case MultiaddrProtocol::Tcp:
    case MultiaddrProtocol::Udp:
      return std::to_string((static_cast<unsigned>(v[0]) << 8) | v[1]);
    case MultiaddrProtocol::Dns:
    case MultiaddrProtocol::Dns4:
    case MultiaddrProtocol::Dns6:
      return c.value;
    case MultiaddrProtocol::P2p:
      return base58btc_encode(c.value);
    case MultiaddrProtocol::P2pCircuit:
    case MultiaddrProtocol::Quic:
    case MultiaddrProtocol::QuicV1:
      break;
  }
  return {};
}

}  // namespace

std::string_view protocol_name(MultiaddrProtocol p) { return info_of(p).name; }

Result<Multiaddr> Multiaddr::parse(std::string_view text) {
  if (text.empty()) return make_error("empty multiaddr");
  auto where = [&] { return quote_for_error(text); };
  if (text.size() > kMaxMultiaddrTextLen) {
    return make_error("multiaddr {} is longer than {} characters", where(), kMaxMultiaddrTextLen);
  }
  if (text[0] != '/') return make_error("multiaddr {} does not start with '/'", where());
  std::string_view rest = text.substr(1);
  // One trailing '/' is tolerated, as other implementations do; "//" is an empty name below.
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return make_error("multiaddr {} has no components", where());

  // Splits off the next '/'-separated segment of `rest`; nullopt once the last one is taken.
  bool done = false;
  auto next_segment = [&rest, &done]() -> std::optional<std::string_view> {
    if (done) return std::nullopt;
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      done = true;
    } else {
      rest.remove_prefix(slash + 1);
    }
    return seg;
  };

  std::vector<MultiaddrComponent> components;
  while (auto name = next_segment()) {
    if (name->empty()) return make_error("empty protocol name in multiaddr {}", where());
    const ProtocolInfo* info = find_by_name(*name);
    if (info == nullptr) return make_error("unknown protocol {} in multiaddr {}", quote_for_error(*name), where());
    MultiaddrComponent c{info->protocol, {}};
    if (info->kind != ValueKind::None) {
      auto value_text = next_segment();
      if (!value_text || value_text->empty()) {
        return make_error("missing value for {} in multiaddr {}", info->name, where());
      }
      auto value = value_from_text(*info, *value_text);
      if (!value) {
        return make_error("invalid {} {} in multiaddr {}: {}", info->name, quote_for_error(*value_text), where(),
                          value.error().message);
      }
      c.value = std::move(*value);
    }
    components.push_back(std::move(c));
  }
  Multiaddr out(std::move(components));
  // Same bound as from_bytes, so every parsed address can also travel in binary.
  size_t binary_size = out.to_bytes().size();
  if (binary_size > kMaxMultiaddrBytes) {
    return make_error("multiaddr {} encodes to {} bytes, more than the {} allowed", where(), binary_size,
                      kMaxMultiaddrBytes);
  }
  return out;
}

Result<Multiaddr> Multiaddr::from_bytes(BytesView bytes) {
  if (bytes.empty()) return make_error("empty binary multiaddr");
  if (bytes.size() > kMaxMultiaddrBytes) {
    return make_error("binary multiaddr of {} bytes is longer than {}", bytes.size(), kMaxMultiaddrBytes);
  }
  std::vector<MultiaddrComponent> components;
  BytesView in = bytes;
  while (!in.empty()) {
    size_t offset = bytes.size() - in.size();
    auto fail = [&](const std::string& why) {
      return make_error("invalid binary multiaddr {} at offset {}: {}", to_hex(bytes), offset, why);
    };
    auto code = take_uvarint(in);
    if (!code) return fail("protocol code: " + code.error().message);
    const ProtocolInfo* info = find_by_code(*code);
    if (info == nullptr) return fail(fmt::format("unknown protocol code 0x{:x}", *code));
    MultiaddrComponent c{info->protocol, {}};
    size_t len = 0;
    if (info->kind == ValueKind::Fixed) {
      len = info->size;
    } else if (info->kind == ValueKind::LengthPrefixed) {
      auto declared = take_uvarint(in);
      if (!declared) return fail(fmt::format("{} value length: {}", info->name, declared.error().message));
      if (*declared > info->size) {
        return fail(fmt::format("{} value length {} is above the {} allowed", info->name, *declared, info->size));
      }
      len = static_cast<size_t>(*declared);
    }
    if (in.size() < len) return fail(fmt::format("{} value needs {} bytes, {} left", info->name, len, in.size()));
    c.value = Bytes(in.substr(0, len));
    in.remove_prefix(len);
    auto valid = check_value(*info, c.value);
    if (!valid) return fail(valid.error().message);
    components.push_back(std::move(c));
  }
  return Multiaddr(std::move(components));
}

std::string Multiaddr::to_string() const {
  std::string out;
  for (const auto& c : components_) {
    const auto& info = info_of(c.protocol);
    out.push_back('/');
    out.append(info.name);
    if (info.kind != ValueKind::None) {
      out.push_back('/');
      out.append(value_to_text(c));
    }
  }
  return out;
}

Bytes Multiaddr::to_bytes() const {
  Bytes out;
  for (const auto& c : components_) {
    const auto& info = info_of(c.protocol);
    put_uvarint(out, static_cast<uint64_t>(c.protocol));
    if (info.kind == ValueKind::LengthPrefixed) put_uvarint(out, c.value.size());
    out.append(c.value);
  }
  return out;
}

Multiaddr Multiaddr::encapsulate(const Multiaddr& inner) const {
  auto components = components_;
  components.insert(components.end(), inner.components_.begin(), inner.components_.end());
  return Multiaddr(std::move(components));
}

Multiaddr Multiaddr::with_peer_id(const PeerId& id) const {
  auto components = components_;
  if (!id.empty()) components.push_back({MultiaddrProtocol::P2p, id.bytes()});
  return Multiaddr(std::move(components));
}

std::optional<BytesView> Multiaddr::peer_id_multihash() const {
  if (components_.empty() || components_.back().protocol != MultiaddrProtocol::P2p) return std::nullopt;
  return BytesView(components_.back().value);
}

Multiaddr Multiaddr::without_peer_id() const {
  auto components = components_;
  if (!components.empty() && components.back().protocol == MultiaddrProtocol::P2p) components.pop_back();
  return Multiaddr(std::move(components));
}

Result<QuicEndpointAddr> quic_endpoint_of(const Multiaddr& addr) {
  const auto& c = addr.components();
  auto fail = [&](std::string_view why) {
    return make_error("multiaddr {} is not a QUIC address ({}); want /ip4|ip6|dns|dns4|dns6/HOST/udp/PORT/quic-v1",
                      quote_for_error(addr.to_string()), why);
  };
  size_t n = c.size();
  if (n > 0 && c.back().protocol == MultiaddrProtocol::P2p) --n;  // optional trailing /p2p/<id>
  if (n != 3) return fail(fmt::format("{} transport components, want 3", n));
  if (c[1].protocol != MultiaddrProtocol::Udp) return fail(fmt::format("{} where udp belongs", protocol_name(c[1].protocol)));
  if (c[2].protocol != MultiaddrProtocol::QuicV1) {
    return fail(fmt::format("{} where quic-v1 belongs", protocol_name(c[2].protocol)));
  }
  QuicEndpointAddr out;
  switch (c[0].protocol) {
    case MultiaddrProtocol::Ip4:
      out.family = AF_INET;
      break;
    case MultiaddrProtocol::Ip6:
      out.family = AF_INET6;
      break;
    case MultiaddrProtocol::Dns:
      out.is_dns = true;
      out.family = AF_UNSPEC;
      break;
    case MultiaddrProtocol::Dns4:
      out.is_dns = true;
      out.family = AF_INET;
      break;
    case MultiaddrProtocol::Dns6:
      out.is_dns = true;
      out.family = AF_INET6;
      break;
    default:
      return fail(fmt::format("{} where an IP address or DNS name belongs", protocol_name(c[0].protocol)));
  }
  out.host = value_to_text(c[0]);
  out.port = static_cast<uint16_t>((static_cast<unsigned>(data_u8(c[1].value)[0]) << 8) | data_u8(c[1].value)[1]);
  return out;
}

Multiaddr multiaddr_from_sockaddr(const sockaddr* sa, bool quic_v1) {
  if (sa == nullptr) return {};
  MultiaddrComponent ip;
  uint16_t port_be = 0;  // network byte order, as stored in the sockaddr
  if (sa->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);  // copy: `sa` may not be suitably aligned for sockaddr_in
    ip = {MultiaddrProtocol::Ip4, Bytes(reinterpret_cast<const char*>(&sin.sin_addr), 4)};
    port_be = sin.sin_port;
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    const auto* a = reinterpret_cast<const char*>(&sin6.sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
      ip = {MultiaddrProtocol::Ip4, Bytes(a + 12, 4)};
    } else {
      ip = {MultiaddrProtocol::Ip6, Bytes(a, 16)};
    }
    port_be = sin6.sin6_port;
  } else {
    return {};
  }
  Bytes port(reinterpret_cast<const char*>(&port_be), 2);  // already big-endian
  return Multiaddr({std::move(ip), {MultiaddrProtocol::Udp, std::move(port)},
                    {quic_v1 ? MultiaddrProtocol::QuicV1 : MultiaddrProtocol::Quic, {}}});
}

bool Multiaddr::is_unspecified_ip() const {
  if (components_.empty()) return false;
  const MultiaddrComponent& c = components_[0];
  if (c.protocol == MultiaddrProtocol::Ip4) return c.value == Bytes(4, '\0');
  if (c.protocol == MultiaddrProtocol::Ip6) return c.value == Bytes(16, '\0');
  return false;
}

bool Multiaddr::is_loopback_ip() const {
  if (components_.empty()) return false;
  const MultiaddrComponent& c = components_[0];
  if (c.protocol == MultiaddrProtocol::Ip4) return c.value.size() == 4 && static_cast<uint8_t>(c.value[0]) == 127;
  if (c.protocol == MultiaddrProtocol::Ip6) return c.value == Bytes(15, '\0') + '\1';
  return false;
}

bool Multiaddr::is_relayed() const {
  for (const MultiaddrComponent& c : components_) {
    if (c.protocol == MultiaddrProtocol::P2pCircuit) return true;
  }
  return false;
}

std::string join_multiaddrs(const std::vector<Multiaddr>& addrs) {
  std::string out;
  for (const Multiaddr& a : addrs) {
    if (!out.empty()) out += ',';
    out += a.to_string();
  }
  return out;
}

}  // namespace punchgate
