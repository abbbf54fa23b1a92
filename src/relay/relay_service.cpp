#include "relay/relay_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "relay/framed_read.hpp"

#include <chrono>

namespace punchgate {

namespace {

constexpr uint64_t kMessageTimeoutMs = 10'000;
constexpr uint64_t kExpirySweepMs = 60'000;

}  // namespace

uint64_t unix_now() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void send_and_finish(const StreamPtr& stream, const Bytes& framed) {
  // Relay messages are at most 4 KiB: a fresh stream always has room for one.
  if (stream->write(framed) < framed.size()) {
    stream->reset(0);
    return;
  }
  stream->shutdown_write();
}

RelayService::RelayService(Host& host, RelayLimits limits, bool serving)
    : host_(host), server_(host.identity(), limits), expiry_(std::make_unique<Timer>(host.loop())) {
  set_serving(serving);
  host_.add_connection_observer([this, alive = alive_](const ConnectionPtr& c, bool opened, const std::string&) {
    if (!*alive || opened || c->is_relayed()) return;
    // A reservation lives as long as the peer's connection to us (go-libp2p).
    if (!host_.connection_to(c->remote_peer()) && server_.peer_disconnected(c->remote_peer())) {
      spdlog::info("relay reservation dropped peer={} reason=disconnected", c->remote_peer().to_base58());
    }
  });
  expiry_->start(kExpirySweepMs, kExpirySweepMs, [this] {
    for (const PeerId& p : server_.expire(unix_now())) {
      spdlog::info("relay reservation expired peer={}", p.to_base58());
    }
  });
}

void RelayService::set_serving(bool on) {
  if (on == serving_) return;
  serving_ = on;
  if (!on) return host_.remove_stream_handler(std::string(kRelayHopProtocol));
  host_.set_stream_handler(std::string(kRelayHopProtocol), [this, alive = alive_](NegotiatedStream ns) {
    if (*alive) on_hop(std::move(ns));
  });
  host_.identify().push_all();
}

RelayService::~RelayService() {
  *alive_ = false;
  stop();
}

void RelayService::stop() {
  expiry_->stop();
  auto circuits = std::move(circuits_);
  circuits_.clear();
  for (auto& [id, splice] : circuits) splice->abort("relay shutting down");
}

std::vector<Multiaddr> RelayService::public_addrs() const {
  std::vector<Multiaddr> out;
  for (const Multiaddr& a : host_.listen_addrs()) {
    if (!a.is_relayed()) out.push_back(a);
  }
  for (const Multiaddr& a : host_.peer_store().observed_addrs(2)) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  return out;
}

void RelayService::on_hop(NegotiatedStream ns) {
  ConnectionPtr conn = ns.conn;
  StreamPtr stream = ns.stream;
  if (conn->is_relayed()) {
    // No relaying through relays: circuits would chain without bound (go-libp2p refuses too).
    send_and_finish(stream, hop_status_reply(CircuitStatus::PermissionDenied).encode_framed());
    return;
  }
  read_framed_message(host_.loop(), stream, std::move(ns.leftover), kMaxCircuitMessageSize, kMessageTimeoutMs,
                      [this, alive = alive_, conn, stream](Result<FramedMessage> r) {
                        if (!*alive) return;
                        if (!r) {
                          spdlog::debug("relay hop read failed peer={} error={}", conn->remote_peer().to_base58(),
                                        log_quote(r.error().message));
                          stream->reset(0);
                          return;
                        }
                        auto msg = HopMessage::decode(r->message);
                        if (!msg) {
                          send_and_finish(stream, hop_status_reply(CircuitStatus::MalformedMessage).encode_framed());
                          return;
                        }
                        if (msg->type == HopMessageType::Reserve) return on_reserve(conn, stream);
                        if (msg->type == HopMessageType::Connect) {
                          return on_connect(conn, stream, *msg, std::move(r->rest));
                        }
                        send_and_finish(stream, hop_status_reply(CircuitStatus::UnexpectedMessage).encode_framed());
                      });
}

void RelayService::on_reserve(const ConnectionPtr& conn, const StreamPtr& stream) {
  const PeerId& peer = conn->remote_peer();
  HopReserveResult r = server_.reserve(peer, public_addrs(), unix_now());
  if (r.accepted) {
    spdlog::info("relay reservation granted peer={} expires={} reservations={}", peer.to_base58(), r.expire,
                 server_.reservation_count());
  } else {
    spdlog::warn("relay reservation refused peer={} status={} reservations={}", peer.to_base58(),
                 to_string(r.reply.status.value_or(CircuitStatus::Unused)), server_.reservation_count());
  }
  send_and_finish(stream, r.reply.encode_framed());
}

void RelayService::on_connect(const ConnectionPtr& conn, const StreamPtr& stream, const HopMessage& msg, Bytes rest) {
  const PeerId& src = conn->remote_peer();
  HopConnectResult r = server_.connect(src, msg, unix_now());
  if (r.refusal) {
    std::string dst = "?";
    if (msg.peer) {
      if (auto p = PeerId::from_bytes(msg.peer->id)) dst = p->to_base58();
    }
    spdlog::info("circuit refused src={} dst={} status={}", src.to_base58(), dst,
                 to_string(r.refusal->status.value_or(CircuitStatus::Unused)));
    send_and_finish(stream, r.refusal->encode_framed());
    return;
  }
  open_stop(std::move(*r.admitted), stream, std::move(rest));
}

void RelayService::refuse_circuit(uint64_t circuit_id, const StreamPtr& src_stream, CircuitStatus status,
                                  const std::string& why) {
  server_.circuit_closed(circuit_id);
  spdlog::info("circuit failed reason={}", log_quote(why));
  send_and_finish(src_stream, hop_status_reply(status).encode_framed());
}

void RelayService::open_stop(HopConnectAdmission a, StreamPtr src_stream, Bytes src_rest) {
  ConnectionPtr dst_conn = host_.connection_to(a.dst);
  if (!dst_conn || dst_conn->is_relayed()) {
    return refuse_circuit(a.circuit_id, src_stream, CircuitStatus::ConnectionFailed,
                          "destination " + a.dst.to_base58() + " is not connected");
  }
  host_.open_stream(dst_conn, {std::string(kRelayStopProtocol)},
                    [this, alive = alive_, a, src_stream, src_rest](Result<NegotiatedStream> r) mutable {
    if (!*alive) return;
    if (!r) {
      return refuse_circuit(a.circuit_id, src_stream, CircuitStatus::ConnectionFailed,
                            "stop stream to " + a.dst.to_base58() + ": " + r.error().message);
    }
    StopMessage connect;
    connect.type = StopMessageType::Connect;
    connect.peer = CircuitPeer{a.src.bytes(), {}};
    connect.limit = a.limit;
    StreamPtr dst_stream = r->stream;
    Bytes framed = connect.encode_framed();
    if (dst_stream->write(framed) < framed.size()) {
      dst_stream->reset(0);
      return refuse_circuit(a.circuit_id, src_stream, CircuitStatus::ConnectionFailed, "stop stream has no room");
    }
    read_framed_message(host_.loop(), dst_stream, std::move(r->leftover), kMaxCircuitMessageSize, kMessageTimeoutMs,
                        [this, alive, a, src_stream, src_rest, dst_stream](Result<FramedMessage> m) mutable {
      if (!*alive) return;
      if (!m) {
        dst_stream->reset(0);
        return refuse_circuit(a.circuit_id, src_stream, CircuitStatus::ConnectionFailed,
                              "no stop reply from " + a.dst.to_base58() + ": " + m.error().message);
      }
      auto reply = StopMessage::decode(m->message);
      if (!reply || reply->type != StopMessageType::StatusReply || reply->status != CircuitStatus::Ok) {
        dst_stream->reset(0);
        std::string why = reply ? to_string(reply->status.value_or(CircuitStatus::Unused)) : reply.error().message;
        return refuse_circuit(a.circuit_id, src_stream, CircuitStatus::ConnectionFailed,
                              "destination " + a.dst.to_base58() + " refused: " + why);
      }
      start_splice(a, src_stream, std::move(src_rest), dst_stream, std::move(m->rest));
    });
  });
}

void RelayService::start_splice(const HopConnectAdmission& a, StreamPtr src, Bytes src_rest, StreamPtr dst,
                                Bytes dst_rest) {
  HopMessage ok = hop_status_reply(CircuitStatus::Ok);
  ok.limit = a.limit;
  Bytes framed = ok.encode_framed();
  if (src->write(framed) < framed.size()) {
    dst->reset(0);
    src->reset(0);
    server_.circuit_closed(a.circuit_id);
    return;
  }
  spdlog::info("circuit opened src={} dst={} circuits={}", a.src.to_base58(), a.dst.to_base58(),
               server_.circuit_count());
  uint64_t id = a.circuit_id;
  std::string src_id = a.src.to_base58(), dst_id = a.dst.to_base58();
  const RelayLimits& limits = server_.limits();
  auto splice = CircuitSplice::start(
      host_.loop(), {src, dst, std::move(src_rest), std::move(dst_rest)}, limits.circuit_data_bytes,
      limits.circuit_duration_s,
      [this, alive = alive_, id, src_id, dst_id](const std::string& reason, uint64_t up, uint64_t down) {
        if (!*alive) return;
        server_.circuit_closed(id);
        circuits_.erase(id);
        spdlog::info("circuit closed src={} dst={} bytes={} bytes_src_to_dst={} bytes_dst_to_src={} reason={}",
                     src_id, dst_id, up + down, up, down, log_quote(reason));
      });
  // The splice may already be over (a limit of 0 bytes left, a reset end).
  if (!splice->finished()) circuits_[id] = splice;
}

}  // namespace punchgate
