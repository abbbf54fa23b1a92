// One UDP socket and every QUIC connection that uses it, demultiplexed by destination connection
// id. Unknown Initial packets become inbound connections; other unknown packets get a stateless
// reset (bounded) or are dropped; unsupported versions get Version Negotiation.
#pragma once

#include "punchgate/core/uv_handle.hpp"
#include "transport/quic_connection.hpp"

#include <unordered_map>

namespace punchgate {

class QuicTransport;

class QuicEndpoint {
 public:
  static Result<std::unique_ptr<QuicEndpoint>> bind(QuicTransport& transport, const SockAddr& addr);
  ~QuicEndpoint();

  const SockAddr& local() const { return local_; }
  const Multiaddr& local_multiaddr() const { return local_ma_; }
  int family() const { return local_.get()->sa_family; }
  QuicTransport& transport() { return transport_; }

  void dial(const SockAddr& remote, const PeerId& expected, QuicConnection::EstablishedFn cb);
  void send(const SockAddr& remote, const uint8_t* data, size_t len) { send_batch(remote, data, len, len); }
  // Sends packets laid out back to back, each `segment` bytes but the last (which may be
  // shorter), as one UDP_SEGMENT (GSO) send where the kernel supports it.
  void send_batch(const SockAddr& remote, const uint8_t* data, size_t len, size_t segment);
  // Flushes `c` once the current receive batch has been processed.
  void defer_flush(std::shared_ptr<QuicConnection> c);

  // Connection id bookkeeping (called by connections).
  void register_cid(BytesView cid, QuicConnection* c);
  void unregister_cid(BytesView cid);
  // The connection is finished: drop it once the current call stack unwinds.
  void retire(QuicConnection* c);
  const uint8_t* reset_secret() const;
  size_t handshaking_count() const;
  // Connections on this socket, finished ones not yet destroyed included.
  size_t connection_count() const { return conns_.size() + retired_.size(); }
  void close_all(const std::string& reason);

  explicit QuicEndpoint(QuicTransport& t);  // use bind()

 private:
  void on_recv(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr);
  void handle_unknown(const SockAddr& remote, BytesView pkt, const ngtcp2_version_cid& vc);
  void reap();
  void flush_deferred();

  QuicTransport& transport_;
  UvHandle<uv_udp_t> udp_;
  Timer reaper_;
  SockAddr local_;
  Multiaddr local_ma_;
  std::unordered_map<std::string, QuicConnection*> by_cid_;
  std::unordered_map<uint64_t, std::shared_ptr<QuicConnection>> conns_;
  std::vector<std::shared_ptr<QuicConnection>> retired_;
  size_t resets_this_second_ = 0;
  uint64_t reset_window_start_ = 0;
  std::unique_ptr<char[]> rxbuf_;
  std::vector<std::shared_ptr<QuicConnection>> deferred_;
  bool in_recv_batch_ = false;
  bool gso_ = true;
};

}  // namespace punchgate
