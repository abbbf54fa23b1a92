"""Helpers shared by punchgate's Python test drivers (tests/e2e, tests/interop).

Builds on punchgate_harness (processes, waiting, the runner); this module holds
what the drivers used to copy into each file:

- log/argv constants: LISTEN, LISTEN_RX, PEER_ID_RX, LOCAL_PEER_ID_RX, T
- environment: isolate_env(), scale_from_env()
- nodes: node_argv(), spawn_node(), node_info(), start_node(), make_identity(),
  wait_tunnel_listening(), check_alive(), stop_cleanly()
- log counting: count_matches(), wait_count()
- local services: TcpEchoServer (in-process), echo_server_argv() (the same
  server as a separate process, e.g. inside a network namespace), free_port(),
  recv_all(), echo_once()
- bad command-line / environment values: check_bad_values()
- js-libp2p scripts in tests/interop: start_js_script(), run_js_script(),
  wait_js_listening(), check_punchgate_binary(), interop_preflight()

Run as a program it is a TCP echo server (see echo_server_argv()):

    python3 -B tests/lib/punchgate_helpers.py echo-server
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (also when run as a program)

import asyncio  # noqa: E402
import errno  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterable, Optional, Sequence  # noqa: E402

from punchgate_harness import INTEROP_DIR, Harness, Proc, TestFailure, check, wait_for, wait_for_json  # noqa: E402

LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"
# group 1: the listen multiaddr, group 2: its UDP port
LISTEN_RX = r"listening on (/ip4/127\.0\.0\.1/udp/(\d+)/quic-v1)\b"
PEER_ID_RX = r"12D3KooW[1-9A-HJ-NP-Za-km-z]+"
LOCAL_PEER_ID_RX = r"local_peer_id=(" + PEER_ID_RX + r")"
T = 30  # generous, only to avoid hangs

# Every PUNCHGATE_* variable that configures a node (not PUNCHGATE_TEST_SCALE, which
# configures the tests), plus RUST_LOG.
NODE_ENV_VARS = ("PUNCHGATE_IDENTITY", "PUNCHGATE_LISTEN", "PUNCHGATE_BOOTSTRAP", "PUNCHGATE_EXPOSE",
                 "PUNCHGATE_TUNNEL", "PUNCHGATE_TUNNEL_BY_NAME", "PUNCHGATE_ALLOW", "PUNCHGATE_MDNS",
                 "PUNCHGATE_CONTROL_SOCKET", "PUNCHGATE_SERVICE_MANAGER", "PUNCHGATE_LOG", "RUST_LOG",
                 "PUNCHGATE_PORT_MAPPING", "PUNCHGATE_PORT_MAPPING_LEASE")


# --------------------------------------------------------------------------
# environment

def isolate_env(keep_log_level: bool = False) -> None:
    """The tests control the environment of every punchgate they start: drop every
    node-configuring variable from os.environ and log at info (or, with
    keep_log_level, at the caller's PUNCHGATE_LOG if set). PUNCHGATE_MDNS then falls
    back to the harness default (off)."""
    level = os.environ.get("PUNCHGATE_LOG") if keep_log_level else None
    for k in NODE_ENV_VARS:
        os.environ.pop(k, None)
    os.environ["PUNCHGATE_LOG"] = level or "info"


def scale_from_env() -> float:
    """PUNCHGATE_TEST_SCALE (float > 0, default 1.0): multiplies data sizes and counts."""
    raw = os.environ.get("PUNCHGATE_TEST_SCALE") or "1.0"
    try:
        v = float(raw)
    except ValueError:
        raise SystemExit(f"PUNCHGATE_TEST_SCALE={raw!r} is not a number")
    if not v > 0:
        raise SystemExit(f"PUNCHGATE_TEST_SCALE={raw!r} must be > 0")
    return v



# --------------------------------------------------------------------------
# nodes

def node_argv(key: str, *extra, listen: str = LISTEN, bootstrap: str | Iterable[str] = ()) -> list:
    """`--identity KEY --listen LISTEN [--bootstrap B]… EXTRA…`"""
    argv = ["--identity", key, "--listen", listen]
    for b in ([bootstrap] if isinstance(bootstrap, str) else bootstrap):
        argv += ["--bootstrap", b]
    return [*argv, *extra]


def spawn_node(h: Harness, name: str, *extra, key: str | None = None, listen: str = LISTEN,
               bootstrap: str | Iterable[str] = (), env: dict | None = None) -> Proc:
    """Start a node (identity file NAME.key in the temp dir unless `key` is given)
    without waiting for anything."""
    argv = node_argv(key or h.path(f"{name}.key"), *extra, listen=listen, bootstrap=bootstrap)
    return h.start_punchgate(*argv, env=env, name=name)


def node_info(proc: Proc, timeout: float = T) -> tuple[str, str]:
    """(peer id, first loopback listen multiaddr) of a started node, from its startup log."""
    peer_id = wait_for(proc, LOCAL_PEER_ID_RX, timeout=timeout, stream="stderr").group(1)
    addr = wait_for(proc, LISTEN_RX, timeout=timeout, stream="stderr").group(1)
    return peer_id, addr


def start_node(h: Harness, name: str, *extra, **kw) -> tuple[Proc, str, str]:
    """spawn_node() + node_info(): (proc, peer id, 'LISTEN_ADDR/p2p/PEER_ID')."""
    proc = spawn_node(h, name, *extra, **kw)
    peer_id, addr = node_info(proc)
    return proc, peer_id, f"{addr}/p2p/{peer_id}"


def make_identity(h: Harness, name: str, timeout: float = T) -> tuple[str, str]:
    """Create (or read) identity file `name` in the temp dir with `punchgate id`
    (which touches no network); return (path, peer id)."""
    path = h.path(name)
    p = h.run_punchgate("--identity", path, "id", timeout=timeout, name=f"id-{name}")
    check(p.returncode == 0, f"`punchgate --identity {path} id` exited {p.returncode}: {p.stderr().strip()!r}")
    out = p.stdout().strip()
    check(re.fullmatch(PEER_ID_RX, out), f"`punchgate id` printed {out!r}, want a single 12D3KooW… peer id")
    return path, out


def wait_tunnel_listening(proc: Proc, bind: str | int, timeout: float = T) -> None:
    """Wait for `tunnel listening bind=BIND …` (BIND: '127.0.0.1:PORT[/udp]', or a
    port on 127.0.0.1)."""
    if isinstance(bind, int):
        bind = f"127.0.0.1:{bind}"
    wait_for(proc, r"tunnel listening bind=" + re.escape(bind) + r" ", timeout=timeout, stream="stderr")


def check_alive(*procs: Proc) -> None:
    for p in procs:
        check(p.alive(), f"{p.name} died (rc={p.returncode})")


def stop_cleanly(*procs: Proc, timeout: float = T) -> None:
    """SIGTERM all `procs` at once; each must exit 0 within `timeout` of it (under
    ASan a leak or error report makes that fail). Late ones are SIGKILLed."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    problems = []
    for p in procs:
        try:
            rc = p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            problems.append(f"{p.name} did not exit within {timeout:.0f}s of SIGTERM (killed)")
            continue
        if rc != 0:
            problems.append(f"{p.name} exited {rc} on SIGTERM, want 0 (stderr tail: {p.stderr()[-300:]!r})")
    check(not problems, "unclean shutdown: " + "; ".join(problems))


# --------------------------------------------------------------------------
# log counting

def count_matches(proc: Proc, pattern: str, stream: str = "stderr") -> int:
    return len(re.findall(pattern, proc.text(stream), re.M))


def wait_count(proc: Proc, pattern: str, n: int, timeout: float = T, stream: str = "stderr") -> None:
    """Wait until `pattern` occurs at least n times in proc's output."""
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.popen.poll() is not None
        c = count_matches(proc, pattern, stream)
        if c >= n:
            return
        if exited:
            raise TestFailure(f"{proc.name} exited (rc={proc.returncode}) with {c} of {n} /{pattern}/")
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.0f}s: {proc.name} printed /{pattern}/ {c} times, want {n}")
        time.sleep(0.05)


