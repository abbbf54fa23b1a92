#include "crypto/noise_handshake.hpp"

#include <utility>

namespace punchgate {
namespace {

using Role = NoiseXXHandshakeState::Role;

NoiseXXHandshakeState make_state(bool initiator, std::optional<NoiseHandshake::FixedKeys>& keys) {
  const Role role = initiator ? Role::Initiator : Role::Responder;
  // libp2p uses an empty prologue: nothing outside the handshake is bound into it.
  if (!keys) return NoiseXXHandshakeState(role, {});
  return NoiseXXHandshakeState(role, {}, std::move(keys->static_secret), std::move(keys->ephemeral_secret));
}

Bytes static_key_signed_message(BytesView static_public) {
  Bytes msg(kNoiseStaticKeySigPrefix);
  msg.append(static_public);
  return msg;
}

}  // namespace

NoiseHandshake::NoiseHandshake(bool initiator, const Identity& identity, std::optional<PeerId> expected_remote,
                               std::optional<NoiseExtensions> extensions, std::optional<FixedKeys> keys)
    : initiator_(initiator), state_(make_state(initiator, keys)), expected_remote_(std::move(expected_remote)) {
  // The payload depends only on our identity and static key, so it is signed now and the
  // identity's secret is not kept.
  NoiseHandshakePayload p;
  p.identity_key = identity.public_key().to_protobuf();
  p.identity_sig = identity.sign(static_key_signed_message(state_.local_static_public()));
  p.extensions = std::move(extensions);
  local_payload_ = p.encode();
}

NoiseHandshake NoiseHandshake::initiator(const Identity& identity, std::optional<PeerId> expected_remote,
                                         std::optional<NoiseExtensions> extensions) {
  return NoiseHandshake(true, identity, std::move(expected_remote), std::move(extensions), std::nullopt);
}

NoiseHandshake NoiseHandshake::responder(const Identity& identity, std::optional<NoiseExtensions> extensions) {
  return NoiseHandshake(false, identity, std::nullopt, std::move(extensions), std::nullopt);
}

NoiseHandshake NoiseHandshake::initiator_with_keys(const Identity& identity, std::optional<PeerId> expected_remote,
                                                   FixedKeys keys, std::optional<NoiseExtensions> extensions) {
  return NoiseHandshake(true, identity, std::move(expected_remote), std::move(extensions), std::move(keys));
}

NoiseHandshake NoiseHandshake::responder_with_keys(const Identity& identity, FixedKeys keys,
                                                   std::optional<NoiseExtensions> extensions) {
  return NoiseHandshake(false, identity, std::nullopt, std::move(extensions), std::move(keys));
}

Error NoiseHandshake::fail(Error e) {
  failed_ = true;
  error_ = e.message;
  return e;
}

Result<Bytes> NoiseHandshake::start() {
  if (failed_) return Error{error_};
  if (!initiator_) return Bytes{};
  if (started_) return make_error("noise handshake already started");
  started_ = true;
  // Message 1 carries no payload: it is sent in the clear, so no extensions or identity yet.
  auto msg = state_.write_message({});
  if (!msg) return fail(msg.error());
  Bytes out;
  append_noise_frame(out, *msg);
  return out;
}

Status NoiseHandshake::verify_remote(BytesView payload) {
  auto p = NoiseHandshakePayload::decode(payload);
  if (!p) return p.error();
  auto key = PublicKey::from_protobuf(p->identity_key);
  if (!key) return make_error("noise payload identity_key: {}", key.error().message);
  if (key->type != KeyType::Ed25519)
    return make_error("noise payload identity key type {} is not supported (only Ed25519)", key_type_name(key->type));
  const auto rs = state_.remote_static();
  if (!rs) return make_error("noise handshake: no remote static key");  // unreachable after a good read
  if (!key->verify(static_key_signed_message(*rs), p->identity_sig))
    return make_error("noise payload identity_sig does not sign the peer's Noise static key");
  PeerId peer = key->peer_id();
  if (expected_remote_ && peer != *expected_remote_)
    return make_error("noise handshake: peer id mismatch: dialed {}, remote is {}", expected_remote_->to_base58(),
                      peer.to_base58());
  remote_peer_ = std::move(peer);
  remote_key_ = std::move(*key);
  remote_extensions_ = std::move(p->extensions);
  return {};
}

Result<NoiseSession> NoiseHandshake::finish() {
  auto ciphers = state_.split();
  if (!ciphers) return ciphers.error();
  complete_ = true;
  return NoiseSession{std::move(remote_peer_),       std::move(remote_key_),
                      std::move(remote_extensions_), Bytes(state_.handshake_hash()),
                      std::move(ciphers->first),     std::move(ciphers->second)};
}

Result<NoiseHandshakeStep> NoiseHandshake::feed(BytesView data) {
  if (failed_) return Error{error_};
  if (complete_) return fail(make_error("noise handshake received data after completion"));
  if (initiator_ && !started_) return fail(make_error("noise handshake: initiator received data before start()"));

  NoiseHandshakeStep step;
  auto frame = reader_.next(data);
  if (!frame) return step;  // message incomplete: wait for more bytes

  auto payload = state_.read_message(*frame);
  if (!payload) return fail(payload.error());

  if (state_.message_index() == 1) {
    // Responder after message 1 (its payload, unauthenticated and unused, is ignored).
    // The initiator cannot send more before it has our reply.
    if (!data.empty()) return fail(make_error("noise handshake: {} unexpected bytes after message 1", data.size()));
    auto msg = state_.write_message(local_payload_);
    if (!msg) return fail(msg.error());
    append_noise_frame(step.to_send, *msg);
    return step;
  }

  if (auto st = verify_remote(*payload); !st) return fail(st.error());
  if (initiator_) {
    // After message 2 the responder has nothing to send until it reads message 3.
    if (!data.empty()) return fail(make_error("noise handshake: {} unexpected bytes after message 2", data.size()));
    auto msg = state_.write_message(local_payload_);
    if (!msg) return fail(msg.error());
    append_noise_frame(step.to_send, *msg);
  } else {
    step.rest = Bytes(data);
  }
  auto session = finish();
  if (!session) return fail(session.error());
  step.session = std::move(*session);
  return step;
}

}  // namespace punchgate
