#!/usr/bin/env python3
"""The service definitions: what `punchgate up` installs (rendered by the hidden
`punchgate service-unit systemd|launchd`) and the templates in deploy/.

    python3 tests/e2e/test_service_units.py --punchgate /path/to/punchgate [-k NAME] [--keep-tmp]

systemd units are checked with `systemd-analyze verify`, which exits 0 even
when it warns, so a unit passes only when it exits 0 and prints nothing. HOME
and XDG_RUNTIME_DIR (0700) are the test's own temp dirs; the binary is also
run from a copy under a directory with a space (and one with characters
systemd refuses in an executable name). One test runs the rendered unit under
a real `systemd --user` manager, started in a private mount namespace (it
refuses to start unless /run/systemd/system exists, which is made there on a
private tmpfs): the node must start with the env file's settings, and come
back after SIGKILL (Restart=on-failure). launchd plists are parsed with
plistlib (no launchd here). systemd-analyze missing is a failure, not a skip
(scripts/deps.sh installs systemd).
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parent / "lib"))

from punchgate_harness import REPO_ROOT, Harness, TestFailure, check, main  # noqa: E402
from punchgate_helpers import T, check_punchgate_binary, isolate_env  # noqa: E402

isolate_env()
for _k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "SYSTEMD_UNIT_PATH"):
    os.environ.pop(_k, None)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
SYSTEMD = "/lib/systemd/systemd"
DEPLOY = REPO_ROOT / "deploy"
TEMPLATE_BINARY = "ExecStart=/usr/local/bin/punchgate\n"
LABEL = "com.punchgate.daemon"
# Units a `systemd --user --unit=punchgate.service` needs besides ours (default dependencies).
USER_MANAGER_UNITS = ("basic.target", "default.target", "exit.target", "shutdown.target", "paths.target",
                      "sockets.target", "timers.target", "systemd-exit.service", "app.slice")


# --------------------------------------------------------------------------
# helpers

class Sandbox:
    """HOME and XDG_RUNTIME_DIR (0700) of one test, in its temp dir."""

    def __init__(self, h: Harness, home: str = "home"):
        self.h = h
        self.home = Path(h.path(home))
        self.run_dir = Path(h.path("run"))
        self.home.mkdir(parents=True)
        self.run_dir.mkdir(mode=0o700)
        self.env = {"HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.run_dir)}

    def punchgate_copy(self, dirname: str) -> Path:
        """The binary copied (not linked: the service unit names /proc/self/exe) into <tmp>/<dirname>."""
        d = Path(self.h.path(dirname))
        d.mkdir(parents=True)
        dst = d / "punchgate"
        shutil.copy2(self.h.punchgate, dst)
        return dst

    def service_unit(self, kind: str, binary: Path | None = None) -> str:
        argv = [str(binary or self.h.punchgate), "service-unit", kind]
        r = subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True, timeout=T)
        check(r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    @property
    def env_file(self) -> Path:
        return self.home / ".config" / "punchgate" / "punchgate.env"

    @property
    def unit_file(self) -> Path:
        return self.home / ".config" / "systemd" / "user" / "punchgate.service"


def analyze_env(sb: Sandbox | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SYSTEMD_"))}
    env.update({"SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C"})
    if sb:
        env.update(sb.env)
    return env


def verify(unit: Path, sb: Sandbox | None) -> None:
    """`systemd-analyze verify` (user mode with a sandbox, system mode without) exits 0, prints nothing."""
    argv = [SYSTEMD_ANALYZE, "verify", *(["--user"] if sb else []), str(unit)]
    r = subprocess.run(argv, env=analyze_env(sb), capture_output=True, timeout=T)
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    check(r.returncode == 0 and not out,
          f"`{' '.join(argv)}` exited {r.returncode} and printed:\n{out}\n----- {unit}:\n{unit.read_text()}")


def directives(unit_text: str) -> dict[str, list[str]]:
    """key -> values of `key=value` lines (comments and section headers skipped)."""
    out: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def one(d: dict[str, list[str]], key: str) -> str:
    check(len(d.get(key, [])) == 1, f"want exactly one {key}=, got {d.get(key)}")
    return d[key][0]


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """KEY="value" lines (systemd EnvironmentFile= syntax) for values without " \\ $ or newlines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for v in values.values():
        check(not re.search(r'["\\$\n`]', v), f"test bug: value {v!r} needs escaping")
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    path.chmod(0o600)


