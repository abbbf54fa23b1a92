#include "punchgate/tunnel/tunnel_spec.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <tuple>

namespace punchgate {

namespace {

constexpr size_t kMaxServiceName = 64;
constexpr size_t kMaxHostname = 253;
constexpr size_t kMaxLabel = 63;

// Quotes user text for an error message. Non-printable bytes become \xNN so every message stays
// on one line whatever was typed (or fuzzed); printable ASCII is kept verbatim.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool is_ipv4_literal(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6_literal(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// Validates a host written without brackets: an IPv4 literal or a DNS-style hostname. Returns
// the reason it is bad, or nullopt.
std::optional<std::string> host_problem(std::string_view host) {
  if (host.empty()) return std::string("host is empty");
  if (host.find(':') != std::string_view::npos) {
    return fmt::format("host {} looks like an IPv6 address; write it in brackets, e.g. [::1]:22", quote(host));
  }
  bool numeric = true;
  for (char c : host) {
    if (c == '.' || (c >= '0' && c <= '9')) continue;
    numeric = false;
    if (!is_alnum(c) && c != '-') {
      return fmt::format("host {} contains {} (allowed: letters, digits, '.', '-')", quote(host),
                         quote(std::string_view(&c, 1)));
    }
  }
  // All digits and dots can only mean IPv4; "127.1" or "256.0.0.1" would otherwise slip through
  // as a "hostname" and resolve to something surprising.
  if (numeric) {
    if (!is_ipv4_literal(std::string(host))) return fmt::format("host {} is not a valid IPv4 address", quote(host));
    return std::nullopt;
  }
  if (host.size() > kMaxHostname) {
    return fmt::format("host {} is {} characters long (at most {})", quote(host), host.size(), kMaxHostname);
  }
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view label = host.substr(start, dot - start);
    if (label.empty()) return fmt::format("host {} has an empty label", quote(host));
    if (label.size() > kMaxLabel) {
      return fmt::format("host {} has a label longer than {} characters", quote(host), kMaxLabel);
    }
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("host {} has a label starting or ending with '-'", quote(host));
    }
    start = dot + 1;
  }
  return std::nullopt;
}

// Parses "host:port" / "[v6]:port" allowing port 0 (callers decide, with their own wording).
// On failure returns the reason, without any "invalid ..." prefix.
Result<HostPort> parse_host_port_any(std::string_view text) {
  if (text.empty()) return make_error("address is empty (expected HOST:PORT)");
  HostPort hp;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return make_error("missing ']' after IPv6 address {}", quote(text.substr(1)));
    hp.host = std::string(text.substr(1, close - 1));
    if (hp.host.empty()) return make_error("empty IPv6 address \"[]\"");
    if (!is_ipv6_literal(hp.host)) return make_error("{} is not a valid IPv6 address", quote(hp.host));
    std::string_view after = text.substr(close + 1);
    if (after.empty()) return make_error("missing port after {}", quote(text.substr(0, close + 1)));
    if (after.front() != ':') {
      return make_error("unexpected {} after {} (expected ':PORT')", quote(after), quote(text.substr(0, close + 1)));
    }
    port_text = after.substr(1);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return make_error("missing port in {} (expected HOST:PORT)", quote(text));
    // A second ':' means an unbracketed IPv6 address; say so rather than "bad port".
    if (text.find(':', colon + 1) != std::string_view::npos) {
      return make_error("{} looks like an IPv6 address; write it in brackets, e.g. [::1]:22", quote(text));
    }
    std::string_view host = text.substr(0, colon);
    if (auto problem = host_problem(host)) return Error{*problem};
    hp.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty()) return make_error("missing port in {}", quote(text));
  // Digits only: from_chars alone would accept a "22abc" prefix.
  for (char c : port_text) {
    if (c < '0' || c > '9') return make_error("port {} is not a number", quote(port_text));
  }
  unsigned long port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) {
    return make_error("port {} is out of range (1-65535)", quote(port_text));
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

// Splits an optional "/tcp" or "/udp" suffix off `text`. The first '/' starts the suffix: hosts
// and ports never contain one, so "x:1/udp/udp" is reported as an unknown transport.
Result<TunnelTransport> split_transport(std::string_view& text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return TunnelTransport::Tcp;
  std::string_view suffix = text.substr(slash + 1);
  text = text.substr(0, slash);
  if (suffix == "tcp") return TunnelTransport::Tcp;
  if (suffix == "udp") return TunnelTransport::Udp;
  return make_error("unknown transport {} (expected /tcp or /udp)", quote(fmt::format("/{}", suffix)));
}

const char* suffix_of(TunnelTransport t) { return t == TunnelTransport::Udp ? "/udp" : ""; }

// Key for duplicate detection: IP literals compare by address (so "::1" and "0::1" collide),
// hostnames case-insensitively.
std::string host_key(const std::string& host) {
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return "6:" + std::string(reinterpret_cast<const char*>(&a6), sizeof a6);
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return "4:" + std::string(reinterpret_cast<const char*>(&a4), sizeof a4);
  std::string lower = host;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return "h:" + lower;
}

}  // namespace

const char* to_string(TunnelTransport t) { return t == TunnelTransport::Udp ? "udp" : "tcp"; }

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string ExposeSpec::to_string() const {
  return fmt::format("{}={}{}", name, target.to_string(), suffix_of(transport));
}

std::string TunnelSpec::to_string() const {
  if (peer.empty()) return fmt::format("{}@{}{}", service, bind.to_string(), suffix_of(transport));
  return fmt::format("{}:{}@{}{}", peer.to_base58(), service, bind.to_string(), suffix_of(transport));
}

