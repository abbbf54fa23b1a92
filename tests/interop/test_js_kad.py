#!/usr/bin/env python3
"""punchgate <-> js-libp2p interop for the Kademlia DHT (/punchgate/kad/1.0.0).

    python3 tests/interop/test_js_kad.py --punchgate /path/to/punchgate [-k NAME]

The js side is tests/interop/js-kad.mjs: @libp2p/kad-dht 16.x in server mode with
protocol /punchgate/kad/1.0.0, loopback addresses kept (passthroughMapper) and a
validator + selector for the /punchgate-test/ record namespace. Ours is
`punchgate dht …` (one-shot client operations) and plain `punchgate` nodes
(which serve the DHT). Covers, each direction on the wire:

  provider records  js ADD_PROVIDER -> our server; js GET_PROVIDERS <- our server;
                    our ADD_PROVIDER -> js server; our GET_PROVIDERS <- js server
  values            js PUT_VALUE -> our server; js GET_VALUE <- our server;
                    our PUT_VALUE -> js server; our GET_VALUE <- js server
  peer routing      FIND_NODE closer peers with addresses, js <- our server and
                    our client <- js server (find-peer)
  routing tables    js adds our nodes (identify lists the kad protocol, /ipfs/ping
                    works) and we add js nodes

Wherever a result could also have come from a third node, that node is stopped
first, or the js side reports which peer answered. Loopback only. Needs `npm ci`
in tests/interop (node_modules missing is a FAILURE).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import check, main, wait_for, wait_for_json  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    PEER_ID_RX, T, interop_preflight, isolate_env, node_argv, node_info, run_js_script, start_js_script,
    start_node, wait_js_listening,
)

JS_KAD = "js-kad.mjs"
DHT_T = 90  # a one-shot `punchgate dht …` (bootstrap + self lookup + the operation)

isolate_env(keep_log_level=True)


# --------------------------------------------------------------------------
# helpers

def multihash_hex(label: str) -> str:
    """sha2-256 multihash (0x12 0x20 + digest) of `label`, as hex: the DHT key of a CIDv1."""
    return "1220" + hashlib.sha256(label.encode()).hexdigest()


def strip_p2p(addr: str) -> str:
    return addr.split("/p2p/", 1)[0]


def start_js(h, *args, name: str):
    """Start js-kad.mjs; return (proc, peer_id, loopback quic-v1 addr with /p2p/)."""
    js = start_js_script(h, JS_KAD, *args, name=name)
    ev, addr = wait_js_listening(js)
    check(ev.get("mode") == "server", f"{name} kad-dht is not in server mode: {ev}")
    return js, ev["peerId"], addr


def js_result(js, event: str, timeout: float = T + 30) -> dict:
    """Wait for one result event of a js-kad.mjs operation (fails on its error event)."""
    def pred(o):
        return o.get("event") in (event, "error")
    ev = wait_for_json(js, pred, timeout=timeout, what=f'"{event}" (or "error")')
    check(ev["event"] == event, f"{js.name} failed: {ev.get('message')}")
    return ev


def run_js(h, *args, name: str, timeout: float = T + 60):
    """Run a one-shot js-kad.mjs (no --stay) to completion; return the finished Proc."""
    return run_js_script(h, JS_KAD, *args, name=name, timeout=timeout)


def dht_argv(h, name: str, bootstrap: list, *op, ident=None):
    return node_argv(h.path(f"{ident or name}.key"), "dht", *op, bootstrap=bootstrap)


def run_dht(h, name: str, bootstrap: list, *op, timeout: float = DHT_T, ident=None):
    """Run a one-shot `punchgate … dht OP…` to completion. Consecutive one-shots in one
    network share an identity (ident=…): a finished one stays in the others' routing
    tables, and a lookup that meets a dead peer waits for its dial to time out."""
    return h.run_punchgate(*dht_argv(h, name, bootstrap, *op, ident=ident), timeout=timeout, name=name)


def stdout_bytes(proc) -> bytes:
    return Path(proc.stdout_path).read_bytes()


def provider_lines(text: str) -> dict:
    """`<peer_id> <addr>,<addr>…` lines of `punchgate dht find-providers` -> {peer_id: [addrs]}."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(" + PEER_ID_RX + r")(?:[ \t]+(\S*))?[ \t]*", line.strip())
        if m:
            out[m.group(1)] = [a for a in (m.group(2) or "").split(",") if a]
    return out


