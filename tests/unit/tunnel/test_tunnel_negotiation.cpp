#include "punchgate/tunnel/tunnel_negotiation.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace punchgate {
namespace {

using namespace std::string_literals;

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

Bytes be32(uint32_t n) {
  return Bytes{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
}

// Feeds `wire` one byte at a time; returns the body once complete (and checks it completes on
// exactly the last byte of the message).
Bytes read_byte_at_a_time(TunnelMessageReader& reader, BytesView wire, size_t message_size) {
  Bytes body;
  for (size_t i = 0; i < wire.size(); ++i) {
    auto r = reader.feed(wire.substr(i, 1));
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {};
    if (i + 1 < message_size) {
      EXPECT_FALSE(r->has_value()) << "completed early at byte " << i;
    } else if (i + 1 == message_size) {
      EXPECT_TRUE(r->has_value()) << "not complete at the last byte";
      if (r->has_value()) body = **r;
    } else {
      EXPECT_FALSE(r->has_value()) << "second completion at byte " << i;
    }
  }
  return body;
}

// --- byte-exact encodings ---

TEST(TunnelNegotiation, RequestBytes) {
  Bytes wire = encode_tunnel_request({"echo"});
  const std::string json = R"({"service_name":"echo"})";
  ASSERT_EQ(json.size(), 0x17u);
  EXPECT_EQ(wire, "\x00\x00\x00\x17"s + json);
  EXPECT_EQ(to_hex(wire.substr(0, 4)), "00000017");
}

TEST(TunnelNegotiation, AcceptedResponseBytes) {
  Bytes wire = encode_tunnel_response({true, ""});
  EXPECT_EQ(wire, "\x00\x00\x00\x11"s + R"({"accepted":true})");
  // A reason on an accepted response is not sent.
  EXPECT_EQ(encode_tunnel_response({true, "ignored"}), wire);
}

TEST(TunnelNegotiation, RejectedResponseBytes) {
  const std::string json = R"({"accepted":false,"reason":"no such service: ssh"})";
  EXPECT_EQ(encode_tunnel_response({false, "no such service: ssh"}), be32(static_cast<uint32_t>(json.size())) + json);
  // An empty reason is still a field on a rejection.
  const std::string empty = R"({"accepted":false,"reason":""})";
  EXPECT_EQ(encode_tunnel_response({false, ""}), be32(static_cast<uint32_t>(empty.size())) + empty);
}

TEST(TunnelNegotiation, EncodingEscapes) {
  const std::string json = R"({"service_name":"a\"b\\c\nd"})";
  EXPECT_EQ(encode_tunnel_request({"a\"b\\c\nd"}), be32(static_cast<uint32_t>(json.size())) + json);
  // UTF-8 is written as-is.
  const std::string utf8 = "{\"accepted\":false,\"reason\":\"caf\xc3\xa9\"}";
  EXPECT_EQ(encode_tunnel_response({false, "caf\xc3\xa9"}), be32(static_cast<uint32_t>(utf8.size())) + utf8);
}

TEST(TunnelNegotiation, EncodingNeverThrowsOnBadUtf8) {
  Bytes wire;
  EXPECT_NO_THROW(wire = encode_tunnel_request({"\xff\xfe"}));
  EXPECT_GE(wire.size(), 4u);
  EXPECT_NO_THROW(wire = encode_tunnel_response({false, "bad \xc3"}));
  TunnelMessageReader reader;
  auto r = reader.feed(wire);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_TRUE(decode_tunnel_response(**r).ok());
}

