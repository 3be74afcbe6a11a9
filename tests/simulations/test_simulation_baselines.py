"""The baselines' model choice: a party without DP picks its learning rate and round on validation, one under DP keeps its last."""

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
    """Round r at learning rate lr gives weights all ``r + 100 lr``; validation separates the classes only at 53 (round 3, lr 0.5)."""

    def fake_round(*, run, head, round, **_: object) -> TrainResult:
        arrays = [np.full_like(p.detach().numpy(), round + 100 * run.train.learning_rate) for p in head.parameters()]
        return TrainResult(arrays=arrays, num_examples=len(LABELS), steps=1, train_loss=0.5, seconds=0.0)

    seen: list[float] = []

    def fake_evaluate(*, head, data, window) -> EvalResult:
        weight = float(next(head.parameters()).detach().flatten()[0])
        seen.append(weight)
        good = weight == pytest.approx(53.0)
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
def test_a_party_without_dp_chooses_its_learning_rate_and_round_on_validation(
    rounds_scored: list[float], tmp_path: Path, evaluate_each_round: bool
) -> None:
    history = RunHistory()
    settings = _settings(tmp_path, "privacy=none", "train.learning_rate=5")
    head, histogram = baselines.train_party(_party(), settings, 4, tmp_path / "l", history, evaluate_each_round=evaluate_each_round)
    # every round of every rate scored on validation, even when only the last is reported
    assert rounds_scored == pytest.approx([r + 100 * lr for lr in (5.0, 0.5, 0.05) for r in (1, 2, 3, 4)])
    assert all(float(p.detach().flatten()[0]) == pytest.approx(53.0) for p in head.parameters())
    assert histogram is not None and histogram.auprc() == pytest.approx(1.0)
    assert history.notes == [
        "pooled: learning rate 0.5 of 5, 0.5, 0.05 tried without DP, chosen on validation F0.5",
        "pooled: kept round 3 of 4, the best validation F0.5 (1.000)",
    ]
    assert [r.round for r in history.rounds] == ([1, 2, 3, 4] if evaluate_each_round else [4])  # the chosen rate's rounds only
    assert history.nodes["pooled"].rounds == [1, 2, 3, 4]


def test_a_party_under_dp_keeps_its_last_round(rounds_scored: list[float], tmp_path: Path) -> None:
    history = RunHistory()
    head, _ = baselines.train_party(
        _party(), _settings(tmp_path, "privacy=dp_sgd", "privacy.epsilon=8", "train.learning_rate=5"), 4, tmp_path / "l", history, evaluate_each_round=False
    )
    assert rounds_scored == [pytest.approx(504.0)]  # the run's rate only, and no look at the private validation split before the last round
    assert all(float(p.detach().flatten()[0]) == pytest.approx(504.0) for p in head.parameters())
    assert history.notes == []
