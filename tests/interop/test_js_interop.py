#!/usr/bin/env python3
"""punchgate <-> js-libp2p interop over QUIC on loopback (identify + ping).

    python3 tests/interop/test_js_interop.py --punchgate /path/to/punchgate [-k NAME]

Needs `npm ci` in tests/interop first (node_modules missing is a FAILURE).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import (  # noqa: E402
    check, identify_received, main, ping_lines, wait_for, wait_for_json,
)
from punchgate_helpers import (  # noqa: E402
    LOCAL_PEER_ID_RX, PEER_ID_RX, T, interop_preflight, start_node, wait_js_listening,
)

OUR_PROTOCOL_VERSION = "/punchgate/id/1.0.0"
OUR_AGENT_PREFIX = "punchgate/"
PING_PROTO = "/ipfs/ping/1.0.0"
ID_PROTO = "/ipfs/id/1.0.0"
COUNT = 3


# --------------------------------------------------------------------------
# helpers

def start_our_listener(h):
    """Run `punchgate --identity … --listen …`; return (proc, peer_id, full_addr)."""
    return start_node(h, "punchgate-listen", key=h.path("id.key"))


def start_js_listener(h):
    js = h.start_js("listen", "--port", "0", name="js-listen")
    ev, addr = wait_js_listening(js)
    return js, ev, addr


def fresh_peer_id(h) -> str:
    p = h.run_js("peer-id", timeout=T, name="js-peer-id")
    check(p.returncode == 0, f"js-peer.mjs peer-id failed rc={p.returncode}")
    return p.events("peer-id")[0]["peerId"]


def our_peer_id(h, *procs) -> str:
    """Our peer id: from a `local_peer_id=` log line if any, else `punchgate id`."""
    for p in procs:
        m = re.search(LOCAL_PEER_ID_RX, p.stderr())
        if m:
            return m.group(1)
    idp = h.run_punchgate("--identity", h.path("id.key"), "id", timeout=T, name="punchgate-id")
    check(idp.returncode == 0, f"`punchgate id` exited {idp.returncode}")
    m = re.search(PEER_ID_RX, idp.stdout())
    check(m, f"`punchgate id` printed no peer id: {idp.stdout()!r}")
    return m.group(0)


def wait_identify_logged(proc, peer_id, timeout=10):
    """Wait until punchgate logged `identify received peer=<peer_id> …`; return parsed fields."""
    wait_for(proc, r"identify received peer=" + peer_id + r"\b", timeout=timeout, stream="stderr")
    for f in identify_received(proc.stderr()):
        if f.get("peer") == peer_id:
            return f
    check(False, f"could not parse an `identify received peer={peer_id} ...` line: "
          f"{[f['_line'] for f in identify_received(proc.stderr())]}")


def check_js_saw_punchgate(ident: dict, our_id: str):
    check(ident["peerId"] == our_id, f"js identify peerId {ident['peerId']} != ours {our_id}")
    check(ident.get("protocolVersion") == OUR_PROTOCOL_VERSION,
          f"js saw protocolVersion {ident.get('protocolVersion')!r}, want {OUR_PROTOCOL_VERSION!r}")
    check(isinstance(ident.get("agentVersion"), str) and ident["agentVersion"].startswith(OUR_AGENT_PREFIX),
          f"js saw agentVersion {ident.get('agentVersion')!r}, want prefix {OUR_AGENT_PREFIX!r}")
    protos = ident.get("protocols") or []
    for p in (PING_PROTO, ID_PROTO):
        check(p in protos, f"js saw protocols {protos}, missing {p}")


def check_we_saw_js(f: dict, js_info: dict):
    check(f.get("protocol_version") == js_info["protocolVersion"],
          f"our identify log protocol_version={f.get('protocol_version')!r}, js sends "
          f"{js_info['protocolVersion']!r}: {f['_line']}")
    check(f.get("agent_version") == js_info["agentVersion"],
          f"our identify log agent_version={f.get('agent_version')!r}, js sends "
          f"{js_info['agentVersion']!r}: {f['_line']}")
    protos = f.get("protocols") or []
    check(ID_PROTO in protos and PING_PROTO in protos,
          f"our identify log protocols={protos} lacks {ID_PROTO}/{PING_PROTO}: {f['_line']}")


# --------------------------------------------------------------------------
# tests

def test_id_subcommand_matches_listener(h):
    pg, peer_id, _ = start_our_listener(h)
    idp = h.run_punchgate("--identity", h.path("id.key"), "id", timeout=T, name="punchgate-id")
    check(idp.returncode == 0, f"`punchgate id` exited {idp.returncode}")
    check(idp.stdout().strip() == peer_id,
          f"`punchgate id` printed {idp.stdout().strip()!r}, listener logged local_peer_id={peer_id}")
    rc = pg.terminate(timeout=10)
    check(rc == 0, f"punchgate listener exited {rc} on SIGTERM, want 0")


def test_js_dials_punchgate(h):
    """(a) js dials our listener: ping + identify both ways; SIGTERM -> exit 0."""
    pg, our_id, addr = start_our_listener(h)

    js = h.run_js("dial", addr, "--count", str(COUNT), "--timeout", str(T), timeout=T + 10, name="js-dial")
    errs = js.events("error")
    check(js.returncode == 0, f"js dial exited {js.returncode}: {errs[0]['message'] if errs else '(no error event)'}")
    started = js.events("started")[0]
    pings = js.events("ping")
    check(len(pings) == COUNT, f"js got {len(pings)} pings, want {COUNT}")
    check(all(isinstance(p["rtt_ms"], (int, float)) and p["rtt_ms"] >= 0 for p in pings), f"bad rtts {pings}")
    idents = [e for e in js.events("identify") if e["peerId"] == our_id]
    check(idents, f"js printed no identify event for {our_id}")
    check_js_saw_punchgate(idents[0], our_id)
    check(js.events("done") and js.events("done")[0].get("ok") is True, "js printed no done/ok")

    js_id = started["peerId"]
    wait_for(pg, r"connection opened peer=" + js_id + r"\b.*endpoint=listener", timeout=10, stream="stderr")
    f = wait_identify_logged(pg, js_id)
    check_we_saw_js(f, started)

    check(pg.alive(), f"punchgate listener died (rc={pg.returncode})")
    rc = pg.terminate(timeout=10)
    check(rc == 0, f"punchgate listener exited {rc} on SIGTERM, want 0")


def test_punchgate_pings_js(h):
    """(b) `punchgate ping` dials the js listener."""
    js, js_info, js_addr = start_js_listener(h)

    pg = h.run_punchgate("--identity", h.path("id.key"), "ping", js_addr, "--count", str(COUNT),
                         timeout=T + 10, name="punchgate-ping")
    check(pg.returncode == 0, f"punchgate ping exited {pg.returncode}")
    pings = ping_lines(pg.stdout())
    check(len(pings) == COUNT, f"punchgate printed {len(pings)} ping lines on stdout, want {COUNT}: {pg.stdout()!r}")
    check(all(p["peer"] == js_info["peerId"] for p in pings), f"ping lines name the wrong peer: {pings}")
    check(len({p["seq"] for p in pings}) == COUNT, f"ping seq numbers not distinct: {pings}")
    check(all(p["rtt_ms"] >= 0 for p in pings), f"negative rtt: {pings}")

    f = wait_identify_logged(pg, js_info["peerId"], timeout=1)  # process has exited: it's there or not
    check_we_saw_js(f, js_info)

    our_id = our_peer_id(h, pg)
    ident = wait_for_json(js, lambda o: o.get("event") == "identify" and o.get("peerId") == our_id,
                          timeout=10, what=f"identify of {our_id}")
    check_js_saw_punchgate(ident, our_id)
    conns = [c for c in js.events("connection") if c["peerId"] == our_id]
    check(conns and conns[0]["direction"] == "inbound", f"js saw no inbound connection from us: {conns}")

    check(js.alive(), f"js listener died (rc={js.returncode})")
    rc = js.terminate(timeout=10)
    check(rc == 0, f"js listener exited {rc} on SIGTERM")


def test_wrong_peer_id_js_dials_punchgate(h):
    """(c1) js dials our address with somebody else's /p2p/ id -> js dial fails."""
    pg, our_id, addr = start_our_listener(h)
    wrong = fresh_peer_id(h)
    check(wrong != our_id, "generated peer id collides with ours?!")
    bad_addr = addr.rsplit("/p2p/", 1)[0] + "/p2p/" + wrong

    js = h.run_js("dial", bad_addr, "--count", "1", "--timeout", str(T), timeout=T + 10, name="js-dial-wrong")
    check(js.returncode == 1, f"js dial to wrong peer id exited {js.returncode}, want 1")
    check(js.events("error"), "js printed no error event")
    check(not js.events("ping"), f"js pinged despite peer id mismatch: {js.events('ping')}")
    check(pg.alive(), f"punchgate listener died after a mismatched dial (rc={pg.returncode})")
    rc = pg.terminate(timeout=10)
    check(rc == 0, f"punchgate listener exited {rc} on SIGTERM, want 0")


