"""Submitting a run with ``flwr run --stream`` and waiting for its end: one way, for simulation and production.

``cesagram simulate`` submits to its private SuperLink (with the virtual nodes' resources
as ``--federation-config``), ``cesagram server run`` to the federation's SuperLink; both
call :func:`submit_run`. ``flwr run`` is a :class:`~deploy.flower_processes.FlowerProcess`:
its output goes to the run's log, it dies with its caller and is stopped with its tree
on the way out, whatever ends the wait (its exit, a missed deadline, Ctrl-C, SIGTERM).

The wait can fail early: each :class:`StartupStep` (e.g. "Ray runs", "the first round is
recorded") has a deadline counted from the step before it, and ``alive`` names a process
the run depends on that stopped. Each failure is one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.flower_processes import FlowerProcess, flower_bin, flower_env
from federation.errors import RuntimeFailure

__all__ = ["StartupStep", "submit_run", "watch_startup"]

log = logging.getLogger(__name__)


class Polled(Protocol):
    """A process whose exit status can be polled (``subprocess.Popen``, :class:`FlowerProcess`)."""

    def poll(self) -> int | None: ...


@dataclass(frozen=True)
class StartupStep:
    """One step of a run's start-up that is waited for, with its deadline and its one-line failure."""

    name: str
    deadline_s: float
    done: Callable[[], bool]
    failure: str


def watch_startup(
    process: Polled,
    steps: Sequence[StartupStep],
    *,
    alive: Callable[[], str | None] = lambda: None,
    timeout_s: float | None = None,
    log_path: Path | None = None,
    poll_s: float = 0.5,
) -> int:
    """Wait for ``process`` to exit, failing as soon as a start-up step misses its deadline.

    Each step's clock starts when the step before it is done. ``alive`` names a process the
    run depends on that has stopped (None while all run). Returns the exit status; raises
    :class:`RuntimeFailure` with the step's one line, leaving ``process`` for the caller to stop.
    """
    started = step_started = time.monotonic()
    pending = list(steps)
    while (status := process.poll()) is None:
        now = time.monotonic()
        while pending and pending[0].done():
            log.debug("start-up step done: %s after %.1f s", pending[0].name, now - step_started)
            pending.pop(0)
            step_started = now
        if pending and now - step_started > pending[0].deadline_s:
            raise RuntimeFailure(pending[0].failure)
        stopped = alive()
        if stopped is not None:
            raise RuntimeFailure(stopped)
        if timeout_s is not None and now - started > timeout_s:
            raise RuntimeFailure(f"the run did not finish within {timeout_s:.0f} s" + (f"; see {log_path}" if log_path else ""))
        time.sleep(poll_s)
    return int(status)


def submit_run(
    app_dir: Path,
    connection: str,
    *,
    flwr_home: Path,
    log_path: Path,
    federation_config: str | None = None,
    steps: Sequence[StartupStep] = (),
    alive: Callable[[], str | None] = lambda: None,
    timeout_s: float | None = None,
) -> int:
    """Run ``flwr run APP_DIR CONNECTION --stream`` until the run ends; return its exit status.

    Parameters
    ----------
    app_dir
        The Flower App folder (:func:`~deploy.flower_processes.write_app_dir`).
    connection
        A SuperLink connection of ``flwr_home``'s ``config.toml``
        (:func:`~deploy.flower_processes.write_connection`).
    log_path
        Where ``flwr run``'s output (the run's streamed log) is appended.
    federation_config
        ``--federation-config`` overrides (a simulation's virtual nodes and their resources).
    steps, alive, timeout_s
        What :func:`watch_startup` waits for; a missed one raises :class:`RuntimeFailure`.

    Notes
    -----
    ``--stream`` keeps ``flwr run`` running as long as the run, so its exit is the run's
    end. Whatever ends the wait, ``flwr run`` is stopped with its tree (SIGTERM, SIGKILL
    after 5 s); the run's other processes belong to the SuperLink and its caller.
    """
    argv = [flower_bin("flwr"), "run", str(app_dir), connection]
    if federation_config is not None:
        argv += ["--federation-config", federation_config]
    argv.append("--stream")
    process = FlowerProcess(argv, env=flower_env(flwr_home), log_path=log_path).start()
    try:
        return watch_startup(process, steps, alive=alive, timeout_s=timeout_s, log_path=log_path)
    finally:
        process.stop(grace_s=5.0)
