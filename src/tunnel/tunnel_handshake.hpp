// The tunnel request/response exchange on a freshly negotiated stream, both sides, with a timeout.
#pragma once

#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/tunnel_negotiation.hpp"

#include <functional>

namespace punchgate {

inline constexpr uint64_t kTunnelHandshakeTimeoutMs = 15'000;

struct OpenedTunnel {
  StreamPtr stream;
  Bytes rest;  // raw-phase bytes that arrived with the response
};

// Dialer: sends {"service_name":…} and waits for the answer. A rejection is an error carrying the
// peer's reason; `rejected` tells it apart from transport failures.
void request_tunnel(Host& host, StreamPtr stream, Bytes leftover, const std::string& service,
                    std::function<void(Result<OpenedTunnel>, bool rejected)> done);

// Listener: reads the request. The stream is reset on a malformed or late request.
void read_tunnel_request(Host& host, NegotiatedStream ns,
                         std::function<void(NegotiatedStream, TunnelRequest, Bytes rest)> done);

}  // namespace punchgate
