#include "transport/quic_stream.hpp"

#include "transport/quic_connection.hpp"

namespace punchgate {

QuicStream::QuicStream(QuicConnection* conn, int64_t id)
    : conn_(conn), owner_(conn->weak_from_this()), id_(id), send_(kSendCapacity) {}

void QuicStream::set_handlers(Handlers h) {
  events_.set_handlers(std::move(h));
  if (!conn_) {
    dispatch();  // the connection is already gone: deliver the final events now
    return;
  }
  // Events may have queued before the handlers were attached (e.g. bytes right after a
  // multistream accept); deliver them on the next flush of the connection.
  if (conn_ && events_.pending()) {
    conn_->mark_dirty(*this);
    conn_->request_flush();
  }
}

size_t QuicStream::write(BytesView data) {
  if (!conn_ || write_shut_ || fin_requested_ || events_.closed()) return 0;
  size_t n = send_.append(data);
  if (n < data.size()) events_.want_writable();
  if (n > 0) {
    conn_->send_queue_.insert(id_);
    conn_->request_flush();
  }
  return n;
}

size_t QuicStream::write_capacity() const {
  if (!conn_ || write_shut_ || fin_requested_ || events_.closed()) return 0;
  return send_.capacity_left();
}

void QuicStream::shutdown_write() {
  if (!conn_ || fin_requested_ || write_shut_) return;
  fin_requested_ = true;
  conn_->send_queue_.insert(id_);
  conn_->request_flush();
}

void QuicStream::reset(uint64_t code) {
  if (!conn_ || events_.closed()) return;
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
  events_.push_data(data);
  if (fin) events_.push_fin();
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::on_acked(uint64_t offset, uint64_t len) {
  send_.ack(offset, len);
  if (events_.wants_writable() && conn_) conn_->mark_dirty(*this);  // room may have opened up
}

void QuicStream::on_peer_reset(uint64_t code) {
  events_.push_reset(code);
  write_shut_ = true;
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::on_ngtcp2_close(uint64_t code) {
  // A close before FIN was both sent and received means the stream was aborted.
  if (!(fin_sent_ && events_.fin_received()) && !events_.reset_seen()) on_peer_reset(code);
  events_.push_closed();
  if (conn_) conn_->mark_dirty(*this);
}

void QuicStream::detach(const std::string& /*reason*/) {
  if (!events_.closed() && !events_.reset_seen()) on_peer_reset(0);
  events_.push_closed();
  dispatch();
  conn_ = nullptr;
}

void QuicStream::dispatch() {
  if (!events_.has_handlers()) return;
  auto self = shared_from_this();  // a handler may drop the last outside reference
  events_.dispatch([this] { return !write_shut_ && send_.capacity_left() >= kSendCapacity / 2; },
                   [this](size_t n) { consume(n); });
}

}  // namespace punchgate
