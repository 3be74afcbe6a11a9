"""The one-run audit: its maths, and that it catches planted bugs in the real DP-SGD loop.

The planted-bug tests run the node's own training loop (``federation.training.train``)
on a tiny synthetic node, at a claimed epsilon of 1 (the accountant's, for the noise the
plan would choose), with 2000 white-box canaries, and check the audit's lower bound
against the claim: an honest mechanism stays below it, a bugged one goes above it.
Noise and canary coin flips are seeded so that each test reads the same every time; the
margins do not rest on the seeds: in 40 unseeded draws of the same mechanism (simulated
with numpy: Binomial(100, 0.1) inclusions plus the noise) the bugged bounds never fell
below 1.21 (noise / 4) and 1.26 (rate x 4), and the honest one never rose above 0.38.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logit

from federation.errors import ConfigError
from federation.models import MessageScoreHead
from federation.privacy.audit import (
    AUDIT_KINDS,
    GUESS_FRACTIONS,
    CanaryState,
    GuessCounts,
    audit_bound,
    epsilon_lower_bound,
    load_canaries,
    p_value,
    result_of,
    save_canaries,
)
from federation.privacy.plan import calibrate_noise
from federation.runconfig import AUDIT_KINDS as RUN_AUDIT_KINDS
from federation.runconfig import PrivacySettings
from federation.training import DPParams, TrainSettings, sampling, train
from tests.federation.training.test_training_loop import DIM, toy_features

DELTA = 1e-5
CLAIM = 1.0
RATE, STEPS = 0.1, 100  # 50 conversations, expected batch 5, 10 epochs


def test_audit_kinds_are_spelled_once_for_the_run_config() -> None:
    assert RUN_AUDIT_KINDS == AUDIT_KINDS


# -- the maths -----------------------------------------------------------------------------------
def test_pure_dp_bound_is_the_closed_form_for_all_correct_guesses() -> None:
    """delta = 0, r of r right: p-value q^r, so the bound is logit(significance^(1/r))."""
    for guesses in (10, 50, 200):
        bound = epsilon_lower_bound(canaries=1000, guesses=guesses, correct=guesses, delta=0.0, significance=0.05)
        assert bound == pytest.approx(float(logit(0.05 ** (1 / guesses))), abs=1e-6)


def test_p_value_matches_a_direct_sum_with_delta() -> None:
    """The delta term of Algorithm 2, summed the slow way."""
    from scipy.stats import binom

    m, r, v, eps, delta = 1000, 100, 70, 0.5, 1e-5
    q = 1 / (1 + math.exp(-eps))
    beta = sum(binom.pmf(k, r, q) for k in range(v, r + 1))
    alpha = max(sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    assert p_value(canaries=m, guesses=r, correct=v, epsilon=eps, delta=delta) == pytest.approx(
        beta + 2 * m * delta * alpha, rel=1e-9
    )


def test_bound_never_passes_the_truth_more_often_than_the_confidence_allows() -> None:
    """Randomized response at epsilon 1 (an exactly 1-DP mechanism): the scanned bound exceeds 1 rarely."""
    rng = np.random.default_rng(0)
    m, trials, above = 1000, 100, 0
    q = math.exp(CLAIM) / (1 + math.exp(CLAIM))
    for _ in range(trials):
        counts = []
        for fraction in GUESS_FRACTIONS:
            k = round(fraction * m)
            counts.append(GuessCounts(per_side=k, guesses=2 * k, correct=int(rng.binomial(2 * k, q))))
        above += audit_bound(canaries=m, counts=counts, delta=0.0).lower_bound > CLAIM
    assert above / trials <= 0.05


def test_no_correct_guess_beyond_chance_gives_no_bound() -> None:
    assert epsilon_lower_bound(canaries=1000, guesses=100, correct=50, delta=DELTA, significance=0.05) == 0.0
    assert audit_bound(canaries=1000, counts=[], delta=DELTA).lower_bound == 0.0


def test_canary_state_round_trips_and_refuses_a_changed_count(tmp_path) -> None:
    path = tmp_path / "ledger.json.audit.json"
    state = load_canaries(path, run_id="r1", canaries=10)
    state.scores += np.arange(10.0)
    state.history.append((2.0, 0.1, 30))
    save_canaries(path, run_id="r1", state=state)
    again = load_canaries(path, run_id="r1", canaries=10)
    assert np.array_equal(again.members, state.members) and np.array_equal(again.scores, state.scores)
    assert again.history == [(2.0, 0.1, 30)]
    with pytest.raises(ConfigError, match="keep privacy.audit_canaries"):
        load_canaries(path, run_id="r1", canaries=12)
    assert load_canaries(path, run_id="r2", canaries=12).canaries == 12  # another run: fresh canaries


def test_central_dp_refuses_the_white_box_audit() -> None:
    with pytest.raises(ConfigError, match="privacy.audit=white with privacy=central"):
        PrivacySettings(mode="central", audit="white")
    with pytest.raises(ConfigError, match="privacy.audit=black with privacy=central"):
        PrivacySettings(mode="central", audit="black")
    with pytest.raises(ConfigError, match="privacy.audit"):
        PrivacySettings(audit="grey")


# -- the audit on the real training loop ----------------------------------------------------------
def _canaries(m: int, seed: int) -> CanaryState:
    rng = np.random.default_rng(seed)
    return CanaryState(members=rng.random(m) < 0.5, scores=np.zeros(m), tie_seed=seed)


def _audit(*, noise: float, claimed_noise: float, canaries: int = 2000, seed: int = 1) -> tuple:
    """Train the tiny node with canaries; the audit's result against the claim for ``claimed_noise``."""
    torch.manual_seed(0)
    data = toy_features(50)
    settings = TrainSettings(local_epochs=10, batch_size=5, learning_rate=0.1, optimizer="sgd", seed=1, momentum=0.0)
    state = _canaries(canaries, seed)
    control = noise == 0
    dp = DPParams(noise_multiplier=noise, max_grad_norm=1.0, delta=DELTA, noise_seed=seed, audit_control=control)
    result = train(head=MessageScoreHead(dim_in=DIM), data=data, settings=settings, dp=dp, canaries=state.members)
    assert (result.steps, result.sample_rate, result.num_examples) == (STEPS, RATE, 50)  # canaries are no conversations
    state.scores += result.canary_scores
    state.history.append((claimed_noise, result.sample_rate, result.steps))
    return result_of(state, kind="white", delta=DELTA, accountant="rdp"), result


