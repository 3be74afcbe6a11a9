"""Looking processes up by PID, for tests that check that nothing outlives the command that started it."""

from __future__ import annotations

import os
import signal
import time

from deploy.flower_processes import alive

__all__ = ["alive", "kill_all", "left_after"]


def left_after(pids: dict[int, str], *, timeout_s: float) -> dict[int, str]:
    """Those of ``pids`` (pid -> name) still running after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    return {pid: name for pid, name in pids.items() if alive(pid)}


def kill_all(pids: list[int]) -> None:
    """SIGKILL each of ``pids`` that still runs: a test's last word, whatever happened."""
    for pid in pids:
        if pid and alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
