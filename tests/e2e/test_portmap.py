#!/usr/bin/env python3
"""Gateway port mapping end to end: punchgate behind a real miniupnpd, in network namespaces.

    python3 tests/e2e/test_portmap.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

Each test builds its own little internet from namespaces named pgpm-<pid>-<n>-*:

    lanA 192.168.77.2 ─┐                            ┌─ wan 11.0.0.2 (a WAN peer)
    lanB 192.168.77.3 ─┴─ br0 192.168.77.1 [gw] 11.0.0.1 ─┘

The gateway forwards with nftables (forward policy drop: nothing from the WAN reaches the LAN
unless miniupnpd opened it; LAN traffic leaves masqueraded) and runs miniupnpd (the
miniupnpd-nftables package) with UPnP-IGD and/or NAT-PMP enabled. A node on lanA maps its QUIC
port; the tests check its log, its status, the DNAT rule miniupnpd wrote, that the WAN peer
learns the mapped address by identify and that a WAN-side `punchgate ping` reaches the node at
that address (which, with the forward policy, only works through the mapping), and that the
rule is gone after the node stops. `--no-port-mapping` leaves the gateway untouched and the
node unreachable from the WAN. Processes are stopped and namespaces deleted in a finally
block whatever happens. Needs root, iproute2, nftables and miniupnpd: without them every test
fails with a setup error (scripts/deps.sh installs them), never skips.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import TestFailure, check, identify_received, main, wait_for  # noqa: E402
from punchgate_helpers import LOCAL_PEER_ID_RX, isolate_env, make_identity  # noqa: E402

isolate_env()

MINIUPNPD = "/usr/sbin/miniupnpd"
T = 30
GW_LAN, GW_WAN, WAN_PEER = "192.168.77.1", "11.0.0.1", "11.0.0.2"
LAN_IP = {"lanA": "192.168.77.2", "lanB": "192.168.77.3"}
PORT = 4001
MAPPING_ON = {"PUNCHGATE_PORT_MAPPING": "true"}

_counter = itertools.count()


def run(argv, check_rc: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise TestFailure(f"`{' '.join(map(str, argv))}` exited {r.returncode}: {r.stderr.strip()}")
    return r


def in_ns(ns: str, *argv) -> list[str]:
    return ["ip", "netns", "exec", ns, *map(str, argv)]


class Net:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.ns = {n: f"{prefix}-{n}" for n in ("gw", "lanA", "lanB", "wan")}

    def __getitem__(self, name: str) -> str:
        return self.ns[name]

    def build(self) -> None:
        for ns in self.ns.values():
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        gw = self["gw"]
        run(["ip", "-n", gw, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", gw, "addr", "add", f"{GW_LAN}/24", "dev", "br0"])
        run(["ip", "-n", gw, "link", "set", "br0", "up"])
        for host, ip in LAN_IP.items():
            port = f"p{host}"
            run(["ip", "link", "add", "eth0", "netns", self[host], "type", "veth", "peer", "name", port, "netns", gw])
            run(["ip", "-n", gw, "link", "set", port, "master", "br0"])
            run(["ip", "-n", gw, "link", "set", port, "up"])
            run(["ip", "-n", self[host], "addr", "add", f"{ip}/24", "dev", "eth0"])
            run(["ip", "-n", self[host], "link", "set", "eth0", "up"])
            run(["ip", "-n", self[host], "route", "add", "default", "via", GW_LAN])
        run(["ip", "link", "add", "eth0", "netns", self["wan"], "type", "veth", "peer", "name", "wan", "netns", gw])
        run(["ip", "-n", gw, "addr", "add", f"{GW_WAN}/24", "dev", "wan"])
        run(["ip", "-n", gw, "link", "set", "wan", "up"])
        run(["ip", "-n", self["wan"], "addr", "add", f"{WAN_PEER}/24", "dev", "eth0"])
        run(["ip", "-n", self["wan"], "link", "set", "eth0", "up"])
        run(in_ns(gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
        # The tables and chains miniupnpd-nftables expects by default (table inet filter, chains
        # miniupnpd, prerouting_miniupnpd, postrouting_miniupnpd), as its nft_init.sh sets them up.
        rules = f"""