def template_with_binary(text: str, binary: str) -> str:
    check(text.count(TEMPLATE_BINARY) == 1, f"template has no single line {TEMPLATE_BINARY.strip()!r}")
    return text.replace(TEMPLATE_BINARY, f'ExecStart="{binary}"\n')


def check_plist(data: dict, binary: str, env_file: str, log_file: str | None) -> None:
    check(data.get("Label") == LABEL, f"Label={data.get('Label')!r}, want {LABEL!r}")
    args = data.get("ProgramArguments")
    check(args == [binary, "--env-file", env_file],
          f"ProgramArguments={args!r}, want {[binary, '--env-file', env_file]!r}")
    check(data.get("RunAtLoad") is True, f"RunAtLoad={data.get('RunAtLoad')!r}, want true")
    check(data.get("KeepAlive") == {"SuccessfulExit": False},
          f"KeepAlive={data.get('KeepAlive')!r}, want {{SuccessfulExit: false}}")
    ti = data.get("ThrottleInterval")
    check(isinstance(ti, int) and ti >= 1, f"ThrottleInterval={ti!r}, want a positive integer")
    for key in ("StandardOutPath", "StandardErrorPath"):
        v = data.get(key)
        check(isinstance(v, str) and v.startswith("/") and v.endswith("/punchgate.log"),
              f"{key}={v!r}, want an absolute path to punchgate.log")
        if log_file is not None:
            check(v == log_file, f"{key}={v!r}, want {log_file!r}")


# --------------------------------------------------------------------------
# the verifier itself: each kind of mistake must make verify() fail

def test_verify_catches_mistakes(h):
    sb = Sandbox(h)
    d = Path(h.path("my bin"))
    d.mkdir()
    shutil.copy2("/bin/true", d / "true")
    good = f'[Service]\nExecStart="{d}/true"\n'
    bad = {
        "unquoted path with a space": f"[Service]\nExecStart={d}/true\n",
        "unknown key (warning only, exit 0)": good + "Restrt=on-failure\n",
        "relative EnvironmentFile (warning only, exit 0)": good + "EnvironmentFile=rel/punchgate.env\n",
    }
    unit = Path(h.path("t.service"))
    unit.write_text(good)
    verify(unit, sb)
    for what, text in bad.items():
        unit.write_text(text)
        try:
            verify(unit, sb)
        except TestFailure:
            continue
        raise TestFailure(f"verify() accepted a unit with an {what}:\n{text}")


# --------------------------------------------------------------------------
# (a) the rendered systemd --user unit

def check_rendered_unit(sb: Sandbox, binary: Path) -> dict[str, list[str]]:
    text = sb.service_unit("systemd", binary)
    d = directives(text)
    env_file = one(d, "EnvironmentFile").replace("%%", "%")
    check(env_file == str(sb.env_file), f"EnvironmentFile={env_file!r}, want {str(sb.env_file)!r}")
    check(one(d, "Restart") == "on-failure", f"Restart={d.get('Restart')}")
    check(one(d, "WantedBy") == "default.target", f"WantedBy={d.get('WantedBy')}")
    for key in ("RestartSec", "StartLimitIntervalSec", "StartLimitBurst"):
        one(d, key)
    sb.unit_file.parent.mkdir(parents=True, exist_ok=True)
    sb.unit_file.write_text(text)
    write_env_file(sb.env_file, {"PUNCHGATE_LOG": "info"})
    verify(sb.unit_file, sb)
    return d


def test_systemd_unit_verifies(h):
    sb = Sandbox(h)
    binary = Path(os.path.realpath(h.punchgate))
    d = check_rendered_unit(sb, binary)
    check(one(d, "ExecStart") == f'"{binary}"', f"ExecStart={d['ExecStart']}, want {binary} quoted")


def test_systemd_unit_paths_with_spaces(h):
    sb = Sandbox(h, home="home dir")
    binary = sb.punchgate_copy("my bin")
    d = check_rendered_unit(sb, binary)
    # verify() proves systemd splits it as one path: it checks that path is executable
    check(one(d, "ExecStart") == f'"{binary}"', f"ExecStart={d['ExecStart']}, want {binary} quoted")


