// Live traffic figures of one tunnel listener or one exposed service, for `punchgate status`.
#pragma once

#include <cstdint>

namespace punchgate {

struct TrafficStats {
  uint64_t active = 0;          // connections (TCP) or flows (UDP) open now
  uint64_t total = 0;           // opened since start
  uint64_t bytes_sent = 0;      // toward the peer (consumer side) / toward the service (provider side)
  uint64_t bytes_received = 0;  // from the peer / from the service

  TrafficStats& operator+=(const TrafficStats& o) {
    active += o.active;
    total += o.total;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
    return *this;
  }
};

}  // namespace punchgate
