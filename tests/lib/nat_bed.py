"""A NAT test bed in network namespaces, and punchgate trials across it.

Topology (every namespace name starts with a per-run prefix, so parallel runs never clash; links
are created inside those namespaces, never in the caller's):

    inet   Linux bridge br0, 203.0.113.254/24 (also the "stranger" for filtering probes)
     ├─ pub1  203.0.113.1   public punchgate node (no --bootstrap: public, relay server)
     ├─ pub2  203.0.113.2   second public node, so a NATed node's observed address has 2 reporters
     ├─ gwA   wan 203.0.113.11, lan 10.1.0.1  NAT type A ── hA 10.1.0.2 (provider)
     └─ gwB   wan 203.0.113.12, lan 10.2.0.1  NAT type B ── hB 10.2.0.2 (consumer)

NAT types (nftables in the gateway):
    FC   full cone: endpoint-independent mapping and filtering (masquerade keeps the port; any
         inbound UDP to a port is DNATed to the inside host)
    RC   address-restricted cone: EIM; inbound allowed from any port of an IP that mapping sent to
    PRC  port-restricted cone: EIM; inbound only from the exact ip:port sent to (Linux conntrack)
    SYM  symmetric: endpoint-dependent mapping (masquerade fully-random)
Every gateway drops unsolicited inbound traffic to itself (input: wan, ct state new), as home
routers do; otherwise an early punch packet would leave a conntrack entry on the gateway that
makes masquerade pick another port for the inside host's own flow.

Run as a program this file holds the small helpers that must run inside a namespace (UDP
reflector, probe and sender, echo client); the bed starts them with `ip netns exec`.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import atexit  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional, Sequence  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# The harness' echo server and client; importing it also installs its signal handlers (kill its
# processes, then SystemExit), so import it here, before a caller installs ours.
from punchgate_helpers import echo_once, echo_server_argv  # noqa: E402

NAT_TYPES = ("FC", "RC", "PRC", "SYM")
NAT_NAMES = {
    "FC": "full cone",
    "RC": "address-restricted cone",
    "PRC": "port-restricted cone",
    "SYM": "symmetric",
}

NET = "203.0.113"
STRANGER_IP = f"{NET}.254"
PUB_IPS = {"pub1": f"{NET}.1", "pub2": f"{NET}.2"}
GATEWAYS = {
    # side: (gateway ns, host ns, WAN ip, LAN prefix)
    "A": ("gwA", "hA", f"{NET}.11", "10.1.0"),
    "B": ("gwB", "hB", f"{NET}.12", "10.2.0"),
}
NODE_PORT = 4001
REFLECTOR_PORTS = (3478, 3479)
TUNNEL_PORT = 7000  # the consumer's local tunnel port, inside hB

# What each NAT type must do in the probe (see check_nat):
#   same_port: pub1 and pub2 see the same external port for one inside socket
#   preserved: that port is the inside socket's own port
#   other_port: a datagram from the contacted IP but another port gets in
#   stranger: a datagram from an IP never contacted gets in
EXPECTED = {
    "FC": dict(same_port=True, preserved=True, other_port=True, stranger=True),
    "RC": dict(same_port=True, preserved=True, other_port=True, stranger=False),
    "PRC": dict(same_port=True, preserved=True, other_port=False, stranger=False),
    "SYM": dict(same_port=False, preserved=None, other_port=False, stranger=False),
}


class BedError(RuntimeError):
    """Building, probing or driving the bed failed (a setup problem, not a test verdict)."""


def preflight() -> Optional[str]:
    """Why this machine cannot run the bed, or None."""
    if os.geteuid() != 0:
        return "the NAT test bed needs root (network namespaces, veth, nftables)"
    missing = [t for t in ("ip", "nft", "sysctl") if not shutil.which(t)]
    if missing:
        return f"missing {', '.join(missing)} (iproute2, nftables, procps; ./scripts/deps.sh installs them)"
    return None


def _run(argv: Sequence[str], input: Optional[str] = None, timeout: float = 20) -> str:
    r = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BedError(f"`{' '.join(map(str, argv))}` exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def nft_ruleset(nat: str, lan_host: str) -> str:
    """The gateway's nftables table for one NAT type (wan/lan are the interface names)."""
    if nat not in NAT_TYPES:
        raise BedError(f"unknown NAT type {nat!r} (expected one of {', '.join(NAT_TYPES)})")
    pre, extra_chains, sets = [], [], []
    masq = "masquerade fully-random" if nat == "SYM" else "masquerade persistent"
    if nat == "FC":
        # Ports are kept (single inside host, no clashes), so the mapped port is the inside port.
        pre.append(f'iifname "wan" udp dport 1024-65535 dnat to {lan_host}')
    if nat == "RC":
        # (remote ip . external port) of every datagram the inside host sent out; inbound from that
        # ip, any source port, to that external port is let in.
        sets.append("set contacted { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 3m; }")
        pre.append(f'iifname "wan" ip saddr . udp dport @contacted dnat to {lan_host}')
        # After srcnat, so the source port is the mapped one.
        extra_chains.append(
            "chain remember { type filter hook postrouting priority srcnat + 10; policy accept;\n"
            '    oifname "wan" meta l4proto udp update @contacted { ip daddr . udp sport }\n  }')
    lines = ["table ip natbed {"]
    lines += [f"  {s}" for s in sets]
    lines.append("  chain prerouting { type nat hook prerouting priority dstnat; policy accept;")
    lines += [f"    {r}" for r in pre]
    lines.append("  }")
    lines.append("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;")
    lines.append(f'    oifname "wan" {masq}')
    lines.append("  }")
    lines.append("  chain input { type filter hook input priority filter; policy accept;")
    lines.append('    iifname "wan" ct state new drop')
    lines.append("  }")
    lines += [f"  {c}" for c in extra_chains]
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# processes inside the bed

