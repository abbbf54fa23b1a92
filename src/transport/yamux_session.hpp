// yamux session (libp2p/specs yamux/README.md) as a sans-IO state machine: feed() it the bytes
// read from the underlying connection, send what take_output() returns, and poll_event() after
// every call until it returns nothing. No sockets, no timers: a ping's round trip is timed by the
// caller, which gets the opaque value back in a PingAck event.
//
// Choices where the spec is silent (matching rust-yamux / js-libp2p-yamux unless noted):
// - Opening: open_stream() immediately sends a Window Update with SYN (as js-libp2p-yamux does),
//   its delta announcing any receive window above the spec's 256 KiB. Inbound streams are
//   acknowledged lazily: ACK rides on the first frame we send on the stream (data, FIN or window
//   update), as the spec's "ACK backlog" section recommends. A SYN'd Window Update's delta adds
//   to the 256 KiB initial send window.
// - Flow control: the receive window only reopens through consume(); a Window Update returns the
//   consumed credit once at least half the window has been consumed (rust-yamux). No window
//   auto-tuning. A Data frame longer than the stream's remaining window is a protocol error, and
//   one longer than the configured window is rejected from its header, before any body is read.
//   A send window pushed past 2^32 - 1 is a protocol error.
// - Frames (other than SYN) for unknown or already closed streams are ignored, Data bodies
//   skipped: they may be in flight from before our reset (rust-yamux's reasoning, paritytech/yamux
//   #110). A SYN for a stream id in use, a SYN with our parity, and Data / Window Update on stream
//   0 are protocol errors. RST wins over the other flags of a frame.
// - Inbound streams beyond max_inbound_streams, or arriving after either side's Go Away, are
//   refused with RST (js-libp2p-yamux, go-yamux); rust-yamux would end the session instead.
// - Data with a non-zero length after the peer's FIN resets that stream (RST both ways) rather
//   than failing the session.
// - Pings: every ping without ACK is answered with ACK and the same value, whatever its stream
//   id. ACKs that match none of our outstanding pings are ignored.
// - Go Away received: new streams are refused from then on, existing streams carry on (go-yamux);
//   the caller decides when to drop the connection. A second Go Away is ignored.
// - A protocol error fails the session: Go Away (1) is queued, then the events SessionError,
//   Reset and StreamClosed for every live stream; feed() and stream calls fail from then on.
//
// Stream event order: InboundStream first (inbound streams only), then Data / Fin / Reset /
// Writable as they happen, StreamClosed always last. Data, Fin and Writable events still queued
// when a stream is reset (either way, or by a session failure) are dropped. A stream counts against its limit, and its
// id stays known, until its StreamClosed event has been polled; that keeps the event queue
// bounded by the stream limits even when the peer churns streams.
//
// Memory bounds: per stream at most receive_window bytes are buffered (delivered data counts
// until consume()d, so the peer cannot send more); the event queue holds at most six events per
// stream plus max_pending_pings + 2; the output buffer: data is only accepted while it is below
// output_high_water, and control frames the peer provokes (pong, RST) past output_hard_limit fail
// the session (the peer keeps talking while we cannot send). The caller should stop reading from
// the connection while output_blocked().
#pragma once

#include "transport/yamux_frame.hpp"

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

enum class YamuxRole { Client, Server };  // client (dialer) opens odd stream ids, server even

struct YamuxConfig {
  // Per-stream receive window and therefore per-stream receive buffer cap. Raised to 256 KiB if
  // smaller: the peer assumes 256 KiB before any update and yamux cannot shrink a window.
  uint32_t receive_window = kYamuxInitialWindow;
  size_t max_inbound_streams = 512;
  size_t max_outbound_streams = 512;
  // Largest Data payload we send in one frame (at least 1). Smaller frames interleave streams
  // more fairly; 16 KiB as rust-yamux.
  uint32_t max_frame_data = 16 * 1024;
  // write() accepts nothing while this much output is waiting to be taken.
  size_t output_high_water = 256 * 1024;
  // Peer-provoked control frames beyond this much untaken output fail the session. Raised to
  // output_high_water + 64 KiB if smaller.
  size_t output_hard_limit = 1024 * 1024;
  // Our pings awaiting an ACK; ping() fails beyond this.
  size_t max_pending_pings = 16;
};

enum class YamuxEventKind {
  InboundStream,  // the peer opened stream_id
  Data,           // data holds bytes received on stream_id; consume() them when processed
  Fin,            // the peer will send no more on stream_id
  Reset,          // stream_id was reset by the peer (or died with the session)
  Writable,       // stream_id can take data again after a short write()
  StreamClosed,   // last event of stream_id: both directions done or reset; its id is forgotten
  PingAck,        // value: the opaque value of one of our pings
  GoAway,         // value: the peer's Go Away code; no new streams from here on
  SessionError,   // message: why the session failed; nothing works any more
};

struct YamuxEvent {
  YamuxEventKind kind = YamuxEventKind::Data;
  uint32_t stream_id = 0;
  uint32_t value = 0;
  Bytes data;
  std::string message;
};

class YamuxSession {
 public:
  using StreamId = uint32_t;

  explicit YamuxSession(YamuxRole role, YamuxConfig config = {});

  // Processes received bytes, in any chunking. Fails on a protocol error (after queueing Go Away
  // and the failure events) and stays failed.
  Status feed(BytesView data);

