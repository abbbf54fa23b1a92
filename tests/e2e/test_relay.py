#!/usr/bin/env python3
"""Circuit relay v2 end to end: real punchgate processes on loopback.

The whole script runs in a private network namespace (it re-executes itself under
`unshare --net`), where nftables drops UDP between A's and B's fixed ports, so A can
reach B only through relay R, as across two NATs. The namespace (and its rules) dies
with the last process in it, so nothing outlives a failed run.

  R: --listen only (no --bootstrap: public, serves as relay)
  B: --bootstrap R --expose echo=…   (private: reserves a slot on R)
  A: --bootstrap R --tunnel B:echo@… (finds B's /p2p-circuit address, dials through R)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.dont_write_bytecode = True

from punchgate_harness import Harness, check, main, wait_for  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    T, TcpEchoServer, check_alive, check_bad_values, echo_once, free_port, isolate_env,
    make_identity, scale_from_env, spawn_node, node_info, wait_count, wait_tunnel_listening,
)

NETNS_MARK = "PUNCHGATE_RELAY_TEST_NETNS"
TR = 60  # relayed dials wait out a blocked direct attempt first


def enter_namespace() -> None:
    """Re-run this script in a new network namespace (once), with loopback up."""
    if os.environ.get(NETNS_MARK) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    unshare = shutil.which("unshare")
    if not unshare or not shutil.which("nft") or not shutil.which("ip"):
        print("SETUP ERROR: test_relay needs unshare (util-linux), nft (nftables) and ip (iproute2); "
              "./scripts/deps.sh installs them", flush=True)
        sys.exit(1)
    probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"FAIL: test_relay needs a private network namespace, and `unshare --net` is not permitted here "
              f"({probe.stderr.strip() or 'exit ' + str(probe.returncode)}); run as root or with CAP_SYS_ADMIN",
              flush=True)
        sys.exit(1)
    env = dict(os.environ, **{NETNS_MARK: "1"})
    r = subprocess.run([unshare, "--net", "--", sys.executable, "-B", *sys.argv], env=env)
    sys.exit(r.returncode)


def block_udp_between(port_a: int, port_b: int) -> None:
    """Drop UDP between the two ports, both ways (only inside our namespace)."""
    rules = f"""
