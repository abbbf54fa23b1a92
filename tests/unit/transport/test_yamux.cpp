#include "transport/yamux_frame.hpp"
#include "transport/yamux_session.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace punchgate {
namespace {

using StreamId = YamuxSession::StreamId;

Bytes unhex(std::string_view h) {
  auto b = from_hex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b ? *b : Bytes{};
}

Bytes header(YamuxType type, uint16_t flags, uint32_t id, uint32_t length) {
  return encode_yamux_header({type, flags, id, length});
}

Bytes data_frame(uint16_t flags, uint32_t id, BytesView payload) {
  Bytes out;
  append_yamux_data_frame(out, flags, id, payload);
  return out;
}

Bytes pattern(size_t n, unsigned seed) {
  Bytes b(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    b[i] = static_cast<char>(x >> 24);
  }
  return b;
}

std::string describe(const YamuxEvent& e) {
  switch (e.kind) {
    case YamuxEventKind::InboundStream: return "inbound " + std::to_string(e.stream_id);
    case YamuxEventKind::Data: return "data " + std::to_string(e.stream_id) + " " + std::to_string(e.data.size());
    case YamuxEventKind::Fin: return "fin " + std::to_string(e.stream_id);
    case YamuxEventKind::Reset: return "reset " + std::to_string(e.stream_id);
    case YamuxEventKind::Writable: return "writable " + std::to_string(e.stream_id);
    case YamuxEventKind::StreamClosed: return "closed " + std::to_string(e.stream_id);
    case YamuxEventKind::PingAck: return "pingack " + std::to_string(e.value);
    case YamuxEventKind::GoAway: return "goaway " + std::to_string(e.value);
    case YamuxEventKind::SessionError: return "error";
  }
  return "?";
}

std::vector<std::string> drain(YamuxSession& s) {
  std::vector<std::string> out;
  while (auto e = s.poll_event()) out.push_back(describe(*e));
  return out;
}

// Feeds `bytes` in pieces of `chunk` bytes (0: all at once).
Status feed(YamuxSession& s, BytesView bytes, size_t chunk = 0) {
  if (chunk == 0) return s.feed(bytes);
  while (!bytes.empty()) {
    const size_t n = std::min(chunk, bytes.size());
    PG_TRY(s.feed(bytes.substr(0, n)));
    bytes.remove_prefix(n);
  }
  return {};
}

// A client and a server wired back to back in memory.
struct Pair {
  explicit Pair(YamuxConfig client_config = {}, YamuxConfig server_config = {})
      : client(YamuxRole::Client, client_config), server(YamuxRole::Server, server_config) {}

  // Moves output both ways until neither side has anything to send.
  void pump() {
    for (int round = 0; round < 1000; ++round) {
      const Bytes c = client.take_output();
      const Bytes s = server.take_output();
      if (c.empty() && s.empty()) return;
      auto st = feed(server, c, chunk);
      ASSERT_TRUE(st.ok()) << st.error().message;
      st = feed(client, s, chunk);
      ASSERT_TRUE(st.ok()) << st.error().message;
    }
    FAIL() << "pump did not settle";
  }

