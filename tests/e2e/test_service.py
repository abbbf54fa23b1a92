#!/usr/bin/env python3
"""End-to-end tests of service mode and the control socket, with the fallback
supervisor (CI has no systemd user manager; PUNCHGATE_SERVICE_MANAGER=supervisor
makes that choice explicit here too).

    python3 tests/e2e/test_service.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

Every test runs with its own HOME and XDG_RUNTIME_DIR in its temp dir, so the
env file, identity, pid/log files and control socket are the test's own. Each
test ends with `punchgate down` and then kills anything still running from its
HOME (found through /proc), even when it fails.

Covers: up -> status (sees the expose) -> tunnel add at runtime -> traffic ->
tunnel rm -> expose add/rm reached by another node -> down (twice) -> status
exits 3; the env file keeps every flag (values with commas, spaces, IPv6
brackets) and `up` again rewrites it (old one kept as .bak) and restarts;
the control socket's permissions, a malformed and an oversized request, and a
second client's request while a subscriber is connected; bad arguments of the
control commands exit 2 naming the value; the supervisor restarts a killed
daemon, `up` twice leaves one supervisor, `logs -n` prints the log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import Harness, TestFailure, check, main, wait_for  # noqa: E402
from punchgate_helpers import (  # noqa: E402
    LISTEN, T, TcpEchoServer, echo_once, free_port, isolate_env, start_node, wait_tunnel_listening,
)

isolate_env()
for _k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
    os.environ.pop(_k, None)


# --------------------------------------------------------------------------
# a service-mode sandbox per test

class Service:
    """HOME + XDG_RUNTIME_DIR of one test, and the punchgate commands run in it."""

    def __init__(self, h: Harness):
        self.h = h
        self.home = Path(h.path("home"))
        self.run_dir = Path(h.path("run"))
        self.home.mkdir()
        self.run_dir.mkdir(mode=0o700)
        self.env = {
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.run_dir),
            "PUNCHGATE_SERVICE_MANAGER": "supervisor",
            "PUNCHGATE_CONTROL_SOCKET": "",  # the default path under XDG_RUNTIME_DIR
        }
        self.env_file = self.home / ".config/punchgate/punchgate.env"
        self.state_dir = self.home / ".local/state/punchgate"
        self.socket_path = self.run_dir / "punchgate/control.sock"

    def run(self, *args, timeout: float = 60, name: str = "cmd"):
        p = self.h.run_punchgate(*args, env=self.env, timeout=timeout, name=name)
        return p.returncode, p.stdout(), p.stderr()

    def ok(self, *args, timeout: float = 60, name: str = "cmd") -> str:
        rc, out, err = self.run(*args, timeout=timeout, name=name)
        check(rc == 0, f"`punchgate {' '.join(args)}` exited {rc}: {err.strip()[-2000:]!r} {out.strip()[-500:]!r}")
        return out

    def status(self) -> dict:
        return json.loads(self.ok("status", "--json", name="status"))

    def wait_status(self, pred, what: str, timeout: float = T) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc, out, err = self.run("status", "--json", name="status")
            if rc == 0:
                last = json.loads(out)
                if pred(last):
                    return last
            else:  # between a crash and the restart nothing answers (exit 3)
                check(rc == 3, f"status exited {rc}: {err.strip()!r}")
                last = err.strip()
            time.sleep(0.3)
        raise TestFailure(f"status never showed {what}; last: {json.dumps(last)[:3000]}")

    def our_pids(self) -> list[int]:
        """punchgate processes (supervisor, daemon) whose HOME is this sandbox's."""
        want = f"HOME={self.home}".encode()
        exe = os.path.realpath(self.h.punchgate)
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if os.path.realpath(d / "exe") != exe:
                    continue
                if want in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                continue
        return pids

    def teardown(self) -> None:
        try:
            self.run("down", timeout=60, name="teardown-down")
        except Exception as e:  # noqa: BLE001 - the kill below is what matters
            print(f"teardown: down failed: {e}")
        for pid in self.our_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def with_service(fn):
    def wrapper(h: Harness):
        svc = Service(h)
        try:
            fn(h, svc)
        except BaseException:
            log = svc.state_dir / "punchgate.log"
            if log.exists():
                print("===== service log (tail)")
                print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))
            raise
        finally:
            svc.teardown()
    wrapper.__name__ = fn.__name__
    return wrapper


