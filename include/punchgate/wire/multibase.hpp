// Text encodings of binary values: base58btc and base32 (multiformats/multibase), and the two
// text forms of a libp2p peer id built on them (peer-ids/peer-ids.md).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <string>
#include <string_view>

namespace punchgate {

// Decoders refuse longer text: peer ids and multiaddr values are far shorter, and base58 decoding
// is quadratic in the input length.
inline constexpr size_t kMaxEncodedTextLen = 1024;

// base58 with the bitcoin alphabet. Each leading zero byte becomes a leading '1' and back.
std::string base58btc_encode(BytesView data);
Result<Bytes> base58btc_decode(std::string_view text);

// RFC 4648 base32, lower-case alphabet, no padding (the multibase 'b' form without its prefix).
// Decoding rejects upper case, '=' padding, impossible lengths and non-zero trailing bits, so each
// byte string has exactly one accepted spelling.
std::string base32_encode(BytesView data);
Result<Bytes> base32_decode(std::string_view text);

// Multibase text: a one-character prefix naming the base, then the encoded data.
// Supported prefixes: 'b' (base32 lower, no padding) and 'z' (base58btc).
std::string multibase_encode_base32(BytesView data);  // "b" + base32_encode(data)
Result<Bytes> multibase_decode(std::string_view text);

// --- Peer-id multihashes -------------------------------------------------------------------
// These live in the wire layer so that Multiaddr can carry /p2p/ without depending on crypto;
// PeerId (crypto/peer_id.hpp) is the typed wrapper around them.

inline constexpr uint64_t kMultihashIdentity = 0x00;
inline constexpr uint64_t kMultihashSha256 = 0x12;
inline constexpr uint64_t kMulticodecLibp2pKey = 0x72;
// Inline keys are <= 42 bytes when produced per spec; accept somewhat more from other peers but
// keep a bound so a multihash cannot smuggle an arbitrarily large blob.
inline constexpr size_t kMaxIdentityDigestLen = 128;

// Checks that `multihash` is exactly <code><len><digest> with code identity (1..128-byte digest)
// or sha2-256 (32-byte digest), minimal varints and no trailing bytes.
Status validate_peer_id_multihash(BytesView multihash);

// Decodes either text form of a peer id into its validated multihash: legacy base58btc
// ("1…", "Qm…") or a multibase CIDv1 with the libp2p-key codec ("bafz…").
Result<Bytes> decode_peer_id_text(std::string_view text);

// For error messages: `text` in double quotes, control and non-ASCII bytes as \xNN, cut at
// 96 characters so a hostile input cannot blow up a log line.
std::string quote_for_error(std::string_view text);

}  // namespace punchgate
