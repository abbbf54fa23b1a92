#!/usr/bin/env python3
"""NAT traversal end to end: punchgate across emulated NATs (tests/lib/nat_bed.py).

Each test builds its own bed of network namespaces (prefix pgnat<pid>x<n>-): two public nodes
(relays), and a provider (hA, exposing a TCP echo) and a consumer (hB, tunnelling to it) behind
gateways gwA and gwB whose nftables rules make them full cone (FC), address-restricted cone (RC),
port-restricted cone (PRC) or symmetric (SYM) NATs. The bed is deleted, with every process in it,
whatever happens. Needs root, iproute2 and nftables; without them every test fails (never skips).

  - the gateways behave as their NAT type says (UDP probes: mapping seen by two reflectors,
    inbound filtering from the contacted IP's other port and from a stranger), and the bed leaves
    nothing behind
  - PRC <-> PRC: hole punching makes the connection direct; the echo passes
  - SYM <-> SYM: no punch can work, the connection stays relayed; the echo passes over the relay
  - FC <-> SYM: direct (the symmetric side's dial gets through the full cone); the echo passes
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.dont_write_bytecode = True

import nat_bed  # noqa: E402
from nat_bed import NatBed  # noqa: E402
from punchgate_harness import check, main  # noqa: E402
from punchgate_helpers import check_punchgate_binary, isolate_env  # noqa: E402

DIRECT_WITHIN = 30.0  # seconds from the consumer's start


def bed_for(h, nat_a: str, nat_b: str) -> NatBed:
    """A bed whose processes the harness knows (their logs are dumped when a test fails)."""
    return NatBed(nat_a, nat_b, Path(h.tmpdir) / f"bed-{nat_a}-{nat_b}", on_spawn=h.procs.append)


def trial(h, nat_a: str, nat_b: str, stop_when_direct: bool = True) -> nat_bed.TrialResult:
    with bed_for(h, nat_a, nat_b) as bed:
        r = nat_bed.run_trial(bed, h.punchgate, direct_within=DIRECT_WITHIN, stop_when_direct=stop_when_direct,
                              log=print)
    print("  " + r.summary())
    for line in r.mapping_lines + r.punch_lines:
        print(f"    {line}")
    check(not r.error, f"{r.pair}: {r.error}")
    return r


def test_nat_types(h):
    """Every gateway type maps and filters as its name says; teardown removes the namespaces and
    the processes in them."""
    problems = []
    for a, b in (("FC", "RC"), ("PRC", "SYM")):
        with bed_for(h, a, b) as bed:
            for side in ("A", "B"):
                r = nat_bed.check_nat(bed, side)
                print("  " + r.describe())
                problems += [f"{r.nat}: {p}" for p in r.problems]
            prefix, procs = bed.prefix, list(bed.procs)
        left = [ns for ns in nat_bed.list_namespaces() if ns.startswith(prefix)]
        check(not left, f"teardown left namespaces behind: {left}")
        check(all(not p.alive() for p in procs), f"teardown left processes: {[p.name for p in procs if p.alive()]}")
    check(not problems, "NAT behaviour differs from the type: " + "; ".join(problems))


def test_prc_prc_direct(h):
    r = trial(h, "PRC", "PRC")
    check(r.echo_ok and r.echo_after_ok, f"PRC:PRC echo through the tunnel failed: {r.summary()}")
    check(r.direct and r.final == "direct",
          f"PRC:PRC did not end direct within {DIRECT_WITHIN:.0f} s: {r.summary()}; {r.punch_lines}")


def test_sym_sym_relayed(h):
    r = trial(h, "SYM", "SYM", stop_when_direct=False)
    check(r.echo_ok and r.echo_after_ok, f"SYM:SYM echo through the relay failed: {r.summary()}")
    check(not r.direct and r.final == "relayed",
          f"SYM:SYM should stay relayed (both mappings endpoint-dependent): {r.summary()}")


def test_fc_sym_direct(h):
    r = trial(h, "FC", "SYM")
    check(r.echo_ok and r.echo_after_ok, f"FC:SYM echo through the tunnel failed: {r.summary()}")
    check(r.direct and r.final == "direct", f"FC:SYM did not end direct within {DIRECT_WITHIN:.0f} s: {r.summary()}")


def preflight(args):
    return nat_bed.preflight() or check_punchgate_binary(args)


if __name__ == "__main__":
    isolate_env(keep_log_level=True)
    main([test_nat_types, test_prc_prc_direct, test_sym_sym_relayed, test_fc_sym_direct],
         description=__doc__, preflight=preflight)
