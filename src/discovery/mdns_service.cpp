// libuv glue for mDNS discovery: one IPv4 UDP socket, multicast membership per interface, timers
// for queries and (rate-limited) responses. Packets are built and parsed by mdns_packet.
#include "punchgate/discovery/mdns_service.hpp"

#include "discovery/mdns_packet.hpp"
#include "punchgate/core/log.hpp"
#include "punchgate/core/sockaddr.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/host.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <unordered_map>

namespace punchgate {

namespace {

constexpr const char* kGroup = "224.0.0.251";
// Startup burst (RFC 6762 §5.2: the second query at least 1 s after the first, then doubling),
// so a node that starts while another is still binding does not wait a whole query interval.
constexpr std::array<uint64_t, 3> kBurstAtMs = {0, 1000, 3000};
// RFC 6762 §6: at most one multicast of a record per second per interface; responses to shared
// records wait a random 20-120 ms so several responders do not collide.
constexpr uint64_t kMinResponseGapMs = 1000;
constexpr uint32_t kResponseJitterMinMs = 20;
constexpr uint32_t kResponseJitterSpanMs = 100;
// A peer we failed (or are still trying) to reach is not redialed on every response it sends.
constexpr uint64_t kMinRedialMs = 10'000;
// Responses are unauthenticated: cap what a flood of forged peer ids can make us remember.
constexpr size_t kMaxKnownPeers = 1024;
constexpr size_t kMaxLoggedAddrsPerPeer = 64;
// A zero or tiny configured interval must not turn into a query storm.
constexpr uint64_t kMinQueryIntervalMs = 1000;

struct MulticastInterface {
  std::string name;
  std::string ip;  // the interface's IPv4 address, as uv_udp_set_membership wants it
  bool loopback = false;
};

// IPv4 interfaces that are up and have IFF_MULTICAST. uv_interface_addresses() does not report
// interface flags, hence getifaddrs(). Loopback counts only when it has IFF_MULTICAST: Linux
// leaves that off by default, and an operator who turns it on (with a 224.0.0.0/4 route on lo)
// asks for exactly this — discovery among processes of one host or network namespace.
std::vector<MulticastInterface> multicast_interfaces() {
  ifaddrs* raw = nullptr;
  if (getifaddrs(&raw) != 0) return {};
  std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> list(raw, &freeifaddrs);
  std::vector<MulticastInterface> out;
  for (const ifaddrs* i = list.get(); i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_name) continue;
    if (!(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_MULTICAST)) continue;
    // One membership per interface: a second address on it would make the join fail (EADDRINUSE).
    if (std::any_of(out.begin(), out.end(), [&](const MulticastInterface& m) { return m.name == i->ifa_name; })) {
      continue;
    }
    char ip[INET_ADDRSTRLEN] = {};
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip)) continue;
    out.push_back({i->ifa_name, ip, (i->ifa_flags & IFF_LOOPBACK) != 0});
  }
  return out;
}

// The IP literal of an /ip4 or /ip6 address as inet_ntop writes it; empty otherwise.
std::string ip_of(const Multiaddr& a) {
  auto ep = quic_endpoint_of(a);
  if (!ep || ep->is_dns) return {};
  return ep->host;
}

// Addresses worth announcing or dialing: /ip4|ip6/…/udp/…/quic-v1, with a real IP.
bool is_announceable(const Multiaddr& a) {
  auto ep = quic_endpoint_of(a);
  return ep && !ep->is_dns && !a.is_unspecified_ip();
}

// 32 to 63 random alphanumerics, as rust-libp2p does: unguessable, different every run, and a
// valid DNS label.
std::string random_instance_label() {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const size_t len = 32 + randombytes_uniform(32);
  std::string out;
  for (size_t i = 0; i < len; ++i) out.push_back(kAlphabet[randombytes_uniform(kAlphabet.size())]);
  return out;
}

