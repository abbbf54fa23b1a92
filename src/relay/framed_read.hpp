// Reads one uvarint-length-prefixed message off a stream (the framing of hop and stop messages),
// with a deadline. What follows the message on the stream is handed over untouched: after a
// circuit is established those bytes belong to the relayed connection.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/transport/connection.hpp"

#include <uv.h>

#include <functional>

namespace punchgate {

struct FramedMessage {
  Bytes message;
  Bytes rest;  // bytes after the message
};

// `initial`: bytes already read from the stream (e.g. multistream leftover). `done` fires exactly
// once; by then the stream's handlers are cleared, and bytes arriving later wait in the stream
// until the caller sets new handlers.
void read_framed_message(uv_loop_t* loop, const StreamPtr& stream, Bytes initial, size_t max_size,
                         uint64_t timeout_ms, std::function<void(Result<FramedMessage>)> done);

}  // namespace punchgate