# --------------------------------------------------------------------------
# local services and clients

def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A currently free loopback port (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpEchoServer:
    """asyncio TCP echo server on 127.0.0.1 in a background thread.

    Echoes everything as it arrives; when the client half-closes (EOF), writes
    `trailer` (if any) after the echoed bytes and then closes ("reply then
    close"). Counts connections and EOFs seen.

    reply_at_eof=True: nothing is sent before the client's EOF; then `prefix`
    + everything received + `trailer` goes out and the connection closes.

    Banner mode (`banner` set): sends the banner and shuts its write side,
    then only counts what it receives (the other direction of half-close)
    and closes after the client's EOF. banner_on="data": the banner goes out
    when the first bytes arrive (a request/response service);
    banner_on="connect": at once on accept, and with hang_up=True the server
    then closes the connection outright (a service that speaks first).
    """

    def __init__(self, trailer: bytes = b"", banner: bytes = b"", banner_on: str = "data",
                 hang_up: bool = False, prefix: bytes = b"", reply_at_eof: bool = False):
        assert banner_on in ("data", "connect")
        assert not prefix or reply_at_eof, "prefix needs reply_at_eof"
        self.trailer = trailer
        self.banner = banner
        self.banner_on = banner_on
        self.hang_up = hang_up
        self.prefix = prefix
        self.reply_at_eof = reply_at_eof
        self.connections = 0
        self.eofs = 0
        self.received = 0  # banner mode: bytes received (not echoed)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server = None
        self.transports: set = set()
        ready = threading.Event()
        err: list = []

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(
                    self._loop.create_server(lambda: _EchoProtocol(self), "127.0.0.1", 0, backlog=4096))
            except BaseException as e:  # noqa: BLE001
                err.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            # shutting down: close listener and every transport
            self._server.close()
            for t in asyncio.all_tasks(self._loop):
                t.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="tcp-echo", daemon=True)
        self._thread.start()
        ready.wait(10)
        if err:
            raise err[0]
        self.port = self._server.sockets[0].getsockname()[1]

    def _note(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)

    def close(self) -> None:
        if self._loop.is_closed():
            return

        def stop():
            for t in list(self.transports):
                t.abort()
            self._loop.stop()
        try:
            self._loop.call_soon_threadsafe(stop)
        except RuntimeError:
            pass
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _EchoProtocol(asyncio.Protocol):
    def __init__(self, server: TcpEchoServer):
        self.server = server
        self.transport = None
        self.held = bytearray()  # reply_at_eof: everything received so far

    def connection_made(self, transport):
        self.transport = transport
        self.server.transports.add(transport)
        self.server._note("connections")
        transport.set_write_buffer_limits(high=1 << 20, low=256 << 10)
        self.banner_sent = False
        if self.server.banner and self.server.banner_on == "connect":
            self._send_banner()

    def _send_banner(self):
        self.banner_sent = True
        self.transport.write(self.server.banner)
        if self.server.hang_up:
            self.transport.close()
        else:
            self.transport.write_eof()

    def data_received(self, data):
        if self.server.banner:
            with self.server._lock:
                self.server.received += len(data)
            if not self.banner_sent:
                self._send_banner()
            return
        if self.server.reply_at_eof:
            self.held += data
            return
        self.transport.write(data)

    def pause_writing(self):  # the peer is not reading: stop reading from it too
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def eof_received(self):
        self.server._note("eofs")
        if self.server.reply_at_eof and not self.server.banner:
            self.transport.write(self.server.prefix + bytes(self.held))
        if self.server.trailer and not self.server.banner:
            self.transport.write(self.server.trailer)
        self.transport.close()  # flushes what is buffered, then closes
        return True

    def connection_lost(self, exc):
        self.server.transports.discard(self.transport)