table inet filter {{
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "br0" oifname "wan" accept
    jump miniupnpd
  }}
  chain miniupnpd {{
  }}
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan" masquerade
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
}}
"""
        r = subprocess.run(in_ns(gw, "nft", "-f", "-"), input=rules, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise TestFailure(f"nft setup in the gateway failed: {r.stderr.strip()}")

    def destroy(self) -> None:
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    def dnat_rules(self) -> str:
        """miniupnpd's redirections, as nft lists them."""
        return run(in_ns(self["gw"], "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")).stdout


@contextmanager
def network(h):
    net = Net(f"pgpm-{os.getpid()}-{next(_counter)}")
    try:
        net.build()
        yield net
    finally:
        for p in h.procs:  # a process keeps its namespace alive
            p.terminate(timeout=5.0)
        net.destroy()


def start_gateway(h, net: Net, upnp: bool, natpmp: bool):
    conf = Path(h.path("miniupnpd.conf"))
    conf.write_text("\n".join([
        "ext_ifname=wan",
        "listening_ip=br0",
        f"enable_upnp={'yes' if upnp else 'no'}",
        f"enable_natpmp={'yes' if natpmp else 'no'}",
        "secure_mode=yes",
        "system_uptime=no",
        "uuid=5c7a9d1e-0f1b-4c53-9a43-7d9c1e2f3a4b",
        f"allow 1024-65535 {GW_LAN}/24 1024-65535",
        "deny 0-65535 0.0.0.0/0 0-65535",
        "",
    ]))
    gw = h.spawn("miniupnpd", in_ns(net["gw"], MINIUPNPD, "-f", conf, "-d", "-P", h.path("miniupnpd.pid")))
    if natpmp:
        wait_for(gw, r"Listening for NAT-PMP/PCP traffic on port 5351", timeout=T, stream="stderr")
    if upnp:
        wait_for(gw, r"HTTP listening on port \d+", timeout=T, stream="stderr")
    return gw


def start_lan_node(h, net: Net, host: str, name: str, *args, env: dict = MAPPING_ON):
    key, peer_id = make_identity(h, f"{name}.key")
    node = h.spawn(name, in_ns(net[host], h.punchgate, "--identity", key, "--listen",
                               f"/ip4/0.0.0.0/udp/{PORT}/quic-v1", "--control-socket", h.path(f"{name}.sock"),
                               *args), env=env)
    wait_for(node, LOCAL_PEER_ID_RX, timeout=T, stream="stderr")
    return node, peer_id


def added_rx(protocol: str, internal_port: int = PORT, external_port: int | str = PORT) -> str:
    return (rf"port mapping added protocol={protocol} external={re.escape(GW_WAN)}:({external_port}) "
            rf"internal_port={internal_port} lifetime_s=(\d+) advertised=true")


def status(h, name: str) -> dict:
    p = h.run_punchgate("--control-socket", h.path(f"{name}.sock"), "status", "--json", name=f"status-{name}")
    check(p.returncode == 0, f"status of {name} exited {p.returncode}: {p.stderr().strip()!r}")
    return json.loads(p.stdout())


def wan_ping(h, net: Net, addr: str, name: str = "ping", timeout: float = 45):
    """`punchgate ping -c 2 ADDR` from the WAN namespace; the finished process."""
    p = h.spawn(name, in_ns(net["wan"], h.punchgate, "--identity", h.path("P.key"), "--listen",
                            f"/ip4/{WAN_PEER}/udp/0/quic-v1", "ping", "-c", "2", "--interval-ms", "200", addr))
    p.wait_exit(timeout)
    return p


def stop_node(node, within: float = 10) -> float:
    """SIGTERM; the node must exit 0. Returns the seconds it took."""
    t0 = time.monotonic()
    node.send_signal(signal.SIGTERM)
    rc = node.wait_exit(within)
    took = time.monotonic() - t0
    check(rc == 0, f"{node.name} exited {rc} on SIGTERM (stderr tail: {node.stderr()[-400:]!r})")
    return took