class BedProc:
    """A process started with `ip netns exec`, in its own session, output in files."""

    def __init__(self, name: str, ns: str, argv: Sequence[str], workdir: Path, env: Optional[dict] = None,
                 base_env: Optional[dict] = None, stdin_pipe: bool = False):
        self.name = name
        self.ns = ns
        self.argv = ["ip", "netns", "exec", ns, *map(str, argv)]
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        full_env = dict(os.environ if base_env is None else base_env)
        full_env.setdefault("NO_COLOR", "1")
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                                          stdout=out, stderr=err, env=full_env, start_new_session=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, pattern: str, timeout: float, stream: str = "stderr") -> re.Match:
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.popen.poll() is not None
            m = rx.search(self.stderr() if stream == "stderr" else self.stdout())
            if m:
                return m
            if exited:
                raise BedError(f"{self.name} exited (rc={self.popen.returncode}) without /{pattern}/; "
                               f"stderr tail: {self.stderr()[-600:]!r}")
            if time.monotonic() >= deadline:
                raise BedError(f"timed out after {timeout:.0f}s waiting for /{pattern}/ from {self.name}")
            time.sleep(0.05)

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the group, then SIGKILL what is left."""
        if self.popen.poll() is None:
            _killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    terminate = stop  # the harness' Proc interface (Harness.cleanup)

    def tail(self, n: int = 30) -> str:
        out = [f"----- {self.name} in {self.ns}: {' '.join(self.argv[4:])} (rc={self.popen.poll()})"]
        for label, text in (("stdout", self.stdout()), ("stderr", self.stderr())):
            lines = text.splitlines()
            if lines:
                out.append(f"  [{label}, last {min(n, len(lines))} of {len(lines)} lines]")
                out += lines[-n:]
        return "\n".join(out)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------
# the bed

_LIVE_BEDS: list["NatBed"] = []
_counter = itertools.count()


def teardown_all() -> None:
    for bed in list(_LIVE_BEDS):
        bed.teardown()


atexit.register(teardown_all)


def install_signal_teardown() -> None:
    """SIGINT/SIGTERM/SIGHUP tear every live bed down, then exit via SystemExit (so finally
    blocks run too)."""
    def on_signal(signum, _frame):
        teardown_all()
        raise SystemExit(128 + signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


class NatBed:
    """Namespaces, links and NAT rules for one pair of NAT types; processes run inside it.

    Use as a context manager (or call build() and teardown()); teardown kills every process in
    the bed's namespaces and deletes them, and is idempotent."""

    NAMESPACES = ("inet", "pub1", "pub2", "gwA", "hA", "gwB", "hB")

    def __init__(self, nat_a: str, nat_b: str, workdir: Path | str,
                 on_spawn: Optional[Callable[[BedProc], None]] = None):
        for n in (nat_a, nat_b):
            if n not in NAT_TYPES:
                raise BedError(f"unknown NAT type {n!r} (expected one of {', '.join(NAT_TYPES)})")
        self.nat = {"A": nat_a, "B": nat_b}
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # pgnat<pid>x<n>-: unique per process and bed; the pid lets stale-bed cleanup skip live runs
        self.prefix = f"pgnat{os.getpid()}x{next(_counter)}-"
        self.procs: list[BedProc] = []
        self.on_spawn = on_spawn
        self._names: dict[str, int] = {}
        self._created: list[str] = []
        self._down = False

    def ns(self, short: str) -> str:
        return self.prefix + short

    def __enter__(self) -> "NatBed":
        self.build()
        return self

    def __exit__(self, *exc) -> bool:
        self.teardown()
        return False

    # -- building ---------------------------------------------------------
    def build(self) -> "NatBed":
        _LIVE_BEDS.append(self)
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def _ip(self, ns: str, *args) -> None:
        _run(["ip", "-n", self.ns(ns), *args])

    def _sysctl(self, ns: str, *settings: str) -> None:
        _run(["ip", "netns", "exec", self.ns(ns), "sysctl", "-q", "-w", *settings])

    def _build(self) -> None:
        for short in self.NAMESPACES:
            _run(["ip", "netns", "add", self.ns(short)])
            self._created.append(short)
            self._ip(short, "link", "set", "lo", "up")
            # IPv4 only: no link-local v6 chatter, no v6 addresses in identify
            self._sysctl(short, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self._ip("inet", "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self._ip("inet", "addr", "add", f"{STRANGER_IP}/24", "dev", "br0")
        self._ip("inet", "link", "set", "br0", "up")
        wan = dict(PUB_IPS)
        for side, (gw, _host, wan_ip, _lan) in GATEWAYS.items():
            wan[gw] = wan_ip
        for short, ip in wan.items():
            # Made inside inet with the peer put straight into the node's namespace: nothing is
            # ever created in the caller's namespace, so no temporary names are needed.
            port = f"p-{short}"
            self._ip("inet", "link", "add", port, "type", "veth", "peer", "name", "wan", "netns", self.ns(short))
            self._ip("inet", "link", "set", port, "master", "br0", "up")
            self._ip(short, "addr", "add", f"{ip}/24", "dev", "wan")
            self._ip(short, "link", "set", "wan", "up")
        for side, (gw, host, _wan_ip, lan) in GATEWAYS.items():
            self._ip(gw, "link", "add", "lan", "type", "veth", "peer", "name", "lan", "netns", self.ns(host))
            self._ip(gw, "addr", "add", f"{lan}.1/24", "dev", "lan")
            self._ip(gw, "link", "set", "lan", "up")
            self._ip(host, "addr", "add", f"{lan}.2/24", "dev", "lan")
            self._ip(host, "link", "set", "lan", "up")
            self._ip(host, "route", "add", "default", "via", f"{lan}.1")
            self._sysctl(gw, "net.ipv4.ip_forward=1")
            _run(["ip", "netns", "exec", self.ns(gw), "nft", "-f", "-"],
                 input=nft_ruleset(self.nat[side], f"{lan}.2"))

    # -- processes ----------------------------------------------------------
    def spawn(self, ns: str, name: str, argv: Sequence, env: Optional[dict] = None,
              base_env: Optional[dict] = None, stdin_pipe: bool = False) -> BedProc:
        """Start argv in namespace `ns`; env is added to base_env (default: ours)."""
        if self._down:
            raise BedError("bed is torn down")
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        p = BedProc(name if n == 0 else f"{name}-{n}", self.ns(ns), argv, self.workdir, env=env, base_env=base_env,
                    stdin_pipe=stdin_pipe)
        self.procs.append(p)
        if self.on_spawn:
            self.on_spawn(p)
        return p

    def run(self, ns: str, argv: Sequence, timeout: float = 30) -> str:
        """Run to completion inside `ns`; stdout, or BedError."""
        return _run(["ip", "netns", "exec", self.ns(ns), *argv], timeout=timeout)

    def helper_argv(self, *args) -> list[str]:
        return [sys.executable, "-B", str(Path(__file__).resolve()), *map(str, args)]

    # -- teardown -----------------------------------------------------------
    def teardown(self) -> None:
        if self._down:
            return
        self._down = True
        # A second Ctrl-C must not cut the teardown short: signals wait until it is done.
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            self._teardown()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _teardown(self) -> None:
        for p in self.procs:
            if p.alive():
                _killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.popen.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _killpg(p.pid, signal.SIGKILL)
        for short in reversed(self._created):
            kill_namespace_pids(self.ns(short))
        for short in reversed(self._created):
            subprocess.run(["ip", "netns", "del", self.ns(short)], capture_output=True, timeout=20)
        for p in self.procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self in _LIVE_BEDS:
            _LIVE_BEDS.remove(self)

    def dump(self, n: int = 30, file=sys.stdout) -> None:
        for p in self.procs:
            print(p.tail(n), file=file)


def kill_namespace_pids(ns: str) -> None:
    """SIGKILL every process still inside namespace `ns` (also ones our own children left)."""
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=20)
    for tok in r.stdout.split():
        if tok.isdigit() and int(tok) != os.getpid():
            try:
                os.kill(int(tok), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def list_namespaces() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def stale_namespaces() -> list[str]:
    """Namespaces of beds whose creating process is gone (a run killed with SIGKILL)."""
    out = []
    for ns in list_namespaces():
        m = re.match(r"pgnat(\d+)x\d+-", ns)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            out.append(ns)
    return out


def remove_stale() -> list[str]:
    gone = stale_namespaces()
    for ns in gone:
        kill_namespace_pids(ns)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
    return gone


# --------------------------------------------------------------------------
# NAT behaviour probe

@dataclass
class NatProbe:
    side: str
    nat: str
    mapped: dict            # reflector -> external port seen for the mapping socket
    local_port: int         # the mapping socket's own port
    other_port: bool        # datagram from pub1's other port reached the filter socket
    stranger: bool          # datagram from the stranger reached it
    problems: list = field(default_factory=list)

    @property
    def same_port(self) -> bool:
        return len(set(self.mapped.values())) == 1

    @property
    def preserved(self) -> bool:
        return self.same_port and self.local_port in self.mapped.values()

    def observed(self) -> dict:
        return dict(same_port=self.same_port, preserved=self.preserved, other_port=self.other_port,
                    stranger=self.stranger)

    def describe(self) -> str:
        ports = ", ".join(f"{k}={v}" for k, v in sorted(self.mapped.items()))
        return (f"side {self.side} {self.nat:>3}: local port {self.local_port}, mapped {ports}; inbound from "
                f"pub1's other port {'in' if self.other_port else 'dropped'}, from a stranger "
                f"{'in' if self.stranger else 'dropped'}")


def check_nat(bed: NatBed, side: str, base_port: int = 5000) -> NatProbe:
    """Probe side A's or B's gateway from its inside host: mapping (one socket to pub1 and pub2)
    and filtering (another socket contacts pub1:3478 only; then pub1:3479 and the stranger send
    to its mapped address). Compares with EXPECTED; mismatches land in .problems."""
    gw, host, _wan, _lan = GATEWAYS[side]
    reflectors = []
    for pub in ("pub1", "pub2"):
        r = bed.spawn(pub, f"reflector-{pub}", bed.helper_argv("udp-reflector", PUB_IPS[pub], *REFLECTOR_PORTS))
        reflectors.append(r)
    for r in reflectors:
        r.wait_for(r"^ready", timeout=10, stream="stdout")
    targets = [f"{PUB_IPS['pub1']}:{REFLECTOR_PORTS[0]}", f"{PUB_IPS['pub2']}:{REFLECTOR_PORTS[0]}"]
    probe = bed.spawn(host, f"probe-{side}", bed.helper_argv(
        "udp-probe", base_port, base_port + 1, ",".join(targets), targets[0]), stdin_pipe=True)
    first = probe.wait_for(r"^(\{.*\})$", timeout=15, stream="stdout")
    info = json.loads(first.group(1))
    fip, fport = info["filter_mapped"]
    senders = [
        bed.spawn("pub1", f"send-other-{side}", bed.helper_argv(
            "udp-send", PUB_IPS["pub1"], REFLECTOR_PORTS[1] + 10, fip, fport, "other-port", 5)),
        bed.spawn("inet", f"send-stranger-{side}", bed.helper_argv(
            "udp-send", STRANGER_IP, 40000, fip, fport, "stranger", 5)),
    ]
    for s in senders:
        if s.popen.wait(timeout=15) != 0:
            raise BedError(f"{s.name} failed: {s.stderr()[-400:]!r}")
    probe.popen.stdin.close()  # the senders are done: the probe drains a moment and exits
    if probe.popen.wait(timeout=15) != 0:
        raise BedError(f"{probe.name} failed: {probe.stderr()[-400:]!r}")
    for r in reflectors:
        r.stop()
    got = [json.loads(line) for line in probe.stdout().splitlines()[1:] if line.startswith("{")]
    tags = {g["data"] for g in got}
    result = NatProbe(side=side, nat=bed.nat[side], mapped={k: v[1] for k, v in info["mapped"].items()},
                      local_port=info["local_port"], other_port="other-port" in tags, stranger="stranger" in tags)
    want = EXPECTED[result.nat]
    seen = result.observed()
    for k, v in want.items():
        if v is not None and seen[k] != v:
            result.problems.append(f"{k}: want {v}, got {seen[k]}")
    return result


# --------------------------------------------------------------------------
# punchgate nodes and trials

def identity(punchgate: str, path: Path) -> str:
    """Create (or read) an identity file with `punchgate id` (touches no network); its peer id."""
    out = _run([punchgate, "--identity", str(path), "id"]).strip()
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
MAPPING_RX = re.compile(r"nat mapping detected (mapping=\S+.*)$", re.M)


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
    mapping_lines: list = field(default_factory=list)
    why: str = ""
    error: str = ""

    @property
    def pair(self) -> str:
        return f"{self.nat_a}:{self.nat_b}"

    def summary(self) -> str:
        ttd = f"{self.time_to_direct_ms:.0f} ms" if self.time_to_direct_ms is not None else "-"
        s = (f"{self.pair:>8}  {'direct ' if self.direct else 'relayed'}  to-direct {ttd:>8}  final {self.final:<7}"
             f"  echo {'ok' if self.echo_ok else 'FAIL'}/{'ok' if self.echo_after_ok else 'FAIL'}")
        if self.why:
            s += f"  why={self.why!r}"
        if self.error:
            s += f"  error={self.error}"
        return s


def echo_payload(tag: str) -> bytes:
    return (f"punchgate nat bed {tag} ".encode() * 64)[:4096]


def run_trial(bed: NatBed, punchgate: str, extra_args: Sequence[str] = (), direct_within: float = 30.0,
              poll: float = 0.1, stop_when_direct: bool = True, log: Callable[[str], None] = lambda s: None
              ) -> TrialResult:
    """One provider (hA, exposing a TCP echo) / consumer (hB, tunnel to it) run on a built bed.

    Starts pub1 and pub2, waits for them to listen, starts the echo service and the provider
    (bootstrapping to both public nodes), waits for its first relay reservation, then starts
    the consumer; time to direct counts from the consumer's start. The echo runs (retried while
    the tunnel comes up) in the background while the consumer's control socket is polled every
    `poll` s for the provider's connection. The trial ends when the connection is direct (if
    stop_when_direct) or after `direct_within` s; a second echo then checks the final path."""
    res = TrialResult(bed.nat["A"], bed.nat["B"])
    extra = list(extra_args)
    pubs = {}
    for pub in ("pub1", "pub2"):
        listen = f"/ip4/{PUB_IPS[pub]}/udp/{NODE_PORT}/quic-v1"
        n = start_node(bed, punchgate, pub, pub, *extra, listen=listen)
        n.addr = f"{listen}/p2p/{n.peer_id}"
        pubs[pub] = n
    for n in pubs.values():
        n.proc.wait_for(r"listening on " + re.escape(n.addr.split("/p2p/")[0]), timeout=20)
    boot = []
    for n in pubs.values():
        boot += ["--bootstrap", n.addr]
    listen_any = f"/ip4/0.0.0.0/udp/{NODE_PORT}/quic-v1"

    echo = bed.spawn("hA", "echo-server", echo_server_argv())
    echo_port = int(echo.wait_for(r"^port (\d+)", timeout=15, stream="stdout").group(1))
    provider = start_node(bed, punchgate, "hA", "provider", *boot, "--expose", f"echo=127.0.0.1:{echo_port}",
                          *extra, listen=listen_any)
    provider.proc.wait_for(r"relay reservation accepted relay=", timeout=30)
    log(f"  provider {provider.peer_id} reserved; starting consumer")

    consumer = start_node(bed, punchgate, "hB", "consumer", *boot,
                          "--tunnel", f"{provider.peer_id}:echo@127.0.0.1:{TUNNEL_PORT}", *extra, listen=listen_any)
    t0 = consumer.proc.started
    consumer.proc.wait_for(r"tunnel listening bind=127\.0\.0\.1:" + str(TUNNEL_PORT) + " ", timeout=20)
    payload = echo_payload(res.pair)
    echo1 = bed.spawn("hB", "echo-client", bed.helper_argv("echo-client", TUNNEL_PORT, payload.hex(), direct_within))

    ctl = ControlClient(consumer.sock)
    deadline = t0 + direct_within
    try:
        while time.monotonic() < deadline:
            peers = ctl.call("peers")
            if peers is not None:
                mine = [p for p in peers.get("peers", []) if p.get("peer_id") == provider.peer_id]
                if any(p.get("connection") == "direct" for p in mine):
                    res.final = "direct"
                    if not res.direct:
                        res.direct = True
                        res.time_to_direct_ms = (time.monotonic() - t0) * 1000
                        log(f"  direct after {res.time_to_direct_ms:.0f} ms")
                elif mine:
                    res.final = "relayed"
                else:
                    res.final = "none"
                if mine:
                    res.why = "; ".join(sorted({str(p.get("why", "")) for p in mine}))
            if not consumer.proc.alive() or not provider.proc.alive():
                res.error = "a node died: " + ", ".join(
                    f"{n.proc.name} rc={n.proc.popen.poll()}" for n in (provider, consumer) if not n.proc.alive())
                break
            if res.direct and stop_when_direct and echo1.popen.poll() is not None:
                break
            time.sleep(poll)
        try:
            echo1.popen.wait(timeout=max(1.0, deadline - time.monotonic()) + 20)
        except subprocess.TimeoutExpired:
            echo1.stop()
        r1 = _echo_result(echo1)
        res.echo_ok = bool(r1.get("ok"))
        res.echo_time_ms = r1.get("elapsed_ms")
        if not res.echo_ok and not res.error:
            res.error = f"echo: {r1.get('error') or 'no result'}"
        echo2 = bed.spawn("hB", "echo-client", bed.helper_argv("echo-client", TUNNEL_PORT, payload.hex(), 15))
        try:
            echo2.popen.wait(timeout=40)
        except subprocess.TimeoutExpired:
            echo2.stop()
        r2 = _echo_result(echo2)
        res.echo_after_ok = bool(r2.get("ok"))
        # the final state, once more after the second echo
        peers = ctl.call("peers")
        if peers is not None:
            mine = [p for p in peers.get("peers", []) if p.get("peer_id") == provider.peer_id]
            res.final = "direct" if any(p.get("connection") == "direct" for p in mine) else (
                "relayed" if mine else "none")
            if mine:
                res.why = "; ".join(sorted({str(p.get("why", "")) for p in mine}))
    finally:
        ctl.close()
    for n, who in ((provider, "A"), (consumer, "B")):
        text = n.proc.stderr()
        for m in PUNCH_RX.finditer(text):
            res.punch_lines.append(f"{who}: hole punch {m.group(1)} {m.group(2)}")
        for m in MAPPING_RX.finditer(text):
            res.mapping_lines.append(f"{who}: nat mapping detected {m.group(1)}")
    return res


def _echo_result(p: BedProc) -> dict:
    for line in reversed(p.stdout().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {"ok": False, "error": f"echo client rc={p.popen.poll()} stderr={p.stderr()[-300:]!r}"}


def run_pair(nat_a: str, nat_b: str, punchgate: str, workroot: Path, trials: int = 1, **kw) -> list[TrialResult]:
    """`trials` trials, each on a freshly built bed (no conntrack or node state carried over)."""
    out = []
    for i in range(trials):
        wd = workroot / f"{nat_a}-{nat_b}-{i + 1}"
        with NatBed(nat_a, nat_b, wd) as bed:
            try:
                out.append(run_trial(bed, punchgate, **kw))
            except BedError as e:
                r = TrialResult(nat_a, nat_b, error=f"setup: {e}")
                out.append(r)
    return out


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


def markdown_matrix(results: dict) -> str:
    """results: (nat_a, nat_b) -> [TrialResult]. Rows: provider NAT (A), columns: consumer NAT (B)."""
    cols = [b for b in NAT_TYPES if any(k[1] == b for k in results)]
    rows = [a for a in NAT_TYPES if any(k[0] == a for k in results)]
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
# helper programs (run inside namespaces)

def _udp_reflector(ip: str, *ports: str) -> None:
    """Answer each datagram with JSON {"seen": [src ip, src port]} from the socket it came in on."""
    import selectors
    sel = selectors.DefaultSelector()
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, int(p)))
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            data, src = key.fileobj.recvfrom(2048)
            key.fileobj.sendto(json.dumps({"seen": list(src)}).encode(), src)


def _ask(s: socket.socket, target: tuple, tries: int = 5) -> Optional[list]:
    """Send to a reflector until it answers; the address it saw."""
    s.settimeout(0.4)
    for _ in range(tries):
        s.sendto(b"probe", target)
        try:
            while True:
                data, src = s.recvfrom(2048)
                if src == target:
                    return json.loads(data)["seen"]
        except socket.timeout:
            continue
    return None


def _addr(text: str) -> tuple:
    ip, port = text.rsplit(":", 1)
    return ip, int(port)


def _udp_probe(map_port: str, filter_port: str, map_targets: str, filter_target: str) -> None:
    """Mapping socket (map_port) asks each reflector in map_targets what it sees; filtering socket
    (filter_port) asks filter_target only. Prints one JSON line with both, then one JSON line per
    datagram the filtering socket receives from anyone else, until half a second after stdin
    ends (the bed closes it once its senders are done; 15 s at most)."""
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    m.bind(("0.0.0.0", int(map_port)))
    mapped = {}
    for t in map_targets.split(","):
        seen = _ask(m, _addr(t))
        if seen is None:
            raise SystemExit(f"no answer from reflector {t}")
        mapped[t] = seen
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    f.bind(("0.0.0.0", int(filter_port)))
    ft = _addr(filter_target)
    fseen = _ask(f, ft)
    if fseen is None:
        raise SystemExit(f"no answer from reflector {filter_target}")
    print(json.dumps({"local_port": int(map_port), "mapped": mapped, "filter_mapped": fseen}), flush=True)
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(f, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    end = time.monotonic() + 15
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            if key.fileobj is sys.stdin:
                if not sys.stdin.readline():
                    sel.unregister(sys.stdin)
                    end = min(end, time.monotonic() + 0.5)
                continue
            data, src = f.recvfrom(2048)
            if src != ft:  # else a late reflector answer
                print(json.dumps({"from": list(src), "data": data.decode(errors="replace")}), flush=True)


def _udp_send(bind_ip: str, bind_port: str, to_ip: str, to_port: str, data: str, count: str) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, int(bind_port)))
    for _ in range(int(count)):
        s.sendto(data.encode(), (to_ip, int(to_port)))
        time.sleep(0.05)


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


_HELPERS = {
    "udp-reflector": _udp_reflector,
    "udp-probe": _udp_probe,
    "udp-send": _udp_send,
    "echo-client": _echo_client,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in _HELPERS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{'|'.join(_HELPERS)}}} ARGS…")
    _HELPERS[sys.argv[1]](*sys.argv[2:])
