/*
 * tunnel_load: load generator and servers for bench/tunnel-bench.
 *
 * Plain C (Linux, epoll, pthreads) so that the generator is never the bottleneck; the Python
 * driver compiles it on the fly (cc -O2 -pthread). Every mode is bounded by a count and a
 * wall-clock limit (--timeout, enforced with alarm()), and per-socket-operation timeouts.
 *
 *   server  --discard-port P --echo-port Q
 *       One epoll thread serving two listeners. Discard ("sink") protocol: the client sends an
 *       8-byte big-endian length L, then L bytes; after the last byte the server answers 1 byte
 *       'K' (so the client knows every byte went all the way through). Echo: bytes are sent back.
 *       Prints "READY <discard-port> <echo-port>" once listening; exits on SIGTERM/SIGINT/EOF of
 *       --timeout.
 *   stream  --port P --streams K --bytes N          K parallel sink streams of N bytes each.
 *   rr      --port P --count N [--warmup W]          1-byte request/response on one connection.
 *   connect --port P --count N                       N x (connect, 1-byte echo, close), sequential.
 *   idle    --port P --count N [--window W] [--hold S]
 *       Opens N connections (W in flight), each verified by a 1-byte echo; prints
 *       "READY <opened> <failed> <seconds>", then holds them until a line / EOF on stdin or
 *       --hold seconds, prints "DONE <still-open> <dropped>" and exits.
 *
 * Results are printed as one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double op_timeout_s = 30.0; /* per socket operation */
