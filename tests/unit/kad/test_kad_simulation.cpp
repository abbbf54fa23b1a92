// A deterministic simulated network of Kademlia state machines: no sockets, a fake clock, and a
// delivery loop that plays the executor's part (KadService). Checks that lookups find the true k
// closest peers, that providers and records published by one node are found from the others, and
// that all of this survives losing a tenth of the network.
//
// PUNCHGATE_TEST_SCALE (float in (0, 1], default 1) shrinks the network for slow (sanitizer)
// builds; the plain run is 1,000 nodes.
#include "punchgate/kad/kademlia.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>

using namespace punchgate;

namespace {

double test_scale() {
  const char* raw = std::getenv("PUNCHGATE_TEST_SCALE");
  if (raw == nullptr || *raw == '\0') return 1.0;
  char* end = nullptr;
  const double v = std::strtod(raw, &end);
  if (end == raw || !(v > 0.0)) return 1.0;
  return std::min(v, 1.0);
}

size_t scaled(size_t n, double scale, size_t floor) {
  return std::max(floor, static_cast<size_t>(static_cast<double>(n) * scale));
}

PeerId random_peer(std::mt19937_64& rng) {
  PublicKey pk{KeyType::Ed25519, Bytes(32, '\0')};
  for (auto& c : pk.data) c = static_cast<char>(rng());
  return pk.peer_id();
}

Bytes random_key(std::mt19937_64& rng, size_t n = 32) {
  Bytes b(n, '\0');
  for (auto& c : b) c = static_cast<char>(rng());
  return b;
}

class Network {
 public:
  explicit Network(KadConfig config) : config_(config) {}

  size_t add_node(std::mt19937_64& rng) {
    const size_t i = nodes_.size();
    PeerId id = random_peer(rng);
    auto a = Multiaddr::parse(fmt::format("/ip4/10.{}.{}.1/udp/4001/quic-v1", (i >> 8) & 0xff, i & 0xff));
    EXPECT_TRUE(a.ok());
    Node n;
    n.info = KadPeerInfo{id, {*a}};
    n.kad = std::make_unique<Kademlia>(id, config_, now_, /*seed=*/i + 1);
    n.kad->set_self_addrs(n.info.addrs);
    index_.emplace(id, i);
    nodes_.push_back(std::move(n));
    dirty_flag_.push_back(false);
    return i;
  }

  // Dials the bootstrap peers (identify makes each side see the other), then looks up itself.
  KadQueryResult join(size_t i, const std::vector<size_t>& bootstrap) {
    for (size_t b : bootstrap) connect(i, b);
    return await(i, kad(i).bootstrap(now_));
  }

  void remove(size_t i) { nodes_[i].alive = false; }
  // Requests to removed nodes vanish instead of failing at once (a peer that went away without
  // closing: only the request timeout, driven by tick(), notices).
  void set_silent_dead(bool silent) { silent_dead_ = silent; }
  bool alive(size_t i) const { return nodes_[i].alive; }
  size_t size() const { return nodes_.size(); }
  Kademlia& kad(size_t i) {
    mark_dirty(i);  // whatever the caller does may queue requests
    return *nodes_[i].kad;
  }
  const KadPeerInfo& info(size_t i) const { return nodes_[i].info; }
  uint64_t now() const { return now_; }
  size_t delivered() const { return delivered_; }
  size_t failed() const { return failed_; }
  size_t rejected() const { return rejected_; }

  // Delivers requests until no node has anything left to send. Each pass is one network step of
  // 10 ms: every queued request is answered (or fails) before the next pass polls again.
  void run() {
    while (!dirty_.empty()) {
      std::vector<size_t> batch = std::move(dirty_);
      dirty_.clear();
      std::vector<std::pair<size_t, OutboundRequest>> requests;
      for (size_t i : batch) {
        dirty_flag_[i] = false;
        for (auto& r : nodes_[i].kad->poll()) {
          if (nodes_[i].alive) requests.emplace_back(i, std::move(r));
        }
      }
      for (auto& [from, r] : requests) deliver(from, r);
      now_ += 10;
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (auto& r : nodes_[i].kad->take_results()) results_[i].emplace(r.id, std::move(r));
    }
  }

