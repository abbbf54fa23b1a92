#include "holepunch/hole_puncher.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/protocol_ids.hpp"

#include <sodium.h>

#include <algorithm>

namespace punchgate {

namespace {

// Random punch packets: a short-header look (top bit clear) and under 43 bytes, so a QUIC
// endpoint that receives one drops it quietly instead of answering with a stateless reset.
constexpr size_t kPunchPacketSize = 32;
constexpr uint32_t kSprayMinMs = 10;
constexpr uint32_t kSprayMaxMs = 200;

}  // namespace

struct HolePuncher::Session {
  explicit Session(uv_loop_t* loop) : delay(loop), spray(loop), deadline(loop), retry(loop), hard(loop) {}

  enum class Phase { Exchanging, Punching, Succeeded, Failed };
  PeerId peer;
  bool initiator = false;
  Phase phase = Phase::Exchanging;
  StreamPtr stream;
  std::optional<DcutrInitiator> init;
  std::optional<DcutrResponder> resp;
  uint64_t started_ms = 0;
  size_t attempt = 0;
  std::vector<Multiaddr> remote;  // where the current attempt punches to
  std::string outcome;            // for describe()
  uint64_t retry_after_ms = 0;
  Timer delay;     // initiator: half the round trip before punching
  Timer spray;     // initiator: the next random packet
  Timer deadline;  // reply or attempt timeout
  Timer retry;     // a later round after a failed one
  Timer hard;      // hard-NAT punch: head start, then probe batches
  std::vector<uint64_t> fresh_dials;  // hard-NAT dials from fresh sockets, to abort when done
  std::string probe_ip;               // hard-NAT probes go to random ports of this IP
  size_t probes_left = 0;

