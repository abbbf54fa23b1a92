"""Tiny stdlib-only harness for punchgate's process-level tests.

Typical use from a test script::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
    from punchgate_harness import check, main

    def test_something(h):
        pg = h.start_punchgate("--identity", h.path("id.key"),
                               "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
        m = h.wait_for(pg, r"listening on (/ip4/127\\.0\\.0\\.1/udp/\\d+/quic-v1)", timeout=20)
        check(m.group(1).startswith("/ip4/"), "bad listen addr")

    if __name__ == "__main__":
        main([test_something])

Every process is started in its own session (start_new_session=True) with
stdout/stderr redirected to files in the test's temp dir, and every process
group that was spawned is killed at the end of the test, at interpreter exit
(atexit) and when the driver itself gets SIGTERM/SIGINT/SIGHUP.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
INTEROP_DIR = REPO_ROOT / "tests" / "interop"
JS_PEER = INTEROP_DIR / "js-peer.mjs"

DEFAULT_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


class TestFailure(AssertionError):
    """Raised by check() and by the wait helpers."""


def check(cond, msg: str) -> None:
    if not cond:
        raise TestFailure(msg)


# --------------------------------------------------------------------------
# processes

_ALL_PROCS: list["Proc"] = []


class Proc:
    """A spawned process whose stdout/stderr go to files."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path,
                 env: Optional[dict] = None, cwd: Optional[os.PathLike] = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        full_env = dict(os.environ)
        full_env.setdefault("NO_COLOR", "1")
        # mDNS is on by default in punchgate; tests must not multicast onto the host's real
        # interfaces, so it is off unless a test (in its own namespace) turns it on.
        full_env.setdefault("PUNCHGATE_MDNS", "false")
        # Port mapping talks NAT-PMP/SSDP to the default gateway: off too, except in the
        # namespaces of test_portmap.
        full_env.setdefault("PUNCHGATE_PORT_MAPPING", "false")
        # Likewise the control socket: test nodes must not take (or fight over) the user's
        # default socket; tests of the control plane set their own path (or "" for the default).
        full_env.setdefault("PUNCHGATE_CONTROL_SOCKET", "off")
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        try:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True)
        except BaseException:
            self._out.close()
            self._err.close()
            raise
        self.pid = self.popen.pid
        self._group_killed = False
        _ALL_PROCS.append(self)

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.poll()}>"

    # -- output ---------------------------------------------------------
    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def text(self, stream: str = "both") -> str:
        if stream == "stdout":
            return self.stdout()
        if stream == "stderr":
            return self.stderr()
        if stream == "both":
            return self.stdout() + "\n" + self.stderr()
        raise ValueError(f"bad stream {stream!r}")

    def json_lines(self) -> list[dict]:
        """Every complete JSON-object line on stdout (other lines ignored)."""
        out = []
        text = self.stdout()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # drop a partially written line
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
        return out

    def events(self, event: str) -> list[dict]:
        return [o for o in self.json_lines() if o.get("event") == event]

    def tail(self, n: int = 40) -> str:
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            lines = _read(path).splitlines()
            parts.append(f"----- {self.name} {label} (last {min(n, len(lines))} of {len(lines)} lines): {path}")
            parts.extend(lines[-n:])
        return "\n".join(parts)

    # -- lifetime -------------------------------------------------------
    @property
    def returncode(self) -> Optional[int]:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for exit; on timeout kill the group and raise TestFailure."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure(f"{self.name} did not exit within {timeout:.0f}s (killed)")

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def terminate(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> Optional[int]:
        """Send `sig` to the group, wait up to `timeout`, then SIGKILL.
        Returns the exit code (negative = killed by signal)."""
        if self.popen.poll() is None:
            self.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (leader and any children)."""
        if self._group_killed:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # the group may outlive a reaped leader only as long as its members do;
        # one SIGKILL above already hit them, so never signal this pgid again
        self._group_killed = True
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def kill_all() -> None:
    for p in list(_ALL_PROCS):
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(kill_all)


def _on_signal(signum, _frame):
    kill_all()
    # re-raise as SystemExit so finally blocks run and the exit code is non-zero
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except (ValueError, OSError):  # not in main thread / unsupported
        pass


# --------------------------------------------------------------------------
# waiting

def wait_for(proc: Proc, pattern: str, timeout: float = DEFAULT_TIMEOUT,
             stream: str = "both", flags: int = re.MULTILINE) -> re.Match:
    """Poll proc's output until `pattern` matches; return the match.

    stream: "stderr", "stdout" or "both" (stdout + "\\n" + stderr).
    Fails fast (TestFailure) if the process exits without a match, or on timeout.
    """
    rx = re.compile(pattern, flags)
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.popen.poll() is not None  # sample BEFORE reading output
        m = rx.search(proc.text(stream))
        if m:
            return m
        if exited:
            raise TestFailure(f"{proc.name} exited (rc={proc.popen.returncode}) "
                              f"without printing /{pattern}/ on {stream}")
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.0f}s waiting for /{pattern}/ "
                              f"on {proc.name} {stream}")
        time.sleep(POLL_INTERVAL)


def wait_for_json(proc: Proc, pred: Callable[[dict], bool] | str,
                  timeout: float = DEFAULT_TIMEOUT, what: str = "") -> dict:
    """Poll proc's stdout JSON lines until one satisfies `pred` (or has
    event == pred when pred is a string); return it."""
    if isinstance(pred, str):
        ev = pred
        pred = lambda o: o.get("event") == ev  # noqa: E731
        what = what or f'event "{ev}"'
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.popen.poll() is not None
        for obj in proc.json_lines():
            if pred(obj):
                return obj
        if exited:
            raise TestFailure(f"{proc.name} exited (rc={proc.popen.returncode}) without "
                              f"JSON line {what or 'matching predicate'}")
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.0f}s waiting for JSON line "
                              f"{what or 'matching predicate'} from {proc.name}")
        time.sleep(POLL_INTERVAL)


# --------------------------------------------------------------------------
# punchgate log parsing

_KV_RX = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S*)')


def parse_fields(text: str) -> dict:
    """Parse `k=v k="quoted" k=[a,b]` pairs. Quoted values are unescaped,
    bracketed lists become lists of strings (empty entries dropped)."""
    fields: dict = {}
    for k, v in _KV_RX.findall(text):
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        elif v.startswith("[") and v.endswith("]"):
            v = [x.strip().strip('"') for x in v[1:-1].split(",") if x.strip()]
        fields[k] = v
    return fields


def identify_received(text: str) -> list[dict]:
    """All `identify received peer=… protocol_version="…" …` log lines, parsed."""
    out = []
    for line in text.splitlines():
        i = line.find("identify received")
        if i >= 0:
            f = parse_fields(line[i + len("identify received"):])
            f["_line"] = line
            out.append(f)
    return out


def ping_lines(text: str) -> list[dict]:
    """All `ping peer=<id> seq=<n> rtt_ms=<float>` lines, parsed."""
    out = []
    for m in re.finditer(r"^.*?\bping peer=(\S+) seq=(\d+) rtt_ms=([0-9.eE+-]+)", text, re.M):
        out.append({"peer": m.group(1), "seq": int(m.group(2)), "rtt_ms": float(m.group(3))})
    return out


# --------------------------------------------------------------------------
# per-test harness

class Harness:
    """Per-test context: temp dir, spawned processes, guaranteed cleanup."""

    def __init__(self, name: str, punchgate: Optional[str] = None,
                 node: Optional[str] = None, keep_tmp: bool = False):
        self.name = name
        self.punchgate = punchgate
        self.node = node or os.environ.get("NODE") or shutil.which("node") or "node"
        self.keep_tmp = keep_tmp
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"pg-{safe}-"))
        self.procs: list[Proc] = []
        self._names: dict[str, int] = {}

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.cleanup(failed=exc_type is not None)
        return False

    def path(self, *parts: str) -> str:
        return str(self.tmpdir.joinpath(*parts))

    def _unique(self, name: str) -> str:
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        return name if n == 0 else f"{name}-{n}"

    # -- spawning -------------------------------------------------------
    def spawn(self, name: str, argv: Sequence, env: Optional[dict] = None,
              cwd: Optional[os.PathLike] = None) -> Proc:
        p = Proc(self._unique(name), argv, self.tmpdir, env=env, cwd=cwd)
        self.procs.append(p)
        return p

    def start_punchgate(self, *args, env: Optional[dict] = None, name: str = "punchgate") -> Proc:
        if not self.punchgate:
            raise TestFailure("no --punchgate binary given")
        return self.spawn(name, [self.punchgate, *args], env=env)

    def run_punchgate(self, *args, timeout: float = DEFAULT_TIMEOUT,
                      env: Optional[dict] = None, name: str = "punchgate-cmd") -> Proc:
        """Start punchgate and wait for it to exit (killed + TestFailure on timeout)."""
        p = self.start_punchgate(*args, env=env, name=name)
        p.wait_exit(timeout)
        return p

    def start_js(self, *args, env: Optional[dict] = None, name: str = "js") -> Proc:
        """Start `node tests/interop/js-peer.mjs ARGS…` (JSON lines on stdout)."""
        return self.spawn(name, [self.node, str(JS_PEER), *args], env=env, cwd=INTEROP_DIR)

    def run_js(self, *args, timeout: float = DEFAULT_TIMEOUT, env: Optional[dict] = None,
               name: str = "js-cmd") -> Proc:
        p = self.start_js(*args, env=env, name=name)
        p.wait_exit(timeout)
        return p

    # -- waiting (method aliases) -----------------------------------------
    def wait_for(self, proc: Proc, pattern: str, timeout: float = DEFAULT_TIMEOUT,
                 stream: str = "both") -> re.Match:
        return wait_for(proc, pattern, timeout=timeout, stream=stream)

    def wait_for_json(self, proc: Proc, pred, timeout: float = DEFAULT_TIMEOUT, what: str = "") -> dict:
        return wait_for_json(proc, pred, timeout=timeout, what=what)

    # -- teardown -------------------------------------------------------
    def dump_logs(self, n: int = 40, file=sys.stdout) -> None:
        for p in self.procs:
            print(f"===== {p.name}: argv={' '.join(p.argv)} rc={p.popen.poll()}", file=file)
            print(p.tail(n), file=file)

    def cleanup(self, failed: bool = False) -> None:
        for p in self.procs:
            # polite first (lets punchgate/js flush logs), then SIGKILL
            p.terminate(timeout=3.0)
        if failed or self.keep_tmp:
            return  # keep logs for inspection
        shutil.rmtree(self.tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------
# runner

TestFn = Callable[[Harness], None]


def main(tests: Iterable[TestFn], description: str = "",
         preflight: Optional[Callable[[argparse.Namespace], Optional[str]]] = None,
         argv: Optional[Sequence[str]] = None) -> None:
    """Parse args, run each test function with a fresh Harness, print
    'N passed, M failed' and exit non-zero if anything failed.

    preflight(args) may return an error string; then every test fails with it
    (without running), so a broken setup is a failure, never a skip.
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--punchgate", help="path to the punchgate binary")
    ap.add_argument("--node", default=None, help="node executable (default: $NODE or node on PATH)")
    ap.add_argument("-k", dest="filter", default=None, help="only run tests whose name contains this")
    ap.add_argument("--keep-tmp", action="store_true", help="keep temp dirs of passing tests too")
    args = ap.parse_args(argv)

    tests = [t for t in tests if not args.filter or args.filter in t.__name__]
    passed = failed = 0
    setup_error = preflight(args) if preflight else None
    if setup_error:
        print(f"SETUP ERROR: {setup_error}", flush=True)

    for fn in tests:
        name = fn.__name__
        if setup_error:
            print(f"FAIL {name}: setup error (see above)", flush=True)
            failed += 1
            continue
        print(f"RUN  {name}", flush=True)
        t0 = time.monotonic()
        h = Harness(name, punchgate=args.punchgate, node=args.node, keep_tmp=args.keep_tmp)
        try:
            fn(h)
        except TestFailure as e:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {e}", flush=True)
            h.cleanup(failed=True)
            h.dump_logs()
            print(f"(logs kept in {h.tmpdir})", flush=True)
        except Exception:  # noqa: BLE001 - report any crash as a failure
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): exception", flush=True)
            traceback.print_exc(file=sys.stdout)
            h.cleanup(failed=True)
            h.dump_logs()
            print(f"(logs kept in {h.tmpdir})", flush=True)
        else:
            passed += 1
            h.cleanup(failed=False)
            print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
        finally:
            h.cleanup(failed=True)  # idempotent: makes sure nothing survives
    kill_all()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not tests else 0)