def check_mapped_and_reachable(h, net: Net, node, peer_id: str, protocol: str) -> None:
    m = wait_for(node, added_rx(protocol), timeout=T, stream="stderr")
    check(int(m.group(2)) > 0, f"lease {m.group(2)} s")
    mapped = f"/ip4/{GW_WAN}/udp/{PORT}/quic-v1"
    rules = net.dnat_rules()
    check(re.search(rf"dport {PORT} dnat ip to {re.escape(LAN_IP['lanA'])}:{PORT}", rules),
          f"no DNAT rule for {PORT} in the gateway:\n{rules}")

    st = status(h, node.name)["port_mapping"]
    check(st["enabled"] is True, f"status port_mapping {st}")
    check(len(st["mappings"]) == 1, f"status port_mapping {st}")
    pm = st["mappings"][0]
    check(pm["state"] == "mapped" and pm["protocol"] == protocol and pm["external_addr"] == mapped
          and pm["advertised"] is True and pm["internal_port"] == PORT, f"status port_mapping {st}")

    # From the WAN: the mapped address answers (the gateway forwards nothing else), and identify
    # over that connection carries the mapped address among the node's listen addresses.
    p = wan_ping(h, net, f"{mapped}/p2p/{peer_id}")
    check(p.returncode == 0, f"ping via the mapped address exited {p.returncode}: {p.stderr()[-600:]!r}")
    check(len(re.findall(rf"ping peer={peer_id} seq=\d+ rtt_ms=", p.stdout())) == 2, f"ping output {p.stdout()!r}")
    ids = [r for r in identify_received(p.stderr()) if r.get("peer") == peer_id]
    check(ids and mapped in ids[-1].get("listen_addrs", []), f"identify from {peer_id} lacks {mapped}: {ids}")
    wait_for(node, rf"connection opened peer=\S+ endpoint=listener remote_addr=/ip4/{re.escape(WAN_PEER)}/",
             timeout=T, stream="stderr")


def check_removed_on_stop(net: Net, node, protocol: str) -> None:
    took = stop_node(node)
    check(took < 6, f"{node.name} took {took:.1f}s to stop")
    err = node.stderr()
    check(re.search(rf"port mapping removed protocol={protocol} external={re.escape(GW_WAN)}:{PORT} "
                    rf"internal_port={PORT}", err), f"no removal logged:\n{err[-1500:]}")
    # Removed before the node said it stopped, i.e. before its loop ended.
    check(err.find("port mapping removed") < err.find("stopped"), "removal logged after the loop ended")
    rules = net.dnat_rules()
    check(f"dport {PORT}" not in rules, f"the gateway still forwards {PORT} after the node stopped:\n{rules}")


# --------------------------------------------------------------------------


def test_natpmp(h):
    """miniupnpd with only NAT-PMP: mapped by natpmp, reachable from the WAN, removed on stop."""
    with network(h) as net:
        start_gateway(h, net, upnp=False, natpmp=True)
        node, peer_id = start_lan_node(h, net, "lanA", "A")
        check_mapped_and_reachable(h, net, node, peer_id, "natpmp")
        check_removed_on_stop(net, node, "natpmp")


