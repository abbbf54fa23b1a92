#!/usr/bin/env python3
"""End-to-end tests of punchgate's TCP/UDP tunnels on loopback.

    python3 tests/e2e/test_tunnels.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

Topology of most tests: a provider A (`--expose NAME=127.0.0.1:PORT[/udp]`, in
front of an echo server run by this script) and a consumer B (`--bootstrap A
--tunnel A:NAME@127.0.0.1:PORT[/udp]`); the test talks to B's local port.

Covers: plain TCP echo, a large transfer both ways with sha256 at both ends,
TCP half-close (both directions), many concurrent connections, many short
sequential downloads over one peer connection (more than one QUIC receive
window in total), a service that speaks first and hangs up, unexposed service / service down rejections, UDP flows
(per-client demultiplexing), the `pipe` subcommand, `--allow`, the provider
restarting under a running consumer, and bad --expose/--tunnel/--allow specs.

Size knob: PUNCHGATE_TEST_SCALE (float, default 1.0) multiplies the data sizes
and connection counts (at 1.0: 1 GiB each way in test_bulk_transfer, 1000
connections in test_concurrent_connections (never fewer than 50), 8 MiB through
`pipe`, 500 connections in test_service_speaks_first (never fewer than 200)). The ASan ctest run sets PUNCHGATE_TEST_SCALE=0.1 because the sanitized
binary is several times slower. test_many_short_downloads is not scaled (it
must exceed the 4 MiB connection window to mean anything). Timeouts are
generous and exist only to avoid hangs; nothing asserts on timing. A failing
test keeps its temp dir (logs) and says where; processes are always killed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import resource
import select
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import TestFailure, check, main, wait_for  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    LISTEN, LOCAL_PEER_ID_RX, T, TcpEchoServer, check_alive, check_bad_values, echo_once, free_port,
    isolate_env, make_identity, node_info, recv_all, scale_from_env, spawn_node, wait_count,
    wait_tunnel_listening,
)

STALL = 30  # test_concurrent_connections gives up when no connection finished for this long

SCALE = scale_from_env()
BULK_BYTES = max(1 << 20, int((1 << 30) * SCALE))   # test_bulk_transfer, each direction
N_CONCURRENT = max(50, int(1000 * SCALE))            # test_concurrent_connections
PIPE_BYTES = max(64 << 10, int((8 << 20) * SCALE))   # test_pipe
N_GREETINGS = max(200, int(500 * SCALE))             # test_service_speaks_first


def _raise_fd_limit(want: int) -> None:
    """test_concurrent_connections holds 2 fds per connection here (client + echo
    server side) and B/A one or two each; punchgate inherits our limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


_raise_fd_limit(4 * N_CONCURRENT + 512)

isolate_env()


# --------------------------------------------------------------------------
# local services (run inside this process, torn down by the tests' finally blocks)

