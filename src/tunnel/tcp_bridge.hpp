// Copies bytes between a local byte channel (a connected TCP socket, or stdin/stdout) and a
// stream, both ways, with backpressure:
// a full stream stops TCP reads; stream bytes count as consumed (reopening the peer's window)
// only once the TCP write completed. EOF on one side half-closes only that direction; an error or
// reset on one side resets the other.
#pragma once

#include "punchgate/core/uv_handle.hpp"
#include "punchgate/transport/connection.hpp"

#include <functional>
#include <memory>
#include <string>

namespace punchgate {

// The local side of a bridge: where bytes are read from and written to (one handle for a TCP
// socket, two for stdin/stdout).
class LocalEnd {
 public:
  virtual ~LocalEnd() = default;
  virtual uv_stream_t* reader() = 0;
  virtual uv_stream_t* writer() = 0;
  virtual void close() = 0;
  virtual void close_reset() = 0;  // abort: RST for TCP
};

class TcpLocalEnd final : public LocalEnd {
 public:
  explicit TcpLocalEnd(UvHandle<uv_tcp_t> tcp) : tcp_(std::move(tcp)) { uv_tcp_nodelay(tcp_.get(), 1); }
  uv_stream_t* reader() override { return reinterpret_cast<uv_stream_t*>(tcp_.get()); }
  uv_stream_t* writer() override { return reinterpret_cast<uv_stream_t*>(tcp_.get()); }
  void close() override { tcp_.close(); }
  void close_reset() override { tcp_.close_reset(); }

 private:
  UvHandle<uv_tcp_t> tcp_;
};

struct BridgeStats {
  uint64_t bytes_to_stream = 0;    // read from TCP, written to the stream
  uint64_t bytes_from_stream = 0;  // read from the stream, written to TCP
};

class TcpBridge : public std::enable_shared_from_this<TcpBridge> {
 public:
  // Called once when both directions are finished or either side failed.
  using DoneFn = std::function<void(const BridgeStats&, const std::string& reason)>;

  // `initial` is stream data that arrived with the negotiation and goes to the local side first.
  static std::shared_ptr<TcpBridge> start(std::unique_ptr<LocalEnd> local, StreamPtr stream, Bytes initial,
                                          DoneFn done);
  static std::shared_ptr<TcpBridge> start(UvHandle<uv_tcp_t> tcp, StreamPtr stream, Bytes initial, DoneFn done) {
    return start(std::make_unique<TcpLocalEnd>(std::move(tcp)), std::move(stream), std::move(initial),
                 std::move(done));
  }
  TcpBridge(std::unique_ptr<LocalEnd> local, StreamPtr stream, DoneFn done);  // use start()

  // Aborts both sides (e.g. on shutdown).
  void abort(const std::string& reason);
  bool finished() const { return finished_; }
  const BridgeStats& stats() const { return stats_; }

 private:
  struct WriteReq;
  struct ShutdownReq;
  void begin(Bytes initial);
  void start_reading();
  void on_tcp_read(ssize_t n, const uv_buf_t* buf);
  void flush_pending_to_stream();
  void on_stream_data(BytesView d);
  void on_stream_fin();
  void on_stream_reset(uint64_t code);
  void write_local(BytesView d, bool consume);
  void on_write_done(size_t n, int status, bool consume);
  void maybe_finish();
  void finish(const std::string& reason);

  std::unique_ptr<LocalEnd> local_;
  StreamPtr stream_;
  DoneFn done_;
  std::shared_ptr<TcpBridge> self_;  // alive while either side is open
  BridgeStats stats_;
  Bytes pending_;                    // read from TCP, not yet taken by the stream
  size_t writes_in_flight_ = 0;
  bool reading_ = false;
  bool tcp_eof_ = false;         // TCP peer finished sending
  bool stream_fin_sent_ = false;
  bool stream_fin_ = false;      // stream peer finished sending
  bool tcp_shutdown_ = false;    // our TCP write side is shut down
  bool stream_closed_ = false;
  bool finished_ = false;
};

}  // namespace punchgate
