#!/usr/bin/env python3
"""Hole punching (DCUtR, /libp2p/dcutr) interop with js-libp2p across two emulated NATs.

    python3 tests/interop/test_js_dcutr.py --punchgate /path/to/punchgate [-k NAME]

Each test builds its own NAT bed (tests/lib/nat_bed.py: network namespaces with a per-run
prefix, deleted with every process in them whatever happens): the "internet" 203.0.113.0/24
with pub1 (.1) and pub2 (.2), and hosts hA (10.1.0.2) / hB (10.2.0.2) behind gateways whose
nftables rules make them port-restricted cone NATs (PRC: `masquerade persistent`, inbound only
from the exact address an inside socket sent to, unsolicited inbound to the gateway dropped).
The js side is tests/interop/js-dcutr.mjs (identify, ping, @libp2p/dcutr, circuit relay
transport) and js-relay.mjs (relay server).

- our two NATed nodes hole punch through a js relay: the provider (hA) reserves on it, the
  consumer (hB) reaches it through it; the consumer ends up with only a direct connection, both
  log `hole punch succeeded`, the echo passes;
- js alone cannot hole punch over QUIC: two js nodes behind the two NATs, relayed through a js
  relay, run all three DCUtR attempts and stay relayed. The cause, shown from the gateways and
  the sockets: @chainsafe/libp2p-quic listens on one UDP socket and dials from another (its
  quinn client endpoint, bound to 0.0.0.0:0), so each DCUtR dial leaves the NAT from a mapping
  the peer never punched towards, and the listening socket never sends anything that would open
  the NAT for the peer's dial;
- js dials our node through the js relay (we accepted the relayed connection: we are the
  DCUtR initiator, js answers) and our node dials js through our relay (js initiates, we
  answer): in both the full CONNECT/SYNC exchange runs three times (both logs show it), the
  punch cannot work (above) and the tunnel works over the relay;
- with js behind a full-cone NAT instead (its listening socket reachable from anyone), the
  same exchange with our node as initiator ends direct: our dial on the punch plan gets
  through, i.e. our side of DCUtR works with js when js's socket can be reached.

js puts only verified addresses into identify and into its CONNECT, and verifies observed ones
only with AutoNAT, so each js node gets its NAT's external address of its listening socket as
`--announce` (what a port forward or UPnP mapping would give it); and js counts 203.0.113.0/24
(TEST-NET-3) as private, so js-dcutr.mjs --public-test-net lets DCUtR's address filter take it
(only the filter: how js dials is untouched). Needs root, iproute2, nftables and `npm ci` in
tests/interop; without them every test fails (never skips).
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

import nat_bed  # noqa: E402
from nat_bed import LANS, BedProc, NatBed  # noqa: E402
from nat_trial import (NODE_PORT, TUNNEL_PORT, ControlClient, Node, echo_result, run_echo, start_node,  # noqa: E402
                       stop_nodes)
from punchgate_harness import check, main  # noqa: E402
from punchgate_helpers import echo_server_argv, interop_preflight, isolate_env, js_data_sha256  # noqa: E402

isolate_env()

PORT = NODE_PORT
LISTEN_ANY = f"/ip4/0.0.0.0/udp/{PORT}/quic-v1"
JS_DATA_BYTES = 64 << 10
JS_DEBUG = "libp2p:dcutr*,libp2p:quic:transport*"
SIDE = {host: side for side, (_gw, host, _lan) in LANS.items()}  # hA -> A, hB -> B
GW = {host: gw for gw, host, _lan in LANS.values()}
DIRECT_WITHIN = 30.0
# js-libp2p's DCUtR: three attempts, each ending when its dial's 5 s abort signal fires
JS_ROUNDS_WITHIN = 40.0


# --------------------------------------------------------------------------
# bed helpers

def bed_for(h, nat_a: str = "PRC", nat_b: str = "PRC") -> NatBed:
    """A bed whose processes the harness dumps when a test fails."""
    return NatBed(nat_a, nat_b, Path(h.tmpdir) / f"bed-{nat_a}-{nat_b}", on_spawn=h.procs.append)


def wan(bed: NatBed, host: str) -> str:
    """The external (WAN) address of host's NAT."""
    return bed.wan_ips[SIDE[host]]


