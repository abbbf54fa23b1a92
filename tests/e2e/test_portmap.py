#!/usr/bin/env python3
"""Gateway port mapping end to end: a real miniupnpd (nftables backend) on a NAT gateway in
network namespaces made here, punchgate on the LAN behind it, a public punchgate on the WAN.

  pub (WAN 11.22.33.1) --- gw (WAN 11.22.33.11, masquerade; miniupnpd on LAN 10.1.0.1) --- lan (10.1.0.2)

For NAT-PMP only, UPnP-IGD only, and --no-port-mapping: the LAN node logs the mapping, its
dnat rule appears in miniupnpd's chain, the public node learns the mapped address by identify,
a fresh dial from the WAN to that address reaches the LAN node (only possible through the
mapping: the negative case checks it fails without), and the mapping is gone after SIGTERM.

miniupnpd refuses WAN addresses in reserved ranges (RFC 5737 documentation addresses included),
so the WAN here uses 11.22.33.0/24; nothing leaves these namespaces.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.dont_write_bytecode = True

from punchgate_harness import Harness, check, main, wait_for  # noqa: E402
from punchgate_helpers import T, isolate_env, make_identity  # noqa: E402

WAN_GW, WAN_PUB, LAN_HOST = "11.22.33.11", "11.22.33.1", "10.1.0.2"
PORT = 4001
PREFIX = f"pgpm{os.getpid() % 100000}"


def sh(*argv: str, input: str | None = None) -> str:
    r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()}")
    return r.stdout


class Bed:
    """The three namespaces; removed (with every process in them) on exit."""

    def __init__(self, h: Harness, natpmp: bool, upnp: bool):
        self.h = h
        self.gw, self.lan, self.pub = f"{PREFIX}g", f"{PREFIX}l", f"{PREFIX}p"
        self.natpmp, self.upnp = natpmp, upnp

    def __enter__(self) -> "Bed":
        try:
            self.build()
        except Exception:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self.teardown()
        return False

    def link(self, ns1: str, name1: str, ns2: str, name2: str) -> None:
        tmp1, tmp2 = f"{PREFIX}a", f"{PREFIX}b"
        sh("ip", "link", "add", tmp1, "type", "veth", "peer", "name", tmp2)
        sh("ip", "link", "set", tmp1, "netns", ns1)
        sh("ip", "link", "set", tmp2, "netns", ns2)
        sh("ip", "-n", ns1, "link", "set", tmp1, "name", name1)
        sh("ip", "-n", ns2, "link", "set", tmp2, "name", name2)
        sh("ip", "-n", ns1, "link", "set", name1, "up")
        sh("ip", "-n", ns2, "link", "set", name2, "up")

    def build(self) -> None:
        for ns in (self.gw, self.lan, self.pub):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.link(self.gw, "wan", self.pub, "eth0")
        self.link(self.gw, "lan", self.lan, "eth0")
        sh("ip", "-n", self.gw, "addr", "add", f"{WAN_GW}/24", "dev", "wan")
        sh("ip", "-n", self.pub, "addr", "add", f"{WAN_PUB}/24", "dev", "eth0")
        sh("ip", "-n", self.gw, "addr", "add", "10.1.0.1/24", "dev", "lan")
        sh("ip", "-n", self.lan, "addr", "add", f"{LAN_HOST}/24", "dev", "eth0")
        sh("ip", "-n", self.lan, "route", "add", "default", "via", "10.1.0.1")
        sh("ip", "netns", "exec", self.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The chains miniupnpd fills (its own nft_init.sh needs a helper Debian does not ship).
        sh("ip", "netns", "exec", self.gw, "nft", "-f", "-", input="""
table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
                      oifname "wan" masquerade persistent; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
""")
        conf = self.h.path("miniupnpd.conf")
        Path(conf).write_text(f"""ext_ifname=wan
