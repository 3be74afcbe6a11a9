"""Flower's own runtime on one machine: a private SuperLink in simulation mode and ``flwr run``.

`flwr.simulation.run_simulation` is deprecated and hands the ServerApp an empty run config,
and ``flwr run`` against the default local connection leaves a detached SuperLink behind.
So each run starts its own SuperLink on free loopback ports, with ``FLWR_HOME`` inside the
run folder (the user's home is never touched), submits the app with ``flwr run`` and stops
the SuperLink with everything it spawned (SuperExec, the simulation process, Ray workers), by PID.
"""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from federation.errors import CesagramError
from federation.flower_processes import flower_bin, flower_env, free_port, stop_tree

log = logging.getLogger(__name__)


class RuntimeFailure(CesagramError):
    """Flower's runtime could not be started or the run failed inside it."""


@dataclass(frozen=True)
class SimulationResources:
    """Virtual nodes and what each may use."""

    num_supernodes: int
    num_cpus: int = 1
    num_gpus: float = 0.0

    def federation_config(self) -> str:
        return (
            f"num-supernodes={self.num_supernodes} "
            f"client-resources-num-cpus={self.num_cpus} "
            f"client-resources-num-gpus={self.num_gpus}"
        )


class LocalSuperLink:
    """A SuperLink in simulation mode on loopback, owned (and stopped) by this object."""

    def __init__(self, workdir: Path, *, startup_timeout_s: float = 60.0, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = dict(env or {})  # for the virtual nodes too: Flower's processes and Ray's workers inherit it
        self.flwr_home = workdir / ".flwr"
        self.port = free_port()
        self.health_port = free_port()
        self.log_path = workdir / "superlink.log"
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalSuperLink:
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        (self.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "sim"\n\n[superlink.sim]\naddress = "{self.address}"\ninsecure = true\n',
            encoding="utf-8",
        )
        command = [
            flower_bin("flower-superlink"),
            "--insecure",
            "--simulation",
            "--isolation",
            "subprocess",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--health-server-address",
            f"127.0.0.1:{self.health_port}",
            "--control-api-address",  # Flower's older gRPC Control API: loopback, a port of its own
            f"127.0.0.1:{free_port()}",
            "--disable-runtime-dependency-installation",
        ]
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command,
                env=flower_env(self.flwr_home, self.env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        log.debug("SuperLink pid %d on %s", self.process.pid, self.address)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                self.stop()
                raise RuntimeFailure(f"the local SuperLink exited at start-up; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/health", timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeFailure(f"the local SuperLink did not start within {self.startup_timeout_s:.0f} s; see {self.log_path}")

    def run_app(
        self,
        app_dir: Path,
        resources: SimulationResources,
        *,
        log_path: Path,
        timeout_s: float | None = None,
    ) -> int:
        """Submit the app with ``flwr run --stream`` and wait until the run ends."""
        command = [
            flower_bin("flwr"),
            "run",
            str(app_dir),
            "sim",
            "--federation-config",
            resources.federation_config(),
            "--stream",
        ]
        with open(log_path, "ab") as log_file:
            try:
                completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    command,
                    env=flower_env(self.flwr_home),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise RuntimeFailure(f"the run did not finish within {timeout_s:.0f} s; see {log_path}") from error
        return completed.returncode

    def stop(self) -> None:
        """Stop the SuperLink and everything it started, by PID.

        Flower's SuperExec and the simulation process (with its Ray workers) run in a
        session of their own, so the process group alone would miss them; ``stop_tree``
        finds them through ``/proc`` first.
        """
        process, self.process = self.process, None
        if process is not None:
            stop_tree(process)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