  YamuxSession client;
  YamuxSession server;
  size_t chunk = 0;
};

// ---- Frame codec ----

TEST(YamuxFrame, EncodesHandBuiltVectors) {
  struct Case {
    YamuxHeader h;
    std::string_view hex;
  };
  const Case cases[] = {
      {{YamuxType::WindowUpdate, kYamuxSyn, 1, 0}, "000100010000000100000000"},
      {{YamuxType::WindowUpdate, kYamuxAck, 2, 0x40000}, "000100020000000200040000"},
      {{YamuxType::WindowUpdate, kYamuxFin, 3, 0}, "000100040000000300000000"},
      {{YamuxType::WindowUpdate, kYamuxRst, 0xfffffffe, 0}, "00010008fffffffe00000000"},
      {{YamuxType::Data, 0, 5, 0x01020304}, "000000000000000501020304"},
      {{YamuxType::Data, kYamuxSyn | kYamuxFin, 7, 3}, "000000050000000700000003"},
      {{YamuxType::Ping, kYamuxSyn, 0, 0xdeadbeef}, "0002000100000000deadbeef"},
      {{YamuxType::Ping, kYamuxAck, 0, 0xdeadbeef}, "0002000200000000deadbeef"},
      {{YamuxType::GoAway, 0, 0, 0}, "000300000000000000000000"},
      {{YamuxType::GoAway, 0, 0, 1}, "000300000000000000000001"},
      {{YamuxType::GoAway, 0, 0, 2}, "000300000000000000000002"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(to_hex(encode_yamux_header(c.h)), c.hex);
    auto d = decode_yamux_header(unhex(c.hex));
    ASSERT_TRUE(d.ok()) << c.hex;
    EXPECT_EQ(*d, c.h) << c.hex;
  }
}

TEST(YamuxFrame, DataFrameCarriesItsPayload) {
  EXPECT_EQ(to_hex(data_frame(kYamuxAck, 2, "hello")), "00000002000000020000000568656c6c6f");
  EXPECT_EQ(to_hex(data_frame(0, 9, "")), "000000000000000900000000");
}

TEST(YamuxFrame, DecodeIgnoresTrailingBytes) {
  auto d = decode_yamux_header(unhex("000000000000000900000002ffff"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->length, 2u);
  EXPECT_EQ(d->stream_id, 9u);
}

TEST(YamuxFrame, RejectsTruncatedHeader) {
  const Bytes full = unhex("000100010000000100000000");
  for (size_t n = 0; n < kYamuxHeaderLen; ++n) EXPECT_FALSE(decode_yamux_header(BytesView(full).substr(0, n)).ok()) << n;
}

TEST(YamuxFrame, RejectsBadVersionAndType) {
  auto v = decode_yamux_header(unhex("010100010000000100000000"));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("version"), std::string::npos);
  auto t = decode_yamux_header(unhex("000400000000000000000000"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("type"), std::string::npos);
  EXPECT_FALSE(decode_yamux_header(unhex("00ff00000000000000000000")).ok());
}

TEST(YamuxFrame, UnknownFlagBitsAreKept) {
  auto d = decode_yamux_header(unhex("0000ff1f0000000100000000"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->flags, 0xff1f);
  EXPECT_TRUE(d->has(kYamuxSyn) && d->has(kYamuxAck) && d->has(kYamuxFin) && d->has(kYamuxRst));
}

// ---- Session: opening ----

TEST(YamuxSession, OpenSendsSynWindowUpdateWithOddAndEvenIds) {
  YamuxSession client(YamuxRole::Client);
  YamuxSession server(YamuxRole::Server);
  auto a = client.open_stream();
  auto b = client.open_stream();
  auto c = server.open_stream();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 3u);
  EXPECT_EQ(*c, 2u);
  EXPECT_EQ(to_hex(client.take_output()), "000100010000000100000000000100010000000300000000");
  EXPECT_EQ(to_hex(server.take_output()), "000100010000000200000000");
}

TEST(YamuxSession, LargerReceiveWindowIsAnnouncedOnSynAndAck) {
  YamuxConfig big;
  big.receive_window = 1024 * 1024;
  Pair p(big, big);
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(to_hex(p.client.take_output()), "0001000100000001000c0000");  // delta 768 KiB
  // The server learns the client's window from the SYN.
  ASSERT_TRUE(p.server.feed(header(YamuxType::WindowUpdate, kYamuxSyn, 1, 0xc0000)).ok());
  EXPECT_EQ(p.server.send_window(1), 1024u * 1024);
  // The server's ACK announces its own larger window in a separate Window Update.
  auto w = p.server.write(1, "hi");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(to_hex(p.server.take_output()),
            "0001000200000001000c0000"  // Window Update, ACK, stream 1, delta 768 KiB
            "000000000000000100000002"  // Data, no flags, stream 1, 2 bytes
            "6869");
  ASSERT_TRUE(p.client.feed(header(YamuxType::WindowUpdate, kYamuxAck, 1, 0xc0000)).ok());
  EXPECT_EQ(p.client.send_window(1), 1024u * 1024);
}

TEST(YamuxSession, InboundStreamIsAcknowledgedByTheFirstFrameOnly) {
  Pair p;
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  p.pump();
  EXPECT_EQ(drain(p.server), std::vector<std::string>{"inbound 1"});
  ASSERT_EQ(*p.server.write(1, "ab"), 2u);
  ASSERT_EQ(*p.server.write(1, "c"), 1u);
  EXPECT_EQ(to_hex(p.server.take_output()),
            "000000020000000100000002" "6162"  // Data, ACK, stream 1: "ab"
            "000000000000000100000001" "63");  // Data, no flags: "c"
}

TEST(YamuxSession, DataBothWays) {
  Pair p;
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(*p.client.write(*id, "hello"), 5u);
  p.pump();
  std::vector<YamuxEvent> ev;
  while (auto e = p.server.poll_event()) ev.push_back(std::move(*e));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(describe(ev[0]), "inbound 1");
  EXPECT_EQ(ev[1].kind, YamuxEventKind::Data);
  EXPECT_EQ(ev[1].data, "hello");
  ASSERT_EQ(*p.server.write(1, "world!"), 6u);
  p.pump();
  auto e = p.client.poll_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, YamuxEventKind::Data);
  EXPECT_EQ(e->stream_id, 1u);
  EXPECT_EQ(e->data, "world!");
  EXPECT_FALSE(p.client.poll_event().has_value());
}

TEST(YamuxSession, WritesAreSplitAtMaxFrameData) {
  YamuxConfig small;
  small.max_frame_data = 4;
  YamuxSession c(YamuxRole::Client, small);
  ASSERT_TRUE(c.open_stream().ok());
  c.take_output();
  ASSERT_EQ(*c.write(1, "abcdefghij"), 10u);
  EXPECT_EQ(c.take_output(), data_frame(0, 1, "abcd") + data_frame(0, 1, "efgh") + data_frame(0, 1, "ij"));
}

// ---- Closing ----

TEST(YamuxSession, HalfCloseBothDirections) {
  Pair p;
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(*p.client.write(*id, "req"), 3u);
  ASSERT_TRUE(p.client.shutdown_write(*id).ok());
  EXPECT_FALSE(p.client.write(*id, "more").ok());
  EXPECT_TRUE(p.client.shutdown_write(*id).ok());  // repeat is a no-op
  p.pump();
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"inbound 1", "data 1 3", "fin 1"}));
  // The server can still answer after the client's FIN.
  ASSERT_EQ(*p.server.write(1, "response"), 8u);
  ASSERT_TRUE(p.server.shutdown_write(1).ok());
  EXPECT_EQ(drain(p.server), std::vector<std::string>{"closed 1"});
  p.pump();
  EXPECT_EQ(drain(p.client), (std::vector<std::string>{"data 1 8", "fin 1", "closed 1"}));
  EXPECT_EQ(p.client.stream_count(), 0u);
  EXPECT_EQ(p.server.stream_count(), 0u);
}

