// Kademlia as a pure state machine: routing table, iterative queries and the record/provider
// stores, fed requests, responses, failures and time; it returns messages to send. No sockets,
// no clock of its own: the executor (KadService) and the simulation in tests drive it alike.
//
// Usage by an executor:
//   - inbound request  -> handle_request() -> write the response (if any) back on that stream
//   - start_*() a query, then repeatedly take poll() -> send each OutboundRequest, and report the
//     outcome with on_response()/on_failure(); finished queries come out of take_results()
//   - call tick(now) at least every next_tick_ms(): request timeouts, bucket refresh,
//     republish/re-announce and store expiry happen there (each may add outbound requests)
#pragma once

#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/kad/kad_key.hpp"
#include "punchgate/kad/kad_message.hpp"
#include "punchgate/kad/kad_store.hpp"
#include "punchgate/kad/routing_table.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace punchgate {

class KadQuery;

struct KadConfig {
  size_t k = 20;
  size_t alpha = 3;
  uint64_t request_timeout_ms = 10'000;
  uint64_t query_timeout_ms = 60'000;      // a whole query gives up after this
  uint64_t bucket_refresh_ms = 10 * 60'000;
  uint64_t record_ttl_ms = 15 * 60'000;
  uint64_t record_republish_ms = 5 * 60'000;
  uint64_t provider_ttl_ms = 15 * 60'000;
  uint64_t provider_reannounce_ms = 5 * 60'000;
  size_t quorum = 1;  // GET_VALUE finishes after this many records were found
  size_t providers_wanted = 20;  // GET_PROVIDERS finishes once it has this many
  KadStoreLimits store_limits;
  bool server = true;  // false: we ask, never answer (DHT client mode)
};

using KadQueryId = uint64_t;

enum class KadQueryKind { FindNode, GetProviders, GetValue, PutValue, AddProvider, Bootstrap, Ping };
const char* to_string(KadQueryKind k);

struct OutboundRequest {
  KadQueryId query = 0;
  KadPeerInfo peer;     // whom to send to, with the addresses we know for it
  KadMessage message;
  bool expects_response = true;  // ADD_PROVIDER has none: report on_response() with an empty PING
};

struct KadQueryResult {
  KadQueryId id = 0;
  KadQueryKind kind = KadQueryKind::FindNode;
  Bytes key;
  std::vector<KadPeerInfo> closest;   // k closest peers that answered, nearest first
  std::vector<KadPeerInfo> providers; // GET_PROVIDERS: distinct providers found (local store first)
  std::vector<KadRecord> records;     // GET_VALUE
  std::optional<KadPeerInfo> peer;    // FIND_NODE: the target peer, when some peer told us of it
  size_t succeeded = 0;               // PUT_VALUE / ADD_PROVIDER: peers that took it
  size_t requests = 0;                // requests sent in the whole query
  size_t rounds = 0;                  // longest chain of request/response steps it needed
  bool timed_out = false;
};

class Kademlia {
 public:
  Kademlia(PeerId self, KadConfig config, uint64_t now_ms, uint64_t seed = 0);
  ~Kademlia();
  Kademlia(const Kademlia&) = delete;
  Kademlia& operator=(const Kademlia&) = delete;

  const PeerId& self() const { return self_; }
  const KadConfig& config() const { return config_; }
  RoutingTable& routing_table() { return table_; }
  const RoutingTable& routing_table() const { return table_; }
  KadStore& store() { return store_; }
  // Our own addresses, put in provider records we publish.
  void set_self_addrs(std::vector<Multiaddr> addrs) { self_addrs_ = std::move(addrs); }

  // A peer that speaks kad was seen (identify said so, or it answered us): try to put it into
  // the routing table. A full bucket may ping its least-recently-seen entry (an OutboundRequest).
  void on_peer_seen(const KadPeerInfo& peer, uint64_t now_ms);
  // The peer became unreachable (connection failed, requests time out): drop it from the table.
  void on_peer_unreachable(const PeerId& peer);

  // Answers one inbound request from `from` (with the addresses we know it by). nullopt: no
  // response is due (ADD_PROVIDER). An invalid request is an error: the executor resets the stream.
  // Requests do not put the sender into the routing table: client-mode peers ask too.
  Result<std::optional<KadMessage>> handle_request(const KadPeerInfo& from, const KadMessage& request, uint64_t now_ms);

  // Queries. The key is the raw key bytes (for FindNode: a peer id's bytes).
  KadQueryId find_node(BytesView target, uint64_t now_ms);
  KadQueryId get_providers(BytesView key, uint64_t now_ms);
  KadQueryId get_value(BytesView key, uint64_t now_ms);
  // Stores locally, then puts on the k closest peers (found by a lookup first).
  KadQueryId put_value(BytesView key, Bytes value, uint64_t now_ms);
  // Records us as a provider locally and announces to the k closest peers; with `republish` the
  // key is re-announced every provider_reannounce_ms until stop_providing().
  KadQueryId provide(BytesView key, uint64_t now_ms, bool republish = true);
  void stop_providing(BytesView key);
  // Lookup of our own id (joins the network); done at start and by the executor after bootstrap.
  KadQueryId bootstrap(uint64_t now_ms);
  void cancel(KadQueryId id);

  // Requests to send now (in query order). Each must be answered with on_response/on_failure.
  std::vector<OutboundRequest> poll();
  void on_response(KadQueryId query, const PeerId& from, const KadMessage& response, uint64_t now_ms);
  void on_failure(KadQueryId query, const PeerId& from, uint64_t now_ms);
  std::vector<KadQueryResult> take_results();

  void tick(uint64_t now_ms);
  // Milliseconds until tick() has work (a request timeout, a refresh, a republish, an expiry).
  uint64_t next_tick_ms(uint64_t now_ms) const;
  size_t active_queries() const { return queries_.size(); }

 private:
  KadQueryId start_query(KadQueryKind kind, Bytes key, uint64_t now_ms, Bytes value = {});
  // Queues the next requests of `q` and finishes it when it is done; false when it finished.
  bool drive(KadQuery& q, uint64_t now_ms);
  void finish(KadQuery& q);
  void send_direct(KadQuery& q, const std::vector<KadPeerInfo>& targets, uint64_t now_ms);
  KadMessage request_for(const KadQuery& q) const;
  std::vector<KadPeerInfo> parse_peers(const std::vector<KadPeer>& peers) const;
  KadPeer to_wire(const KadPeerInfo& p) const;
  uint64_t next_random();

  PeerId self_;
  KadKey self_key_;
  KadConfig config_;
  RoutingTable table_;
  KadStore store_;
  std::vector<Multiaddr> self_addrs_;
  uint64_t rng_state_;
  KadQueryId next_query_ = 1;
  std::map<KadQueryId, std::unique_ptr<KadQuery>> queries_;
  std::deque<OutboundRequest> outbox_;
  std::vector<KadQueryResult> results_;
  std::map<Bytes, uint64_t> providing_;  // key -> next re-announce
  struct Published {
    Bytes value;
    uint64_t next_ms;
  };
  std::map<Bytes, Published> published_;  // our own PUT_VALUE keys -> value, next republish
  uint64_t next_refresh_ms_;
};

}  // namespace punchgate
