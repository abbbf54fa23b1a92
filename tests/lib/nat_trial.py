"""punchgate trials across a NAT bed (nat_bed.py): a provider behind gateway A, a consumer
behind gateway B, two public nodes as relays; direct or relayed, time to direct, echo results.

Run as a program it is the echo client that runs inside the consumer's namespace:
    nat_trial.py echo-client PORT PAYLOAD_HEX WITHIN_S
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional, Sequence  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nat_bed import NAT_TYPES, BedError, BedProc, NatBed, run_cmd  # noqa: E402
# The harness' echo server and client; importing them also installs the harness' signal handlers
# (kill its processes, then SystemExit), so this comes before a caller installs the bed's own.
from punchgate_helpers import echo_once, echo_server_argv  # noqa: E402

NODE_PORT = 4001
TUNNEL_PORT = 7000  # the consumer's local tunnel port, inside hB


def identity(punchgate: str, path: Path) -> str:
    """Create (or read) an identity file with `punchgate id` (touches no network); its peer id."""
    out = run_cmd([punchgate, "--identity", str(path), "id"]).strip()
    if not re.fullmatch(r"12D3KooW[1-9A-HJ-NP-Za-km-z]+", out):
        raise BedError(f"`punchgate id` printed {out!r}")
    return out


@dataclass
class Node:
    proc: BedProc
    peer_id: str
    sock: Path
    addr: Optional[str] = None  # dialable multiaddr with /p2p/, for public nodes


def start_node(bed: NatBed, punchgate: str, ns: str, name: str, *args, listen: str) -> Node:
    key = bed.workdir / f"{name}.key"
    peer_id = identity(punchgate, key)
    sock = bed.workdir / f"{name}.sock"
    # Only our own flags: inherited PUNCHGATE_* variables would change the node's behaviour
    # (the log level is kept; mDNS is off, there is no LAN peer to find).
    base = {k: v for k, v in os.environ.items() if not k.startswith("PUNCHGATE_") and k != "RUST_LOG"}
    env = {"PUNCHGATE_MDNS": "false", "PUNCHGATE_LOG": os.environ.get("PUNCHGATE_LOG") or "info"}
    proc = bed.spawn(ns, name, [punchgate, "--identity", key, "--listen", listen, "--control-socket", sock, *args],
                     env=env, base_env=base)
    return Node(proc=proc, peer_id=peer_id, sock=sock)


class ControlClient:
    """A line-JSON client of a node's control socket."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock: Optional[socket.socket] = None
        self.buf = b""
        self.next_id = 1

    def call(self, method: str, timeout: float = 2.0) -> Optional[dict]:
        """The result, or None when the node is not answering (yet)."""
        try:
            if self.sock is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(timeout)
                s.connect(self.path)
                self.sock = s
            rid = self.next_id
            self.next_id += 1
            self.sock.sendall(json.dumps({"id": rid, "method": method}).encode() + b"\n")
            while True:
                nl = self.buf.find(b"\n")
                if nl >= 0:
                    line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                    msg = json.loads(line)
                    if msg.get("id") == rid:
                        return msg.get("result") if msg.get("ok") else None
                    continue
                d = self.sock.recv(1 << 16)
                if not d:
                    raise OSError("control socket closed")
                self.buf += d
        except (OSError, ValueError):
            self.close()
            return None

    def close(self) -> None:
        if self.sock:
            self.sock.close()
        self.sock = None
        self.buf = b""


PUNCH_RX = re.compile(r"hole punch (succeeded|failed) (peer=\S+.*)$", re.M)
MAPPING_RX = re.compile(r"(nat mapping detected mapping=\S+.*|port mapping added .*)$", re.M)


@dataclass
class TrialResult:
    nat_a: str
    nat_b: str
    direct: bool = False
    time_to_direct_ms: Optional[float] = None
    final: str = "none"            # consumer's last view of the provider: direct, relayed or none
    echo_ok: bool = False          # first echo through the tunnel (retried while it comes up)
    echo_time_ms: Optional[float] = None
    echo_after_ok: bool = False    # a second echo at the end of the trial (on the final path)
    punch_lines: list = field(default_factory=list)
    mapping_lines: list = field(default_factory=list)  # nat mapping detected / port mapping added
    why: str = ""
    error: str = ""
    exit_codes: dict = field(default_factory=dict)  # node -> exit status after SIGTERM (0 = clean)

    @property
    def pair(self) -> str:
        return f"{self.nat_a}:{self.nat_b}"

    def summary(self) -> str:
        if self.error.startswith("setup:"):
            return f"{self.pair:>8}  SETUP ERROR {self.error[len('setup:'):].strip()}"
        ttd = f"{self.time_to_direct_ms:.0f} ms" if self.time_to_direct_ms is not None else "-"
        s = (f"{self.pair:>8}  {'direct ' if self.direct else 'relayed'}  to-direct {ttd:>8}  final {self.final:<7}"
             f"  echo {'ok' if self.echo_ok else 'FAIL'}/{'ok' if self.echo_after_ok else 'FAIL'}")
        if self.why:
            s += f"  why={self.why!r}"
        unclean = {k: v for k, v in self.exit_codes.items() if v != 0}
        if unclean:
            s += f"  unclean exit={unclean}"
        if self.error:
            s += f"  error={self.error}"
        return s