  // Moves the clock to `t`, calling tick() on every live node whenever its next_tick_ms() says
  // it has work, and delivering what that produces.
  void advance_to(uint64_t t) {
    run();
    while (true) {
      uint64_t next = UINT64_MAX;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].alive) next = std::min(next, now_ + nodes_[i].kad->next_tick_ms(now_));
      }
      if (next > t) break;
      tick_due(next);
    }
    now_ = std::max(now_, t);
  }

  // Lets time pass until no live node has a query in progress (requests to silent nodes time out).
  void settle() {
    run();
    while (true) {
      uint64_t next = UINT64_MAX;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].alive && nodes_[i].kad->active_queries() > 0) {
          next = std::min(next, now_ + nodes_[i].kad->next_tick_ms(now_));
        }
      }
      if (next == UINT64_MAX) return;
      tick_due(next);
    }
  }

  size_t nodes_with_active_queries() const {
    size_t n = 0;
    for (const auto& node : nodes_) n += (node.alive && node.kad->active_queries() > 0) ? 1 : 0;
    return n;
  }

  // Runs the network until query `id` of node `i` finished, and returns its result.
  KadQueryResult await(size_t i, KadQueryId id) {
    if (silent_dead_) settle();
    run();
    auto& mine = results_[i];
    auto it = mine.find(id);
    if (it == mine.end()) {
      ADD_FAILURE() << "query " << id << " of node " << i << " did not finish";
      return {};
    }
    KadQueryResult r = std::move(it->second);
    mine.erase(it);
    return r;
  }

  // The n live nodes closest to `target`, excluding `except` (a querying node never lists itself).
  std::vector<PeerId> true_closest(const KadKey& target, size_t n, size_t except) const {
    std::vector<std::pair<KadKey, size_t>> all;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (i != except && nodes_[i].alive) all.emplace_back(keys_of(i).distance(target), i);
    }
    const size_t take = std::min(n, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(take), all.end());
    std::vector<PeerId> out;
    for (size_t j = 0; j < take; ++j) out.push_back(nodes_[all[j].second].info.id);
    return out;
  }

 private:
  struct Node {
    KadPeerInfo info;
    std::unique_ptr<Kademlia> kad;
    bool alive = true;
  };

  // Ticks every live node that has work at time `t` (>= now), then delivers. A node that still
  // claims work at the same instant after its tick would spin forever: that is a failure.
  void tick_due(uint64_t t) {
    if (t == now_) {
      if (++same_instant_ticks_ > 100) {
        ADD_FAILURE() << "tick() at " << now_ << " leaves work due at the same instant";
        t = now_ + 1;
        same_instant_ticks_ = 0;
      }
    } else {
      same_instant_ticks_ = 0;
    }
    now_ = std::max(now_, t);
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].alive && nodes_[i].kad->next_tick_ms(now_) == 0) kad(i).tick(now_);
    }
    run();
  }

  const KadKey& keys_of(size_t i) const {
    auto it = key_cache_.find(i);
    if (it == key_cache_.end()) it = key_cache_.emplace(i, KadKey::of_peer(nodes_[i].info.id)).first;
    return it->second;
  }

  void mark_dirty(size_t i) {
    if (dirty_flag_[i]) return;
    dirty_flag_[i] = true;
    dirty_.push_back(i);
  }

  // A new connection runs identify both ways; the executor then reports each side as a kad peer
  // (every simulated node is a DHT server).
  void connect(size_t a, size_t b) {
    if (!connections_.insert({std::min(a, b), std::max(a, b)}).second) return;
    kad(b).on_peer_seen(nodes_[a].info, now_);
    kad(a).on_peer_seen(nodes_[b].info, now_);
  }

  // What KadService does for one OutboundRequest, with the messages passed through the codec
  // so that what the state machine produces is also what the wire can carry.
  void deliver(size_t from, const OutboundRequest& r) {
    Kademlia& sender = kad(from);
    auto target = index_.find(r.peer.id);
    if (target == index_.end() || !nodes_[target->second].alive) {
      ++failed_;
      if (silent_dead_) return;  // the sender's request timeout reports it
      sender.on_failure(r.query, r.peer.id, now_);
      return;
    }
    const size_t to = target->second;
    connect(from, to);
    auto request = KadMessage::decode(r.message.encode());
    ASSERT_TRUE(request.ok()) << request.error().message;
    auto resp = kad(to).handle_request(nodes_[from].info, *request, now_);
    ++delivered_;
    if (!resp.ok()) {
      ++rejected_;
      sender.on_failure(r.query, r.peer.id, now_);
      return;
    }
    if (!r.expects_response) {
      // ADD_PROVIDER: nothing comes back; success is the request having been written.
      KadMessage ping;
      ping.type = KadMessageType::Ping;
      sender.on_response(r.query, r.peer.id, ping, now_);
      return;
    }
    if (!resp->has_value()) {
      sender.on_failure(r.query, r.peer.id, now_);
      return;
    }
    auto wire = KadMessage::decode((*resp)->encode());
    ASSERT_TRUE(wire.ok()) << wire.error().message;
    sender.on_response(r.query, r.peer.id, *wire, now_);
  }

  KadConfig config_;
  uint64_t now_ = 1'000'000;
  std::vector<Node> nodes_;
  std::unordered_map<PeerId, size_t> index_;
  std::set<std::pair<size_t, size_t>> connections_;
  std::vector<size_t> dirty_;
  std::vector<bool> dirty_flag_;
  std::map<size_t, std::map<KadQueryId, KadQueryResult>> results_;
  mutable std::map<size_t, KadKey> key_cache_;
  bool silent_dead_ = false;
  size_t same_instant_ticks_ = 0;
  size_t delivered_ = 0;
  size_t failed_ = 0;
  size_t rejected_ = 0;
};

