// The libp2p connection upgrade for a plain byte stream (a relayed circuit), as a sans-IO state
// machine: multistream-select `/noise`, the Noise XX handshake, then multistream-select
// `/yamux/1.0.0` inside the encrypted channel, then a yamux session (libp2p/specs connections/,
// noise/, yamux/). Feed it the raw bytes read from the byte stream, write what take_output()
// returns, and use mux() once ready().
//
// The side that opened the circuit (the HOP CONNECT sender) is the dialer: it proposes the
// protocols, is the Noise initiator and the yamux client, as in js-libp2p and go-libp2p.
#pragma once

#include "crypto/noise_handshake.hpp"
#include "crypto/noise_transport.hpp"
#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multistream.hpp"
#include "transport/yamux_session.hpp"

#include <optional>

namespace punchgate {

class SecureMuxSession {
 public:
  enum class Phase { SelectNoise, Handshake, SelectMuxer, Ready, Failed };

  // `expected_remote`: the peer the circuit was opened to; any other one fails the handshake.
  static SecureMuxSession dialer(const Identity& identity, const PeerId& expected_remote, YamuxConfig mux = {});
  static SecureMuxSession listener(const Identity& identity, YamuxConfig mux = {});

  // Raw bytes received on the underlying byte stream, in any chunking. Errors are final.
  Status feed(BytesView raw);
  // Raw bytes to write to the byte stream: everything queued, or at most `max` of it. In the
  // Ready phase this also encrypts whatever yamux has queued.
  Bytes take_output(size_t max = SIZE_MAX);
  // Raw output not yet taken, plus yamux output not yet encrypted.
  size_t pending_output() const;

  Phase phase() const { return phase_; }
  bool ready() const { return phase_ == Phase::Ready; }
  bool failed() const { return phase_ == Phase::Failed; }
  const std::string& error() const { return error_; }
  // Known once the handshake is done.
  const std::optional<PeerId>& remote_peer() const { return remote_peer_; }
  // The yamux session; valid once ready() (it exists from the start so config is kept in one place).
  YamuxSession& mux() { return mux_; }
  const YamuxSession& mux() const { return mux_; }
  bool is_dialer() const { return dialer_; }

 private:
  SecureMuxSession(bool dialer, const Identity& identity, std::optional<PeerId> expected_remote, YamuxConfig mux);

  Status fail(Error e);
  Status feed_plain(BytesView plain);    // decrypted bytes: muxer negotiation, then yamux
  Status on_handshake(BytesView raw);
  Status encrypt(BytesView plain);       // into out_
  void drain_mux_output();

  bool dialer_;
  Phase phase_ = Phase::SelectNoise;
  std::optional<MultistreamDialer> outer_dialer_;
  std::optional<MultistreamListener> outer_listener_;
  NoiseHandshake handshake_;
  std::optional<NoiseTransportEncoder> encoder_;
  std::optional<NoiseTransportDecoder> decoder_;
  std::optional<MultistreamDialer> inner_dialer_;
  std::optional<MultistreamListener> inner_listener_;
  YamuxSession mux_;
  std::optional<PeerId> remote_peer_;
  Bytes out_;        // raw bytes ready to write
  size_t out_head_ = 0;  // start of the untaken part of out_
  std::string error_;
};

}  // namespace punchgate
