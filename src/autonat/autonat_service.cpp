#include "autonat/autonat_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "relay/framed_read.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace punchgate {

namespace {

constexpr const char* kDialBackDone = "autonat dial-back done";

std::string skipped_text(const std::vector<std::pair<std::string, std::string>>& skipped) {
  std::string out;
  for (const auto& [addr, why] : skipped) {
    if (!out.empty()) out += "; ";
    out += addr + " (" + why + ")";
  }
  return out;
}

std::string addr_or_none(const std::optional<Multiaddr>& a) { return a ? a->to_string() : "none"; }

}  // namespace

struct AutonatService::DialBack {
  DialBack(uv_loop_t* loop, std::vector<Multiaddr> addrs) : tally(std::move(addrs)), timer(loop) {}
  PeerId peer;
  StreamPtr stream;
  DialBackTally tally;
  Timer timer;
  std::vector<uint64_t> dials;  // Host::dial_detached handles, aborted once answered
  uint64_t started_ms = 0;
};

AutonatService::AutonatService(Host& host, AutonatConfig config)
    : host_(host),
      config_(config),
      server_(config.server_limits),
      tracker_(config.reachability),
      scheduler_(config.schedule),
      round_timer_(std::make_unique<Timer>(host.loop())) {
  if (config_.server) {
    host_.set_stream_handler(std::string(kAutonatProtocol), [this, alive = alive_](NegotiatedStream ns) {
      if (!*alive) return ns.stream->reset(0);
      serve(std::move(ns));
    });
  }
  if (config_.client) {
    host_.identify().add_observer([this, alive = alive_](const IdentifyResult& r) {
      if (*alive) on_server_identified(r.peer);
    });
    schedule_round(config_.schedule.boot_delay_ms);
  }
}

AutonatService::~AutonatService() {
  // The host may be gone already (it is destroyed first on the node): touch only our own state.
  *alive_ = false;
  for (auto& [id, job] : jobs_) job->stream->set_handlers({});
}

// ---------------------------------------------------------------- server

void AutonatService::serve(NegotiatedStream ns) {
  ConnectionPtr conn = ns.conn;
  StreamPtr stream = ns.stream;
  read_framed_message(host_.loop(), stream, std::move(ns.leftover), kMaxAutonatMessageSize, config_.read_timeout_ms,
                      [this, alive = alive_, conn, stream](Result<FramedMessage> m) {
                        if (!*alive) return;
                        if (!m) {
                          spdlog::debug("autonat request unreadable peer={} error={}", conn->remote_peer().to_base58(),
                                        log_quote(m.error().message));
                          stream->reset(0);
                          return;
                        }
                        on_request(conn, stream, std::move(m->message));
                      });
}

void AutonatService::on_request(const ConnectionPtr& conn, const StreamPtr& stream, Bytes message) {
  const PeerId peer = conn->remote_peer();
  const uint64_t now = uv_now(host_.loop());
  AutonatRequestContext ctx{peer, conn->remote_addr(), conn->is_relayed(), host_.listen_addrs()};
  AutonatAdmission a = server_.admit(ctx, message, now);
  for (const auto& [addr, why] : a.skipped) {
    spdlog::debug("autonat dial-back skips peer={} addr={} reason={}", peer.to_base58(), log_quote(addr),
                  log_quote(why));
  }
  if (a.answer) {
    spdlog::info("autonat request refused peer={} status={} reason={} skipped={}", peer.to_base58(),
                 to_string(*a.answer->dial_response->status), log_quote(a.reason), log_quote(skipped_text(a.skipped)));
    Bytes out = a.answer->encode_framed();
    stream->set_handlers({});
    stream->write(out);  // well under a fresh stream's window
    stream->shutdown_write();
    return;
  }
  const uint64_t id = a.job;
  auto job = std::make_unique<DialBack>(host_.loop(), a.dial);
  job->peer = peer;
  job->stream = stream;
  job->started_ms = now;
  stream->set_handlers({
      .on_data = [](BytesView) {},  // nothing more is expected; ignore whatever comes
      .on_reset =
          [this, alive = alive_, id](uint64_t) {
            if (*alive) drop_job(id);
          },
  });
  job->timer.start(config_.dial_back_timeout_ms, 0, [this, alive = alive_, id] {
    if (!*alive) return;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    if (auto reply = it->second->tally.on_timeout()) answer(id, *reply);
  });
  jobs_.emplace(id, std::move(job));
  spdlog::info("autonat dial-back starting peer={} addrs=[{}] skipped={}", peer.to_base58(), join_multiaddrs(a.dial),
               log_quote(skipped_text(a.skipped)));
  for (const Multiaddr& addr : a.dial) {
    auto h = host_.dial_detached(addr.with_peer_id(peer), [this, alive = alive_, id, addr](Result<ConnectionPtr> r) {
      if (!*alive) {
        if (r) (*r)->close(kDialBackDone);
        return;
      }
      on_dial_result(id, addr, std::move(r));
    });
    auto it = jobs_.find(id);  // a dial may fail (and so answer) before dial_detached returns
    if (it == jobs_.end()) {
      if (h) host_.abort_fresh_dial(*h);
      break;
    }
    if (h) {
      it->second->dials.push_back(*h);
    } else if (auto reply = it->second->tally.on_failed(addr, h.error().message, true)) {
      answer(id, *reply);
      break;
    }
  }
}