struct LookupStats {
  double overlap_sum = 0;
  size_t lookups = 0;
  size_t rounds_sum = 0;
  size_t rounds_max = 0;
  size_t requests_sum = 0;
  size_t closest_missed = 0;

  void print(const char* what) const {
    std::printf("[ kad-sim ] %s: %zu lookups, mean overlap with true k closest %.3f, closest missed %zu, "
                "rounds mean %.2f max %zu, requests mean %.1f\n",
                what, lookups, lookups ? overlap_sum / static_cast<double>(lookups) : 0.0, closest_missed,
                lookups ? static_cast<double>(rounds_sum) / static_cast<double>(lookups) : 0.0, rounds_max,
                lookups ? static_cast<double>(requests_sum) / static_cast<double>(lookups) : 0.0);
  }
  double mean_overlap() const { return lookups ? overlap_sum / static_cast<double>(lookups) : 0.0; }
};

// Random live node.
size_t pick_live(Network& net, std::mt19937_64& rng) {
  while (true) {
    size_t i = rng() % net.size();
    if (net.alive(i)) return i;
  }
}

// find_node for random targets from random nodes; each result is compared with brute force.
LookupStats check_lookups(Network& net, std::mt19937_64& rng, size_t count, size_t k) {
  LookupStats s;
  for (size_t t = 0; t < count; ++t) {
    const size_t from = pick_live(net, rng);
    // Half the targets are ids of live nodes (finding a peer), half arbitrary keys.
    Bytes target = (t % 2 == 0) ? net.info(pick_live(net, rng)).id.bytes() : random_key(rng);
    KadQueryResult r = net.await(from, net.kad(from).find_node(target, net.now()));
    EXPECT_FALSE(r.timed_out);
    const auto truth = net.true_closest(KadKey::from_key(target), k, from);
    std::set<PeerId> got;
    for (const auto& p : r.closest) got.insert(p.id);
    EXPECT_LE(r.closest.size(), k);
    size_t hit = 0;
    for (const auto& p : truth) hit += got.count(p);
    s.overlap_sum += truth.empty() ? 1.0 : static_cast<double>(hit) / static_cast<double>(truth.size());
    if (!truth.empty() && !got.contains(truth[0])) ++s.closest_missed;
    // A lookup for a live peer's id returns that peer.
    if (t % 2 == 0) {
      auto id = PeerId::from_bytes(target);
      if (id && *id != net.info(from).id) {
        EXPECT_TRUE(r.peer.has_value() && r.peer->id == *id) << "lookup " << t << " did not find its target peer";
      }
    }
    // Results come nearest first.
    for (size_t j = 1; j < r.closest.size(); ++j) {
      EXPECT_LT(KadKey::of_peer(r.closest[j - 1].id).distance(KadKey::from_key(target)),
                KadKey::of_peer(r.closest[j].id).distance(KadKey::from_key(target)));
    }
    ++s.lookups;
    s.rounds_sum += r.rounds;
    s.rounds_max = std::max(s.rounds_max, r.rounds);
    s.requests_sum += r.requests;
  }
  return s;
}

