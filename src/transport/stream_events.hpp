// The receiving half every Stream implementation shares: events queued by the transport and
// delivered to the handlers in the order the Stream contract promises (data, FIN, reset,
// writable; closed last, after which the handlers are dropped to break reference cycles
// through their captures). QuicStream and MuxedStream differ only in how they get the events.
#pragma once

#include "punchgate/transport/connection.hpp"

#include <cstdint>
#include <utility>

namespace punchgate {

class StreamEvents {
 public:
  void set_handlers(Stream::Handlers h) {
    handlers_ = std::move(h);
    has_handlers_ = true;
  }
  void set_manual_consume(bool manual) { manual_consume_ = manual; }

  void push_data(BytesView data) { rx_.append(data); }
  void push_fin() { rx_fin_ = true; }
  // The first reset code wins; none after one was delivered.
  void push_reset(uint64_t code) {
    if (!reset_pending_ && !reset_delivered_) {
      reset_pending_ = true;
      reset_code_ = code;
    }
  }
  void push_closed() { closed_ = true; }
  void want_writable() { want_writable_ = true; }

  bool has_handlers() const { return has_handlers_; }
  bool fin_received() const { return rx_fin_; }
  bool reset_seen() const { return reset_pending_ || reset_delivered_; }
  bool closed() const { return closed_; }
  bool close_delivered() const { return close_delivered_; }
  bool wants_writable() const { return want_writable_; }
  // Something a late set_handlers() must still deliver.
  bool pending() const { return !rx_.empty() || rx_fin_ || reset_pending_ || closed_ || want_writable_; }

  // Delivers what is queued. `can_write()`: whether on_writable may fire now (asked after the
  // earlier handlers ran); `consume(n)`: credits n delivered bytes unless the reader consumes
  // manually. The caller keeps its stream alive across the call (handlers may drop it).
  template <class CanWrite, class Consume>
  void dispatch(CanWrite can_write, Consume consume) {
    if (!has_handlers_) return;
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
    if (want_writable_ && !closed_ && handlers_.on_writable && can_write()) {
      want_writable_ = false;
      auto fn = handlers_.on_writable;
      fn();
    }
    if (closed_ && !close_delivered_ && rx_.empty()) {
      close_delivered_ = true;
      auto on_closed = std::move(handlers_.on_closed);
      handlers_ = {};
      if (on_closed) on_closed();
    }
  }

 private:
  Stream::Handlers handlers_;
  bool has_handlers_ = false;
  bool manual_consume_ = false;
  Bytes rx_;  // received, not yet delivered
  bool rx_fin_ = false;  // delivered after rx_
  bool fin_delivered_ = false;
  bool reset_pending_ = false;
  bool reset_delivered_ = false;
  uint64_t reset_code_ = 0;
  bool want_writable_ = false;
  bool closed_ = false;
  bool close_delivered_ = false;
};

}  // namespace punchgate