def by_name(items: list, key: str, value: str) -> dict | None:
    return next((i for i in items if i.get(key) == value), None)


# --------------------------------------------------------------------------
# tests

@with_service
def test_up_status_tunnels_down(h: Harness, svc: Service) -> None:
    with TcpEchoServer() as echo, TcpEchoServer(prefix=b"web:", reply_at_eof=True) as web:
        provider, provider_id, provider_addr = start_node(h, "provider", "--expose", f"echo=127.0.0.1:{echo.port}")

        out = svc.ok("up", "--listen", LISTEN, "--bootstrap", provider_addr, "--expose",
                     f"web=127.0.0.1:{web.port}", "--no-mdns", name="up")
        check("up via supervisor" in out, f"up did not say how it runs: {out!r}")
        check(svc.env_file.exists(), "up wrote no env file")

        # status: the expose is there, the bootstrap peer gets connected, role private
        human = svc.ok("status", name="status-human")
        check("web" in human and "peer id:" in human, f"human status lacks the expose: {human!r}")
        st = svc.wait_status(lambda s: by_name(s["peers"], "peer_id", provider_id), "the provider as a peer")
        check(st["role"] == "private", f"role {st['role']!r}, want private (it has --bootstrap)")
        check(by_name(st["exposes"], "name", "web") is not None, f"exposes: {st['exposes']}")
        check(st["peers"][0]["connection"] == "direct", f"peer: {st['peers'][0]}")
        check(st["tunnels"] == [], f"tunnels before any were added: {st['tunnels']}")

        # tunnel add at runtime, traffic, counters
        port = free_port()
        svc.ok("tunnel", "add", f"{provider_id}:echo@127.0.0.1:{port}", name="tunnel-add")
        payload = os.urandom(300_000)
        check(echo_once(port, payload) == payload, "echo through the runtime tunnel differs")
        st = svc.wait_status(
            lambda s: (t := by_name(s["tunnels"], "bind", f"127.0.0.1:{port}")) is not None
            and t["total_connections"] >= 1 and t["bytes_sent"] >= len(payload)
            and t["bytes_received"] >= len(payload), "the tunnel's traffic")
        t = by_name(st["tunnels"], "bind", f"127.0.0.1:{port}")
        check(t["peer"] == provider_id and t["service"] == "echo", f"tunnel entry: {t}")

        # a duplicate bind is refused, naming it
        rc, _, err = svc.run("tunnel", "add", f"{provider_id}:echo@127.0.0.1:{port}", name="tunnel-dup")
        check(rc == 1 and f"127.0.0.1:{port}" in err, f"duplicate tunnel add: rc={rc} err={err!r}")

        # tunnel rm closes the listener; removing it again is an error naming the bind
        svc.ok("tunnel", "rm", f"127.0.0.1:{port}", name="tunnel-rm")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            raise TestFailure(f"127.0.0.1:{port} still accepts after tunnel rm")
        except ConnectionRefusedError:
            pass
        rc, _, err = svc.run("tunnel", "rm", f"127.0.0.1:{port}", name="tunnel-rm-again")
        check(rc == 1 and "no tunnel is bound to" in err, f"second tunnel rm: rc={rc} err={err!r}")
        check(svc.status()["tunnels"] == [], "tunnel still listed after rm")

        # expose add: another node reaches it; expose rm: it is refused again
        st = svc.status()
        daemon_id = st["peer_id"]
        loop_addr = next(a for a in st["listen_addrs"] if a.startswith("/ip4/127.0.0.1/"))
        svc.ok("expose", "add", f"echo2=127.0.0.1:{echo.port}", name="expose-add")
        cport = free_port()
        consumer, _, _ = start_node(h, "consumer", "--bootstrap", f"{loop_addr}/p2p/{daemon_id}", "--tunnel",
                                    f"{daemon_id}:echo2@127.0.0.1:{cport}")
        wait_tunnel_listening(consumer, cport)
        check(echo_once(cport, b"hello echo2") == b"hello echo2", "runtime expose not reachable")
        svc.ok("expose", "rm", "echo2", name="expose-rm")
        check(echo_once(cport, b"after rm") == b"", "a removed expose still served a tunnel")
        wait_for(consumer, r"tunnel rejected .*service=echo2 reason=\"unknown service echo2\"", stream="stderr")
        check(by_name(svc.status()["exposes"], "name", "echo2") is None, "echo2 listed after expose rm")

        # down; again; status says not running with exit 3
        svc.ok("down", name="down")
        check(svc.our_pids() == [], f"processes left after down: {svc.our_pids()}")
        check(not svc.socket_path.exists(), "control socket left after down")
        svc.ok("down", name="down-again")
        rc, out, err = svc.run("status", name="status-down")
        check(rc == 3 and "not running" in (out + err), f"status when down: rc={rc} {out!r} {err!r}")
        provider.terminate()


