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
// Hard-NAT probes leave in batches: the burst stays polite and the run well under a second.
constexpr size_t kProbeBatch = 256;
constexpr uint64_t kProbeGapMs = 20;

BytesView random_packet(uint8_t (&buf)[kPunchPacketSize]) {
  randombytes_buf(buf, sizeof buf);
  buf[0] &= 0x7f;
  return BytesView(reinterpret_cast<const char*>(buf), sizeof buf);
}

}  // namespace

// The I/O side of one peer's punching: the pure round (PunchSession) and what executes it.
struct HolePuncher::Session {
  explicit Session(uv_loop_t* loop)
      : reply(loop), delay(loop), attempt(loop), hard(loop), spray(loop), probes(loop), retry(loop) {}

  Timer& timer(PunchTimer t) {
    switch (t) {
      case PunchTimer::Reply: return reply;
      case PunchTimer::Delay: return delay;
      case PunchTimer::Attempt: return attempt;
      case PunchTimer::HardNat: break;
    }
    return hard;
  }
  void stop_timers() {
    reply.stop();
    delay.stop();
    attempt.stop();
    hard.stop();
  }

  PeerId peer;
  std::unique_ptr<PunchSession> core;
  std::weak_ptr<Connection> relayed;  // initiator: where its dcutr streams go
  StreamPtr stream;
  std::vector<Multiaddr> spray_to;
  std::string probe_ip;
  size_t probes_left = 0;
  std::vector<uint64_t> fresh_dials;
  uint64_t retry_after_ms = 0;
  Timer reply, delay, attempt, hard;  // the core's timers
  Timer spray, probes;                // pacing of punch packets and hard-NAT probes
  Timer retry;                        // a new round after a failed one
};

HolePuncher::HolePuncher(Host& host, HolePunchConfig config) : host_(host), config_(config) {
  config_.punch.hard_nat = config_.hard_nat;
  if (!config_.enabled) return;
  host_.set_stream_handler(std::string(kDcutrProtocol), [this](NegotiatedStream ns) { serve(std::move(ns)); });
  host_.add_connection_observer([this, alive = alive_](const ConnectionPtr& c, bool opened, const std::string&) {
    if (*alive) on_connection(c, opened);
  });
  host_.identify().add_observer([this, alive = alive_](const IdentifyResult&) {
    if (*alive) on_identify();
  });
}

HolePuncher::~HolePuncher() {
  *alive_ = false;
  for (auto& [peer, s] : sessions_) {
    if (s->stream) s->stream->set_handlers({});
  }
}

void HolePuncher::on_identify() {
  NatMappingVerdict v = classify_nat_mapping(host_.peer_store().observations());
  const bool changed = v.mapping != mapping_.mapping || v.public_ip != mapping_.public_ip;
  mapping_ = std::move(v);
  if (!changed || mapping_.mapping == NatMapping::Unknown) return;
  spdlog::info("nat mapping detected mapping={} ip={} ports=[{}]{}", to_string(mapping_.mapping), mapping_.public_ip,
               fmt::join(mapping_.ports, ","),
               mapping_.mapping == NatMapping::EndpointDependent
                   ? " note=\"peers see a different port each: plain hole punching cannot predict it\""
                   : "");
}

HolePuncher::Session* HolePuncher::find(const PeerId& peer) {
  auto it = sessions_.find(peer);
  return it == sessions_.end() ? nullptr : it->second.get();
}

std::vector<Multiaddr> HolePuncher::candidate_addrs() const {
  std::vector<Multiaddr> out;
  auto add = [&](const Multiaddr& a) {
    if (!dcutr_punchable(a) || out.size() >= kMaxDcutrAddrs) return;
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
    if (Session* s = find(peer)) {
      finish(*s);
      sessions_.erase(peer);  // the peer is gone: nothing left to punch to
    }
    return;
  }
  if (!c->is_relayed()) {
    feed(peer, PunchEvent{.kind = PunchEvent::Kind::DirectConnection, .now_ms = uv_now(host_.loop())});
    return;
  }
  // Only the side that accepted the relayed connection starts (B in the spec).
  if (c->endpoint() == Endpoint::Listener) start_initiator(c);
}

HolePuncher::Session& HolePuncher::new_session(const PeerId& peer, PunchSession::Role role) {
  auto& slot = sessions_[peer];
  uint64_t retry_after = 0;
  if (slot) {
    retry_after = slot->retry_after_ms;
    finish(*slot);
  }
  slot = std::make_unique<Session>(host_.loop());
  slot->peer = peer;
  slot->retry_after_ms = retry_after;
  slot->core = std::make_unique<PunchSession>(role, config_.punch, candidate_addrs(), mapping_.mapping,
                                              uv_now(host_.loop()));
  spdlog::info("hole punch starting peer={} role={}", peer.to_base58(),
               role == PunchSession::Role::Initiator ? "initiator" : "responder");
  return *slot;
}

