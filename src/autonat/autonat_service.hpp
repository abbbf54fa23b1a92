// AutoNAT v1 (/libp2p/autonat/1.0.0) on the node: the glue between the host's streams and the
// sans-IO server (autonat_server) and client (autonat_client) cores.
//
// Server: reads one DIAL per stream, lets AutonatServer judge it, dials the admitted addresses
// back with Host::dial_detached (a fresh socket each, so the dial is a new flow through the
// requester's NAT or firewall rather than our existing connection's mapping), answers with the
// first address that connected or E_DIAL_ERROR, and closes the dial-back connection at once.
//
// Client: some seconds after start, then every retry/refresh interval (sooner when a new server
// appears while we are unsure), asks up to servers_per_round directly connected peers that
// announce the protocol in identify to dial our candidate addresses back, feeds the answers to
// the ReachabilityTracker and logs `autonat reachability=public|private|unknown addr=…` on every
// change. Candidates: the addresses this server observed us at, observed addresses confirmed by
// two or more peers, and our advertised direct addresses (gateway-mapped, then listen).
#pragma once

#include "autonat/autonat_client.hpp"
#include "autonat/autonat_server.hpp"
#include "punchgate/host/host.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace punchgate {

class Timer;

struct AutonatConfig {
  bool server = true;  // answer other peers' requests (and announce the protocol)
  bool client = true;  // find out our own reachability
  AutonatServerConfig server_limits;
  ProbeScheduleConfig schedule;
  ReachabilityConfig reachability;
  uint64_t dial_back_timeout_ms = 10'000;  // server: give up dialing back (the QUIC handshake timeout too)
  uint64_t request_timeout_ms = 30'000;    // client: wait this long for an answer
  uint64_t read_timeout_ms = 10'000;       // server: wait this long for the request
};

class AutonatService {
 public:
  using ChangeFn = std::function<void(Reachability, const std::optional<Multiaddr>& public_addr)>;

  AutonatService(Host& host, AutonatConfig config);
  ~AutonatService();
  AutonatService(const AutonatService&) = delete;
  AutonatService& operator=(const AutonatService&) = delete;

  Reachability reachability() const { return tracker_.reachability(); }
  const std::optional<Multiaddr>& public_addr() const { return tracker_.public_addr(); }
  int confidence() const { return tracker_.confidence(); }
  bool serving() const { return config_.server; }
  // Called after every change of reachability() or public_addr().
  void add_change_observer(ChangeFn fn) { observers_.push_back(std::move(fn)); }
  // The addresses a request to `server` lists (see above).
  std::vector<Multiaddr> candidate_addrs(const PeerId& server) const;

 private:
  struct DialBack;
  void serve(NegotiatedStream ns);
  void on_request(const ConnectionPtr& conn, const StreamPtr& stream, Bytes message);
  void on_dial_result(uint64_t job, const Multiaddr& addr, Result<ConnectionPtr> r);
  void answer(uint64_t job, const AutonatMessage& reply);
  void drop_job(uint64_t job);

  void schedule_round(uint64_t delay_ms);
  void run_round();
  void on_server_identified(const PeerId& peer);
  std::vector<PeerId> eligible_servers() const;
  void probe(const PeerId& server);
  void on_answer(const PeerId& server, const std::vector<Multiaddr>& asked, Result<Bytes> message);

  Host& host_;
  AutonatConfig config_;
  AutonatServer server_;
  std::map<uint64_t, std::unique_ptr<DialBack>> jobs_;
  ReachabilityTracker tracker_;
  ProbeScheduler scheduler_;
  std::unique_ptr<Timer> round_timer_;
  uint64_t next_round_at_ = 0;  // uv_now() of the scheduled round; 0: none scheduled
  std::vector<ChangeFn> observers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
