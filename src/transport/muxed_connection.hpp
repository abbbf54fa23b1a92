// A Connection over a plain byte stream (a relayed circuit): the stream is upgraded by a
// SecureMuxSession (Noise + yamux) and each yamux stream is offered as a Stream. This file is
// glue only: bytes move between the carrier stream and the session, events go to handlers.
#pragma once

#include "punchgate/transport/connection.hpp"
#include "transport/secure_mux_session.hpp"
#include "transport/stream_events.hpp"

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace punchgate {

class MuxedConnection;
class Timer;

class MuxedStream final : public Stream, public std::enable_shared_from_this<MuxedStream> {
 public:
  // Bytes a stream buffers for sending before write() takes no more (yamux holds more in flight).
  static constexpr size_t kSendCapacity = 256 * 1024;

  MuxedStream(const std::shared_ptr<MuxedConnection>& conn, uint32_t id);

  int64_t id() const override { return id_; }
  void set_handlers(Handlers h) override;
  size_t write(BytesView data) override;
  size_t write_capacity() const override;
  void shutdown_write() override;
  void reset(uint64_t code) override;
  void set_manual_consume(bool manual) override { events_.set_manual_consume(manual); }
  void consume(size_t n) override;
  bool is_closed() const override { return events_.closed(); }

 private:
  friend class MuxedConnection;
  void dispatch();
  size_t unsent() const { return send_.size() - send_head_; }

  std::weak_ptr<MuxedConnection> conn_;
  uint32_t id_;
  StreamEvents events_;
  Bytes send_;
  size_t send_head_ = 0;
  bool fin_requested_ = false;
  bool fin_sent_ = false;
  bool write_shut_ = false;
};

class MuxedConnection final : public Connection, public std::enable_shared_from_this<MuxedConnection> {
 public:
  struct Info {
    Multiaddr remote_addr;  // e.g. <relay addr>/p2p/<R>/p2p-circuit/p2p/<peer>
    Multiaddr local_addr;
    Endpoint endpoint = Endpoint::Dialer;
    uint64_t handshake_timeout_ms = 15'000;
  };
  using ReadyFn = std::function<void(Result<ConnectionPtr>)>;

  // Upgrades `carrier` (whose first bytes, already read, are `leftover`); `ready` fires once, with
  // the connection when the session is up, or the error (the carrier is reset then).
  static void upgrade(uv_loop_t* loop, StreamPtr carrier, Bytes leftover, SecureMuxSession session, Info info,
                      ReadyFn ready);
  ~MuxedConnection() override;

  const PeerId& remote_peer() const override { return remote_peer_; }
  const Multiaddr& remote_addr() const override { return info_.remote_addr; }
  const Multiaddr& local_addr() const override { return info_.local_addr; }
  Endpoint endpoint() const override { return info_.endpoint; }
  bool is_relayed() const override { return true; }
  size_t stream_count() const override { return streams_.size(); }
  void set_handlers(Handlers h) override { handlers_ = std::move(h); }
  Result<StreamPtr> open_stream() override;
  void close(const std::string& reason) override;
  bool is_closed() const override { return closed_; }
  uint64_t id() const override { return id_; }

  MuxedConnection(uv_loop_t* loop, StreamPtr carrier, SecureMuxSession session, Info info, ReadyFn ready);

 private:
  friend class MuxedStream;
  void on_carrier_data(BytesView data);
  // Moves stream writes into yamux, handles yamux events, writes to the carrier; repeats until
  // nothing moves. Re-entrant calls (from handlers) just ask for another round.
  void process();
  // process() on the next loop turn: stream calls never run handlers from inside themselves (a
  // handler may drop the caller's last reference), the same promise QUIC streams keep.
  void process_soon();
  void push_writes();
  void handle_events();
  void flush_carrier();
  void dispatch_streams();
  void fail(const std::string& reason);
  void teardown(const std::string& reason);

  uv_loop_t* loop_;
  StreamPtr carrier_;
  SecureMuxSession session_;
  Info info_;
  ReadyFn ready_;
  std::shared_ptr<MuxedConnection> self_;  // held during the upgrade only
  std::unique_ptr<Timer> handshake_timer_;
  std::unique_ptr<Timer> soon_;
  PeerId remote_peer_;
  Handlers handlers_;
  uint64_t id_;
  std::map<uint32_t, std::shared_ptr<MuxedStream>> streams_;
  std::set<uint32_t> writers_;  // streams with unsent bytes or a FIN to pass to yamux
  std::set<uint32_t> dirty_;    // streams with events to dispatch
  bool processing_ = false;
  bool again_ = false;
  bool closed_ = false;
};

}  // namespace punchgate
