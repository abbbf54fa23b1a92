// Runs multistream-select on a fresh stream, then hands the stream to the protocol it chose.
#pragma once

#include "punchgate/host/host.hpp"
#include "punchgate/transport/connection.hpp"

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace punchgate {

inline constexpr uint64_t kNegotiationTimeoutMs = 10'000;

// Outbound: propose `protocols` in order; `done` fires once with the stream or an error.
void negotiate_outbound(uv_loop_t* loop, ConnectionPtr conn, StreamPtr stream, std::vector<std::string> protocols,
                        std::function<void(Result<NegotiatedStream>)> done);

// Inbound: answer the peer's proposals from `supported`; `done` fires once with the chosen
// protocol (the caller dispatches to its handler) or the stream is reset on failure.
void negotiate_inbound(uv_loop_t* loop, ConnectionPtr conn, StreamPtr stream, std::vector<std::string> supported,
                       std::function<void(NegotiatedStream)> done);

}  // namespace punchgate
