// The Noise Protocol Framework (rev 34, noiseprotocol.org/noise.html) objects behind noise-libp2p:
// CipherState, SymmetricState and a HandshakeState for the one pattern libp2p uses,
// Noise_XX_25519_ChaChaPoly_SHA256. Raw Noise: any prologue and any payloads, so the published
// test vectors run against it; the libp2p rules (empty prologue, signed payloads, framing) live
// in noise_handshake.hpp.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

namespace punchgate {

inline constexpr size_t kNoiseKeyLen = 32;     // ChaChaPoly key, X25519 keys, DH output
inline constexpr size_t kNoiseHashLen = 32;    // SHA-256
inline constexpr size_t kNoiseTagLen = 16;     // Poly1305 tag
inline constexpr size_t kNoiseMaxMessageLen = 65535;  // any Noise message, handshake or transport
inline constexpr char kNoiseXXProtocolName[] = "Noise_XX_25519_ChaChaPoly_SHA256";

// 32 secret bytes that are wiped when destroyed and when moved from, so that moving the objects
// holding them never leaves a live copy behind.
class NoiseSecret {
 public:
  NoiseSecret() = default;
  // `bytes` must be exactly kNoiseKeyLen long.
  static Result<NoiseSecret> from_bytes(BytesView bytes);
  static NoiseSecret random();
  NoiseSecret(const NoiseSecret&) = delete;
  NoiseSecret& operator=(const NoiseSecret&) = delete;
  NoiseSecret(NoiseSecret&& o) noexcept;
  NoiseSecret& operator=(NoiseSecret&& o) noexcept;
  ~NoiseSecret();

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  BytesView view() const { return view_of(bytes_.data(), bytes_.size()); }
  void wipe();

 private:
  std::array<uint8_t, kNoiseKeyLen> bytes_{};
};

// X25519 key pair; the public half is derived from the private one.
struct NoiseKeypair {
  NoiseSecret secret;
  std::array<uint8_t, kNoiseKeyLen> public_key{};

  static NoiseKeypair generate();
  static NoiseKeypair from_secret(NoiseSecret secret);
  BytesView public_view() const { return view_of(public_key.data(), public_key.size()); }
};

// CipherState with ChaChaPoly (IETF ChaCha20-Poly1305, nonce = 4 zero bytes || LE64(n)).
// Nonce 2^64-1 is reserved by Noise: once n reaches it every call fails, so a session must be
// closed before a nonce could repeat.
class NoiseCipherState {
 public:
  NoiseCipherState() = default;  // no key: encrypt/decrypt pass bytes through (handshake start)
  explicit NoiseCipherState(NoiseSecret key) : key_(std::move(key)), has_key_(true) {}
  // A moved-from CipherState has no key (its key bytes are wiped).
  NoiseCipherState(NoiseCipherState&& o) noexcept;
  NoiseCipherState& operator=(NoiseCipherState&& o) noexcept;

  bool has_key() const { return has_key_; }
  uint64_t nonce() const { return n_; }
  bool exhausted() const { return has_key_ && n_ == kReservedNonce; }

  // Appends ENCRYPT(k, n++, ad, plaintext) (plaintext.size() + 16 bytes) to `out`.
  Status encrypt_append(BytesView ad, BytesView plaintext, Bytes& out);
  // Appends the plaintext of `ciphertext` to `out`; on failure `out` is unchanged and n is not
  // advanced (Noise rule), though callers treat any failure as fatal.
  Status decrypt_append(BytesView ad, BytesView ciphertext, Bytes& out);
  Result<Bytes> encrypt_with_ad(BytesView ad, BytesView plaintext);
  Result<Bytes> decrypt_with_ad(BytesView ad, BytesView ciphertext);

  // Tests only: jump to a nonce near the limit without sending 2^64 messages.
  void set_nonce_for_testing(uint64_t n) { n_ = n; }

  static constexpr uint64_t kReservedNonce = UINT64_MAX;

 private:
  NoiseSecret key_;
  uint64_t n_ = 0;
  bool has_key_ = false;
};

// SymmetricState: chaining key ck, handshake hash h and the handshake CipherState.
class NoiseSymmetricState {
 public:
  explicit NoiseSymmetricState(BytesView protocol_name);

  void mix_hash(BytesView data);
  void mix_key(BytesView input_key_material);
  Status encrypt_and_hash(BytesView plaintext, Bytes& out);  // appends to out
  Status decrypt_and_hash(BytesView ciphertext, Bytes& out);
  // The two transport CipherStates: first for initiator -> responder, second for the reverse.
  std::pair<NoiseCipherState, NoiseCipherState> split();
  BytesView handshake_hash() const { return view_of(h_.data(), h_.size()); }
  bool has_key() const { return cipher_.has_key(); }

 private:
  NoiseSecret ck_;
  std::array<uint8_t, kNoiseHashLen> h_{};
  NoiseCipherState cipher_;
};

// HKDF(chaining_key, ikm) of the Noise spec with HMAC-SHA256, two outputs.
std::pair<NoiseSecret, NoiseSecret> noise_hkdf2(const NoiseSecret& chaining_key, BytesView ikm);

// HandshakeState for XX:
//   -> e
//   <- e, ee, s, es
//   -> s, se
// Messages are the raw Noise messages (no length prefix). Any error leaves the state failed.
class NoiseXXHandshakeState {
 public:
  enum class Role { Initiator, Responder };

  // Fresh random keys: the static key now, the ephemeral key when it is first written.
  NoiseXXHandshakeState(Role role, BytesView prologue);
  // Fixed keys, for test vectors. `ephemeral` empty: generated when needed.
  NoiseXXHandshakeState(Role role, BytesView prologue, NoiseSecret static_secret,
                        std::optional<NoiseSecret> ephemeral_secret);

  Role role() const { return role_; }
  // Messages handled so far (0..3); 3 means the handshake is complete.
  int message_index() const { return index_; }
  bool complete() const { return index_ == 3 && !failed_; }
  bool failed() const { return failed_; }
  // True when the next step is write_message (else read_message).
  bool is_my_turn() const;

  // Builds the next message carrying `payload`. The result is at most kNoiseMaxMessageLen bytes.
  Result<Bytes> write_message(BytesView payload);
  // Processes the next received message, returning its payload.
  Result<Bytes> read_message(BytesView message);

  BytesView local_static_public() const { return s_.public_view(); }
  // The peer's static key: set once message 2 (initiator) or 3 (responder) was read.
  std::optional<BytesView> remote_static() const;
  BytesView handshake_hash() const { return sym_.handshake_hash(); }
  // After completion: {send, recv} for this role. Callable once.
  Result<std::pair<NoiseCipherState, NoiseCipherState>> split();

 private:
  Error fail(Error e);
  Status dh_mix(const NoiseKeypair& local, const std::array<uint8_t, kNoiseKeyLen>& remote);
  void ensure_ephemeral();

  Role role_;
  NoiseSymmetricState sym_;
  NoiseKeypair s_;
  std::optional<NoiseKeypair> e_;
  std::optional<NoiseSecret> fixed_e_;
  std::array<uint8_t, kNoiseKeyLen> re_{};
  std::array<uint8_t, kNoiseKeyLen> rs_{};
  bool have_rs_ = false;
  int index_ = 0;
  bool failed_ = false;
  bool split_done_ = false;
};

}  // namespace punchgate
