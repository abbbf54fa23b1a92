#!/usr/bin/env python3
"""AutoNAT v1 end to end: real punchgate processes in a private network namespace.

The script re-executes itself under `unshare --net`; inside, loopback also carries
"public" addresses (203.0.113.0/24 and 198.51.100.0/24: documentation ranges, which the
AutoNAT server treats as public, routed nowhere outside this namespace), and nftables rules
stand in for a firewall. The namespace, its addresses and rules die with the last process in
it, so nothing outlives a failed run.

  S1 203.0.113.1, S2 203.0.113.2: no --bootstrap; they answer AutoNAT requests.
  C  203.0.113.3: --bootstrap S1 --bootstrap S2; asks both to dial it back.

A fourth test puts C behind a real NAT: a router namespace masquerading a LAN namespace (veth
pairs; the namespaces are held by processes the harness kills, so they vanish with them).

Covers: C reachable -> both dial-backs succeed from a fresh socket (a new connection, not the
one C asked on) and C logs `autonat reachability=public addr=…` and reports it in status;
C behind a rule dropping new inbound UDP flows to its port (its own outbound flows still work)
-> both dial-backs fail and C logs `reachability=private`; an address C lists on another IP
than the one the server sees it at is skipped and never receives a packet; C behind a NAT asks
about its observed (NAT) address, the servers skip its LAN addresses, their dial-backs die at the
NAT and C logs `reachability=private`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.dont_write_bytecode = True

from punchgate_harness import Harness, check, main, wait_for  # noqa: E402
from punchgate_helpers import LOCAL_PEER_ID_RX, T, count_matches, free_port, isolate_env, spawn_node  # noqa: E402

NETNS_MARK = "PUNCHGATE_AUTONAT_TEST_NETNS"
S1_IP, S2_IP, C_IP, D_IP = "203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"
C_OTHER_IP = "198.51.100.3"
TABLE = "pg_autonat_test"
# The first probe round starts 5 s after C starts; a blocked dial-back gives up after 10 s.
T_PUBLIC = 30
T_PRIVATE = 60


def enter_namespace() -> None:
    """Re-run this script in a new network namespace (once), with lo and the test addresses up."""
    if os.environ.get(NETNS_MARK) == "1":
        # On lo: dummy interfaces need a kernel module that containers often lack.
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        for ip in (S1_IP, S2_IP, C_IP, D_IP, C_OTHER_IP):
            cmd = ["ip", "addr", "add", f"{ip}/32", "dev", "lo"]
            subprocess.run(cmd, check=True)
        return
    unshare = shutil.which("unshare")
    if not unshare or not shutil.which("nft") or not shutil.which("ip"):
        print("SETUP ERROR: test_autonat needs unshare (util-linux), nft (nftables) and ip (iproute2); "
              "./scripts/deps.sh installs them", flush=True)
        sys.exit(1)
    probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"FAIL: test_autonat needs a private network namespace, and `unshare --net` is not permitted here "
              f"({probe.stderr.strip() or 'exit ' + str(probe.returncode)}); run as root or with CAP_SYS_ADMIN",
              flush=True)
        sys.exit(1)
    env = dict(os.environ, **{NETNS_MARK: "1"})
    r = subprocess.run([unshare, "--net", "--", sys.executable, "-B", *sys.argv], env=env)
    sys.exit(r.returncode)


def nft(rules: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)


def drop_table() -> None:
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


def counter(name: str) -> int:
    """Packets counted by the named counter of our table."""
    out = subprocess.run(["nft", "-j", "list", "counter", "inet", TABLE, name], capture_output=True, text=True,
                         check=True).stdout
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"no counter {name} in {out!r}")


def quic(ip: str, port: int) -> str:
    return f"/ip4/{ip}/udp/{port}/quic-v1"


class Net:
    """S1 and S2 on fixed ports; C started by the test (it may need rules in place first)."""

    def __init__(self, h: Harness, start_servers: bool = True):
        self.h = h
        self.p1, self.p2 = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        self.cp, self.cp2 = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        if start_servers:
            self.start_servers()

    def start_servers(self, *extra) -> None:
        self.s1, self.s1_id = self.server("S1", S1_IP, self.p1, *extra)
        self.s2, self.s2_id = self.server("S2", S2_IP, self.p2, *extra)
        self.servers = [(self.s1, self.s1_id), (self.s2, self.s2_id)]

    def server(self, name: str, ip: str, port: int, *extra):
        p = spawn_node(self.h, name, "--control-socket", self.h.path(f"{name}.sock"), *extra, listen=quic(ip, port))
        wait_for(p, r"listening on " + re.escape(quic(ip, port)), timeout=T, stream="stderr")
        return p, wait_for(p, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)

    def start_client(self, *extra, relay_off: bool = True):
        relay = ["--relay-mode", "off"] if relay_off else []
        self.c = spawn_node(self.h, "C", *relay, "--control-socket", self.h.path("C.sock"), *extra,
                            listen=quic(C_IP, self.cp),
                            bootstrap=[f"{quic(S1_IP, self.p1)}/p2p/{self.s1_id}",
                                       f"{quic(S2_IP, self.p2)}/p2p/{self.s2_id}"])
        self.c_id = wait_for(self.c, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
        return self.c

    def status(self, name: str) -> dict:
        p = self.h.run_punchgate("--control-socket", self.h.path(f"{name}.sock"), "status", "--json",
                                 name=f"status-{name}")
        check(p.returncode == 0, f"status of {name} exited {p.returncode}: {p.stderr().strip()!r}")
        return json.loads(p.stdout())


def run(*argv: str) -> None:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    check(r.returncode == 0, f"`{' '.join(argv)}` exited {r.returncode}: {r.stderr.strip()}")


def in_ns(pid: int, *argv: str) -> None:
    run("nsenter", f"--net=/proc/{pid}/ns/net", "--", *argv)


def namespace_holder(h: Harness, name: str) -> int:
    """A process in a network namespace of its own (lo up); the namespace lives as long as it or
    anything entered into it does."""
    p = h.spawn(name, ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo ready && exec sleep 600"])
    wait_for(p, r"^ready$", timeout=T, stream="stdout")
    return p.pid


def first_reachability(proc, timeout: float) -> tuple[str, str]:
    m = wait_for(proc, r"autonat reachability=(\w+) addr=(\S+)", timeout=timeout, stream="stderr")
    return m.group(1), m.group(2)


# --------------------------------------------------------------------------


def test_reachable_client_is_public(h):
    """Both servers dial C back over new connections and answer OK; C turns public with its address."""
    drop_table()
    net = Net(h)
    # New flows to C's port from anything but the servers' listening ports: the dial-backs must
    # be fresh dials (a new socket, so a new flow through a NAT), not the connection C asked on.
    nft(f"""
