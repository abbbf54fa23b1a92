// A dial callback may shut the whole transport down (punchgate ping does on a failed dial): the
// connection that reports the failure must not touch its endpoint after that (seen under ASan as a
// use-after-free in QuicConnection::teardown when a dial to a silent address timed out).
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/transport/quic_transport.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace punchgate {
namespace {

TEST(QuicTeardown, DialCallbackMayShutTheTransportDown) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  // A UDP socket that never answers: the dial ends by handshake timeout.
  int silent = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  {
    QuicTransportConfig cfg;
    cfg.handshake_timeout_ms = 300;
    auto t = QuicTransport::create(&loop, Identity::generate(), cfg);
    ASSERT_TRUE(t.ok()) << t.error().message;
    std::unique_ptr<QuicTransport> transport = std::move(*t);
    ASSERT_TRUE(transport->listen(*Multiaddr::parse("/ip4/127.0.0.1/udp/0/quic-v1")).ok());
    const PeerId target = Identity::generate().peer_id();
    auto addr = Multiaddr::parse("/ip4/127.0.0.1/udp/" + std::to_string(ntohs(sa.sin_port)) + "/quic-v1/p2p/" +
                                 target.to_base58());
    ASSERT_TRUE(addr.ok());
    std::string error;
    transport->dial(*addr, [&](Result<ConnectionPtr> r) {
      error = r ? "connected?" : r.error().message;
      transport->shutdown("dial failed");  // what `punchgate ping` does
    });
    Timer guard(&loop);
    guard.start(5000, 0, [&] { uv_stop(&loop); });
    while (error.empty() && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    guard.stop();
    EXPECT_EQ(error, "handshake timeout");
    transport.reset();
  }
  for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
  }
  ::close(silent);
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace punchgate