table inet pg_relay_test {{
  chain out {{
    type filter hook output priority 0; policy accept;
    udp sport {port_a} udp dport {port_b} drop
    udp sport {port_b} udp dport {port_a} drop
  }}
}}
"""
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)


def listen(port: int) -> str:
    return f"/ip4/127.0.0.1/udp/{port}/quic-v1"


class Net:
    """R, B (behind the block, exposing echo) and A (the consumer), each on a fixed port."""

    def __init__(self, h: Harness, echo_port: int, relay_args=(), relay_key: str | None = None):
        self.h = h
        self.rp, self.bp, self.ap = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        block_udp_between(self.ap, self.bp)
        self.relay_args = list(relay_args)
        self.relay_key = relay_key or h.path("R.key")
        self.r = self.start_relay()
        self.r_id, _ = node_info(self.r)
        self.r_addr = f"{listen(self.rp)}/p2p/{self.r_id}"
        self.b = spawn_node(h, "B", "--expose", f"echo=127.0.0.1:{echo_port}", "--control-socket", h.path("B.sock"),
                            listen=listen(self.bp),
                            bootstrap=self.r_addr)
        self.b_id, _ = node_info(self.b)

    def start_relay(self):
        return spawn_node(self.h, "R", *self.relay_args, "--control-socket", self.h.path("R.sock"),
                          key=self.relay_key, listen=listen(self.rp))

    def status(self, name: str) -> dict:
        p = self.h.run_punchgate("--control-socket", self.h.path(f"{name}.sock"), "status", "--json",
                                 name=f"status-{name}")
        check(p.returncode == 0, f"status of {name} exited {p.returncode}: {p.stderr().strip()!r}")
        return json.loads(p.stdout())

    def wait_reserved(self, count: int = 1) -> None:
        wait_count(self.b, r"relay reservation accepted relay=" + self.r_id + r"\b", count, timeout=TR)

    def start_consumer(self, tport: int):
        self.a = spawn_node(self.h, "A", "--tunnel", f"{self.b_id}:echo@127.0.0.1:{tport}",
                            "--control-socket", self.h.path("A.sock"), listen=listen(self.ap),
                            bootstrap=self.r_addr)
        self.a_id, _ = node_info(self.a)
        wait_tunnel_listening(self.a, tport)
        return self.a


def stream_through(port: int, total: int, timeout: float = 300) -> tuple[int, bool, str]:
    """Send `total` pseudo-random bytes through 127.0.0.1:port from a thread while reading the
    echo; return (bytes received, sha256 equal, error text)."""
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    block = hashlib.sha256(b"punchgate relay").digest() * 2048  # 64 KiB
    errors: list[str] = []
    got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        def send():
            left = total
            try:
                while left > 0:
                    chunk = block[:min(left, len(block))]
                    s.sendall(chunk)
                    sent_hash.update(chunk)
                    left -= len(chunk)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append(f"send: {e}")
        th = threading.Thread(target=send, daemon=True)
        th.start()
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    break
                got += len(d)
                got_hash.update(d)
        except OSError as e:
            errors.append(f"recv: {e}")
        th.join(timeout)
    return got, sent_hash.digest() == got_hash.digest(), "; ".join(errors)


def retry_echo(port: int, payload: bytes, within: float) -> bytes:
    deadline = time.monotonic() + within
    last = b""
    while time.monotonic() < deadline:
        try:
            last = echo_once(port, payload, timeout=15)
        except OSError:
            last = b""
        if last == payload:
            return last
        time.sleep(1)
    return last


# --------------------------------------------------------------------------


def test_direct_path_is_blocked(h):
    """Guard for the other tests: under the nft rule A cannot reach B directly (a direct
    --bootstrap dial fails) while both reach R."""
    with TcpEchoServer() as echo:
        net = Net(h, echo.port, relay_args=["--relay-server", "off"])
        a = spawn_node(h, "A", "--relay-mode", "off", listen=listen(net.ap),
                       bootstrap=[net.r_addr, f"{listen(net.bp)}/p2p/{net.b_id}"])
        wait_for(a, r"connection opened peer=" + net.r_id, timeout=T, stream="stderr")
        wait_for(a, r"bootstrap dial failed addr=" + re.escape(listen(net.bp)), timeout=TR, stream="stderr")
        check("connection opened peer=" + net.b_id not in a.stderr(), "A reached B directly despite the block")


def test_tunnel_through_relay(h):
    """B reserves on R; A tunnels to B's echo through R: small echo, identify both ways over
    the relayed connection, then 256 MiB with equal sha256."""
    with TcpEchoServer() as echo:
        net = Net(h, echo.port)
        net.wait_reserved()
        wait_for(net.r, r"relay reservation granted peer=" + net.b_id, timeout=T, stream="stderr")
        tport = free_port()
        a = net.start_consumer(tport)
        got = retry_echo(tport, b"hello through the relay\n", TR)
        check(got == b"hello through the relay\n", f"echo through the relay returned {got!r}")
        wait_for(a, r"connected to tunnel target via relay peer_id=" + net.b_id + r" relay=" + net.r_id,
                 timeout=T, stream="stderr")
        wait_for(a, r"connection opened peer=" + net.b_id + r" endpoint=dialer remote_addr=\S+/p2p-circuit/\S+ "
                 r"relayed=true", timeout=T, stream="stderr")
        wait_for(net.b, r"connection opened peer=" + net.a_id + r" endpoint=listener \S+ relayed=true",
                 timeout=T, stream="stderr")
        wait_for(a, r"identify received peer=" + net.b_id, timeout=T, stream="stderr")
        wait_for(net.b, r"identify received peer=" + net.a_id, timeout=T, stream="stderr")
        wait_for(net.r, r"circuit opened src=" + net.a_id + r" dst=" + net.b_id, timeout=T, stream="stderr")

        # status: B holds the reservation, R serves it and the circuit, A sees B as relayed
        held = net.status("B")["relay"]["reservations_held"]
        check(len(held) == 1 and held[0]["relay"] == net.r_id and
              all("/p2p-circuit" in addr for addr in held[0]["addrs"]) and held[0]["addrs"],
              f"B's status shows reservations {held}")
        served = net.status("R")["relay"]
        check(served["serving"] and served["reservations_served"] >= 2 and served["circuits_served"] == 1,
              f"R's status shows {served} (B and A reserved, one circuit)")
        peers = {p["peer_id"]: p for p in net.status("A")["peers"]}
        check(peers.get(net.b_id, {}).get("connection") == "relayed", f"A's status peers: {peers}")

        total = int((256 << 20) * scale_from_env())
        got, same, err = stream_through(tport, total)
        check(got == total and same, f"256 MiB through the relay: got {got} of {total} bytes, sha256 equal: {same} {err}")
        check_alive(net.r, net.b, a)


def test_reservation_cap(h):
    """R capped at two reservations: B and a second private node get one, a third is refused
    with RESERVATION_REFUSED."""
    with TcpEchoServer() as echo:
        net = Net(h, echo.port, relay_args=["--relay-max-reservations", "2"])
        net.wait_reserved()
        b2 = spawn_node(h, "B2", bootstrap=net.r_addr)
        b2_id, _ = node_info(b2)
        wait_for(b2, r"relay reservation accepted relay=" + net.r_id, timeout=TR, stream="stderr")
        b3 = spawn_node(h, "B3", bootstrap=net.r_addr)
        b3_id, _ = node_info(b3)
        m = wait_for(b3, r"relay reservation failed relay=" + net.r_id + r" error=(.*)", timeout=TR, stream="stderr")
        check("RESERVATION_REFUSED" in m.group(1), f"B3's failure does not name RESERVATION_REFUSED: {m.group(0)}")
        wait_for(net.r, r"relay reservation refused peer=" + b3_id + r" status=RESERVATION_REFUSED",
                 timeout=T, stream="stderr")
        check("relay reservation accepted" not in b3.stderr(), "B3 got a reservation beyond the cap")
        check_alive(net.r, net.b, b2, b3)


def test_reservation_renewal(h):
    """With a 10 s reservation TTL, B renews before expiry (at three quarters) and keeps its slot."""
    with TcpEchoServer() as echo:
        net = Net(h, echo.port, relay_args=["--relay-reservation-ttl", "10"])
        net.wait_reserved()
        wait_for(net.b, r"relay reservation accepted relay=" + net.r_id + r" .* renewal=true", timeout=T,
                 stream="stderr")
        wait_count(net.r, r"relay reservation granted peer=" + net.b_id, 2, timeout=T)
        check("relay reservation lost" not in net.b.stderr(), "B lost its reservation while renewing")
        check("relay reservation expired" not in net.r.stderr(), "R expired B's reservation despite renewal")


def test_two_relays_and_replacement(h):
    """B knows three relays: it holds two reservations (not three), and when a relay it holds one
    on goes away, it reserves on the third instead."""
    relays = []
    for i in range(3):
        p, pid, addr = start_node_on(h, f"R{i}")
        relays.append((p, pid, addr))
    b = spawn_node(h, "B", bootstrap=[a for _, _, a in relays])
    b_id, _ = node_info(b)
    accepted = r"relay reservation accepted relay=(\S+) "
    wait_count(b, accepted, 2, timeout=TR)
    time.sleep(2)  # a third would come right after the first two
    held = set(re.findall(accepted, b.stderr()))
    check(len(held) == 2, f"B holds reservations on {held}, want exactly two of three relays")
    gone = next(r for r in relays if r[1] in held)
    spare = next(r for r in relays if r[1] not in held)
    gone[0].terminate()
    wait_for(b, r"relay reservation lost relay=" + gone[1], timeout=T, stream="stderr")
    wait_for(b, r"relay reservation accepted relay=" + spare[1], timeout=TR, stream="stderr")
    wait_for(spare[0], r"relay reservation granted peer=" + b_id, timeout=T, stream="stderr")


def start_node_on(h, name: str):
    """A relay on a fresh fixed port: (proc, peer id, dial address)."""
    port = free_port(socket.SOCK_DGRAM)
    p = spawn_node(h, name, listen=listen(port))
    pid, _ = node_info(p)
    return p, pid, f"{listen(port)}/p2p/{pid}"


def test_circuit_byte_limit(h):
    """R limits circuits to 1 MiB each way: 8 MiB through the tunnel ends early (no hang), R
    logs the limit, and a fresh connection through the tunnel works again afterwards."""
    limit = 1 << 20
    with TcpEchoServer() as echo:
        net = Net(h, echo.port, relay_args=["--relay-circuit-bytes", str(limit)])
        net.wait_reserved()
        tport = free_port()
        net.start_consumer(tport)
        check(retry_echo(tport, b"small\n", TR) == b"small\n", "small echo through the limited relay failed")
        got, _, _ = stream_through(tport, 8 << 20, timeout=120)
        check(got < 8 << 20, f"all 8 MiB came back through a circuit limited to {limit} bytes each way")
        check(got <= limit + (256 << 10), f"{got} bytes came back through a circuit limited to {limit} bytes each way")
        m = wait_for(net.r, r"circuit closed src=" + net.a_id + r" dst=" + net.b_id + r" bytes=(\d+) .*reason=(.*)",
                     timeout=T, stream="stderr")
        check("limit" in m.group(2), f"circuit closed for another reason: {m.group(0)}")
        check(int(m.group(1)) <= 2 * limit, f"circuit carried {m.group(1)} bytes, over 2 x {limit}")
        # The relayed connection is gone with its circuit; the next one gets a fresh circuit.
        check(retry_echo(tport, b"again\n", TR) == b"again\n", "no echo through a new circuit after the limit")
        check_alive(net.r, net.b, net.a)


def test_relay_restart(h):
    """R stops and starts again (same key and port): B reserves again and A's tunnel works again."""
    key, _ = make_identity(h, "R.key")
    with TcpEchoServer() as echo:
        net = Net(h, echo.port, relay_key=key)
        net.wait_reserved()
        tport = free_port()
        net.start_consumer(tport)
        check(retry_echo(tport, b"before\n", TR) == b"before\n", "echo before the relay restart failed")
        net.r.terminate()
        wait_for(net.b, r"relay reservation lost relay=" + net.r_id, timeout=T, stream="stderr")
        net.r = net.start_relay()
        node_info(net.r)
        net.wait_reserved(count=2)
        got = retry_echo(tport, b"after\n", 90)
        check(got == b"after\n", f"echo after the relay restart returned {got!r}")
        check_alive(net.r, net.b, net.a)


