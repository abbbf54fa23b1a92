"""A NAT test bed in network namespaces: topology, NAT rules, processes, teardown.

Topology (every namespace name starts with a per-run prefix, pgnat<pid>x<n>-, so parallel runs
never clash; links are created inside those namespaces, never in the caller's, so the names of
links need no prefix and the host's interfaces are never touched):

    inet   Linux bridge br0, 203.0.113.254/24 (also the "stranger" of the filtering probes)
     |- pub1  203.0.113.1   public punchgate node (no --bootstrap: public, relay server)
     |- pub2  203.0.113.2   second public node, so a NATed node's observed address has 2 reporters
     |- gwA   wan 203.0.113.11, lan 10.1.0.1   NAT type A --- hA 10.1.0.2 (provider)
     `- gwB   wan 203.0.113.12, lan 10.2.0.1   NAT type B --- hB 10.2.0.2 (consumer)

NAT types (nftables in the gateway, see nft_ruleset):
    FC   full cone: endpoint-independent mapping and filtering (masquerade keeps the port; any
         inbound UDP to a port is DNATed to the inside host)
    RC   address-restricted cone: endpoint-independent mapping; inbound allowed from any port of
         an IP that the mapping sent to
    PRC  port-restricted cone: endpoint-independent mapping; inbound only from the exact ip:port
         sent to (plain Linux conntrack + masquerade)
    SYM  symmetric: endpoint-dependent mapping (masquerade fully-random)
Every gateway drops unsolicited inbound traffic to itself (input: wan, ct state new), as home
routers do; otherwise an early punch packet would leave a conntrack entry on the gateway that
makes masquerade pick another port for the inside host's own flow.

A gateway may also run miniupnpd ("PRC+UPNP"): NAT-PMP and UPnP-IGD port mapping for the host
behind it. miniupnpd refuses reserved WAN addresses, so such a bed uses 11.22.33.0/24 instead
of 203.0.113.0/24 (nothing leaves the namespaces either way).

nat_probe.py checks that each type behaves so; nat_trial.py runs punchgate across the bed.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import atexit  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional, Sequence  # noqa: E402

NAT_TYPES = ("FC", "RC", "PRC", "SYM")
NAT_NAMES = {
    "FC": "full cone",
    "RC": "address-restricted cone",
    "PRC": "port-restricted cone",
    "SYM": "symmetric",
}

# The bed's "internet": RFC 5737 documentation addresses, except when a gateway runs miniupnpd,
# which refuses reserved WAN addresses (nothing leaves the namespaces either way; test_portmap
# uses the same range).
NET = "203.0.113"
NET_UPNP = "11.22.33"
LANS = {"A": ("gwA", "hA", "10.1.0"), "B": ("gwB", "hB", "10.2.0")}  # side: gateway ns, host ns, LAN /24


def parse_gateway(spec: str) -> tuple[str, bool]:
    """"PRC" or "PRC+UPNP" (miniupnpd on the gateway, NAT-PMP and UPnP-IGD): (NAT type, upnp)."""
    base, _, extra = spec.upper().partition("+")
    if base not in NAT_TYPES or extra not in ("", "UPNP"):
        raise BedError(f"unknown gateway {spec!r}: want one of {', '.join(NAT_TYPES)}, optionally with +UPNP")
    return base, extra == "UPNP"


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


def run_cmd(argv: Sequence[str], input: Optional[str] = None, timeout: float = 20) -> str:
    r = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BedError(f"`{' '.join(map(str, argv))}` exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def nft_ruleset(nat: str, lan_host: str) -> str:
    """The gateway's nftables table for one NAT type (wan/lan are the interface names)."""
    if nat not in NAT_TYPES:
        raise BedError(f"unknown NAT type {nat!r} (expected one of {', '.join(NAT_TYPES)})")
    pre, extra_chains, sets = [], [], []
    # Linux masquerade keeps the inside port whenever the translated tuple stays unique, so with
    # one inside host the mapping is endpoint-independent; fully-random draws a port per flow.
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


# The chains miniupnpd fills (Debian's nft_init.sh needs a helper it does not ship). No
# masquerade here: the natbed table does that.
MINIUPNPD_TABLE = """table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
"""

