#include "punchgate/core/sockaddr.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>

namespace punchgate {

SockAddr SockAddr::from(const sockaddr* sa) {
  SockAddr a;
  a.len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::memcpy(&a.storage, sa, a.len);
  return a;
}

Result<SockAddr> SockAddr::from_ip(const std::string& host, uint16_t port) {
  SockAddr out;
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  out = SockAddr{};
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return make_error("\"{}\" is not an IP address", host);
}

uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::string SockAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "<unknown address>";
}

bool operator==(const SockAddr& a, const SockAddr& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
    return x->sin6_port == y->sin6_port && std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return false;
}

size_t SockAddrHash::operator()(const SockAddr& a) const noexcept {
  size_t h = std::hash<uint16_t>{}(a.port());
  if (a.family() == AF_INET) {
    h ^= std::hash<uint32_t>{}(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr) * 31;
  } else if (a.family() == AF_INET6) {
    const auto* b = reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr);
    h ^= std::hash<std::string_view>{}(std::string_view(b, 16)) * 31;
  }
  return h;
}

namespace {

struct ResolveRequest {
  uv_getaddrinfo_t req{};
  std::string host;
  std::function<void(Result<SockAddr>)> done;
};

}  // namespace

void resolve_address(uv_loop_t* loop, const std::string& host, uint16_t port, int socktype,
                     std::function<void(Result<SockAddr>)> done, int family) {
  if (auto ip = SockAddr::from_ip(host, port)) return done(*ip);
  auto req = std::make_unique<ResolveRequest>();
  req->host = host;
  req->done = std::move(done);
  req->req.data = req.get();
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  std::string service = std::to_string(port);
  int rv = uv_getaddrinfo(
      loop, &req->req,
      [](uv_getaddrinfo_t* r, int status, addrinfo* res) {
        std::unique_ptr<ResolveRequest> owned(static_cast<ResolveRequest*>(r->data));
        if (status != 0 || !res) {
          owned->done(make_error("cannot resolve {}: {}", owned->host, uv_strerror(status)));
        } else {
          owned->done(SockAddr::from(res->ai_addr));
        }
        if (res) uv_freeaddrinfo(res);
      },
      host.c_str(), service.c_str(), &hints);
  if (rv != 0) return req->done(make_error("cannot resolve {}: {}", host, uv_strerror(rv)));
  req.release();  // owned by the pending request until its callback
}

}  // namespace punchgate