TEST(YamuxSession, FinRidesOnAWindowUpdateWithAckWhenFirst) {
  Pair p;
  ASSERT_TRUE(p.client.open_stream().ok());
  p.pump();
  drain(p.server);
  ASSERT_TRUE(p.server.shutdown_write(1).ok());
  EXPECT_EQ(to_hex(p.server.take_output()), "000100060000000100000000");
}

TEST(YamuxSession, ResetAbortsBothSides) {
  Pair p;
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(*p.client.write(*id, "x"), 1u);
  p.pump();
  drain(p.server);
  ASSERT_TRUE(p.client.reset(*id).ok());
  EXPECT_EQ(to_hex(p.client.take_output()), "000100080000000100000000");
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"closed 1"});
  EXPECT_FALSE(p.client.write(*id, "y").ok());
  ASSERT_TRUE(p.server.feed(header(YamuxType::WindowUpdate, kYamuxRst, 1, 0)).ok());
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"reset 1", "closed 1"}));
  EXPECT_FALSE(p.server.write(1, "z").ok());
  EXPECT_EQ(p.server.stream_count(), 0u);
}

TEST(YamuxSession, PendingDataIsDroppedOnReset) {
  Pair p;
  ASSERT_TRUE(p.client.open_stream().ok());
  ASSERT_EQ(*p.client.write(1, "data"), 4u);
  p.pump();
  // The server has an undelivered Data event when the peer resets.
  ASSERT_TRUE(p.server.feed(header(YamuxType::Data, kYamuxRst, 1, 0)).ok());
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"inbound 1", "reset 1", "closed 1"}));
}

// ---- Flow control ----

TEST(YamuxSession, WindowExhaustionThenWindowUpdateThenWritable) {
  YamuxConfig roomy;
  roomy.output_high_water = 1024 * 1024;  // only the window limits this write
  Pair p(roomy, {});
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  const Bytes big = pattern(300 * 1024, 1);
  auto n = p.client.write(*id, big);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kYamuxInitialWindow);
  EXPECT_EQ(*p.client.write(*id, "more"), 0u);
  EXPECT_EQ(p.client.send_window(*id), 0u);
  p.pump();
  Bytes got;
  while (auto e = p.server.poll_event())
    if (e->kind == YamuxEventKind::Data) got += e->data;
  EXPECT_EQ(got, big.substr(0, kYamuxInitialWindow));
  EXPECT_EQ(p.server.receive_window(1), 0u);

  // Consuming less than half the window sends nothing.
  p.server.consume(1, 100 * 1024);
  EXPECT_EQ(p.server.output_size(), 0u);
  // Reaching half sends one update for everything consumed, acknowledging the stream.
  p.server.consume(1, 28 * 1024);
  EXPECT_EQ(to_hex(p.server.take_output()), "000100020000000100020000");
  EXPECT_EQ(p.server.receive_window(1), 128u * 1024);
  ASSERT_TRUE(p.client.feed(header(YamuxType::WindowUpdate, kYamuxAck, 1, 128 * 1024)).ok());
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"writable 1"});
  EXPECT_EQ(p.client.send_window(*id), 128u * 1024);
  EXPECT_EQ(*p.client.write(*id, BytesView(big).substr(kYamuxInitialWindow)), big.size() - kYamuxInitialWindow);
}

