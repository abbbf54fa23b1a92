// KadService: runs the Kademlia state machine on the host. It serves /punchgate/kad/1.0.0,
// feeds peers that speak kad (per identify) into the routing table, carries the core's requests
// over streams (dialing peers when needed), and arms one timer for the core's deadlines.
#pragma once

#include "punchgate/kad/kademlia.hpp"
#include "punchgate/transport/connection.hpp"

#include <uv.h>

#include <functional>
#include <map>
#include <memory>

namespace punchgate {

class Host;
class Timer;
struct NegotiatedStream;

class KadService {
 public:
  using QueryCallback = std::function<void(const KadQueryResult&)>;

  KadService(Host& host, KadConfig config);
  ~KadService();
  KadService(const KadService&) = delete;
  KadService& operator=(const KadService&) = delete;

  Kademlia& core() { return kad_; }
  size_t routing_table_size() const { return kad_.routing_table().size(); }

  // Each runs one query; the callback gets its result once (never if the service is destroyed).
  void bootstrap(QueryCallback cb);
  void find_node(const PeerId& peer, QueryCallback cb);
  void get_providers(Bytes key, QueryCallback cb);
  void get_value(Bytes key, QueryCallback cb);
  void put_value(Bytes key, Bytes value, QueryCallback cb);
  // Announces us as provider of `key` and again every 5 minutes; before we have joined the DHT
  // (no peer in the routing table) the first announcement waits for the join. cb gets the first
  // round's result.
  void provide(Bytes key, QueryCallback cb);
  // Stops re-announcing `key` (records already placed expire with their TTL).
  void stop_providing(const Bytes& key);
  // Called after each join: the first peer entered an empty routing table, and the lookup of our
  // own id that follows has finished (`peers` = routing table size then).
  void add_join_observer(std::function<void(size_t peers)> obs) { join_observers_.push_back(std::move(obs)); }
  bool joined() const { return joined_; }
  // Runs `cb` once we have joined, or after `max_wait_ms` if we have not by then: a lookup
  // started at process start would otherwise find an empty routing table and give up.
  void after_join(std::function<void()> cb, uint64_t max_wait_ms = 10'000);
  // Stops timers and outstanding requests; the loop can then finish.
  void stop();

 private:
  struct Outbound;
  uint64_t now_ms() const;
  void track(KadQueryId id, QueryCallback cb);
  void pump();
  void send(OutboundRequest req);
  void send_on(const ConnectionPtr& conn, std::shared_ptr<Outbound> out);
  void dial_next(std::shared_ptr<Outbound> out, std::vector<Multiaddr> addrs, size_t index);
  void serve(NegotiatedStream ns);
  void update_self_addrs();
  void join();

  Host& host_;
  Kademlia kad_;
  std::unique_ptr<Timer> timer_;
  std::map<KadQueryId, QueryCallback> callbacks_;
  std::shared_ptr<bool> alive_;  // callbacks from host/streams check it: the service may be gone
  std::vector<std::function<void(size_t)>> join_observers_;
  std::vector<std::pair<Bytes, QueryCallback>> pending_provides_;
  struct JoinWaiter {
    std::function<void()> cb;
    std::unique_ptr<Timer> timer;
  };
  std::map<uint64_t, JoinWaiter> join_waiters_;
  uint64_t next_waiter_ = 0;
  bool joining_ = false;
  bool joined_ = false;
  bool stopped_ = false;
  bool pumping_ = false;
};

}  // namespace punchgate
