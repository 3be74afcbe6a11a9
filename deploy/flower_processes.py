"""Flower's own processes, started and stopped from Python: SuperLink, SuperNode, ``flwr run``.

The simulated and the production federation both run Flower's Deployment Engine
processes: ``flower-superlink``, ``flower-supernode`` and the ``flwr`` CLI. This module
holds what both need and nothing about either:

- the environment every Flower process gets: ``FLWR_HOME`` where the caller says (never
  the user's home by accident), no runtime dependency installation, no update check and
  no telemetry (nothing is downloaded or sent at run time);
- the Flower App folder that ``flwr run`` submits: a pyproject whose
  ``[tool.flwr.app.config]`` holds the flat run config, the code being the installed
  ``cesagram-fl`` package;
- a Flower connection (``config.toml`` under ``FLWR_HOME``) with the CA certificate;
- :class:`FlowerProcess`: a child process in its own session, stopped with its whole
  tree by PID (Flower's helpers start their own sessions, so a process group is not
  enough);
- :func:`die_with_parent`: ties a child to its parent's life (the kernel's parent-death
  signal), so that a SIGKILLed command leaves no Flower process behind;
- probes: is a TCP address reachable, does its TLS certificate verify against a CA.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from federation.errors import ConfigError, DeploymentError
from federation.io import atomic_write_text

__all__ = [
    "APP_NAME",
    "CLIENT_APP",
    "SECAGG_CLIENT_APP",
    "SERVER_APP",
    "DeploymentError",
    "FlowerProcess",
    "descendants",
    "die_with_parent",
    "flower_bin",
    "flower_env",
    "free_port",
    "parse_address",
    "process_name",
    "probe_tls",
    "session_members",
    "stop_tree",
    "wait_https_ready",
    "write_app_dir",
    "write_connection",
]

log = logging.getLogger(__name__)

SERVER_APP = "server.app:app"
CLIENT_APP = "clients.app:app"
SECAGG_CLIENT_APP = "clients.secagg:app"
APP_NAME = "cesagram-fl"
CONNECTION = "cesagram"




def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_address(address: str, *, what: str = "--superlink") -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[IPv6]:PORT``) or raise a one-line error naming ``what``."""
    host, sep, port_text = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} {address!r} is not HOST:PORT; write it like superlink.example.org:9092")
    return host, int(port_text)