def check_provider_listed(proc, provider_id: str, provider_addr: str, what: str):
    """`punchgate dht find-providers` exited 0 and printed provider_id with its loopback address."""
    out = proc.stdout()
    check(proc.returncode == 0, f"{what}: `dht find-providers` exited {proc.returncode}, want 0 "
          f"(stdout {out!r})")
    provs = provider_lines(out)
    check(provider_id in provs, f"{what}: `dht find-providers` did not print provider {provider_id}; "
          f"stdout {out!r}")
    want = strip_p2p(provider_addr)
    check(any(strip_p2p(a) == want for a in provs[provider_id]),
          f"{what}: provider {provider_id} printed with addrs {provs[provider_id]}, want {want} among them")


def js_providers(ev: dict, peer_id: str) -> list:
    return [p for p in ev["providers"] if p["peerId"] == peer_id]


def check_js_found_provider(ev: dict, provider_id: str, provider_addr: str, what: str, from_peer=None):
    """A js `providers` event lists provider_id with its loopback address (answered by from_peer)."""
    mine = js_providers(ev, provider_id)
    check(mine, f"{what}: js found providers {[p['peerId'] for p in ev['providers']]}, not {provider_id} "
          f"(responders {ev['responders']}, errors {ev['errors']})")
    want = strip_p2p(provider_addr)
    check(any(strip_p2p(a) == want for p in mine for a in p["addrs"]),
          f"{what}: js got provider {provider_id} with addrs {[p['addrs'] for p in mine]}, want {want}")
    if from_peer is not None:
        check(any(p["from"] == from_peer for p in mine),
              f"{what}: js got provider {provider_id} from {[p['from'] for p in mine]}, want it from {from_peer}")


def wait_js_added(js, peer_id: str, what: str):
    wait_for_json(js, lambda o: o.get("event") == "peer-added" and o.get("peerId") == peer_id, timeout=T,
                  what=f"peer-added {peer_id} ({what}: the js node did not put our node into its kad "
                       f"routing table - does our identify list /punchgate/kad/1.0.0, does /ipfs/ping work?)")


def wait_we_added(pg, peer_id: str):
    wait_for(pg, r"kad peer added peer=" + peer_id + r"\b", timeout=T, stream="stderr")


def stop(proc, what: str):
    rc = proc.terminate(timeout=10)
    check(rc == 0, f"{what} exited {rc} on SIGTERM, want 0")


# --------------------------------------------------------------------------
# tests: provider records

def test_js_provides_we_find(h):
    """A lone js node provides a CID; `punchgate dht find-providers` (bootstrapped to it)
    prints the js peer id and address: our GET_PROVIDERS <- js server."""
    mh = multihash_hex("punchgate-kad-interop-1")
    js, js_id, js_addr = start_js(h, "--provide", f"hex:{mh}", "--stay", name="js-J")
    ev = js_result(js, "provided")
    check(ev["multihash_hex"] == mh, f"js provided multihash {ev['multihash_hex']}, want {mh}")
    wait_for_json(js, "ready", timeout=T)

    q = run_dht(h, "punchgate-Q", [js_addr], "find-providers", f"hex:{mh}")
    check_provider_listed(q, js_id, js_addr, "provider from a js DHT server")
    check(js.alive(), f"js node died (rc={js.returncode})")

    # and a key nobody provides: nothing found, exit 1
    q2 = run_dht(h, "punchgate-Q2", [js_addr], "find-providers", f"hex:{multihash_hex('nobody-provides-this')}",
                 ident="punchgate-Q")
    check(q2.returncode == 1 and not provider_lines(q2.stdout()),
          f"find-providers of an unprovided key: rc={q2.returncode} stdout={q2.stdout()!r}, want rc 1 and no lines")


def test_js_provides_to_our_node(h):
    """js bootstraps to our node P and provides (ADD_PROVIDER -> P), then stops. P alone must
    hold the record: another punchgate and a fresh js node both find the js provider via P."""
    mh = multihash_hex("punchgate-kad-interop-1b")
    p, p_id, p_addr = start_node(h, "punchgate-P")
    js, js_id, js_addr = start_js(h, "--bootstrap", p_addr, "--provide", f"hex:{mh}", "--stay", name="js-J")
    ev = js_result(js, "provided")
    check(p_id in ev["peers"], f"js sent its provider record to {ev['peers']}, not to our node {p_id} "
          f"(errors {ev['errors']})")
    wait_we_added(p, js_id)
    wait_for_json(js, "ready", timeout=T)
    stop(js, "js node")  # from now on only P knows about the record

    q = run_dht(h, "punchgate-Q", [p_addr], "find-providers", f"hex:{mh}")
    check_provider_listed(q, js_id, js_addr, "js provider record stored by our node")

    j2 = run_js(h, "--bootstrap", p_addr, "--want", "1", "--find-providers", f"hex:{mh}", name="js-J2")
    ev2 = js_result(j2, "providers", timeout=1)
    check_js_found_provider(ev2, js_id, js_addr, "js GET_PROVIDERS <- our node", from_peer=p_id)
    check(p.alive(), f"our node died (rc={p.returncode})")
    stop(p, "our node")


