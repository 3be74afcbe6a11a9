"""Looking processes up by PID, for tests that check that nothing outlives the command that started it,
and a stale Ray cluster for those that check Ray never joins one."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

from deploy.flower_processes import alive, free_port

__all__ = ["alive", "kill_all", "left_after", "stale_ray_tmpdir"]


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


def stale_ray_tmpdir() -> Path:
    """A Ray temp folder whose ``ray_current_cluster`` names a head that no longer runs (short path: Ray's sockets)."""
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    (folder / "ray").mkdir()
    (folder / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}\n")
    return folder