def test_wrong_peer_id_punchgate_dials_js(h):
    """(c2) `punchgate ping` to the js address with a wrong /p2p/ id -> non-zero, 'peer id mismatch'."""
    js, js_info, js_addr = start_js_listener(h)
    wrong = fresh_peer_id(h)
    check(wrong != js_info["peerId"], "generated peer id collides with js's?!")
    bad_addr = js_addr.rsplit("/p2p/", 1)[0] + "/p2p/" + wrong

    pg = h.run_punchgate("--identity", h.path("id.key"), "ping", bad_addr, "--count", "1",
                         timeout=T + 10, name="punchgate-ping-wrong")
    check(pg.returncode not in (0, None), f"punchgate ping to wrong peer id exited {pg.returncode}, want non-zero")
    check("peer id mismatch" in pg.stderr().lower(), "punchgate stderr lacks 'peer id mismatch'")
    check(not ping_lines(pg.stdout()), f"punchgate printed ping lines despite mismatch: {pg.stdout()!r}")
    check(js.alive(), f"js listener died (rc={js.returncode})")


TESTS = [
    test_id_subcommand_matches_listener,
    test_js_dials_punchgate,
    test_punchgate_pings_js,
    test_wrong_peer_id_js_dials_punchgate,
    test_wrong_peer_id_punchgate_dials_js,
]


preflight = interop_preflight()


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