def start_ours(h, bed: NatBed, ns: str, name: str, *args, listen: str) -> Node:
    """Our node in ns. start_node drops the harness' PUNCHGATE_* defaults, and no gateway here
    runs miniupnpd: port mapping would only delay the node, so it is off."""
    return start_node(bed, h.punchgate, ns, name, "--no-port-mapping", *args, listen=listen)


def stop_ours(*nodes: Node) -> None:
    """Checks that port mapping was off in our nodes (see start_ours), then SIGTERMs them; each
    must exit 0 (an ASan report, for one, makes it fail)."""
    for n in nodes:
        ctl = ControlClient(n.sock)
        try:
            st = ctl.call("status")
        finally:
            ctl.close()
        check(st is not None and st.get("port_mapping", {}).get("enabled") is False,
              f"{n.proc.name}: port mapping not off: {None if st is None else st.get('port_mapping')}")
    codes = stop_nodes([n.proc for n in nodes])
    check(all(c == 0 for c in codes.values()), f"our nodes did not exit cleanly after SIGTERM: {codes}")


def events(p: BedProc, name: str | None = None) -> list[dict]:
    out = []
    for line in p.stdout().splitlines():
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if name is None or ev.get("event") == name:
                out.append(ev)
    return out


def wait_event(p: BedProc, pred, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for ev in events(p):
            if pred(ev):
                return ev
        check(p.alive(), f"{p.name} exited (rc={p.popen.poll()}) before {what}; stderr: {p.stderr()[-800:]!r}")
        check(time.monotonic() < deadline, f"no {what} from {p.name} within {timeout:.0f} s")
        time.sleep(0.05)


def wait_log(p: BedProc, pattern: str, timeout: float, count: int = 1) -> list[re.Match]:
    """The first `count` matches of pattern in p's stderr, waiting up to timeout for them."""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        found = list(rx.finditer(p.stderr()))
        if len(found) >= count:
            return found[:count]
        check(p.alive(), f"{p.name} exited (rc={p.popen.poll()}) with {len(found)} of {count} /{pattern}/")
        check(time.monotonic() < deadline,
              f"{p.name}: {len(found)} of {count} /{pattern}/ within {timeout:.0f} s")
        time.sleep(0.1)


def start_js_relay(h, bed: NatBed) -> tuple[BedProc, str, str]:
    """A js relay (circuit relay v2 server, identify, no limits) on pub1: (proc, id, multiaddr)."""
    relay = bed.spawn("pub1", "js-relay", [h.node, HERE / "js-relay.mjs", "relay", "--host", bed.pub_ips["pub1"],
                                           "--port", PORT])
    ev = wait_event(relay, lambda e: e.get("event") == "listening", 30, "listening event")
    return relay, ev["peerId"], f"/ip4/{bed.pub_ips['pub1']}/udp/{PORT}/quic-v1/p2p/{ev['peerId']}"


def start_our_relay(h, bed: NatBed) -> Node:
    """A public punchgate node (relay server) on pub2; .addr is its multiaddr."""
    listen = f"/ip4/{bed.pub_ips['pub2']}/udp/{PORT}/quic-v1"
    r = start_ours(h, bed, "pub2", "our-relay", listen=listen)
    r.proc.wait_for(r"listening on " + re.escape(listen), timeout=20)
    r.addr = f"{listen}/p2p/{r.peer_id}"
    return r


def start_js_node(h, bed: NatBed, host: str, name: str, *args) -> BedProc:
    """js-dcutr.mjs on host, listening on :4001 and announcing its NAT's address of that port."""
    announce = f"/ip4/{wan(bed, host)}/udp/{PORT}/quic-v1"
    return bed.spawn(host, name, [h.node, HERE / "js-dcutr.mjs", "--listen", LISTEN_ANY, "--announce", announce,
                                  "--public-test-net", *args],
                     env={"DEBUG": JS_DEBUG})


def start_echo(bed: NatBed, host: str) -> int:
    echo = bed.spawn(host, "echo-server", echo_server_argv())
    return int(echo.wait_for(r"^port (\d+)", timeout=15, stream="stdout").group(1))


def echo_through(bed: NatBed, tag: str, within: float) -> dict:
    """Echo a payload through the consumer's tunnel (127.0.0.1:TUNNEL_PORT in hB), retried while
    the tunnel comes up."""
    payload = random.Random(tag).randbytes(8192)
    return echo_result(run_echo(bed, payload, within), timeout=within + 30)


def peer_view(node: Node, peer_id: str) -> list[dict]:
    """The node's status entries (one per connection) for peer_id; [] when not answering."""
    ctl = ControlClient(node.sock)
    try:
        r = ctl.call("peers")
    finally:
        ctl.close()
    return [p for p in (r or {}).get("peers", []) if p.get("peer_id") == peer_id]


def kinds(view: list[dict]) -> list[str]:
    return sorted(p.get("connection", "?") for p in view)


def wait_only_direct(node: Node, peer_id: str, within: float) -> list[dict]:
    """Polls until node's only connections to peer_id are direct (the relayed one closed)."""
    deadline = time.monotonic() + within
    view: list[dict] = []
    while time.monotonic() < deadline:
        view = peer_view(node, peer_id)
        if view and all(p.get("connection") == "direct" for p in view):
            return view
        check(node.proc.alive(), f"{node.proc.name} died (rc={node.proc.popen.poll()})")
        time.sleep(0.2)
    check(False, f"{node.proc.name} still has {kinds(view)} to {peer_id} after {within:.0f} s: {view}")
    return view


def watch_udp(bed: NatBed, host: str) -> None:
    """Record, in host's gateway, each (inside addr, inside port, remote addr, remote port) of UDP
    leaving the LAN: which socket talked to whom, before masquerading."""
    ruleset = (
        "table ip jsdcutr_watch {\n"
        "  set out { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags dynamic, timeout; timeout 10m; }\n"
        "  chain watch { type filter hook forward priority filter; policy accept;\n"
        '    iifname "lan" meta l4proto udp update @out { ip saddr . udp sport . ip daddr . udp dport }\n'
        "  }\n"
        "}\n")
    bed.run(GW[host], ["nft", "-f", "-"], input=ruleset)


def udp_flows(bed: NatBed, host: str) -> set[tuple[str, int, str, int]]:
    text = bed.run(GW[host], ["nft", "list", "set", "ip", "jsdcutr_watch", "out"])
    rx = re.compile(r"(\d+\.\d+\.\d+\.\d+) \. (\d+) \. (\d+\.\d+\.\d+\.\d+) \. (\d+)")
    return {(m.group(1), int(m.group(2)), m.group(3), int(m.group(4))) for m in rx.finditer(text)}


def udp_ports_of_node(bed: NatBed, host: str) -> set[int]:
    """IPv4 UDP ports bound by the node (js) process in host."""
    text = bed.run(host, ["ss", "-H", "-4", "-u", "-a", "-n", "-p"])
    return {int(m.group(1)) for m in re.finditer(r"\S+:(\d+)\s+\S+\s+users:\(\(\"node\"", text)}


def js_dial_rx(role: str, bed: NatBed, host: str) -> str:
    """js's debug line of DCUtR role `role` (A or B) dialing the address of host's NAT for PORT."""
    return rf"{role} dialing \[\s*Multiaddr\(/ip4/" + re.escape(wan(bed, host)) + rf"/udp/{PORT}/quic-v1"


def js_direct_to(js: BedProc, peer_id: str) -> list[dict]:
    return [e for e in events(js, "connection") if e.get("peerId") == peer_id and e.get("connection") == "direct"]


def check_js_tunnel(js: BedProc, peer_id: str) -> dict:
    t = wait_event(js, lambda e: e.get("event") in ("tunnel", "error"), 30, "tunnel result")
    want = js_data_sha256(JS_DATA_BYTES)
    check(t.get("event") == "tunnel" and t.get("accepted") is True and t.get("peerId") == peer_id,
          f"js tunnel to {peer_id}: {t}")
    check(t["bytes_received"] == JS_DATA_BYTES and t["sha256_received"] == want,
          f"js got back {t['bytes_received']} bytes (sha256 {t['sha256_received']}), want {JS_DATA_BYTES} ({want})")
    return t


# --------------------------------------------------------------------------
# tests

def test_ours_hole_punch_through_js_relay(h):
    """(a) PRC:PRC, our provider and consumer, a js relay on pub1: direct, punched, echo."""
    with bed_for(h) as bed:
        relay, relay_id, relay_addr = start_js_relay(h, bed)
        echo_port = start_echo(bed, "hA")
        prov = start_ours(h, bed, "hA", "provider", "--bootstrap", relay_addr,
                          "--expose", f"echo=127.0.0.1:{echo_port}", listen=LISTEN_ANY)
        prov.proc.wait_for(r"relay reservation accepted relay=" + relay_id, timeout=30)
        wait_event(relay, lambda e: e.get("event") == "reservation" and e.get("peerId") == prov.peer_id, 10,
                   "the provider's reservation")
        cons = start_ours(h, bed, "hB", "consumer", "--bootstrap", relay_addr,
                          "--bootstrap", f"{relay_addr}/p2p-circuit/p2p/{prov.peer_id}",
                          "--tunnel", f"{prov.peer_id}:echo@127.0.0.1:{TUNNEL_PORT}", listen=LISTEN_ANY)
        cons.proc.wait_for(rf"tunnel listening bind=127\.0\.0\.1:{TUNNEL_PORT} ", timeout=20)
        first = echo_through(bed, "first", 30)
        check(first.get("ok"), f"echo through the tunnel failed: {first}")

        # The relayed connection went through the js relay, and the provider (which accepted it)
        # started the punch.
        prov.proc.wait_for(rf"connection opened peer={cons.peer_id} endpoint=listener "
                           rf"remote_addr=\S*/p2p/{relay_id}/p2p-circuit\S* relayed=true", timeout=10)
        prov.proc.wait_for(rf"hole punch starting peer={cons.peer_id} role=initiator", timeout=10)
        cons.proc.wait_for(rf"hole punch starting peer={prov.peer_id} role=responder", timeout=10)
        for node, other in ((prov, cons), (cons, prov)):
            node.proc.wait_for(rf"hole punch succeeded peer={other.peer_id} attempt=\d+ elapsed_ms=\d+",
                               timeout=DIRECT_WITHIN)
        view = wait_only_direct(cons, prov.peer_id, DIRECT_WITHIN)
        check(any("hole punched" in str(p.get("why", "")) for p in view), f"consumer's view of the provider: {view}")
        second = echo_through(bed, "second", 15)
        check(second.get("ok"), f"echo over the direct connection failed: {second}")
        check(all(p.alive() for p in (relay, prov.proc, cons.proc)), "a process died")
        stop_ours(prov, cons)


def test_js_quic_cannot_hole_punch(h):
    """js alone, PRC:PRC, js relay: all three DCUtR attempts fail and the nodes stay relayed,
    because js dials from another UDP socket than the one it listens (and punches) on.

    This asserts js-libp2p's observed behaviour (libp2p 3.3.9, @libp2p/dcutr 3.0.28,
    @chainsafe/libp2p-quic 2.1.1): if a later js-quic dials from its listening socket, this
    test fails and should become a "js <-> js ends direct" test."""
    with bed_for(h) as bed:
        for host in ("hA", "hB"):
            watch_udp(bed, host)
        relay, relay_id, relay_addr = start_js_relay(h, bed)
        x = start_js_node(h, bed, "hA", "js-x", "--relay", relay_addr)
        x_id = wait_event(x, lambda e: e.get("event") == "reserved", 30, "reservation")["peerId"]
        y = start_js_node(h, bed, "hB", "js-y", "--dial", f"{relay_addr}/p2p-circuit/p2p/{x_id}",
                          "--service", "echo", "--data-bytes", JS_DATA_BYTES)
        y_id = wait_event(y, lambda e: e.get("event") == "listening", 30, "listening event")["peerId"]
        check_js_tunnel(y, x_id)

        # X accepted the relayed connection: it is DCUtR's B. Each attempt: CONNECT both ways, SYNC,
        # both dial the other's announced address; each dial times out (5 s).
        errs = wait_log(x, r"error while attempting DCUtR on attempt (\d) of 3 - (.*)$", JS_ROUNDS_WITHIN, count=3)
        check([m.group(1) for m in errs] == ["1", "2", "3"], f"js-x attempts: {[m.group(0) for m in errs]}")
        check(all("TimeoutError" in m.group(2) for m in errs),
              f"js-x attempts did not end in dial timeouts: {[m.group(2) for m in errs]}")
        wait_log(x, js_dial_rx("B", bed, "hB"), 5, count=3)
        wait_log(y, js_dial_rx("A", bed, "hA"), 5, count=3)
        check(not js_direct_to(x, y_id) and not js_direct_to(y, x_id),
              f"js nodes got a direct connection: {js_direct_to(x, y_id) + js_direct_to(y, x_id)}")

        # Why: from the gateways, which inside socket sent to whom. Each js node reached the
        # relay and the other NAT from one port, not from the port it listens on.
        for host, js, other in (("hA", x, "hB"), ("hB", y, "hA")):
            flows = udp_flows(bed, host)
            to_peer = {f for f in flows if f[2] == wan(bed, other) and f[3] == PORT}
            to_relay = {f for f in flows if f[2] == bed.pub_ips["pub1"] and f[3] == PORT}
            check(to_peer, f"{js.name}: no UDP from {host} to {wan(bed, other)}:{PORT} seen by its gateway: {flows}")
            sports = {f[1] for f in to_peer}
            check(PORT not in sports,
                  f"{js.name} sent to the peer from its listening port {PORT}: a punch could work: {to_peer}")
            check(sports <= {f[1] for f in to_relay},
                  f"{js.name} punched from {sports}, not its (relay) client port {to_relay}")
            bound = udp_ports_of_node(bed, host)
            check(PORT in bound and sports <= bound,
                  f"{js.name}: listening on {PORT} and dialing from {sports}, node's sockets {bound}")
            print(f"  {js.name}: listens on {PORT}, dials from {sorted(sports)}: its NAT drops the peer's "
                  f"dial to :{PORT} (that socket never sent to the peer), the peer's NAT drops this one's")
        check(all(p.alive() for p in (relay, x, y)), "a process died")


def test_js_dials_our_node_we_initiate(h):
    """PRC:PRC, js relay: js dials our provider through it, so we are DCUtR's initiator (B) and
    js answers (A). Three complete exchanges on new streams (js ends each after its dial),
    still relayed (js cannot be punched to, see above); the tunnel works relayed."""
    with bed_for(h) as bed:
        relay, relay_id, relay_addr = start_js_relay(h, bed)
        echo_port = start_echo(bed, "hA")
        prov = start_ours(h, bed, "hA", "provider", "--bootstrap", relay_addr,
                          "--expose", f"echo=127.0.0.1:{echo_port}", listen=LISTEN_ANY)
        prov.proc.wait_for(r"relay reservation accepted relay=" + relay_id, timeout=30)
        js = start_js_node(h, bed, "hB", "js", "--dial", f"{relay_addr}/p2p-circuit/p2p/{prov.peer_id}",
                           "--service", "echo", "--data-bytes", JS_DATA_BYTES)
        js_id = wait_event(js, lambda e: e.get("event") == "listening", 30, "listening event")["peerId"]
        t = check_js_tunnel(js, prov.peer_id)
        check(t["connection"] == "relayed", f"js tunnel not over the relay: {t}")

        prov.proc.wait_for(rf"hole punch starting peer={js_id} role=initiator", timeout=10)
        syncs = wait_log(prov.proc, rf"hole punch sync sent attempt=(\d) rtt_ms=\d+ peer_addrs=\[([^\]]*)\] "
                                    rf"peer={js_id}", JS_ROUNDS_WITHIN, count=3)
        check([m.group(1) for m in syncs] == ["1", "2", "3"], f"our attempts: {[m.group(0) for m in syncs]}")
        check(all(f"/ip4/{wan(bed, 'hB')}/udp/{PORT}/quic-v1" in m.group(2) for m in syncs),
              f"js did not offer its announced address: {syncs[0].group(2)}")
        # js offers its loopback listen address too; for us that is our own host: not punched to
        check(not any("/ip4/127." in m.group(2) for m in syncs), f"we punch to js's loopback: {syncs[0].group(2)}")
        failed = prov.proc.wait_for(rf"hole punch failed peer={js_id} reason=(.*)$", timeout=15)
        check("no direct connection after 3 attempts" in failed.group(1), f"our punch ended: {failed.group(0)}")
        # js's side of each exchange: it read our CONNECT and SYNC and dialed our NAT's address
        wait_log(js, r"libp2p:dcutr A receiving sync", 5, count=3)
        wait_log(js, js_dial_rx("A", bed, "hA"), 5, count=3)
        view = peer_view(prov, js_id)
        check(kinds(view) == ["relayed"], f"our view of js: {view}")
        check(not js_direct_to(js, prov.peer_id), f"js has a direct connection: {js_direct_to(js, prov.peer_id)}")
        check(all(p.alive() for p in (relay, prov.proc, js)), "a process died")
        stop_ours(prov)


def test_our_node_dials_js_js_initiates(h):
    """PRC:PRC, our relay on pub2: js reserves on it, our consumer tunnels to js's echo through it,
    so js is DCUtR's initiator (B) and we answer (A), once per js stream; still relayed; echo."""
    with bed_for(h) as bed:
        r = start_our_relay(h, bed)
        js = start_js_node(h, bed, "hA", "js", "--relay", r.addr)
        js_id = wait_event(js, lambda e: e.get("event") == "reserved", 30, "reservation")["peerId"]
        cons = start_ours(h, bed, "hB", "consumer", "--bootstrap", r.addr,
                          "--bootstrap", f"{r.addr}/p2p-circuit/p2p/{js_id}",
                          "--tunnel", f"{js_id}:echo@127.0.0.1:{TUNNEL_PORT}", listen=LISTEN_ANY)
        cons.proc.wait_for(rf"tunnel listening bind=127\.0\.0\.1:{TUNNEL_PORT} ", timeout=20)
        first = echo_through(bed, "first", 30)
        check(first.get("ok"), f"echo to js through our relay failed: {first}")
        cons.proc.wait_for(rf"connected to tunnel target via relay peer_id={js_id} relay={r.peer_id}", timeout=10)

        starts = wait_log(cons.proc, rf"hole punch starting peer={js_id} role=(\w+)", JS_ROUNDS_WITHIN, count=3)
        check(all(m.group(1) == "responder" for m in starts), f"our roles: {[m.group(0) for m in starts]}")
        syncs = wait_log(cons.proc, rf"hole punch sync received attempt=\d peer_addrs=\[([^\]]*)\] peer={js_id}",
                         JS_ROUNDS_WITHIN, count=3)
        check(all(f"/ip4/{wan(bed, 'hA')}/udp/{PORT}/quic-v1" in m.group(1) for m in syncs),
              f"js did not offer its announced address: {syncs[0].group(1)}")
        check(not any("/ip4/127." in m.group(1) for m in syncs), f"we punch to js's loopback: {syncs[0].group(1)}")
        errs = wait_log(js, r"error while attempting DCUtR on attempt (\d) of 3", JS_ROUNDS_WITHIN, count=3)
        check([m.group(1) for m in errs] == ["1", "2", "3"], f"js attempts: {[m.group(0) for m in errs]}")
        wait_log(js, js_dial_rx("B", bed, "hB"), 5, count=3)
        view = peer_view(cons, js_id)
        check(kinds(view) == ["relayed"], f"our view of js: {view}")
        check(not js_direct_to(js, cons.peer_id), f"js has a direct connection: {js_direct_to(js, cons.peer_id)}")
        again = echo_through(bed, "again", 15)
        check(again.get("ok"), f"echo after the punch rounds failed: {again}")
        check(all(p.alive() for p in (r.proc, js, cons.proc)), "a process died")
        stop_ours(r, cons)


def test_js_behind_full_cone_ends_direct(h):
    """PRC (ours) : FC (js), js relay: js dials our provider through the relay; our punch plan's
    dial to js's announced address gets through js's full-cone NAT: direct, both sides see it,
    and our relayed connection to js is closed."""
    with bed_for(h, "PRC", "FC") as bed:
        relay, relay_id, relay_addr = start_js_relay(h, bed)
        echo_port = start_echo(bed, "hA")
        prov = start_ours(h, bed, "hA", "provider", "--bootstrap", relay_addr,
                          "--expose", f"echo=127.0.0.1:{echo_port}", listen=LISTEN_ANY)
        prov.proc.wait_for(r"relay reservation accepted relay=" + relay_id, timeout=30)
        js = start_js_node(h, bed, "hB", "js", "--dial", f"{relay_addr}/p2p-circuit/p2p/{prov.peer_id}")
        js_id = wait_event(js, lambda e: e.get("event") == "listening", 30, "listening event")["peerId"]
        prov.proc.wait_for(rf"hole punch starting peer={js_id} role=initiator", timeout=20)
        prov.proc.wait_for(rf"hole punch sync sent attempt=1 rtt_ms=\d+ peer_addrs=\[[^\]]*\] peer={js_id}", timeout=10)
        prov.proc.wait_for(rf"hole punch succeeded peer={js_id} attempt=\d+ elapsed_ms=\d+", timeout=DIRECT_WITHIN)
        wait_event(js, lambda e: e.get("event") == "connection" and e.get("peerId") == prov.peer_id
                   and e.get("connection") == "direct", 10, "a direct connection to our node")
        view = wait_only_direct(prov, js_id, DIRECT_WITHIN)
        check(any("hole punched" in str(p.get("why", "")) for p in view), f"our view of js: {view}")
        check(all(p.alive() for p in (relay, prov.proc, js)), "a process died")
        stop_ours(prov)


TESTS = [
    test_ours_hole_punch_through_js_relay,
    test_js_quic_cannot_hole_punch,
    test_js_dials_our_node_we_initiate,
    test_our_node_dials_js_js_initiates,
    test_js_behind_full_cone_ends_direct,
]


def preflight(args):
    base = interop_preflight("@libp2p/dcutr", "@libp2p/circuit-relay-v2", "@chainsafe/libp2p-noise",
                             "@chainsafe/libp2p-yamux")(args)
    return base or nat_bed.preflight()


if __name__ == "__main__":
    main(TESTS, description=__doc__, preflight=preflight)