MINIUPNPD_CONF = """ext_ifname=wan
listening_ip=lan
http_port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
lease_file={leases}
allow 1024-65535 {lan}.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""


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
        self._killed = False

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
            text = {"stderr": self.stderr, "stdout": self.stdout}.get(stream, lambda: self.stdout() + self.stderr())()
            m = rx.search(text)
            if m:
                return m
            if exited:
                raise BedError(f"{self.name} exited (rc={self.popen.returncode}) without /{pattern}/; "
                               f"stderr tail: {self.stderr()[-600:]!r}")
            if time.monotonic() >= deadline:
                raise BedError(f"timed out after {timeout:.0f}s waiting for /{pattern}/ from {self.name}")
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            _killpg(self.pid, sig)

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the group, then SIGKILL what is left."""
        if self.popen.poll() is None:
            _killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL the group, once: after that its id may belong to someone else."""
        if self._killed:
            return
        self._killed = True
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
        live = len(_LIVE_BEDS)
        teardown_all()
        print(f"nat bed: {signal.Signals(signum).name}, {live} bed(s) torn down", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


class NatBed:
    """Namespaces, links and NAT rules for one pair of NAT types; processes run inside it.

    Use as a context manager (or call build() and teardown()); teardown kills every process in
    the bed's namespaces and deletes them, and is idempotent."""

    NAMESPACES = ("inet", "pub1", "pub2", "gwA", "hA", "gwB", "hB")

    def __init__(self, gw_a: str, gw_b: str, workdir: Path | str,
                 on_spawn: Optional[Callable[[BedProc], None]] = None):
        """gw_a, gw_b: the gateways' types, "FC", "RC", "PRC" or "SYM", each optionally "+UPNP"."""
        self.spec = {"A": gw_a.upper(), "B": gw_b.upper()}
        parsed = {side: parse_gateway(spec) for side, spec in self.spec.items()}
        self.nat = {side: p[0] for side, p in parsed.items()}
        self.upnp = {side: p[1] for side, p in parsed.items()}
        net = NET_UPNP if any(self.upnp.values()) else NET
        self.pub_ips = {"pub1": f"{net}.1", "pub2": f"{net}.2"}
        self.stranger_ip = f"{net}.254"
        self.wan_ips = {"A": f"{net}.11", "B": f"{net}.12"}
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
        run_cmd(["ip", "-n", self.ns(ns), *args])

    def _sysctl(self, ns: str, *settings: str) -> None:
        self.run(ns, ["sysctl", "-q", "-w", *settings])

    def _build(self) -> None:
        for short in self.NAMESPACES:
            self._created.append(short)  # first: a signal right after the add must not leak it
            run_cmd(["ip", "netns", "add", self.ns(short)])
            self._ip(short, "link", "set", "lo", "up")
            # IPv4 only: no link-local v6 chatter, no v6 addresses in identify
            self._sysctl(short, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self._ip("inet", "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self._ip("inet", "addr", "add", f"{self.stranger_ip}/24", "dev", "br0")
        self._ip("inet", "link", "set", "br0", "up")
        wan = dict(self.pub_ips)
        for side, (gw, _host, _lan) in LANS.items():
            wan[gw] = self.wan_ips[side]
        for short, ip in wan.items():
            # Made inside inet with the peer put straight into the node's namespace: nothing is
            # ever created in the caller's namespace, so no temporary names are needed.
            port = f"p-{short}"
            self._ip("inet", "link", "add", port, "type", "veth", "peer", "name", "wan", "netns", self.ns(short))
            self._ip("inet", "link", "set", port, "master", "br0", "up")
            self._ip(short, "addr", "add", f"{ip}/24", "dev", "wan")
            self._ip(short, "link", "set", "wan", "up")
        for side, (gw, host, lan) in LANS.items():
            self._ip(gw, "link", "add", "lan", "type", "veth", "peer", "name", "lan", "netns", self.ns(host))
            self._ip(gw, "addr", "add", f"{lan}.1/24", "dev", "lan")
            self._ip(gw, "link", "set", "lan", "up")
            self._ip(host, "addr", "add", f"{lan}.2/24", "dev", "lan")
            self._ip(host, "link", "set", "lan", "up")
            self._ip(host, "route", "add", "default", "via", f"{lan}.1")
            self._sysctl(gw, "net.ipv4.ip_forward=1")
            rules = nft_ruleset(self.nat[side], f"{lan}.2")
            (self.workdir / f"{gw}-{self.nat[side]}.nft").write_text(rules)  # for whoever reads the logs
            self.run(gw, ["nft", "-f", "-"], input=rules)
            if self.upnp[side]:
                self._start_miniupnpd(side)

    def _start_miniupnpd(self, side: str) -> None:
        """miniupnpd (NAT-PMP and UPnP-IGD) on the gateway, filling chains of its own table; the
        natbed table's masquerade and rules stay as they are."""
        gw, _host, lan = LANS[side]
        binary = shutil.which("miniupnpd")
        if not binary:
            raise BedError("a +UPNP gateway needs miniupnpd (Debian package miniupnpd-nftables; ./scripts/deps.sh)")
        self.run(gw, ["nft", "-f", "-"], input=MINIUPNPD_TABLE)
        conf = self.workdir / f"{gw}-miniupnpd.conf"
        conf.write_text(MINIUPNPD_CONF.format(lan=lan, leases=self.workdir / f"{gw}-miniupnpd.leases"))
        p = self.spawn(gw, f"miniupnpd-{gw}", [binary, "-f", conf, "-P", self.workdir / f"{gw}-miniupnpd.pid", "-d"])
        p.wait_for(r"Listening for NAT-PMP", timeout=20, stream="both")

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

    def run(self, ns: str, argv: Sequence, input: Optional[str] = None, timeout: float = 20) -> str:
        """Run argv to completion inside namespace `ns`; its stdout, or BedError."""
        return run_cmd(["ip", "netns", "exec", self.ns(ns), *argv], input=input, timeout=timeout)

    @staticmethod
    def helper_argv(module_file: str, *args) -> list[str]:
        """argv running one of our python helper modules as a program (inside a namespace)."""
        return [sys.executable, "-B", str(Path(module_file).resolve()), *map(str, args)]

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
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.popen.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        # Whatever is still inside (children of ours included) dies with its namespace's pids.
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