table inet {TABLE} {{
  counter fresh {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {C_IP} udp dport {net.cp} udp sport != {{ {net.p1}, {net.p2} }} ct state new counter name fresh
  }}
}}
""")
    try:
        c = net.start_client(relay_off=False)
        c_addr = quic(C_IP, net.cp)
        # With --bootstrap and no AutoNAT answer yet, C takes itself for private: it reserves on
        # the servers (they serve /hop: no --bootstrap) and does not serve.
        for _, sid in net.servers:
            wait_for(c, r"relay reservation accepted relay=" + sid + " ", timeout=T, stream="stderr")
        state, addr = first_reachability(c, T_PUBLIC)
        check(state == "public", f"C's first reachability is {state}, want public")
        check(addr == c_addr, f"C's public address is {addr}, want {c_addr}")
        for s, sid in net.servers:
            wait_for(s, r"autonat dial-back finished peer=" + net.c_id + r" status=OK addr=" + re.escape(c_addr) + " ",
                     timeout=T, stream="stderr")
            wait_for(c, r"autonat probe result server=" + sid + r" status=OK addr=" + re.escape(c_addr) +
                     r" says=public", timeout=T, stream="stderr")
        check(counter("fresh") >= 2, f"{counter('fresh')} new flows from fresh sockets reached C, want one per server")
        st = net.status("C")
        check(st["nat_reachability"] == "public", f"status nat_reachability={st['nat_reachability']!r}")
        check(st["autonat"]["public_addr"] == c_addr, f"status autonat={st['autonat']!r}")
        check(st["autonat"]["serving"] is True, f"status autonat={st['autonat']!r}")
        # C keeps its own connections to both servers: the dial-backs replaced nothing.
        for _, sid in net.servers:
            conns = [p for p in st["peers"] if p["peer_id"] == sid]
            check(any(p["direction"] == "outbound" for p in conns), f"C lost its own connection to {sid}: {conns}")
        s1 = net.status("S1")
        check(s1["autonat"]["serving"] is True, f"S1 status autonat={s1['autonat']!r}")

        # Public on its own address: C serves /hop and lets its reservations go.
        wait_for(c, r"relay roles changed serve=true reserve=false reachability=public public_addr_is_own=true",
                 timeout=T, stream="stderr")
        wait_for(c, r"relay reservations released count=2", timeout=T, stream="stderr")
        relay = net.status("C")["relay"]
        check(relay["serving"] is True and relay["reserving"] is False and relay["reservations_held"] == [],
              f"C's relay status after turning public: {relay}")
        # ... and really serves: D reserves on C alone.
        d = spawn_node(h, "D", "--relay-mode", f"{c_addr}/p2p/{net.c_id}", listen=quic(D_IP, free_port(socket.SOCK_DGRAM)),
                       bootstrap=[f"{c_addr}/p2p/{net.c_id}"])
        wait_for(d, r"relay reservation accepted relay=" + net.c_id + " ", timeout=T, stream="stderr")
        wait_for(c, r"relay reservation granted peer=", timeout=T, stream="stderr")
        check(net.status("C")["relay"]["reservations_served"] == 1, "C does not count D's reservation")
    finally:
        drop_table()


def test_private_node_without_bootstrap_stops_serving_and_reserves(h):
    """C starts without --bootstrap (taken for public: it serves /hop, reserves nowhere); the
    servers bootstrap to C, whose firewall drops new inbound flows except from their listening
    ports, so their fresh-socket dial-backs fail: C turns private, stops serving and reserves on
    the servers."""
    drop_table()
    net = Net(h, start_servers=False)
    nft(f"""