TEST(YamuxSession, ConsumeBeyondReceivedIsClamped) {
  Pair p;
  ASSERT_TRUE(p.client.open_stream().ok());
  ASSERT_EQ(*p.client.write(1, "abc"), 3u);
  p.pump();
  drain(p.server);
  p.server.consume(1, 1 << 30);
  EXPECT_EQ(p.server.output_size(), 0u);
  EXPECT_EQ(p.server.receive_window(1), kYamuxInitialWindow - 3);
  p.server.consume(7, 10);  // unknown: ignored
}

TEST(YamuxSession, PeerExceedingWindowIsAProtocolError) {
  YamuxSession server(YamuxRole::Server);
  ASSERT_TRUE(server.feed(data_frame(kYamuxSyn, 1, pattern(kYamuxInitialWindow, 2))).ok());
  auto st = server.feed(data_frame(0, 1, "x"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("window"), std::string::npos);
  EXPECT_EQ(to_hex(server.take_output()), "000300000000000000000001");
  // Undelivered data dies with the session.
  EXPECT_EQ(drain(server), (std::vector<std::string>{"inbound 1", "error", "reset 1", "closed 1"}));
  EXPECT_TRUE(server.failed());
  EXPECT_FALSE(server.feed(header(YamuxType::Ping, kYamuxSyn, 0, 1)).ok());
  EXPECT_FALSE(server.open_stream().ok());
  EXPECT_EQ(server.output_size(), 0u);
}

TEST(YamuxSession, OversizedDataHeaderFailsBeforeItsBody) {
  YamuxSession server(YamuxRole::Server);
  ASSERT_FALSE(server.feed(header(YamuxType::Data, kYamuxSyn, 1, kYamuxInitialWindow + 1)).ok());
  EXPECT_EQ(to_hex(server.take_output()), "000300000000000000000001");
}

TEST(YamuxSession, SendWindowOverflowIsAProtocolError) {
  YamuxSession client(YamuxRole::Client);
  ASSERT_TRUE(client.open_stream().ok());
  client.take_output();
  ASSERT_TRUE(client.feed(header(YamuxType::WindowUpdate, kYamuxAck, 1, 0xffffffff - kYamuxInitialWindow)).ok());
  EXPECT_EQ(client.send_window(1), 0xffffffffu);
  EXPECT_FALSE(client.feed(header(YamuxType::WindowUpdate, 0, 1, 1)).ok());
  EXPECT_EQ(to_hex(client.take_output()), "000300000000000000000001");
}

TEST(YamuxSession, OutputHighWaterLimitsWritesUntilDrained) {
  YamuxConfig cfg;
  cfg.output_high_water = 1000;
  Pair p(cfg, {});
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  const Bytes msg = pattern(5000, 3);
  const size_t first = *p.client.write(*id, msg);
  EXPECT_EQ(first, 1000u - kYamuxHeaderLen);  // the SYN is already waiting
  EXPECT_TRUE(p.client.output_blocked());
  EXPECT_EQ(*p.client.write(*id, msg), 0u);
  EXPECT_TRUE(drain(p.client).empty());
  const Bytes out = p.client.take_output();
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"writable 1"});
  ASSERT_TRUE(p.server.feed(out).ok());
  EXPECT_EQ(*p.client.write(*id, BytesView(msg).substr(first)), 1000u);
}

TEST(YamuxSession, TakeOutputInPieces) {
  YamuxSession c(YamuxRole::Client);
  ASSERT_TRUE(c.open_stream().ok());
  ASSERT_TRUE(c.open_stream().ok());
  const Bytes a = c.take_output(5);
  const Bytes b = c.take_output(100);
  EXPECT_EQ(to_hex(a + b), "000100010000000100000000000100010000000300000000");
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(c.output_size(), 0u);
}