@with_service
def test_env_file_round_trip(h: Harness, svc: Service) -> None:
    """Every flag survives the env file, including awkward values; `up` again
    rewrites it (previous kept as .bak) and restarts the daemon with it."""
    with TcpEchoServer() as echo:
        _, provider_id, provider_addr = start_node(h, "provider", "--expose", f"echo=127.0.0.1:{echo.port}")
        ident = Path(h.path("keys, with comma/my node key.key"))
        ident.parent.mkdir()
        rc = h.run_punchgate("--identity", str(ident), "id", name="id")
        check(rc.returncode == 0, "punchgate id failed")
        want_id = rc.stdout().strip()
        v6_port, bn_port, fixed_port = free_port(), free_port(), free_port()
        socket_path = Path(h.path("ctl dir, odd/control.sock"))
        args = ["--identity", str(ident), "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--listen",
                "/ip6/::1/udp/0/quic-v1", "--bootstrap", provider_addr, "--expose", f"v6=[::1]:{echo.port}",
                "--expose", f"dns=localhost:{echo.port}/udp", "--tunnel", f"{provider_id}:echo@[::1]:{fixed_port}",
                "--tunnel-by-name", f"echo@127.0.0.1:{bn_port}", "--tunnel-by-name", f"other@[::1]:{v6_port}/udp",
                "--allow", provider_id, "--no-mdns", "--control-socket", str(socket_path)]
        svc.ok("up", *args, name="up")
        mode = stat.S_IMODE(svc.env_file.stat().st_mode)
        check(mode == 0o600, f"env file mode {oct(mode)}, want 0600")
        text = svc.env_file.read_text()
        for key in ("PUNCHGATE_IDENTITY", "PUNCHGATE_LISTEN", "PUNCHGATE_BOOTSTRAP", "PUNCHGATE_EXPOSE",
                    "PUNCHGATE_TUNNEL", "PUNCHGATE_TUNNEL_BY_NAME", "PUNCHGATE_ALLOW", "PUNCHGATE_MDNS",
                    "PUNCHGATE_CONTROL_SOCKET"):
            check(f"{key}=" in text, f"{key} missing from the env file:\n{text}")

        env_ctl = dict(svc.env, PUNCHGATE_CONTROL_SOCKET=str(socket_path))
        deadline = time.monotonic() + T
        while True:
            p = h.run_punchgate("status", "--json", env=env_ctl, name="status")
            if p.returncode == 0:
                st = json.loads(p.stdout())
                if by_name(st["peers"], "peer_id", provider_id):
                    break
            if time.monotonic() > deadline:
                raise TestFailure(f"daemon never answered with the provider connected: {p.stderr()[-1000:]!r}")
            time.sleep(0.3)
        check(st["peer_id"] == want_id, f"daemon runs as {st['peer_id']}, identity file says {want_id}")
        check(st["control_socket"] == str(socket_path), f"control socket {st['control_socket']!r}")
        listens = " ".join(st["listen_addrs"])
        check("/ip4/127.0.0.1/" in listens and "/ip6/::1/" in listens, f"listen addrs {st['listen_addrs']}")
        exposes = {e["name"]: e for e in st["exposes"]}
        check(exposes.get("v6", {}).get("target") == f"[::1]:{echo.port}", f"exposes {st['exposes']}")
        check(exposes.get("dns", {}).get("transport") == "udp", f"exposes {st['exposes']}")
        binds = {(t["bind"], t["transport"]): t for t in st["tunnels"]}
        check((f"[::1]:{fixed_port}", "tcp") in binds and binds[(f"[::1]:{fixed_port}", "tcp")]["peer"] == provider_id,
              f"tunnels {st['tunnels']}")
        check((f"127.0.0.1:{bn_port}", "tcp") in binds and binds[(f"127.0.0.1:{bn_port}", "tcp")]["by_name"],
              f"tunnels {st['tunnels']}")
        check((f"[::1]:{v6_port}", "udp") in binds, f"tunnels {st['tunnels']}")
        with socket.create_connection(("::1", fixed_port), timeout=T) as s:
            s.sendall(b"v6 tunnel")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := s.recv(4096):
                got += chunk
        check(got == b"v6 tunnel", f"echo over the [::1] tunnel: {got!r}")
        old_pid = st["pid"]

        # up again with another config: rewritten, .bak kept, daemon restarted with it
        svc.ok("up", "--identity", str(ident), "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--no-mdns",
               "--control-socket", str(socket_path), "--expose", f"only=127.0.0.1:{echo.port}", name="up-again")
        bak = Path(str(svc.env_file) + ".bak")
        check(bak.exists() and bak.read_text() == text, "the previous env file was not kept as .bak")
        st = None
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            p = h.run_punchgate("status", "--json", env=env_ctl, name="status2")
            if p.returncode == 0:
                st = json.loads(p.stdout())
                if st["pid"] != old_pid:
                    break
            time.sleep(0.3)
        check(st is not None and st["pid"] != old_pid, "the daemon was not restarted by the second up")
        check([e["name"] for e in st["exposes"]] == ["only"] and st["tunnels"] == [],
              f"second config not applied: exposes={st['exposes']} tunnels={st['tunnels']}")
        svc.ok("down", name="down")
        check(svc.our_pids() == [], f"processes left after down: {svc.our_pids()}")


