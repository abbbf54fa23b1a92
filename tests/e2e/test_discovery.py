#!/usr/bin/env python3
"""End-to-end tests of punchgate's Kademlia discovery on loopback.

    python3 tests/e2e/test_discovery.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

Every topology has one plain bootstrap node (no --bootstrap) that the other
nodes --bootstrap to; nobody is given any other peer's address.

Covers: an 11-node DHT where a consumer reaches a service by name
(--tunnel-by-name, provider found with GET_PROVIDERS under /punchgate/svc/NAME)
and routing tables fill beyond the bootstrap node; failover to a second
provider of the same name after the first one is SIGKILLed; --tunnel to a peer
whose address is known to nobody but the DHT (FIND_NODE); and bad
--tunnel-by-name / PUNCHGATE_TUNNEL_BY_NAME values.

The services are echo servers run by this script; the failover test's two
servers prefix their replies with their provider's name so the test can tell
which provider answered. Timeouts are generous (the failover one must cover
the consumer noticing a dead provider: QUIC idle timeout, dial timeouts and a
new lookup) and exist only to avoid hangs; nothing asserts on timing. A failing
test keeps its temp dir (logs) and says where; processes are always killed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import TestFailure, check, main, wait_for  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    PEER_ID_RX, T, TcpEchoServer, check_alive, check_bad_values, check_punchgate_binary, echo_once,
    free_port, isolate_env, make_identity, node_info, spawn_node, start_node, stop_cleanly,
    wait_tunnel_listening,
)

KAD_PEER_ADDED_RX = r"kad peer added peer=(" + PEER_ID_RX + r") table_size=(\d+)"
KAD_BOOTSTRAP_RX = r"kad bootstrap finished peers=(\d+)"
TD = 60  # DHT steps (bootstrap, announce, lookups): still only there to avoid hangs
FAILOVER_DEADLINE = 150  # the consumer must reach the second provider within this after the kill

isolate_env()


# --------------------------------------------------------------------------
# helpers

def wait_announced(proc, service: str, timeout: float = TD) -> int:
    """Wait for `provider announced key="/punchgate/svc/SERVICE" peers=N` with N >= 1; return N."""
    rx = re.compile(r'provider announced key="?/punchgate/svc/' + re.escape(service) + r'"? peers=(\d+)')
    deadline = time.monotonic() + timeout
    while True:
        exited = not proc.alive()
        ns = [int(n) for n in rx.findall(proc.stderr())]
        good = [n for n in ns if n >= 1]
        if good:
            return good[0]
        if exited or time.monotonic() >= deadline:
            why = f"exited (rc={proc.returncode})" if exited else f"did not within {timeout:.0f}s"
            raise TestFailure(f"{proc.name} {why}: want a `provider announced key=\"/punchgate/svc/{service}\" "
                              f"peers=N` line with N >= 1; announce rounds seen with peers={ns}")
        time.sleep(0.05)


def wait_kad_bootstrap(proc, timeout: float = TD) -> int:
    """Wait for `kad bootstrap finished peers=N` with N >= 1; return N."""
    n = int(wait_for(proc, KAD_BOOTSTRAP_RX, timeout=timeout, stream="stderr").group(1))
    check(n >= 1, f"{proc.name}: kad bootstrap finished with peers={n}, want >= 1")
    return n


def kad_table_sizes(proc) -> list[tuple[str, int]]:
    return [(p, int(n)) for p, n in re.findall(KAD_PEER_ADDED_RX, proc.stderr())]


def echo_until(port: int, payload: bytes, want: bytes, deadline_s: float, procs=(),
               attempt_timeout: float = TD, what: str = "") -> int:
    """Repeat echo_once until it returns `want`; return the number of attempts.
    Fails when a process in `procs` dies or `deadline_s` passes."""
    deadline = time.monotonic() + deadline_s
    attempts, results = 0, []
    while True:
        attempts += 1
        try:
            got = echo_once(port, payload, timeout=attempt_timeout)
        except OSError as e:
            got = e
        if got == want:
            return attempts
        results.append(got if isinstance(got, OSError) else got[:80])
        check_alive(*procs)
        check(time.monotonic() < deadline,
              f"{what or 'echo'}: no {want[:60]!r} through 127.0.0.1:{port} within {deadline_s:.0f}s "
              f"({attempts} attempts, results: {results[:3]}{' … ' + repr(results[-3:]) if len(results) > 3 else ''})")
        time.sleep(1)


# --------------------------------------------------------------------------
# tests

def test_tunnel_by_name_across_eleven_nodes(h):
    """A bootstrap node + 10 nodes bootstrapping to it. N3 exposes `echo`, N8 has
    --tunnel-by-name echo@…: a TCP client of N8 gets its bytes echoed by N3's
    service after N8 found N3 in the DHT. Routing tables fill beyond the
    bootstrap node."""
    with TcpEchoServer(reply_at_eof=True) as echo:
        boot, boot_id, boot_addr = start_node(h, "boot")
        port = free_port()
        nodes = {}
        for i in range(1, 11):
            extra = []
            if i == 3:
                extra = ["--expose", f"echo=127.0.0.1:{echo.port}"]
            elif i == 8:
                extra = ["--tunnel-by-name", f"echo@127.0.0.1:{port}"]
            nodes[i] = spawn_node(h, f"N{i}", *extra, bootstrap=boot_addr)
        ids = {i: node_info(p)[0] for i, p in nodes.items()}
        check(len(set(ids.values()) | {boot_id}) == 11, f"peer ids are not distinct: {ids} boot={boot_id}")

        for i, p in nodes.items():
            wait_kad_bootstrap(p)
        n3, n8 = nodes[3], nodes[8]
        peers = wait_announced(n3, "echo")
        print(f"  N3 announced /punchgate/svc/echo to {peers} peer(s)", flush=True)
        wait_tunnel_listening(n8, port)

        payload = b"hello by name across eleven nodes\n"
        got = echo_once(port, payload, timeout=TD)
        check(got == payload, f"N8's --tunnel-by-name port returned {got!r}, want {payload!r} "
              f"(echo service saw {echo.connections} connections)")
        wait_for(n8, r"starting DHT lookup for tunnel target service=echo\b", timeout=T, stream="stderr")
        wait_for(n8, r"dialing tunnel target after DHT lookup target_peer=" + ids[3] + r" service=echo\b",
                 timeout=T, stream="stderr")
        wait_for(n3, r"tunnel accepted peer=" + ids[8] + r" service=echo\b", timeout=T, stream="stderr")
        check(echo.connections == 1, f"echo service saw {echo.connections} connections, want 1")

        # a second connection works too (whether or not the lookup is cached)
        got = echo_once(port, b"again\n", timeout=TD)
        check(got == b"again\n", f"second connection through N8 returned {got!r}")

        # routing tables: everybody added someone; some non-bootstrap node knows >= 3 peers
        sizes = {f"N{i}": max((n for _, n in kad_table_sizes(p)), default=0) for i, p in nodes.items()}
        sizes["boot"] = max((n for _, n in kad_table_sizes(boot)), default=0)
        print(f"  largest kad table_size logged per node: {sizes}", flush=True)
        no_add = [name for name, n in sizes.items() if n == 0]
        check(not no_add, f"nodes that never logged `kad peer added`: {no_add}")
        best = max(n for name, n in sizes.items() if name != "boot")
        check(best >= 3, f"no non-bootstrap node has a routing table of >= 3 peers: {sizes}")
        for i, p in nodes.items():
            added = {peer for peer, _ in kad_table_sizes(p)}
            check(ids[i] not in added, f"N{i} added itself to its routing table")
        check_alive(boot, *nodes.values())
        stop_cleanly(boot, *nodes.values())


def test_failover_to_second_provider(h):
    """P1 and P2 both expose `svc` (their echo servers prefix replies with
    'P1:'/'P2:'); consumer C has --tunnel-by-name svc@…. After the provider that
    answered is SIGKILLed, new connections through C reach the other one."""
    with TcpEchoServer(prefix=b"P1:", reply_at_eof=True) as e1, \
            TcpEchoServer(prefix=b"P2:", reply_at_eof=True) as e2:
        boot, boot_id, boot_addr = start_node(h, "boot")
        p1 = spawn_node(h, "P1", "--expose", f"svc=127.0.0.1:{e1.port}", bootstrap=boot_addr)
        p2 = spawn_node(h, "P2", "--expose", f"svc=127.0.0.1:{e2.port}", bootstrap=boot_addr)
        p1_id, _ = node_info(p1)
        p2_id, _ = node_info(p2)
        wait_announced(p1, "svc")
        wait_announced(p2, "svc")
        port = free_port()
        c = spawn_node(h, "C", "--tunnel-by-name", f"svc@127.0.0.1:{port}", bootstrap=boot_addr)
        c_id, _ = node_info(c)
        wait_kad_bootstrap(c)
        wait_tunnel_listening(c, port)

        got = echo_once(port, b"first\n", timeout=TD)
        check(got in (b"P1:first\n", b"P2:first\n"), f"first connection through C returned {got!r}, "
              f"want b'P1:first\\n' or b'P2:first\\n'")
        if got.startswith(b"P1:"):
            victim, victim_id, survivor, survivor_id, sprefix = p1, p1_id, p2, p2_id, b"P2:"
        else:
            victim, victim_id, survivor, survivor_id, sprefix = p2, p2_id, p1, p1_id, b"P1:"
        wait_for(c, r"dialing tunnel target after DHT lookup target_peer=" + victim_id + r" service=svc\b",
                 timeout=T, stream="stderr")
        wait_for(victim, r"tunnel accepted peer=" + c_id + r" service=svc\b", timeout=T, stream="stderr")
        print(f"  first connection reached {victim.name}; SIGKILLing it", flush=True)

        victim.kill()  # SIGKILL, no goodbye to anyone
        t0 = time.monotonic()
        attempts = echo_until(port, b"after kill\n", sprefix + b"after kill\n", FAILOVER_DEADLINE,
                              procs=(boot, survivor, c), what=f"failover to {survivor.name}")
        print(f"  reached {survivor.name} after {attempts} attempt(s), {time.monotonic() - t0:.1f}s after the kill",
              flush=True)
        # and keeps reaching it: the dead provider's stale record must not break new connections
        for i in range(3):
            msg = f"steady {i}\n".encode()
            got = echo_once(port, msg, timeout=TD)
            check(got == sprefix + msg, f"connection {i + 1} after failover returned {got!r}, "
                  f"want {sprefix + msg!r}")
        wait_for(c, r"dialing tunnel target after DHT lookup target_peer=" + survivor_id + r" service=svc\b",
                 timeout=T, stream="stderr")
        wait_for(survivor, r"tunnel accepted peer=" + c_id + r" service=svc\b", timeout=T, stream="stderr")
        check_alive(boot, survivor, c)
        stop_cleanly(boot, survivor, c)


def test_tunnel_to_peer_without_address(h):
    """--tunnel P:echo@… where nobody gave C an address for P: C and P only
    bootstrap to the same bootstrap node, and C finds P with FIND_NODE."""
    with TcpEchoServer(reply_at_eof=True) as echo:
        boot, boot_id, boot_addr = start_node(h, "boot")
        p = spawn_node(h, "P", "--expose", f"echo=127.0.0.1:{echo.port}", bootstrap=boot_addr)
        p_id, _ = node_info(p)
        # the bootstrap node must know P before C can learn P's address from it
        wait_for(boot, r"kad peer added peer=" + p_id + r"\b", timeout=TD, stream="stderr")
        port = free_port()
        c = spawn_node(h, "C", "--tunnel", f"{p_id}:echo@127.0.0.1:{port}", bootstrap=boot_addr)
        c_id, _ = node_info(c)
        wait_tunnel_listening(c, port)
        # connect at once: C may still be joining the DHT; allow it a few tries to find P
        attempts = echo_until(port, b"found by FIND_NODE\n", b"found by FIND_NODE\n", TD,
                              procs=(boot, p, c), what="tunnel to P")
        if attempts > 1:
            print(f"  NOTE: the first {attempts - 1} connection(s) through C failed before C had found P", flush=True)
        wait_for(p, r"tunnel accepted peer=" + c_id + r" service=echo\b", timeout=T, stream="stderr")
        lookups = len(re.findall(r"looking up peer addresses in DHT peer=" + p_id, c.stderr()))
        print(f"  C logged {lookups} DHT address lookup(s) for P", flush=True)
        # once found, a new connection works at the first try
        got = echo_once(port, b"second\n", timeout=TD)
        check(got == b"second\n", f"second connection through C returned {got!r}")
        check_alive(boot, p, c)
        stop_cleanly(boot, p, c)


def test_bad_tunnel_by_name_values(h):
    """Bad --tunnel-by-name / PUNCHGATE_TUNNEL_BY_NAME values: exit 2, exactly one
    stderr line naming the bad value."""
    key, peer = make_identity(h, "k.key")
    cases = [
        (["--tunnel-by-name", "echo"], "echo"),
        (["--tunnel-by-name", "echo127.0.0.1:9000"], "echo127.0.0.1:9000"),
        (["--tunnel-by-name", "@127.0.0.1:9000"], "@127.0.0.1:9000"),
        (["--tunnel-by-name", "echo@127.0.0.1:0"], "echo@127.0.0.1:0"),
        (["--tunnel-by-name", "echo@127.0.0.1:abc"], "echo@127.0.0.1:abc"),
        (["--tunnel-by-name", "echo@127.0.0.1:70000"], "echo@127.0.0.1:70000"),
        (["--tunnel-by-name", "echo@127.0.0.1"], "echo@127.0.0.1"),
        (["--tunnel-by-name", "echo@127.0.0.1:9000/foo"], "echo@127.0.0.1:9000/foo"),
        (["--tunnel-by-name", "bad/name@127.0.0.1:9000"], "bad/name@127.0.0.1:9000"),
        (["--tunnel-by-name", "a@127.0.0.1:9000", "--tunnel-by-name", "b@127.0.0.1:9000"], "127.0.0.1:9000"),
        (["--tunnel", f"{peer}:a@127.0.0.1:9001", "--tunnel-by-name", "b@127.0.0.1:9001"], "127.0.0.1:9001"),
        (["--tunnel-by-name", "b@127.0.0.1:9002", "--tunnel", f"{peer}:a@127.0.0.1:9002"], "127.0.0.1:9002"),
        (["--tunnel-by-name", "u@127.0.0.1:9003/udp", "--tunnel-by-name", "v@127.0.0.1:9003/udp"],
         "127.0.0.1:9003"),
        ({"PUNCHGATE_TUNNEL_BY_NAME": "echo@127.0.0.1:0"}, "echo@127.0.0.1:0"),
        ({"PUNCHGATE_TUNNEL_BY_NAME": "echo"}, "echo"),
        ({"PUNCHGATE_TUNNEL_BY_NAME": "ok@127.0.0.1:9004,@127.0.0.1:9005"}, "@127.0.0.1:9005"),
        ({"PUNCHGATE_TUNNEL_BY_NAME": "a@127.0.0.1:9006,b@127.0.0.1:9006"}, "127.0.0.1:9006"),
    ]
    check_bad_values(h, key, cases, exit_code=2, what="bad-value")


def test_bad_dht_and_mdns_values(h):
    """`punchgate dht` operations and PUNCHGATE_MDNS: bad values exit 2 with one line naming them."""
    key, peer = make_identity(h, "k.key")
    cases = [
        (["dht", "frobnicate", "k"], "frobnicate"),
        (["dht", "get"], "dht get takes 1 argument"),
        (["dht", "put", "k"], "dht put takes 2 arguments"),
        (["dht", "get", "hex:abc"], "hex:abc"),
        (["dht", "get", "hex:zz"], "hex:zz"),
        (["dht", "get", "x" * 1025], "longer than 1024 bytes"),
        (["dht", "find-peer", "notapeer"], "notapeer"),
        (["dht", "put", "k", "v" * (64 * 1024 + 1)], "at most 65536"),
        ({"PUNCHGATE_MDNS": "sometimes"}, "sometimes"),
    ]
    check_bad_values(h, key, cases, exit_code=2, what="bad-value")


def preflight(args) -> str | None:
    problem = check_punchgate_binary(args)
    if problem:
        return problem
    try:
        r = subprocess.run([args.punchgate, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`{args.punchgate} --help` failed: {e}"
    if "--tunnel-by-name" not in r.stdout + r.stderr:
        return f"`{args.punchgate} --help` does not list --tunnel-by-name (binary without discovery?)"
    return None


if __name__ == "__main__":
    main([
        test_tunnel_by_name_across_eleven_nodes,
        test_failover_to_second_provider,
        test_tunnel_to_peer_without_address,
        test_bad_tunnel_by_name_values,
        test_bad_dht_and_mdns_values,
    ], description=__doc__, preflight=preflight)
