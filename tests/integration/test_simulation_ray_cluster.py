"""``federation.ray_address``: the quick experiment on a Ray head started on loopback, stopped by its PID."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulations.benchmarks.ray_cluster import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # no two Ray instances side by side


def test_quick_experiment_runs_on_an_existing_ray_cluster_and_leaves_no_ray_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() checks the report, that the cluster's workers got the simulation's node policy
    # (count granularity 7), that no private Ray started, and that no Ray process is left.
    status = main(["--keep", str(tmp_path / "cluster")])
    out = capsys.readouterr().out
    assert status == 0, out[-3000:]
    assert "FAIL" not in out and "OK: report written" in out
