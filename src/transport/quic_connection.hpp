// One QUIC connection (ngtcp2 + gnutls) speaking the libp2p TLS handshake. Packets come in from
// and go out through the owning endpoint's shared UDP socket. ngtcp2 callbacks only queue work;
// application callbacks run afterwards from dispatch(), so user code never re-enters ngtcp2.
#pragma once

#include "punchgate/core/sockaddr.hpp"
#include "punchgate/transport/connection.hpp"
#include "transport/quic_stream.hpp"

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sys/socket.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace punchgate {

class QuicEndpoint;
class Timer;

// The ngtcp2 callback table for a connection of `role` (quic_callbacks.cpp).
ngtcp2_callbacks quic_callbacks(Endpoint role);
ngtcp2_cid random_cid(size_t len);
inline BytesView cid_view(const ngtcp2_cid& cid) { return view_of(cid.data, cid.datalen); }

class QuicConnection final : public Connection, public std::enable_shared_from_this<QuicConnection> {
 public:
  // Fires once: the handshake completed and the peer is authenticated, or the connection failed.
  using EstablishedFn = std::function<void(Result<std::shared_ptr<QuicConnection>>)>;

  struct Params {
    Endpoint role;
    SockAddr local;
    SockAddr remote;
    std::optional<PeerId> expected_peer;  // dialer: the /p2p/ id it asked for
    // Listener only: the client's header fields from its first Initial packet.
    ngtcp2_cid client_dcid{};
    ngtcp2_cid client_scid{};
    uint32_t version = NGTCP2_PROTO_VER_V1;
  };

  QuicConnection(QuicEndpoint& ep, Params p, EstablishedFn established);
  ~QuicConnection() override;
  QuicConnection(const QuicConnection&) = delete;
  QuicConnection& operator=(const QuicConnection&) = delete;

  // Creates the ngtcp2 connection and TLS session; for a dialer also sends the first flight.
  Status start();

  // Connection interface.
  const PeerId& remote_peer() const override { return remote_peer_; }
  const Multiaddr& remote_addr() const override { return remote_ma_; }
  const Multiaddr& local_addr() const override { return local_ma_; }
  Endpoint endpoint() const override { return params_.role; }
  void set_handlers(Handlers h) override { handlers_ = std::move(h); }
  Result<StreamPtr> open_stream() override;
  void close(const std::string& reason) override;
  bool is_closed() const override { return dead_; }
  size_t stream_count() const override { return streams_.size(); }
  uint64_t id() const override { return serial_; }

  // From the endpoint.
  void on_datagram(const SockAddr& remote, BytesView data);
  const SockAddr& remote_sockaddr() const { return params_.remote; }
  bool handshake_done() const { return handshake_done_; }

  // From QuicStream.
  void request_flush();
  void mark_dirty(QuicStream& s);
  void extend_stream_window(int64_t stream_id, size_t n);
  void extend_connection_window(size_t n);
  void reset_stream(int64_t stream_id, uint64_t code);

 private:
  friend struct QuicCallbacks;
  ngtcp2_conn* conn() const { return conn_.get(); }
  Status setup_tls();
  void flush();
  bool write_loop(uint64_t now);
  void send_packet(const uint8_t* data, size_t len);
  void arm_timer();
  void on_timer();
  void after_io();
  void send_connection_close(const ngtcp2_connection_close_error& ccerr);
  void fail(int liberr, const std::string& reason);
  void teardown(const std::string& reason);
  std::string close_reason_from_peer() const;
  int verify_peer_certificate(gnutls_session_t session);

  struct ConnDeleter { void operator()(ngtcp2_conn* c) const { ngtcp2_conn_del(c); } };
  struct SessionDeleter { void operator()(gnutls_session_int* s) const { gnutls_deinit(s); } };

  QuicEndpoint& ep_;
  Params params_;
  EstablishedFn established_;
  Handlers handlers_;
  uint64_t serial_;
  std::unique_ptr<ngtcp2_conn, ConnDeleter> conn_;
  std::unique_ptr<gnutls_session_int, SessionDeleter> session_;
  ngtcp2_crypto_conn_ref conn_ref_{};
  std::unique_ptr<Timer> timer_;
  std::map<int64_t, std::shared_ptr<QuicStream>> streams_;
  std::vector<std::shared_ptr<QuicStream>> new_remote_streams_;
  std::vector<std::shared_ptr<QuicStream>> closed_streams_;
  std::set<int64_t> send_queue_;
  // Streams with events to deliver. after_io() dispatches only these: walking every stream on
  // every packet made a busy connection ~100x slower next to 10,000 idle streams.
  std::vector<int64_t> dirty_streams_;
  std::vector<Bytes> registered_cids_;
  PeerId remote_peer_;
  Multiaddr remote_ma_;
  Multiaddr local_ma_;
  std::string verify_error_;
  int callback_depth_ = 0;       // > 0 while inside an ngtcp2 call
  bool flush_requested_ = false;
  bool handshake_done_ = false;
  bool established_reported_ = false;
  bool dead_ = false;

  friend class QuicEndpoint;
  friend class QuicStream;
  friend int quic_verify_certificate(gnutls_session_t);
};

}  // namespace punchgate
