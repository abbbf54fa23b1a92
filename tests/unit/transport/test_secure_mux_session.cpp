// SecureMuxSession: the libp2p upgrade of a byte stream (multistream /noise, Noise XX,
// multistream /yamux/1.0.0, yamux), driven between two instances in memory.
#include "transport/secure_mux_session.hpp"

#include "punchgate/host/protocol_ids.hpp"
#include "punchgate/wire/multistream.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

// Moves bytes both ways, `chunk` bytes at a time, until neither side has anything to send.
void pump(SecureMuxSession& a, SecureMuxSession& b, size_t chunk = SIZE_MAX) {
  for (int round = 0; round < 10000; ++round) {
    Bytes ab = a.take_output(chunk);
    Bytes ba = b.take_output(chunk);
    if (ab.empty() && ba.empty()) return;
    if (!ab.empty()) {
      ASSERT_TRUE(b.feed(ab)) << b.error();
    }
    if (!ba.empty()) {
      ASSERT_TRUE(a.feed(ba)) << a.error();
    }
  }
  FAIL() << "sessions never went quiet";
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

TEST(SecureMuxSession, UpgradesAndCarriesAStreamBothWays) {
  Identity ia = Identity::generate(), ib = Identity::generate();
  auto dialer = SecureMuxSession::dialer(ia, ib.peer_id());
  auto listener = SecureMuxSession::listener(ib);
  EXPECT_EQ(dialer.phase(), SecureMuxSession::Phase::SelectNoise);
  pump(dialer, listener);
  ASSERT_TRUE(dialer.ready());
  ASSERT_TRUE(listener.ready());
  EXPECT_EQ(*dialer.remote_peer(), ib.peer_id());
  EXPECT_EQ(*listener.remote_peer(), ia.peer_id());
  EXPECT_EQ(dialer.mux().role(), YamuxRole::Client);
  EXPECT_EQ(listener.mux().role(), YamuxRole::Server);

  auto id = dialer.mux().open_stream();
  ASSERT_TRUE(id);
  ASSERT_EQ(*dialer.mux().write(*id, text("hello relay")), 11u);
  pump(dialer, listener);
  auto ev = listener.mux().poll_event();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, YamuxEventKind::InboundStream);
  ev = listener.mux().poll_event();
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->kind, YamuxEventKind::Data);
  EXPECT_EQ(ev->data, text("hello relay"));
  ASSERT_TRUE(listener.mux().write(*id, text("back")));
  pump(dialer, listener);
  ev = dialer.mux().poll_event();
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->kind, YamuxEventKind::Data);
  EXPECT_EQ(ev->data, text("back"));
}

TEST(SecureMuxSession, ByteAtATimeDeliveryStillUpgrades) {
  Identity ia = Identity::generate(), ib = Identity::generate();
  auto dialer = SecureMuxSession::dialer(ia, ib.peer_id());
  auto listener = SecureMuxSession::listener(ib);
  pump(dialer, listener, 1);
  EXPECT_TRUE(dialer.ready());
  EXPECT_TRUE(listener.ready());
}

TEST(SecureMuxSession, WrongPeerFailsTheDialer) {
  Identity ia = Identity::generate(), ib = Identity::generate(), other = Identity::generate();
  auto dialer = SecureMuxSession::dialer(ia, other.peer_id());
  auto listener = SecureMuxSession::listener(ib);
  bool failed = false;
  for (int i = 0; i < 20 && !failed; ++i) {
    Bytes ab = dialer.take_output();
    if (!ab.empty()) (void)listener.feed(ab);
    Bytes ba = listener.take_output();
    if (!ba.empty() && !dialer.feed(ba)) failed = true;
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(dialer.failed());
  EXPECT_FALSE(dialer.ready());
  EXPECT_NE(dialer.error().find("noise handshake"), std::string::npos) << dialer.error();
}

TEST(SecureMuxSession, ListenerRefusesAnotherSecurityProtocol) {
  Identity ib = Identity::generate();
  auto listener = SecureMuxSession::listener(ib);
  Bytes hello = multistream_message(kMultistreamHeader);
  Bytes tls = multistream_message("/tls/1.0.0");
  hello.insert(hello.end(), tls.begin(), tls.end());
  ASSERT_TRUE(listener.feed(hello));  // "na" is an answer, not a failure
  Bytes out = listener.take_output();
  Bytes want = multistream_message(kMultistreamHeader);
  Bytes na = multistream_message("na");
  want.insert(want.end(), na.begin(), na.end());
  EXPECT_EQ(out, want);
  EXPECT_EQ(listener.phase(), SecureMuxSession::Phase::SelectNoise);
}

TEST(SecureMuxSession, GarbageAfterTheHandshakeFailsTheSession) {
  Identity ia = Identity::generate(), ib = Identity::generate();
  auto dialer = SecureMuxSession::dialer(ia, ib.peer_id());
  auto listener = SecureMuxSession::listener(ib);
  pump(dialer, listener);
  ASSERT_TRUE(listener.ready());
  Bytes junk("\x00\x20", 2);
  junk.resize(2 + 0x20, '\xAB');  // a frame that does not authenticate
  EXPECT_FALSE(listener.feed(junk));
  EXPECT_TRUE(listener.failed());
  EXPECT_FALSE(listener.feed(text("more")));
}

TEST(SecureMuxSession, LargeTransferRespectsTakeOutputLimit) {
  Identity ia = Identity::generate(), ib = Identity::generate();
  auto dialer = SecureMuxSession::dialer(ia, ib.peer_id());
  auto listener = SecureMuxSession::listener(ib);
  pump(dialer, listener);
  auto id = dialer.mux().open_stream();
  ASSERT_TRUE(id);
  Bytes big(200 * 1024, 0);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  size_t sent = 0;
  Bytes got;
  for (int round = 0; round < 10000 && got.size() < big.size(); ++round) {
    if (sent < big.size()) {
      auto n = dialer.mux().write(*id, BytesView(big.data() + sent, big.size() - sent));
      ASSERT_TRUE(n);
      sent += *n;
    }
    Bytes ab = dialer.take_output(1000);
    EXPECT_LE(ab.size(), 1000u);
    if (!ab.empty()) {
      ASSERT_TRUE(listener.feed(ab));
    }
    while (auto ev = listener.mux().poll_event()) {
      if (ev->kind == YamuxEventKind::Data) {
        got.insert(got.end(), ev->data.begin(), ev->data.end());
        listener.mux().consume(ev->stream_id, ev->data.size());
      }
    }
    Bytes ba = listener.take_output();
    if (!ba.empty()) {
      ASSERT_TRUE(dialer.feed(ba));
    }
    while (dialer.mux().poll_event()) {
    }
  }
  EXPECT_EQ(got, big);
}

}  // namespace
}  // namespace punchgate
