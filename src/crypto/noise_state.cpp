// Noise Protocol Framework rev 34 objects with libsodium primitives (sections 5.1-5.3, 12).
#include "crypto/noise_state.hpp"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace punchgate {
namespace {

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kNoiseKeyLen);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kNoiseTagLen);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(crypto_scalarmult_curve25519_BYTES == kNoiseKeyLen);
static_assert(crypto_scalarmult_curve25519_SCALARBYTES == kNoiseKeyLen);
static_assert(crypto_hash_sha256_BYTES == kNoiseHashLen);
static_assert(crypto_auth_hmacsha256_BYTES == kNoiseHashLen);
static_assert(sizeof(kNoiseXXProtocolName) - 1 == kNoiseHashLen);

void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    // No randomness means no safe key generation; nothing sensible can continue.
    std::fputs("punchgate: sodium_init() failed\n", stderr);
    std::abort();
  }
}

// ChaChaPoly nonce: 32 bits of zeros followed by the little-endian 64-bit counter.
std::array<uint8_t, 12> chachapoly_nonce(uint64_t n) {
  std::array<uint8_t, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

// HMAC-SHA256(key, data1 || data2) into `out`.
void hmac_sha256(BytesView key, BytesView data1, BytesView data2, uint8_t* out) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, data_u8(key), key.size());
  crypto_auth_hmacsha256_update(&st, data_u8(data1), data1.size());
  crypto_auth_hmacsha256_update(&st, data_u8(data2), data2.size());
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

}  // namespace

// ---- NoiseSecret ----

Result<NoiseSecret> NoiseSecret::from_bytes(BytesView bytes) {
  if (bytes.size() != kNoiseKeyLen) return make_error("noise key is {} bytes, expected {}", bytes.size(), kNoiseKeyLen);
  NoiseSecret s;
  std::memcpy(s.bytes_.data(), bytes.data(), kNoiseKeyLen);
  return s;
}

NoiseSecret NoiseSecret::random() {
  ensure_sodium();
  NoiseSecret s;
  randombytes_buf(s.bytes_.data(), s.bytes_.size());
  return s;
}

NoiseSecret::NoiseSecret(NoiseSecret&& o) noexcept : bytes_(o.bytes_) { o.wipe(); }

NoiseSecret& NoiseSecret::operator=(NoiseSecret&& o) noexcept {
  if (this != &o) {
    bytes_ = o.bytes_;
    o.wipe();
  }
  return *this;
}

NoiseSecret::~NoiseSecret() { wipe(); }

void NoiseSecret::wipe() { sodium_memzero(bytes_.data(), bytes_.size()); }

// ---- NoiseKeypair ----

NoiseKeypair NoiseKeypair::generate() { return from_secret(NoiseSecret::random()); }

NoiseKeypair NoiseKeypair::from_secret(NoiseSecret secret) {
  ensure_sodium();
  NoiseKeypair kp;
  kp.secret = std::move(secret);
  // X25519 clamps the scalar itself, so any 32 bytes are a valid private key.
  crypto_scalarmult_curve25519_base(kp.public_key.data(), kp.secret.data());
  return kp;
}

// ---- NoiseCipherState ----

NoiseCipherState::NoiseCipherState(NoiseCipherState&& o) noexcept
    : key_(std::move(o.key_)), n_(o.n_), has_key_(o.has_key_) {
  o.has_key_ = false;
  o.n_ = 0;
}

NoiseCipherState& NoiseCipherState::operator=(NoiseCipherState&& o) noexcept {
  if (this != &o) {
    key_ = std::move(o.key_);
    n_ = o.n_;
    has_key_ = o.has_key_;
    o.has_key_ = false;
    o.n_ = 0;
  }
  return *this;
}

Status NoiseCipherState::encrypt_append(BytesView ad, BytesView plaintext, Bytes& out) {
  if (!has_key_) {
    out.append(plaintext);
    return {};
  }
  if (n_ == kReservedNonce) return make_error("noise nonce exhausted; the session must be closed");
  const auto nonce = chachapoly_nonce(n_);
  const size_t start = out.size();
  out.resize(start + plaintext.size() + kNoiseTagLen);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<uint8_t*>(out.data() + start), &clen, data_u8(plaintext),
                                            plaintext.size(), data_u8(ad), ad.size(), nullptr, nonce.data(),
                                            key_.data());
  ++n_;
  return {};
}

Status NoiseCipherState::decrypt_append(BytesView ad, BytesView ciphertext, Bytes& out) {
  if (!has_key_) {
    out.append(ciphertext);
    return {};
  }
  if (n_ == kReservedNonce) return make_error("noise nonce exhausted; the session must be closed");
  if (ciphertext.size() < kNoiseTagLen)
    return make_error("noise ciphertext of {} bytes is shorter than the {} byte tag", ciphertext.size(), kNoiseTagLen);
  const auto nonce = chachapoly_nonce(n_);
  const size_t start = out.size();
  out.resize(start + ciphertext.size() - kNoiseTagLen);
  unsigned long long mlen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<uint8_t*>(out.data() + start), &mlen, nullptr,
                                                data_u8(ciphertext), ciphertext.size(), data_u8(ad), ad.size(),
                                                nonce.data(), key_.data()) != 0) {
    out.resize(start);
    return make_error("noise decryption failed (bad tag: wrong key, tampered or reordered message)");
  }
  ++n_;
  return {};
}