// get_providers for `key` from every live node in `askers` (concurrently); counts the misses.
size_t count_provider_misses(Network& net, const std::vector<size_t>& askers, const Bytes& key,
                             const PeerId& provider) {
  std::vector<std::pair<size_t, KadQueryId>> queries;
  for (size_t i : askers) {
    if (net.alive(i)) queries.emplace_back(i, net.kad(i).get_providers(key, net.now()));
  }
  size_t misses = 0;
  for (auto [i, id] : queries) {
    KadQueryResult r = net.await(i, id);
    EXPECT_FALSE(r.timed_out);
    bool found = std::any_of(r.providers.begin(), r.providers.end(), [&](const KadPeerInfo& p) {
      return p.id == provider && !p.addrs.empty();
    });
    if (!found) ++misses;
  }
  return misses;
}

size_t count_value_misses(Network& net, const std::vector<size_t>& askers, const Bytes& key, const Bytes& value) {
  std::vector<std::pair<size_t, KadQueryId>> queries;
  for (size_t i : askers) {
    if (net.alive(i)) queries.emplace_back(i, net.kad(i).get_value(key, net.now()));
  }
  size_t misses = 0;
  for (auto [i, id] : queries) {
    KadQueryResult r = net.await(i, id);
    EXPECT_FALSE(r.timed_out);
    bool found = std::any_of(r.records.begin(), r.records.end(),
                             [&](const KadRecord& rec) { return rec.key == key && rec.value == value; });
    if (!found) ++misses;
  }
  return misses;
}

std::vector<size_t> sample(Network& net, std::mt19937_64& rng, size_t n, size_t except) {
  std::vector<size_t> all;
  for (size_t i = 0; i < net.size(); ++i) {
    if (i != except && net.alive(i)) all.push_back(i);
  }
  std::shuffle(all.begin(), all.end(), rng);
  if (all.size() > n) all.resize(n);
  return all;
}

}  // namespace