@with_service
def test_supervisor_restarts_killed_daemon(h: Harness, svc: Service) -> None:
    svc.ok("up", "--listen", LISTEN, "--no-mdns", name="up")
    first = svc.wait_status(lambda s: True, "an answer")["pid"]
    os.kill(first, signal.SIGKILL)
    st = svc.wait_status(lambda s: s["pid"] != first, "a restarted daemon", timeout=60)
    check(st["pid"] in svc.our_pids(), f"restarted daemon pid {st['pid']} not among {svc.our_pids()}")
    log = (svc.state_dir / "punchgate.log").read_text(errors="replace")
    check("restarting" in log, f"the supervisor log does not mention the restart:\n{log[-2000:]}")
    # exactly one supervisor + one daemon, also after a second `up`
    svc.ok("up", "--listen", LISTEN, "--no-mdns", name="up-again")
    svc.wait_status(lambda s: s["pid"] != st["pid"], "the daemon restarted by up")
    check(len(svc.our_pids()) == 2, f"want one supervisor and one daemon, found pids {svc.our_pids()}")
    out = svc.ok("logs", "-n", "5", name="logs")
    check(0 < len(out.strip().splitlines()) <= 5, f"logs -n 5 printed: {out!r}")
    svc.ok("down", name="down")
    check(svc.our_pids() == [], f"processes left after down: {svc.our_pids()}")


def _request(sock: socket.socket, line: bytes, timeout: float = T) -> dict:
    sock.settimeout(timeout)
    sock.sendall(line)
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise TestFailure(f"control socket closed before answering {line[:80]!r}")
        buf += chunk
    return json.loads(buf.split(b"\n", 1)[0])