  // Bytes to send, in order: all of them, or at most `max`.
  Bytes take_output();
  Bytes take_output(size_t max);
  size_t output_size() const { return output_.size() - output_head_; }
  bool output_blocked() const { return output_size() >= config_.output_high_water; }

  // Opens an outbound stream (sends its SYN). Fails past max_outbound_streams, after either side
  // sent Go Away, when stream ids are exhausted, or once the session has failed.
  Result<StreamId> open_stream();
  // Queues as much of `data` as the peer's window and the output high-water mark allow and
  // returns that count (possibly 0). After a short write a Writable event tells when to retry.
  // Fails for unknown, reset or write-shut streams.
  Result<size_t> write(StreamId id, BytesView data);
  // Half-close: sends FIN. Repeating it is a no-op.
  Status shutdown_write(StreamId id);
  // Sends RST and abandons both directions; a StreamClosed event follows. No-op on a stream that
  // is already closed.
  Status reset(StreamId id);
  // The reader has processed n more bytes of stream `id`; may send a Window Update. Unknown or
  // closed streams are ignored (their data raced with the close).
  void consume(StreamId id, size_t n);

  // Sends a ping; returns its opaque value, reported back by a PingAck event.
  Result<uint32_t> ping();
  // Sends Go Away once (later calls do nothing): no new streams either way afterwards.
  void go_away(YamuxGoAwayCode code = YamuxGoAwayCode::Normal);

  std::optional<YamuxEvent> poll_event();

  // ---- Introspection (tests, fuzzing, diagnostics) ----
  YamuxRole role() const { return role_; }
  bool failed() const { return failed_; }
  bool local_go_away() const { return local_go_away_; }
  bool remote_go_away() const { return remote_go_away_; }
  // Streams not yet forgotten (including closed ones whose StreamClosed is still queued).
  size_t stream_count() const { return streams_.size(); }
  size_t pending_events() const { return events_.size(); }
  // Received bytes not yet handed out in Data events, over all streams.
  size_t buffered_bytes() const;
  // Send window (how much the peer lets us send) and receive window (how much we let the peer
  // send) of a live stream.
  std::optional<uint32_t> send_window(StreamId id) const;
  std::optional<uint32_t> receive_window(StreamId id) const;
  const YamuxConfig& config() const { return config_; }

 private:
  struct Stream {
    bool inbound = false;
    bool ack_pending = false;      // inbound: our ACK has not been sent yet
    bool send_closed = false;      // we sent FIN
    bool recv_closed = false;      // the peer sent FIN
    bool reset = false;            // RST either way: nothing more is delivered
    bool closed = false;           // StreamClosed queued; frames for it are ignored
    bool data_queued = false;      // a Data event for rx is in the queue
    bool want_writable = false;    // a write() came up short
    bool writable_queued = false;  // a Writable event is in the queue
    bool waiting_output = false;   // listed in writers_waiting_
    uint32_t send_window = kYamuxInitialWindow;
    // recv_window + unconsumed + to_return == config_.receive_window, always.
    uint32_t recv_window = 0;  // what the peer may still send
    uint32_t unconsumed = 0;   // received, not yet consume()d
    uint32_t to_return = 0;    // consumed, not yet returned by a Window Update
    Bytes rx;                  // received, not yet handed out in a Data event
  };

  Stream* find(StreamId id);  // including closed streams not yet forgotten
  Stream* live(StreamId id);  // not closed
  const Stream* live(StreamId id) const;
  bool is_inbound_id(StreamId id) const;

  Status on_header(const YamuxHeader& h);
  Status on_stream_frame(const YamuxHeader& h);
  void on_body(BytesView chunk);
  void end_data_frame();

  Error fail(YamuxGoAwayCode code, std::string message);
  void push(YamuxEventKind kind, StreamId id = 0, uint32_t value = 0);
  void send_control(YamuxType type, uint16_t flags, StreamId id, uint32_t length);
  // ACK flag for the next frame of `s` (sending a separate Window Update when the ACK must also
  // announce a larger window); 0 once acknowledged.
  uint16_t take_ack(StreamId id, Stream& s);
  void reset_by_peer(StreamId id, Stream& s);
  void on_fin(StreamId id, Stream& s);
  void maybe_close(StreamId id, Stream& s);
  void maybe_writable(StreamId id, Stream& s);
  void wake_writers();

  YamuxRole role_;
  YamuxConfig config_;
  std::map<StreamId, Stream> streams_;  // ordered: deterministic event order on failure
  size_t inbound_count_ = 0;
  size_t outbound_count_ = 0;
  uint64_t next_id_;  // wider than StreamId to notice exhaustion
  std::deque<YamuxEvent> events_;
  std::vector<StreamId> writers_waiting_;  // streams whose write() was cut by the output cap
  // Untaken output is output_[output_head_..]: a partial take_output() advances the head instead
  // of erasing from the front (a caller taking small pieces of a large buffer would otherwise
  // move the whole remainder every time); the taken prefix is dropped once it is half the buffer.
  Bytes output_;
  size_t output_head_ = 0;

  // Frame parsing: a header is gathered byte by byte, a Data body is passed through in chunks.
  uint8_t header_[kYamuxHeaderLen] = {};
  size_t header_have_ = 0;
  uint32_t body_left_ = 0;
  bool in_body_ = false;
  StreamId body_stream_ = 0;  // 0: skip the body
  bool body_fin_ = false;

  std::vector<uint32_t> pings_out_;
  uint32_t next_ping_ = 1;
  bool local_go_away_ = false;
  bool remote_go_away_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace punchgate
