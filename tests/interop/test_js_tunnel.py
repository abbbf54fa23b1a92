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

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import check, main, wait_for, wait_for_json  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    LOCAL_PEER_ID_RX, T, TcpEchoServer, echo_once, free_port, interop_preflight, isolate_env, js_data_sha256,
    run_js_script, scale_from_env, spawn_node, start_js_script, start_node, wait_js_listening,
    wait_tunnel_listening,
)

JS_TUNNEL = "js-tunnel.mjs"

SCALE = scale_from_env()
JS_DATA_BYTES = max(256 << 10, int((4 << 20) * SCALE))  # js -> our echo, each way
TCP_DATA_BYTES = max(256 << 10, int((2 << 20) * SCALE))  # our tunnel -> js echo, each way

isolate_env()


# --------------------------------------------------------------------------
# helpers

def start_provider(h, *exposes: str):
    return start_node(h, "punchgate-A", *[a for e in exposes for a in ("--expose", e)], key=h.path("a.key"))


def start_consumer(h, js_addr: str, tunnel: str):
    """Our node B with --bootstrap to the js node and --tunnel TUNNEL ('ID:SERVICE@127.0.0.1:PORT');
    waits until the tunnel's local port is bound."""
    pg = spawn_node(h, "punchgate-B", "--tunnel", tunnel, key=h.path("b.key"), bootstrap=js_addr)
    wait_tunnel_listening(pg, tunnel.split("@", 1)[1])
    return pg


def start_js_server(h, *args):
    js = start_js_script(h, JS_TUNNEL, "serve", *args, name="js-serve")
    ev, addr = wait_js_listening(js)
    return js, ev["peerId"], addr




def js_dial(h, target: str, service: str, data_bytes: int, name: str) -> dict:
    js = run_js_script(h, JS_TUNNEL, "dial", target, service, "--data-bytes", str(data_bytes), "--timeout", "90",
                       name=name, timeout=120)
    return js.events("done")[0]


# --------------------------------------------------------------------------
# tests

def test_js_dials_our_echo(h):
    """js opens /punchgate/tunnel/1.0.0 to our exposed echo: accepted, data echoed intact."""
    with TcpEchoServer() as echo:
        pg, our_id, addr = start_provider(h, f"echo=127.0.0.1:{echo.port}")
        done = js_dial(h, addr, "echo", JS_DATA_BYTES, "js-dial-echo")
        check(done["accepted"] is True, f"js was not accepted: {done}")
        check(done["bytes_sent"] == JS_DATA_BYTES, f"js sent {done['bytes_sent']}, want {JS_DATA_BYTES}")
        want = js_data_sha256(JS_DATA_BYTES)
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
    with TcpEchoServer() as echo:
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
    with TcpEchoServer() as echo:
        js, js_id, js_addr = start_js_server(h, "--echo-port", str(echo.port))
        port = free_port()
        pg = start_consumer(h, js_addr, f"{js_id}:echo@127.0.0.1:{port}")
        our_id = wait_for(pg, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
        payload = random.Random(5).randbytes(TCP_DATA_BYTES)
        got = echo_once(port, payload)
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
    pg = start_consumer(h, js_addr, f"{js_id}:nosuch@127.0.0.1:{port}")
    got = echo_once(port, b"hello?\n")
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
    with TcpEchoServer() as echo:
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
    pg = start_consumer(h, js_addr, f"{js_id}:nosuch@127.0.0.1:{port}")
    got = echo_once(port, b"hello?\n")
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


preflight = interop_preflight()


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
