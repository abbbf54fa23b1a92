#!/usr/bin/env python3
"""punchgate <-> js-libp2p interop for the tunnel protocol (/punchgate/tunnel/1.0.0).

    python3 tests/interop/test_js_tunnel.py --punchgate /path/to/punchgate [-k NAME]

The js side is tests/interop/js-tunnel.mjs (`serve` / `dial` modes). Covers:
js dials our exposed echo service (accepted, a few MiB echoed, sha256 equal);
js asks for a service we do not expose (rejected with a reason); our --tunnel
to a js node (a local TCP client's bytes are echoed through the js listener);
our --tunnel to a service the js node rejects (local connection closed, the js
reason shows up in our log); peer-supplied text (a service name, a rejection
reason) with a newline cannot forge lines in our log. Loopback only. Needs `npm ci` in tests/interop
(node_modules missing is a FAILURE).

PUNCHGATE_TEST_SCALE (float, default 1.0) scales the data sizes down, e.g. for
a sanitizer build.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import check, main, wait_for, wait_for_json  # noqa: E402

JS_TUNNEL = HERE / "js-tunnel.mjs"
LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"
LISTEN_RX = r"listening on (/ip4/127\.0\.0\.1/udp/\d+/quic-v1)\b"
PEER_ID_RX = r"local_peer_id=(12D3KooW[1-9A-HJ-NP-Za-km-z]+)"
T = 30  # generous, only to avoid hangs

try:
    SCALE = float(os.environ.get("PUNCHGATE_TEST_SCALE") or "1.0")
except ValueError:
    raise SystemExit(f"PUNCHGATE_TEST_SCALE={os.environ['PUNCHGATE_TEST_SCALE']!r} is not a number")
JS_DATA_BYTES = max(256 << 10, int((4 << 20) * SCALE))  # js -> our echo, each way
TCP_DATA_BYTES = max(256 << 10, int((2 << 20) * SCALE))  # our tunnel -> js echo, each way

for _k in ("PUNCHGATE_IDENTITY", "PUNCHGATE_LISTEN", "PUNCHGATE_BOOTSTRAP", "PUNCHGATE_EXPOSE",
           "PUNCHGATE_TUNNEL", "PUNCHGATE_ALLOW", "PUNCHGATE_LOG", "RUST_LOG"):
    os.environ.pop(_k, None)
os.environ["PUNCHGATE_LOG"] = "info"


# --------------------------------------------------------------------------
# helpers

class EchoServer:
    """Threaded TCP echo server on 127.0.0.1: echoes, closes after the client's EOF."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c: socket.socket):
        try:
            while True:
                d = c.recv(1 << 16)
                if not d:
                    break
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_js(h, *args, name: str):
    return h.spawn(name, [h.node, str(JS_TUNNEL), *args], cwd=HERE)


def start_provider(h, *exposes: str):
    argv = ["--identity", h.path("a.key"), "--listen", LISTEN]
    for e in exposes:
        argv += ["--expose", e]
    pg = h.start_punchgate(*argv, name="punchgate-A")
    peer_id = wait_for(pg, PEER_ID_RX, timeout=T, stream="stderr").group(1)
    addr = wait_for(pg, LISTEN_RX, timeout=T, stream="stderr").group(1)
    return pg, peer_id, f"{addr}/p2p/{peer_id}"


def start_js_server(h, *args):
    js = start_js(h, "serve", *args, name="js-serve")
    ev = wait_for_json(js, "listening", timeout=T)
    addrs = [a for a in ev["addrs"] if a.startswith("/ip4/127.0.0.1/udp/") and "/quic-v1/p2p/" in a]
    check(addrs, f"js listener has no loopback quic-v1 addr: {ev['addrs']}")
    return js, ev["peerId"], addrs[0]


def expected_sha256(n: int) -> str:
    """sha256 of js-tunnel.mjs's deterministic data (see dataChunk())."""
    h = hashlib.sha256()
    j = 0
    left = n
    while left > 0:
        c = hashlib.sha256(f"punchgate-tunnel-{j}".encode()).digest()[:left]
        h.update(c)
        left -= len(c)
        j += 1
    return h.hexdigest()


def js_dial(h, target: str, service: str, data_bytes: int, name: str) -> dict:
    js = start_js(h, "dial", target, service, "--data-bytes", str(data_bytes), "--timeout", "90", name=name)
    rc = js.wait_exit(120)
    errs = js.events("error")
    check(rc == 0, f"js dial exited {rc}: {errs[0]['message'] if errs else js.stderr()[-500:]}")
    done = js.events("done")
    check(done, "js dial printed no done event")
    return done[0]


