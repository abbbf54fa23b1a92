#include "transport/quic_connection.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/transport/quic_transport.hpp"
#include "transport/quic_endpoint.hpp"
#include "transport/quic_tls.hpp"

#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace punchgate {

namespace {

constexpr size_t kScidLen = 16;
constexpr size_t kMaxUdpPayload = 1452;
constexpr size_t kMaxPacketsPerFlush = 64;
constexpr size_t kMaxGsoSegments = 40;  // 40 x 1452 stays under the 64 KiB UDP limit

uint64_t now_ns() { return uv_hrtime(); }

void ngtcp2_log_line(void*, const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  spdlog::trace("ngtcp2 {}", line);
}

}  // namespace

QuicConnection::QuicConnection(QuicEndpoint& ep, Params p, EstablishedFn established)
    : ep_(ep), params_(std::move(p)), established_(std::move(established)), serial_(next_connection_serial()) {
  remote_ma_ = multiaddr_from_sockaddr(params_.remote.get(), true);
  local_ma_ = ep_.local_multiaddr();
  conn_ref_.get_conn = [](ngtcp2_crypto_conn_ref* ref) {
    return static_cast<QuicConnection*>(ref->user_data)->conn();
  };
  conn_ref_.user_data = this;
}

QuicConnection::~QuicConnection() {
  for (const Bytes& cid : registered_cids_) ep_.unregister_cid(cid);
}

Status QuicConnection::start() {
  ngtcp2_callbacks cb = quic_callbacks(params_.role);

  const QuicTransportConfig& cfg = ep_.transport().config();
  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now_ns();
  settings.max_tx_udp_payload_size = kMaxUdpPayload;
  settings.handshake_timeout = cfg.handshake_timeout_ms * NGTCP2_MILLISECONDS;
  settings.max_stream_window = 8 * 1024 * 1024;
  settings.max_window = 16 * 1024 * 1024;
  settings.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  if (spdlog::should_log(spdlog::level::trace)) {
    settings.log_printf = ngtcp2_log_line;
  }

  ngtcp2_transport_params tp;
  ngtcp2_transport_params_default(&tp);
  tp.initial_max_stream_data_bidi_local = 1024 * 1024;
  tp.initial_max_stream_data_bidi_remote = 1024 * 1024;
  tp.initial_max_stream_data_uni = 0;
  tp.initial_max_data = 4 * 1024 * 1024;
  // Each tunnelled TCP connection is a stream: allow many idle ones (10,000+), bounded so a
  // peer cannot make us hold unlimited stream state.
  tp.initial_max_streams_bidi = 16384;
  tp.initial_max_streams_uni = 0;
  tp.max_idle_timeout = cfg.idle_timeout_ms * NGTCP2_MILLISECONDS;
  tp.active_connection_id_limit = 4;

  ngtcp2_path path{};
  path.local.addr = const_cast<sockaddr*>(params_.local.get());
  path.local.addrlen = params_.local.len;
  path.remote.addr = const_cast<sockaddr*>(params_.remote.get());
  path.remote.addrlen = params_.remote.len;

  ngtcp2_conn* raw = nullptr;
  ngtcp2_cid scid = random_cid(kScidLen);
  int rv;
  if (params_.role == Endpoint::Dialer) {
    ngtcp2_cid dcid = random_cid(18);
    rv = ngtcp2_conn_client_new(&raw, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings, &tp, nullptr, this);
  } else {
    tp.original_dcid = params_.client_dcid;
    rv = ngtcp2_conn_server_new(&raw, &params_.client_scid, &scid, &path, params_.version, &cb, &settings, &tp,
                                nullptr, this);
  }
  if (rv != 0) return make_error("ngtcp2 connection setup failed: {}", ngtcp2_strerror(rv));
  conn_.reset(raw);
  ep_.register_cid(cid_view(scid), this);
  registered_cids_.emplace_back(cid_view(scid));
  if (params_.role == Endpoint::Listener) {
    // Retransmitted client Initials still carry the DCID the client picked.
    ep_.register_cid(cid_view(params_.client_dcid), this);
    registered_cids_.emplace_back(cid_view(params_.client_dcid));
  }

  PG_TRY(setup_tls());
  timer_ = std::make_unique<Timer>(ep_.transport().loop());
  if (params_.role == Endpoint::Dialer) flush();
  return {};
}

Status QuicConnection::setup_tls() {
  auto s = make_quic_tls_session(params_.role, ep_.transport().certificate(), &conn_ref_);
  if (!s) return s.error();
  session_.reset(*s);
  ngtcp2_conn_set_tls_native_handle(conn(), session_.get());
  return {};
}