// Regression (fuzz_yamux, slow unit): a partial take_output() erased the taken bytes from the
// front of the output, so taking a large output in small pieces moved O(n^2) bytes: the 480 KB of
// pongs here, taken a byte at a time, moved ~115 GB (3 s in a Debug build, 0.25 s now). Bytes must
// still come out in order while more output is appended between the pieces.
TEST(YamuxSession, TakeOutputInSmallPiecesOfALargeOutput) {
  YamuxSession s(YamuxRole::Server);
  Bytes expected;
  uint32_t next = 0;
  auto ping = [&](int n) {
    Bytes in;
    for (int i = 0; i < n; ++i, ++next) {
      in += header(YamuxType::Ping, kYamuxSyn, 0, next);
      expected += header(YamuxType::Ping, kYamuxAck, 0, next);
    }
    auto st = s.feed(in);
    ASSERT_TRUE(st.ok()) << st.error().message;
  };
  ping(40000);
  Bytes got;
  for (size_t round = 0; s.output_size() > 0; ++round) {
    got += s.take_output(1);
    if (round % 9973 == 0 && round < 400000) ping(7);
    if (got.size() + s.output_size() != expected.size()) FAIL() << "output lost or duplicated at " << round;
  }
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  EXPECT_TRUE(s.take_output(1).empty());
}

// The high-water mark counts only the output not yet taken.
TEST(YamuxSession, PartialTakeMakesRoomForWrites) {
  YamuxConfig cfg;
  cfg.output_high_water = 1000;
  Pair p(cfg, {});
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  const Bytes msg = pattern(3000, 5);
  const size_t first = *p.client.write(*id, msg);
  EXPECT_EQ(first, 1000u - kYamuxHeaderLen);
  EXPECT_EQ(p.client.output_size(), 1000u + kYamuxHeaderLen);  // SYN, then one Data frame
  Bytes wire = p.client.take_output(412);
  EXPECT_EQ(p.client.output_size(), 600u);
  EXPECT_FALSE(p.client.output_blocked());
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"writable 1"});
  const size_t second = *p.client.write(*id, BytesView(msg).substr(first));
  EXPECT_EQ(second, 400u);
  EXPECT_EQ(p.client.output_size(), 1000u + kYamuxHeaderLen);
  wire += p.client.take_output(1);
  wire += p.client.take_output();
  EXPECT_EQ(p.client.output_size(), 0u);
  ASSERT_TRUE(p.server.feed(wire).ok());
  Bytes received;
  while (auto e = p.server.poll_event())
    if (e->kind == YamuxEventKind::Data) received += e->data;
  EXPECT_TRUE(received == BytesView(msg).substr(0, first + second));
}

// Drives `streams` streams carrying `per_stream` bytes each way: the client sends, the server
// echoes. The server consumes only what it managed to echo, so a slow direction throttles the
// other through the windows.
void run_echo(Pair& p, size_t streams, size_t per_stream, size_t write_size) {
  struct ClientSide {
    Bytes payload;
    size_t sent = 0;
    Bytes echoed;
    bool fin = false, closed = false;
  };
  struct ServerSide {
    Bytes backlog;  // received, not yet echoed
    bool fin = false, shut = false, closed = false;
  };
  std::map<StreamId, ClientSide> cs;
  std::map<StreamId, ServerSide> ss;
  for (size_t i = 0; i < streams; ++i) {
    auto id = p.client.open_stream();
    ASSERT_TRUE(id.ok());
    cs[*id].payload = pattern(per_stream, static_cast<unsigned>(i + 10));
  }
  size_t writable_seen = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    for (auto& [id, c] : cs) {
      if (c.sent < c.payload.size()) {
        const size_t chunk = write_size + id * 997;
        auto n = p.client.write(id, BytesView(c.payload).substr(c.sent, chunk));
        ASSERT_TRUE(n.ok()) << n.error().message;
        c.sent += *n;
        if (c.sent == c.payload.size()) {
          ASSERT_TRUE(p.client.shutdown_write(id).ok());
        }
      }
    }
    for (auto& [id, s] : ss) {
      if (!s.backlog.empty()) {
        auto n = p.server.write(id, s.backlog);
        ASSERT_TRUE(n.ok()) << n.error().message;
        s.backlog.erase(0, *n);
        p.server.consume(id, *n);
      }
      if (s.fin && s.backlog.empty() && !s.shut) {
        ASSERT_TRUE(p.server.shutdown_write(id).ok());
        s.shut = true;
      }
    }
    p.pump();
    if (::testing::Test::HasFatalFailure()) return;
    while (auto e = p.server.poll_event()) {
      switch (e->kind) {
        case YamuxEventKind::InboundStream: ss[e->stream_id]; break;
        case YamuxEventKind::Data: ss[e->stream_id].backlog += e->data; break;
        case YamuxEventKind::Fin: ss[e->stream_id].fin = true; break;
        case YamuxEventKind::StreamClosed: ss[e->stream_id].closed = true; break;
        case YamuxEventKind::Writable: break;
        default: FAIL() << "server: " << describe(*e);
      }
    }
    while (auto e = p.client.poll_event()) {
      switch (e->kind) {
        case YamuxEventKind::Data:
          cs[e->stream_id].echoed += e->data;
          p.client.consume(e->stream_id, e->data.size());
          break;
        case YamuxEventKind::Fin: cs[e->stream_id].fin = true; break;
        case YamuxEventKind::StreamClosed: cs[e->stream_id].closed = true; break;
        case YamuxEventKind::Writable: ++writable_seen; break;
        default: FAIL() << "client: " << describe(*e);
      }
    }
    bool done = true;
    for (auto& [id, c] : cs) done = done && c.closed;
    for (auto& [id, s] : ss) done = done && s.closed;
    if (done && ss.size() == streams) break;
  }
  ASSERT_EQ(ss.size(), streams);
  for (auto& [id, c] : cs) {
    EXPECT_TRUE(c.fin && c.closed) << id;
    EXPECT_EQ(c.echoed.size(), c.payload.size()) << id;
    EXPECT_TRUE(c.echoed == c.payload) << "stream " << id << " content differs";
  }
  for (auto& [id, s] : ss) EXPECT_TRUE(s.closed) << id;
  EXPECT_GT(writable_seen, 0u);  // the windows did run dry and reopen
  EXPECT_EQ(p.client.stream_count(), 0u);
  EXPECT_EQ(p.server.stream_count(), 0u);
}