def test_we_provide_js_finds(h):
    """`punchgate dht provide` (bootstrapped to a js node J) announces itself: J stores our
    ADD_PROVIDER, and js nodes asking J or asking us find our peer id and address."""
    mh = multihash_hex("punchgate-kad-interop-2")
    js, js_id, js_addr = start_js(h, "--stay", name="js-J")
    wait_for_json(js, "ready", timeout=T)
    prov = h.start_punchgate(*dht_argv(h, "punchgate-prov", [js_addr], "provide", f"hex:{mh}"), name="punchgate-prov")
    our_id, our_addr = node_info(prov)
    m = wait_for(prov, r"^provided peers=(\d+)\s*$", timeout=DHT_T, stream="stdout")
    check(int(m.group(1)) >= 1, f"we announced to {m.group(1)} peers, want >= 1 (the js node)")
    wait_js_added(js, our_id, "our `dht provide` node")
    wait_we_added(prov, js_id)

    # js asks J (which only knows our record from our ADD_PROVIDER)
    j2 = run_js(h, "--bootstrap", js_addr, "--want", "1", "--find-providers", f"hex:{mh}", name="js-J2")
    check_js_found_provider(js_result(j2, "providers", timeout=1), our_id, our_addr,
                            "our ADD_PROVIDER -> js server", from_peer=js_id)

    # js asks us directly (the provider answers GET_PROVIDERS for its own key)
    j3 = run_js(h, "--bootstrap", f"{our_addr}/p2p/{our_id}", "--find-providers", f"hex:{mh}", name="js-J3")
    ev3 = js_result(j3, "providers", timeout=1)
    check_js_found_provider(ev3, our_id, our_addr, "js GET_PROVIDERS via our provider node")
    check(our_id in ev3["responders"], f"our node did not answer js's GET_PROVIDERS: responders "
          f"{ev3['responders']}, errors {ev3['errors']}")

    check(prov.alive(), f"`punchgate dht provide` exited early (rc={prov.returncode}); it must keep running")
    stop(prov, "`punchgate dht provide`")
    check(js.alive(), f"js node died (rc={js.returncode})")


# --------------------------------------------------------------------------
# tests: values

def test_we_put_js_gets(h):
    """`punchgate dht put /punchgate-test/k1 v1` to a js node (our PUT_VALUE -> js server, js's
    echo accepted by us); a fresh js node then gets v1 from it."""
    js, js_id, js_addr = start_js(h, "--stay", name="js-J")
    wait_for_json(js, "ready", timeout=T)
    key, value = "/punchgate-test/k1", "v1"
    put = run_dht(h, "punchgate-put", [js_addr], "put", key, value)
    out = put.stdout()
    m = re.search(r"^stored peers=(\d+)\s*$", out, re.M)
    check(put.returncode == 0 and m and int(m.group(1)) >= 1,
          f"`dht put` rc={put.returncode} stdout={out!r}, want rc 0 and `stored peers=N` with N >= 1")

    j2 = run_js(h, "--bootstrap", js_addr, "--get", key, name="js-J2")
    ev = js_result(j2, "value", timeout=1)
    check(ev["found"] and ev["value_hex"] == value.encode().hex(),
          f"js get {key}: found={ev['found']} value={ev['value']!r}, want {value!r} (errors {ev['errors']})")
    check(any(r["from"] == js_id and r["value_hex"] == value.encode().hex() for r in ev["records"]),
          f"the js node that took our PUT_VALUE did not return it: records {ev['records']}")
    check(js.alive(), f"js node died (rc={js.returncode})")


def test_js_gets_from_our_node(h):
    """A value stored on our node P (by `punchgate dht put`) is returned by P to js's GET_VALUE."""
    p, p_id, p_addr = start_node(h, "punchgate-P")
    key, value = "/punchgate-test/k3", "value three"
    put = run_dht(h, "punchgate-put", [p_addr], "put", key, value)
    check(put.returncode == 0 and re.search(r"^stored peers=[1-9]\d*\s*$", put.stdout(), re.M),
          f"`dht put` to our node: rc={put.returncode} stdout={put.stdout()!r}")

    j2 = run_js(h, "--bootstrap", p_addr, "--get", key, name="js-J2")
    ev = js_result(j2, "value", timeout=1)
    check(ev["found"] and ev["value_hex"] == value.encode().hex(),
          f"js get {key} via our node: found={ev['found']} value={ev['value']!r}, want {value!r} "
          f"(records {ev['records']}, errors {ev['errors']})")
    check(any(r["from"] == p_id and r["key_hex"] == key.encode().hex() for r in ev["records"]),
          f"our node's GET_VALUE response carried no (valid) record for {key}: records {ev['records']}, "
          f"errors {ev['errors']}")
    check(p.alive(), f"our node died (rc={p.returncode})")
    stop(p, "our node")