Result<Bytes> NoiseCipherState::encrypt_with_ad(BytesView ad, BytesView plaintext) {
  Bytes out;
  PG_TRY(encrypt_append(ad, plaintext, out));
  return out;
}

Result<Bytes> NoiseCipherState::decrypt_with_ad(BytesView ad, BytesView ciphertext) {
  Bytes out;
  PG_TRY(decrypt_append(ad, ciphertext, out));
  return out;
}

// ---- HKDF and NoiseSymmetricState ----

std::pair<NoiseSecret, NoiseSecret> noise_hkdf2(const NoiseSecret& chaining_key, BytesView ikm) {
  NoiseSecret temp_key, out1, out2;
  hmac_sha256(chaining_key.view(), ikm, {}, temp_key.data());
  const uint8_t one = 0x01, two = 0x02;
  hmac_sha256(temp_key.view(), view_of(&one, 1), {}, out1.data());
  hmac_sha256(temp_key.view(), out1.view(), view_of(&two, 1), out2.data());
  return {std::move(out1), std::move(out2)};
}

NoiseSymmetricState::NoiseSymmetricState(BytesView protocol_name) {
  ensure_sodium();
  if (protocol_name.size() <= kNoiseHashLen) {
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    crypto_hash_sha256(h_.data(), data_u8(protocol_name), protocol_name.size());
  }
  std::memcpy(ck_.data(), h_.data(), kNoiseHashLen);
}

void NoiseSymmetricState::mix_hash(BytesView data) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, h_.data(), h_.size());
  crypto_hash_sha256_update(&st, data_u8(data), data.size());
  crypto_hash_sha256_final(&st, h_.data());
}

void NoiseSymmetricState::mix_key(BytesView input_key_material) {
  auto [ck, temp_k] = noise_hkdf2(ck_, input_key_material);
  ck_ = std::move(ck);
  cipher_ = NoiseCipherState(std::move(temp_k));
}

Status NoiseSymmetricState::encrypt_and_hash(BytesView plaintext, Bytes& out) {
  const size_t start = out.size();
  PG_TRY(cipher_.encrypt_append(handshake_hash(), plaintext, out));
  mix_hash(BytesView(out).substr(start));
  return {};
}

Status NoiseSymmetricState::decrypt_and_hash(BytesView ciphertext, Bytes& out) {
  PG_TRY(cipher_.decrypt_append(handshake_hash(), ciphertext, out));
  mix_hash(ciphertext);
  return {};
}

std::pair<NoiseCipherState, NoiseCipherState> NoiseSymmetricState::split() {
  auto [k1, k2] = noise_hkdf2(ck_, {});
  return {NoiseCipherState(std::move(k1)), NoiseCipherState(std::move(k2))};
}

// ---- NoiseXXHandshakeState ----

NoiseXXHandshakeState::NoiseXXHandshakeState(Role role, BytesView prologue)
    : NoiseXXHandshakeState(role, prologue, NoiseSecret::random(), std::nullopt) {}

NoiseXXHandshakeState::NoiseXXHandshakeState(Role role, BytesView prologue, NoiseSecret static_secret,
                                             std::optional<NoiseSecret> ephemeral_secret)
    : role_(role),
      sym_(kNoiseXXProtocolName),
      s_(NoiseKeypair::from_secret(std::move(static_secret))),
      fixed_e_(std::move(ephemeral_secret)) {
  sym_.mix_hash(prologue);
}

bool NoiseXXHandshakeState::is_my_turn() const {
  if (index_ >= 3 || failed_) return false;
  const bool initiator_writes = index_ % 2 == 0;  // messages 1 and 3
  return initiator_writes == (role_ == Role::Initiator);
}

std::optional<BytesView> NoiseXXHandshakeState::remote_static() const {
  if (!have_rs_) return std::nullopt;
  return view_of(rs_.data(), rs_.size());
}

Error NoiseXXHandshakeState::fail(Error e) {
  failed_ = true;
  return e;
}

void NoiseXXHandshakeState::ensure_ephemeral() {
  if (e_) return;
  e_ = fixed_e_ ? NoiseKeypair::from_secret(std::move(*fixed_e_)) : NoiseKeypair::generate();
  fixed_e_.reset();
}

Status NoiseXXHandshakeState::dh_mix(const NoiseKeypair& local, const std::array<uint8_t, kNoiseKeyLen>& remote) {
  NoiseSecret shared;
  // libsodium refuses low-order points (all-zero output); Noise allows signalling that as an error.
  if (crypto_scalarmult_curve25519(shared.data(), local.secret.data(), remote.data()) != 0)
    return make_error("noise handshake: peer sent an invalid (low-order) X25519 public key");
  sym_.mix_key(shared.view());
  return {};
}