class UdpEchoServer:
    """Thread answering every datagram with b"echo:" + payload to its sender.
    Records the distinct source addresses it saw."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources: set = set()
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-echo", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                continue
            self.sources.add(src)
            self.count += 1
            try:
                self.sock.sendto(b"echo:" + data, src)
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# --------------------------------------------------------------------------
# helpers

def start_provider(h, name: str, exposes: list[str], *extra, key: str | None = None,
                   listen: str = LISTEN):
    """Start a node exposing `exposes`; return (proc, peer_id, listen_addr, key_path)."""
    key = key or h.path(f"{name}.key")
    pg = spawn_node(h, name, *[a for e in exposes for a in ("--expose", e)], *extra, key=key, listen=listen)
    peer_id, addr = node_info(pg)
    return pg, peer_id, addr, key


def start_consumer(h, name: str, provider_id: str, provider_addr: str, tunnels: list[str],
                   *extra, key: str | None = None):
    """Start a node with --bootstrap to the provider and `tunnels` (each
    'SERVICE@127.0.0.1:PORT[/udp]', the provider id is prepended); wait until
    every tunnel's local port is bound. Return (proc, peer_id)."""
    pg = spawn_node(h, name, *[a for t in tunnels for a in ("--tunnel", f"{provider_id}:{t}")], *extra,
                    key=key, bootstrap=f"{provider_addr}/p2p/{provider_id}")
    peer_id = wait_for(pg, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
    for t in tunnels:
        wait_tunnel_listening(pg, t.split("@", 1)[1])
    return pg, peer_id


def connect_expect_closed(port: int, send: bytes = b"hello?\n", timeout: float = T) -> bytes:
    """Connect, send a little, and read until the tunnel closes the connection.
    Returns what was received (a reset counts as closed). Fails on timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        got = b""
        try:
            s.sendall(send)
        except (BrokenPipeError, ConnectionResetError):
            return got
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    return got
                got += d
        except ConnectionResetError:
            return got
        except socket.timeout:
            raise TestFailure(f"local connection to 127.0.0.1:{port} was not closed within {timeout:.0f}s "
                              f"(received {len(got)} bytes)")


def det_chunks(seed: int, total: int, chunk: int = 1 << 20):
    """Deterministic pseudo-random bytes, `total` in all, in chunks."""
    rnd = random.Random(seed)
    left = total
    while left > 0:
        n = min(chunk, left)
        yield rnd.randbytes(n)
        left -= n


# --------------------------------------------------------------------------
# tests

def test_tcp_echo(h):
    """A few lines through a TCP tunnel come back; both ends log the tunnel."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{port}"])
        with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
            for i in range(3):
                line = f"hello {i} through the tunnel\n".encode()
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    d = s.recv(4096)
                    check(d, f"tunnel closed after {len(got)} bytes of echo #{i}")
                    got += d
                check(got == line, f"echo #{i}: sent {line!r}, got {got!r}")
        wait_for(a, r"tunnel request peer=" + b_id + r" service=echo\b", timeout=T, stream="stderr")
        wait_for(a, r"tunnel accepted peer=" + b_id + r" service=echo\b", timeout=T, stream="stderr")
        wait_for(b, r"client tunnel opened peer=" + a_id + r" service=echo\b", timeout=T, stream="stderr")
        n = sum(len(f"hello {i} through the tunnel\n") for i in range(3))
        m = wait_for(a, r"tunnel closed peer=" + b_id + r" service=echo bytes_to_service=(\d+) "
                     r"bytes_from_service=(\d+)", timeout=T, stream="stderr")
        check((int(m.group(1)), int(m.group(2))) == (n, n), f"A's tunnel closed line has wrong counts: {m.group(0)}")
        m = wait_for(b, r"client tunnel closed peer=" + a_id + r" service=echo bytes_sent=(\d+) "
                     r"bytes_received=(\d+)", timeout=T, stream="stderr")
        check((int(m.group(1)), int(m.group(2))) == (n, n), f"B's client tunnel closed line has wrong counts: {m.group(0)}")
        check_alive(a, b)