int QuicConnection::verify_peer_certificate(gnutls_session_t session) {
  unsigned int n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
  if (!certs || n == 0) {
    verify_error_ = "peer presented no certificate";
    return -1;
  }
  if (n != 1) {
    verify_error_ = fmt::format("peer presented {} certificates, libp2p allows exactly one", n);
    return -1;
  }
  auto peer = verify_libp2p_certificate(view_of(certs[0].data, certs[0].size));
  if (!peer) {
    verify_error_ = "invalid peer certificate: " + peer.error().message;
    return -1;
  }
  if (params_.expected_peer && *params_.expected_peer != *peer) {
    verify_error_ = fmt::format("peer id mismatch: expected {} but the peer is {}",
                                params_.expected_peer->to_base58(), peer->to_base58());
    return -1;
  }
  remote_peer_ = *peer;
  return 0;
}

Result<StreamPtr> QuicConnection::open_stream() {
  if (dead_ || !handshake_done_) return make_error("connection is not open");
  int64_t sid = -1;
  int rv = ngtcp2_conn_open_bidi_stream(conn(), &sid, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return make_error("peer's stream limit reached");
  if (rv != 0) return make_error("cannot open stream: {}", ngtcp2_strerror(rv));
  auto s = std::make_shared<QuicStream>(this, sid);
  streams_.emplace(sid, s);
  return StreamPtr(s);
}

void QuicConnection::mark_dirty(QuicStream& s) {
  if (s.dirty_) return;
  s.dirty_ = true;
  dirty_streams_.push_back(s.id());
}

void QuicConnection::request_flush() {
  if (dead_) return;
  if (callback_depth_ > 0) {
    flush_requested_ = true;
    return;
  }
  flush();
}

void QuicConnection::extend_stream_window(int64_t stream_id, size_t n) {
  if (dead_) return;
  ngtcp2_conn_extend_max_stream_offset(conn(), stream_id, n);
  ngtcp2_conn_extend_max_offset(conn(), n);
  request_flush();
}

void QuicConnection::extend_connection_window(size_t n) {
  if (dead_) return;
  ngtcp2_conn_extend_max_offset(conn(), n);
  request_flush();
}

void QuicConnection::reset_stream(int64_t stream_id, uint64_t code) {
  if (dead_) return;
  send_queue_.erase(stream_id);
  ngtcp2_conn_shutdown_stream(conn(), stream_id, code);
  request_flush();
}

void QuicConnection::on_datagram(const SockAddr& remote, BytesView data) {
  if (dead_) return;
  ngtcp2_path path{};
  path.local.addr = const_cast<sockaddr*>(params_.local.get());
  path.local.addrlen = params_.local.len;
  path.remote.addr = const_cast<sockaddr*>(remote.get());
  path.remote.addrlen = remote.len;
  ngtcp2_pkt_info pi{};
  auto keep = shared_from_this();
  ++callback_depth_;
  int rv = ngtcp2_conn_read_pkt(conn(), &path, &pi, data_u8(data), data.size(), now_ns());
  --callback_depth_;
  if (rv != 0) {
    if (rv == NGTCP2_ERR_DRAINING) {
      teardown(close_reason_from_peer());
    } else if (rv == NGTCP2_ERR_DROP_CONN) {
      teardown("dropped");
    } else if (rv == NGTCP2_ERR_RETRY) {
      teardown("retry required");  // we never ask for Retry as a listener; be safe
    } else if (rv == NGTCP2_ERR_CRYPTO) {
      fail(rv, verify_error_.empty() ? "TLS handshake failed" : verify_error_);
    } else {
      fail(rv, verify_error_.empty() ? std::string(ngtcp2_strerror(rv)) : verify_error_);
    }
    return;
  }
  // Several datagrams may arrive in one receive batch: answer once, after the batch.
  ep_.defer_flush(keep);
}

void QuicConnection::flush() {
  if (dead_) return;
  auto keep = shared_from_this();
  flush_requested_ = false;
  ++callback_depth_;
  bool ok = write_loop(now_ns());
  --callback_depth_;
  if (!ok) return;
  after_io();
}

bool QuicConnection::write_loop(uint64_t now) {
  // Packets are written back to back; runs of equal-size packets leave as one GSO send.
  std::array<uint8_t, kMaxPacketsPerFlush * kMaxUdpPayload> buf;
  size_t batch_len = 0;
  size_t segment = 0;
  size_t in_batch = 0;
  auto send_batch = [&] {
    if (batch_len > 0) ep_.send_batch(params_.remote, buf.data(), batch_len, segment);
    batch_len = 0;
    segment = 0;
    in_batch = 0;
  };
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  size_t packets = 0;
  const size_t max_packets =
      std::max<size_t>(1, std::min(kMaxPacketsPerFlush, ngtcp2_conn_get_send_quantum(conn()) / kMaxUdpPayload));
  auto it = send_queue_.begin();
  for (;;) {
    QuicStream* s = nullptr;
    while (it != send_queue_.end()) {
      auto f = streams_.find(*it);
      if (f != streams_.end() && f->second->wants_send()) {
        s = f->second.get();
        break;
      }
      it = send_queue_.erase(it);
    }
    std::array<ngtcp2_vec, 16> vecs;
    size_t nvec = 0;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    int64_t sid = -1;
    if (s) {
      sid = s->id();
      nvec = s->send_buffer().unsent_vecs(vecs.data(), vecs.size());
      size_t total = 0;
      for (size_t i = 0; i < nvec; ++i) total += vecs[i].len;
      if (s->fin_pending() && total == s->send_buffer().unsent()) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    uint8_t* dest = buf.data() + batch_len;
    ngtcp2_ssize ndatalen = -1;
    ngtcp2_ssize nwrite = ngtcp2_conn_writev_stream(conn(), &ps.path, &pi, dest, kMaxUdpPayload, &ndatalen, flags,
                                                    sid, vecs.data(), nvec, now);
    if (nwrite < 0) {
      switch (nwrite) {
        case NGTCP2_ERR_STREAM_DATA_BLOCKED:
          s->set_blocked(true);
          it = send_queue_.erase(it);
          continue;
        case NGTCP2_ERR_STREAM_SHUT_WR:
        case NGTCP2_ERR_STREAM_NOT_FOUND:
          s->mark_write_shut();
          it = send_queue_.erase(it);
          continue;
        case NGTCP2_ERR_WRITE_MORE:
          s->send_buffer().mark_sent(static_cast<size_t>(ndatalen));
          if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->send_buffer().unsent() == 0) s->mark_fin_sent();
          if (!s->wants_send()) it = send_queue_.erase(it);
          continue;
        default:
          send_batch();
          fail(static_cast<int>(nwrite), ngtcp2_strerror(static_cast<int>(nwrite)));
          return false;
      }
    }
    if (s && ndatalen >= 0) {
      s->send_buffer().mark_sent(static_cast<size_t>(ndatalen));
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->send_buffer().unsent() == 0) s->mark_fin_sent();
    }
    if (nwrite == 0) break;  // congestion- or flow-limited, or nothing to send
    auto len = static_cast<size_t>(nwrite);
    if (segment != 0 && len > segment) {
      // Larger than the batch's segment size: send the batch, then start a new one with it.
      std::array<uint8_t, kMaxUdpPayload> tmp;
      std::memcpy(tmp.data(), dest, len);
      send_batch();
      std::memcpy(buf.data(), tmp.data(), len);
    }
    if (segment == 0) segment = len;
    batch_len += len;
    ++in_batch;
    // A short packet must end a GSO batch; the kernel also caps segments per send.
    if (len < segment || in_batch >= kMaxGsoSegments || batch_len + kMaxUdpPayload > buf.size()) send_batch();
    if (s) {
      // Round-robin: move on to the next stream so one bulk stream cannot starve the others.
      if (it != send_queue_.end()) ++it;
      if (it == send_queue_.end()) it = send_queue_.begin();
    }
    if (++packets >= max_packets) break;
  }
  send_batch();
  ngtcp2_conn_update_pkt_tx_time(conn(), now);
  return true;
}