table inet {TABLE} {{
  counter blocked {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {C_IP} udp dport {net.cp} udp sport != {{ {net.p1}, {net.p2} }} ct state new counter name blocked drop
  }}
}}
""")
    try:
        c_addr = quic(C_IP, net.cp)
        c = spawn_node(h, "C", "--control-socket", h.path("C.sock"), listen=c_addr)
        c_id = wait_for(c, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
        relay = net.status("C")["relay"]
        check(relay["serving"] is True and relay["reserving"] is False, f"C's relay status at start: {relay}")
        net.start_servers("--bootstrap", f"{c_addr}/p2p/{c_id}")
        state, addr = first_reachability(c, T_PRIVATE)
        check((state, addr) == ("private", "none"), f"C: reachability={state} addr={addr}, want private")
        wait_for(c, r"relay roles changed serve=false reserve=true reachability=private", timeout=T, stream="stderr")
        for _, sid in net.servers:
            wait_for(c, r"relay reservation accepted relay=" + sid + " ", timeout=T, stream="stderr")
        check(counter("blocked") > 0, "the rule never dropped a dial-back packet")
        relay = net.status("C")["relay"]
        check(relay["serving"] is False and relay["reserving"] is True and len(relay["reservations_held"]) == 2,
              f"C's relay status after turning private: {relay}")
        # C no longer serves /hop: D, set to reserve on C alone, is refused. (D listens on S1's port
        # number, the only kind of new flow C's firewall lets in.)
        d = spawn_node(h, "D", "--relay-mode", f"{c_addr}/p2p/{c_id}", listen=quic(D_IP, net.p1),
                       bootstrap=[f"{c_addr}/p2p/{c_id}"])
        wait_for(d, r"relay reservation failed relay=" + c_id + " ", timeout=T, stream="stderr")
        check(count_matches(d, r"relay reservation accepted") == 0, "D got a reservation on C")
    finally:
        drop_table()


def test_firewalled_client_is_private(h):
    """New inbound flows to C's port are dropped (C's own outbound flows pass): both dial-backs
    fail and C turns private, while it stays connected to both servers."""
    drop_table()
    net = Net(h)
    nft(f"""
