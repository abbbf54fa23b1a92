#!/usr/bin/env python3
"""Circuit relay v2 interop with js-libp2p (@libp2p/circuit-relay-v2, noise, yamux over QUIC).

- our node reserves on a js relay and another of our nodes tunnels to it through that relay;
- a js node reserves on our relay and our node tunnels to it through us;
- a js node dials one of our nodes through our relay and runs its echo service.
Identify must succeed over every relayed connection, both ways.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import check, main, wait_for, wait_for_json  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    T, TcpEchoServer, echo_once, free_port, interop_preflight, isolate_env, js_data_sha256, run_js_script, spawn_node,
    start_js_script, start_node, node_info, wait_js_listening, wait_tunnel_listening,
)

JS_RELAY = "js-relay.mjs"
TR = 60  # relayed paths may wait out a DHT lookup first

isolate_env()




def retry_echo(port: int, payload: bytes) -> bytes:
    got = b""
    for _ in range(int(TR)):
        try:
            got = echo_once(port, payload, timeout=15)
        except OSError:
            got = b""
        if got == payload:
            break
    return got


def test_our_node_reserves_on_js_relay(h):
    """Our B reserves on a js relay (--relay-mode <js relay>); our A reaches B's echo through it."""
    relay = start_js_script(h, JS_RELAY, "relay", name="js-relay")
    ev, relay_addr = wait_js_listening(relay)
    relay_id = ev["peerId"]
    with TcpEchoServer() as echo:
        b = spawn_node(h, "B", "--relay-mode", relay_addr, "--expose", f"echo=127.0.0.1:{echo.port}")
        b_id, _ = node_info(b)
        wait_for(b, r"relay reservation accepted relay=" + relay_id + r" expires=\d+ addrs=\[\S*/p2p-circuit",
                 timeout=TR, stream="stderr")
        port = free_port()
        a = spawn_node(h, "A", "--relay-mode", relay_addr, "--bootstrap", f"{relay_addr}/p2p-circuit/p2p/{b_id}",
                       "--tunnel", f"{b_id}:echo@127.0.0.1:{port}")
        a_id, _ = node_info(a)
        wait_tunnel_listening(a, port)
        got = retry_echo(port, b"through the js relay\n")
        check(got == b"through the js relay\n", f"echo through the js relay returned {got!r}")
        wait_for(a, r"connection opened peer=" + b_id + r" endpoint=dialer remote_addr=\S+/p2p-circuit/\S+ relayed=true",
                 timeout=T, stream="stderr")
        wait_for(a, r"identify received peer=" + b_id, timeout=T, stream="stderr")
        wait_for(b, r"identify received peer=" + a_id, timeout=T, stream="stderr")
        check(relay.alive() and a.alive() and b.alive(), "a process died")


def test_js_node_reserves_on_our_relay(h):
    """A js node reserves on our relay R; our A tunnels to the js node's echo through R;
    identify succeeds both ways over the relayed connection."""
    r, r_id, r_addr = start_node(h, "R")
    js = start_js_script(h, JS_RELAY, "reserve", r_addr, name="js-reserve")
    reserved = wait_for_json(js, "reserved", timeout=TR)
    js_id = reserved["peerId"]
    check(any(f"/p2p/{r_id}/p2p-circuit" in a for a in reserved["addrs"]), f"js reserved addrs: {reserved['addrs']}")
    wait_for(r, r"relay reservation granted peer=" + js_id, timeout=T, stream="stderr")
    port = free_port()
    a = spawn_node(h, "A", "--bootstrap", r_addr, "--tunnel", f"{js_id}:echo@127.0.0.1:{port}")
    a_id, _ = node_info(a)
    wait_tunnel_listening(a, port)
    payload = hashlib.sha256(b"js behind our relay").digest() * 4096  # 128 KiB
    got = retry_echo(port, payload)
    check(got == payload, f"echo through our relay to js returned {len(got)} of {len(payload)} bytes")
    wait_for(a, r"connected to tunnel target via relay peer_id=" + js_id + r" relay=" + r_id, timeout=T,
             stream="stderr")
    wait_for(a, r"identify received peer=" + js_id + r" .*agent_version=\"js-libp2p", timeout=T, stream="stderr")
    ident = wait_for_json(js, lambda o: o.get("event") == "identify" and o.get("peerId") == a_id, timeout=T,
                          what=f"js identify of {a_id}")
    check(ident["connection"] == "relayed", f"js identified our A over a {ident['connection']} connection")
    wait_for(r, r"circuit opened src=" + a_id + r" dst=" + js_id, timeout=T, stream="stderr")
    check(r.alive() and a.alive() and js.alive(), "a process died")


def test_js_dials_through_our_relay(h):
    """A js node dials our B through our relay R and runs B's echo service over that connection."""
    r, r_id, r_addr = start_node(h, "R")
    with TcpEchoServer() as echo:
        b = spawn_node(h, "B", "--bootstrap", r_addr, "--expose", f"echo=127.0.0.1:{echo.port}")
        b_id, _ = node_info(b)
        wait_for(b, r"relay reservation accepted relay=" + r_id, timeout=TR, stream="stderr")
        n = 1 << 20
        js = run_js_script(h, JS_RELAY, "dial", r_addr, b_id, "--data-bytes", str(n), "--timeout", "90",
                           name="js-dial", timeout=120)
        done = js.events("done")[0]
        want = js_data_sha256(n)
        check(done["bytes_sent"] == n and done["sha256_sent"] == want, f"js sent {done}")
        check(done["bytes_received"] == n and done["sha256_received"] == want, f"js got back {done}")
        idents = [e for e in js.events("identify") if e["peerId"] == b_id]
        check(idents and idents[0]["connection"] == "relayed", f"js identify events for B: {idents}")
        wait_for(b, r"connection opened peer=\S+ endpoint=listener remote_addr=\S+/p2p-circuit/\S+ relayed=true",
                 timeout=T, stream="stderr")
        wait_for(b, r"identify received peer=\S+ .*agent_version=\"js-libp2p", timeout=T, stream="stderr")
        check(r.alive() and b.alive(), "a process died")


if __name__ == "__main__":
    main([
        test_our_node_reserves_on_js_relay,
        test_js_node_reserves_on_our_relay,
        test_js_dials_through_our_relay,
    ], description=__doc__,
        preflight=interop_preflight("@libp2p/circuit-relay-v2", "@chainsafe/libp2p-noise", "@chainsafe/libp2p-yamux"))