class MdnsServiceImpl final : public MdnsService {
 public:
  MdnsServiceImpl(Host& host, MdnsConfig config)
      : host_(host), config_(config), query_timer_(host.loop()), response_timer_(host.loop()),
        instance_label_(random_instance_label()) {}
  ~MdnsServiceImpl() override { stop(); }

  Status init();
  void stop() override;

 private:
  struct Known {
    // Addresses already logged as discovered. A peer with many addresses spreads them over
    // several packets, so "new" means "not seen before", not "different from the last packet".
    std::set<Multiaddr> logged;
    bool dialing = false;
    uint64_t last_dial_ms = 0;
    bool dialed = false;
  };

  void schedule_query(size_t step);
  void on_datagram(BytesView data, const sockaddr* from);
  void on_query();
  void send_response();
  void on_peer(mdns::DiscoveredPeer found, const std::string& from_ip);
  void send_on(const MulticastInterface& iface, BytesView packet);

  Host& host_;
  MdnsConfig config_;
  UvHandle<uv_udp_t> udp_;
  bool udp_open_ = false;
  sockaddr_in group_{};
  std::vector<MulticastInterface> ifaces_;
  Timer query_timer_;
  Timer response_timer_;
  uint64_t last_response_ms_ = 0;
  bool responded_ = false;
  std::string instance_label_;
  std::array<char, mdns::kMaxPacketBytes> rx_{};
  std::unordered_map<PeerId, Known> known_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = false;
};

Status MdnsServiceImpl::init() {
  uv_ip4_addr(kGroup, config_.port, &group_);
  sockaddr_in any{};
  uv_ip4_addr("0.0.0.0", config_.port, &any);
  uv_udp_init(host_.loop(), udp_.get());
  udp_.mark_initialised();
  udp_open_ = true;
  udp_.get()->data = this;
  // SO_REUSEADDR: every mDNS responder on the host (avahi, other punchgates) binds this port, and
  // each gets its own copy of every multicast datagram.
  if (int rv = uv_udp_bind(udp_.get(), reinterpret_cast<const sockaddr*>(&any), UV_UDP_REUSEADDR); rv != 0) {
    return make_error("mdns: cannot bind 0.0.0.0:{}: {}", config_.port, uv_strerror(rv));
  }
  // Loop on: two nodes on one host (or in one namespace) must hear each other, and a node answers
  // its own query like any other (the spec's passive discovery). TTL 255: RFC 6762 §11.
  if (int rv = uv_udp_set_multicast_loop(udp_.get(), 1); rv != 0) {
    return make_error("mdns: cannot enable multicast loop: {}", uv_strerror(rv));
  }
  if (int rv = uv_udp_set_multicast_ttl(udp_.get(), 255); rv != 0) {
    return make_error("mdns: cannot set multicast TTL: {}", uv_strerror(rv));
  }
  for (MulticastInterface& iface : multicast_interfaces()) {
    if (int rv = uv_udp_set_membership(udp_.get(), kGroup, iface.ip.c_str(), UV_JOIN_GROUP); rv != 0) {
      spdlog::warn("mdns cannot join group iface={} addr={} error={}", iface.name, iface.ip, uv_strerror(rv));
      continue;
    }
    ifaces_.push_back(std::move(iface));
  }
  std::string names;
  for (const auto& i : ifaces_) names += (names.empty() ? "" : ",") + i.name;
  if (ifaces_.empty()) {
    // Not an error: discovery is optional and the node works without it. Interfaces that come up
    // later are not picked up (no netlink watching yet).
    spdlog::warn("mdns idle: no IPv4 interface with multicast is up");
    udp_.close();
    udp_open_ = false;
    return {};
  }
  if (int rv = uv_udp_recv_start(
          udp_.get(),
          [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* self = static_cast<MdnsServiceImpl*>(h->data);
            buf->base = self ? self->rx_.data() : nullptr;
            buf->len = self ? self->rx_.size() : 0;
          },
          [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
            auto* self = static_cast<MdnsServiceImpl*>(h->data);
            // UV_UDP_PARTIAL: larger than any mDNS packet may be (RFC 6762 §17), so not ours.
            if (!self || n <= 0 || !from || (flags & UV_UDP_PARTIAL)) return;
            self->on_datagram(BytesView(buf->base, static_cast<size_t>(n)), from);
          });
      rv != 0) {
    return make_error("mdns: cannot receive: {}", uv_strerror(rv));
  }
  spdlog::info("mdns started port={} interfaces=[{}]", config_.port, names);
  schedule_query(0);
  return {};
}