def tcp_echo_through(port: int, payload: bytes) -> bytes:
    """Send payload (from a thread), half-close, read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
        errs: list = []

        def send():
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errs.append(e)
        th = threading.Thread(target=send, daemon=True)
        th.start()
        chunks = []
        while True:
            try:
                d = s.recv(1 << 16)
            except ConnectionResetError:
                break
            if not d:
                break
            chunks.append(d)
        th.join(T)
        return b"".join(chunks)


# --------------------------------------------------------------------------
# tests

def test_js_dials_our_echo(h):
    """js opens /punchgate/tunnel/1.0.0 to our exposed echo: accepted, data echoed intact."""
    with EchoServer() as echo:
        pg, our_id, addr = start_provider(h, f"echo=127.0.0.1:{echo.port}")
        done = js_dial(h, addr, "echo", JS_DATA_BYTES, "js-dial-echo")
        check(done["accepted"] is True, f"js was not accepted: {done}")
        check(done["bytes_sent"] == JS_DATA_BYTES, f"js sent {done['bytes_sent']}, want {JS_DATA_BYTES}")
        want = expected_sha256(JS_DATA_BYTES)
        check(done["sha256_sent"] == want, f"js sent data with sha256 {done['sha256_sent']}, want {want}")
        check(done["bytes_received"] == JS_DATA_BYTES and done["sha256_received"] == want,
              f"js got back {done['bytes_received']} bytes sha256 {done['sha256_received']}, "
              f"want {JS_DATA_BYTES} bytes sha256 {want}")
        m = wait_for(pg, r"tunnel closed peer=(\S+) service=echo bytes_to_service=(\d+) bytes_from_service=(\d+)",
                     timeout=T, stream="stderr")
        check(int(m.group(2)) == JS_DATA_BYTES and int(m.group(3)) == JS_DATA_BYTES,
              f"our byte counts are wrong: {m.group(0)}")
        check(echo.connections == 1, f"echo service saw {echo.connections} connections, want 1")
        check(pg.alive(), f"punchgate died (rc={pg.returncode})")


def test_js_asks_unknown_service(h):
    """js asks for a service we do not expose: {"accepted":false,"reason":…}, no data."""
    with EchoServer() as echo:
        pg, our_id, addr = start_provider(h, f"echo=127.0.0.1:{echo.port}")
        done = js_dial(h, addr, "nosuch", 1024, "js-dial-nosuch")
        check(done["accepted"] is False, f"js was accepted for an unexposed service: {done}")
        check(isinstance(done["reason"], str) and done["reason"].strip(),
              f"rejection carries no reason: {done}")
        check(done["bytes_received"] == 0, f"js received {done['bytes_received']} bytes after the rejection")
        m = wait_for(pg, r"tunnel rejected peer=(\S+) service=nosuch reason=\"([^\"]*)\"", timeout=T,
                     stream="stderr")
        check(m.group(2).strip(), f"our rejection log has no reason: {m.group(0)}")
        check(echo.connections == 0, "the echo service was connected to")
        check(pg.alive(), f"punchgate died (rc={pg.returncode})")


def test_our_tunnel_to_js(h):
    """Our --tunnel <js>:echo@127.0.0.1:PORT reaches the js listener, which pipes to
    a TCP echo server; a local TCP client gets its bytes back."""
    with EchoServer() as echo:
        js, js_id, js_addr = start_js_server(h, "--echo-port", str(echo.port))
        port = free_port()
        pg = h.start_punchgate("--identity", h.path("b.key"), "--listen", LISTEN, "--bootstrap", js_addr,
                               "--tunnel", f"{js_id}:echo@127.0.0.1:{port}", name="punchgate-B")
        our_id = wait_for(pg, PEER_ID_RX, timeout=T, stream="stderr").group(1)
        wait_for(pg, r"tunnel listening bind=127\.0\.0\.1:" + str(port) + r" ", timeout=T, stream="stderr")
        payload = random.Random(5).randbytes(TCP_DATA_BYTES)
        got = tcp_echo_through(port, payload)
        check(got == payload, f"got {len(got)} bytes back through the js echo, sent {len(payload)} "
              f"(prefix equal: {got == payload[:len(got)]})")
        ev = wait_for_json(js, lambda o: o.get("event") == "request" and o.get("peerId") == our_id,
                           timeout=T, what=f"request from {our_id}")
        check(ev["service"] == "echo" and ev["accepted"] is True, f"js saw request {ev}")
        closed = wait_for_json(js, "tunnel-closed", timeout=T)
        check(closed["error"] is None and closed["bytes_in"] == len(payload) and closed["bytes_out"] == len(payload),
              f"js tunnel-closed: {closed}")
        m = wait_for(pg, r"client tunnel closed peer=" + js_id + r" service=echo bytes_sent=(\d+) "
                     r"bytes_received=(\d+)", timeout=T, stream="stderr")
        check(int(m.group(1)) == len(payload) and int(m.group(2)) == len(payload), f"our counts: {m.group(0)}")
        check(echo.connections == 1, f"echo service saw {echo.connections} connections, want 1")
        check(pg.alive() and js.alive(), f"a node died: punchgate rc={pg.returncode} js rc={js.returncode}")


def test_our_tunnel_rejected_by_js(h):
    """The js node rejects a service: our local connection is closed without data and
    we log `tunnel rejected` with the js node's reason."""
    js, js_id, js_addr = start_js_server(h)
    port = free_port()
    pg = h.start_punchgate("--identity", h.path("b.key"), "--listen", LISTEN, "--bootstrap", js_addr,
                           "--tunnel", f"{js_id}:nosuch@127.0.0.1:{port}", name="punchgate-B")
    wait_for(pg, r"tunnel listening bind=127\.0\.0\.1:" + str(port) + r" ", timeout=T, stream="stderr")
    got = tcp_echo_through(port, b"hello?\n")
    check(got == b"", f"got {got!r} through a rejected tunnel")
    m = wait_for(pg, r"tunnel rejected peer=" + js_id + r" service=nosuch reason=\"((?:[^\"\\]|\\.)*)\"",
                 timeout=T, stream="stderr")
    check("js-tunnel: unknown service" in m.group(1), f"our log does not carry the js reason: {m.group(0)}")
    ev = wait_for_json(js, "request", timeout=T)
    check(ev["service"] == "nosuch" and ev["accepted"] is False, f"js saw request {ev}")
    check(pg.alive() and js.alive(), f"a node died: punchgate rc={pg.returncode} js rc={js.returncode}")