void AutonatService::on_dial_result(uint64_t id, const Multiaddr& addr, Result<ConnectionPtr> r) {
  auto it = jobs_.find(id);
  if (r) {
    // The connection proved what it had to; the peer keeps using the one it asked on.
    ConnectionPtr c = *r;
    std::optional<AutonatMessage> reply;
    if (it != jobs_.end()) reply = it->second->tally.on_connected(addr);
    c->close(kDialBackDone);
    if (reply) answer(id, *reply);
    return;
  }
  if (it == jobs_.end()) return;
  spdlog::debug("autonat dial-back attempt failed peer={} addr={} error={}", it->second->peer.to_base58(),
                addr.to_string(), log_quote(r.error().message));
  if (auto reply = it->second->tally.on_failed(addr, r.error().message, false)) answer(id, *reply);
}

void AutonatService::answer(uint64_t id, const AutonatMessage& reply) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  std::unique_ptr<DialBack> job = std::move(it->second);
  jobs_.erase(it);
  server_.finish(id);
  job->timer.stop();
  // Out of jobs_ first: aborted dials report back, and must find nothing to update.
  for (uint64_t h : job->dials) host_.abort_fresh_dial(h);
  const AutonatDialResponse& r = *reply.dial_response;
  std::optional<Multiaddr> addr;
  if (r.addr) {
    if (auto a = Multiaddr::from_bytes(*r.addr)) addr = std::move(*a);
  }
  spdlog::info("autonat dial-back finished peer={} status={} addr={} elapsed_ms={} text={}", job->peer.to_base58(),
               to_string(*r.status), addr_or_none(addr), uv_now(host_.loop()) - job->started_ms,
               log_quote(r.status_text.value_or("")));
  Bytes out = reply.encode_framed();
  job->stream->set_handlers({});
  job->stream->write(out);
  job->stream->shutdown_write();
}

void AutonatService::drop_job(uint64_t id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  std::unique_ptr<DialBack> job = std::move(it->second);
  jobs_.erase(it);
  server_.finish(id);
  job->timer.stop();
  for (uint64_t h : job->dials) host_.abort_fresh_dial(h);
  spdlog::debug("autonat dial-back abandoned peer={} reason=\"request stream reset\"", job->peer.to_base58());
}

// ---------------------------------------------------------------- client

std::vector<Multiaddr> AutonatService::candidate_addrs(const PeerId& server) const {
  std::vector<Multiaddr> out;
  auto add = [&](const Multiaddr& a) {
    if (out.size() >= kMaxAutonatAddrs || a.is_relayed() || a.is_unspecified_ip() || !quic_endpoint_of(a)) return;
    Multiaddr bare = a.without_peer_id();
    if (std::find(out.begin(), out.end(), bare) == out.end()) out.push_back(std::move(bare));
  };
  // What this server sees is what it can test; with an endpoint-dependent NAT nothing else
  // would ever be on its IP and port.
  for (const auto& [addr, reporters] : host_.peer_store().observations()) {
    if (reporters.count(server)) add(addr);
  }
  for (const Multiaddr& a : host_.peer_store().observed_addrs(2)) add(a);
  for (const Multiaddr& a : host_.advertised_addrs()) add(a);  // gateway-mapped, then listen
  return out;
}

void AutonatService::schedule_round(uint64_t delay_ms) {
  next_round_at_ = uv_now(host_.loop()) + delay_ms;
  round_timer_->start(delay_ms, 0, [this, alive = alive_] {
    if (*alive) run_round();
  });
}

