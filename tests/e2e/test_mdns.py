#!/usr/bin/env python3
"""End-to-end tests of mDNS peer discovery, inside private network namespaces.

    python3 tests/e2e/test_mdns.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

mDNS multicasts on 224.0.0.251:5353, so these tests never run it on the host's
interfaces: each test creates its own network namespace (pgmdns-<pid>-<n>), brings
`lo` up, turns multicast on for it and routes 224.0.0.0/4 there, and runs every
process that touches the network (punchgate nodes, the echo service, the TCP
client, a raw mDNS querier) via `ip netns exec`. The namespace is deleted in a
finally block whatever happens. Needs root (CAP_SYS_ADMIN) and iproute2; without
them every test fails with a setup error rather than being skipped.

Covers: two nodes with no --bootstrap find each other (`mdns discovered` on both
sides) and a TCP tunnel from B to a service exposed by A works over the
connection that discovery made; a hand-written mDNS query gets a well-formed
response carrying the node's dnsaddr TXT record; with mDNS off, nodes in the same
namespace stay silent and undiscovered.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import TestFailure, check, main, wait_for  # noqa: E402
from punchgate_helpers import LOCAL_PEER_ID_RX, echo_server_argv, make_identity  # noqa: E402

LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"
LISTEN_ANY = "/ip4/0.0.0.0/udp/0/quic-v1"
LISTEN_RX = r"listening on (/ip4/127\.0\.0\.1/udp/(\d+)/quic-v1)\b"
T = 30  # generous, only to avoid hangs

# The tests control the environment of every punchgate they start.
for _k in ("PUNCHGATE_IDENTITY", "PUNCHGATE_LISTEN", "PUNCHGATE_BOOTSTRAP", "PUNCHGATE_EXPOSE",
           "PUNCHGATE_TUNNEL", "PUNCHGATE_TUNNEL_BY_NAME", "PUNCHGATE_ALLOW", "PUNCHGATE_MDNS",
           "PUNCHGATE_LOG", "RUST_LOG"):
    os.environ.pop(_k, None)
os.environ["PUNCHGATE_LOG"] = "info"

MDNS_ON = {"PUNCHGATE_MDNS": "true"}
MDNS_OFF = {"PUNCHGATE_MDNS": "false"}

# --------------------------------------------------------------------------
# helper programs, run inside the namespace with this interpreter


# Connects to 127.0.0.1:PORT, sends SIZE pseudo-random bytes (seeded), half-closes, reads to
# EOF; prints "sent <sha256> <n>" and "got <sha256> <n>".
TCP_CLIENT = r"""
import hashlib, random, socket, sys
port, size, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
payload = random.Random(seed).randbytes(size)
print("sent", hashlib.sha256(payload).hexdigest(), len(payload), flush=True)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
print("got", hashlib.sha256(got).hexdigest(), len(got), flush=True)
"""

# Sends one mDNS PTR query for _p2p._udp.local (id 0x1234, from an ephemeral port, like a
# one-shot resolver) to 224.0.0.251:5353 on lo, listens on 5353 for DURATION seconds and
# prints every response datagram as hex, one per line.
MDNS_QUERIER = r"""
import socket, struct, sys, time
duration = float(sys.argv[1])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
rx.bind(("0.0.0.0", 5353))
rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
              socket.inet_aton("224.0.0.251") + socket.inet_aton("127.0.0.1"))
rx.settimeout(0.2)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
name = b"".join(bytes([len(l)]) + l for l in b"_p2p._udp.local".split(b".")) + b"\0"
query = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 12, 1)
tx.sendto(query, ("224.0.0.251", 5353))
print("query", query.hex(), flush=True)
end = time.monotonic() + duration
while time.monotonic() < end:
    try:
        d, src = rx.recvfrom(9000)
    except socket.timeout:
        continue
    if len(d) >= 4 and d[2] & 0x80:
        print("response", d.hex(), flush=True)