def test_upnp(h):
    """miniupnpd with only UPnP-IGD: NAT-PMP is refused at once, UPnP maps; a WAN peer the node
    is already connected to learns the mapped address by identify (push); removed on stop."""
    with network(h) as net:
        start_gateway(h, net, upnp=True, natpmp=False)
        w_key, w_id = make_identity(h, "W.key")
        w = h.spawn("W", in_ns(net["wan"], h.punchgate, "--identity", w_key, "--listen",
                               f"/ip4/{WAN_PEER}/udp/4002/quic-v1"))
        wait_for(w, r"listening on /ip4/", timeout=T, stream="stderr")
        node, peer_id = start_lan_node(h, net, "lanA", "A", "--bootstrap",
                                       f"/ip4/{WAN_PEER}/udp/4002/quic-v1/p2p/{w_id}")
        check_mapped_and_reachable(h, net, node, peer_id, "upnp")
        mapped = f"/ip4/{GW_WAN}/udp/{PORT}/quic-v1"
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            ids = [r for r in identify_received(w.stderr()) if r.get("peer") == peer_id]
            if any(mapped in r.get("listen_addrs", []) for r in ids):
                break
            time.sleep(0.2)
        check(any(mapped in r.get("listen_addrs", []) for r in ids), f"W never learned {mapped} by identify: {ids}")
        check_removed_on_stop(net, node, "upnp")


def test_natpmp_first_when_both_offered(h):
    """With both enabled the node takes NAT-PMP (one UDP exchange, no 2 s SSDP search)."""
    with network(h) as net:
        start_gateway(h, net, upnp=True, natpmp=True)
        node, _ = start_lan_node(h, net, "lanA", "A")
        wait_for(node, added_rx("natpmp"), timeout=T, stream="stderr")
        check("protocol=upnp" not in node.stderr(), "UPnP was used although NAT-PMP answered")
        check_removed_on_stop(net, node, "natpmp")


def test_upnp_taken_port_gets_another(h):
    """Two LAN nodes on the same internal port: the second one's external port is taken, so it
    gets another one from the gateway, advertises that, and is reachable there."""
    with network(h) as net:
        start_gateway(h, net, upnp=True, natpmp=False)
        a, _ = start_lan_node(h, net, "lanA", "A")
        wait_for(a, added_rx("upnp"), timeout=T, stream="stderr")
        b, b_id = start_lan_node(h, net, "lanB", "B")
        m = wait_for(b, added_rx("upnp", external_port=r"\d+"), timeout=T, stream="stderr")
        ext = int(m.group(1))
        check(ext != PORT, f"B got external port {ext}, A holds it")
        rules = net.dnat_rules()
        check(re.search(rf"dport {ext} dnat ip to {re.escape(LAN_IP['lanB'])}:{PORT}", rules),
              f"no DNAT {ext} -> B:{PORT} in the gateway:\n{rules}")
        mapped = f"/ip4/{GW_WAN}/udp/{ext}/quic-v1"
        check(status(h, "B")["port_mapping"]["mappings"][0]["external_addr"] == mapped, "B's status")
        p = wan_ping(h, net, f"{mapped}/p2p/{b_id}")
        check(p.returncode == 0, f"ping B via {mapped} exited {p.returncode}: {p.stderr()[-600:]!r}")
        stop_node(b)
        check(re.search(rf"port mapping removed protocol=upnp external={re.escape(GW_WAN)}:{ext} ", b.stderr()),
              "B's removal not logged")
        rules = net.dnat_rules()
        check(f"dport {ext}" not in rules and f"dport {PORT}" in rules, f"after B stopped:\n{rules}")
        check_removed_on_stop(net, a, "upnp")