listening_ip=lan
http_port=0
enable_natpmp={'yes' if self.natpmp else 'no'}
enable_upnp={'yes' if self.upnp else 'no'}
secure_mode=yes
system_uptime=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
lease_file={self.h.path('miniupnpd.leases')}
allow 1024-65535 10.1.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
""")
        self.miniupnpd = self.h.spawn("miniupnpd", ["ip", "netns", "exec", self.gw, shutil.which("miniupnpd"),
                                                    "-f", conf, "-P", self.h.path("miniupnpd.pid"), "-d"])
        wait_for(self.miniupnpd, r"(HTTP listening|Listening for NAT-PMP)", timeout=T, stream="both")

    def rules(self) -> str:
        return sh("ip", "netns", "exec", self.gw, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")

    def teardown(self) -> None:
        for ns in (self.gw, self.lan, self.pub):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def node(h: Harness, ns: str, name: str, *args: str):
    # The harness turns port mapping off for every node; here it is what is under test.
    return h.spawn(name, ["ip", "netns", "exec", ns, h.punchgate, "--identity", h.path(f"{name}.key"),
                          "--control-socket", h.path(f"{name}.sock"), *args], env={"PUNCHGATE_PORT_MAPPING": "true"})


def run_case(h: Harness, natpmp: bool, upnp: bool, mapping: bool) -> None:
    isolate_env()
    _, pub_id = make_identity(h, "pub.key")
    _, lan_id = make_identity(h, "lan.key")
    with Bed(h, natpmp, upnp) as bed:
        pub = node(h, bed.pub, "pub", "--listen", f"/ip4/{WAN_PUB}/udp/{PORT}/quic-v1")
        wait_for(pub, r"listening on", timeout=T, stream="stderr")
        extra = [] if mapping else ["--no-port-mapping"]
        lan = node(h, bed.lan, "lan", "--listen", f"/ip4/0.0.0.0/udp/{PORT}/quic-v1",
                   "--bootstrap", f"/ip4/{WAN_PUB}/udp/{PORT}/quic-v1/p2p/{pub_id}", *extra)
        mapped = f"/ip4/{WAN_GW}/udp/{PORT}/quic-v1"
        want = "natpmp" if natpmp else "upnp"
        if mapping:
            wait_for(lan, rf"port mapping added protocol={want} external={re.escape(WAN_GW)}:{PORT} "
                          rf"internal_port={PORT} lifetime_s=\d+", timeout=T, stream="stderr")
            check(f"dnat ip to {LAN_HOST}:{PORT}" in bed.rules(), f"no dnat rule in miniupnpd's chain:\n{bed.rules()}")
            # The public node hears of the mapped address by identify (first answer or a push).
            wait_for(pub, rf"identify received peer={lan_id} .*listen_addrs=\[[^\]]*{re.escape(mapped)}",
                     timeout=T, stream="stderr")
        else:
            wait_for(lan, r"identify received peer=", timeout=T, stream="stderr")
            check("port mapping" not in lan.stderr(), f"--no-port-mapping still mapped:\n{lan.tail()}")
            check("dnat" not in bed.rules(), f"--no-port-mapping left a rule:\n{bed.rules()}")
        # A fresh dial from the WAN (a new source port, so no conntrack entry helps it).
        ping = h.spawn("wan-ping", ["ip", "netns", "exec", bed.pub, h.punchgate, "--identity", h.path("pinger.key"),
                                    "--control-socket", "off", "ping", f"{mapped}/p2p/{lan_id}", "-c", "1"])
        code = ping.wait_exit(40)
        if mapping:
            check(code == 0, f"the WAN could not reach the mapped address {mapped}:\n{ping.tail()}")
        else:
            check(code != 0, f"the LAN node was reachable from the WAN without a mapping:\n{ping.tail()}")
        lan.send_signal(signal.SIGTERM)
        lan.wait_exit(20)
        if mapping:
            check(re.search(rf"port mapping removed protocol={want} external={re.escape(WAN_GW)}:{PORT}", lan.stderr()),
                  f"no removal logged:\n{lan.tail()}")
            check("dnat" not in bed.rules(), f"the mapping outlived the node:\n{bed.rules()}")


def test_natpmp_mapping(h):
    run_case(h, natpmp=True, upnp=False, mapping=True)


def test_upnp_mapping(h):
    run_case(h, natpmp=False, upnp=True, mapping=True)


def test_no_port_mapping(h):
    run_case(h, natpmp=True, upnp=True, mapping=False)


def preflight() -> None:
    missing = [t for t in ("ip", "nft", "miniupnpd") if not shutil.which(t)]
    if missing or os.geteuid() != 0:
        print(f"SETUP ERROR: test_portmap needs root and {', '.join(missing) or 'nothing else'} "
              "(./scripts/deps.sh installs miniupnpd-nftables, nftables, iproute2)", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    if "--punchgate" in sys.argv:
        preflight()
    main([test_natpmp_mapping, test_upnp_mapping, test_no_port_mapping])