  bool running() const { return phase == Phase::Exchanging || phase == Phase::Punching; }
};

HolePuncher::HolePuncher(Host& host, HolePunchConfig config) : host_(host), config_(config) {
  if (!config_.enabled) return;
  host_.set_stream_handler(std::string(kDcutrProtocol), [this](NegotiatedStream ns) { serve(std::move(ns)); });
  host_.add_connection_observer([this, alive = alive_](const ConnectionPtr& c, bool opened, const std::string&) {
    if (*alive) on_connection(c, opened);
  });
  host_.identify().add_observer([this, alive = alive_](const IdentifyResult&) {
    if (*alive) on_identify();
  });
}

void HolePuncher::on_identify() {
  NatMappingVerdict v = classify_nat_mapping(host_.peer_store().observations());
  if (v.mapping == mapping_.mapping && v.public_ip == mapping_.public_ip) {
    mapping_ = std::move(v);
    return;
  }
  mapping_ = std::move(v);
  if (mapping_.mapping == NatMapping::Unknown) return;
  spdlog::info("nat mapping detected mapping={} ip={} ports=[{}]{}", to_string(mapping_.mapping), mapping_.public_ip,
               fmt::join(mapping_.ports, ","),
               mapping_.mapping == NatMapping::EndpointDependent
                   ? " note=\"peers see a different port each: plain hole punching cannot predict it\""
                   : "");
}

HolePuncher::~HolePuncher() {
  *alive_ = false;
  for (auto& [peer, s] : sessions_) {
    if (s->stream) s->stream->set_handlers({});
  }
}

HolePuncher::Session* HolePuncher::active(const PeerId& peer) {
  auto it = sessions_.find(peer);
  return it != sessions_.end() && it->second->running() ? it->second.get() : nullptr;
}

std::vector<Multiaddr> HolePuncher::candidate_addrs() const {
  std::vector<Multiaddr> out;
  auto add = [&](const Multiaddr& a) {
    if (a.is_relayed() || out.size() >= kMaxDcutrAddrs) return;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  // Unconfirmed observations too: with one public peer nothing is ever confirmed, and a wrong
  // address costs the other side one packet.
  for (const Multiaddr& a : host_.peer_store().observed_addrs(1)) add(a);
  for (const Multiaddr& a : host_.advertised_addrs()) add(a);
  return out;
}

void HolePuncher::on_connection(const ConnectionPtr& c, bool opened) {
  const PeerId peer = c->remote_peer();
  if (!opened) {
    if (host_.connection_to(peer)) return;
    auto it = sessions_.find(peer);
    if (it == sessions_.end()) return;
    if (it->second->stream) it->second->stream->set_handlers({});
    sessions_.erase(it);  // the peer is gone: nothing left to punch to
    return;
  }
  if (!c->is_relayed()) {
    if (Session* s = active(peer)) succeed(*s);
    return;
  }
  // Only the side that accepted the relayed connection starts (B in the spec).
  if (c->endpoint() == Endpoint::Listener) start_initiator(c);
}

void HolePuncher::start_initiator(const ConnectionPtr& relayed) {
  const PeerId peer = relayed->remote_peer();
  if (active(peer)) return;
  if (auto c = host_.connection_to(peer); c && !c->is_relayed()) return;
  auto& slot = sessions_[peer];
  uint64_t retry_after = slot ? slot->retry_after_ms : 0;
  if (slot && slot->stream) slot->stream->set_handlers({});
  slot = std::make_unique<Session>(host_.loop());
  Session& s = *slot;
  s.peer = peer;
  s.initiator = true;
  s.retry_after_ms = retry_after;
  s.started_ms = uv_now(host_.loop());
  s.outcome = "hole punch starting";
  spdlog::info("hole punch starting peer={} role=initiator", peer.to_base58());
  host_.open_stream(relayed, {std::string(kDcutrProtocol)},
                    [this, alive = alive_, peer](Result<NegotiatedStream> r) {
                      if (!*alive) return;
                      Session* st = active(peer);
                      if (!st) {
                        if (r) r->stream->reset(0);
                        return;
                      }
                      if (!r) return fail(*st, "cannot open dcutr stream: " + r.error().message);
                      st->stream = r->stream;
                      st->init.emplace(candidate_addrs());
                      st->stream->set_handlers({
                          .on_data = [this, alive, peer](BytesView d) { if (*alive) on_stream_data(peer, d); },
                          .on_fin = [this, alive, peer] {
                            if (!*alive) return;
                            if (Session* x = active(peer); x && x->phase == Session::Phase::Exchanging)
                              fail(*x, "peer closed the dcutr stream");
                          },
                          .on_reset = [this, alive, peer](uint64_t) {
                            if (!*alive) return;
                            if (Session* x = active(peer); x && x->phase == Session::Phase::Exchanging)
                              fail(*x, "peer reset the dcutr stream");
                          },
                      });
                      send_connect(*st);
                      if (!r->leftover.empty()) on_stream_data(peer, r->leftover);
                    });
}

void HolePuncher::send_connect(Session& s) {
  Bytes connect = s.init->connect(uv_now(host_.loop()));
  if (connect.empty()) return fail(s, "no attempt left");
  s.phase = Session::Phase::Exchanging;
  s.stream->write(connect);  // a few hundred bytes: always within a fresh stream's window
  const PeerId peer = s.peer;
  s.deadline.start(config_.reply_timeout_ms, 0, [this, peer] {
    if (Session* x = active(peer)) fail(*x, "no CONNECT reply in time");
  });
}

void HolePuncher::serve(NegotiatedStream ns) {
  const PeerId peer = ns.conn->remote_peer();
  if (!ns.conn->is_relayed()) {
    ns.stream->reset(0);  // already direct: nothing to punch
    return;
  }
  auto& slot = sessions_[peer];
  if (slot && slot->stream) slot->stream->set_handlers({});
  slot = std::make_unique<Session>(host_.loop());
  Session& s = *slot;
  s.peer = peer;
  s.started_ms = uv_now(host_.loop());
  s.stream = ns.stream;
  s.resp.emplace(candidate_addrs());
  s.outcome = "hole punch starting";
  spdlog::info("hole punch starting peer={} role=responder", peer.to_base58());
  s.stream->set_handlers({
      .on_data = [this, alive = alive_, peer](BytesView d) { if (*alive) on_stream_data(peer, d); },
      .on_fin = [this, alive = alive_, peer] {
        if (*alive) initiator_left(peer);
      },
      .on_reset = [this, alive = alive_, peer](uint64_t) {
        if (*alive) initiator_left(peer);
      },
  });
  s.deadline.start(config_.reply_timeout_ms, 0, [this, peer] {
    if (Session* x = active(peer); x && x->phase == Session::Phase::Exchanging && x->attempt == 0) {
      fail(*x, "no CONNECT from the initiator in time");
    }
  });
  if (!ns.leftover.empty()) on_stream_data(peer, ns.leftover);
}

void HolePuncher::initiator_left(const PeerId& peer) {
  // A punch still running finishes on its own deadline; between attempts the initiator has given up.
  Session* s = active(peer);
  if (!s || s->phase != Session::Phase::Exchanging) return;
  if (s->attempt == 0) return end(*s);
  fail(*s, fmt::format("no direct connection after {} attempts", s->attempt));
}

void HolePuncher::on_stream_data(const PeerId& peer, BytesView data) {
  Session* s = active(peer);
  if (!s) return;
  Result<DcutrStep> step = s->init ? s->init->feed(data, uv_now(host_.loop())) : s->resp->feed(data);
  if (!step) return fail(*s, "bad dcutr message: " + step.error().message);
  if (!step->to_send.empty()) s->stream->write(step->to_send);
  if (!step->punch) return;
  DcutrPunch plan = std::move(*step->punch);
  s->attempt = plan.attempt;
  s->deadline.stop();
  if (plan.remote_addrs.empty()) {
    spdlog::info("hole punch attempt skipped peer={} attempt={} reason=\"peer offered no dialable address\"",
                 peer.to_base58(), plan.attempt);
  }
  if (s->initiator) {
    spdlog::debug("hole punch sync peer={} attempt={} rtt_ms={}", peer.to_base58(), plan.attempt, plan.rtt_ms);
    s->phase = Session::Phase::Punching;
    s->delay.start(plan.delay_ms, 0, [this, peer, plan] { begin_punch(peer, plan); });
  } else {
    begin_punch(peer, plan);
  }
}

void HolePuncher::begin_punch(const PeerId& peer, const DcutrPunch& plan) {
  Session* s = active(peer);
  if (!s) return;
  s->phase = Session::Phase::Punching;
  s->remote = plan.remote_addrs;
  s->outcome = fmt::format("hole punch in progress (attempt {})", plan.attempt);
  // The responder dials (it becomes the QUIC client); the initiator sprays so the responder's
  // packets find its NAT open, and dials too (see the header).
  for (const Multiaddr& a : s->remote) {
    host_.dial_direct(a.with_peer_id(peer), [this, alive = alive_, peer, a](Result<ConnectionPtr> r) {
      if (!*alive) return;
      if (!r) spdlog::debug("hole punch dial failed peer={} addr={} error={}", peer.to_base58(), a.to_string(),
                            log_quote(r.error().message));
    });
  }
  if (s->initiator) spray(peer);
  if (config_.hard_nat) s->hard.start(config_.hard_nat_delay_ms, 0, [this, peer] { hard_nat_punch(peer); });
  s->deadline.start(config_.attempt_timeout_ms, 0, [this, peer] { on_attempt_timeout(peer); });
}

void HolePuncher::hard_nat_punch(const PeerId& peer) {
  Session* s = active(peer);
  if (!s || s->phase != Session::Phase::Punching) return;
  if (auto c = host_.connection_to(peer); c && !c->is_relayed()) return;
  std::string peer_ip;
  const bool peer_dependent = looks_endpoint_dependent(s->remote, &peer_ip);
  const bool we_dependent = mapping_.mapping == NatMapping::EndpointDependent;
  if (we_dependent && peer_dependent) {
    if (s->attempt == 1) {
      spdlog::info("hard nat punch skipped peer={} reason=\"both sides have endpoint-dependent mapping\"",
                   peer.to_base58());
    }
    return;
  }
  if (we_dependent) {
    // Many fresh mappings towards the peer's public addresses.
    std::vector<Multiaddr> targets;
    for (const Multiaddr& a : s->remote) {
      auto ep = quic_endpoint_of(a);
      if (ep && !ep->is_dns && is_public_ip(ep->host)) targets.push_back(a);
    }
    if (targets.empty()) return;
    size_t per_target = std::max<size_t>(1, config_.hard_nat_sockets / targets.size());
    size_t opened = 0;
    for (const Multiaddr& a : targets) {
      for (size_t i = 0; i < per_target; ++i) {
        auto h = host_.dial_from_fresh_socket(a.with_peer_id(peer), [](Result<ConnectionPtr>) {});
        if (!h) {
          spdlog::debug("hard nat dial not started addr={} error={}", a.to_string(), log_quote(h.error().message));
          break;
        }
        s->fresh_dials.push_back(*h);
        ++opened;
      }
    }
    spdlog::info("hard nat punch peer={} attempt={} role=sockets sockets={} targets={}", peer.to_base58(),
                 s->attempt, opened, targets.size());
    return;
  }
  if (peer_dependent) {
    s->probe_ip = peer_ip;
    s->probes_left = config_.hard_nat_probes;
    spdlog::info("hard nat punch peer={} attempt={} role=probes probes={} ip={}", peer.to_base58(), s->attempt,
                 s->probes_left, peer_ip);
    send_probes(peer);
  }
}

void HolePuncher::send_probes(const PeerId& peer) {
  // Batches keep the burst polite; the whole run still takes well under a second.
  constexpr size_t kBatch = 256;
  constexpr uint64_t kBatchGapMs = 20;
  Session* s = active(peer);
  if (!s || s->phase != Session::Phase::Punching || s->probes_left == 0) return;
  if (auto c = host_.connection_to(peer); c && !c->is_relayed()) return;
  uint8_t packet[kPunchPacketSize];
  for (size_t i = 0; i < kBatch && s->probes_left > 0; ++i, --s->probes_left) {
    uint16_t port = static_cast<uint16_t>(1024 + randombytes_uniform(65536 - 1024));
    auto addr = Multiaddr::parse(fmt::format("/ip{}/{}/udp/{}/quic-v1", s->probe_ip.find(':') == std::string::npos ? 4 : 6,
                                             s->probe_ip, port));
    if (!addr) return;
    randombytes_buf(packet, sizeof packet);
    packet[0] &= 0x7f;
    (void)host_.send_datagram(*addr, BytesView(reinterpret_cast<const char*>(packet), sizeof packet));
  }
  if (s->probes_left > 0) s->hard.start(kBatchGapMs, 0, [this, peer] { send_probes(peer); });
}

void HolePuncher::spray(const PeerId& peer) {
  Session* s = active(peer);
  if (!s || s->phase != Session::Phase::Punching) return;
  uint8_t packet[kPunchPacketSize];
  for (const Multiaddr& a : s->remote) {
    randombytes_buf(packet, sizeof packet);
    packet[0] &= 0x7f;
    if (auto st = host_.send_datagram(a, BytesView(reinterpret_cast<const char*>(packet), sizeof packet)); !st) {
      spdlog::debug("hole punch packet not sent addr={} error={}", a.to_string(), log_quote(st.error().message));
    }
  }
  uint32_t next = kSprayMinMs + randombytes_uniform(kSprayMaxMs - kSprayMinMs + 1);
  s->spray.start(next, 0, [this, peer] { spray(peer); });
}

void HolePuncher::on_attempt_timeout(const PeerId& peer) {
  Session* s = active(peer);
  if (!s) return;
  s->spray.stop();
  s->hard.stop();
  for (uint64_t h : s->fresh_dials) host_.abort_fresh_dial(h);
  s->fresh_dials.clear();
  if (auto c = host_.connection_to(peer); c && !c->is_relayed()) return succeed(*s);
  spdlog::info("hole punch attempt failed peer={} attempt={}", peer.to_base58(), s->attempt);
  if (!s->initiator) {
    // The initiator decides whether there is another attempt; wait for its next CONNECT.
    s->phase = Session::Phase::Exchanging;
    s->outcome = fmt::format("hole punch attempt {} failed", s->attempt);
    s->deadline.start(config_.reply_timeout_ms, 0, [this, peer] {
      if (Session* x = active(peer)) fail(*x, fmt::format("no direct connection after {} attempts", x->attempt));
    });
    return;
  }
  if (s->init->can_retry()) return send_connect(*s);
  fail(*s, fmt::format("no direct connection after {} attempts", s->attempt));
}

void HolePuncher::succeed(Session& s) {
  uint64_t elapsed = uv_now(host_.loop()) - s.started_ms;
  size_t attempt = std::max<size_t>(s.attempt, 1);
  spdlog::info("hole punch succeeded peer={} attempt={} elapsed_ms={}", s.peer.to_base58(), attempt, elapsed);
  s.outcome = fmt::format("hole punched (attempt {}, {} ms)", attempt, elapsed);
  s.phase = Session::Phase::Succeeded;
  s.retry_after_ms = 0;
  end(s);
}

void HolePuncher::fail(Session& s, const std::string& reason) {
  spdlog::info("hole punch failed peer={} reason={}", s.peer.to_base58(), log_quote(reason));
  s.outcome = "hole punch failed: " + reason;
  s.phase = Session::Phase::Failed;
  end(s);
  if (s.initiator) schedule_retry(s.peer);
}

void HolePuncher::end(Session& s) {
  s.delay.stop();
  s.spray.stop();
  s.deadline.stop();
  s.hard.stop();
  for (uint64_t h : s.fresh_dials) host_.abort_fresh_dial(h);
  s.fresh_dials.clear();
  if (s.running()) {
    s.phase = Session::Phase::Failed;
    if (s.outcome.rfind("hole punch in progress", 0) == 0 || s.outcome == "hole punch starting") {
      s.outcome = "hole punch ended by the peer";
    }
  }
  if (s.stream) {
    s.stream->set_handlers({});
    if (s.phase == Session::Phase::Succeeded) {
      s.stream->shutdown_write();
    } else {
      s.stream->reset(0);
    }
    s.stream.reset();
  }
}

void HolePuncher::schedule_retry(const PeerId& peer) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  s.retry_after_ms = s.retry_after_ms == 0 ? config_.retry_after_ms
                                           : std::min(s.retry_after_ms * 2, config_.max_retry_after_ms);
  s.retry.start(s.retry_after_ms, 0, [this, peer] {
    auto c = host_.connection_to(peer);
    if (!c || !c->is_relayed() || c->endpoint() != Endpoint::Listener) return;
    start_initiator(c);
  });
}

std::string HolePuncher::describe(const PeerId& peer) const {
  auto c = host_.connection_to(peer);
  if (!c) return "not connected";
  auto it = sessions_.find(peer);
  const std::string outcome = it == sessions_.end() ? "" : it->second->outcome;
  if (!c->is_relayed()) {
    if (it != sessions_.end() && it->second->phase == Session::Phase::Succeeded) return "direct (" + outcome + ")";
    return "direct";
  }
  if (!config_.enabled) return "relayed (hole punching off)";
  if (outcome.empty()) {
    return c->endpoint() == Endpoint::Listener ? "relayed" : "relayed (waiting for the peer to start a hole punch)";
  }
  return "relayed (" + outcome + ")";
}

}  // namespace punchgate