@with_service
def test_control_socket(h: Harness, svc: Service) -> None:
    with TcpEchoServer() as echo:
        svc.ok("up", "--listen", LISTEN, "--no-mdns", name="up")
        svc.wait_status(lambda s: True, "an answer")
        mode = stat.S_IMODE(svc.socket_path.stat().st_mode)
        check(stat.S_ISSOCK(svc.socket_path.stat().st_mode) and mode == 0o600, f"socket mode {oct(mode)}")
        dmode = stat.S_IMODE(svc.socket_path.parent.stat().st_mode)
        check(dmode == 0o700, f"socket directory mode {oct(dmode)}")

        sub = socket.socket(socket.AF_UNIX)
        sub.connect(str(svc.socket_path))
        r = _request(sub, b'{"id":"s","method":"subscribe"}\n')
        check(r.get("ok") is True and r.get("id") == "s", f"subscribe: {r}")

        c = socket.socket(socket.AF_UNIX)
        c.connect(str(svc.socket_path))
        r = _request(c, b'{"method": "status", oops\n')
        check(r.get("ok") is False and r.get("error"), f"malformed request: {r}")
        r = _request(c, b'{"id":7,"method":"no.such"}\n')
        check(r.get("ok") is False and "no.such" in r.get("error", "") and r.get("id") == 7, f"unknown method: {r}")
        r = _request(c, b'{"id":8,"method":"expose.add","params":{"spec":"bad spec!"}}\n')
        check(r.get("ok") is False and "bad spec!" in r.get("error", ""), f"bad expose spec: {r}")
        # the same connection still works, while the subscriber is connected
        r = _request(c, json.dumps({"id": 9, "method": "expose.add",
                                    "params": {"spec": f"live=127.0.0.1:{echo.port}"}}).encode() + b"\n")
        check(r.get("ok") is True and r["result"]["expose"]["name"] == "live", f"expose.add: {r}")
        sub.settimeout(T)
        buf = b""
        while b"expose_added" not in buf:
            chunk = sub.recv(65536)
            check(chunk != b"", "subscriber closed before the event")
            buf += chunk
        ev = json.loads(next(line for line in buf.split(b"\n") if b"expose_added" in line))
        check(ev.get("event") == "expose_added" and ev["expose"]["name"] == "live", f"event: {ev}")
        r = _request(c, b'{"id":10,"method":"status"}\n')
        check(r.get("ok") is True and by_name(r["result"]["exposes"], "name", "live"), f"status: {str(r)[:500]}")

        # oversized request: an error, then the server closes that connection
        big = socket.socket(socket.AF_UNIX)
        big.connect(str(svc.socket_path))
        big.settimeout(T)
        try:
            big.sendall(b'{"method":"status","pad":"' + b"x" * (70 << 10) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := big.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        check(b"too large" in data, f"oversized request answer: {data[:300]!r}")
        big.close()
        # and the daemon is fine
        r = _request(c, b'{"id":11,"method":"peers"}\n')
        check(r.get("ok") is True and "peers" in r["result"], f"after oversized: {r}")
        sub.close()
        c.close()
        svc.ok("down", name="down")


def test_status_not_running(h: Harness) -> None:
    svc = Service(h)
    rc, out, err = svc.run("status", name="status")
    check(rc == 3 and "not running" in (out + err), f"status with nothing running: rc={rc} {out!r} {err!r}")
    rc, out, err = svc.run("tunnel", "rm", "127.0.0.1:9", name="rm")
    check(rc == 3 and "not running" in (out + err), f"tunnel rm with nothing running: rc={rc} {err!r}")
    rc, out, err = svc.run("down", name="down")
    check(rc == 0, f"down with nothing running: rc={rc} {err!r}")


def test_bad_control_arguments(h: Harness) -> None:
    svc = Service(h)
    cases = [
        (("tunnel", "add", "nonsense"), "nonsense"),
        (("tunnel", "add", "--by-name", "svc@127.0.0.1:0"), "svc@127.0.0.1:0"),
        (("tunnel", "rm", "127.0.0.1:notaport"), "127.0.0.1:notaport"),
        (("expose", "add", "web=127.0.0.1"), "web=127.0.0.1"),
        (("expose", "rm", "bad name!"), "bad name!"),
        (("logs", "-n", "0"), "0"),
        (("service-unit", "upstart"), "upstart"),
    ]
    problems = []
    for args, want in cases:
        rc, out, err = svc.run(*args, name="bad")
        if rc != 2 or want not in err:
            problems.append(f"{args}: rc={rc} stderr={err.strip()!r}")
    check(not problems, "bad control arguments:\n" + "\n".join(problems))


if __name__ == "__main__":
    main([test_up_status_tunnels_down, test_env_file_round_trip, test_supervisor_restarts_killed_daemon,
          test_control_socket, test_status_not_running, test_bad_control_arguments], __doc__)
