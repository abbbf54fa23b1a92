#include "transport/quic_endpoint.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/transport/quic_transport.hpp"

#include <ngtcp2/ngtcp2_crypto.h>
#include <netinet/udp.h>
#include <sodium.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace punchgate {

namespace {

// recvmmsg: libuv splits the buffer into 64 KiB slots, one datagram each.
constexpr size_t kRxSlots = 16;
constexpr size_t kRxBufSize = kRxSlots * 64 * 1024;
constexpr size_t kMaxResetsPerSecond = 100;
constexpr size_t kMaxHandshaking = 1024;  // half-open connections before new Initials are dropped
constexpr size_t kSocketBuffer = 4 * 1024 * 1024;

}  // namespace

QuicEndpoint::QuicEndpoint(QuicTransport& t)
    : transport_(t), reaper_(t.loop()), rxbuf_(std::make_unique<char[]>(kRxBufSize)) {}

const uint8_t* QuicEndpoint::reset_secret() const { return transport_.reset_secret(); }

QuicEndpoint::~QuicEndpoint() {
  close_all("shutting down");
  retired_.clear();
  uv_udp_recv_stop(udp_.get());
}

Result<std::unique_ptr<QuicEndpoint>> QuicEndpoint::bind(QuicTransport& transport, const SockAddr& addr) {
  auto ep = std::make_unique<QuicEndpoint>(transport);
  uv_udp_t* h = ep->udp_.get();
  if (int rv = uv_udp_init_ex(transport.loop(), h, addr.get()->sa_family | UV_UDP_RECVMMSG); rv != 0) {
    return make_error("udp socket: {}", uv_strerror(rv));
  }
  ep->udp_.mark_initialised();
  h->data = ep.get();
  unsigned flags = addr.get()->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
  if (int rv = uv_udp_bind(h, addr.get(), flags); rv != 0) {
    return make_error("cannot bind {}: {}", multiaddr_from_sockaddr(addr.get(), true).to_string(), uv_strerror(rv));
  }
  int size = static_cast<int>(kSocketBuffer);
  uv_recv_buffer_size(ep->udp_.handle(), &size);
  size = static_cast<int>(kSocketBuffer);
  uv_send_buffer_size(ep->udp_.handle(), &size);
  int len = sizeof(ep->local_.storage);
  uv_udp_getsockname(h, ep->local_.get(), &len);
  ep->local_.len = static_cast<socklen_t>(len);
  ep->local_ma_ = multiaddr_from_sockaddr(ep->local_.get(), true);
  int rv = uv_udp_recv_start(
      h,
      [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
        auto* self = static_cast<QuicEndpoint*>(handle->data);
        buf->base = self->rxbuf_.get();
        buf->len = kRxBufSize;
      },
      [](uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned recv_flags) {
        auto* self = static_cast<QuicEndpoint*>(handle->data);
        if (!self) return;
        // Datagrams of a recvmmsg batch come as CHUNKs and the batch ends with MMSG_FREE;
        // a plain read is a batch of one.
        self->in_recv_batch_ = (recv_flags & UV_UDP_MMSG_CHUNK) != 0;
        if (!(recv_flags & UV_UDP_MMSG_FREE)) self->on_recv(nread, buf, from);
        if (!self->in_recv_batch_) self->flush_deferred();
      });
  if (rv != 0) return make_error("udp receive: {}", uv_strerror(rv));
  return ep;
}

void QuicEndpoint::send_batch(const SockAddr& remote, const uint8_t* data, size_t len, size_t segment) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(udp_.handle(), &fd) != 0) return;
  iovec iov{const_cast<uint8_t*>(data), len};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(remote.get());
  msg.msg_namelen = remote.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  if (gso_ && len > segment) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    auto seg = static_cast<uint16_t>(segment);
    std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  } else if (len > segment) {
    for (size_t off = 0; off < len; off += segment) send_batch(remote, data + off, std::min(segment, len - off), segment);
    return;
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return;
  if (msg.msg_control && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
    // No GSO on this path (old kernel, or a device without checksum offload): one by one.
    spdlog::debug("udp gso unavailable error={}, sending packets one by one", strerror(errno));
    gso_ = false;
    send_batch(remote, data, len, segment);
    return;
  }
  // EAGAIN: the socket buffer is full. Dropping is correct for QUIC: loss recovery resends.
  if (errno != EAGAIN) spdlog::debug("udp send failed error={}", strerror(errno));
}

void QuicEndpoint::defer_flush(std::shared_ptr<QuicConnection> c) {
  if (!in_recv_batch_) {
    c->flush();
    return;
  }
  if (std::find(deferred_.begin(), deferred_.end(), c) == deferred_.end()) deferred_.push_back(std::move(c));
}

void QuicEndpoint::flush_deferred() {
  auto pending = std::move(deferred_);
  deferred_.clear();
  for (auto& c : pending) c->flush();
}