def echo_payload(tag: str) -> bytes:
    return (f"punchgate nat bed {tag} ".encode() * 64)[:4096]


def provider_view(ctl: ControlClient, provider: str) -> Optional[tuple[str, str]]:
    """(direct|relayed|none, the node's why) for the consumer's connections to the provider, or
    None when the control socket does not answer."""
    peers = ctl.call("peers")
    if peers is None:
        return None
    mine = [p for p in peers.get("peers", []) if p.get("peer_id") == provider]
    state = "direct" if any(p.get("connection") == "direct" for p in mine) else ("relayed" if mine else "none")
    return state, "; ".join(sorted({str(p.get("why", "")) for p in mine}))


def stop_nodes(procs: Sequence[BedProc], timeout: float = 15) -> dict:
    """SIGTERM all at once; name -> exit status (None: still running after timeout, killed).
    A node must exit 0 (under ASan a leak or error report makes it fail)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = {}
    for p in procs:
        try:
            codes[p.name] = p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[p.name] = None
            p.stop()
    return codes


def start_public(bed: NatBed, punchgate: str, extra: Sequence[str]) -> list[Node]:
    """pub1 and pub2 (no --bootstrap: public, relay servers), listening."""
    nodes = []
    for pub in ("pub1", "pub2"):
        listen = f"/ip4/{bed.pub_ips[pub]}/udp/{NODE_PORT}/quic-v1"
        n = start_node(bed, punchgate, pub, pub, *extra, listen=listen)
        n.addr = f"{listen}/p2p/{n.peer_id}"
        nodes.append((n, listen))
    for n, listen in nodes:
        n.proc.wait_for(r"listening on " + re.escape(listen), timeout=20)
    return [n for n, _ in nodes]


def run_echo(bed: NatBed, payload: bytes, within: float) -> BedProc:
    return bed.spawn("hB", "echo-client", bed.helper_argv(__file__, "echo-client", TUNNEL_PORT, payload.hex(), within))


def echo_result(p: BedProc, timeout: float) -> dict:
    """The echo client's verdict (waiting up to timeout for it)."""
    try:
        p.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.stop()
    for line in reversed(p.stdout().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {"ok": False, "error": f"echo client rc={p.popen.poll()} stderr={p.stderr()[-300:]!r}"}


def run_trial(bed: NatBed, punchgate: str, extra_args: Sequence[str] = (), direct_within: float = 30.0,
              poll: float = 0.1, stop_when_direct: bool = True, log: Callable[[str], None] = lambda s: None
              ) -> TrialResult:
    """One provider (hA, exposing a TCP echo) / consumer (hB, tunnel to it) run on a built bed.

    Starts pub1 and pub2, the echo service and the provider (bootstrapping to both public
    nodes), waits for the provider's first relay reservation, then starts the consumer; time to
    direct counts from the consumer's start. An echo runs (retried while the tunnel comes up)
    while the consumer's control socket is polled every `poll` s for its connection to the
    provider. The trial ends once direct (with stop_when_direct) and the echo is done, or after
    `direct_within` s; a second echo then checks the final path, and the nodes are stopped with
    SIGTERM (exit_codes). Setup problems raise BedError."""
    res = TrialResult(bed.spec["A"], bed.spec["B"])
    extra = list(extra_args)
    pubs = start_public(bed, punchgate, extra)
    boot = [arg for n in pubs for arg in ("--bootstrap", n.addr)]
    listen_any = f"/ip4/0.0.0.0/udp/{NODE_PORT}/quic-v1"
    echo = bed.spawn("hA", "echo-server", echo_server_argv())
    echo_port = int(echo.wait_for(r"^port (\d+)", timeout=15, stream="stdout").group(1))
    provider = start_node(bed, punchgate, "hA", "provider", *boot, "--expose", f"echo=127.0.0.1:{echo_port}",
                          *extra, listen=listen_any)
    provider.proc.wait_for(r"relay reservation accepted relay=", timeout=30)
    log(f"  provider {provider.peer_id} reserved a relay slot; starting the consumer")
    consumer = start_node(bed, punchgate, "hB", "consumer", *boot,
                          "--tunnel", f"{provider.peer_id}:echo@127.0.0.1:{TUNNEL_PORT}", *extra, listen=listen_any)
    t0 = consumer.proc.started
    consumer.proc.wait_for(r"tunnel listening bind=127\.0\.0\.1:" + str(TUNNEL_PORT) + " ", timeout=20)
    payload = echo_payload(res.pair)
    echo1 = run_echo(bed, payload, direct_within)

    ctl = ControlClient(consumer.sock)
    deadline = t0 + direct_within
    try:
        while time.monotonic() < deadline:
            view = provider_view(ctl, provider.peer_id)
            if view:
                res.final, res.why = view
                if res.final == "direct" and not res.direct:
                    res.direct = True
                    res.time_to_direct_ms = (time.monotonic() - t0) * 1000
                    log(f"  direct after {res.time_to_direct_ms:.0f} ms")
            dead = [n.proc for n in (provider, consumer) if not n.proc.alive()]
            if dead:
                res.error = "node died: " + ", ".join(f"{p.name} rc={p.popen.poll()}" for p in dead)
                break
            if res.direct and stop_when_direct and echo1.popen.poll() is not None:
                break
            time.sleep(poll)
        r1 = echo_result(echo1, timeout=max(1.0, deadline - time.monotonic()) + 20)
        res.echo_ok, res.echo_time_ms = bool(r1.get("ok")), r1.get("elapsed_ms")
        if not res.echo_ok and not res.error:
            res.error = f"echo: {r1.get('error') or 'no result'}"
        r2 = echo_result(run_echo(bed, payload, 15), timeout=40)
        res.echo_after_ok = bool(r2.get("ok"))
        if not res.echo_after_ok and not res.error:
            res.error = f"second echo: {r2.get('error') or 'no result'}"
        view = provider_view(ctl, provider.peer_id)  # the final state, after the second echo
        if view:
            res.final, res.why = view
    finally:
        ctl.close()
    res.exit_codes = stop_nodes([n.proc for n in (*pubs, provider, consumer)])
    for n, who in ((provider, "A"), (consumer, "B")):
        text = n.proc.stderr()
        res.punch_lines += [f"{who}: hole punch {m.group(1)} {m.group(2)}" for m in PUNCH_RX.finditer(text)]
        res.mapping_lines += [f"{who}: {m.group(1)}" for m in MAPPING_RX.finditer(text)]
    return res


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


def markdown_matrix(results: dict) -> str:
    """results: (nat_a, nat_b) -> [TrialResult]. Rows: provider NAT (A), columns: consumer NAT (B)."""
    order = [*NAT_TYPES, *(f"{t}+UPNP" for t in NAT_TYPES)]
    cols = [b for b in order if any(k[1] == b for k in results)]
    rows = [a for a in order if any(k[0] == a for k in results)]
    lines = ["| A (provider) \\ B (consumer) | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for a in rows:
        cells = []
        for b in cols:
            rs = results.get((a, b))
            if not rs:
                cells.append("")
                continue
            times = [r.time_to_direct_ms for r in rs if r.time_to_direct_ms is not None]
            med = f"{statistics.median(times) / 1000:.1f} s" if times else "-"
            echo = sum(1 for r in rs if r.echo_ok and r.echo_after_ok)
            cells.append(f"{pct(sum(r.direct for r in rs), len(rs))} direct, median {med}, echo {echo}/{len(rs)}")
        lines.append(f"| **{a}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# helper program (runs inside the consumer's namespace)

def _echo_client(port: str, payload_hex: str, within: str) -> None:
    """Echo payload through 127.0.0.1:port, retrying (1 s apart) until it comes back intact or
    `within` s pass; prints {"ok", "attempts", "elapsed_ms", "error"}."""
    payload = bytes.fromhex(payload_hex)
    t0 = time.monotonic()
    deadline = t0 + float(within)
    attempts, err = 0, ""
    while True:
        attempts += 1
        try:
            got = echo_once(int(port), payload, timeout=10)
            if got == payload:
                print(json.dumps({"ok": True, "attempts": attempts, "elapsed_ms": (time.monotonic() - t0) * 1000,
                                  "error": ""}), flush=True)
                return
            err = f"got {len(got)} bytes back, want the {len(payload)} sent"
        except OSError as e:
            err = f"{type(e).__name__}: {e}"
        if time.monotonic() + 1 >= deadline:
            break
        time.sleep(1)
    print(json.dumps({"ok": False, "attempts": attempts, "elapsed_ms": (time.monotonic() - t0) * 1000,
                      "error": err}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "echo-client":
        raise SystemExit(f"usage: {sys.argv[0]} echo-client PORT PAYLOAD_HEX WITHIN_S")
    _echo_client(*sys.argv[2:])
