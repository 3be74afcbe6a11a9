"""The baselines' model choice: a party without DP keeps its best validation round, one under DP its last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import simulations.baselines as baselines
from conf.settings import compose
from federation.history import RunHistory
from federation.models.features import FeatureSet
from federation.training import EvalResult, TrainResult
from simulations.settings import run_settings

LABELS = np.array([0, 1] * 20)


def _features() -> FeatureSet:
    return FeatureSet(
        embeddings=np.eye(4, dtype=np.float32),
        rows=[np.array([i % 4]) for i in range(len(LABELS))],
        speakers=[np.array([0]) for _ in LABELS],
        labels=LABELS,
        ids=[f"c{i}" for i in range(len(LABELS))],
    )


@pytest.fixture
def rounds_scored(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Round r's weights are all r; validation separates the classes only at round 2."""

    def fake_round(*, head, round, **_: object) -> TrainResult:
        arrays = [np.full_like(p.detach().numpy(), float(round)) for p in head.parameters()]
        return TrainResult(arrays=arrays, num_examples=len(LABELS), steps=1, train_loss=0.5, seconds=0.0)

    seen: list[float] = []

    def fake_evaluate(*, head, data, window) -> EvalResult:
        weight = float(next(head.parameters()).detach().flatten()[0])
        seen.append(weight)
        good = weight == 2.0
        scores = np.where(LABELS == 1, 0.9, 0.1) if good else np.where(LABELS == 1, 0.4, 0.6)
        return EvalResult(loss=0.0, scores=scores.astype(np.float32), labels=LABELS, num_examples=len(LABELS))

    monkeypatch.setattr(baselines, "local_round", fake_round)
    monkeypatch.setattr(baselines, "evaluate", fake_evaluate)
    return seen


def _party() -> baselines.Party:
    return baselines.Party(name="pooled", kind="all", train=_features(), validation=_features(), conversations=80, positives=40)


def _settings(tmp_path: Path, *overrides: str):
    cfg = compose(["mode=centralized", "model=ngram", "rounds=4", *overrides])
    return run_settings(cfg, run_dir=tmp_path, data_dir=tmp_path / "data", test_path=tmp_path / "t.jsonl", ledger_dir=tmp_path / "l")


@pytest.mark.parametrize("evaluate_each_round", [True, False])
def test_a_party_without_dp_keeps_its_best_validation_round(
    rounds_scored: list[float], tmp_path: Path, evaluate_each_round: bool
) -> None:
    history = RunHistory()
    head, histogram = baselines.train_party(
        _party(), _settings(tmp_path, "privacy=none"), 4, tmp_path / "l", history, evaluate_each_round=evaluate_each_round
    )
    assert rounds_scored == [1.0, 2.0, 3.0, 4.0]  # every round scored on validation, even when only the last is reported
    assert all(float(p.detach().flatten()[0]) == 2.0 for p in head.parameters())
    assert histogram is not None and histogram.auprc() == pytest.approx(1.0)
    assert history.notes == ["pooled: kept round 2 of 4, the best validation F0.5 (1.000); without DP the run's settings overshoot"]


def test_a_party_under_dp_keeps_its_last_round(rounds_scored: list[float], tmp_path: Path) -> None:
    history = RunHistory()
    head, _ = baselines.train_party(
        _party(), _settings(tmp_path, "privacy=dp_sgd", "privacy.epsilon=8"), 4, tmp_path / "l", history, evaluate_each_round=False
    )
    assert rounds_scored == [4.0]  # no look at the private validation split before the last round
    assert all(float(p.detach().flatten()[0]) == 4.0 for p in head.parameters())
    assert history.notes == []
