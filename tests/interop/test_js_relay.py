#!/usr/bin/env python3
"""Circuit relay v2 interop with js-libp2p (@libp2p/circuit-relay-v2, noise + yamux over QUIC).

    python3 tests/interop/test_js_relay.py --punchgate /path/to/punchgate [-k NAME]

The js side is tests/interop/js-relay.mjs (`relay` / `reserve` / `dial` modes).

- our node B reserves on a js relay (--relay-mode <js relay>), the js relay
  reports the reservation, and our node A tunnels to B's echo through it;
- a js node reserves on our relay R and our A tunnels to the js node's echo
  service (a TCP echo server behind it) through R;
- a js node dials our B through our relay R and runs B's echo service;
- our relay's Limit reaches js: the js side sees a limited connection and still
  runs the tunnel on it (runOnLimitedConnection).
Identify must succeed over every relayed connection, both ways: `identify
received peer=…` in our log, an `identify` event with "connection":"relayed"
from js. Loopback only. Needs `npm ci` in tests/interop (node_modules missing
is a FAILURE).

PUNCHGATE_TEST_SCALE (float, default 1.0) scales the data sizes down.
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
    T, TcpEchoServer, echo_once, free_port, interop_preflight, isolate_env, js_data_sha256, node_info,
    run_js_script, scale_from_env, spawn_node, start_js_script, start_node, wait_js_listening, wait_tunnel_listening,
)

JS_RELAY = "js-relay.mjs"
TR = 60  # relayed paths may wait out a reservation or a DHT lookup first
OUR_AGENT_PREFIX = "punchgate/"

SCALE = scale_from_env()
TCP_DATA_BYTES = max(64 << 10, int((1 << 20) * SCALE))  # our tunnel -> through a relay -> echo, each way
JS_DATA_BYTES = max(64 << 10, int((2 << 20) * SCALE))  # js tunnel -> through our relay -> our echo, each way

isolate_env()


# --------------------------------------------------------------------------
# helpers

def retry_echo(port: int, payload: bytes, attempts: int = 20) -> bytes:
    """echo_once() through a tunnel whose relayed route may still be coming up:
    retried until the payload comes back whole (or `attempts` runs out)."""
    got = b""
    for _ in range(attempts):
        try:
            got = echo_once(port, payload, timeout=15)
        except OSError:
            got = b""
        if got == payload:
            break
    return got


def start_js_relay(h):
    """A js relay: (proc, peer id, its loopback quic-v1 multiaddr with /p2p/)."""
    relay = start_js_script(h, JS_RELAY, "relay", name="js-relay")
    ev, addr = wait_js_listening(relay)
    return relay, ev["peerId"], addr


def js_identify(js, peer_id: str, timeout: float = T) -> dict:
    """The js node's first `identify` event for peer_id over a relayed connection."""
    return wait_for_json(js, lambda o: o.get("event") == "identify" and o.get("peerId") == peer_id
                         and o.get("connection") == "relayed", timeout=timeout,
                         what=f"identify of {peer_id} over a relayed connection")


def relayed_connection_rx(peer_id: str, endpoint: str) -> str:
    return (r"connection opened peer=" + peer_id + r" endpoint=" + endpoint
            + r" remote_addr=\S*/p2p-circuit\S* relayed=true")


# --------------------------------------------------------------------------
# tests

def test_our_node_reserves_on_js_relay(h):
    """Our B reserves on a js relay (--relay-mode <js relay>) and the js relay holds
    the reservation; our A (--bootstrap <relay>/p2p-circuit/p2p/<B>) tunnels to B's
    echo through it; identify both ways over the relayed connection."""
    relay, relay_id, relay_addr = start_js_relay(h)
    with TcpEchoServer() as echo:
        b = spawn_node(h, "B", "--relay-mode", relay_addr, "--expose", f"echo=127.0.0.1:{echo.port}")
        b_id, _ = node_info(b)
        m = wait_for(b, r"relay reservation accepted relay=" + relay_id + r" expires=(\d+) addrs=\[([^\]]*)\]",
                     timeout=TR, stream="stderr")
        check(f"/p2p/{relay_id}/p2p-circuit" in m.group(2), f"B's circuit addrs do not name the js relay: {m.group(0)}")
        res = wait_for_json(relay, lambda o: o.get("event") == "reservation" and o.get("peerId") == b_id,
                            timeout=T, what=f"js relay reservation for B {b_id}")
        check(res["expiry"] > 0, f"js relay reservation: {res}")

        port = free_port()
        a = spawn_node(h, "A", "--relay-mode", relay_addr, "--tunnel", f"{b_id}:echo@127.0.0.1:{port}",
                       bootstrap=f"{relay_addr}/p2p-circuit/p2p/{b_id}")
        a_id, _ = node_info(a)
        wait_tunnel_listening(a, port)
        payload = random.Random(11).randbytes(TCP_DATA_BYTES)
        got = retry_echo(port, payload)
        check(got == payload, f"echo through the js relay returned {len(got)} of {len(payload)} bytes "
              f"(prefix equal: {got == payload[:len(got)]})")

        wait_for(a, relayed_connection_rx(b_id, "dialer"), timeout=T, stream="stderr")
        wait_for(b, relayed_connection_rx(a_id, "listener"), timeout=T, stream="stderr")
        wait_for(a, r"identify received peer=" + b_id + r"\b", timeout=T, stream="stderr")
        wait_for(b, r"identify received peer=" + a_id + r"\b", timeout=T, stream="stderr")
        wait_for(b, r"tunnel closed peer=" + a_id + r" service=echo bytes_to_service=" + str(len(payload))
                 + r" bytes_from_service=" + str(len(payload)), timeout=T, stream="stderr")
        check(relay.alive() and a.alive() and b.alive(),
              f"a process died: js relay rc={relay.returncode} A rc={a.returncode} B rc={b.returncode}")