Status validate_service_name(std::string_view name) {
  if (name.empty()) return make_error("service name is empty");
  if (name.size() > kMaxServiceName) {
    return make_error("service name {} is {} characters long (at most {})", quote(name), name.size(),
                      kMaxServiceName);
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return make_error("service name {} contains {} (allowed: letters, digits, '.', '_', '-')", quote(name),
                        quote(std::string_view(&c, 1)));
    }
  }
  if (!is_alnum(name.front())) return make_error("service name {} must start with a letter or digit", quote(name));
  return {};
}

Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero) {
  auto hp = parse_host_port_any(text);
  if (!hp.ok()) return make_error("invalid address {}: {}", quote(text), hp.error().message);
  if (hp->port == 0 && !allow_port_zero) return make_error("invalid address {}: port 0 is not allowed", quote(text));
  return hp;
}

Result<ExposeSpec> parse_expose(std::string_view text) {
  auto fail = [&](const std::string& why) { return make_error("invalid --expose {}: {}", quote(text), why); };
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) return fail("missing '=' (expected NAME=HOST:PORT[/udp])");
  ExposeSpec spec;
  std::string_view name = text.substr(0, eq);
  if (auto st = validate_service_name(name); !st.ok()) return fail(st.error().message);
  spec.name = std::string(name);

  std::string_view target = text.substr(eq + 1);
  auto transport = split_transport(target);
  if (!transport.ok()) return fail(transport.error().message);
  spec.transport = *transport;
  auto hp = parse_host_port_any(target);
  if (!hp.ok()) return fail(hp.error().message);
  if (hp->port == 0) return fail("port 0 is not allowed for an exposed service");
  spec.target = std::move(*hp);
  return spec;
}

namespace {

// SERVICE@BINDHOST:PORT[/udp], the part --tunnel and --tunnel-by-name share.
Result<TunnelSpec> parse_service_at_bind(std::string_view text, std::string_view rest, const char* flag, PeerId peer) {
  const char* form = peer.empty() ? "SERVICE@BINDHOST:PORT[/udp]" : "PEER:SERVICE@BINDHOST:PORT[/udp]";
  auto fail = [&](const std::string& why) { return make_error("invalid {} {}: {}", flag, quote(text), why); };
  size_t at = rest.find('@');
  if (at == std::string_view::npos) return fail(fmt::format("missing '@' (expected {})", form));
  std::string_view service = rest.substr(0, at);
  if (auto st = validate_service_name(service); !st.ok()) return fail(st.error().message);
  TunnelSpec spec;
  spec.peer = std::move(peer);
  spec.service = std::string(service);
  std::string_view bind = rest.substr(at + 1);
  auto transport = split_transport(bind);
  if (!transport.ok()) return fail(transport.error().message);
  spec.transport = *transport;
  auto hp = parse_host_port_any(bind);
  if (!hp.ok()) return fail(hp.error().message);
  // An ephemeral bind port would be unknowable to the user, who has to connect to it.
  if (hp->port == 0) return fail("port 0 is not allowed for a tunnel bind (choose the local port to listen on)");
  spec.bind = std::move(*hp);
  return spec;
}

}  // namespace

Result<TunnelSpec> parse_tunnel(std::string_view text) {
  auto fail = [&](const std::string& why) { return make_error("invalid --tunnel {}: {}", quote(text), why); };
  // A peer id (base58 or base32 CID) never contains ':', so the first ':' ends it.
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return fail("missing ':' after the peer id (expected PEER:SERVICE@BINDHOST:PORT[/udp])");
  std::string_view peer_text = text.substr(0, colon);
  if (peer_text.empty()) return fail("missing peer id (expected PEER:SERVICE@BINDHOST:PORT[/udp])");
  auto peer = PeerId::parse(peer_text);
  if (!peer.ok()) return fail(fmt::format("bad peer id {}: {}", quote(peer_text), peer.error().message));

  std::string_view rest = text.substr(colon + 1);

  return parse_service_at_bind(text, rest, "--tunnel", std::move(*peer));
}

Result<TunnelSpec> parse_tunnel_by_name(std::string_view text) {
  return parse_service_at_bind(text, text, "--tunnel-by-name", PeerId());
}

Result<TunnelBind> parse_tunnel_bind(std::string_view text) {
  TunnelBind out;
  std::string_view rest = text;
  if (rest.ends_with("/udp")) {
    rest.remove_suffix(4);
    out.transport = TunnelTransport::Udp;
  }
  auto hp = parse_host_port(rest, false);
  if (!hp) return make_error("invalid tunnel bind \"{}\": {}", text, hp.error().message);
  out.bind = *hp;
  return out;
}

Status validate_exposes(const std::vector<ExposeSpec>& specs) {
  std::map<std::string, const ExposeSpec*> seen;
  for (const auto& s : specs) {
    auto [it, inserted] = seen.emplace(s.name, &s);
    if (!inserted) {
      return make_error("duplicate --expose name {}: {} and {}", quote(s.name), quote(it->second->to_string()),
                        quote(s.to_string()));
    }
  }
  return {};
}

Status validate_tunnels(const std::vector<TunnelSpec>& specs) {
  std::map<std::tuple<std::string, uint16_t, TunnelTransport>, const TunnelSpec*> seen;
  for (const auto& s : specs) {
    auto [it, inserted] = seen.emplace(std::make_tuple(host_key(s.bind.host), s.bind.port, s.transport), &s);
    if (!inserted) {
      return make_error("duplicate tunnel bind {}/{}: {} and {}", s.bind.to_string(), to_string(s.transport),
                        quote(it->second->to_string()), quote(s.to_string()));
    }
  }
  return {};
}

}  // namespace punchgate
