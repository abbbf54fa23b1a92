#include "relay/framed_read.hpp"

#include "punchgate/core/uv_handle.hpp"
#include "punchgate/wire/length_prefix.hpp"

#include <memory>

namespace punchgate {

namespace {

struct FramedRead {
  FramedRead(uv_loop_t* loop, StreamPtr s, size_t max, std::function<void(Result<FramedMessage>)> cb)
      : stream(std::move(s)), reader(max), timer(loop), done(std::move(cb)) {}

  void finish(Result<FramedMessage> r) {
    if (!done) return;
    timer.stop();
    auto cb = std::move(done);
    done = nullptr;
    stream->set_handlers({});  // later bytes wait in the stream for the caller's handlers
    cb(std::move(r));
  }

  void feed(BytesView data) {
    Status s = reader.feed(data);
    if (!s) return finish(s.error());
    auto frame = reader.next();
    if (!frame) return finish(frame.error());
    if (!*frame) return;
    finish(FramedMessage{std::move(**frame), reader.take_buffered()});
  }

  StreamPtr stream;
  UvarintFrameReader reader;
  Timer timer;
  std::function<void(Result<FramedMessage>)> done;
};

}  // namespace

void read_framed_message(uv_loop_t* loop, const StreamPtr& stream, Bytes initial, size_t max_size,
                         uint64_t timeout_ms, std::function<void(Result<FramedMessage>)> done) {
  auto st = std::make_shared<FramedRead>(loop, stream, max_size, std::move(done));
  // The stream's handlers own the state (the timer only looks at it); finish() clears them.
  std::weak_ptr<FramedRead> weak = st;
  st->timer.start(timeout_ms, 0, [weak, timeout_ms] {
    if (auto s = weak.lock()) s->finish(make_error("no complete message within {} ms", timeout_ms));
  });
  stream->set_handlers({
      .on_data = [st](BytesView d) { st->feed(d); },
      .on_fin = [st] { st->finish(make_error("stream ended before a complete message")); },
      .on_reset = [st](uint64_t) { st->finish(make_error("stream reset before a complete message")); },
      .on_closed = [st] { st->finish(make_error("stream closed before a complete message")); },
  });
  if (!initial.empty()) st->feed(initial);
}

}  // namespace punchgate