def test_js_puts_we_get(h):
    """A lone js node puts /punchgate-test/k2 (arbitrary bytes, stored locally);
    `punchgate dht get` bootstrapped to it prints exactly those bytes: our GET_VALUE <- js server."""
    key = "/punchgate-test/k2"
    value = b"v2 \x00\xff\xfe bytes\nwith a newline\n"
    js, js_id, js_addr = start_js(h, "--put", key, "hex:" + value.hex(), "--stay", name="js-J")
    js_result(js, "put")
    wait_for_json(js, "ready", timeout=T)

    g = run_dht(h, "punchgate-get", [js_addr], "get", key)
    got = stdout_bytes(g)
    check(g.returncode == 0, f"`dht get {key}` exited {g.returncode}, want 0 (stdout {got!r})")
    check(got == value, f"`dht get {key}` printed {got!r}, want exactly {value!r}")

    g2 = run_dht(h, "punchgate-get2", [js_addr], "get", "/punchgate-test/missing", ident="punchgate-get")
    check(g2.returncode == 1 and stdout_bytes(g2) == b"",
          f"`dht get` of a missing key: rc={g2.returncode} stdout={stdout_bytes(g2)!r}, want rc 1 and nothing")
    check(js.alive(), f"js node died (rc={js.returncode})")


def test_js_puts_to_our_node(h):
    """js bootstraps to our node P and puts /punchgate-test/k4 (js PUT_VALUE -> P, P's echo
    accepted by js), then stops; `punchgate dht get` via P returns the value."""
    p, p_id, p_addr = start_node(h, "punchgate-P")
    key, value = "/punchgate-test/k4", "from js to punchgate"
    js, js_id, js_addr = start_js(h, "--bootstrap", p_addr, "--put", key, value, "--stay", name="js-J")
    ev = js_result(js, "put")
    check(p_id in ev["peers"], f"our node did not take (and echo) js's PUT_VALUE: acked by {ev['peers']}, "
          f"errors {ev['errors']}")
    wait_for_json(js, "ready", timeout=T)
    stop(js, "js node")  # only P has the value now

    g = run_dht(h, "punchgate-get", [p_addr], "get", key)
    check(g.returncode == 0 and stdout_bytes(g) == value.encode(),
          f"`dht get {key}` via our node: rc={g.returncode} stdout={stdout_bytes(g)!r}, want {value.encode()!r}")
    check(p.alive(), f"our node died (rc={p.returncode})")
    stop(p, "our node")


# --------------------------------------------------------------------------
# tests: peer routing

def test_find_peer_both_ways(h):
    """FIND_NODE closer peers carry addresses both ways: js asks our node P for a js peer J
    (our response encodes J's addrs), `punchgate dht find-peer P` asks J (js encodes P's)."""
    p, p_id, p_addr = start_node(h, "punchgate-P")
    js, js_id, js_addr = start_js(h, "--bootstrap", p_addr, "--stay", name="js-J")
    wait_for_json(js, "ready", timeout=T)
    wait_we_added(p, js_id)
    wait_js_added(js, p_id, "our node P")

    q = run_dht(h, "punchgate-Q", [js_addr], "find-peer", p_id)
    addrs = [ln.strip() for ln in q.stdout().splitlines() if ln.strip()]
    check(q.returncode == 0, f"`dht find-peer {p_id}` via js exited {q.returncode} (stdout {q.stdout()!r})")
    check(strip_p2p(p_addr) in [strip_p2p(a) for a in addrs],
          f"`dht find-peer {p_id}` via js printed {addrs}, want {strip_p2p(p_addr)} among them")

    # (after Q: js stops at the first answer, so Q left in the tables costs nothing)
    j2 = run_js(h, "--bootstrap", p_addr, "--find-peer", js_id, name="js-J2")
    ev = js_result(j2, "peer", timeout=1)
    check(ev["found"], f"js could not find {js_id} through our node: {ev}")
    check(strip_p2p(js_addr) in [strip_p2p(a) for a in ev["addrs"]],
          f"our node returned {js_id} with addrs {ev['addrs']}, want {strip_p2p(js_addr)} among them")
    check(p.alive() and js.alive(), f"a node died: punchgate rc={p.returncode} js rc={js.returncode}")
    stop(p, "our node")


TESTS = [
    test_js_provides_we_find,
    test_js_provides_to_our_node,
    test_we_provide_js_finds,
    test_we_put_js_gets,
    test_js_gets_from_our_node,
    test_js_puts_we_get,
    test_js_puts_to_our_node,
    test_find_peer_both_ways,
]


preflight = interop_preflight("@libp2p/kad-dht")


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
