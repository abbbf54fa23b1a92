#include "punchgate/wire/multibase.hpp"

#include "punchgate/wire/varint.hpp"

#include <array>
#include <vector>

namespace punchgate {

namespace {

constexpr std::string_view kBase58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kBase32Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

// Reverse lookup: character -> digit value, or -1.
constexpr std::array<int8_t, 256> make_reverse(std::string_view alphabet) {
  std::array<int8_t, 256> table{};
  for (auto& t : table) t = -1;
  for (size_t i = 0; i < alphabet.size(); ++i) table[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr auto kBase58Reverse = make_reverse(kBase58Alphabet);
constexpr auto kBase32Reverse = make_reverse(kBase32Alphabet);

// Names one character of untrusted text: printable ASCII as 'c', anything else as 0xNN.
std::string char_name(char c) {
  auto u = static_cast<uint8_t>(c);
  if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("0x{:02x}", u);
}

Status check_text_len(std::string_view what, std::string_view text) {
  if (text.size() > kMaxEncodedTextLen) {
    return make_error("{} text of {} characters is longer than the {} allowed", what, text.size(),
                      kMaxEncodedTextLen);
  }
  return {};
}

}  // namespace

std::string base58btc_encode(BytesView data) {
  size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  // Base-58 digits of the big-endian number in data[zeros..], least significant first.
  std::vector<uint8_t> digits;
  digits.reserve((data.size() - zeros) * 138 / 100 + 1);  // log(256)/log(58) < 1.38
  for (size_t i = zeros; i < data.size(); ++i) {
    uint32_t carry = static_cast<uint8_t>(data[i]);
    for (auto& d : digits) {
      carry += static_cast<uint32_t>(d) << 8;
      d = static_cast<uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(zeros, '1');
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kBase58Alphabet[*it]);
  return out;
}

Result<Bytes> base58btc_decode(std::string_view text) {
  PG_TRY(check_text_len("base58btc", text));
  size_t ones = 0;
  while (ones < text.size() && text[ones] == '1') ++ones;
  // Bytes of the number, least significant first.
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size());
  for (size_t i = ones; i < text.size(); ++i) {
    int v = kBase58Reverse[static_cast<uint8_t>(text[i])];
    if (v < 0) return make_error("invalid base58btc character {} at offset {}", char_name(text[i]), i);
    uint32_t carry = static_cast<uint32_t>(v);
    for (auto& b : bytes) {
      carry += static_cast<uint32_t>(b) * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(ones, '\0');
  for (auto it = bytes.rbegin(); it != bytes.rend(); ++it) out.push_back(static_cast<char>(*it));
  return out;
}

std::string base32_encode(BytesView data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : data) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32Alphabet[(acc >> bits) & 31]);
    }
    acc &= (1u << bits) - 1;  // keep only the bits not yet emitted
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(acc << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> base32_decode(std::string_view text) {
  PG_TRY(check_text_len("base32", text));
  // A final group of 1, 3 or 6 characters cannot come from whole bytes.
  switch (text.size() % 8) {
    case 1:
    case 3:
    case 6:
      return make_error("base32 text length {} is impossible without padding", text.size());
    default:
      break;
  }
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = kBase32Reverse[static_cast<uint8_t>(text[i])];
    if (v < 0) return make_error("invalid base32 character {} at offset {}", char_name(text[i]), i);
    acc = (acc << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
      acc &= (1u << bits) - 1;
    }
  }
  // Leftover bits are padding; non-zero ones would give a second spelling of the same bytes.
  if (acc != 0) return make_error("base32 text has non-zero trailing bits");
  return out;
}

std::string multibase_encode_base32(BytesView data) { return "b" + base32_encode(data); }

Result<Bytes> multibase_decode(std::string_view text) {
  if (text.empty()) return make_error("empty multibase text");
  switch (text[0]) {
    case 'b':
      return base32_decode(text.substr(1));
    case 'z':
      return base58btc_decode(text.substr(1));
    default:
      return make_error("unsupported multibase prefix {} (want 'b' base32 or 'z' base58btc)", char_name(text[0]));
  }
}

Status validate_peer_id_multihash(BytesView multihash) {
  if (multihash.empty()) return make_error("empty multihash");
  BytesView in = multihash;
  auto code = take_uvarint(in);
  if (!code) return make_error("bad multihash code: {}", code.error().message);
  auto len = take_uvarint(in);
  if (!len) return make_error("bad multihash length: {}", len.error().message);
  if (*code == kMultihashIdentity) {
    if (*len == 0 || *len > kMaxIdentityDigestLen) {
      return make_error("identity multihash length {} is outside 1..{}", *len, kMaxIdentityDigestLen);
    }
  } else if (*code == kMultihashSha256) {
    if (*len != 32) return make_error("sha2-256 multihash length {} is not 32", *len);
  } else {
    return make_error("multihash code 0x{:x} is neither identity (0x00) nor sha2-256 (0x12)", *code);
  }
  if (in.size() != *len) return make_error("multihash declares {} digest bytes but {} follow", *len, in.size());
  return {};
}

Result<Bytes> decode_peer_id_text(std::string_view text) {
  if (text.empty()) return make_error("empty peer id");
  auto fail = [&](const std::string& why) { return make_error("invalid peer id {}: {}", quote_for_error(text), why); };
  if (text.size() > kMaxEncodedTextLen) {
    return fail(fmt::format("{} characters is longer than the {} allowed", text.size(), kMaxEncodedTextLen));
  }
  Bytes multihash;
  // Legacy form first: a bare base58btc multihash always starts with '1' (identity) or "Qm"
  // (sha2-256), neither of which is a multibase prefix we accept.
  if (text[0] == '1' || text.starts_with("Qm")) {
    auto raw = base58btc_decode(text);
    if (!raw) return fail(raw.error().message);
    multihash = std::move(*raw);
  } else {
    auto raw = multibase_decode(text);
    if (!raw) return fail(raw.error().message);
    BytesView cid = *raw;
    auto version = take_uvarint(cid);
    if (!version) return fail("bad CID version: " + version.error().message);
    if (*version != 1) return fail(fmt::format("CID version {} is not 1", *version));
    auto codec = take_uvarint(cid);
    if (!codec) return fail("bad CID codec: " + codec.error().message);
    if (*codec != kMulticodecLibp2pKey) {
      return fail(fmt::format("CID codec 0x{:x} is not libp2p-key (0x72)", *codec));
    }
    multihash = Bytes(cid);
  }
  auto valid = validate_peer_id_multihash(multihash);
  if (!valid) return fail(valid.error().message);
  return multihash;
}

std::string quote_for_error(std::string_view text) {
  constexpr size_t kMaxShown = 96;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    auto u = static_cast<uint8_t>(text[i]);
    if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(text[i]);
    }
  }
  out.push_back('"');
  if (text.size() > kMaxShown) out += fmt::format("… ({} bytes)", text.size());
  return out;
}

}  // namespace punchgate