TEST(YamuxSession, EightMegabytesAcrossStreamsByteExact) {
  Pair p;
  run_echo(p, 8, 1024 * 1024, 100 * 1000);
}

TEST(YamuxSession, EchoWithLargerWindowsAndSmallFrames) {
  YamuxConfig cfg;
  cfg.receive_window = 1024 * 1024;
  cfg.max_frame_data = 1000;
  Pair p(cfg, cfg);
  run_echo(p, 3, 3 * 1024 * 1024, 1500 * 1000);
}

// ---- Session control ----

TEST(YamuxSession, PingRoundTrip) {
  Pair p;
  auto v = p.client.ping();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(p.client.take_output(), header(YamuxType::Ping, kYamuxSyn, 0, *v));
  ASSERT_TRUE(p.server.feed(header(YamuxType::Ping, kYamuxSyn, 0, *v)).ok());
  EXPECT_EQ(p.server.take_output(), header(YamuxType::Ping, kYamuxAck, 0, *v));
  EXPECT_TRUE(drain(p.server).empty());
  ASSERT_TRUE(p.client.feed(header(YamuxType::Ping, kYamuxAck, 0, *v)).ok());
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"pingack " + std::to_string(*v)});
  // A repeated or unsolicited ACK is ignored.
  ASSERT_TRUE(p.client.feed(header(YamuxType::Ping, kYamuxAck, 0, *v)).ok());
  EXPECT_TRUE(drain(p.client).empty());
}

TEST(YamuxSession, PeerPingEchoesOpaqueValue) {
  YamuxSession s(YamuxRole::Server);
  ASSERT_TRUE(s.feed(unhex("0002000100000000cafef00d")).ok());
  EXPECT_EQ(to_hex(s.take_output()), "0002000200000000cafef00d");
}

TEST(YamuxSession, PingsOutstandingAreBounded) {
  YamuxConfig cfg;
  cfg.max_pending_pings = 2;
  YamuxSession s(YamuxRole::Client, cfg);
  ASSERT_TRUE(s.ping().ok());
  ASSERT_TRUE(s.ping().ok());
  EXPECT_FALSE(s.ping().ok());
}

TEST(YamuxSession, GoAwayStopsNewStreams) {
  Pair p;
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  p.pump();
  drain(p.server);
  p.client.go_away();
  p.client.go_away();  // once only
  EXPECT_EQ(to_hex(p.client.take_output()), "000300000000000000000000");
  EXPECT_FALSE(p.client.open_stream().ok());
  ASSERT_TRUE(p.server.feed(header(YamuxType::GoAway, 0, 0, 0)).ok());
  EXPECT_EQ(drain(p.server), std::vector<std::string>{"goaway 0"});
  EXPECT_TRUE(p.server.remote_go_away());
  EXPECT_FALSE(p.server.open_stream().ok());
  // The existing stream carries on.
  ASSERT_EQ(*p.server.write(1, "still"), 5u);
  ASSERT_EQ(*p.client.write(1, "here"), 4u);
  p.pump();
  EXPECT_EQ(drain(p.server), std::vector<std::string>{"data 1 4"});
  EXPECT_EQ(drain(p.client), std::vector<std::string>{"data 1 5"});
  // A SYN arriving after our Go Away is refused.
  ASSERT_TRUE(p.client.feed(header(YamuxType::WindowUpdate, kYamuxSyn, 2, 0)).ok());
  EXPECT_EQ(to_hex(p.client.take_output()), "000100080000000200000000");
  EXPECT_TRUE(drain(p.client).empty());
}