void MdnsServiceImpl::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  query_timer_.stop();
  response_timer_.stop();
  if (udp_open_) {
    uv_udp_recv_stop(udp_.get());
    for (const auto& iface : ifaces_) uv_udp_set_membership(udp_.get(), kGroup, iface.ip.c_str(), UV_LEAVE_GROUP);
    udp_.close();
    udp_open_ = false;
  }
  ifaces_.clear();
}

void MdnsServiceImpl::schedule_query(size_t step) {
  const uint64_t delay =
      step < kBurstAtMs.size() ? kBurstAtMs[step] - (step > 0 ? kBurstAtMs[step - 1] : 0)
                                : std::max(config_.query_interval_ms, kMinQueryIntervalMs);
  query_timer_.start(delay, 0, [this, step] {
    const Bytes query = mdns::build_query();
    for (const auto& iface : ifaces_) send_on(iface, query);
    spdlog::debug("mdns query sent interfaces={}", ifaces_.size());
    schedule_query(std::min(step + 1, kBurstAtMs.size()));
  });
}

void MdnsServiceImpl::send_on(const MulticastInterface& iface, BytesView packet) {
  // IP_MULTICAST_IF applies at send time, and uv_udp_try_send sends synchronously, so setting it
  // right before each send picks the interface of that packet.
  if (int rv = uv_udp_set_multicast_interface(udp_.get(), iface.ip.c_str()); rv != 0) {
    spdlog::debug("mdns cannot select interface iface={} error={}", iface.name, uv_strerror(rv));
    return;
  }
  uv_buf_t buf = uv_buf_init(const_cast<char*>(packet.data()), static_cast<unsigned>(packet.size()));
  int rv = uv_udp_try_send(udp_.get(), &buf, 1, reinterpret_cast<const sockaddr*>(&group_));
  // A dropped packet is what UDP does anyway; the next query or response repeats it.
  if (rv < 0) spdlog::debug("mdns send failed iface={} error={}", iface.name, uv_strerror(rv));
}

void MdnsServiceImpl::on_datagram(BytesView data, const sockaddr* from) {
  auto msg = mdns::parse_message(data);
  if (!msg) {
    // Anyone on the link can send garbage: format nothing unless someone is looking.
    if (spdlog::should_log(spdlog::level::trace)) {
      spdlog::trace("mdns ignored packet from={} error={}", SockAddr::from(from).to_string(),
                    log_quote(msg.error().message));
    }
    return;
  }
  if (!msg->is_response()) {
    if (mdns::is_peer_query(*msg)) on_query();
    return;
  }
  std::string from_ip;
  if (from->sa_family == AF_INET) {
    char ip[INET_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(from)->sin_addr, ip, sizeof ip)) from_ip = ip;
  }
  for (auto& peer : mdns::extract_peers(*msg, host_.peer_id())) {
    on_peer(std::move(peer), from_ip);
    if (stopped_) return;  // a dial callback may have stopped us synchronously
  }
}

void MdnsServiceImpl::on_query() {
  if (response_timer_.active()) return;  // the response already scheduled answers this query too
  const uint64_t now = uv_now(host_.loop());
  uint64_t delay = kResponseJitterMinMs + randombytes_uniform(kResponseJitterSpanMs + 1);
  if (responded_ && now < last_response_ms_ + kMinResponseGapMs) {
    delay = std::max(delay, last_response_ms_ + kMinResponseGapMs - now);
  }
  response_timer_.start(delay, 0, [this] { send_response(); });
}