@pytest.fixture(scope="module")
def claimed_noise() -> float:
    """The noise multiplier the node's plan would choose for epsilon 1 over the test's steps."""
    return calibrate_noise(history=[], delta=DELTA, sample_rate=RATE, steps=STEPS, target_epsilon=CLAIM)


def test_an_honest_run_stays_below_its_epsilon(claimed_noise: float) -> None:
    audit, _ = _audit(noise=claimed_noise, claimed_noise=claimed_noise)
    assert audit.epsilon == pytest.approx(CLAIM, rel=1e-4)
    assert audit.lower_bound < audit.epsilon and not audit.failed
    assert audit.canaries_in + audit.canaries_out == 2000


def test_the_audit_catches_a_noise_multiplier_divided_by_four(claimed_noise: float, monkeypatch) -> None:
    from opacus import optimizers

    class QuarterNoise(optimizers.DPOptimizer):  # the planted bug: a quarter of the noise, the same accounting
        def __init__(self, *args, noise_multiplier: float, **kwargs):
            super().__init__(*args, noise_multiplier=noise_multiplier / 4, **kwargs)

    monkeypatch.setattr(optimizers, "DPOptimizer", QuarterNoise)
    audit, _ = _audit(noise=claimed_noise, claimed_noise=claimed_noise)
    assert audit.epsilon == pytest.approx(CLAIM, rel=1e-4)
    assert audit.lower_bound > audit.epsilon and audit.failed