void QuicConnection::send_packet(const uint8_t* data, size_t len) { ep_.send_batch(params_.remote, data, len, len); }

void QuicConnection::arm_timer() {
  if (dead_) return;
  uint64_t expiry = ngtcp2_conn_get_expiry(conn());
  uint64_t now = now_ns();
  // Round down: pacing wants sub-millisecond gaps, and a timer of 0 runs on the next loop turn
  // (after pending I/O), which is the finest gap libuv offers.
  uint64_t ms = expiry <= now ? 0 : (expiry - now) / NGTCP2_MILLISECONDS;
  timer_->start(ms, 0, [this] { on_timer(); });
}

void QuicConnection::on_timer() {
  if (dead_) return;
  auto keep = shared_from_this();
  ++callback_depth_;
  int rv = ngtcp2_conn_handle_expiry(conn(), now_ns());
  --callback_depth_;
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    teardown("idle timeout");
    return;
  }
  if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    teardown("handshake timeout");
    return;
  }
  if (rv != 0) {
    fail(rv, ngtcp2_strerror(rv));
    return;
  }
  flush();
}

void QuicConnection::after_io() {
  auto keep = shared_from_this();
  if (handshake_done_ && !established_reported_) {
    established_reported_ = true;
    ngtcp2_conn_set_keep_alive_timeout(conn(), ep_.transport().config().keep_alive_ms * NGTCP2_MILLISECONDS);
    if (established_) {
      auto fn = std::move(established_);
      established_ = nullptr;
      fn(keep);
    }
  }
  // Deliver queued events; handlers may write, which sets flush_requested_ again.
  for (int round = 0; round < 4 && !dead_; ++round) {
    auto fresh = std::move(new_remote_streams_);
    new_remote_streams_.clear();
    for (auto& s : fresh) {
      if (handlers_.on_stream) {
        handlers_.on_stream(s);
      } else {
        s->reset(0);
      }
    }
    // Snapshot: handlers may open streams, mark others dirty or close the connection meanwhile.
    std::vector<std::shared_ptr<QuicStream>> live;
    auto dirty = std::move(dirty_streams_);
    dirty_streams_.clear();
    live.reserve(dirty.size());
    for (int64_t id : dirty) {
      auto it = streams_.find(id);
      if (it != streams_.end()) live.push_back(it->second);
    }
    for (auto& s : live) {
      s->dirty_ = false;
      s->dispatch();
    }
    auto closed = std::move(closed_streams_);
    closed_streams_.clear();
    for (auto& s : closed) {
      s->dispatch();
      s->detach("closed");
    }
    if (dead_) break;
    if (!flush_requested_) {
      if (dirty_streams_.empty()) break;
      continue;  // a handler queued events on another stream (e.g. set_handlers with data waiting)
    }
    flush_requested_ = false;
    ++callback_depth_;
    bool ok = write_loop(now_ns());
    --callback_depth_;
    if (!ok) return;
  }
  if (flush_requested_ && !dead_) {
    // Still more to write after several rounds: continue on the next loop turn instead of spinning.
    timer_->start(0, 0, [this] { flush(); });
    return;
  }
  arm_timer();
}

