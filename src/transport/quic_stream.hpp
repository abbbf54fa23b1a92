// One QUIC bidirectional stream: buffers between the application and ngtcp2. Every application
// callback runs outside ngtcp2 (the connection queues events and dispatches them afterwards).
#pragma once

#include "punchgate/transport/connection.hpp"
#include "transport/send_buffer.hpp"
#include "transport/stream_events.hpp"

#include <string>

namespace punchgate {

class QuicConnection;

class QuicStream final : public Stream, public std::enable_shared_from_this<QuicStream> {
 public:
  static constexpr size_t kSendCapacity = 1024 * 1024;

  QuicStream(QuicConnection* conn, int64_t id);

  // Stream interface.
  int64_t id() const override { return id_; }
  void set_handlers(Handlers h) override;
  size_t write(BytesView data) override;
  size_t write_capacity() const override;
  void shutdown_write() override;
  void reset(uint64_t code) override;
  void set_manual_consume(bool manual) override { events_.set_manual_consume(manual); }
  void consume(size_t n) override;
  bool is_closed() const override { return events_.closed(); }

  // Used by QuicConnection.
  SendBuffer& send_buffer() { return send_; }
  bool wants_send() const { return !write_shut_ && !blocked_ && (send_.unsent() > 0 || (fin_requested_ && !fin_sent_)); }
  bool fin_pending() const { return fin_requested_ && !fin_sent_; }
  void mark_fin_sent() { fin_sent_ = true; }
  void set_blocked(bool b) { blocked_ = b; }
  void mark_write_shut() { write_shut_ = true; }

  void on_recv(BytesView data, bool fin);   // from ngtcp2 callback: queue only
  void on_acked(uint64_t offset, uint64_t len);
  void on_peer_reset(uint64_t code);        // RESET_STREAM or STOP_SENDING
  void on_ngtcp2_close(uint64_t code);
  void detach(const std::string& reason);   // connection is gone
  // Delivers queued events to the handlers. Returns true if something was delivered.
  void dispatch();

 private:
  QuicConnection* conn_;                 // null once the stream is closed or detached
  std::weak_ptr<QuicConnection> owner_;  // outlives conn_: late consume() still credits the connection
  int64_t id_;
  StreamEvents events_;
  SendBuffer send_;
  bool fin_requested_ = false;
  bool fin_sent_ = false;
  bool blocked_ = false;
  bool write_shut_ = false;
  bool dirty_ = false;  // queued in the connection's dirty_streams_

  friend class QuicConnection;
};

}  // namespace punchgate
