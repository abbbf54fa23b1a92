// noise-libp2p wire framing (libp2p/specs noise/README.md, "Wire Format"): every Noise message,
// handshake or transport, travels as a 2-byte big-endian length followed by that many bytes.
// A transport message is ChaChaPoly ciphertext plus its 16-byte tag, so one frame carries at most
// 65535 - 16 = 65519 bytes of plaintext. Sans-IO: the encoder turns plaintext into frames, the
// decoder turns any chunking of received bytes into plaintext.
#pragma once

#include "crypto/noise_state.hpp"
#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <cstdint>
#include <optional>

namespace punchgate {

inline constexpr size_t kNoiseFrameHeaderLen = 2;
inline constexpr size_t kNoiseMaxPlaintextPerFrame = kNoiseMaxMessageLen - kNoiseTagLen;  // 65519

// Appends the 2-byte big-endian length of `message` and `message`. Callers keep messages within
// kNoiseMaxMessageLen; a longer one is a programming error (asserted).
void append_noise_frame(Bytes& out, BytesView message);

// Incremental reader of 2-byte length-prefixed frames. It buffers at most one frame (65535
// bytes): the length field cannot express more.
class NoiseFrameReader {
 public:
  // Consumes bytes from the front of `data` until one frame is complete (returned) or `data` is
  // used up (nullopt). The frame stays valid until the next call or until `data`'s buffer changes,
  // whichever comes first (a frame wholly inside `data` is returned without a copy).
  std::optional<BytesView> next(BytesView& data);
  // No partial frame is buffered: a clean place for the byte stream to end.
  bool idle() const { return header_have_ == 0; }

 private:
  uint8_t header_[kNoiseFrameHeaderLen] = {};
  size_t header_have_ = 0;
  Bytes body_;
  bool frame_done_ = false;  // body_ holds the frame handed out by the last call; cleared on the next
};

// Encrypts outgoing plaintext into frames, splitting writes larger than 65519 bytes.
class NoiseTransportEncoder {
 public:
  // `send` must be keyed (a moved-from or default CipherState makes every encode() fail).
  explicit NoiseTransportEncoder(NoiseCipherState send) : cipher_(std::move(send)) {}

  // Appends the frames for `plaintext` to `out` (nothing for empty plaintext). Fails, leaving
  // `out` unchanged and the encoder failed, when the nonces left cannot cover every frame.
  Status encode(BytesView plaintext, Bytes& out);
  Result<Bytes> encode(BytesView plaintext);

  bool failed() const { return failed_; }
  uint64_t messages_sent() const { return cipher_.nonce(); }
  // Tests only: the cipher, to move its nonce near the limit.
  NoiseCipherState& cipher_for_testing() { return cipher_; }

 private:
  NoiseCipherState cipher_;
  bool failed_ = false;
};

// Decrypts incoming frames fed in arbitrary chunks. After any error it stays failed: Noise gives
// no way to resynchronise a stream once a frame does not authenticate.
class NoiseTransportDecoder {
 public:
  explicit NoiseTransportDecoder(NoiseCipherState recv) : cipher_(std::move(recv)) {}

  // Appends the plaintext of every frame completed by `data` to `plaintext`. On error the
  // plaintext of the frames before the bad one has still been appended.
  Status decode(BytesView data, Bytes& plaintext);
  Result<Bytes> decode(BytesView data);

  bool failed() const { return failed_; }
  bool idle() const { return reader_.idle(); }
  uint64_t messages_received() const { return cipher_.nonce(); }

 private:
  Error fail(Error e);

  NoiseCipherState cipher_;
  NoiseFrameReader reader_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace punchgate