def test_js_node_reserves_on_our_relay(h):
    """A js node reserves on our relay R; our A (--bootstrap R, --tunnel <js>:echo)
    reaches the js node's echo service (a TCP echo server behind it) through R;
    identify both ways over the relayed connection."""
    r, r_id, r_addr = start_node(h, "R")
    with TcpEchoServer() as echo:
        js = start_js_script(h, JS_RELAY, "reserve", r_addr, "--echo-port", str(echo.port), name="js-reserve")
        reserved = wait_for_json(js, "reserved", timeout=TR)
        js_id = reserved["peerId"]
        check(reserved["relay"] == r_id, f"js reserved on {reserved['relay']}, want {r_id}")
        check(any(f"/p2p/{r_id}/p2p-circuit/p2p/{js_id}" in a for a in reserved["addrs"]),
              f"js circuit addrs do not go through R: {reserved['addrs']}")
        wait_for(r, r"relay reservation granted peer=" + js_id + r" expires=\d+", timeout=T, stream="stderr")

        port = free_port()
        a = spawn_node(h, "A", "--tunnel", f"{js_id}:echo@127.0.0.1:{port}", bootstrap=r_addr)
        a_id, _ = node_info(a)
        wait_tunnel_listening(a, port)
        payload = random.Random(12).randbytes(TCP_DATA_BYTES)
        got = retry_echo(port, payload)
        check(got == payload, f"echo through our relay to js returned {len(got)} of {len(payload)} bytes "
              f"(prefix equal: {got == payload[:len(got)]})")

        wait_for(a, r"connected to tunnel target via relay peer_id=" + js_id + r" relay=" + r_id, timeout=T,
                 stream="stderr")
        wait_for(a, relayed_connection_rx(js_id, "dialer"), timeout=T, stream="stderr")
        wait_for(r, r"circuit opened src=" + a_id + r" dst=" + js_id, timeout=T, stream="stderr")
        wait_for(a, r"identify received peer=" + js_id + r" .*agent_version=\"js-libp2p", timeout=T, stream="stderr")
        ident = js_identify(js, a_id)
        check((ident["agentVersion"] or "").startswith(OUR_AGENT_PREFIX),
              f"js identified our A with agentVersion {ident['agentVersion']!r}")
        req = wait_for_json(js, lambda o: o.get("event") == "request" and o.get("peerId") == a_id
                            and o.get("accepted") is True, timeout=T, what=f"accepted tunnel request from {a_id}")
        check(req["service"] == "echo" and req["connection"] == "relayed", f"js saw request {req}")
        closed = wait_for_json(js, lambda o: o.get("event") == "tunnel-closed" and o.get("peerId") == a_id
                               and o.get("bytes_in") == len(payload), timeout=T,
                               what=f"tunnel-closed from {a_id} with {len(payload)} bytes in")
        check(closed["error"] is None and closed["bytes_out"] == len(payload) and closed["connection"] == "relayed",
              f"js tunnel-closed: {closed}")
        check(r.alive() and a.alive() and js.alive(),
              f"a process died: R rc={r.returncode} A rc={a.returncode} js rc={js.returncode}")


