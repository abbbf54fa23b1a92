// noise-libp2p handshake (libp2p/specs noise/README.md r5) as a sans-IO state machine:
// Noise_XX_25519_ChaChaPoly_SHA256 with an empty prologue, a fresh X25519 static key per
// handshake (never the identity key), and the static key authenticated by the signed
// NoiseHandshakePayload in messages 2 and 3.
//
// Framing is done here: feed() takes raw bytes from the connection in any chunking and the bytes
// it returns are ready to write (each handshake message with its 2-byte big-endian length).
//
//   initiator                                responder
//   start()        -> [e]                 -> feed()  -> [e, ee, s, es, payload(responder)]
//   feed()         -> [s, se, payload(initiator)], session  -> feed()  -> session, rest
//
// The completing feed() returns the NoiseSession (verified remote peer, send/recv ciphers). On
// the responder it also returns `rest`: bytes the initiator sent after message 3 (its first
// transport frames may share a packet with it), which belong to NoiseTransportDecoder.
#pragma once

#include "crypto/noise_payload.hpp"
#include "crypto/noise_state.hpp"
#include "crypto/noise_transport.hpp"
#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <optional>
#include <string_view>

namespace punchgate {

inline constexpr std::string_view kNoiseProtocolId = "/noise";
// Signed with the identity key, followed by the 32-byte Noise static public key.
inline constexpr std::string_view kNoiseStaticKeySigPrefix = "noise-libp2p-static-key:";

// What a finished handshake yields.
struct NoiseSession {
  PeerId remote_peer;                               // derived from remote_public_key, signature checked
  PublicKey remote_public_key;
  std::optional<NoiseExtensions> remote_extensions;  // as sent; usable only now that it is authenticated
  Bytes handshake_hash;                             // Noise h, for channel binding
  NoiseCipherState send;                            // for NoiseTransportEncoder
  NoiseCipherState recv;                            // for NoiseTransportDecoder
};

struct NoiseHandshakeStep {
  Bytes to_send;                        // framed handshake message to write; may be empty
  std::optional<NoiseSession> session;  // set by the call that completes the handshake
  Bytes rest;                           // responder, on completion: bytes after message 3
};

class NoiseHandshake {
 public:
  // `expected_remote`: the peer we dialed; any other authenticated peer fails the handshake.
  // `extensions`: sent in our payload (message 3 as initiator, message 2 as responder).
  static NoiseHandshake initiator(const Identity& identity, std::optional<PeerId> expected_remote,
                                  std::optional<NoiseExtensions> extensions = std::nullopt);
  static NoiseHandshake responder(const Identity& identity,
                                  std::optional<NoiseExtensions> extensions = std::nullopt);

  // Tests only: fixed X25519 static and ephemeral private keys instead of fresh random ones.
  struct FixedKeys {
    NoiseSecret static_secret;
    NoiseSecret ephemeral_secret;
  };
  static NoiseHandshake initiator_with_keys(const Identity& identity, std::optional<PeerId> expected_remote,
                                            FixedKeys keys, std::optional<NoiseExtensions> extensions = std::nullopt);
  static NoiseHandshake responder_with_keys(const Identity& identity, FixedKeys keys,
                                            std::optional<NoiseExtensions> extensions = std::nullopt);

  // Initiator: the framed first message, exactly once. Responder: nothing to send (empty).
  Result<Bytes> start();
  // Feeds received bytes. Errors are final (bad framing or lengths, decryption failure, bad or
  // missing payload fields, bad signature, unexpected peer, data out of turn or after completion).
  Result<NoiseHandshakeStep> feed(BytesView data);

  bool is_initiator() const { return initiator_; }
  bool complete() const { return complete_; }
  bool failed() const { return failed_; }
  BytesView local_static_public() const { return state_.local_static_public(); }

 private:
  NoiseHandshake(bool initiator, const Identity& identity, std::optional<PeerId> expected_remote,
                 std::optional<NoiseExtensions> extensions, std::optional<FixedKeys> keys);

  Error fail(Error e);
  // Checks the remote payload against the remote static key; fills the session's identity.
  Status verify_remote(BytesView payload);
  Result<NoiseSession> finish();

  bool initiator_;
  NoiseXXHandshakeState state_;
  Bytes local_payload_;  // our signed NoiseHandshakePayload, built once at construction
  std::optional<PeerId> expected_remote_;
  NoiseFrameReader reader_;
  PeerId remote_peer_;
  PublicKey remote_key_;
  std::optional<NoiseExtensions> remote_extensions_;
  bool started_ = false;
  bool complete_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace punchgate