TEST(TunnelNegotiation, LongReasonStaysWithinLimit) {
  // Worst case for escaping: control characters become six bytes each.
  Bytes wire = encode_tunnel_response({false, std::string(100000, '\x01')});
  ASSERT_LE(wire.size(), 4 + kMaxTunnelMessage);
  TunnelMessageReader reader;
  auto r = reader.feed(wire);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  auto resp = decode_tunnel_response(**r);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_FALSE(resp->accepted);
  EXPECT_FALSE(resp->reason.empty());
  EXPECT_EQ(resp->reason.find_first_not_of('\x01'), std::string::npos);

  // Truncation never splits a UTF-8 sequence.
  std::string e_acute;
  for (int i = 0; i < 5000; ++i) e_acute += "\xc3\xa9";
  auto back = decode_tunnel_response(encode_tunnel_response({false, e_acute}).substr(4));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->reason.size() % 2, 0u);
  EXPECT_EQ(back->reason, e_acute.substr(0, back->reason.size()));
}

// --- decoding ---

TEST(TunnelNegotiation, DecodeRequest) {
  auto r = decode_tunnel_request(R"({"service_name":"echo"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->service_name, "echo");

  // Unknown fields are ignored; whitespace is fine.
  auto extra = decode_tunnel_request(R"( { "version": 2, "service_name" : "ssh", "x": [1, {}] } )");
  ASSERT_TRUE(extra.ok()) << extra.error().message;
  EXPECT_EQ(extra->service_name, "ssh");

  // The server decides what exists, so any string up to 256 bytes decodes.
  auto odd = decode_tunnel_request(R"({"service_name":"has space/and\u00e9"})");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->service_name, "has space/and\xc3\xa9");
  EXPECT_TRUE(decode_tunnel_request(R"({"service_name":""})").ok());
  EXPECT_TRUE(decode_tunnel_request(R"({"service_name":")" + std::string(256, 'a') + "\"}").ok());
}

TEST(TunnelNegotiation, DecodeRequestRejects) {
  struct Case {
    std::string json, detail;
  };
  for (const auto& c : std::vector<Case>{
           {"", "not valid JSON"},
           {"{", "not valid JSON"},
           {R"({"service_name":"echo"} x)", "not valid JSON"},
           {"\"echo\"", "not a JSON object"},
           {"[\"echo\"]", "not a JSON object"},
           {"null", "not a JSON object"},
           {"{}", "no \"service_name\""},
           {R"({"serviceName":"echo"})", "no \"service_name\""},
           {R"({"service_name":7})", "not a string"},
           {R"({"service_name":null})", "not a string"},
           {R"({"service_name":["echo"]})", "not a string"},
           {R"({"service_name":")" + std::string(257, 'a') + "\"}", "257 bytes"},
           {"{\"service_name\":\"\xff\"}", "not valid JSON"},
       }) {
    auto r = decode_tunnel_request(c.json);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.json;
    EXPECT_TRUE(contains(r.error().message, c.detail)) << c.json << " -> " << r.error().message;
  }
}

TEST(TunnelNegotiation, DecodeResponse) {
  auto a = decode_tunnel_response(R"({"accepted":true})");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->accepted);
  EXPECT_TRUE(a->reason.empty());

  auto b = decode_tunnel_response(R"({"accepted":false,"reason":"no such service"})");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->accepted);
  EXPECT_EQ(b->reason, "no such service");

  // Reason is optional, and null counts as absent.
  auto c = decode_tunnel_response(R"({"accepted":false})");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->accepted);
  EXPECT_TRUE(c->reason.empty());
  auto d = decode_tunnel_response(R"({"reason":null,"accepted":false,"extra":1})");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->reason.empty());

  // A reason on acceptance is dropped (it only means something on rejection).
  auto e = decode_tunnel_response(R"({"accepted":true,"reason":"ok"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->accepted);
  EXPECT_TRUE(e->reason.empty());
}

TEST(TunnelNegotiation, DecodeResponseRejects) {
  struct Case {
    std::string json, detail;
  };
  for (const auto& c : std::vector<Case>{
           {"", "not valid JSON"},
           {"true", "not a JSON object"},
           {"{}", "no \"accepted\""},
           {R"({"reason":"x"})", "no \"accepted\""},
           {R"({"accepted":"true"})", "not a bool"},
           {R"({"accepted":1})", "not a bool"},
           {R"({"accepted":null})", "not a bool"},
           {R"({"accepted":false,"reason":5})", "\"reason\" is a number"},
           {R"({"accepted":false,"reason":{}})", "not a string"},
       }) {
    auto r = decode_tunnel_response(c.json);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.json;
    EXPECT_TRUE(contains(r.error().message, c.detail)) << c.json << " -> " << r.error().message;
  }
}