table inet {TABLE} {{
  counter blocked {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {C_IP} udp dport {net.cp} ct state new counter name blocked drop
  }}
}}
""")
    try:
        c = net.start_client()
        state, addr = first_reachability(c, T_PRIVATE)
        check(state == "private", f"C's first reachability is {state}, want private")
        check(addr == "none", f"private C names an address: {addr}")
        for s, sid in net.servers:
            wait_for(s, r"autonat dial-back finished peer=" + net.c_id + r" status=E_DIAL_ERROR ", timeout=T,
                     stream="stderr")
            wait_for(c, r"autonat probe result server=" + sid + r" status=E_DIAL_ERROR addr=none says=private",
                     timeout=T, stream="stderr")
        check(counter("blocked") > 0, "the rule never dropped a dial-back packet")
        st = net.status("C")
        check(st["nat_reachability"] == "private", f"status nat_reachability={st['nat_reachability']!r}")
        check(st["autonat"]["public_addr"] is None, f"status autonat={st['autonat']!r}")
        check({p["peer_id"] for p in st["peers"]} >= {net.s1_id, net.s2_id},
              f"C lost a server: peers={[p['peer_id'] for p in st['peers']]}")
    finally:
        drop_table()


def test_address_on_another_ip_is_not_dialed(h):
    """C listens on two IPs and asks from the first: the servers dial back only the address on
    the IP they see, skip the other with a reason, and never send it a packet."""
    drop_table()
    net = Net(h)
    nft(f"""