def test_systemd_unit_path_systemd_refuses(h):
    """systemd refuses quotes, backslashes and control bytes in an executable name (`$` would be
    substituted in argv[0]); such a binary path is still rendered as a unit that verifies."""
    sb = Sandbox(h)
    binary = sb.punchgate_copy("it's $HOME 100%")
    d = check_rendered_unit(sb, binary)
    check(one(d, "ExecStart").startswith("/bin/sh "), f"ExecStart={d['ExecStart']}, want the /bin/sh form")


# --------------------------------------------------------------------------
# the rendered unit under a real systemd --user manager

def node_pids(tmpdir: str) -> list[int]:
    """Processes whose executable lives under tmpdir (our copies of punchgate)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            exe = os.readlink(p / "exe")
        except OSError:
            continue
        if exe.startswith(tmpdir + "/"):
            pids.append(int(p.name))
    return pids


def kill_nodes(tmpdir: str) -> None:
    for pid in node_pids(tmpdir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def control_status(sock_path: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(b'{"id":1,"method":"status"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def wait_answering(sock_path: str, manager, deadline: float, what: str) -> dict:
    last = None
    while time.monotonic() < deadline:
        check(manager.alive(), f"systemd --user exited (rc={manager.returncode}) before {what}")
        try:
            resp = control_status(sock_path)
            if resp.get("ok") is True:
                return resp
            last = resp
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.1)
    raise TestFailure(f"timed out waiting for {what}: control socket {sock_path}: {last!r}")


def test_systemd_unit_runs_under_user_manager(h):
    check(os.geteuid() == 0, "this test starts systemd --user in a private mount namespace and needs root")
    check(shutil.which("unshare"), "unshare (util-linux) not found")
    check(os.access(SYSTEMD, os.X_OK), f"{SYSTEMD} not found (scripts/deps.sh installs systemd)")
    sb = Sandbox(h, home="home dir")
    binary = sb.punchgate_copy("my bin")
    text = sb.service_unit("systemd", binary)
    units = Path(h.path("units"))
    units.mkdir()
    for u in USER_MANAGER_UNITS:
        shutil.copy2(Path("/usr/lib/systemd/user") / u, units / u)
    (units / "punchgate.service").write_text(text)
    ctl = h.path("ctl dir", "control.sock")
    identity = h.path("id dir", "identity.key")
    write_env_file(sb.env_file, {
        "PUNCHGATE_LISTEN": "/ip4/127.0.0.1/udp/0/quic-v1",
        "PUNCHGATE_MDNS": "false",
        "PUNCHGATE_CONTROL_SOCKET": ctl,
        "PUNCHGATE_IDENTITY": identity,
        "PUNCHGATE_LOG": "info",
    })
    # /run/systemd/system on a private tmpfs, visible to this manager only; the unit path holds
    # just our unit and the targets it depends on; the service's stderr comes to our log.
    script = ('mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec "$0" --user '
              '--unit=punchgate.service --log-target=console --default-standard-error=inherit '
              '--default-standard-output=inherit')
    env = {**sb.env, "SYSTEMD_UNIT_PATH": str(units), "SYSTEMD_LOG_COLOR": "0"}
    try:
        manager = h.spawn("systemd-user", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, SYSTEMD],
                          env=env)
        deadline = time.monotonic() + T
        first = wait_answering(ctl, manager, deadline, "punchgate to answer on its control socket")
        check(os.path.isfile(identity), f"no identity at {identity}: the env file was not applied")
        pids = node_pids(h.tmpdir.as_posix())
        check(len(pids) == 1, f"want one punchgate running from {binary}, found pids {pids}")
        check(os.readlink(f"/proc/{pids[0]}/exe") == str(binary), "the node does not run from the copy")
        # Restart=on-failure: killed, it comes back (after RestartSec) with the same identity
        os.kill(pids[0], signal.SIGKILL)
        while pids[0] in node_pids(h.tmpdir.as_posix()):
            check(time.monotonic() < deadline, f"pid {pids[0]} survived SIGKILL")
            time.sleep(0.05)
        second = wait_answering(ctl, manager, deadline, "punchgate to be restarted after SIGKILL")
        new = node_pids(h.tmpdir.as_posix())
        check(len(new) == 1 and new != pids, f"after SIGKILL of {pids[0]}: punchgate pids {new}")
        before, after = first["result"].get("peer_id"), second["result"].get("peer_id")
        check(before and before == after, f"peer id {before!r} became {after!r} across the restart")
    finally:
        for p in h.procs:
            p.terminate(timeout=10)  # SIGTERM: the user manager stops its units and exits
        kill_nodes(h.tmpdir.as_posix())


# --------------------------------------------------------------------------
# (b) the rendered launchd plist

def test_launchd_plist(h):
    sb = Sandbox(h)
    binary = os.path.realpath(h.punchgate)
    data = plistlib.loads(sb.service_unit("launchd").encode())
    check_plist(data, binary, str(sb.env_file), str(sb.home / ".local" / "state" / "punchgate" / "punchgate.log"))


def test_launchd_plist_escapes_markup(h):
    sb = Sandbox(h, home="a&b <c> \"d\" 'e'")
    binary = sb.punchgate_copy("x&y <z>")
    text = sb.service_unit("launchd", binary)
    data = plistlib.loads(text.encode())
    check_plist(data, str(binary), str(sb.env_file), str(sb.home / ".local" / "state" / "punchgate" / "punchgate.log"))
    check("&amp;" in text and "&lt;" in text, "the paths were not written as escaped markup")


# --------------------------------------------------------------------------
# (c) and (d): the templates in deploy/

def test_deploy_user_unit_verifies(h):
    sb = Sandbox(h)
    binary = sb.punchgate_copy("my bin")
    text = template_with_binary((DEPLOY / "systemd" / "punchgate.service").read_text(), str(binary))
    d = directives(text)
    check(one(d, "EnvironmentFile") == "%h/.config/punchgate/punchgate.env",
          f"EnvironmentFile={d.get('EnvironmentFile')}")
    check(one(d, "Restart") == "on-failure", f"Restart={d.get('Restart')}")
    sb.unit_file.parent.mkdir(parents=True)
    sb.unit_file.write_text(text)
    verify(sb.unit_file, sb)


HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK", "RestrictNamespaces": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "", "DynamicUser": "yes", "EnvironmentFile": "/etc/punchgate/%i.env",
    "StateDirectory": "punchgate/%i", "RuntimeDirectory": "punchgate-%i", "Restart": "on-failure",
}


def test_deploy_system_template_verifies(h):
    binary = Sandbox(h).punchgate_copy("my bin")
    text = template_with_binary((DEPLOY / "systemd" / "punchgate@.service").read_text(), str(binary))
    d = directives(text)
    for k, v in HARDENING.items():
        check(one(d, k) == v, f"punchgate@.service: {k}={d.get(k)}, want {v!r}")
    envs = d.get("Environment", [])
    for want in ("PUNCHGATE_IDENTITY=%S/punchgate/%i/identity.key",
                 "PUNCHGATE_CONTROL_SOCKET=%t/punchgate-%i/control.sock"):
        check(want in envs, f"punchgate@.service: no Environment={want} (has {envs})")
    # an instance, as systemd would load it: punchgate@test.service, in system mode
    unit = Path(h.path("system", "punchgate@test.service"))
    unit.parent.mkdir()
    unit.write_text(text)
    verify(unit, None)
    # and the sandbox as a whole: exposure at most 2.0 of 10 ("OK") by systemd's own scoring
    argv = [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)]
    r = subprocess.run(argv, env=analyze_env(None), capture_output=True, timeout=T)
    check(r.returncode == 0, f"`{' '.join(argv)}` exited {r.returncode}:\n"
          f"{(r.stdout + r.stderr).decode(errors='replace')[-3000:]}")


def test_deploy_launchd_plist(h):
    path = DEPLOY / "launchd" / f"{LABEL}.plist"
    with open(path, "rb") as f:
        data = plistlib.load(f)
    check_plist(data, "/usr/local/bin/punchgate", "/Users/YOU/.config/punchgate/punchgate.env", None)


# --------------------------------------------------------------------------

def preflight(args):
    problem = check_punchgate_binary(args)
    if problem:
        return problem
    if not os.access(SYSTEMD_ANALYZE, os.X_OK):
        return f"systemd-analyze not found at {SYSTEMD_ANALYZE} (scripts/deps.sh installs systemd)"
    return None


if __name__ == "__main__":
    main([
        test_verify_catches_mistakes,
        test_systemd_unit_verifies,
        test_systemd_unit_paths_with_spaces,
        test_systemd_unit_path_systemd_refuses,
        test_systemd_unit_runs_under_user_manager,
        test_launchd_plist,
        test_launchd_plist_escapes_markup,
        test_deploy_user_unit_verifies,
        test_deploy_system_template_verifies,
        test_deploy_launchd_plist,
    ], description=__doc__, preflight=preflight)
