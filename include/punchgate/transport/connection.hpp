// The seam between transports and everything above: a secured, multiplexed connection to one
// authenticated peer, carrying bidirectional byte streams. Direct QUIC connections and (later)
// relayed Noise+yamux connections both implement it.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace punchgate {

// A bidirectional byte stream with bounded buffers.
//
// Reading: on_data delivers bytes in order. By default they count as consumed when the callback
// returns; with set_manual_consume(true) the reader calls consume(n) once it has passed n bytes
// on, and the peer's flow-control window only reopens then (that is the backpressure path).
// Writing: write() accepts at most write_capacity() bytes and returns how many it took; when it
// took fewer, on_writable fires once room frees up.
class Stream {
 public:
  struct Handlers {
    std::function<void(BytesView)> on_data;
    std::function<void()> on_fin;                    // the peer finished sending
    std::function<void(uint64_t code)> on_reset;     // aborted (peer reset, stop-sending, conn lost)
    std::function<void()> on_writable;               // room again after a short write()
    std::function<void()> on_closed;                 // both directions finished; last event
  };

  virtual ~Stream() = default;
  virtual int64_t id() const = 0;
  virtual void set_handlers(Handlers h) = 0;
  virtual size_t write(BytesView data) = 0;
  virtual size_t write_capacity() const = 0;
  virtual void shutdown_write() = 0;  // FIN after everything written so far
  virtual void reset(uint64_t code) = 0;
  virtual void set_manual_consume(bool manual) = 0;
  virtual void consume(size_t n) = 0;
  virtual bool is_closed() const = 0;
};

using StreamPtr = std::shared_ptr<Stream>;

enum class Endpoint { Dialer, Listener };
inline const char* to_string(Endpoint e) { return e == Endpoint::Dialer ? "dialer" : "listener"; }

class Connection {
 public:
  struct Handlers {
    std::function<void(StreamPtr)> on_stream;              // inbound stream opened by the peer
    std::function<void(const std::string& reason)> on_closed;
  };

  virtual ~Connection() = default;
  virtual const PeerId& remote_peer() const = 0;
  virtual const Multiaddr& remote_addr() const = 0;
  virtual const Multiaddr& local_addr() const = 0;
  virtual Endpoint endpoint() const = 0;
  virtual void set_handlers(Handlers h) = 0;
  virtual Result<StreamPtr> open_stream() = 0;
  virtual void close(const std::string& reason) = 0;
  virtual bool is_closed() const = 0;
  virtual uint64_t id() const = 0;  // process-unique, for logs and maps
  // Carried through a relay (Noise + yamux over a circuit) rather than a direct QUIC path.
  virtual bool is_relayed() const { return false; }
  // Streams currently open on it (an idle connection can be closed without losing data).
  virtual size_t stream_count() const = 0;
};

// Process-unique connection ids, shared by every transport.
inline uint64_t next_connection_serial() {
  static uint64_t next = 1;
  return next++;
}

using ConnectionPtr = std::shared_ptr<Connection>;

}  // namespace punchgate