static const char *host = "127.0.0.1";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "tunnel_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "tunnel_load: overall --timeout reached\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(3);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void set_timeouts(int fd) {
  struct timeval tv;
  tv.tv_sec = (time_t)op_timeout_s;
  tv.tv_usec = (suseconds_t)((op_timeout_s - (double)tv.tv_sec) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in addr_of(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

/* Blocking connect with per-operation timeouts; -1 on failure. */
static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_timeouts(fd);
  struct sockaddr_in a = addr_of(port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  nodelay(fd);
  return fd;
}

static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int recv_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      errno = ECONNRESET;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct_us(const uint64_t *v, size_t n, double p) {
  if (n == 0) return -1;
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)v[rank - 1] / 1000.0;
}

static void print_lat(const char *mode, uint64_t *v, size_t n, size_t failed, double secs) {
  qsort(v, n, sizeof *v, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  printf("{\"mode\":\"%s\",\"count\":%zu,\"failed\":%zu,\"seconds\":%.6f,\"p50_us\":%.2f,\"p90_us\":%.2f,"
         "\"p99_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f}\n",
         mode, n, failed, secs, pct_us(v, n, 50), pct_us(v, n, 90), pct_us(v, n, 99), n ? (double)v[0] / 1000 : -1,
         n ? (double)v[n - 1] / 1000 : -1, n ? sum / (double)n / 1000 : -1);
}

/* ------------------------------------------------------------------------------------ server */

enum { KIND_LISTEN_DISCARD = 1, KIND_LISTEN_ECHO, KIND_DISCARD, KIND_ECHO, KIND_STDIN };

struct conn {
  int kind;
  /* discard */
  unsigned char hdr[8];
  int hdr_have;
  uint64_t remaining;
  int ack_pending;
  /* echo */
  char *out;
  size_t out_len, out_off;
};

static struct conn *conns;
static size_t nconns;
static int srv_epfd;
static volatile sig_atomic_t srv_stop;

static void on_stop(int sig) {
  (void)sig;
  srv_stop = 1;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of(port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(fd, 4096) != 0) die("listen");
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

static void ep_set(int op, int fd, uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(srv_epfd, op, fd, &ev);
}

static void srv_close(int fd) {
  epoll_ctl(srv_epfd, EPOLL_CTL_DEL, fd, NULL);
  free(conns[fd].out);
  memset(&conns[fd], 0, sizeof conns[fd]);
  close(fd);
}

/* Try to flush pending output; returns -1 if the connection died. */
static int srv_flush(int fd) {
  struct conn *c = &conns[fd];
  if (c->kind == KIND_DISCARD && c->ack_pending) {
    ssize_t n = send(fd, "K", 1, MSG_NOSIGNAL);
    if (n == 1) c->ack_pending = 0;
    else if (n < 0 && errno != EAGAIN) return -1;
  }
  if (c->kind == KIND_ECHO) {
    while (c->out_off < c->out_len) {
      ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) break;
        return -1;
      }
      c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  }
  int pending = (c->kind == KIND_DISCARD && c->ack_pending) || (c->kind == KIND_ECHO && c->out_len > 0);
  /* While echo output is pending, stop reading (backpressure). */
  ep_set(EPOLL_CTL_MOD, fd, pending ? (c->kind == KIND_ECHO ? EPOLLOUT : EPOLLIN | EPOLLOUT) : EPOLLIN);
  return 0;
}

static void srv_read(int fd, char *buf) {
  struct conn *c = &conns[fd];
  for (int rounds = 0; rounds < 16; rounds++) {
    ssize_t n = recv(fd, buf, CHUNK, 0);
    if (n == 0) {
      srv_close(fd);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      srv_close(fd);
      return;
    }
    if (c->kind == KIND_ECHO) {
      if (!c->out) c->out = malloc(CHUNK);
      memcpy(c->out, buf, (size_t)n);
      c->out_len = (size_t)n;
      c->out_off = 0;
      if (srv_flush(fd) < 0) {
        srv_close(fd);
        return;
      }
      if (c->out_len > 0) return; /* wait for EPOLLOUT */
      continue;
    }
    /* discard */
    size_t off = 0, len = (size_t)n;
    while (off < len) {
      if (c->hdr_have < 8) {
        size_t take = 8 - (size_t)c->hdr_have;
        if (take > len - off) take = len - off;
        memcpy(c->hdr + c->hdr_have, buf + off, take);
        c->hdr_have += (int)take;
        off += take;
        if (c->hdr_have == 8) {
          uint64_t l = 0;
          for (int i = 0; i < 8; i++) l = (l << 8) | c->hdr[i];
          c->remaining = l;
        } else {
          break;
        }
      }
      size_t take = len - off;
      if (take > c->remaining) take = (size_t)c->remaining;
      c->remaining -= take;
      off += take;
      if (c->remaining == 0) {
        c->hdr_have = 0;
        c->ack_pending = 1;
        if (srv_flush(fd) < 0) {
          srv_close(fd);
          return;
        }
      }
    }
  }
}

static int run_server(int dport, int eport, double timeout) {
  raise_nofile();
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  nconns = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur;
  conns = calloc(nconns, sizeof *conns);
  char *buf = malloc(CHUNK);
  if (!conns || !buf) die("calloc");
  srv_epfd = epoll_create1(EPOLL_CLOEXEC);
  int ld = listen_on(dport), le = listen_on(eport);
  conns[ld].kind = KIND_LISTEN_DISCARD;
  conns[le].kind = KIND_LISTEN_ECHO;
  ep_set(EPOLL_CTL_ADD, ld, EPOLLIN);
  ep_set(EPOLL_CTL_ADD, le, EPOLLIN);
  conns[0].kind = KIND_STDIN; /* parent closing our stdin means stop */
  ep_set(EPOLL_CTL_ADD, 0, EPOLLIN);
  printf("READY %d %d\n", bound_port(ld), bound_port(le));
  fflush(stdout);
  double deadline = now_s() + timeout;
  struct epoll_event evs[256];
  while (!srv_stop && now_s() < deadline) {
    int n = epoll_wait(srv_epfd, evs, 256, 500);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      struct conn *c = &conns[fd];
      if (c->kind == KIND_STDIN) {
        char tmp[64];
        if (read(0, tmp, sizeof tmp) <= 0) srv_stop = 1;
        continue;
      }
      if (c->kind == KIND_LISTEN_DISCARD || c->kind == KIND_LISTEN_ECHO) {
        for (int k = 0; k < 512; k++) {
          int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          if ((size_t)cfd >= nconns) {
            close(cfd);
            continue;
          }
          nodelay(cfd);
          memset(&conns[cfd], 0, sizeof conns[cfd]);
          conns[cfd].kind = c->kind == KIND_LISTEN_DISCARD ? KIND_DISCARD : KIND_ECHO;
          ep_set(EPOLL_CTL_ADD, cfd, EPOLLIN);
        }
        continue;
      }
      if (c->kind == 0) continue; /* closed earlier in this batch */
      if (evs[i].events & (EPOLLERR)) {
        srv_close(fd);
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        if (srv_flush(fd) < 0) {
          srv_close(fd);
          continue;
        }
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP)) {
        if (c->kind == KIND_ECHO && c->out_len > 0) continue;
        srv_read(fd, buf);
      }
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------ stream */

struct stream_arg {
  int port;
  uint64_t bytes;
  pthread_barrier_t *barrier;
  double t_start, t_end;
  int ok;
  char err[128];
};

static void *stream_thread(void *p) {
  struct stream_arg *a = p;
  char *buf = malloc(CHUNK);
  for (size_t i = 0; i < CHUNK; i++) buf[i] = (char)(i * 2654435761u >> 13);
  int fd = dial(a->port);
  if (fd < 0) snprintf(a->err, sizeof a->err, "connect: %s", strerror(errno));
  pthread_barrier_wait(a->barrier);
  if (fd < 0) goto out;
  a->t_start = now_s();
  unsigned char hdr[8];
  for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)(a->bytes >> (56 - 8 * i));
  if (send_all(fd, hdr, 8) != 0) {
    snprintf(a->err, sizeof a->err, "send: %s", strerror(errno));
    goto out;
  }
  uint64_t left = a->bytes;
  while (left > 0) {
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    if (send_all(fd, buf, n) != 0) {
      snprintf(a->err, sizeof a->err, "send after %llu bytes: %s", (unsigned long long)(a->bytes - left),
               strerror(errno));
      goto out;
    }
    left -= n;
  }
  char ack;
  if (recv_all(fd, &ack, 1) != 0 || ack != 'K') {
    snprintf(a->err, sizeof a->err, "waiting for sink ack: %s", strerror(errno));
    goto out;
  }
  a->t_end = now_s();
  a->ok = 1;
out:
  if (fd >= 0) close(fd);
  free(buf);
  return NULL;
}

static int run_stream(int port, int streams, uint64_t bytes) {
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)streams);
  struct stream_arg *args = calloc((size_t)streams, sizeof *args);
  pthread_t *th = calloc((size_t)streams, sizeof *th);
  for (int i = 0; i < streams; i++) {
    args[i].port = port;
    args[i].bytes = bytes;
    args[i].barrier = &barrier;
    pthread_create(&th[i], NULL, stream_thread, &args[i]);
  }
  for (int i = 0; i < streams; i++) pthread_join(th[i], NULL);
  double t0 = 1e300, t1 = 0;
  int ok = 0;
  const char *err = "";
  for (int i = 0; i < streams; i++) {
    if (!args[i].ok) {
      err = args[i].err;
      continue;
    }
    ok++;
    if (args[i].t_start < t0) t0 = args[i].t_start;
    if (args[i].t_end > t1) t1 = args[i].t_end;
  }
  if (ok != streams) {
    printf("{\"mode\":\"stream\",\"ok\":false,\"streams\":%d,\"streams_ok\":%d,\"error\":\"%s\"}\n", streams, ok, err);
    return 1;
  }
  double secs = t1 - t0;
  double total = (double)bytes * streams;
  printf("{\"mode\":\"stream\",\"ok\":true,\"streams\":%d,\"bytes_each\":%llu,\"seconds\":%.6f,\"gbit_s\":%.4f,"
         "\"per_stream_s\":[",
         streams, (unsigned long long)bytes, secs, total * 8 / secs / 1e9);
  for (int i = 0; i < streams; i++) printf("%s%.4f", i ? "," : "", args[i].t_end - args[i].t_start);
  printf("]}\n");
  return 0;
}

/* ------------------------------------------------------------------------------------ rr / connect */

static int run_rr(int port, size_t count, size_t warmup) {
  int fd = dial(port);
  if (fd < 0) die("connect");
  uint64_t *lat = calloc(count, sizeof *lat);
  char b = 'x';
  for (size_t i = 0; i < warmup; i++) {
    if (send_all(fd, &b, 1) != 0 || recv_all(fd, &b, 1) != 0) die("warmup round trip");
  }
  double t0 = now_s();
  for (size_t i = 0; i < count; i++) {
    uint64_t a = now_ns();
    if (send_all(fd, &b, 1) != 0 || recv_all(fd, &b, 1) != 0) die("round trip");
    lat[i] = now_ns() - a;
  }
  double secs = now_s() - t0;
  close(fd);
  print_lat("rr", lat, count, 0, secs);
  return 0;
}

static int run_connect(int port, size_t count) {
  uint64_t *lat = calloc(count, sizeof *lat);
  size_t n = 0, failed = 0;
  char first_err[128] = "";
  double t0 = now_s();
  for (size_t i = 0; i < count; i++) {
    uint64_t a = now_ns();
    int fd = dial(port);
    char b = 'c';
    if (fd < 0 || send_all(fd, &b, 1) != 0 || recv_all(fd, &b, 1) != 0) {
      if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", strerror(errno));
      failed++;
      if (fd >= 0) close(fd);
      continue;
    }
    lat[n++] = now_ns() - a;
    close(fd);
  }
  double secs = now_s() - t0;
  if (failed) fprintf(stderr, "tunnel_load connect: %zu failures, first: %s\n", failed, first_err);
  print_lat("connect", lat, n, failed, secs);
  return 0;
}

/* ------------------------------------------------------------------------------------ idle */

enum { I_FREE = 0, I_CONNECTING, I_SENT, I_OPEN };

struct iconn {
  int fd;
  int state;
  double deadline;
};

static int run_idle(int port, size_t count, size_t window, double hold, double ramp_limit) {
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  struct iconn *ic = calloc(count, sizeof *ic);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  size_t next = 0, inflight = 0, opened = 0, failed = 0;
  char first_err[160] = "";
  double t0 = now_s(), ramp_deadline = t0 + ramp_limit;
  struct epoll_event evs[512];
  struct sockaddr_in a = addr_of(port);
  size_t scan = 0;
  while ((next < count || inflight > 0) && now_s() < ramp_deadline) {
    while (next < count && inflight < window) {
      struct iconn *c = &ic[next];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->fd < 0) {
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "socket #%zu: %s", next, strerror(errno));
        failed++;
        next++;
        continue;
      }
      int rv = connect(c->fd, (struct sockaddr *)&a, sizeof a);
      if (rv != 0 && errno != EINPROGRESS) {
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "connect #%zu: %s", next, strerror(errno));
        close(c->fd);
        c->fd = -1;
        failed++;
        next++;
        continue;
      }
      c->state = I_CONNECTING;
      c->deadline = now_s() + op_timeout_s;
      struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = next};
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      inflight++;
      next++;
    }
    int n = epoll_wait(ep, evs, 512, 100);
    for (int i = 0; i < n; i++) {
      size_t idx = (size_t)evs[i].data.u64;
      struct iconn *c = &ic[idx];
      int bad = 0;
      const char *why = "";
      if (c->state == I_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          bad = 1;
          why = strerror(err);
        } else {
          nodelay(c->fd);
          if (send(c->fd, "i", 1, MSG_NOSIGNAL) != 1) {
            bad = 1;
            why = strerror(errno);
          } else {
            c->state = I_SENT;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = idx};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
          }
        }
      } else if (c->state == I_SENT) {
        char b;
        ssize_t r = recv(c->fd, &b, 1, 0);
        if (r == 1) {
          c->state = I_OPEN;
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          inflight--;
          opened++;
        } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
          bad = 1;
          why = r == 0 ? "closed by peer before echo" : strerror(errno);
        }
      }
      if (bad) {
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "conn #%zu: %s", idx, why);
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = I_FREE;
        inflight--;
        failed++;
      }
    }
    /* Per-connection timeouts: scan the in-flight tail (bounded: at most `window` live ones). */
    double t = now_s();
    for (size_t k = scan; k < next; k++) {
      struct iconn *c = &ic[k];
      if ((c->state == I_CONNECTING || c->state == I_SENT) && t > c->deadline) {
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "conn #%zu: no echo within %.0fs", k, op_timeout_s);
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = I_FREE;
        inflight--;
        failed++;
      }
    }
    while (scan < next && ic[scan].state != I_CONNECTING && ic[scan].state != I_SENT) scan++;
  }
  double ramp = now_s() - t0;
  int ramp_timed_out = (next < count || inflight > 0);
  /* Abandon whatever is still in flight. */
  for (size_t k = 0; k < next; k++) {
    if (ic[k].state == I_CONNECTING || ic[k].state == I_SENT) {
      close(ic[k].fd);
      ic[k].state = I_FREE;
      failed++;
    }
  }
  failed += count - next;
  if (ramp_timed_out && !first_err[0])
    snprintf(first_err, sizeof first_err, "ramp limit of %.0fs reached after %zu attempts", ramp_limit, next);
  printf("READY %zu %zu %.3f\n", opened, failed, ramp);
  fflush(stdout);
  if (first_err[0]) fprintf(stderr, "tunnel_load idle: first failure: %s\n", first_err);
  /* Hold: watch the open ones for drops, and stdin for the release. */
  for (size_t k = 0; k < count; k++) {
    if (ic[k].state == I_OPEN) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = k};
      epoll_ctl(ep, EPOLL_CTL_ADD, ic[k].fd, &ev);
    }
  }
  struct epoll_event sev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  size_t dropped = 0;
  double hold_deadline = now_s() + hold;
  int released = 0;
  while (!released && now_s() < hold_deadline) {
    int n = epoll_wait(ep, evs, 512, 200);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == UINT64_MAX) {
        released = 1;
        continue;
      }
      struct iconn *c = &ic[evs[i].data.u64];
      if (c->state == I_OPEN) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->state = I_FREE;
        close(c->fd);
        dropped++;
      }
    }
  }
  printf("DONE %zu %zu\n", opened - dropped, dropped);
  printf("{\"mode\":\"idle\",\"count\":%zu,\"opened\":%zu,\"failed\":%zu,\"dropped\":%zu,\"ramp_s\":%.3f,"
         "\"ramp_timed_out\":%s,\"first_error\":\"%s\"}\n",
         count, opened, failed, dropped, ramp, ramp_timed_out ? "true" : "false", first_err);
  fflush(stdout);
  for (size_t k = 0; k < count; k++)
    if (ic[k].state == I_OPEN) close(ic[k].fd);
  return 0;
}