def test_bulk_transfer(h):
    """BULK_BYTES of pseudo-random data each way through one tunnel connection:
    the sha256 of what was sent equals the sha256 of what came back."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{port}"])
        seed = int.from_bytes(os.urandom(4), "big")
        print(f"  bulk: {BULK_BYTES} bytes each way, seed={seed}", flush=True)
        sent_hash = hashlib.sha256()
        send_err: list = []
        sent = [0]
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), timeout=T)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

            def sender():
                try:
                    for chunk in det_chunks(seed, BULK_BYTES):
                        sent_hash.update(chunk)
                        s.sendall(chunk)
                        sent[0] += len(chunk)
                    s.shutdown(socket.SHUT_WR)
                except BaseException as e:  # noqa: BLE001
                    send_err.append(e)

            th = threading.Thread(target=sender, name="bulk-sender", daemon=True)
            th.start()
            recv_hash = hashlib.sha256()
            received = 0
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            try:
                while True:
                    n = s.recv_into(buf)
                    if n == 0:
                        break
                    recv_hash.update(view[:n])
                    received += n
            except socket.timeout:
                raise TestFailure(f"no data for {T}s after receiving {received} of {BULK_BYTES} bytes "
                                  f"(sent {sent[0]})")
            th.join(T)
            check(not th.is_alive(), f"sender still blocked after the echo ended (sent {sent[0]})")
            check(not send_err, f"sending failed after {sent[0]} bytes: {send_err[:1]!r}")
        finally:
            s.close()
        dt = time.monotonic() - t0
        print(f"  bulk: {received} bytes back in {dt:.1f}s ({2 * received / dt / 1e6:.0f} MB/s both ways)", flush=True)
        check(received == BULK_BYTES, f"received {received} bytes back, sent {BULK_BYTES}")
        check(recv_hash.hexdigest() == sent_hash.hexdigest(),
              f"sha256 mismatch: sent {sent_hash.hexdigest()}, received {recv_hash.hexdigest()}")
        m = wait_for(a, r"tunnel closed peer=" + b_id + r" service=echo bytes_to_service=(\d+) "
                     r"bytes_from_service=(\d+)", timeout=T, stream="stderr")
        check(int(m.group(1)) == BULK_BYTES and int(m.group(2)) == BULK_BYTES,
              f"A's byte counts are wrong: {m.group(0)}")
        check_alive(a, b)


def test_half_close(h):
    """Client half-close: the client sends, shuts its write side, and still gets
    every echoed byte plus the trailer the server writes after seeing EOF.
    Service half-close: on the client's first byte the service sends a banner
    and shuts its write side; the client reads banner + EOF and can still send
    everything."""
    trailer = b"\n-- server saw EOF --\n"
    with TcpEchoServer(trailer=trailer) as echo, TcpEchoServer(banner=b"BANNER " * 1000) as ban:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}",
                                                    f"banner=127.0.0.1:{ban.port}"])
        port, bport = free_port(), free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{port}", f"banner@127.0.0.1:{bport}"])

        payload = random.Random(7).randbytes(3 << 20)  # more than socket buffers hold
        got = echo_once(port, payload, reset_ok=False)  # sends from a thread, then SHUT_WR
        check(got == payload + trailer,
              f"after SHUT_WR got {len(got)} bytes, want {len(payload)} echoed + {len(trailer)} trailer "
              f"(trailer seen: {got.endswith(trailer)}, echo prefix ok: {got[:len(payload)] == payload})")
        check(echo.eofs == 1, f"echo server saw {echo.eofs} EOFs, want 1")

        # empty request: only the trailer comes back
        got = echo_once(port, b"")
        check(got == trailer, f"half-close without data: got {got!r}, want just the trailer")

        # service side half-closes first
        up = random.Random(8).randbytes(1 << 20)
        with socket.create_connection(("127.0.0.1", bport), timeout=T) as s:
            s.sendall(b"?")
            banner = recv_all(s)
            check(banner == ban.banner, f"got {len(banner)} banner bytes, want {len(ban.banner)}")
            s.sendall(up)
            s.shutdown(socket.SHUT_WR)
            rest = recv_all(s)
            check(rest == b"", f"got {len(rest)} more bytes after the service's EOF")
        deadline = time.monotonic() + T
        while ban.eofs < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        check(ban.eofs == 1 and ban.received == 1 + len(up),
              f"banner service got {ban.received} of {1 + len(up)} bytes (EOFs {ban.eofs}) after it half-closed")
        m = wait_for(a, r"tunnel closed peer=" + b_id + r" service=banner bytes_to_service=(\d+) "
                     r"bytes_from_service=(\d+)", timeout=T, stream="stderr")
        check((int(m.group(1)), int(m.group(2))) == (1 + len(up), len(ban.banner)), f"wrong counts: {m.group(0)}")
        check_alive(a, b)


def test_concurrent_connections(h):
    """N_CONCURRENT simultaneous connections through one tunnel, each echoing a
    distinct payload."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{port}"])
        rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
        payloads = [f"connection {i}:".encode() + rnd.randbytes(rnd.randint(1, 16 << 10)) for i in range(N_CONCURRENT)]

        async def one(i: int):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(payloads[i])
                await writer.drain()
                writer.write_eof()
                got = await reader.read()  # until EOF
            finally:
                writer.close()
            return got

        async def run_all():
            tasks = [asyncio.ensure_future(one(i)) for i in range(N_CONCURRENT)]
            pending = set(tasks)
            # hang guard: give up when no connection finished for STALL seconds
            while pending:
                done, pending = await asyncio.wait(pending, timeout=STALL, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    break
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
            return [None if t in pending else (t.exception() or t.result()) for t in tasks]

        results = asyncio.run(run_all())
        bad = []
        for i, r in enumerate(results):
            if r is None:
                bad.append(f"#{i}: unfinished (no connection completed for {STALL}s)")
            elif isinstance(r, BaseException):
                bad.append(f"#{i}: {r!r}")
            elif r != payloads[i]:
                bad.append(f"#{i}: got {len(r)} bytes, want {len(payloads[i])} (prefix {r[:20]!r})")
        check(not bad, f"{len(bad)} of {N_CONCURRENT} connections failed: " + "; ".join(bad[:10]))
        check(echo.connections == N_CONCURRENT, f"echo server saw {echo.connections} connections, want {N_CONCURRENT}")
        wait_count(a, r"tunnel closed peer=" + b_id + r" service=echo ", N_CONCURRENT, timeout=60)
        check_alive(a, b)


def test_many_short_downloads(h):
    """300 sequential short request/response connections, each receiving 32 KiB
    from the service (10 MiB in all, more than one QUIC connection-level
    receive window) over one peer connection: every
    one gets its whole download. Guards against flow-control credit for the
    tail of a finished stream never being returned at the connection level."""
    size, n = 32 << 10, 300
    with TcpEchoServer(banner=random.Random(11).randbytes(size)) as srv:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"dl=127.0.0.1:{srv.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"dl@127.0.0.1:{port}"])
        for i in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
                s.sendall(b"?")  # request; the 32 KiB response follows, then EOF
                s.shutdown(socket.SHUT_WR)
                got = b""
                try:
                    got = recv_all(s)
                except socket.timeout:
                    pass
            check(got == srv.banner,
                  f"download #{i} (after {i * size} bytes in earlier downloads): got {len(got)} of {size} bytes "
                  f"(stalled for {T}s or closed early)")
        check_alive(a, b)


def test_service_speaks_first(h):
    """A service that sends a greeting at once and hangs up (the greeting and the
    FIN can reach the consumer together with the tunnel's accept response):
    every client still receives the whole greeting, over N_GREETINGS
    sequential connections."""
    greeting = b"220 hello from the service\r\n" * 4
    with TcpEchoServer(banner=greeting, banner_on="connect", hang_up=True) as srv:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"greet=127.0.0.1:{srv.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"greet@127.0.0.1:{port}"])
        bad = []
        for i in range(N_GREETINGS):
            with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
                try:
                    got = recv_all(s)
                except ConnectionResetError:
                    got = b"<reset>"
                except socket.timeout:
                    got = b"<timeout>"
            if got != greeting:
                bad.append(f"#{i}: {got[:40]!r} ({len(got)} bytes)")
        reasons = sorted(set(re.findall(r'client tunnel closed .*reason="([^"]*)"', b.stderr())))
        check(not bad, f"{len(bad)} of {N_GREETINGS} clients did not get the {len(greeting)}-byte greeting: "
              f"{'; '.join(bad[:5])}; B's close reasons: {reasons}")
        check_alive(a, b)


def test_unexposed_service(h):
    """--tunnel to a service A does not expose: the local connection is closed
    without data; both sides log `tunnel rejected … service=<name>`."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"nosuch@127.0.0.1:{port}"])
        got = connect_expect_closed(port)
        check(got == b"", f"got {got!r} from a tunnel to an unexposed service")
        wait_for(a, r"tunnel rejected peer=" + b_id + r" service=nosuch reason=\"[^\"]+\"", timeout=T,
                 stream="stderr")
        wait_for(b, r"tunnel rejected peer=" + a_id + r" service=nosuch reason=\"[^\"]+\"", timeout=T,
                 stream="stderr")
        check(echo.connections == 0, "the echo service was connected to")
        check(not re.search(r"tunnel accepted", a.stderr()), "A accepted a tunnel")
        # still usable afterwards: a second attempt is refused the same way
        check(connect_expect_closed(port) == b"", "second attempt got data")
        wait_count(a, r"tunnel rejected peer=" + b_id + r" service=nosuch ", 2)
        check_alive(a, b)


def test_service_down(h):
    """A exposes a port where nothing listens: the local connection is closed and
    A logs `tunnel rejected` with a connection-refused reason."""
    dead = free_port()
    a, a_id, a_addr, _ = start_provider(h, "A", [f"down=127.0.0.1:{dead}"])
    port = free_port()
    b, b_id = start_consumer(h, "B", a_id, a_addr, [f"down@127.0.0.1:{port}"])
    got = connect_expect_closed(port)
    check(got == b"", f"got {got!r} from a tunnel to a dead service")
    m = wait_for(a, r"tunnel rejected peer=" + b_id + r" service=down reason=\"([^\"]*)\"", timeout=T,
                 stream="stderr")
    check(re.search(r"connection refused", m.group(1), re.I), f"A's reject reason does not say connection refused: "
          f"{m.group(0)}")
    m = wait_for(b, r"tunnel rejected peer=" + a_id + r" service=down reason=\"([^\"]*)\"", timeout=T,
                 stream="stderr")
    check(re.search(r"connection refused", m.group(1), re.I), f"B's reject reason does not say connection refused: "
          f"{m.group(0)}")
    check_alive(a, b)


def test_udp(h):
    """Two local UDP clients through one /udp tunnel: each gets its own replies
    and only those."""
    with UdpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"dns=127.0.0.1:{echo.port}/udp"])
        port = free_port(socket.SOCK_DGRAM)
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"dns@127.0.0.1:{port}/udp"])
        socks = []
        try:
            for _ in range(2):
                c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                c.bind(("127.0.0.1", 0))
                c.connect(("127.0.0.1", port))
                c.setblocking(False)
                socks.append(c)
            n = 20
            want = [{f"client{k} datagram {i} ".encode() + bytes([k]) * (i * 37 % 1200) for i in range(n)}
                    for k in range(2)]
            got: list[set] = [set(), set()]
            foreign: list[list] = [[], []]
            # UDP may drop datagrams; resend what is missing a few times
            for round_ in range(10):
                for i in range(n):
                    for k in range(2):
                        d = sorted(want[k])[i]
                        if b"echo:" + d not in got[k]:
                            try:
                                socks[k].send(d)
                            except (BlockingIOError, ConnectionRefusedError):
                                pass
                deadline = time.monotonic() + (2 if round_ == 0 else 3)
                while time.monotonic() < deadline and not all(len(got[k]) == n for k in range(2)):
                    r, _, _ = select.select(socks, [], [], 0.1)
                    for k, c in enumerate(socks):
                        if c in r:
                            try:
                                d = c.recv(65535)
                            except (BlockingIOError, ConnectionRefusedError):
                                continue
                            if d.startswith(b"echo:") and d[5:] in want[k]:
                                got[k].add(d)
                            else:
                                foreign[k].append(d)
                if all(len(got[k]) == n for k in range(2)):
                    break
                check_alive(a, b)
            print(f"  udp: rounds={round_ + 1} server saw {echo.count} datagrams from {len(echo.sources)} sources",
                  flush=True)
            for k in range(2):
                check(not foreign[k], f"client {k} got datagrams that are not its own replies: "
                      f"{[x[:30] for x in foreign[k][:5]]}")
                check(len(got[k]) == n, f"client {k} got {len(got[k])} of {n} replies after 10 rounds")
            check(len(echo.sources) == 2, f"UDP service saw {len(echo.sources)} source addresses, want 2 "
                  f"(one flow per client): {echo.sources}")
        finally:
            for c in socks:
                c.close()
        wait_for(a, r"tunnel accepted peer=" + b_id + r" service=dns\b", timeout=T, stream="stderr")
        check_alive(a, b)


def run_pipe(h, key: str, a_id: str, a_addr: str, data: bytes, name: str):
    """`cat FILE | punchgate pipe A echo`: returns the proc after it exits."""
    infile = h.path(f"{name}.in")
    Path(infile).write_bytes(data)
    # stdin is a real pipe (from cat); exec so the pipeline's status is punchgate's
    cmd = (f"cat {sh_quote(infile)} | exec {sh_quote(h.punchgate)} --identity {sh_quote(key)} "
           f"pipe {a_id} echo --bootstrap {sh_quote(a_addr + '/p2p/' + a_id)}")
    p = h.spawn(name, ["/bin/sh", "-c", cmd])
    p.wait_exit(120)
    return p


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def test_pipe(h):
    """`punchgate pipe A echo` with stdin from a pipe: the bytes come back on
    stdout, and EOF on stdin makes it exit 0 with everything delivered."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        key = h.path("C.key")
        data = random.Random(9).randbytes(PIPE_BYTES)
        p = run_pipe(h, key, a_id, a_addr, data, "pipe")
        out = Path(p.stdout_path).read_bytes()
        check(p.returncode == 0, f"pipe exited {p.returncode}, want 0; stderr tail: {p.stderr()[-600:]!r}")
        check(out == data, f"pipe stdout has {len(out)} bytes, want the {len(data)} sent "
              f"(prefix equal: {out == data[:len(out)]})")
        check(echo.eofs == 1, f"echo service saw {echo.eofs} EOFs, want 1 (stdin EOF half-closes)")
        # empty stdin: exits 0 with nothing on stdout
        p = run_pipe(h, key, a_id, a_addr, b"", "pipe-empty")
        out = Path(p.stdout_path).read_bytes()
        check(p.returncode == 0, f"pipe with empty stdin exited {p.returncode}; stderr: {p.stderr()[-600:]!r}")
        check(out == b"", f"pipe with empty stdin printed {len(out)} bytes")
        check_alive(a)


def test_allow(h):
    """A --allow B: B's tunnel works; C's connection is refused right after the
    handshake and C never gets to name a service."""
    with TcpEchoServer() as echo:
        b_key, b_id = make_identity(h, "B.key")
        a, a_id, a_addr, _ = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"], "--allow", b_id)
        bport, cport = free_port(), free_port()
        b, _ = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{bport}"], key=b_key)
        c, c_id = start_consumer(h, "C", a_id, a_addr, [f"echo@127.0.0.1:{cport}"])
        check(echo_once(bport, b"allowed peer\n") == b"allowed peer\n", "B's tunnel did not echo")
        got = connect_expect_closed(cport, b"not allowed\n")
        check(got == b"", f"C's tunnel returned data: {got!r}")
        wait_for(a, r"connection refused peer=" + c_id + r"\b.*not in allow list", timeout=T, stream="stderr")
        check(not re.search(r"tunnel (request|accepted) peer=" + c_id, a.stderr()),
              "A logged a tunnel request from C, which is not in the allow list")
        check(not re.search(r"connection refused peer=" + b_id, a.stderr()), "A refused B, which is allowed")
        check(echo.connections == 1, f"echo service saw {echo.connections} connections, want 1 (B's)")
        check_alive(a, b, c)


def test_provider_restart(h):
    """A is stopped and restarted on the same port with the same identity; B (not
    restarted) serves new local connections through its tunnel again."""
    with TcpEchoServer() as echo:
        a, a_id, a_addr, a_key = start_provider(h, "A", [f"echo=127.0.0.1:{echo.port}"])
        port = free_port()
        b, b_id = start_consumer(h, "B", a_id, a_addr, [f"echo@127.0.0.1:{port}"])
        check(echo_once(port, b"before\n") == b"before\n", "tunnel did not echo before the restart")

        rc = a.terminate(timeout=20)
        check(rc == 0, f"A exited {rc} on SIGTERM, want 0")
        # while A is down the tunnel port still accepts, then closes without data
        got = connect_expect_closed(port, b"anyone?\n", timeout=60)
        check(got == b"", f"got {got!r} through the tunnel while A was down")
        check_alive(b)

        a2, a2_id, a2_addr, _ = start_provider(h, "A-restarted", [f"echo=127.0.0.1:{echo.port}"], key=a_key,
                                               listen=a_addr)
        check((a2_id, a2_addr) == (a_id, a_addr), f"restarted A is {a2_addr}/p2p/{a2_id}, want {a_addr}/p2p/{a_id}")
        deadline = time.monotonic() + 45
        attempts, last = 0, None
        while True:
            attempts += 1
            try:
                last = echo_once(port, b"after\n", timeout=15)
            except OSError as e:
                last = e
            if last == b"after\n":
                break
            check_alive(a2, b)
            check(time.monotonic() < deadline, f"no echo through B's tunnel within 45s of A's restart "
                  f"({attempts} attempts, last result {last!r})")
            time.sleep(0.5)
        print(f"  restart: echo again after {attempts} attempt(s)", flush=True)
        wait_for(a2, r"tunnel accepted peer=" + b_id + r" service=echo\b", timeout=T, stream="stderr")
        check_alive(a2, b)


def test_bad_specs(h):
    """Bad --expose/--tunnel/--allow values (flags and env): non-zero exit, exactly
    one stderr line naming the bad value."""
    key, peer = make_identity(h, "k.key")
    cases = [
        (["--expose", "echo=127.0.0.1:0"], "echo=127.0.0.1:0"),
        (["--expose", "echo"], "echo"),
        (["--expose", "=127.0.0.1:22"], "=127.0.0.1:22"),
        (["--expose", "echo=127.0.0.1"], "echo=127.0.0.1"),
        (["--expose", "echo=127.0.0.1:70000"], "echo=127.0.0.1:70000"),
        (["--expose", "echo=127.0.0.1:22/sctp"], "echo=127.0.0.1:22/sctp"),
        (["--expose", "echo=127.0.0.1:2x"], "echo=127.0.0.1:2x"),
        (["--expose", "echo=::1:22"], "echo=::1:22"),
        (["--expose", "echo=300.1.1.1:22"], "echo=300.1.1.1:22"),
        (["--expose", "bad/name=127.0.0.1:22"], "bad/name=127.0.0.1:22"),
        (["--expose", "echo=127.0.0.1:22", "--expose", "echo=127.0.0.1:23"], "echo=127.0.0.1:23"),
        (["--expose", "dup=127.0.0.1:22/udp", "--expose", "dup=127.0.0.1:22"], "dup"),
        (["--tunnel", f"{peer}:echo@127.0.0.1:0"], f"{peer}:echo@127.0.0.1:0"),
        (["--tunnel", "notapeer:echo@127.0.0.1:9000"], "notapeer"),
        (["--tunnel", f"{peer}:echo"], f"{peer}:echo"),
        (["--tunnel", f"{peer}@127.0.0.1:9000"], f"{peer}@127.0.0.1:9000"),
        (["--tunnel", f"{peer}:echo@127.0.0.1:9000/foo"], f"{peer}:echo@127.0.0.1:9000/foo"),
        (["--tunnel", f"{peer}:echo@127.0.0.1:abc"], f"{peer}:echo@127.0.0.1:abc"),
        (["--tunnel", f"{peer}:@127.0.0.1:9000"], f"{peer}:@127.0.0.1:9000"),
        (["--tunnel", f"{peer}:echo@127.0.0.1:9000", "--tunnel", f"{peer}:other@127.0.0.1:9000"],
         "127.0.0.1:9000"),
        (["--tunnel", f"{peer}:u@127.0.0.1:9000/udp", "--tunnel", f"{peer}:v@127.0.0.1:9000/udp"],
         "127.0.0.1:9000"),
        (["--allow", "notapeerid"], "notapeerid"),
        ({"PUNCHGATE_EXPOSE": "echo=127.0.0.1:0"}, "echo=127.0.0.1:0"),
        ({"PUNCHGATE_EXPOSE": "a=127.0.0.1:1,a=127.0.0.1:2"}, "a=127.0.0.1:2"),
        ({"PUNCHGATE_TUNNEL": f"{peer}:echo@127.0.0.1:0"}, f"{peer}:echo@127.0.0.1:0"),
        ({"PUNCHGATE_ALLOW": "notapeerid"}, "notapeerid"),
    ]
    check_bad_values(h, key, cases, what="bad-spec")


if __name__ == "__main__":
    main([
        test_tcp_echo,
        test_bulk_transfer,
        test_half_close,
        test_concurrent_connections,
        test_many_short_downloads,
        test_service_speaks_first,
        test_unexposed_service,
        test_service_down,
        test_udp,
        test_pipe,
        test_allow,
        test_provider_restart,
        test_bad_specs,
    ], description=__doc__)