def flower_env(flwr_home: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Flower process we start.

    Parameters
    ----------
    flwr_home
        Flower's state and config folder; None keeps the caller's ``FLWR_HOME`` (or
        Flower's default, ``~/.flwr``).
    extra
        More variables, e.g. ``CESAGRAM_CACHE_DIR``.

    Notes
    -----
    Runtime dependency installation, the update check and telemetry are switched off:
    a node must run the code its operator installed and audited, and nothing leaves the
    machine but what the federation itself sends.
    """
    env = os.environ.copy()
    # Flower starts its helpers (flower-superexec, flwr-clientapp) by name: put this
    # environment's scripts first, also when Python was started without activating it.
    scripts = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != scripts:
        env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    env.update(
        {
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


def flower_bin(name: str) -> str:
    """The path of a Flower executable, or a one-line error saying how to install it."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise DeploymentError(f"`{name}` is not on PATH; install the project with `pip install -e .` in this environment")
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_app_dir(
    app_dir: Path,
    run_config: Mapping[str, object],
    *,
    serverapp: str = SERVER_APP,
    clientapp: str = CLIENT_APP,
) -> Path:
    """Write the Flower App folder that ``flwr run`` submits: a pyproject with the run config.

    The app's code is the installed ``cesagram-fl`` package (nodes run the version their
    operator installed and audited), so the FAB carries only this configuration and the
    names of the ServerApp and ClientApp objects.
    """
    app_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[build-system]",
        'requires = ["setuptools>=68"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{APP_NAME}"',
        'version = "0.1.0"',
        'description = "CESAGRAM-FL run: the installed cesagram-fl apps with this run config"',
        'license = "Apache-2.0"',
        "dependencies = []",
        "",
        "[tool.flwr.app]",
        'publisher = "cesagram"',
        "",
        "[tool.flwr.app.components]",
        f'serverapp = "{serverapp}"',
        f'clientapp = "{clientapp}"',
        "",
        "[tool.flwr.app.config]",
    ]
    lines += [f'"{key}" = {_toml_value(value)}' for key, value in sorted(run_config.items())]
    atomic_write_text(app_dir / "pyproject.toml", "\n".join(lines) + "\n")
    return app_dir


def write_connection(
    flwr_home: Path,
    *,
    address: str,
    root_certificates: Path | None,
    name: str = CONNECTION,
) -> str:
    """Write ``FLWR_HOME/config.toml`` with one SuperLink connection; return its name.

    With ``root_certificates`` the connection uses TLS and trusts that CA only; without,
    it is an insecure (loopback simulation) connection.
    """
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{name}"', "", f"[superlink.{name}]", f"address = {_toml_value(address)}"]
    if root_certificates is not None:
        lines.append(f"root-certificates = {_toml_value(str(Path(root_certificates).resolve()))}")
    else:
        lines.append("insecure = true")
    atomic_write_text(flwr_home / "config.toml", "\n".join(lines) + "\n")
    return name


# -- processes ---------------------------------------------------------------------------------
def _process_table() -> dict[int, tuple[int, int, int]]:
    """Every process's (parent, process group, session), by PID, read from ``/proc`` (empty elsewhere)."""
    table: dict[int, tuple[int, int, int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return table
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3:
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in _process_table().items():
        children.setdefault(ppid, []).append(pid)
    return children


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not); read from ``/proc``."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def process_name(pid: int) -> str:
    """The kernel's name of process ``pid`` (``/proc/PID/comm``, e.g. ``raylet``); empty if gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), read from ``/proc`` (empty elsewhere)."""
    tree = _children_map()
    found: list[int] = []
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop(0)
        found.append(child)
        stack.extend(tree.get(child, []))
    return found


def session_members(leader: int) -> list[int]:
    """Every live process of the session or process group that ``leader`` leads, itself excepted (from ``/proc``).

    Unlike :func:`descendants`, this finds them after ``leader`` has exited: its children
    are then reparented, but keep their session and group. The kernel keeps a PID that
    names a live session or group from being reused, so what this finds is ``leader``'s.
    """
    me = os.getpid()
    return [
        pid
        for pid, (_, group, session) in _process_table().items()
        if leader in (group, session) and pid not in (leader, me) and alive(pid)
    ]


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel send ``sig`` to the child when this process dies.

    Returns
    -------
    Callable or None
        Pass it as ``subprocess.Popen(..., preexec_fn=die_with_parent())``; None where the
        kernel has no parent-death signal (not Linux), where Popen then runs nothing.

    Notes
    -----
    Why: a command killed with SIGKILL (the OOM killer, a crashed shell) runs no clean-up,
    and its children live on in sessions of their own (a SuperNode would go on training on
    the node's data). The signal survives ``exec`` and ``setsid``; Flower's own helpers
    (SuperExec, ServerApp, ClientApp processes) follow with ``--parent-pid``, Ray's with
    their fate sharing. ``sig`` is SIGTERM so that Flower still exits cleanly. The kernel
    ties the child to the *thread* that forked it: start children from the main thread
    (or one that lives as long as they should). If the parent died before the signal was
    armed, the child signals itself.
    """
    if _LIBC is None:
        return None
    parent = os.getpid()
    prctl = _LIBC.prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arm


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tree(process: subprocess.Popen[bytes], *, running: bool) -> list[int]:
    """The processes to stop with ``process``: its descendants while it runs, and its session's, by PID."""
    found = descendants(process.pid) if running else []  # once reaped, its PID may be another's
    return found + [pid for pid in session_members(process.pid) if pid not in found]


def stop_tree(process: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> None:
    """Stop ``process``, its process group and every descendant, by PID.

    SIGTERM first (Flower's processes then deregister cleanly), SIGKILL after
    ``grace_s``. Flower's SuperExec starts its own session, so its PID is found through
    ``/proc`` before the parent goes. A parent that has already exited no longer has
    descendants (its children were reparented): the processes still in the session or
    group it led are stopped all the same (:func:`session_members`).
    """
    running = process.poll() is None  # reaps it if it exited: from then on its PID is not ours
    tree = _tree(process, running=running)
    if not running and not tree:
        return
    group = None  # its own process group, signalled as one (never ours)
    if running:
        try:
            group = os.getpgid(process.pid)
        except ProcessLookupError:
            group = None
        if group == os.getpgid(0):
            group = None

    def send(sig: int) -> None:
        """``sig`` to its process group (else to it alone, while it runs) and to every process of the tree."""
        if group is not None:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        elif running:
            _signal(process.pid, sig)
        for pid in tree:
            _signal(pid, sig)

    send(signal.SIGTERM)
    if running:
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    else:  # no parent to wait for: wait for the tree itself
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.05)
    running = process.returncode is None
    tree += [pid for pid in _tree(process, running=running) if pid not in tree]
    send(signal.SIGKILL)
    if running:
        _signal(process.pid, signal.SIGKILL)  # also when it left its group
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            log.warning("process %d did not exit after SIGKILL", process.pid)


class FlowerProcess:
    """One Flower process (or ``cesagram`` command) in its own session, owned by this object.

    Output goes to ``log_path``; :meth:`stop` ends the process and everything it started.
    Use as a context manager so that an exception cannot leave it running; the process
    also dies with its owner (:func:`die_with_parent`).
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise DeploymentError("process not started")
        return self.process.pid

    def start(self) -> FlowerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - only arms the parent-death signal
            )
        log.debug("started pid %d: %s", self.process.pid, " ".join(self.argv[:3]))
        return self

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        if self.process is None:
            raise DeploymentError("process not started")
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, *, grace_s: float = 10.0) -> None:
        if self.process is not None:
            stop_tree(self.process, grace_s=grace_s)

    def kill(self) -> None:
        """SIGKILL the process and its whole tree at once, as a crash would."""
        if self.process is None:
            return
        tree = descendants(self.process.pid)
        try:
            os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in tree:
            _signal(pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> FlowerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- probes ------------------------------------------------------------------------------------
def _tls_context(ca_path: Path) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_path))
    except (ssl.SSLError, OSError) as error:
        raise DeploymentError(f"{ca_path}: cannot use it as a CA certificate ({error}); pass the coordinator's ca.crt") from None


def probe_tls(address: str, *, ca_path: Path, timeout_s: float = 5.0, what: str = "--superlink") -> None:
    """Check that ``address`` answers and that its certificate verifies against ``ca_path``.

    Raises
    ------
    DeploymentError
        One line each for: an address that is not HOST:PORT, a host that does not
        resolve, nothing listening (or a firewall) within ``timeout_s``, and a certificate
        that this CA did not sign or that does not name the host.

    Notes
    -----
    Only a TLS handshake: no Flower message is sent and nothing about the node is
    disclosed. The same check Flower's SuperNode makes, done first so that the operator
    gets one clear line instead of a retry loop.
    """
    host, port = parse_address(address, what=what)
    context = _tls_context(ca_path)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or str(error)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            raise DeploymentError(
                f"the SuperLink at {address} presents a certificate that does not name {host!r} ({reason}); "
                "dial the host name the coordinator gave you, or ask for a certificate that names this one"
            ) from None
        raise DeploymentError(
            f"the SuperLink at {address} presents a certificate that {ca_path} did not sign ({reason}); "
            "check that --ca is the coordinator's ca.crt for this federation"
        ) from None
    except ssl.SSLError as error:
        raise DeploymentError(
            f"TLS handshake with {address} failed ({error.reason or error}); is it a SuperLink started with TLS?"
        ) from None
    except socket.gaierror:
        raise DeploymentError(f"{what} {address}: host {host!r} does not resolve; check the name") from None
    except (TimeoutError, socket.timeout):
        raise DeploymentError(
            f"{what} {address} did not answer within {timeout_s:g} s; check the address, the firewall and that the "
            "SuperLink is running"
        ) from None
    except OSError as error:
        raise DeploymentError(
            f"{what} {address} is unreachable ({error.strerror or error}); check the address and that the SuperLink "
            "is running"
        ) from None


def wait_https_ready(
    address: str,
    *,
    ca_path: Path | None,
    process: FlowerProcess | None = None,
    timeout_s: float = 60.0,
) -> None:
    """Wait until a SuperLink's HTTP API answers ``/health`` (over TLS with ``ca_path``)."""
    host, port = parse_address(address)
    scheme = "https" if ca_path is not None else "http"
    context = _tls_context(ca_path) if ca_path is not None else None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DeploymentError(f"the process exited at start-up (status {process.poll()}); see {process.log_path}")
        try:
            with urllib.request.urlopen(f"{scheme}://{host}:{port}/health", timeout=2.0, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError, ssl.SSLError):
            pass
        time.sleep(0.3)
    raise DeploymentError(f"nothing answered at {address} within {timeout_s:.0f} s")
