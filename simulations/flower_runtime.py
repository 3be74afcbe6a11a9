"""Flower's own runtime on one machine: a private SuperLink in simulation mode and ``flwr run``.

`flwr.simulation.run_simulation` is deprecated and hands the ServerApp an empty run config,
and ``flwr run`` against the default local connection leaves a detached SuperLink behind.
So each run starts its own SuperLink on free loopback ports, with ``FLWR_HOME`` inside the
run folder (the user's home is never touched), submits the app with ``flwr run`` and stops
the SuperLink with everything it spawned (SuperExec, the simulation process, Ray workers), by PID.

Nothing here may hang or leak:

- Ray is private to the run unless ``federation.ray_address`` names a cluster: Flower's
  ``ray.init()`` would otherwise join whatever ``RAY_ADDRESS`` or the stale
  ``ray_current_cluster`` of Ray's temp folder names, and wait there for good;
- each start-up step that waits (the SuperLink, Ray, the first round) has a deadline
  (:class:`RuntimeSettings`) and fails with one line naming the step and the fix;
- every process is tied to this one's life and stopped with its whole tree on the way out,
  so an interrupt, SIGTERM or SIGKILL leaves nothing running.

The processes, the connection and the submission are production's own helpers
(:class:`~deploy.flower_processes.FlowerProcess`, :func:`~deploy.flower_processes.write_connection`,
:func:`~deploy.flower_run.submit_run`); what is the simulation's alone is here: the SuperLink
in simulation mode under :mod:`simulations.tree_guard`, private Ray, and the start-up steps.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from deploy.flower_processes import (
    FlowerProcess,
    descendants,
    flower_bin,
    flower_env,
    free_port,
    process_name,
    wait_https_ready,
    write_connection,
)
from deploy.flower_run import StartupStep, submit_run
from deploy.settings import RuntimeSettings, SimulationResources
from federation.errors import DeploymentError, RuntimeFailure

log = logging.getLogger(__name__)

#: Processes of a local Ray instance: one of them under the SuperLink means Ray has started.
RAY_PROCESSES = frozenset({"raylet", "gcs_server"})
#: The name of the private SuperLink's connection in the run's ``FLWR_HOME``.
CONNECTION = "sim"


def _has_lines(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


class LocalSuperLink:
    """A SuperLink in simulation mode on loopback, owned (and stopped) by this object."""

    def __init__(
        self,
        workdir: Path,
        *,
        runtime: RuntimeSettings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.runtime = runtime or RuntimeSettings()
        node_env = dict(env or {})
        # For the virtual nodes too: Flower's processes and a private Ray's workers inherit it.
        self.env = {**node_env, **self.runtime.ray_environment(node_env)}
        self.flwr_home = workdir / ".flwr"
        self.port = free_port()
        self.health_port = free_port()
        self.log_path = workdir / "superlink.log"
        self.process: FlowerProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalSuperLink:
        self.runtime.check_cluster()
        write_connection(self.flwr_home, address=self.address, root_certificates=None, name=CONNECTION)
        argv = [
            sys.executable,  # the guard: on this process's death it stops the SuperLink's whole tree, Ray's agents too
            "-m",
            "simulations.tree_guard",
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
        self.process = FlowerProcess(argv, env=flower_env(self.flwr_home, self.env), log_path=self.log_path).start()
        log.debug("SuperLink pid %d on %s", self.process.pid, self.address)
        try:
            self._wait_ready(self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, process: FlowerProcess) -> None:
        timeout_s = self.runtime.superlink_s
        try:
            wait_https_ready(self.address, ca_path=None, process=process, timeout_s=timeout_s)
        except DeploymentError:
            if process.poll() is not None:
                raise RuntimeFailure(f"the local SuperLink exited at start-up; see {self.log_path}") from None
            raise RuntimeFailure(
                f"the local SuperLink did not answer on {self.address} within {timeout_s:g} s; see {self.log_path}, "
                "or allow longer on a busy machine with federation.startup.superlink_s"
            ) from None

    def _ray_running(self) -> bool:
        pid = self.process.pid if self.process is not None else None
        return pid is not None and any(process_name(child) in RAY_PROCESSES for child in descendants(pid))

    def _stopped(self) -> str | None:
        if self.process is not None and self.process.poll() is None:
            return None
        return f"the local SuperLink stopped during the run; see {self.log_path}"

    def startup_steps(self, *, progress_path: Path, log_path: Path) -> list[StartupStep]:
        """What a run waits for after its submission: a private Ray instance, then the first round."""
        runtime = self.runtime
        steps = []
        if runtime.private_ray:
            steps.append(
                StartupStep(
                    "Ray",
                    runtime.ray_s,
                    self._ray_running,
                    f"Ray did not start within {runtime.ray_s:g} s of the run's submission (no raylet under the "
                    f"simulation); see {log_path}; check the free space of Ray's temp folder (RAY_TMPDIR, default "
                    "/tmp/ray), or allow longer on a busy machine with federation.startup.ray_s",
                )
            )
        where = "the private Ray instance" if runtime.private_ray else f"the Ray cluster at {runtime.ray_address}"
        steps.append(
            StartupStep(
                "first round",
                runtime.first_round_s,
                lambda: _has_lines(progress_path),
                f"the first round did not finish within {runtime.first_round_s:g} s on {where}; see {log_path}; "
                "if a round takes longer (large data, the MiniLM encoder on CPU), raise federation.startup.first_round_s",
            )
        )
        return steps

    def run_app(
        self,
        app_dir: Path,
        resources: SimulationResources,
        *,
        log_path: Path,
        progress_path: Path,
        timeout_s: float | None = None,
    ) -> int:
        """Submit the app with ``flwr run --stream`` and wait until the run ends.

        ``progress_path`` is the ServerApp's progress file: its first line ends the
        start-up. A missed deadline stops ``flwr run`` and raises :class:`RuntimeFailure`;
        the caller's ``with`` stops the SuperLink and everything under it.
        """
        return submit_run(
            app_dir,
            CONNECTION,
            flwr_home=self.flwr_home,
            log_path=log_path,
            federation_config=resources.federation_config(),
            steps=self.startup_steps(progress_path=progress_path, log_path=log_path),
            alive=self._stopped,
            timeout_s=timeout_s,
        )

    def stop(self) -> None:
        """Stop the SuperLink and everything it started, by PID.

        Flower's SuperExec and the simulation process (with its Ray workers) run in a
        session of their own, so the process group alone would miss them; ``stop_tree``
        finds them through ``/proc`` first. The process is :mod:`simulations.tree_guard`
        with the SuperLink under it.
        """
        process, self.process = self.process, None
        if process is not None:
            process.stop()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