std::vector<PeerId> AutonatService::eligible_servers() const {
  std::vector<PeerId> out;
  for (const ConnectionPtr& c : host_.connections()) {
    const PeerId& p = c->remote_peer();
    if (c->is_closed() || c->is_relayed() || p == host_.peer_id()) continue;
    if (!host_.peer_store().supports(p, kAutonatProtocol)) continue;
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

void AutonatService::run_round() {
  next_round_at_ = 0;
  const uint64_t now = uv_now(host_.loop());
  std::vector<PeerId> eligible = eligible_servers();
  if (eligible.empty()) {
    // Idle until identify reports a server (on_server_identified schedules the next round).
    spdlog::debug("autonat no server to ask");
    return;
  }
  for (const PeerId& server : scheduler_.pick(std::move(eligible), now)) probe(server);
  schedule_round(scheduler_.interval(tracker_.reachability(), tracker_.confidence(),
                                     tracker_.config().max_confidence));
}

void AutonatService::on_server_identified(const PeerId& peer) {
  if (!host_.peer_store().supports(peer, kAutonatProtocol)) return;
  auto conn = host_.connection_to(peer);
  if (!conn || conn->is_relayed()) return;
  const uint64_t now = uv_now(host_.loop());
  // While unsure (or idle for lack of servers), a new server is worth asking soon.
  if (next_round_at_ != 0 && tracker_.reachability() != Reachability::Unknown) return;
  if (!scheduler_.may_ask(peer, now)) return;
  const uint64_t delay = config_.schedule.boot_delay_ms;
  if (next_round_at_ != 0 && next_round_at_ <= now + delay) return;
  schedule_round(delay);
}

void AutonatService::probe(const PeerId& server) {
  ConnectionPtr conn = host_.connection_to(server);
  if (!conn || conn->is_relayed()) return;
  std::vector<Multiaddr> asked = candidate_addrs(server);
  if (asked.empty()) return;
  spdlog::debug("autonat probe server={} addrs=[{}]", server.to_base58(), join_multiaddrs(asked));
  host_.open_stream(conn, {std::string(kAutonatProtocol)},
                    [this, alive = alive_, server, asked](Result<NegotiatedStream> r) {
    if (!*alive) {
      if (r) r->stream->reset(0);
      return;
    }
    if (!r) return on_answer(server, asked, r.error());
    StreamPtr s = r->stream;
    Bytes request = AutonatMessage::dial_request(host_.peer_id(), asked).encode_framed();
    if (s->write(request) < request.size()) {
      s->reset(0);
      return on_answer(server, asked, make_error("request does not fit the stream"));
    }
    s->shutdown_write();
    read_framed_message(host_.loop(), s, std::move(r->leftover), kMaxAutonatMessageSize, config_.request_timeout_ms,
                        [this, alive, server, asked, s](Result<FramedMessage> m) {
                          if (!*alive) return;
                          if (!m) {
                            s->reset(0);
                            return on_answer(server, asked, m.error());
                          }
                          on_answer(server, asked, std::move(m->message));
                        });
  });
}

void AutonatService::on_answer(const PeerId& server, const std::vector<Multiaddr>& asked, Result<Bytes> message) {
  if (!message) {
    spdlog::info("autonat probe failed server={} error={}", server.to_base58(), log_quote(message.error().message));
    scheduler_.hold(server, uv_now(host_.loop()));
    return;
  }
  AutonatEvidence e = interpret_response(*message, asked);
  if (e.kind == AutonatEvidence::Kind::None) scheduler_.hold(server, uv_now(host_.loop()));
  const char* counts = e.kind == AutonatEvidence::Kind::Public    ? "public"
                       : e.kind == AutonatEvidence::Kind::Private ? "private"
                                                                  : "nothing";
  spdlog::info("autonat probe result server={} status={} addr={} says={} text={}", server.to_base58(),
               e.status ? to_string(*e.status) : "none", addr_or_none(e.addr), counts, log_quote(e.detail));
  if (e.status == AutonatStatus::BadRequest) {
    spdlog::warn("autonat server found our request bad server={} text={}", server.to_base58(), log_quote(e.detail));
  }
  if (!tracker_.record(server, e)) return;
  spdlog::info("autonat reachability={} addr={} confidence={}", to_string(tracker_.reachability()),
               addr_or_none(tracker_.public_addr()), tracker_.confidence());
  for (auto& obs : observers_) obs(tracker_.reachability(), tracker_.public_addr());
}

}  // namespace punchgate
