// Outbound TCP connect with a timeout, yielding an owned, connected handle.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/core/sockaddr.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <functional>

namespace punchgate {

inline constexpr uint64_t kTcpConnectTimeoutMs = 10'000;

void tcp_connect(uv_loop_t* loop, const SockAddr& to, std::function<void(Result<UvHandle<uv_tcp_t>>)> done);

}  // namespace punchgate