def test_bad_relay_values(h):
    key, _ = make_identity(h, "bad.key")
    rid = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    check_bad_values(h, key, [
        (["--relay-mode", "sometimes"], "\"sometimes\""),
        (["--relay-mode", "/ip4/127.0.0.1/udp/4001/quic-v1"], "/p2p/<peer id>"),
        (["--relay-mode", f"/ip4/1.2.3.4/udp/1/quic-v1/p2p/{rid}/p2p-circuit/p2p/{rid}"], "p2p-circuit"),
        (["--relay-server", "maybe"], "\"maybe\""),
        (["--relay-max-reservations", "-1"], "\"-1\""),
        (["--relay-max-circuits", "abc"], "\"abc\""),
        (["--relay-circuit-bytes", "1e9"], "\"1e9\""),
        ({"PUNCHGATE_RELAY_MODE": "never"}, "\"never\""),
        ({"PUNCHGATE_RELAY_CIRCUIT_DURATION": "99999999999"}, "\"99999999999\""),
        (["--relay-reservation-ttl", "5"], "\"5\""),
    ], exit_code=2)


if __name__ == "__main__":
    enter_namespace()
    isolate_env()
    main([
        test_direct_path_is_blocked,
        test_tunnel_through_relay,
        test_reservation_cap,
        test_reservation_renewal,
        test_two_relays_and_replacement,
        test_circuit_byte_limit,
        test_relay_restart,
        test_bad_relay_values,
    ], description=__doc__)
