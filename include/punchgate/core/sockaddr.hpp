// Socket addresses: a value type over sockaddr_storage, and asynchronous name resolution.
#pragma once

#include "punchgate/core/result.hpp"

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace punchgate {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"

  static SockAddr from(const sockaddr* sa);
  // Parses an IP literal (no brackets) and port; error when `host` is not an IP literal.
  static Result<SockAddr> from_ip(const std::string& host, uint16_t port);

  friend bool operator==(const SockAddr& a, const SockAddr& b);
};

struct SockAddrHash {
  size_t operator()(const SockAddr& a) const noexcept;
};

// Resolves `host` (IP literal or name) to its first address; IP literals complete synchronously.
// `socktype` is SOCK_STREAM or SOCK_DGRAM; `family` AF_INET/AF_INET6 restricts the answer.
void resolve_address(uv_loop_t* loop, const std::string& host, uint16_t port, int socktype,
                     std::function<void(Result<SockAddr>)> done, int family = AF_UNSPEC);

}  // namespace punchgate
