"""``experiment=cross_device``, small: many nodes with a few chats each, in one store, under central DP.

300 virtual nodes (the experiment's own shape at a thirtieth of its size: the full 10,000
are measured by ``simulations.benchmarks.cross_device``), 10% sampled per round, through
Flower's runtime; the test checks that no process of the run is left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.central_dp import central_epsilon
from tests.integration.test_simulation_e2e import runtime_processes_of, simulate

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # no two Ray instances side by side


def test_cross_device_run_reads_one_store_samples_nodes_and_states_the_client_level_epsilon(tmp_path: Path) -> None:
    done, run_dir = simulate(
        tmp_path,
        "cross",
        "experiment=cross_device",
        "federation.nodes=300",
        "model=ngram",
        "pretrain.enabled=false",
        "rounds=2",
        "data.test_conversations=100",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert runtime_processes_of(run_dir) == []
    data = run_dir / "data"
    assert (data / "store.json").is_file() and not list(data.glob("node-*.jsonl"))  # no file per node

    report = json.loads((run_dir / "report.json").read_text())
    rounds = report["rounds"]
    assert [entry["round"] for entry in rounds] == [1, 2]
    for entry in rounds:
        assert 10 <= len(entry["participants"]) <= 55  # Poisson at q = 0.1 of 300: 30 expected, sd 5
        assert entry["aggregation_seconds"] >= 0
    central = report["privacy"]["central"]
    assert (central["unit"], central["population"], central["sample_rate"], central["rounds"]) == ("node", 300, 0.1, 2)
    expected = central_epsilon(noise_multiplier=1.0, sample_rate=0.1, rounds=2, delta=1e-5, accountant="rdp")
    assert central["epsilon"] == pytest.approx(expected)
    sizes = [node["conversations"] for node in report["nodes"].values()]
    assert min(sizes) >= 1 and max(sizes) <= 20  # a device's few chats, never a refused empty split
    assert not any(node["failed"] for node in report["nodes"].values())

    markdown = (run_dir / "report.md").read_text()
    quiet = [name for name in report["nodes"] if f"| {name} |" in markdown]
    assert quiet == []  # hundreds of nodes are summarised by kind, not listed
    assert report["nodes_summary"]["platform"]["nodes"] + report["nodes_summary"]["hotline"]["nodes"] > 0