def _renewal(h, protocol: str) -> None:
    """A 10 s lease (--port-mapping-lease) is renewed at half of it, so the rule outlives several
    leases and the node stays reachable."""
    with network(h) as net:
        gw = start_gateway(h, net, upnp=protocol == "upnp", natpmp=protocol == "natpmp")
        node, peer_id = start_lan_node(h, net, "lanA", "A", "--port-mapping-lease", "10",
                                       env=dict(MAPPING_ON, PUNCHGATE_LOG="debug"))
        m = wait_for(node, added_rx(protocol), timeout=T, stream="stderr")
        check(m.group(2) == "10", f"lease {m.group(2)}, want 10")
        t0 = time.monotonic()
        renewed = (rf"port mapping renewed protocol={protocol} external=" + re.escape(GW_WAN) +
                   rf":{PORT} internal_port={PORT} lifetime_s=10")
        for n in (1, 2, 3):
            deadline = time.monotonic() + 15
            while len(re.findall(renewed, node.stderr())) < n:
                check(time.monotonic() < deadline, f"renewal {n} not logged:\n{node.stderr()[-1500:]}")
                check(node.alive(), "node died")
                time.sleep(0.2)
        took = time.monotonic() - t0
        check(12 <= took <= 25, f"three renewals of a 10 s lease took {took:.1f}s, want about 15")
        if protocol == "upnp":
            # Renewals go straight to the gateway found at first: one SSDP search in all.
            check(len(re.findall(r"SSDP M-SEARCH from", gw.stderr())) == 1 and
                  len(re.findall(r"SOAPAction: \S+#AddPortMapping", gw.stderr())) >= 4,
                  f"renewals should reuse the gateway found at first:\n{gw.stderr()[-2000:]}")
        else:
            check(len(re.findall(rf"NAT-PMP port mapping request : {PORT}->{re.escape(LAN_IP['lanA'])}:{PORT} udp "
                                 r"lifetime=10s", gw.stderr())) >= 4, f"gateway log:\n{gw.stderr()[-2000:]}")
        check("port mapping renew failed" not in node.stderr(), "a renewal failed")
        check(f"dport {PORT}" in net.dnat_rules(), "the rule is gone although renewed")
        p = wan_ping(h, net, f"/ip4/{GW_WAN}/udp/{PORT}/quic-v1/p2p/{peer_id}")
        check(p.returncode == 0, f"ping after renewals exited {p.returncode}: {p.stderr()[-600:]!r}")
        check_removed_on_stop(net, node, protocol)


def test_renewal_upnp(h):
    _renewal(h, "upnp")


def test_renewal_natpmp(h):
    _renewal(h, "natpmp")


def test_gateway_restart(h):
    """The UPnP gateway restarts (new HTTP port, rules gone): the renewal to the old address fails,
    is retried with a fresh discovery, and the mapping is back without the node restarting."""
    with network(h) as net:
        gw = start_gateway(h, net, upnp=True, natpmp=False)
        node, peer_id = start_lan_node(h, net, "lanA", "A", "--port-mapping-lease", "10",
                                       env=dict(MAPPING_ON, PUNCHGATE_LOG="debug"))
        wait_for(node, added_rx("upnp"), timeout=T, stream="stderr")
        gw.terminate(timeout=5)
        subprocess.run(in_ns(net["gw"], "nft", "flush", "chain", "inet", "filter", "prerouting_miniupnpd"),
                       capture_output=True, timeout=20)
        check("dport" not in net.dnat_rules(), "rules survived the gateway restart")
        gw = start_gateway(h, net, upnp=True, natpmp=False)
        wait_for(node, r"port mapping renew failed protocol=upnp external=" + re.escape(GW_WAN) +
                 rf":{PORT} internal_port={PORT} reason=\S.* retry_in_ms=\d+", timeout=T, stream="stderr")
        deadline = time.monotonic() + T
        while f"dport {PORT}" not in net.dnat_rules():
            check(time.monotonic() < deadline, f"the mapping never came back:\n{node.stderr()[-1500:]}")
            time.sleep(0.2)
        check("port mapping lost" not in node.stderr(), "lost although renewed within the lease")
        check("SSDP M-SEARCH from" in gw.stderr(), "the restarted gateway was not searched for afresh")
        p = wan_ping(h, net, f"/ip4/{GW_WAN}/udp/{PORT}/quic-v1/p2p/{peer_id}")
        check(p.returncode == 0, f"ping after the gateway restart exited {p.returncode}: {p.stderr()[-600:]!r}")
        check_removed_on_stop(net, node, "upnp")