TEST(YamuxSession, TooManyInboundStreamsAreReset) {
  YamuxConfig cfg;
  cfg.max_inbound_streams = 2;
  Pair p({}, cfg);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.client.open_stream().ok());
  ASSERT_EQ(*p.client.write(5, "lost"), 4u);
  const Bytes out = p.client.take_output();
  ASSERT_TRUE(p.server.feed(out).ok());
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"inbound 1", "inbound 3"}));
  EXPECT_EQ(to_hex(p.server.take_output()), "000100080000000500000000");
  p.pump();
  ASSERT_TRUE(p.client.feed(header(YamuxType::WindowUpdate, kYamuxRst, 5, 0)).ok());
  EXPECT_EQ(drain(p.client), (std::vector<std::string>{"reset 5", "closed 5"}));
  // The slot frees once the server's application saw a stream close.
  ASSERT_TRUE(p.client.reset(1).ok());
  p.pump();
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"reset 1", "closed 1"}));
  auto id = p.client.open_stream();
  ASSERT_TRUE(id.ok());
  p.pump();
  EXPECT_EQ(drain(p.server), std::vector<std::string>{"inbound 7"});
}

TEST(YamuxSession, OutboundStreamLimit) {
  YamuxConfig cfg;
  cfg.max_outbound_streams = 1;
  YamuxSession c(YamuxRole::Client, cfg);
  ASSERT_TRUE(c.open_stream().ok());
  EXPECT_FALSE(c.open_stream().ok());
  ASSERT_TRUE(c.reset(1).ok());
  EXPECT_FALSE(c.open_stream().ok());  // not until StreamClosed is polled
  EXPECT_EQ(drain(c), std::vector<std::string>{"closed 1"});
  auto id = c.open_stream();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 3u);
}

// ---- Peer misbehaviour ----

TEST(YamuxSession, FramesForUnknownStreamsAreIgnored) {
  YamuxSession s(YamuxRole::Server);
  // Data for a stream never opened: skipped body, then a valid ping is still parsed.
  ASSERT_TRUE(s.feed(data_frame(0, 7, "junk") + header(YamuxType::WindowUpdate, kYamuxFin, 9, 5) +
                     header(YamuxType::WindowUpdate, kYamuxRst, 11, 0) + header(YamuxType::Ping, kYamuxSyn, 0, 3))
                  .ok());
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.take_output(), header(YamuxType::Ping, kYamuxAck, 0, 3));
  EXPECT_FALSE(s.failed());
}

TEST(YamuxSession, DataAfterFinResetsTheStream) {
  YamuxSession s(YamuxRole::Server);
  ASSERT_TRUE(s.feed(data_frame(kYamuxSyn | kYamuxFin, 1, "ab")).ok());
  ASSERT_TRUE(s.feed(data_frame(0, 1, "")).ok());  // empty is harmless
  EXPECT_EQ(s.output_size(), 0u);
  ASSERT_TRUE(s.feed(data_frame(0, 1, "late")).ok());
  EXPECT_EQ(to_hex(s.take_output()), "000100080000000100000000");
  // The Fin was still queued when the stream was reset: dropped with it.
  EXPECT_EQ(drain(s), (std::vector<std::string>{"inbound 1", "reset 1", "closed 1"}));
  EXPECT_FALSE(s.failed());
}

TEST(YamuxSession, ProtocolErrorsFailTheSession) {
  struct Case {
    const char* what;
    Bytes input;
  };
  const Case cases[] = {
      {"syn with our parity", header(YamuxType::WindowUpdate, kYamuxSyn, 2, 0)},
      {"duplicate syn", header(YamuxType::WindowUpdate, kYamuxSyn, 1, 0) + header(YamuxType::Data, kYamuxSyn, 1, 0)},
      {"data on stream 0", header(YamuxType::Data, 0, 0, 0)},
      {"window update on stream 0", header(YamuxType::WindowUpdate, kYamuxSyn, 0, 0)},
      {"bad version", unhex("010000000000000100000000")},
      {"unknown type", unhex("000700000000000100000000")},
      {"syn window overflow", header(YamuxType::WindowUpdate, kYamuxSyn, 1, 0xffffffff)},
  };
  for (const auto& c : cases) {
    YamuxSession s(YamuxRole::Server);
    EXPECT_FALSE(s.feed(c.input).ok()) << c.what;
    EXPECT_TRUE(s.failed()) << c.what;
    const Bytes out = s.take_output();
    ASSERT_GE(out.size(), kYamuxHeaderLen) << c.what;
    EXPECT_EQ(to_hex(BytesView(out).substr(out.size() - kYamuxHeaderLen)), "000300000000000000000001") << c.what;
  }
}

