"""SIGTERM stops a real ``cesagram simulate`` and everything it started, even with a stale Ray cluster around.

The command gets SIGTERM as soon as Flower's simulation process runs (before training), with
``RAY_ADDRESS`` and Ray's temp folder both naming a cluster that is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.flower_processes import descendants, process_name
from tests.processes import alive, kill_all, left_after, stale_ray_tmpdir


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _mentioning(*needles: str) -> list[int]:
    """Live processes whose command line names one of ``needles`` (a run folder, a Ray temp folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(needle in cmdline for needle in needles):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # no two Ray instances side by side
def test_sigterm_stops_a_simulation_and_everything_it_started(tmp_path: Path) -> None:
    """SIGTERM once Flower's simulation process runs: every process of the run goes.

    ``RAY_ADDRESS`` and Ray's temp folder both name a head that is gone; the simulation
    process (the one whose ``ray.init()`` hung) must see Ray's word for a private instance.
    """
    temp = stale_ray_tmpdir()
    run_dir = tmp_path / "run"
    stale = (temp / "ray" / "ray_current_cluster").read_text().strip()
    env = {**os.environ, "CESAGRAM_CACHE_DIR": str(tmp_path / "cache"), "RAY_ADDRESS": stale, "RAY_TMPDIR": str(temp)}
    argv = [sys.executable, "-m", "cesagram", "simulate", "experiment=quick", "compare_baselines=false", f"hydra.run.dir={run_dir}"]
    log_path = tmp_path / "simulate.log"
    with log_path.open("wb") as log:
        command = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tree: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and command.poll() is None and "flwr-simulation" not in tree.values():
            tree.update({pid: process_name(pid) for pid in descendants(command.pid)})
            time.sleep(0.2)
        names = " ".join(tree.values())  # the kernel's names: at most 15 characters
        assert "flower-superlin" in names and "flower-superexe" in names and "flwr-simulation" in names, (
            f"{tree}\n{log_path.read_text()[-3000:]}"
        )
        simulation = next(pid for pid, name in tree.items() if name == "flwr-simulation")
        assert _environ(simulation)["RAY_ADDRESS"] == "local"  # its ray.init() starts a private instance
        tree.update({pid: process_name(pid) for pid in descendants(command.pid)})
        os.kill(command.pid, signal.SIGTERM)  # the command alone, as `timeout` or a batch scheduler does
        assert command.wait(timeout=40) == 128 + signal.SIGTERM
        output = log_path.read_text()
        assert "stopped by SIGTERM" in output and "Traceback" not in output, output[-3000:]
        assert left_after(tree, timeout_s=10) == {}
        assert _mentioning(str(run_dir), str(temp)) == []  # nor anything started after the last look (Ray)
    finally:
        kill_all([*tree, *_mentioning(str(run_dir), str(temp)), command.pid])
        command.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)