TEST(TunnelNegotiation, EncodeDecodeRoundTrip) {
  for (std::string name : {"echo"s, ""s, "a\"b"s, "\x01\x7f"s, "\xe2\x82\xac"s}) {
    auto r = decode_tunnel_request(encode_tunnel_request({name}).substr(4));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->service_name, name);
  }
  for (const TunnelResponse& resp : {TunnelResponse{true, ""}, TunnelResponse{false, "x"}, TunnelResponse{false, ""}}) {
    auto r = decode_tunnel_response(encode_tunnel_response(resp).substr(4));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->accepted, resp.accepted);
    EXPECT_EQ(r->reason, resp.reason);
  }
}

// --- reader ---

TEST(TunnelMessageReader, WholeMessage) {
  TunnelMessageReader reader;
  auto r = reader.feed(encode_tunnel_request({"echo"}));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, R"({"service_name":"echo"})");
  EXPECT_EQ(reader.take_rest(), "");
}

TEST(TunnelMessageReader, ByteAtATime) {
  Bytes msg = encode_tunnel_response({false, "busy"});
  Bytes wire = msg + "raw tail";
  TunnelMessageReader reader;
  Bytes body = read_byte_at_a_time(reader, wire, msg.size());
  EXPECT_EQ(body, msg.substr(4));
  EXPECT_EQ(reader.take_rest(), "raw tail");
  EXPECT_EQ(reader.take_rest(), "");
}

TEST(TunnelMessageReader, EverySplitPoint) {
  Bytes msg = encode_tunnel_request({"service"});
  Bytes wire = msg + "\x00\x01rest"s;
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    TunnelMessageReader reader;
    auto a = reader.feed(wire.substr(0, cut));
    ASSERT_TRUE(a.ok());
    std::optional<Bytes> body = *a;
    auto b = reader.feed(wire.substr(cut));
    ASSERT_TRUE(b.ok());
    if (b->has_value()) {
      ASSERT_FALSE(body.has_value()) << "completed twice at cut " << cut;
      body = **b;
    }
    ASSERT_TRUE(body.has_value()) << "cut " << cut;
    EXPECT_EQ(*body, msg.substr(4)) << "cut " << cut;
    EXPECT_EQ(reader.take_rest(), "\x00\x01rest"s) << "cut " << cut;
  }
}

TEST(TunnelMessageReader, RestPreservedAcrossLaterFeeds) {
  TunnelMessageReader reader;
  auto r = reader.feed(encode_tunnel_request({"echo"}) + "AB");
  ASSERT_TRUE(r.ok() && r->has_value());
  // Bytes fed after completion are raw-phase bytes too.
  auto later = reader.feed("CD");
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(later->has_value());
  EXPECT_EQ(reader.take_rest(), "ABCD");
  auto more = reader.feed("E");
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(reader.take_rest(), "E");
}

TEST(TunnelMessageReader, EmptyBody) {
  TunnelMessageReader reader;
  auto r = reader.feed(be32(0) + "x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "");
  EXPECT_EQ(reader.take_rest(), "x");
  // An empty body is not a valid message, but that is the decoder's call.
  EXPECT_FALSE(decode_tunnel_request("").ok());
}

TEST(TunnelMessageReader, EmptyFeedsNeedMore) {
  TunnelMessageReader reader;
  auto r = reader.feed("");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  auto partial = reader.feed(be32(5).substr(0, 2));
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->has_value());
}