def test_no_gateway(h):
    """Nothing on the gateway answers (no miniupnpd): one `port mapping unavailable` line naming
    both protocols' failures, nothing advertised, and the node runs and stops as usual."""
    with network(h) as net:
        node, _ = start_lan_node(h, net, "lanA", "A")
        m = wait_for(node, r"port mapping unavailable internal_port=4001 reason=(\"[^\n]*\") retry_in_s=60",
                     timeout=T, stream="stderr")
        reason = m.group(1)
        check("natpmp: " in reason and "upnp: " in reason, f"reason {reason}")
        time.sleep(2)
        check(len(re.findall(r"port mapping unavailable", node.stderr())) == 1, "said more than once")
        pm = status(h, "A")["port_mapping"]["mappings"]
        check(len(pm) == 1 and pm[0]["state"] == "unavailable" and pm[0]["external_addr"] is None
              and "natpmp: " in pm[0].get("last_error", ""), f"status {pm}")
        took = stop_node(node)
        check(took < 3, f"stopping took {took:.1f}s with nothing to delete")
        check("port mapping removed" not in node.stderr(), "removed a mapping that never existed")


def test_loopback_only(h):
    """A node listening on loopback only has nothing a gateway could forward: it says so, asks
    the gateway nothing, and stops at once."""
    with network(h) as net:
        gw = start_gateway(h, net, upnp=True, natpmp=True)
        key, _ = make_identity(h, "A.key")
        node = h.spawn("A", in_ns(net["lanA"], h.punchgate, "--identity", key, "--listen",
                                  f"/ip4/127.0.0.1/udp/{PORT}/quic-v1", "--control-socket", h.path("A.sock")),
                       env=MAPPING_ON)
        wait_for(node, r"port mapping skipped reason=", timeout=T, stream="stderr")
        check(status(h, "A")["port_mapping"] == {"enabled": True, "mappings": []}, "status")
        took = stop_node(node)
        check(took < 1.5, f"stopping took {took:.1f}s with nothing mapped")
        check("NAT-PMP request received" not in gw.stderr() and "M-SEARCH" not in gw.stderr(),
              f"the gateway was asked:\n{gw.stderr()[-1000:]}")


def test_no_port_mapping(h):
    """--no-port-mapping: no request to the gateway, no rule, and the WAN cannot reach the node
    (the same ping as above fails: the negative control of the other tests)."""
    with network(h) as net:
        gw = start_gateway(h, net, upnp=True, natpmp=True)
        node, peer_id = start_lan_node(h, net, "lanA", "A", "--no-port-mapping")
        wait_for(node, r"listening on /ip4/192\.168\.77\.2/", timeout=T, stream="stderr")
        time.sleep(3)  # longer than a NAT-PMP exchange and an SSDP search
        check("port mapping" not in node.stderr(), f"port mapping ran although off:\n{node.stderr()[-800:]}")
        check(status(h, "A")["port_mapping"] == {"enabled": False, "mappings": []}, "status with mapping off")
        check("dport" not in net.dnat_rules(), "the gateway holds a mapping")
        p = wan_ping(h, net, f"/ip4/{GW_WAN}/udp/{PORT}/quic-v1/p2p/{peer_id}")
        check(p.returncode == 1 and re.search(r"dial failed addr=\S+ error=handshake timeout", p.stderr())
              and "Sanitizer" not in p.stderr(),
              f"the WAN ping without a mapping should fail by handshake timeout, exit 1: rc={p.returncode} "
              f"{p.stderr()[-600:]!r}")
        check(gw.alive(), "miniupnpd died")
        stop_node(node)


def _preflight(args) -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft", "sysctl"):
        if not shutil.which(tool):
            return f"needs `{tool}` (iproute2, nftables, procps; ./scripts/deps.sh installs them)"
    if not os.access(MINIUPNPD, os.X_OK):
        return f"needs {MINIUPNPD} (Debian package miniupnpd-nftables; ./scripts/deps.sh installs it)"
    if not args.punchgate:
        return "no --punchgate binary given"
    return None


if __name__ == "__main__":
    main([
        test_natpmp,
        test_upnp,
        test_natpmp_first_when_both_offered,
        test_upnp_taken_port_gets_another,
        test_renewal_upnp,
        test_renewal_natpmp,
        test_gateway_restart,
        test_no_gateway,
        test_loopback_only,
        test_no_port_mapping,
    ], description=__doc__, preflight=_preflight)
