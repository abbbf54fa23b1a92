// The relay's side of circuit relay v2: serves /libp2p/circuit/relay/0.2.0/hop on the host. The
// decisions are HopServer's; this file reads and writes the messages, opens STOP streams to
// destinations and runs a CircuitSplice per circuit.
#pragma once

#include "punchgate/host/host.hpp"
#include "relay/circuit_splice.hpp"
#include "relay/hop_server.hpp"

#include <map>
#include <memory>

namespace punchgate {

class Timer;

class RelayService {
 public:
  // Serves from the start unless `serving` is false.
  RelayService(Host& host, RelayLimits limits, bool serving = true);
  ~RelayService();

  // Starts or stops serving /hop (announced in identify, pushed to connected peers). Stopping
  // refuses new reservations and circuits; held reservations and open circuits run to their end.
  void set_serving(bool on);
  bool serving() const { return serving_; }

  size_t reservation_count() const { return server_.reservation_count(); }
  size_t circuit_count() const { return server_.circuit_count(); }
  // Resets every circuit (shutdown).
  void stop();

 private:
  void on_hop(NegotiatedStream ns);
  void on_reserve(const ConnectionPtr& conn, const StreamPtr& stream);
  void on_connect(const ConnectionPtr& conn, const StreamPtr& stream, const HopMessage& msg, Bytes rest);
  void open_stop(HopConnectAdmission admission, StreamPtr src_stream, Bytes src_rest);
  void refuse_circuit(uint64_t circuit_id, const StreamPtr& src_stream, CircuitStatus status, const std::string& why);
  void start_splice(const HopConnectAdmission& a, StreamPtr src, Bytes src_rest, StreamPtr dst, Bytes dst_rest);
  // The relay's addresses for reservations: where it listens, as others reach it.
  std::vector<Multiaddr> public_addrs() const;

  Host& host_;
  bool serving_ = false;
  HopServer server_;
  std::map<uint64_t, std::shared_ptr<CircuitSplice>> circuits_;
  std::unique_ptr<Timer> expiry_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Unix time in seconds (reservation expiry is in wall-clock time on the wire).
uint64_t unix_now();
// Writes a framed message and finishes our side of the stream.
void send_and_finish(const StreamPtr& stream, const Bytes& framed);

}  // namespace punchgate
