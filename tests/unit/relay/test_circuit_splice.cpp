// CircuitSplice between two in-memory streams: forwarding both ways, backpressure (the sender's
// window reopens only as far as the receiver took), half-close, resets, and the circuit limits.
#include "relay/circuit_splice.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <memory>
#include <optional>

namespace punchgate {
namespace {

// A Stream whose far side the test plays: it hands data and events to the handlers and decides
// how much a write may take.
class FakeStream final : public Stream {
 public:
  int64_t id() const override { return 1; }
  void set_handlers(Handlers h) override { handlers = std::move(h); }
  size_t write(BytesView d) override {
    size_t n = std::min(d.size(), room);
    written.append(d.substr(0, n));
    room -= n;
    return n;
  }
  size_t write_capacity() const override { return room; }
  void shutdown_write() override { fin_sent = true; }
  void reset(uint64_t) override { was_reset = true; }
  void set_manual_consume(bool m) override { manual = m; }
  void consume(size_t n) override { consumed += n; }
  bool is_closed() const override { return false; }

  // The far side sends.
  void deliver(BytesView d) {
    auto fn = handlers.on_data;
    fn(d);
    if (!manual) consumed += d.size();
  }
  void fin() { handlers.on_fin(); }
  void peer_reset() { handlers.on_reset(0); }
  // The far side read `n` bytes: room for more.
  void grant(size_t n) {
    room += n;
    if (handlers.on_writable) handlers.on_writable();
  }

  Handlers handlers;
  Bytes written;
  size_t room = SIZE_MAX / 2;
  size_t consumed = 0;
  bool manual = false;
  bool fin_sent = false;
  bool was_reset = false;
};

struct Closed {
  std::string reason;
  uint64_t up = 0, down = 0;
};

class CircuitSpliceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop), 0); }
  void TearDown() override {
    // An open circuit is owned by its streams' handlers; ending it frees it and its timer.
    if (splice) splice->abort("test over");
    splice.reset();
    uv_run(&loop, UV_RUN_NOWAIT);  // let timer handles close
    EXPECT_EQ(uv_loop_close(&loop), 0);
  }
  void start(uint64_t data_limit = 0, uint32_t duration_s = 0, Bytes src_rest = {}, Bytes dst_rest = {}) {
    splice = CircuitSplice::start(&loop, {src, dst, std::move(src_rest), std::move(dst_rest)}, data_limit, duration_s,
                                  [this](const std::string& r, uint64_t up, uint64_t down) {
                                    closed = Closed{r, up, down};
                                  });
  }

  uv_loop_t loop{};
  std::shared_ptr<FakeStream> src = std::make_shared<FakeStream>();
  std::shared_ptr<FakeStream> dst = std::make_shared<FakeStream>();
  std::shared_ptr<CircuitSplice> splice;
  std::optional<Closed> closed;
};

TEST_F(CircuitSpliceTest, ForwardsBothWaysAndClosesAfterBothFins) {
  start(0, 0, "early", "");
  EXPECT_TRUE(src->manual);
  EXPECT_TRUE(dst->manual);
  EXPECT_EQ(dst->written, "early");  // bytes that came with the CONNECT go first
  src->deliver(" hello");
  dst->deliver("world");
  EXPECT_EQ(dst->written, "early hello");
  EXPECT_EQ(src->written, "world");
  EXPECT_EQ(src->consumed, 11u);
  EXPECT_EQ(dst->consumed, 5u);
  src->fin();
  EXPECT_TRUE(dst->fin_sent);
  EXPECT_FALSE(closed);
  dst->fin();
  EXPECT_TRUE(src->fin_sent);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->reason, "closed");
  EXPECT_EQ(closed->up, 11u);
  EXPECT_EQ(closed->down, 5u);
  EXPECT_FALSE(src->was_reset || dst->was_reset);
}

TEST_F(CircuitSpliceTest, SlowReceiverHoldsBackTheSendersWindow) {
  dst->room = 4;
  start();
  src->deliver("0123456789");
  EXPECT_EQ(dst->written, "0123");
  EXPECT_EQ(src->consumed, 4u);  // the rest stays unconsumed: the sender's window stays shut
  src->fin();
  EXPECT_FALSE(dst->fin_sent);  // FIN waits behind the pending bytes
  dst->grant(3);
  EXPECT_EQ(dst->written, "0123456");
  EXPECT_EQ(src->consumed, 7u);
  dst->grant(100);
  EXPECT_EQ(dst->written, "0123456789");
  EXPECT_EQ(src->consumed, 10u);
  EXPECT_TRUE(dst->fin_sent);
}

TEST_F(CircuitSpliceTest, DataLimitCutsTheCircuit) {
  start(8);
  src->deliver("abcdef");
  EXPECT_FALSE(closed);
  src->deliver("ghijkl");
  EXPECT_EQ(dst->written, "abcdefgh");  // exactly the limit, not a byte more
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->reason, "data limit reached");
  EXPECT_EQ(closed->up, 8u);
  EXPECT_TRUE(src->was_reset);
  EXPECT_TRUE(dst->was_reset);
  dst->room = 100;
  src->deliver("more");  // after the end nothing moves
  EXPECT_EQ(dst->written, "abcdefgh");
}

TEST_F(CircuitSpliceTest, EachDirectionHasItsOwnBudget) {
  start(5);
  src->deliver("abcd");
  dst->deliver("wxyz");
  EXPECT_FALSE(closed);
  EXPECT_EQ(dst->written, "abcd");
  EXPECT_EQ(src->written, "wxyz");
}

TEST_F(CircuitSpliceTest, ResetOfOneEndResetsTheOther) {
  start();
  src->deliver("x");
  dst->peer_reset();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->reason, "reset by an end");
  EXPECT_TRUE(src->was_reset);
}

TEST_F(CircuitSpliceTest, DurationLimitEndsTheCircuit) {
  start(0, 1);
  src->deliver("x");
  EXPECT_FALSE(closed);
  uv_run(&loop, UV_RUN_ONCE);  // the 1 s deadline
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->reason, "duration limit reached");
  EXPECT_TRUE(src->was_reset && dst->was_reset);
}

}  // namespace
}  // namespace punchgate
