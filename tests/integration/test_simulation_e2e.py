"""The main job end to end, small: 3 nodes, 2 rounds, the n-gram model, through Flower's runtime.

Each run starts its own SuperLink (and through it Flower's simulation process and Ray) and
stops them by process group before returning; the test checks that none is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federation.privacy.accounting import epsilon_of
from federation.privacy.ledger import PrivacyLedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # no two Ray instances side by side

RUNTIME_PROCESSES = ("flower-superlink", "flwr-simulation", "raylet", "gcs_server")


def simulate(tmp_path: Path, name: str, *overrides: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    run_dir = tmp_path / name
    env = {**os.environ, "CESAGRAM_CACHE_DIR": str(tmp_path / "cache")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cesagram",
            "simulate",
            "experiment=quick",
            f"hydra.run.dir={run_dir}",
            f"federation.ledger_dir={tmp_path / 'ledgers'}",
            "compare_baselines=false",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    return completed, run_dir


def runtime_processes_of(run_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(run_dir) in line and any(p in line for p in RUNTIME_PROCESSES)]


def test_small_federation_report_ledgers_and_continued_spend(tmp_path: Path) -> None:
    pretraining = ("pretrain.enabled=true", "pretrain.conversations=200", "pretrain.epochs=2")  # a small public set
    first, run1 = simulate(tmp_path, "run1", "privacy.epsilon=3", "privacy.cap=5", *pretraining)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert sum(line.startswith("round ") for line in lines) == 2
    assert f"run folder: {run1}" in lines[-1]
    assert lines[0].startswith("CESAGRAM-FL federated run: 3 nodes")
    # A quiet console: the header, one line per round, the summary; INFO logs only in main.log.
    assert len(lines) + len(first.stderr.splitlines()) <= 30, first.stdout + first.stderr
    assert not any("[INFO]" in line for line in lines) and "[INFO]" in (run1 / "main.log").read_text()
    assert runtime_processes_of(run1) == []

    report = json.loads((run1 / "report.json").read_text())
    assert set(report) >= {"config", "rounds", "final", "privacy", "nodes", "timing", "communication"}
    assert [entry["round"] for entry in report["rounds"]] == [1, 2]
    for entry in report["rounds"]:
        assert set(entry["metrics"]) >= {"f05", "f1", "precision", "recall", "auprc", "epsilon"}
        assert sorted(entry["metrics"]["epsilon"]) == ["node-0", "node-1", "node-2"]
        assert entry["train_loss"] is None  # nodes do not send their training loss (clients/allow_list.py)
    assert set(report["final"]) >= {"f05", "f1", "precision", "recall", "auprc", "latency_f1", "speed", "erde5", "erde50"}
    assert set(report["timing"]) >= {"startup", "encoding", "training", "evaluation"}
    assert report["config"]["model"]["name"] == "ngram"
    public = report["training"]["public"]  # the server pretrained the head before round 1
    assert (public["conversations"], public["epochs"]) == (200, 2) and 1 <= public["best_epoch"] <= 2
    assert report["training"]["private"]["privacy"] == "record"
    for name, node in report["nodes"].items():
        assert node["rounds"] == [1, 2]
        assert node["conversations"] > 0
        assert node["kind"] in ("hotline", "police", "platform")
        assert set(report["communication"][name]) == {"1", "2"}
        assert report["communication"][name]["1"]["sent_bytes"] > 0
    for relative in ("report.md", "report.html", "metrics.png", "epsilon.png", "participation.png", "model/weights.safetensors", "model/model.json", "model/MODEL_CARD.md"):
        assert (run1 / relative).is_file(), relative

    # The report's epsilon is what each ledger records, and what one accountant over its steps gives.
    first_spend = {}
    for name, privacy in report["privacy"]["nodes"].items():
        ledger = PrivacyLedger.open(tmp_path / "ledgers" / f"{name}.json")
        steps = [(e.noise_multiplier, e.sample_rate, e.steps) for e in ledger.entries]
        assert privacy["epsilon"] == pytest.approx(ledger.spent, abs=1e-9)
        assert ledger.spent == pytest.approx(epsilon_of(steps, delta=1e-5), abs=1e-9)
        assert privacy["delta"] == 1e-5 and privacy["accountant"] == "rdp" and privacy["unit"] == "conversation"
        assert privacy["cap"] == 5.0
        assert 2.5 < ledger.spent <= 3.0 + 1e-9
        first_spend[name] = ledger.spent

    # Rerunning with the same ledgers continues their spend: up to min(cap, spent + run epsilon).
    second, run2 = simulate(tmp_path, "run2", "privacy.epsilon=3", "privacy.cap=5")
    assert second.returncode == 0, second.stderr[-3000:]
    report2 = json.loads((run2 / "report.json").read_text())
    for name, privacy in report2["privacy"]["nodes"].items():
        ledger = PrivacyLedger.open(tmp_path / "ledgers" / f"{name}.json")
        assert len(ledger.runs) == 2
        assert ledger.spent > first_spend[name]
        assert ledger.spent <= 5.0 + 1e-9
        assert privacy["epsilon"] == pytest.approx(ledger.spent, abs=1e-9)

    # A third run: the budget is spent, one node's data is broken. Nobody trains; the run ends cleanly.
    data = tmp_path / "broken-data"
    shutil.copytree(run1 / "data", data)
    (data / "node-1.jsonl").write_text('{"id": "x", "label": 7, "messages": []}\n')
    third, run3 = simulate(tmp_path, "run3", "privacy.epsilon=3", "privacy.cap=5", "data=jsonl", f"data.dir={data}")
    assert third.returncode == 0, third.stderr[-3000:]
    report3 = json.loads((run3 / "report.json").read_text())
    assert report3["rounds"][0]["participants"] == []
    assert sorted(report3["rounds"][0]["declined"]) == ["node-0", "node-2"]
    assert "node-1.jsonl:1" in report3["rounds"][0]["failed"]["node-1"]
    assert "label" in report3["rounds"][0]["failed"]["node-1"]
    assert report3["privacy"]["nodes"]["node-0"]["stopped_for_budget"] is True
    assert any("every node" in note or "no node trained" in note for note in report3["notes"])
    assert len(report3["rounds"]) == 1
    assert runtime_processes_of(run3) == []