def js_dial_through(h, r, r_id: str, r_addr: str, b, b_id: str, name: str) -> dict:
    """js dials B through R with the echo service; checks the data, identify of B
    over the relayed connection and our side's log; returns the js done event."""
    target = f"{r_addr}/p2p-circuit/p2p/{b_id}"
    js = run_js_script(h, JS_RELAY, "dial", target, "--service", "echo", "--data-bytes", str(JS_DATA_BYTES),
                       "--timeout", "90", name=name, timeout=120)
    js_id = js.events("started")[0]["peerId"]
    done = js.events("done")[0]
    want = js_data_sha256(JS_DATA_BYTES)
    check(done["connection"] == "relayed" and done["peerId"] == b_id, f"js done: {done}")
    check(done["accepted"] is True, f"B's echo was not accepted over the relayed connection: {done}")
    check(done["bytes_sent"] == JS_DATA_BYTES and done["sha256_sent"] == want, f"js sent {done}")
    check(done["bytes_received"] == JS_DATA_BYTES and done["sha256_received"] == want,
          f"js got back {done['bytes_received']} bytes sha256 {done['sha256_received']}, "
          f"want {JS_DATA_BYTES} bytes sha256 {want}")
    idents = [e for e in js.events("identify") if e["peerId"] == b_id and e["connection"] == "relayed"]
    check(idents, f"js printed no identify of B over a relayed connection: {js.events('identify')}")
    check((idents[0]["agentVersion"] or "").startswith(OUR_AGENT_PREFIX),
          f"js identified B with agentVersion {idents[0]['agentVersion']!r}")
    wait_for(r, r"circuit opened src=" + js_id + r" dst=" + b_id, timeout=T, stream="stderr")
    wait_for(b, relayed_connection_rx(js_id, "listener"), timeout=T, stream="stderr")
    wait_for(b, r"identify received peer=" + js_id + r" .*agent_version=\"js-libp2p", timeout=T, stream="stderr")
    wait_for(b, r"tunnel closed peer=" + js_id + r" service=echo bytes_to_service=" + str(JS_DATA_BYTES)
             + r" bytes_from_service=" + str(JS_DATA_BYTES), timeout=T, stream="stderr")
    return done


def test_js_dials_through_our_relay(h):
    """A js node dials our B through our relay R (<R>/p2p-circuit/p2p/<B>) and runs
    B's echo service over that connection; identify both ways."""
    r, r_id, r_addr = start_node(h, "R")
    with TcpEchoServer() as echo:
        b = spawn_node(h, "B", "--expose", f"echo=127.0.0.1:{echo.port}", bootstrap=r_addr)
        b_id, _ = node_info(b)
        wait_for(b, r"relay reservation accepted relay=" + r_id, timeout=TR, stream="stderr")
        wait_for(r, r"relay reservation granted peer=" + b_id, timeout=T, stream="stderr")
        js_dial_through(h, r, r_id, r_addr, b, b_id, "js-dial")
        check(r.alive() and b.alive(), f"a process died: R rc={r.returncode} B rc={b.returncode}")


def test_js_sees_our_relay_limits(h):
    """Our relay's Limit (duration + data per circuit) reaches js: the relayed
    connection is "limited" on the js side, and the tunnel still runs on it;
    with both limits 0 (unlimited) the connection is not limited."""
    r, r_id, r_addr = start_node(h, "R", "--relay-circuit-duration", "600",
                                 "--relay-circuit-bytes", str(16 * JS_DATA_BYTES))
    r0, r0_id, r0_addr = start_node(h, "R0", "--relay-circuit-duration", "0", "--relay-circuit-bytes", "0")
    with TcpEchoServer() as echo:
        b = spawn_node(h, "B", "--expose", f"echo=127.0.0.1:{echo.port}", bootstrap=[r_addr, r0_addr])
        b_id, _ = node_info(b)
        wait_for(b, r"relay reservation accepted relay=" + r_id, timeout=TR, stream="stderr")
        wait_for(b, r"relay reservation accepted relay=" + r0_id, timeout=TR, stream="stderr")
        done = js_dial_through(h, r, r_id, r_addr, b, b_id, "js-dial-limited")
        check(done["limited"] is True, f"js did not see our relay's limits: {done}")
        done0 = js_dial_through(h, r0, r0_id, r0_addr, b, b_id, "js-dial-unlimited")
        check(done0["limited"] is False, f"js sees a limit through a relay without limits: {done0}")
        check(r.alive() and r0.alive() and b.alive(), "a process died")


TESTS = [
    test_our_node_reserves_on_js_relay,
    test_js_node_reserves_on_our_relay,
    test_js_dials_through_our_relay,
    test_js_sees_our_relay_limits,
]


preflight = interop_preflight("@libp2p/circuit-relay-v2", "@chainsafe/libp2p-noise", "@chainsafe/libp2p-yamux")


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
