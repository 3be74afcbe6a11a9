"""One federation with an attacker, through Flower's runtime: its poisoned replies are rejected and recorded.

3 nodes, 2 rounds, the n-gram model (experiment=quick); node-0 sends NaN weights from
round 2 on. Before update validation a NaN update made every node fail from the next
round and the run end without a model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.integration.test_simulation_e2e import runtime_processes_of, simulate

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # no two Ray instances side by side


def test_nan_updates_are_rejected_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    completed, run_dir = simulate(tmp_path, "nan", "attack=nan", "attack.from_round=2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert runtime_processes_of(run_dir) == []
    report = json.loads((run_dir / "report.json").read_text())

    first, second = report["rounds"]
    assert sorted(first["participants"]) == ["node-0", "node-1", "node-2"] and first["rejected"] == {}
    assert sorted(second["participants"]) == ["node-1", "node-2"]
    assert list(second["rejected"]) == ["node-0"]
    assert "NaN" in second["rejected"]["node-0"] and "infinite" in second["rejected"]["node-0"]
    assert report["nodes"]["node-0"]["rejected"] == {"2": second["rejected"]["node-0"]}
    assert report["nodes"]["node-0"]["failed"] == {} and report["nodes"]["node-1"]["rejected"] == {}
    # node-0 trained and was charged in round 2 (its ledger says so), even though its update was refused.
    assert report["privacy"]["nodes"]["node-0"]["epsilon"] > report["rounds"][0]["metrics"]["epsilon"]["node-0"]
    assert report["attack"] == {"kind": "nan", "attackers": ["node-0"], "from_round": 2}
    assert all(math.isfinite(report["final"][key]) for key in ("f05", "auprc"))

    markdown = (run_dir / "report.md").read_text()
    assert "## Rejected updates" in markdown
    assert f"| 2 | node-0 | {second['rejected']['node-0']} |" in markdown
    assert "nan by node-0 from round 2" in markdown
