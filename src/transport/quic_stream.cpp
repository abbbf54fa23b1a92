#include "transport/quic_stream.hpp"

#include "transport/quic_connection.hpp"

namespace punchgate {

QuicStream::QuicStream(QuicConnection* conn, int64_t id)
    : conn_(conn), owner_(conn->weak_from_this()), id_(id), send_(kSendCapacity) {}

void QuicStream::set_handlers(Handlers h) {
  handlers_ = std::move(h);
  has_handlers_ = true;
  if (!conn_) {
    dispatch();  // the connection is already gone: deliver the final events now
    return;
  }
  // Events may have queued before the handlers were attached (e.g. bytes right after a
  // multistream accept); deliver them on the next flush of the connection.
  if (conn_ && (!rx_.empty() || rx_fin_ || reset_pending_ || closed_ || want_writable_)) {
    conn_->mark_dirty(*this);
    conn_->request_flush();
  }
}

size_t QuicStream::write(BytesView data) {
  if (!conn_ || write_shut_ || fin_requested_ || closed_) return 0;
  size_t n = send_.append(data);
  if (n < data.size()) want_writable_ = true;
  if (n > 0) {
    conn_->send_queue_.insert(id_);
    conn_->request_flush();
  }
  return n;
}

size_t QuicStream::write_capacity() const {
  if (!conn_ || write_shut_ || fin_requested_ || closed_) return 0;
  return send_.capacity_left();
}

void QuicStream::shutdown_write() {
  if (!conn_ || fin_requested_ || write_shut_) return;
  fin_requested_ = true;
  conn_->send_queue_.insert(id_);
  conn_->request_flush();
}

void QuicStream::reset(uint64_t code) {
  if (!conn_ || closed_) return;
  write_shut_ = true;
  send_.clear();
  conn_->reset_stream(id_, code);
}

void QuicStream::consume(size_t n) {
  if (n == 0) return;
  if (conn_) {
    conn_->extend_stream_window(id_, n);
  } else if (auto c = owner_.lock()) {
    // The stream closed before its reader finished with the bytes (e.g. a TCP write still in
    // flight). The connection-wide window must still reopen, or the whole connection stalls.
    c->extend_connection_window(n);
  }
}

void QuicStream::on_recv(BytesView data, bool fin) {
  rx_.append(data);
  if (fin) rx_fin_ = true;
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::on_acked(uint64_t offset, uint64_t len) {
  send_.ack(offset, len);
  if (want_writable_ && conn_) conn_->mark_dirty(*this);  // room may have opened up
}

void QuicStream::on_peer_reset(uint64_t code) {
  if (!reset_pending_ && !reset_delivered_) {
    reset_pending_ = true;
    reset_code_ = code;
  }
  write_shut_ = true;
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::on_ngtcp2_close(uint64_t code) {
  // A close before FIN was both sent and received means the stream was aborted.
  if (!(fin_sent_ && rx_fin_) && !reset_delivered_) on_peer_reset(code);
  closed_ = true;
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::detach(const std::string& /*reason*/) {
  if (!closed_ && !reset_delivered_) on_peer_reset(0);
  closed_ = true;
  dispatch();
  conn_ = nullptr;
}

void QuicStream::dispatch() {
  if (!has_handlers_) return;
  auto self = shared_from_this();  // a handler may drop the last outside reference
  if (!rx_.empty() && handlers_.on_data) {
    Bytes data = std::move(rx_);
    rx_.clear();
    auto fn = handlers_.on_data;  // a copy: the handler may replace the handlers while running
    fn(data);
    if (!manual_consume_) consume(data.size());
  }
  if (rx_fin_ && rx_.empty() && !fin_delivered_ && handlers_.on_fin) {
    fin_delivered_ = true;
    auto fn = handlers_.on_fin;
    fn();
  }
  if (reset_pending_ && !reset_delivered_ && handlers_.on_reset) {
    reset_pending_ = false;
    reset_delivered_ = true;
    auto fn = handlers_.on_reset;
    fn(reset_code_);
  }
  if (want_writable_ && !closed_ && !write_shut_ && send_.capacity_left() >= kSendCapacity / 2 &&
      handlers_.on_writable) {
    want_writable_ = false;
    auto fn = handlers_.on_writable;
    fn();
  }
  if (closed_ && !close_delivered_ && rx_.empty()) {
    close_delivered_ = true;
    auto on_closed = std::move(handlers_.on_closed);
    // The last event: dropping the handlers breaks reference cycles through their captures.
    handlers_ = {};
    if (on_closed) on_closed();
  }
}

}  // namespace punchgate
