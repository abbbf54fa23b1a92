#include "holepunch/dcutr_exchange.hpp"

#include <algorithm>

namespace punchgate {

namespace {

std::vector<Bytes> to_raw(const std::vector<Multiaddr>& addrs) {
  std::vector<Bytes> out;
  for (const Multiaddr& a : addrs) {
    if (out.size() == kMaxDcutrAddrs) break;
    out.push_back(a.to_bytes());
  }
  return out;
}

Bytes framed(DcutrType type, const std::vector<Bytes>& addrs) {
  DcutrMessage m;
  m.type = type;
  m.obs_addrs = addrs;
  return m.encode_framed();
}

// Feeds `data` and returns the next whole message, if one is complete. The peer is expected to
// send one message and wait, so more than one at once is a protocol error.
Result<std::optional<DcutrMessage>> next_message(UvarintFrameReader& reader, BytesView data) {
  if (Status s = reader.feed(data); !s) return s.error();
  auto frame = reader.next();
  if (!frame) return frame.error();
  if (!*frame) return std::optional<DcutrMessage>{};
  if (!reader.idle()) return make_error("dcutr peer sent a second message before our answer");
  auto msg = DcutrMessage::decode(**frame);
  if (!msg) return msg.error();
  return std::optional<DcutrMessage>{std::move(*msg)};
}

}  // namespace

bool dcutr_punchable(const Multiaddr& a) {
  return !a.is_relayed() && !a.is_loopback_ip() && !a.is_unspecified_ip() && quic_endpoint_of(a);
}

std::vector<Multiaddr> dcutr_dialable(const std::vector<Bytes>& raw) {
  std::vector<Multiaddr> out;
  for (const Bytes& b : raw) {
    auto a = Multiaddr::from_bytes(b);
    if (!a || !dcutr_punchable(*a)) continue;
    Multiaddr bare = a->without_peer_id();
    if (std::find(out.begin(), out.end(), bare) == out.end()) out.push_back(std::move(bare));
  }
  return out;
}

// ---- initiator ----

DcutrInitiator::DcutrInitiator(std::vector<Multiaddr> our_addrs) : our_addrs_(to_raw(our_addrs)) {}

Error DcutrInitiator::fail(Error e) {
  failed_ = true;
  return e;
}

Bytes DcutrInitiator::connect(uint64_t now_ms) {
  if (failed_ || awaiting_ || attempt_ >= kMaxAttempts) return {};
  ++attempt_;
  awaiting_ = true;
  sent_at_ms_ = now_ms;
  return framed(DcutrType::Connect, our_addrs_);
}

void DcutrInitiator::new_stream() {
  reader_ = UvarintFrameReader{kMaxDcutrMessageSize};
  if (awaiting_) {
    awaiting_ = false;
    --attempt_;
  }
}

Result<DcutrStep> DcutrInitiator::feed(BytesView data, uint64_t now_ms) {
  if (failed_) return make_error("dcutr exchange failed earlier");
  if (!awaiting_) {
    if (data.empty()) return DcutrStep{};
    return fail(make_error("dcutr peer sent data out of turn"));
  }
  auto msg = next_message(reader_, data);
  if (!msg) return fail(msg.error());
  if (!*msg) return DcutrStep{};
  if ((*msg)->type != DcutrType::Connect) return fail(make_error("dcutr peer answered CONNECT with SYNC"));
  awaiting_ = false;
  DcutrPunch punch;
  punch.remote_addrs = dcutr_dialable((*msg)->obs_addrs);
  if (punch.remote_addrs.empty()) return fail(make_error("dcutr peer offered no dialable address"));
  punch.rtt_ms = now_ms >= sent_at_ms_ ? now_ms - sent_at_ms_ : 0;
  punch.delay_ms = punch.rtt_ms / 2;
  punch.attempt = attempt_;
  return DcutrStep{framed(DcutrType::Sync, {}), std::move(punch)};
}

// ---- responder ----

DcutrResponder::DcutrResponder(std::vector<Multiaddr> our_addrs) : our_addrs_(to_raw(our_addrs)) {}

Error DcutrResponder::fail(Error e) {
  failed_ = true;
  return e;
}

Result<DcutrStep> DcutrResponder::feed(BytesView data) {
  if (failed_) return make_error("dcutr exchange failed earlier");
  auto msg = next_message(reader_, data);
  if (!msg) return fail(msg.error());
  if (!*msg) return DcutrStep{};
  if ((*msg)->type == DcutrType::Connect) {
    if (connected_) return fail(make_error("dcutr peer sent CONNECT twice without SYNC"));
    if (attempt_ == DcutrInitiator::kMaxAttempts) return fail(make_error("dcutr peer retried past {} attempts",
                                                                         DcutrInitiator::kMaxAttempts));
    remote_ = dcutr_dialable((*msg)->obs_addrs);
    if (remote_.empty()) return fail(make_error("dcutr peer offered no dialable address"));
    connected_ = true;
    ++attempt_;
    return DcutrStep{framed(DcutrType::Connect, our_addrs_), std::nullopt};
  }
  if (!connected_) return fail(make_error("dcutr peer sent SYNC before CONNECT"));
  connected_ = false;
  DcutrPunch punch;
  punch.remote_addrs = remote_;
  punch.attempt = attempt_;
  return DcutrStep{{}, std::move(punch)};
}

}  // namespace punchgate