table inet {TABLE} {{
  counter other_ip {{ }}
  counter seen_ip {{ }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {C_OTHER_IP} udp dport {net.cp2} counter name other_ip
    ip daddr {C_IP} udp dport {net.cp} ct state new counter name seen_ip
  }}
}}
""")
    try:
        other = quic(C_OTHER_IP, net.cp2)
        c = net.start_client("--listen", other)
        c_addr = quic(C_IP, net.cp)
        wait_for(c, r"listening on " + re.escape(other), timeout=T, stream="stderr")
        state, addr = first_reachability(c, T_PUBLIC)
        check((state, addr) == ("public", c_addr), f"C: reachability={state} addr={addr}, want public {c_addr}")
        for s, _ in net.servers:
            m = wait_for(s, r"autonat dial-back starting peer=" + net.c_id + r" addrs=\[([^\]]*)\] skipped=(\"[^\"]*\")",
                         timeout=T, stream="stderr")
            check(m.group(1) == c_addr, f"{s.name} dialed [{m.group(1)}], want only {c_addr}")
            check(f"{other} (IP differs from the observed {C_IP})" in m.group(2),
                  f"{s.name} did not skip {other} for its IP: skipped={m.group(2)}")
            wait_for(s, r"autonat dial-back finished peer=" + net.c_id + r" status=OK addr=" + re.escape(c_addr),
                     timeout=T, stream="stderr")
        check(counter("seen_ip") >= 2, f"only {counter('seen_ip')} new flows reached {c_addr}, want one per server")
        check(counter("other_ip") == 0, f"{counter('other_ip')} packets reached {other}, which nobody may dial")
        check(count_matches(c, r"autonat reachability=") == 1, "C's reachability changed more than once")
    finally:
        drop_table()


NAT_WAN_IP, LAN_GW_IP, LAN_C_IP = "203.0.113.10", "192.168.7.1", "192.168.7.2"


def test_client_behind_nat_is_private(h):
    """C in a LAN behind a masquerading router: the servers see C at the router's address, dial
    that back (C's LAN addresses are on another IP: skipped), the NAT drops the new flows, and C
    turns private; its own connections through the NAT work throughout."""
    net = Net(h)
    router = namespace_holder(h, "router-ns")
    lan = namespace_holder(h, "lan-ns")
    run("ip", "link", "add", "pgan-wan", "type", "veth", "peer", "name", "pgan-rwan")
    run("ip", "link", "set", "pgan-rwan", "netns", str(router))
    run("ip", "addr", "add", "203.0.113.254/24", "dev", "pgan-wan")
    run("ip", "link", "set", "pgan-wan", "up")
    in_ns(router, "ip", "addr", "add", f"{NAT_WAN_IP}/24", "dev", "pgan-rwan")
    in_ns(router, "ip", "link", "set", "pgan-rwan", "up")
    in_ns(router, "ip", "link", "add", "pgan-rlan", "type", "veth", "peer", "name", "pgan-c")
    in_ns(router, "ip", "link", "set", "pgan-c", "netns", str(lan))
    in_ns(router, "ip", "addr", "add", f"{LAN_GW_IP}/24", "dev", "pgan-rlan")
    in_ns(router, "ip", "link", "set", "pgan-rlan", "up")
    in_ns(router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
    in_ns(router, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; "
                         "add rule ip nat post oifname pgan-rwan masquerade")
    in_ns(lan, "ip", "addr", "add", f"{LAN_C_IP}/24", "dev", "pgan-c")
    in_ns(lan, "ip", "link", "set", "pgan-c", "up")
    in_ns(lan, "ip", "route", "add", "default", "via", LAN_GW_IP)

    c = h.spawn("C", ["nsenter", f"--net=/proc/{lan}/ns/net", "--", h.punchgate,
                      "--identity", h.path("C.key"), "--listen", f"/ip4/0.0.0.0/udp/{net.cp}/quic-v1",
                      "--bootstrap", f"{quic(S1_IP, net.p1)}/p2p/{net.s1_id}",
                      "--bootstrap", f"{quic(S2_IP, net.p2)}/p2p/{net.s2_id}",
                      "--relay-mode", "off", "--control-socket", h.path("C.sock")])
    c_id = wait_for(c, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
    lan_addr = quic(LAN_C_IP, net.cp)
    wait_for(c, r"listening on " + re.escape(lan_addr), timeout=T, stream="stderr")
    # Both servers see C at the router's address (masquerade keeps the port when it can).
    for _, sid in net.servers:
        m = wait_for(c, r"identify received peer=" + sid + r" .*? observed_addr=(\S+)", timeout=T, stream="stderr")
        check(m.group(1).startswith(f"/ip4/{NAT_WAN_IP}/udp/"), f"{sid} observed C at {m.group(1)}, not behind the NAT")
    state, addr = first_reachability(c, T_PRIVATE)
    check((state, addr) == ("private", "none"), f"C behind the NAT: reachability={state} addr={addr}, want private")
    for s, sid in net.servers:
        m = wait_for(s, r"autonat dial-back starting peer=" + c_id + r" addrs=\[([^\]]*)\] skipped=(\"[^\"]*\")",
                     timeout=T, stream="stderr")
        check(m.group(1).startswith(f"/ip4/{NAT_WAN_IP}/udp/"), f"{s.name} dialed back [{m.group(1)}], want the NAT's address")
        check(f"{lan_addr} (IP differs from the observed {NAT_WAN_IP})" in m.group(2),
              f"{s.name} did not skip C's LAN address: skipped={m.group(2)}")
        wait_for(s, r"autonat dial-back finished peer=" + c_id + r" status=E_DIAL_ERROR ", timeout=T, stream="stderr")
        wait_for(c, r"autonat probe result server=" + sid + r" status=E_DIAL_ERROR addr=none says=private",
                 timeout=T, stream="stderr")
    st = net.status("C")
    check(st["nat_reachability"] == "private", f"status nat_reachability={st['nat_reachability']!r}")
    check({p["peer_id"] for p in st["peers"]} >= {net.s1_id, net.s2_id},
          f"C lost a server: peers={[p['peer_id'] for p in st['peers']]}")


if __name__ == "__main__":
    enter_namespace()
    isolate_env()
    main([
        test_reachable_client_is_public,
        test_firewalled_client_is_private,
        test_private_node_without_bootstrap_stops_serving_and_reserves,
        test_address_on_another_ip_is_not_dialed,
        test_client_behind_nat_is_private,
    ], description=__doc__)