def echo_server_argv() -> list[str]:
    """argv of a TcpEchoServer as its own process: it prints `port N` on stdout once
    listening and runs until killed. For places an in-process server cannot reach,
    e.g. `ip netns exec NS` + this."""
    return [sys.executable, "-B", str(Path(__file__).resolve()), "echo-server"]


def recv_all(s: socket.socket, reset_ok: bool = False) -> bytes:
    """Read until EOF (with reset_ok, a connection reset counts as EOF)."""
    chunks = []
    while True:
        try:
            d = s.recv(1 << 16)
        except ConnectionResetError:
            if not reset_ok:
                raise
            d = b""
        if not d:
            return b"".join(chunks)
        chunks.append(d)


def _peer_cut_short(e: BaseException) -> bool:
    """A send that failed because the other end already reset or closed the
    connection (ENOTCONN when the reset lands before shutdown())."""
    return isinstance(e, (BrokenPipeError, ConnectionResetError)) or (
        isinstance(e, OSError) and e.errno == errno.ENOTCONN)


def echo_once(port: int, payload: bytes, timeout: float = T, reset_ok: bool = True) -> bytes:
    """Connect to 127.0.0.1:port, send payload and half-close (from a thread, so a
    payload larger than the socket buffers cannot deadlock), read until EOF.
    With reset_ok a connection reset counts as EOF, and a send the other end cut
    short is no error; without, both raise."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        errs: list = []

        def send():
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errs.append(e)
        th = threading.Thread(target=send, name="echo-once-sender", daemon=True)
        th.start()
        try:
            got = recv_all(s, reset_ok=reset_ok)
        finally:
            th.join(timeout)
        if errs and not (reset_ok and _peer_cut_short(errs[0])):
            raise errs[0]
        return got


# --------------------------------------------------------------------------
# bad values

BadCase = tuple  # (argv list | env dict, substring the single stderr line must contain)


def check_bad_values(h: Harness, key: str, cases: Sequence[BadCase], *, base: Sequence[str] = ("--listen", LISTEN),
                     exit_code: Optional[int] = None, wait: float = 15, what: str = "bad-value",
                     also: Optional[Callable[[Proc], Optional[str]]] = None) -> None:
    """Start `punchgate --identity KEY BASE… ARGV…` (or with ENV) for every case at
    once; each must exit within `wait` s with `exit_code` (any non-zero one when
    None) and print exactly one non-empty stderr line containing its substring.
    also(proc) may name one more problem. Fails listing every case that did not."""
    procs = []
    for i, (spec, want) in enumerate(cases):
        if isinstance(spec, dict):
            p = h.start_punchgate("--identity", key, *base, env=spec, name=f"bad{i}")
        else:
            p = h.start_punchgate("--identity", key, *base, *spec, name=f"bad{i}")
        procs.append((p, spec, want))
    problems = []
    for p, spec, want in procs:
        try:
            rc = p.wait_exit(wait)
        except TestFailure:
            problems.append(f"{spec}: did not exit within {wait:.0f} s (killed)")
            continue
        err_lines = p.stderr().splitlines()
        if exit_code is None and rc == 0:
            problems.append(f"{spec}: exited 0, want non-zero")
        elif exit_code is not None and rc != exit_code:
            problems.append(f"{spec}: exited {rc}, want {exit_code}")
        if len(err_lines) != 1 or not err_lines[0].strip():
            problems.append(f"{spec}: stderr has {len(err_lines)} lines, want exactly 1 non-empty: {err_lines[:5]}")
        elif want not in err_lines[0]:
            problems.append(f"{spec}: stderr {err_lines[0]!r} does not contain {want!r}")
        extra = also(p) if also else None
        if extra:
            problems.append(f"{spec}: {extra}")
    check(not problems, f"{what} cases failed:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------
# js-libp2p scripts (tests/interop/*.mjs: JSON lines on stdout)

def js_data_sha256(n: int) -> str:
    """sha256 of the first n bytes of the js scripts' deterministic data
    (js-tunnel-proto.mjs dataChunk(): sha256("punchgate-tunnel-" + j) for j = 0, 1, …)."""
    h = hashlib.sha256()
    j = 0
    left = n
    while left > 0:
        c = hashlib.sha256(f"punchgate-tunnel-{j}".encode()).digest()[:left]
        h.update(c)
        left -= len(c)
        j += 1
    return h.hexdigest()


def start_js_script(h: Harness, script: str, *args, name: str) -> Proc:
    """Start `node tests/interop/SCRIPT ARGS…` (cwd tests/interop)."""
    return h.spawn(name, [h.node, str(INTEROP_DIR / script), *args], cwd=INTEROP_DIR)


def run_js_script(h: Harness, script: str, *args, name: str, timeout: float) -> Proc:
    """Run a one-shot js script to completion: it must exit 0 and print a `done`
    event (else the failure names its `error` event, or its stderr tail)."""
    js = start_js_script(h, script, *args, name=name)
    rc = js.wait_exit(timeout)
    errs = js.events("error")
    check(rc == 0, f"{name} exited {rc}: {errs[0]['message'] if errs else js.stderr()[-800:]}")
    check(js.events("done"), f"{name} printed no done event")
    return js


def wait_js_listening(js: Proc, timeout: float = T) -> tuple[dict, str]:
    """Wait for the js node's `listening` event; return (event, its loopback
    quic-v1 address with /p2p/)."""
    ev = wait_for_json(js, "listening", timeout=timeout)
    addrs = [a for a in ev["addrs"] if a.startswith("/ip4/127.0.0.1/udp/") and "/quic-v1/p2p/" in a]
    check(addrs, f"{js.name} has no loopback quic-v1 addr: {ev['addrs']}")
    return ev, addrs[0]


def check_punchgate_binary(args) -> Optional[str]:
    """Setup problem with --punchgate (missing, not a file, not executable), or None."""
    if not args.punchgate:
        return "--punchgate PATH not given"
    if not os.path.isfile(args.punchgate):
        return f"punchgate binary not found at {args.punchgate} (build it first)"
    if not os.access(args.punchgate, os.X_OK):
        return f"punchgate binary at {args.punchgate} is not executable"
    return None


def interop_preflight(*packages: str) -> Callable:
    """A main(preflight=…) for the interop drivers: node_modules holds libp2p,
    @chainsafe/libp2p-quic and `packages`, node is found, --punchgate is usable.
    A broken setup fails every test (never skips)."""
    wanted = ("libp2p", "@chainsafe/libp2p-quic", *packages)

    def preflight(args) -> Optional[str]:
        problems = []
        nm = INTEROP_DIR / "node_modules"
        for pkg in wanted:
            if not (nm / pkg).is_dir():
                problems.append(f"{nm / pkg} is missing: run `npm ci` in {INTEROP_DIR}")
        if not (args.node or os.environ.get("NODE") or shutil.which("node")):
            problems.append("node not found on PATH (set NODE or --node)")
        binary = check_punchgate_binary(args)
        if binary:
            problems.append(binary)
        return "; ".join(problems) or None
    return preflight


# --------------------------------------------------------------------------
# as a program

def _echo_server_main() -> None:
    with TcpEchoServer() as srv:
        print("port", srv.port, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1:] == ["echo-server"]:
        _echo_server_main()
    else:
        raise SystemExit(f"usage: {sys.argv[0]} echo-server")
