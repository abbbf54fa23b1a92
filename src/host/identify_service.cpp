#include "punchgate/host/identify_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/host/protocol_ids.hpp"

#include <fmt/ranges.h>

#include <memory>

namespace punchgate {

namespace {

// Collects the identify stream until the peer finishes it, bounded by kMaxIdentifyStreamSize.
struct IdentifyRead {
  NegotiatedStream ns;
  Bytes buf;
  bool done = false;
};

std::string addrs_text(const std::vector<Bytes>& raw) {
  std::vector<std::string> out;
  for (const Bytes& b : raw) {
    auto m = Multiaddr::from_bytes(b);
    out.push_back(m ? m->to_string() : "<invalid>");
  }
  return fmt::format("[{}]", fmt::join(out, ","));
}

}  // namespace

IdentifyService::IdentifyService(Host& host) : host_(host) {
  host_.set_stream_handler(std::string(kIdentifyProtocol), [this](NegotiatedStream ns) { serve(std::move(ns)); });
  host_.set_stream_handler(std::string(kIdentifyPushProtocol),
                           [this](NegotiatedStream ns) { receive_push(std::move(ns)); });
}

IdentifyMessage IdentifyService::our_message(const ConnectionPtr& conn) const {
  IdentifyMessage m;
  m.protocol_version = std::string(kIdentifyProtocolVersion);
  m.agent_version = agent_version();
  m.public_key = host_.identity().public_key().to_protobuf();
  for (const Multiaddr& a : host_.advertised_addrs()) m.listen_addrs.push_back(a.to_bytes());
  if (conn) m.observed_addr = conn->remote_addr().to_bytes();
  m.protocols = host_.protocols();
  return m;
}

void IdentifyService::serve(NegotiatedStream ns) {
  Bytes msg = our_message(ns.conn).encode_framed();
  StreamPtr s = ns.stream;
  // The requester sends nothing; ignore whatever arrives and finish our side after the message.
  s->set_handlers({.on_data = [](BytesView) {}, .on_fin = nullptr, .on_reset = nullptr, .on_writable = nullptr,
                   .on_closed = nullptr});
  size_t n = s->write(msg);
  if (n < msg.size()) {
    spdlog::warn("identify response too large peer={} size={}", ns.conn->remote_peer().to_base58(), msg.size());
    s->reset(0);
    return;
  }
  s->shutdown_write();
}

void IdentifyService::request(const ConnectionPtr& conn) {
  host_.open_stream(conn, {std::string(kIdentifyProtocol)}, [this, conn](Result<NegotiatedStream> r) {
    if (!r) {
      spdlog::debug("identify request failed peer={} error={}", conn->remote_peer().to_base58(), r.error().message);
      return;
    }
    // We send nothing on an identify request; close our side so the peer sees a clean stream.
    r->stream->shutdown_write();
    read_message(std::move(*r), false);
  });
}

void IdentifyService::push_all() {
  for (const ConnectionPtr& conn : host_.connections()) {
    if (conn->is_closed()) continue;
    host_.open_stream(conn, {std::string(kIdentifyPushProtocol)}, [this, conn](Result<NegotiatedStream> r) {
      if (!r) {
        spdlog::debug("identify push failed peer={} error={}", conn->remote_peer().to_base58(), r.error().message);
        return;
      }
      Bytes msg = our_message(conn).encode_framed();
      r->stream->set_handlers({.on_data = [](BytesView) {}});
      if (r->stream->write(msg) < msg.size()) {
        r->stream->reset(0);
        return;
      }
      r->stream->shutdown_write();
    });
  }
}

void IdentifyService::receive_push(NegotiatedStream ns) { read_message(std::move(ns), true); }

void IdentifyService::read_message(NegotiatedStream ns, bool push) {
  auto st = std::make_shared<IdentifyRead>();
  st->ns = std::move(ns);
  st->buf = std::move(st->ns.leftover);
  auto finish = [this, st, push] {
    if (st->done) return;
    st->done = true;
    auto msg = IdentifyMessage::decode_stream(st->buf);
    if (!msg) {
      spdlog::warn("identify invalid peer={} error={}", st->ns.conn->remote_peer().to_base58(), msg.error().message);
      return;
    }
    record(st->ns.conn, *msg, push);
  };
  st->ns.stream->set_handlers({
      .on_data =
          [this, st](BytesView d) {
            if (st->done) return;
            if (st->buf.size() + d.size() > kMaxIdentifyStreamSize) {
              st->done = true;
              spdlog::warn("identify too large peer={}", st->ns.conn->remote_peer().to_base58());
              st->ns.stream->reset(0);
              return;
            }
            st->buf.append(d);
          },
      .on_fin = finish,
      .on_reset = [st](uint64_t) { st->done = true; },
      .on_writable = nullptr,
      // Some peers close without a clean FIN on our read side; parse what arrived.
      .on_closed = finish,
  });
}

void IdentifyService::record(const ConnectionPtr& conn, const IdentifyMessage& msg, bool push) {
  const PeerId& peer = conn->remote_peer();
  if (msg.public_key) {
    // The key must be the one the connection authenticated; anything else is a lie.
    auto pk = PublicKey::from_protobuf(*msg.public_key);
    if (!pk || pk->peer_id() != peer) {
      spdlog::warn("identify public key does not match peer={}", peer.to_base58());
      return;
    }
  }
  PeerInfo info;
  for (const Bytes& b : msg.listen_addrs) {
    if (auto m = Multiaddr::from_bytes(b)) info.addrs.insert(m->without_peer_id());
  }
  info.protocols = msg.protocols;
  info.protocol_version = msg.protocol_version.value_or("");
  info.agent_version = msg.agent_version.value_or("");
  if (push) {
    // A push may be partial: keep what it does not mention.
    if (const PeerInfo* cur = host_.peer_store().get(peer)) {
      if (!msg.protocol_version) info.protocol_version = cur->protocol_version;
      if (!msg.agent_version) info.agent_version = cur->agent_version;
      if (msg.protocols.empty()) info.protocols = cur->protocols;
    }
  }
  host_.peer_store().set_identify(peer, info);
  std::string observed = "none";
  if (msg.observed_addr) {
    if (auto m = Multiaddr::from_bytes(*msg.observed_addr)) {
      observed = m->to_string();
      // Through a relay the peer sees the circuit, not our public address.
      if (!conn->is_relayed()) host_.peer_store().add_observed(*m, peer);
    }
  }
  spdlog::info("identify received peer={} protocol_version=\"{}\" agent_version=\"{}\" observed_addr={} "
               "listen_addrs={} protocols=[{}]{}",
               peer.to_base58(), info.protocol_version, info.agent_version, observed, addrs_text(msg.listen_addrs),
               fmt::join(info.protocols, ","), push ? " push=true" : "");
  IdentifyResult result{peer, msg};
  for (auto& obs : observers_) obs(result);
}

}  // namespace punchgate
