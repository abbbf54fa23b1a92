"""Checks that a NAT bed's gateways behave as their type says, with UDP probes.

From the inside host, one socket asks reflectors on pub1 and pub2 which address they see
(mapping: the same external port for both, and the socket's own port, unless symmetric);
miniupnpd on a gateway (+UPNP) must not change any of it (the probe's ports are not mapped);
another socket contacts pub1 only, then pub1 from another port and the stranger (the bridge's
own address, never contacted) send to its mapped address (filtering).

Run as a program it is the helpers that run inside the namespaces (`ip netns exec`):
    nat_probe.py reflector IP PORT
    nat_probe.py probe MAP_PORT FILTER_PORT IP:PORT[,IP:PORT…] FILTER_IP:PORT
    nat_probe.py send BIND_IP BIND_PORT TO_IP TO_PORT TEXT COUNT
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import selectors  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nat_bed import LANS, NAT_NAMES, BedError, NatBed  # noqa: E402

REFLECTOR_PORT = 3478
OTHER_PORT = 3479  # pub1's second source port for the filtering check

# What each NAT type must do:
#   same_port: pub1 and pub2 see the same external port for one inside socket
#   preserved: that port is the inside socket's own port (FC and RC rules rely on it)
#   other_port: a datagram from the contacted IP but another port gets in
#   stranger: a datagram from an IP never contacted gets in
# Beds that together probe every NAT type, alone and with miniupnpd beside it.
SELF_CHECK_BEDS = (("FC", "RC"), ("PRC", "SYM"), ("PRC+UPNP", "SYM+UPNP"))

EXPECTED = {
    "FC": dict(same_port=True, preserved=True, other_port=True, stranger=True),
    "RC": dict(same_port=True, preserved=True, other_port=True, stranger=False),
    "PRC": dict(same_port=True, preserved=True, other_port=False, stranger=False),
    "SYM": dict(same_port=False, preserved=None, other_port=False, stranger=False),
}


@dataclass
class NatProbe:
    side: str
    nat: str                # the NAT type (spec without +UPNP)
    spec: str               # the gateway as given, e.g. PRC+UPNP
    mapped: dict            # reflector -> external port seen for the mapping socket
    local_port: int         # the mapping socket's own port
    other_port: bool        # a datagram from pub1's other port reached the filtering socket
    stranger: bool          # a datagram from the stranger reached it
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
        return (f"side {self.side} {self.spec} ({NAT_NAMES[self.nat]}): local port {self.local_port}, mapped "
                f"{ports}; inbound from pub1's other port {'in' if self.other_port else 'dropped'}, from a "
                f"stranger {'in' if self.stranger else 'dropped'}")


def check_nat(bed: NatBed, side: str, base_port: int = 5000) -> NatProbe:
    """Probe side A's or B's gateway from its inside host and compare with EXPECTED; mismatches
    land in .problems. BedError when the probe itself could not run."""
    _gw, host, _lan = LANS[side]
    me = __file__
    reflectors = [bed.spawn(pub, f"reflector-{pub}", bed.helper_argv(me, "reflector", bed.pub_ips[pub], REFLECTOR_PORT))
                  for pub in ("pub1", "pub2")]
    try:
        for r in reflectors:
            r.wait_for(r"^ready", timeout=10, stream="stdout")
        targets = [f"{bed.pub_ips[p]}:{REFLECTOR_PORT}" for p in ("pub1", "pub2")]
        probe = bed.spawn(host, f"probe-{side}", bed.helper_argv(
            me, "probe", base_port, base_port + 1, ",".join(targets), targets[0]), stdin_pipe=True)
        first = probe.wait_for(r"^(\{.*\})$", timeout=15, stream="stdout")
        info = json.loads(first.group(1))
        fip, fport = info["filter_mapped"]
        senders = [
            bed.spawn("pub1", f"send-other-{side}",
                      bed.helper_argv(me, "send", bed.pub_ips["pub1"], OTHER_PORT, fip, fport, "other-port", 5)),
            bed.spawn("inet", f"send-stranger-{side}",
                      bed.helper_argv(me, "send", bed.stranger_ip, 40000, fip, fport, "stranger", 5)),
        ]
        for s in senders:
            if s.popen.wait(timeout=15) != 0:
                raise BedError(f"{s.name} failed: {s.stderr()[-400:]!r}")
        probe.popen.stdin.close()  # the senders are done: the probe drains a moment and exits
        if probe.popen.wait(timeout=15) != 0:
            raise BedError(f"{probe.name} failed: {probe.stderr()[-400:]!r}")
    finally:
        for r in reflectors:
            r.stop()
    got = [json.loads(line) for line in probe.stdout().splitlines()[1:] if line.startswith("{")]
    tags = {g["data"] for g in got}
    result = NatProbe(side=side, nat=bed.nat[side], spec=bed.spec[side], mapped={k: v[1] for k, v in info["mapped"].items()},
                      local_port=info["local_port"], other_port="other-port" in tags, stranger="stranger" in tags)
    seen = result.observed()
    for k, want in EXPECTED[result.nat].items():
        if want is not None and seen[k] != want:
            result.problems.append(f"{k}: want {want}, got {seen[k]}")
    return result


# --------------------------------------------------------------------------
# helper programs (run inside namespaces)

def _reflector(ip: str, port: str) -> None:
    """Answer each datagram with JSON {"seen": [src ip, src port]}."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    print("ready", flush=True)
    while True:
        _data, src = s.recvfrom(2048)
        s.sendto(json.dumps({"seen": list(src)}).encode(), src)


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


def _probe(map_port: str, filter_port: str, map_targets: str, filter_target: str) -> None:
    """The mapping socket asks each reflector in map_targets what it sees; the filtering socket
    asks filter_target only. Prints one JSON line with both, then one JSON line per datagram the
    filtering socket gets from anyone else, until half a second after stdin ends (the bed closes
    it once its senders are done; 15 s at most)."""
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


def _send(bind_ip: str, bind_port: str, to_ip: str, to_port: str, data: str, count: str) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, int(bind_port)))
    for _ in range(int(count)):
        s.sendto(data.encode(), (to_ip, int(to_port)))
        time.sleep(0.05)


_HELPERS = {"reflector": _reflector, "probe": _probe, "send": _send}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in _HELPERS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{'|'.join(_HELPERS)}}} ARGS…")
    _HELPERS[sys.argv[1]](*sys.argv[2:])