/* ------------------------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tunnel_load server|stream|rr|connect|idle [options] (see source header)\n");
    return 2;
  }
  const char *mode = argv[1];
  int port = 0, dport = 0, eport = 0, streams = 1;
  uint64_t bytes = 0;
  size_t count = 0, warmup = 100, window = 64;
  double timeout = 600, hold = 60, ramp = 300;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--discard-port")) dport = atoi(v);
    else if (!strcmp(k, "--echo-port")) eport = atoi(v);
    else if (!strcmp(k, "--streams")) streams = atoi(v);
    else if (!strcmp(k, "--bytes")) bytes = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--count")) count = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--warmup")) warmup = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--window")) window = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--timeout")) timeout = atof(v);
    else if (!strcmp(k, "--op-timeout")) op_timeout_s = atof(v);
    else if (!strcmp(k, "--hold")) hold = atof(v);
    else if (!strcmp(k, "--ramp-limit")) ramp = atof(v);
    else if (!strcmp(k, "--host")) host = v;
    else {
      fprintf(stderr, "tunnel_load: unknown option %s\n", k);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  if (strcmp(mode, "server") != 0) alarm((unsigned)(timeout + 0.5));
  if (!strcmp(mode, "server")) return run_server(dport, eport, timeout);
  if (!strcmp(mode, "stream")) return run_stream(port, streams < 1 ? 1 : streams, bytes);
  if (!strcmp(mode, "rr")) return run_rr(port, count ? count : 1, warmup);
  if (!strcmp(mode, "connect")) return run_connect(port, count ? count : 1);
  if (!strcmp(mode, "idle")) return run_idle(port, count ? count : 1, window ? window : 1, hold, ramp);
  fprintf(stderr, "tunnel_load: unknown mode %s\n", mode);
  return 2;
}
