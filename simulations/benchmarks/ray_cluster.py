"""``federation.ray_address`` end to end: the quick experiment on a Ray cluster started here, on loopback.

Run: ``python -m simulations.benchmarks.ray_cluster [--keep DIR] [hydra overrides]``. It

1. starts a Ray head with ``ray start --head --block`` on a free loopback port, with Ray's
   temp folder of its own (so no ``ray_current_cluster`` is left in /tmp/ray), owned by
   one PID;
2. runs ``cesagram simulate experiment=quick federation.ray_address=127.0.0.1:PORT`` with
   the virtual nodes' count granularity set to 7, so that the report shows whether the
   cluster's workers got the simulation's node policy (a real node's default is 10);
3. checks the report, that the run started no Ray of its own, and, after stopping the
   head by its PID, that no Ray process is left;
4. prints the measured times (head start, run, stop) and exits 1 if a check failed.

``tests/integration/test_simulation_ray_cluster.py`` runs it in the suite (about a minute
on 2 cores); the config plumbing alone is tested in ``tests/deploy/test_flower_runtime.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.flower_processes import FlowerProcess, alive, descendants, flower_bin, free_port, process_name

GRANULARITY = 7


def start_head(folder: Path, env: dict[str, str], *, timeout_s: float = 120.0) -> tuple[FlowerProcess, int]:
    """A Ray head on loopback, owned by one process; returns it and the head's port once its raylet runs."""
    port = free_port()
    head = FlowerProcess(
        [flower_bin("ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        env=env, log_path=folder / "ray-head.log",
    )  # fmt: skip
    head.start()
    deadline = time.monotonic() + timeout_s
    while not any(process_name(pid) == "raylet" for pid in descendants(head.pid)):
        if head.poll() is not None or time.monotonic() > deadline:
            head.stop()
            raise SystemExit(f"the Ray head did not start within {timeout_s:g} s; see {head.log_path}")
        time.sleep(0.3)
    return head, port


def check_report(run_dir: Path) -> list[str]:
    """What is wrong with the run's report (empty when all is well)."""
    problems = []
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    rounds = [entry["round"] for entry in report.get("rounds", [])]
    if rounds != list(range(1, int(report["config"]["rounds"]) + 1)):
        problems.append(f"rounds recorded {rounds}")
    counts = {name: node.get("conversations") for name, node in report.get("nodes", {}).items()}
    if not counts or any(not isinstance(c, int) or c % GRANULARITY for c in counts.values()):
        problems.append(f"the nodes' counts {counts} are not multiples of {GRANULARITY}: the node policy did not reach the cluster")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the run folder here (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for the run")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="cesagram-ray-cluster-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rayc-", dir="/tmp"))  # short: Ray's socket paths
    # Ray's temp folder of its own: the head's sessions, and a private Ray's if the run wrongly started one.
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_TMPDIR": str(ray_tmp)}
    problems: list[str] = []
    started = time.perf_counter()
    head, port = start_head(folder, env)
    head_s = time.perf_counter() - started
    ray_pids = {pid: process_name(pid) for pid in descendants(head.pid)}
    run_dir = folder / "run"
    try:
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "cesagram", "simulate", "experiment=quick", "compare_baselines=false",
             f"hydra.run.dir={run_dir}", f"federation.ray_address=127.0.0.1:{port}",
             f"federation.node_policy.count_granularity={GRANULARITY}", *args.overrides],
            env=env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        run_s = time.perf_counter() - started
        print(completed.stdout, end="")
        if completed.returncode != 0:
            problems.append(f"cesagram simulate exited with {completed.returncode}: {completed.stderr.strip()[-500:]}")
        else:
            problems += check_report(run_dir)
        sessions = sorted(p.name for p in (ray_tmp / "ray").glob("session_2*"))
        if len(sessions) != 1:
            problems.append(f"Ray sessions in the head's temp folder: {sessions} (the run started a Ray of its own?)")
        ray_pids.update({pid: process_name(pid) for pid in descendants(head.pid)})
    finally:
        started = time.perf_counter()
        head.stop(grace_s=10)
        stop_s = time.perf_counter() - started
        shutil.rmtree(ray_tmp, ignore_errors=True)
    left = {pid: name for pid, name in ray_pids.items() if alive(pid)}
    if left:
        problems.append(f"Ray processes left after stopping the head: {left}")
    print(f"ray head start: {head_s:.1f} s; cesagram simulate on the cluster: {run_s:.1f} s; head stop: {stop_s:.1f} s")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("OK: report written, node policy on the cluster's workers, no private Ray, no Ray process left" if not problems else "")
    if args.keep is None and not problems:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