def test_the_audit_catches_a_sampling_rate_four_times_the_accounted_one(claimed_noise: float, monkeypatch) -> None:
    honest = sampling.poisson_batches

    def four_times(n, rate, rng):  # the planted bug: the accountant is told a quarter of the true rate
        return honest(n, min(1.0, 4 * rate), rng)

    monkeypatch.setattr(sampling, "poisson_batches", four_times)
    audit, _ = _audit(noise=claimed_noise, claimed_noise=claimed_noise)
    assert audit.epsilon == pytest.approx(CLAIM, rel=1e-4)
    assert audit.lower_bound > audit.epsilon and audit.failed


def test_the_control_without_noise_gives_a_large_bound() -> None:
    audit, result = _audit(noise=0.0, claimed_noise=0.0, canaries=1000)
    assert math.isinf(audit.epsilon) and math.isinf(result.epsilon)
    assert audit.lower_bound >= 2.0


def test_canaries_need_dp_sgd() -> None:
    with pytest.raises(ConfigError, match="needs DP-SGD"):
        train(
            head=MessageScoreHead(dim_in=DIM),
            data=toy_features(8),
            settings=TrainSettings(local_epochs=1, batch_size=4, learning_rate=0.1, optimizer="adam"),
            dp=None,
            canaries=np.ones(4, dtype=bool),
        )


# -- the report -----------------------------------------------------------------------------------
CHANCE = [6, 11, 22, 55, 105, 205, 510]  # correct guesses near a coin's, at each point of the scan
SHARP = [10, 19, 37, 90, 160, 280, 600]


def _node_audit(lower_bound: float, epsilon: float | None, scan_correct: list[int] = SHARP) -> dict:
    return {
        "round": 2, "canaries_in": 500, "canaries_out": 500, "guesses": 100, "correct": 90,
        "lower_bound": lower_bound, "confidence": 0.95, "epsilon": epsilon, "steps": 40,
        "scan_guesses": [10, 20, 40, 100, 200, 400, 1000], "scan_correct": scan_correct,
    }  # fmt: skip


def _report_with(audits: dict, *, mode: str = "record") -> dict:
    from federation.history import NodeRecord, RunHistory
    from federation.report import build_report

    history = RunHistory(
        nodes={name: NodeRecord(name=name, delta=DELTA, accountant="rdp", audit=audit) for name, audit in audits.items()}
    )
    from federation.runconfig import RunSettings

    run = RunSettings(run_id="r", run_dir="/x", rounds=2, nodes=len(audits), privacy=PrivacySettings(mode=mode, audit="white"))
    return build_report(run=run, config={}, recorder=history, final={}, federated_final={}, timing={"total": 1.0})


def test_report_pools_the_nodes_and_marks_a_bound_above_epsilon_as_a_failed_guarantee() -> None:
    from federation.report import report_markdown

    report = _report_with({"a": _node_audit(0.0, 1.0, CHANCE), "b": _node_audit(1.6, 1.0)})
    audit = report["audit"]
    assert audit["nodes"]["b"]["guarantee_failed"] and not audit["nodes"]["a"]["guarantee_failed"]
    assert audit["guarantee_failed"] and report["privacy"]["audit_failed"]
    assert report["privacy"]["guarantee"].startswith("FAILED AUDIT")
    assert any(note.startswith("PRIVACY AUDIT FAILED") and "b" in note for note in report["notes"])
    run = audit["run"]  # the pooled test adds the scans point by point
    assert (run["canaries_in"], run["canaries_out"], run["epsilon"], run["nodes"]) == (1000, 1000, 1.0, 2)
    assert run["guesses"] in (20, 40, 80, 200, 400, 800, 2000)
    line = [text for text in report_markdown(report).splitlines() if text.startswith("Privacy audit")]
    assert len(line) == 1 and "FAILED" in line[0] and "b 1.600 against accounted epsilon 1.000" in line[0]


def test_report_of_an_honest_audit_and_of_the_control() -> None:
    honest = _report_with({"a": _node_audit(0.0, 1.0, CHANCE), "b": _node_audit(0.0, 1.0, CHANCE)})
    assert not honest["audit"]["guarantee_failed"] and "audit_failed" not in honest["privacy"]
    control = _report_with({"a": _node_audit(4.3, None)}, mode="none")
    assert control["audit"]["control"] and control["audit"]["run"]["epsilon"] is None
    assert not control["audit"]["guarantee_failed"]  # no claim to refute