Result<Bytes> NoiseXXHandshakeState::write_message(BytesView payload) {
  if (failed_) return make_error("noise handshake already failed");
  if (index_ >= 3) return make_error("noise handshake is already complete");
  if (!is_my_turn()) return make_error("noise handshake: message {} is the peer's to send", index_ + 1);

  // Size check before any state changes, so an oversized payload is a plain, recoverable error.
  const size_t fixed = index_ == 0 ? kNoiseKeyLen
                                   : index_ == 1 ? kNoiseKeyLen + kNoiseKeyLen + kNoiseTagLen + kNoiseTagLen
                                                 : kNoiseKeyLen + kNoiseTagLen + kNoiseTagLen;
  if (payload.size() > kNoiseMaxMessageLen - fixed)
    return make_error("noise handshake payload of {} bytes does not fit in message {} (max {})", payload.size(),
                      index_ + 1, kNoiseMaxMessageLen - fixed);

  Bytes out;
  out.reserve(fixed + payload.size());
  if (index_ == 0 || index_ == 1) {  // e
    ensure_ephemeral();
    out.append(e_->public_view());
    sym_.mix_hash(e_->public_view());
  }
  if (index_ == 1) {
    if (auto st = dh_mix(*e_, re_); !st) return fail(st.error());  // ee
    if (auto st = sym_.encrypt_and_hash(s_.public_view(), out); !st) return fail(st.error());  // s
    if (auto st = dh_mix(s_, re_); !st) return fail(st.error());  // es (responder side)
  } else if (index_ == 2) {
    if (auto st = sym_.encrypt_and_hash(s_.public_view(), out); !st) return fail(st.error());  // s
    if (auto st = dh_mix(s_, re_); !st) return fail(st.error());  // se (initiator side)
  }
  if (auto st = sym_.encrypt_and_hash(payload, out); !st) return fail(st.error());
  ++index_;
  return out;
}

Result<Bytes> NoiseXXHandshakeState::read_message(BytesView message) {
  if (failed_) return make_error("noise handshake already failed");
  if (index_ >= 3) return make_error("noise handshake is already complete");
  if (is_my_turn()) return make_error("noise handshake: message {} is ours to send", index_ + 1);
  if (message.size() > kNoiseMaxMessageLen)
    return fail(make_error("noise handshake message of {} bytes exceeds {}", message.size(), kNoiseMaxMessageLen));

  const size_t min = index_ == 0 ? kNoiseKeyLen
                                 : index_ == 1 ? kNoiseKeyLen + kNoiseKeyLen + kNoiseTagLen + kNoiseTagLen
                                               : kNoiseKeyLen + kNoiseTagLen + kNoiseTagLen;
  if (message.size() < min)
    return fail(make_error("noise handshake message {} is {} bytes, expected at least {}", index_ + 1,
                           message.size(), min));

  BytesView rest = message;
  if (index_ == 0 || index_ == 1) {  // e
    std::memcpy(re_.data(), rest.data(), kNoiseKeyLen);
    sym_.mix_hash(rest.substr(0, kNoiseKeyLen));
    rest.remove_prefix(kNoiseKeyLen);
  }
  if (index_ == 1 || index_ == 2) {
    ensure_ephemeral();  // already set by our previous write; a guard, never a new key here
    if (index_ == 1) {
      if (auto st = dh_mix(*e_, re_); !st) return fail(st.error());  // ee
    }
    Bytes rs;
    if (auto st = sym_.decrypt_and_hash(rest.substr(0, kNoiseKeyLen + kNoiseTagLen), rs); !st)
      return fail(make_error("noise handshake message {}: static key: {}", index_ + 1, st.error().message));
    std::memcpy(rs_.data(), rs.data(), kNoiseKeyLen);
    have_rs_ = true;
    rest.remove_prefix(kNoiseKeyLen + kNoiseTagLen);
    // es as the initiator and se as the responder are both DH(e, rs).
    if (auto st = dh_mix(*e_, rs_); !st) return fail(st.error());
  }
  Bytes payload;
  if (auto st = sym_.decrypt_and_hash(rest, payload); !st)
    return fail(make_error("noise handshake message {}: payload: {}", index_ + 1, st.error().message));
  ++index_;
  return payload;
}

Result<std::pair<NoiseCipherState, NoiseCipherState>> NoiseXXHandshakeState::split() {
  if (!complete()) return make_error("noise handshake is not complete");
  if (split_done_) return make_error("noise handshake keys were already taken");
  split_done_ = true;
  auto [c1, c2] = sym_.split();
  if (role_ == Role::Initiator) return std::pair{std::move(c1), std::move(c2)};
  return std::pair{std::move(c2), std::move(c1)};
}

}  // namespace punchgate