void HolePuncher::start_initiator(const ConnectionPtr& relayed) {
  const PeerId peer = relayed->remote_peer();
  if (Session* s = find(peer); s && s->core && !s->core->finished()) return;
  if (auto c = host_.connection_to(peer); c && !c->is_relayed()) return;
  new_session(peer, PunchSession::Role::Initiator).relayed = relayed;
  open_stream(peer);
}

void HolePuncher::open_stream(const PeerId& peer) {
  Session* session = find(peer);
  ConnectionPtr relayed = session ? session->relayed.lock() : nullptr;
  if (!relayed || relayed->is_closed()) {
    feed(peer, PunchEvent{.kind = PunchEvent::Kind::StreamEnded, .now_ms = uv_now(host_.loop())});
    return;
  }
  host_.open_stream(relayed, {std::string(kDcutrProtocol)}, [this, alive = alive_, peer](Result<NegotiatedStream> r) {
    if (!*alive) return;
    Session* s = find(peer);
    if (!s || !s->core || s->core->finished() || s->stream) {
      if (r) r->stream->reset(0);
      return;
    }
    if (!r) {
      if (s->core->attempt() > 0) {
        // A later attempt's stream (the peer ended the last one): the round ends like any other.
        feed(peer, PunchEvent{.kind = PunchEvent::Kind::StreamEnded, .now_ms = uv_now(host_.loop())});
        return;
      }
      // No dcutr on the other side, or the relayed connection went away: nothing to punch with.
      s->core.reset();
      spdlog::info("hole punch failed peer={} reason={}", peer.to_base58(),
                   log_quote("cannot open dcutr stream: " + r.error().message));
      return;
    }
    s->stream = r->stream;
    watch_stream(peer);
    uint64_t now = uv_now(host_.loop());
    feed(peer, PunchEvent{.kind = PunchEvent::Kind::StreamReady, .now_ms = now});
    if (!r->leftover.empty()) feed(peer, PunchEvent{.kind = PunchEvent::Kind::Data, .data = r->leftover, .now_ms = now});
  });
}

void HolePuncher::serve(NegotiatedStream ns) {
  const PeerId peer = ns.conn->remote_peer();
  if (!ns.conn->is_relayed()) {
    ns.stream->reset(0);  // already direct: nothing to punch
    return;
  }
  Session& s = new_session(peer, PunchSession::Role::Responder);
  s.stream = ns.stream;
  watch_stream(peer);
  execute(s, s.core->start());
  if (!ns.leftover.empty()) {
    feed(peer, PunchEvent{.kind = PunchEvent::Kind::Data, .data = ns.leftover, .now_ms = uv_now(host_.loop())});
  }
}

void HolePuncher::watch_stream(const PeerId& peer) {
  Session* s = find(peer);
  auto ended = [this, alive = alive_, peer] {
    if (*alive) feed(peer, PunchEvent{.kind = PunchEvent::Kind::StreamEnded, .now_ms = uv_now(host_.loop())});
  };
  s->stream->set_handlers({
      .on_data =
          [this, alive = alive_, peer](BytesView d) {
            if (*alive) feed(peer, PunchEvent{.kind = PunchEvent::Kind::Data, .data = d, .now_ms = uv_now(host_.loop())});
          },
      .on_fin = ended,
      .on_reset = [ended](uint64_t) { ended(); },
  });
}

void HolePuncher::feed(const PeerId& peer, const PunchEvent& ev) {
  Session* s = find(peer);
  if (!s || !s->core || s->core->finished()) return;
  execute(*s, s->core->handle(ev));
}