TEST(YamuxSession, PeerProvokedOutputIsCapped) {
  YamuxConfig cfg;
  cfg.output_high_water = 1000;
  cfg.output_hard_limit = 1000;  // raised to high water + 64 KiB
  YamuxSession s(YamuxRole::Server, cfg);
  Bytes pings;
  for (int i = 0; i < 6000; ++i) pings += header(YamuxType::Ping, kYamuxSyn, 0, static_cast<uint32_t>(i));
  auto st = s.feed(pings);
  ASSERT_FALSE(st.ok());
  EXPECT_LE(s.output_size(), 1000u + 64 * 1024 + 2 * kYamuxHeaderLen);
  const Bytes out = s.take_output();
  EXPECT_EQ(to_hex(BytesView(out).substr(out.size() - kYamuxHeaderLen)), "000300000000000000000002");
}

TEST(YamuxSession, SessionFailureResetsEveryStream) {
  Pair p;
  ASSERT_TRUE(p.client.open_stream().ok());
  ASSERT_TRUE(p.client.open_stream().ok());
  p.pump();
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"inbound 1", "inbound 3"}));
  EXPECT_FALSE(p.server.feed(unhex("020000000000000000000000")).ok());
  EXPECT_EQ(drain(p.server), (std::vector<std::string>{"error", "reset 1", "closed 1", "reset 3", "closed 3"}));
  EXPECT_FALSE(p.server.write(1, "x").ok());
  EXPECT_EQ(p.server.stream_count(), 0u);
}

// ---- Chunking ----

std::vector<std::string> scripted_run(size_t chunk) {
  Pair p;
  p.chunk = chunk;
  std::vector<std::string> log;
  auto a = p.client.open_stream();
  auto b = p.client.open_stream();
  EXPECT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*p.client.write(*a, pattern(3000, 5)), 3000u);
  EXPECT_EQ(*p.client.write(*b, "short"), 5u);
  EXPECT_TRUE(p.client.shutdown_write(*b).ok());
  auto pv = p.client.ping();
  EXPECT_TRUE(pv.ok());
  p.pump();
  Bytes got;
  for (auto& s : drain(p.server)) log.push_back("server " + s);
  auto c = p.server.open_stream();
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(*p.server.write(*c, pattern(70000, 6)), 70000u);
  EXPECT_EQ(*p.server.write(1, "reply"), 5u);
  EXPECT_TRUE(p.server.reset(3).ok());
  p.pump();
  while (auto e = p.client.poll_event()) {
    log.push_back("client " + describe(*e));
    if (e->kind == YamuxEventKind::Data && e->stream_id == 2) got += e->data;
  }
  EXPECT_TRUE(got == pattern(70000, 6));
  return log;
}

TEST(YamuxSession, FeedingOneByteAtATimeMatchesBulk) {
  const auto bulk = scripted_run(0);
  const auto bytewise = scripted_run(1);
  const auto odd = scripted_run(7);
  EXPECT_EQ(bulk, (std::vector<std::string>{"server inbound 1", "server inbound 3", "server data 1 3000",
                                            "server data 3 5", "server fin 3", "client pingack 1", "client inbound 2",
                                            "client data 2 70000", "client data 1 5", "client reset 3",
                                            "client closed 3"}));
  // Byte-wise feeding splits Data events differently; compare totals per stream.
  auto totals = [](const std::vector<std::string>& log) {
    std::map<std::string, size_t> t;
    std::vector<std::string> other;
    for (const auto& l : log) {
      auto pos = l.find(" data ");
      if (pos == std::string::npos) {
        other.push_back(l);
        continue;
      }
      const auto last = l.rfind(' ');
      t[l.substr(0, last)] += std::stoul(l.substr(last + 1));
    }
    return std::make_pair(t, other);
  };
  EXPECT_EQ(totals(bytewise), totals(bulk));
  EXPECT_EQ(totals(odd), totals(bulk));
}

}  // namespace
}  // namespace punchgate