# A line a malicious peer would like to see in our log; the tests below put it
# after a newline in peer-supplied text (a service name, a rejection reason).
FORGED = "2000-01-01T00:00:00.000000Z info tunnel accepted peer=FORGED service=forged"
INJECT = 'x" injected="1\n' + FORGED


def check_no_forged_line(proc, what: str):
    lines = proc.stderr().splitlines()
    bad = [ln for ln in lines if ln.startswith(FORGED[:30]) or ln.lstrip().startswith("2000-01-01T")]
    check(not bad, f"{what}: peer-supplied text started a new line in our log (log injection): {bad[:2]}")


def test_log_injection_service_name(h):
    """A js peer asks for a service name containing a quote and a newline followed
    by a forged log line: we reject it and the name stays inside one log line."""
    with EchoServer() as echo:
        pg, our_id, addr = start_provider(h, f"echo=127.0.0.1:{echo.port}")
        done = js_dial(h, addr, INJECT, 16, "js-dial-inject")
        check(done["accepted"] is False, f"accepted a service named {INJECT!r}: {done}")
        wait_for(pg, r"tunnel rejected peer=", timeout=T, stream="stderr")
        check(pg.alive(), f"punchgate died (rc={pg.returncode})")
        check_no_forged_line(pg, "service_name from a js dialer")


def test_log_injection_reject_reason(h):
    """The js node rejects our tunnel with a reason containing a quote and a newline
    followed by a forged log line: our `tunnel rejected` log stays one line."""
    js, js_id, js_addr = start_js_server(h, "--reject-reason", "no " + INJECT)
    port = free_port()
    pg = h.start_punchgate("--identity", h.path("b.key"), "--listen", LISTEN, "--bootstrap", js_addr,
                           "--tunnel", f"{js_id}:nosuch@127.0.0.1:{port}", name="punchgate-B")
    wait_for(pg, r"tunnel listening bind=127\.0\.0\.1:" + str(port) + r" ", timeout=T, stream="stderr")
    got = tcp_echo_through(port, b"hello?\n")
    check(got == b"", f"got {got!r} through a rejected tunnel")
    wait_for(pg, r"tunnel rejected peer=" + js_id, timeout=T, stream="stderr")
    check(pg.alive(), f"punchgate died (rc={pg.returncode})")
    check_no_forged_line(pg, "rejection reason from a js listener")


TESTS = [
    test_js_dials_our_echo,
    test_js_asks_unknown_service,
    test_our_tunnel_to_js,
    test_our_tunnel_rejected_by_js,
    test_log_injection_service_name,
    test_log_injection_reject_reason,
]


def preflight(args):
    problems = []
    nm = HERE / "node_modules"
    if not (nm / "libp2p").is_dir() or not (nm / "@chainsafe" / "libp2p-quic").is_dir():
        problems.append(f"{nm} is missing or incomplete: run `npm ci` in {HERE}")
    node = args.node or os.environ.get("NODE") or shutil.which("node")
    if not node:
        problems.append("node not found on PATH (set NODE or --node)")
    if not args.punchgate:
        problems.append("--punchgate PATH not given")
    elif not os.path.isfile(args.punchgate):
        problems.append(f"punchgate binary not found at {args.punchgate} (build it first)")
    elif not os.access(args.punchgate, os.X_OK):
        problems.append(f"punchgate binary at {args.punchgate} is not executable")
    return "; ".join(problems) or None


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