void HolePuncher::execute(Session& s, std::vector<PunchCommand> commands) {
  const PeerId peer = s.peer;
  for (PunchCommand& c : commands) {
    switch (c.kind) {
      case PunchCommand::Kind::Write:
        if (s.stream) s.stream->write(c.bytes);  // a few hundred bytes: within any stream window
        break;
      case PunchCommand::Kind::OpenStream:
        if (s.stream) {
          s.stream->set_handlers({});
          s.stream->reset(0);
          s.stream.reset();
        }
        open_stream(peer);
        break;
      case PunchCommand::Kind::StartTimer: {
        PunchTimer which = c.timer;
        s.timer(which).start(c.ms, 0, [this, peer, which] {
          feed(peer, PunchEvent{.kind = PunchEvent::Kind::TimerFired, .timer = which, .now_ms = uv_now(host_.loop())});
        });
        break;
      }
      case PunchCommand::Kind::StopTimers:
        s.stop_timers();
        break;
      case PunchCommand::Kind::Dial:
        for (const Multiaddr& a : c.addrs) {
          host_.dial_direct(a.with_peer_id(peer), [a, peer](Result<ConnectionPtr> r) {
            if (!r) {
              spdlog::debug("hole punch dial failed peer={} addr={} error={}", peer.to_base58(), a.to_string(),
                            log_quote(r.error().message));
            }
          });
        }
        break;
      case PunchCommand::Kind::StartSpray:
        s.spray_to = std::move(c.addrs);
        spray(peer);
        break;
      case PunchCommand::Kind::StopSpray:
        s.spray.stop();
        s.probes.stop();
        s.probes_left = 0;
        break;
      case PunchCommand::Kind::DialFresh:
        dial_fresh(s, c);
        break;
      case PunchCommand::Kind::SendProbes:
        s.probe_ip = c.ip;
        s.probes_left = c.count;
        send_probes(peer);
        break;
      case PunchCommand::Kind::AbortFresh:
        abort_fresh(s);
        break;
      case PunchCommand::Kind::Log:
        spdlog::info("{} peer={}", c.text, peer.to_base58());
        break;
      case PunchCommand::Kind::Succeeded:
        spdlog::info("hole punch succeeded peer={} attempt={} elapsed_ms={}", peer.to_base58(), c.attempt,
                     c.elapsed_ms);
        s.retry_after_ms = 0;
        finish(s);
        break;
      case PunchCommand::Kind::Failed:
        spdlog::info("hole punch failed peer={} reason={}", peer.to_base58(), log_quote(c.text));
        const bool initiator = s.core->role() == PunchSession::Role::Initiator;
        finish(s);
        if (initiator) schedule_retry(s);
        break;
    }
  }
}

void HolePuncher::spray(const PeerId& peer) {
  Session* s = find(peer);
  if (!s) return;
  uint8_t buf[kPunchPacketSize];
  for (const Multiaddr& a : s->spray_to) {
    if (auto st = host_.send_datagram(a, random_packet(buf)); !st) {
      spdlog::debug("hole punch packet not sent addr={} error={}", a.to_string(), log_quote(st.error().message));
    }
  }
  uint32_t next = kSprayMinMs + randombytes_uniform(kSprayMaxMs - kSprayMinMs + 1);
  s->spray.start(next, 0, [this, peer] { spray(peer); });
}

void HolePuncher::send_probes(const PeerId& peer) {
  Session* s = find(peer);
  if (!s || s->probes_left == 0) return;
  const int family = s->probe_ip.find(':') == std::string::npos ? 4 : 6;
  uint8_t buf[kPunchPacketSize];
  for (size_t i = 0; i < kProbeBatch && s->probes_left > 0; ++i, --s->probes_left) {
    auto port = static_cast<uint16_t>(1024 + randombytes_uniform(65536 - 1024));
    auto addr = Multiaddr::parse(fmt::format("/ip{}/{}/udp/{}/quic-v1", family, s->probe_ip, port));
    if (!addr) return;
    (void)host_.send_datagram(*addr, random_packet(buf));
  }
  if (s->probes_left > 0) s->probes.start(kProbeGapMs, 0, [this, peer] { send_probes(peer); });
}

void HolePuncher::dial_fresh(Session& s, const PunchCommand& c) {
  if (c.addrs.empty()) return;
  for (size_t i = 0; i < c.count; ++i) {
    const Multiaddr& a = c.addrs[i % c.addrs.size()];
    auto h = host_.dial_from_fresh_socket(a.with_peer_id(s.peer), [](Result<ConnectionPtr>) {});
    if (!h) {
      spdlog::debug("hard nat dial not started addr={} error={}", a.to_string(), log_quote(h.error().message));
      return;
    }
    s.fresh_dials.push_back(*h);
  }
}

void HolePuncher::abort_fresh(Session& s) {
  for (uint64_t h : s.fresh_dials) host_.abort_fresh_dial(h);
  s.fresh_dials.clear();
}

void HolePuncher::finish(Session& s) {
  s.stop_timers();
  s.spray.stop();
  s.probes.stop();
  s.retry.stop();
  abort_fresh(s);
  if (!s.stream) return;
  s.stream->set_handlers({});
  if (s.core && s.core->phase() == PunchSession::Phase::Succeeded) {
    s.stream->shutdown_write();
  } else {
    s.stream->reset(0);
  }
  s.stream.reset();
}

void HolePuncher::schedule_retry(Session& s) {
  s.retry_after_ms = s.retry_after_ms == 0 ? config_.retry_after_ms
                                           : std::min(s.retry_after_ms * 2, config_.max_retry_after_ms);
  const PeerId peer = s.peer;
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
  const PunchSession* core = it == sessions_.end() ? nullptr : it->second->core.get();
  if (!c->is_relayed()) {
    if (core && core->phase() == PunchSession::Phase::Succeeded) return "direct (" + core->outcome() + ")";
    return "direct";
  }
  if (!config_.enabled) return "relayed (hole punching off)";
  if (!core) {
    return c->endpoint() == Endpoint::Listener ? "relayed" : "relayed (waiting for the peer to start a hole punch)";
  }
  return "relayed (" + core->outcome() + ")";
}

}  // namespace punchgate