TEST(TunnelMessageReader, MaxSizeAccepted) {
  Bytes body(kMaxTunnelMessage, ' ');
  TunnelMessageReader reader;
  auto r = reader.feed(be32(static_cast<uint32_t>(kMaxTunnelMessage)) + body + "z");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->size(), kMaxTunnelMessage);
  EXPECT_EQ(reader.take_rest(), "z");
}

TEST(TunnelMessageReader, OversizeRejectedAtTheHeader) {
  for (uint32_t len : {static_cast<uint32_t>(kMaxTunnelMessage + 1), 0x7fffffffu, 0xffffffffu}) {
    TunnelMessageReader reader;
    Bytes header = be32(len);
    // Three bytes are not enough to know; the fourth decides, with no body sent.
    auto first = reader.feed(header.substr(0, 3));
    ASSERT_TRUE(first.ok());
    EXPECT_FALSE(first->has_value());
    auto r = reader.feed(header.substr(3));
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_TRUE(contains(r.error().message, std::to_string(len))) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "65536")) << r.error().message;
    // The reader stays failed.
    EXPECT_FALSE(reader.feed("more").ok());
  }
}

// --- datagram framing ---

TEST(DatagramFraming, Encoding) {
  EXPECT_EQ(frame_datagram("hi"), "\x00\x02hi"s);
  EXPECT_EQ(frame_datagram(""), "\x00\x00"s);
  Bytes big(0xffff, 'x');
  Bytes framed = frame_datagram(big);
  ASSERT_EQ(framed.size(), 2u + 0xffff);
  EXPECT_EQ(framed.substr(0, 2), "\xff\xff");
  Bytes mid(300, 'y');
  EXPECT_EQ(frame_datagram(mid).substr(0, 2), "\x01\x2c"s);
  // Unframeable (never a real UDP payload): dropped.
  EXPECT_EQ(frame_datagram(Bytes(0x10000, 'z')), "");
}

TEST(DatagramFraming, RoundTripIncludingEmpty) {
  std::vector<Bytes> sent = {"one", "", "three", Bytes(0xffff, 'm'), "", "\x00\x00"s};
  Bytes stream;
  for (const auto& d : sent) stream += frame_datagram(d);
  std::vector<Bytes> got;
  take_datagrams(stream, got);
  EXPECT_EQ(got, sent);
  EXPECT_TRUE(stream.empty());
}

TEST(DatagramFraming, PartialFramesStayBuffered) {
  Bytes stream = frame_datagram("abc") + frame_datagram("defgh");
  Bytes buf;
  std::vector<Bytes> got;
  // Byte at a time: a datagram appears exactly when its last byte arrives.
  for (size_t i = 0; i < stream.size(); ++i) {
    buf.push_back(stream[i]);
    take_datagrams(buf, got);
    if (i + 1 < 5) {
      EXPECT_TRUE(got.empty()) << i;
    } else if (i + 1 == 5) {
      EXPECT_EQ(got, std::vector<Bytes>{"abc"});
    }
  }
  EXPECT_EQ(got, (std::vector<Bytes>{"abc", "defgh"}));
  EXPECT_TRUE(buf.empty());

  // A lone length byte, and a header without its full payload, are left alone.
  Bytes one = "\x00"s;
  std::vector<Bytes> none;
  take_datagrams(one, none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(one, "\x00"s);
  Bytes partial = frame_datagram("xyz").substr(0, 4);
  take_datagrams(partial, none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(partial, "\x00\x03xy"s);
}

TEST(DatagramFraming, AppendsAndRespectsMaxOut) {
  Bytes stream;
  for (int i = 0; i < 10; ++i) stream += frame_datagram(std::to_string(i));
  std::vector<Bytes> got = {"existing"};
  take_datagrams(stream, got, 3);
  EXPECT_EQ(got, (std::vector<Bytes>{"existing", "0", "1", "2"}));
  take_datagrams(stream, got, 0);
  EXPECT_EQ(got.size(), 4u);
  take_datagrams(stream, got);
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got.back(), "9");
  EXPECT_TRUE(stream.empty());
}

}  // namespace
}  // namespace punchgate