print("done", flush=True)
"""

# --------------------------------------------------------------------------
# namespace

_ns_counter = itertools.count()


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise TestFailure(f"`ip {' '.join(args)}` exited {r.returncode}: {r.stderr.strip()}")


@contextmanager
def netns(h):
    """A fresh network namespace whose loopback carries multicast. On exit every process the
    test started is stopped first (a process keeps a namespace alive), then it is deleted."""
    name = f"pgmdns-{os.getpid()}-{next(_ns_counter)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "lo", "multicast", "on")
        _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        for p in h.procs:
            p.terminate(timeout=3.0)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def in_ns(ns: str, *argv) -> list[str]:
    return ["ip", "netns", "exec", ns, *map(str, argv)]


def start_node(h, ns: str, name: str, key: str, *args, env: dict = MDNS_ON):
    pg = h.spawn(name, in_ns(ns, h.punchgate, "--identity", key, *args), env=env)
    peer_id = wait_for(pg, LOCAL_PEER_ID_RX, timeout=T, stream="stderr").group(1)
    return pg, peer_id


def discovered_rx(peer: str) -> str:
    return r"mdns discovered peer=" + re.escape(peer) + r" addrs=\[([^\]]*)\]"


def run_client(h, ns: str, port: int, size: int, seed: int) -> tuple[str, str]:
    """Run the TCP client in the namespace; return (sent line, got line) or ("", reason)."""
    p = h.spawn("client", in_ns(ns, sys.executable, "-c", TCP_CLIENT, port, size, seed))
    try:
        p.wait_exit(T)
    except TestFailure as e:
        return "", str(e)
    out = p.stdout()
    sent = re.search(r"^sent (\w+) (\d+)$", out, re.M)
    got = re.search(r"^got (\w+) (\d+)$", out, re.M)
    if not sent or not got:
        return "", f"client rc={p.returncode}: {p.stderr().strip()[-300:]!r}"
    return sent.group(0)[len("sent "):], got.group(0)[len("got "):]


# --------------------------------------------------------------------------
# DNS parsing for the querier test (independent of the C++ codec; no compression support
# needed beyond pointers, which it follows)

def _name(d: bytes, off: int, depth: int = 0) -> tuple[str, int]:
    labels = []
    end = None
    while True:
        check(off < len(d) and depth < 64, "bad name in response")
        n = d[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | d[off + 1]
            depth += 1
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(d[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def parse_dns(d: bytes) -> dict:
    def u16(o):
        return int.from_bytes(d[o:o + 2], "big")
    msg = {"id": u16(0), "flags": u16(2), "records": []}
    counts = [u16(4), u16(6), u16(8), u16(10)]
    off = 12
    for _ in range(counts[0]):
        _, off = _name(d, off)
        off += 4
    for _ in range(sum(counts[1:])):
        name, off = _name(d, off)
        rtype, rclass, ttl, rdlen = u16(off), u16(off + 2), int.from_bytes(d[off + 4:off + 8], "big"), u16(off + 8)
        off += 10
        rdata = d[off:off + rdlen]
        rec = {"name": name, "type": rtype, "class": rclass, "ttl": ttl}
        if rtype == 12:
            rec["target"] = _name(d, off)[0]
        elif rtype == 16:
            strings, i = [], 0
            while i < len(rdata):
                strings.append(rdata[i + 1:i + 1 + rdata[i]].decode("ascii", "replace"))
                i += 1 + rdata[i]
            rec["txt"] = strings
        off += rdlen
        msg["records"].append(rec)
    check(off <= len(d), "response shorter than its records")
    return msg


# --------------------------------------------------------------------------
# tests

def test_discovery_and_tunnel(h):
    """Two nodes, no --bootstrap: mDNS finds both ways, B's tunnel reaches A's echo service."""
    a_key, a_id = make_identity(h, "A.key")
    b_key, b_id = make_identity(h, "B.key")
    with netns(h) as ns:
        echo = h.spawn("echo", in_ns(ns, *echo_server_argv()))
        echo_port = int(wait_for(echo, r"^port (\d+)$", timeout=T, stream="stdout").group(1))
        tunnel_port = random.randint(20000, 40000)  # the namespace is empty: any port is free

        # A listens on 0.0.0.0, so its announced addresses come from interface expansion.
        a, _ = start_node(h, ns, "A", a_key, "--listen", LISTEN_ANY, "--expose", f"echo=127.0.0.1:{echo_port}")
        b, _ = start_node(h, ns, "B", b_key, "--listen", LISTEN,
                          "--tunnel", f"{a_id}:echo@127.0.0.1:{tunnel_port}")
        wait_for(b, r"tunnel listening bind=127\.0\.0\.1:" + str(tunnel_port) + r" ", timeout=T, stream="stderr")

        for proc, other in ((a, b_id), (b, a_id)):
            m = wait_for(proc, discovered_rx(other), timeout=T, stream="stderr")
            addrs = [x for x in m.group(1).split(",") if x]
            check(addrs, f"{proc.name}: `mdns discovered` with no addresses: {m.group(0)!r}")
            check(all(re.fullmatch(r"/ip4/127\.0\.0\.1/udp/\d+/quic-v1", x) for x in addrs),
                  f"{proc.name}: unexpected discovered addresses {addrs}")
        # Discovery dials, so the two end up connected without any bootstrap.
        wait_for(b, r"connection opened peer=" + re.escape(a_id) + r"\b", timeout=T, stream="stderr")

        # The first tunnel connection may race the dial; retry a few times before failing.
        deadline = time.monotonic() + T
        last = ""
        while True:
            sent, got = run_client(h, ns, tunnel_port, 256 * 1024, seed=7)
            if sent and sent == got:
                break
            last = got if not sent else f"sent {sent}, got {got}"
            check(time.monotonic() < deadline, f"no echo through the tunnel: {last}")
            time.sleep(0.5)
        wait_for(a, r"tunnel accepted peer=" + re.escape(b_id) + r" service=echo\b", timeout=T, stream="stderr")

        # "once per peer per new address set": the startup burst must not repeat the line.
        time.sleep(4)
        for proc, other in ((a, b_id), (b, a_id)):
            n = len(re.findall(discovered_rx(other), proc.stderr()))
            check(n == 1, f"{proc.name} logged `mdns discovered peer={other}` {n} times, want 1")
        check(a.alive() and b.alive(), "a node exited")


def test_answers_foreign_query(h):
    """A plain DNS-SD query (not from punchgate) gets our PTR + dnsaddr TXT response."""
    key, peer_id = make_identity(h, "A.key")
    with netns(h) as ns:
        node, _ = start_node(h, ns, "A", key, "--listen", LISTEN)
        addr = wait_for(node, LISTEN_RX, timeout=T, stream="stderr").group(1)
        wait_for(node, r"mdns started ", timeout=T, stream="stderr")
        q = h.spawn("querier", in_ns(ns, sys.executable, "-c", MDNS_QUERIER, "3"))
        q.wait_exit(T)
        check(q.returncode == 0, f"querier exited {q.returncode}: {q.stderr().strip()[-300:]!r}")
        responses = [bytes.fromhex(x) for x in re.findall(r"^response (\w+)$", q.stdout(), re.M)]
        check(responses, "no mDNS response seen within 3 s")
        want_txt = f"dnsaddr={addr}/p2p/{peer_id}"
        ok = False
        for raw in responses:
            msg = parse_dns(raw)
            check(msg["id"] == 0, f"multicast response id {msg['id']:#x}, RFC 6762 §18.1 wants 0")
            check(msg["flags"] & 0x8400 == 0x8400, f"response flags {msg['flags']:#06x} lack QR/AA")
            ptrs = [r for r in msg["records"] if r["type"] == 12 and r["name"] == "_p2p._udp.local"]
            if not ptrs:
                continue
            target = ptrs[0]["target"]
            check(target.endswith("._p2p._udp.local"), f"PTR target {target!r}")
            txts = [s for r in msg["records"] if r["type"] == 16 and r["name"] == target for s in r["txt"]]
            check(all(len(s) <= 255 for s in txts), "TXT string over 255 bytes")
            if want_txt in txts:
                ok = True
        check(ok, f"no response carried TXT {want_txt!r}; responses: {[r.hex() for r in responses]}")
        # Rate limit: the node answers its own startup queries and ours, but at most about once
        # per second (RFC 6762 §6), so a 3 s window cannot hold many.
        check(len(responses) <= 5, f"{len(responses)} responses in 3 s; rate limiting broken?")


def test_mdns_off(h):
    """PUNCHGATE_MDNS=false: no mDNS socket, nothing discovered."""
    a_key, a_id = make_identity(h, "A.key")
    b_key, b_id = make_identity(h, "B.key")
    with netns(h) as ns:
        a, _ = start_node(h, ns, "A", a_key, "--listen", LISTEN, env=MDNS_OFF)
        b, _ = start_node(h, ns, "B", b_key, "--listen", LISTEN, "--no-mdns", env=MDNS_ON)
        wait_for(a, LISTEN_RX, timeout=T, stream="stderr")
        wait_for(b, LISTEN_RX, timeout=T, stream="stderr")
        time.sleep(4)  # longer than the whole startup query burst
        for proc in (a, b):
            check(proc.alive(), f"{proc.name} exited")
            err = proc.stderr()
            check("mdns started" not in err and "mdns discovered" not in err,
                  f"{proc.name} ran mDNS although it is off")
        check("connection opened" not in a.stderr() + b.stderr(), "nodes connected with mDNS off")


def _preflight(args) -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2 (`ip`)"
    if not args.punchgate:
        return "no --punchgate binary given"
    return None


if __name__ == "__main__":
    main([
        test_discovery_and_tunnel,
        test_answers_foreign_query,
        test_mdns_off,
    ], description=__doc__, preflight=_preflight)