TEST(KadSimulation, ThousandNodes) {
  const double scale = test_scale();
  const size_t node_count = scaled(1000, scale, 100);
  const size_t lookups = scaled(200, scale, 50);
  const size_t askers = scaled(1000, scale, 100);  // every node at full scale
  KadConfig config;  // k = 20, alpha = 3
  const size_t k = config.k;

  std::mt19937_64 rng(20240601);
  Network net(config);

  // Join one by one, each through one to three earlier nodes.
  size_t join_rounds_max = 0;
  for (size_t n = 0; n < node_count; ++n) {
    const size_t i = net.add_node(rng);
    if (i == 0) continue;
    std::vector<size_t> boot;
    const size_t want = 1 + rng() % 3;
    for (size_t b = 0; b < want; ++b) boot.push_back(rng() % i);
    KadQueryResult r = net.join(i, boot);
    ASSERT_FALSE(r.closest.empty()) << "node " << i << " could not join";
    join_rounds_max = std::max(join_rounds_max, r.rounds);
  }
  size_t table_min = SIZE_MAX, table_sum = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    const size_t s = net.kad(i).routing_table().size();
    table_min = std::min(table_min, s);
    table_sum += s;
  }
  std::printf("[ kad-sim ] %zu nodes joined, routing table mean %.1f min %zu, join rounds max %zu, "
              "%zu requests delivered\n",
              net.size(), static_cast<double>(table_sum) / static_cast<double>(net.size()), table_min,
              join_rounds_max, net.delivered());
  EXPECT_GE(table_min, k) << "some node knows fewer than k peers";
  // Every request was answered at once, so nothing can still be in progress.
  EXPECT_EQ(net.nodes_with_active_queries(), 0u);

  // (1) Lookups find the true k closest.
  {
    SCOPED_TRACE("lookups");
    LookupStats s = check_lookups(net, rng, lookups, k);
    s.print("find_node");
    EXPECT_GE(s.mean_overlap(), 0.9);
    EXPECT_EQ(s.closest_missed, 0u);
  }

  // (2) A provider is found from (nearly) every node; (4) so is a stored value.
  const size_t provider = rng() % net.size();
  const Bytes provided_key = "/providers/" + random_key(rng, 16);
  {
    SCOPED_TRACE("provide");
    KadQueryResult r = net.await(provider, net.kad(provider).provide(provided_key, net.now(), false));
    EXPECT_GE(r.succeeded, k / 2) << "too few peers took the provider record";
    const size_t misses = count_provider_misses(net, sample(net, rng, askers, provider), provided_key,
                                                net.info(provider).id);
    std::printf("[ kad-sim ] get_providers: %zu askers, %zu misses (record on %zu peers)\n",
                std::min(askers, net.size() - 1), misses, r.succeeded);
    EXPECT_EQ(misses, 0u);
  }
  const size_t writer = rng() % net.size();
  const Bytes value_key = "/v/" + random_key(rng, 16);
  const Bytes value = "value-" + random_key(rng, 100);
  {
    SCOPED_TRACE("put_value");
    KadQueryResult r = net.await(writer, net.kad(writer).put_value(value_key, value, net.now()));
    EXPECT_GE(r.succeeded, k / 2) << "too few peers took the record";
    const size_t misses = count_value_misses(net, sample(net, rng, askers / 2, writer), value_key, value);
    std::printf("[ kad-sim ] get_value: %zu askers, %zu misses (record on %zu peers)\n",
                std::min(askers / 2, net.size() - 1), misses, r.succeeded);
    EXPECT_EQ(misses, 0u);
  }

  // (3) A tenth of the network disappears; its requests now fail.
  {
    SCOPED_TRACE("after removing 10%");
    std::vector<size_t> victims = sample(net, rng, net.size() / 10, SIZE_MAX);
    size_t removed = 0;
    for (size_t v : victims) {
      if (v == provider || v == writer) continue;
      net.remove(v);
      ++removed;
    }
    const size_t failed_before = net.failed();
    LookupStats s = check_lookups(net, rng, lookups, k);
    s.print("find_node after removal");
    std::printf("[ kad-sim ] removed %zu nodes; %zu requests failed since\n", removed, net.failed() - failed_before);
    EXPECT_GE(s.mean_overlap(), 0.9);
    EXPECT_EQ(s.closest_missed, 0u);
    EXPECT_GT(net.failed(), failed_before);

    EXPECT_EQ(count_provider_misses(net, sample(net, rng, askers / 2, provider), provided_key, net.info(provider).id),
              0u);
    EXPECT_EQ(count_value_misses(net, sample(net, rng, askers / 2, writer), value_key, value), 0u);

    // Publishing into the damaged network works as well.
    const size_t p2 = pick_live(net, rng);
    const Bytes key2 = "/providers/after/" + random_key(rng, 16);
    KadQueryResult r = net.await(p2, net.kad(p2).provide(key2, net.now(), false));
    EXPECT_GE(r.succeeded, k / 2);
    EXPECT_EQ(count_provider_misses(net, sample(net, rng, askers / 4, p2), key2, net.info(p2).id), 0u);
    const size_t w2 = pick_live(net, rng);
    const Bytes vkey2 = "/v/after/" + random_key(rng, 16);
    r = net.await(w2, net.kad(w2).put_value(vkey2, "second", net.now()));
    EXPECT_GE(r.succeeded, k / 2);
    EXPECT_EQ(count_value_misses(net, sample(net, rng, askers / 4, w2), vkey2, "second"), 0u);
  }
  EXPECT_EQ(net.rejected(), 0u) << "some request was refused by its target";
  EXPECT_EQ(net.nodes_with_active_queries(), 0u);
}