std::string QuicConnection::close_reason_from_peer() const {
  ngtcp2_connection_close_error ccerr;
  ngtcp2_conn_get_connection_close_error(conn(), &ccerr);
  std::string reason(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
  if (reason.empty()) {
    reason = fmt::format("peer closed (error_code={:#x})", ccerr.error_code);
  } else {
    reason = "peer closed: " + reason;
  }
  return reason;
}

void QuicConnection::send_connection_close(const ngtcp2_connection_close_error& ccerr) {
  std::array<uint8_t, kMaxUdpPayload> buf;
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  ngtcp2_ssize n =
      ngtcp2_conn_write_connection_close(conn(), &ps.path, &pi, buf.data(), buf.size(), &ccerr, now_ns());
  if (n > 0) send_packet(buf.data(), static_cast<size_t>(n));
}

void QuicConnection::fail(int liberr, const std::string& reason) {
  if (dead_) return;
  ngtcp2_connection_close_error ccerr;
  if (liberr == NGTCP2_ERR_CRYPTO) {
    ngtcp2_connection_close_error_set_transport_error_tls_alert(
        &ccerr, ngtcp2_conn_get_tls_alert(conn()), reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  } else {
    ngtcp2_connection_close_error_set_transport_error_liberr(
        &ccerr, liberr, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  }
  send_connection_close(ccerr);
  teardown(reason);
}

void QuicConnection::close(const std::string& reason) {
  if (dead_) return;
  if (callback_depth_ > 0 || !conn_) {
    teardown(reason);
    return;
  }
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_set_application_error(&ccerr, 0, reinterpret_cast<const uint8_t*>(reason.data()),
                                                      reason.size());
  send_connection_close(ccerr);
  teardown(reason);
}

void QuicConnection::teardown(const std::string& reason) {
  if (dead_) return;
  dead_ = true;
  auto keep = shared_from_this();
  if (timer_) timer_->stop();
  // Leave the endpoint first: the callbacks below may shut the transport down and free it.
  for (const Bytes& cid : registered_cids_) ep_.unregister_cid(cid);
  registered_cids_.clear();
  ep_.retire(this);
  if (established_) {
    auto fn = std::move(established_);
    established_ = nullptr;
    fn(Error{reason});
  }
  auto streams = std::move(streams_);
  streams_.clear();
  send_queue_.clear();
  dirty_streams_.clear();
  for (auto& [id, s] : streams) s->detach(reason);
  for (auto& s : closed_streams_) s->detach(reason);
  closed_streams_.clear();
  new_remote_streams_.clear();
  if (handshake_done_ && handlers_.on_closed) handlers_.on_closed(reason);
  handlers_ = {};
}

}  // namespace punchgate