void MdnsServiceImpl::send_response() {
  responded_ = true;
  last_response_ms_ = uv_now(host_.loop());
  std::vector<Multiaddr> all;
  for (const Multiaddr& a : host_.listen_addrs()) {
    if (is_announceable(a)) all.push_back(a.without_peer_id());
  }
  for (const auto& iface : ifaces_) {
    // Our loopback addresses mean nothing to another machine: announce them only on loopback.
    std::vector<Multiaddr> addrs;
    for (const Multiaddr& a : all) {
      if (iface.loopback || !a.is_loopback_ip()) addrs.push_back(a);
    }
    auto packets = mdns::build_response(host_.peer_id(), instance_label_, addrs);
    if (!packets) {
      spdlog::warn("mdns cannot build response error={}", log_quote(packets.error().message));
      return;
    }
    for (const Bytes& p : *packets) send_on(iface, p);
    spdlog::debug("mdns response sent iface={} addrs={} packets={}", iface.name, addrs.size(), packets->size());
  }
}

void MdnsServiceImpl::on_peer(mdns::DiscoveredPeer found, const std::string& from_ip) {
  const PeerId& peer = found.peer;
  // Only addresses our transport can dial: anything else (tcp, websockets) would just make every
  // user of the peer store fail on it.
  std::vector<Multiaddr> addrs;
  for (Multiaddr& a : found.addrs) {
    if (is_announceable(a)) addrs.push_back(std::move(a));
  }
  if (addrs.empty()) {
    spdlog::debug("mdns peer without quic-v1 address peer={}", peer.to_base58());
    return;
  }
  auto it = known_.find(peer);
  if (it == known_.end()) {
    if (known_.size() >= kMaxKnownPeers) return;
    it = known_.emplace(peer, Known{}).first;
  }
  Known& k = it->second;
  host_.peer_store().add_addrs(peer, addrs);
  if (std::any_of(addrs.begin(), addrs.end(), [&](const Multiaddr& a) { return !k.logged.contains(a); })) {
    spdlog::info("mdns discovered peer={} addrs=[{}]", peer.to_base58(), join_multiaddrs(addrs));
    if (k.logged.size() + addrs.size() > kMaxLoggedAddrsPerPeer) k.logged.clear();
    k.logged.insert(addrs.begin(), addrs.end());
  }

  if (host_.connection_to(peer) || k.dialing) return;
  const uint64_t now = uv_now(host_.loop());
  if (k.dialed && now < k.last_dial_ms + kMinRedialMs) return;
  // The address on the interface the response came from is the one most likely to work; others
  // may belong to networks we share no link with.
  auto pick = std::find_if(addrs.begin(), addrs.end(), [&](const Multiaddr& a) { return ip_of(a) == from_ip; });
  const Multiaddr target = (pick != addrs.end() ? *pick : addrs.front()).with_peer_id(peer);
  k.dialing = true;
  k.dialed = true;
  k.last_dial_ms = now;
  spdlog::debug("mdns dialing peer={} addr={}", peer.to_base58(), target.to_string());
  host_.dial(target, [this, alive = std::weak_ptr<bool>(alive_), peer, target](Result<ConnectionPtr> r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    if (auto kit = known_.find(peer); kit != known_.end()) kit->second.dialing = false;
    if (!r) {
      spdlog::debug("mdns dial failed peer={} addr={} error={}", peer.to_base58(), target.to_string(),
                    log_quote(r.error().message));
    }
  });
}

}  // namespace

Result<std::unique_ptr<MdnsService>> MdnsService::start(Host& host, MdnsConfig config) {
  auto svc = std::make_unique<MdnsServiceImpl>(host, config);
  if (auto st = svc->init(); !st) {
    svc->stop();
    return st.error();
  }
  return std::unique_ptr<MdnsService>(std::move(svc));
}

}  // namespace punchgate