// Time-driven behaviour on a smaller network: nodes that vanish without a word (their requests
// only time out), bucket refresh, provider re-announcement and record republishing over 20 minutes
// of simulated time (past the 15-minute TTLs), and expiry of what was not re-announced.
TEST(KadSimulation, TimeoutsRepublishAndExpiry) {
  const double scale = test_scale();
  const size_t node_count = scaled(200, scale, 60);
  KadConfig config;
  const size_t k = config.k;
  std::mt19937_64 rng(777);
  Network net(config);
  for (size_t n = 0; n < node_count; ++n) {
    const size_t i = net.add_node(rng);
    if (i == 0) continue;
    ASSERT_FALSE(net.join(i, {rng() % i}).closest.empty());
  }

  const size_t keeper = rng() % net.size();   // provides with re-announcement
  size_t once = rng() % net.size();           // provides once
  while (once == keeper) once = rng() % net.size();
  const Bytes kept_key = "/kept/" + random_key(rng, 8);
  const Bytes once_key = "/once/" + random_key(rng, 8);
  EXPECT_GE(net.await(keeper, net.kad(keeper).provide(kept_key, net.now(), true)).succeeded, k / 2);
  EXPECT_GE(net.await(once, net.kad(once).provide(once_key, net.now(), false)).succeeded, k / 2);
  size_t writer = rng() % net.size();
  while (writer == keeper || writer == once) writer = rng() % net.size();
  const Bytes value_key = "/v/" + random_key(rng, 8);
  EXPECT_GE(net.await(writer, net.kad(writer).put_value(value_key, "kept", net.now())).succeeded, k / 2);

  // A tenth of the nodes go silent.
  net.set_silent_dead(true);
  for (size_t v : sample(net, rng, net.size() / 10, SIZE_MAX)) {
    if (v != keeper && v != once && v != writer) net.remove(v);
  }
  const uint64_t failed_before = net.failed();
  LookupStats s = check_lookups(net, rng, scaled(100, scale, 30), k);
  s.print("find_node with silent nodes");
  EXPECT_GE(s.mean_overlap(), 0.9);
  EXPECT_EQ(s.closest_missed, 0u);
  EXPECT_GT(net.failed(), failed_before) << "no lookup ran into a silent node";

  // Records and provider entries live 15 minutes unless renewed (every 5); buckets refresh at 10.
  const uint64_t start = net.now();
  const size_t delivered_before = net.delivered();
  net.advance_to(start + 20 * 60'000);
  net.settle();
  std::printf("[ kad-sim ] 20 simulated minutes: %zu requests delivered\n", net.delivered() - delivered_before);
  EXPECT_EQ(net.nodes_with_active_queries(), 0u);

  std::vector<size_t> askers = sample(net, rng, 60, SIZE_MAX);
  std::erase(askers, once);
  EXPECT_EQ(count_provider_misses(net, askers, kept_key, net.info(keeper).id), 0u);
  EXPECT_EQ(count_provider_misses(net, askers, once_key, net.info(once).id), askers.size())
      << "a provider record outlived its TTL without re-announcement";
  EXPECT_EQ(count_value_misses(net, askers, value_key, "kept"), 0u);

  // Routing tables stayed useful through refreshes.
  LookupStats after = check_lookups(net, rng, scaled(50, scale, 20), k);
  after.print("find_node after 20 minutes");
  EXPECT_GE(after.mean_overlap(), 0.9);
}