void QuicEndpoint::on_recv(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr) {
  if (nread <= 0 || !addr) return;  // 0 bytes with no address: nothing more to read now
  BytesView pkt(buf->base, static_cast<size_t>(nread));
  SockAddr remote = SockAddr::from(addr);

  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, data_u8(pkt), pkt.size(), 16);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    // An Initial with a version we do not speak: tell the client which we do.
    std::array<uint8_t, 256> out;
    uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t unused = 0;
    randombytes_buf(&unused, 1);
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(out.data(), out.size(), unused, vc.scid, vc.scidlen,
                                                          vc.dcid, vc.dcidlen, versions, 1);
    if (n > 0) send(remote, out.data(), static_cast<size_t>(n));
    return;
  }
  if (rv != 0) return;  // garbage: drop quietly

  auto it = by_cid_.find(std::string(view_of(vc.dcid, vc.dcidlen)));
  if (it != by_cid_.end()) {
    it->second->on_datagram(remote, pkt);
    return;
  }
  handle_unknown(remote, pkt, vc);
}

void QuicEndpoint::handle_unknown(const SockAddr& remote, BytesView pkt, const ngtcp2_version_cid& vc) {
  bool long_header = (static_cast<uint8_t>(pkt[0]) & 0x80) != 0;
  if (long_header) {
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, data_u8(pkt), pkt.size()) != 0) return;  // not an acceptable Initial
    if (handshaking_count() >= kMaxHandshaking) {
      spdlog::warn("dropping new connection reason=too_many_handshakes remote={}",
                   multiaddr_from_sockaddr(remote.get(), true).to_string());
      return;
    }
    QuicConnection::Params p;
    p.role = Endpoint::Listener;
    p.local = local_;
    p.remote = remote;
    p.client_dcid = hd.dcid;
    p.client_scid = hd.scid;
    p.version = hd.version;
    auto conn = std::make_shared<QuicConnection>(*this, std::move(p), [this](auto r) {
      if (r) transport_.notify_inbound(*r);
    });
    if (auto st = conn->start(); !st) {
      spdlog::warn("inbound connection setup failed error={}", st.error().message);
      return;
    }
    conns_.emplace(conn->id(), conn);
    conn->on_datagram(remote, pkt);
    return;
  }
  // A short-header packet for a connection we do not know (e.g. we restarted): answer with a
  // stateless reset so the peer stops at once. It must be smaller than what triggered it, and
  // the rate is capped so we cannot be used as a reflector.
  if (pkt.size() < 43) return;
  uint64_t now = uv_hrtime();
  if (now - reset_window_start_ > 1'000'000'000ULL) {
    reset_window_start_ = now;
    resets_this_second_ = 0;
  }
  if (++resets_this_second_ > kMaxResetsPerSecond) return;
  ngtcp2_cid dcid;
  ngtcp2_cid_init(&dcid, vc.dcid, vc.dcidlen);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  if (ngtcp2_crypto_generate_stateless_reset_token(token, reset_secret(), 32, &dcid) != 0) return;
  std::array<uint8_t, 64> rand;
  size_t randlen = std::min(rand.size(), pkt.size() - 1 - NGTCP2_STATELESS_RESET_TOKENLEN);
  randlen = std::max<size_t>(randlen, NGTCP2_MIN_STATELESS_RESET_RANDLEN);
  randombytes_buf(rand.data(), randlen);
  std::array<uint8_t, 128> out;
  ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(out.data(), out.size(), token, rand.data(), randlen);
  if (n > 0 && static_cast<size_t>(n) < pkt.size()) send(remote, out.data(), static_cast<size_t>(n));
}

void QuicEndpoint::dial(const SockAddr& remote, const PeerId& expected, QuicConnection::EstablishedFn cb) {
  QuicConnection::Params p;
  p.role = Endpoint::Dialer;
  p.local = local_;
  p.remote = remote;
  p.expected_peer = expected;
  auto conn = std::make_shared<QuicConnection>(*this, std::move(p), std::move(cb));
  conns_.emplace(conn->id(), conn);
  if (auto st = conn->start(); !st) conn->teardown(st.error().message);
}

void QuicEndpoint::register_cid(BytesView cid, QuicConnection* c) { by_cid_[std::string(cid)] = c; }

void QuicEndpoint::unregister_cid(BytesView cid) {
  auto it = by_cid_.find(std::string(cid));
  if (it != by_cid_.end()) by_cid_.erase(it);
}

void QuicEndpoint::retire(QuicConnection* c) {
  auto it = conns_.find(c->id());
  if (it == conns_.end()) return;
  retired_.push_back(std::move(it->second));
  conns_.erase(it);
  // Destroy on the next loop turn, once every stack frame using the connection has returned.
  reaper_.start(0, 0, [this] { reap(); });
}

void QuicEndpoint::reap() { retired_.clear(); }

size_t QuicEndpoint::handshaking_count() const {
  size_t n = 0;
  for (const auto& [id, c] : conns_) n += c->handshake_done() ? 0 : 1;
  return n;
}

void QuicEndpoint::close_all(const std::string& reason) {
  std::vector<std::shared_ptr<QuicConnection>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) c->close(reason);
}

}  // namespace punchgate
