"""The black-box audit: its canary conversations, its power on a model that memorizes, the report.

The power test trains the shared loop without DP on a small node with a large hashed
n-gram head (4096 weights for 25 conversations and 50 "in" canaries: room to memorize);
measured there AUC 0.97-1.00 and a bound of 1.6-2.0 at 100 canaries. DP-SGD at epsilon 1
on the same node must keep the bound at or below 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from federation.data.synthetic.public import PublicSetSettings, public_conversations
from federation.errors import ConfigError, LedgerError
from federation.models.features import build_features
from federation.models.ngram import HashedNgramEncoder
from federation.models.spec import ModelSpec, build_head
from federation.models.weights import load_head_arrays
from federation.privacy.input_canaries import (
    input_audit,
    input_canaries,
    load_reference,
    membership_statistic,
    public_vocabulary,
    save_reference,
)
from federation.privacy.plan import calibrate_noise
from federation.training import DPParams, TrainSettings, evaluate, train

SPEC = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0, ngram_dim=4096)
DELTA = 1e-5


def test_canaries_follow_their_seeds_and_no_two_share_a_text() -> None:
    first = input_canaries(count=60, texts_seed=1, coin_seed=2, max_messages=150)
    assert first is input_canaries(count=60, texts_seed=1, coin_seed=2, max_messages=150)
    other_coins = input_canaries(count=60, texts_seed=1, coin_seed=3, max_messages=150)
    assert [c.messages for c in other_coins.conversations] == [c.messages for c in first.conversations]
    assert not np.array_equal(other_coins.members, first.members)  # a new run: new coins, the same cached texts
    other_node = input_canaries(count=60, texts_seed=4, coin_seed=2, max_messages=150)
    texts = [m.text for c in first.conversations for m in c.messages]
    assert len(set(texts)) == len(texts)
    assert not set(texts) & {m.text for c in other_node.conversations for m in c.messages}
    assert 15 < first.members.sum() < 45 and 15 < first.labels.sum() < 45
    vocabulary = set(public_vocabulary())
    assert all(word in vocabulary for text in texts for word in text.split())  # words of the public set only
    assert len(first.included) == first.members.sum()
    with pytest.raises(ConfigError, match="privacy.audit_input_canaries"):
        input_canaries(count=3, texts_seed=1, coin_seed=2, max_messages=150)


def test_the_statistic_is_the_gain_in_fit_to_the_canarys_own_label() -> None:
    labels = np.array([1, 0, 1])
    gain = membership_statistic(np.array([0.9, 0.2, 0.5]), np.array([0.5, 0.5, 0.5]), labels)
    assert gain == pytest.approx([0.4, 0.3, 0.0])


def _node(count: int = 100) -> tuple:
    encoder = HashedNgramEncoder(dim=SPEC.ngram_dim)
    own = public_conversations(PublicSetSettings(conversations=25, positive_rate=0.3, seed=99))
    canaries = input_canaries(count=count, texts_seed=5, coin_seed=11, max_messages=150)
    data = build_features(own, encoder).joined(build_features(canaries.included, encoder))
    return encoder, canaries, data, build_features(list(canaries.conversations), encoder)


def _audit(dp: DPParams | None, *, epsilon: float) -> tuple:
    encoder, canaries, data, every = _node()
    head = build_head(SPEC, dim_in=encoder.dim, seed=0)
    reference = evaluate(head=head, data=every, window=SPEC.score_window).scores
    settings = TrainSettings(local_epochs=20, batch_size=16, learning_rate=1.0, momentum=0.9, seed=1)
    result = train(head=head, data=data, settings=settings, dp=dp)
    load_head_arrays(head, result.arrays)
    scores = evaluate(head=head, data=every, window=SPEC.score_window).scores
    return input_audit(canaries, scores, reference, epsilon=epsilon, delta=DELTA, steps=result.steps)


def test_a_model_that_memorizes_its_canaries_is_caught() -> None:
    audit, auc = _audit(None, epsilon=float("inf"))
    assert auc > 0.9 and audit.lower_bound > 1.0  # no DP: the "in" canaries stand out


def test_dp_sgd_at_epsilon_one_keeps_the_bound_below_the_claim() -> None:
    _, canaries, data, _ = _node()
    rate, steps = 16 / len(data), int(np.ceil(20 * len(data) / 16))
    noise = calibrate_noise(history=[], delta=DELTA, sample_rate=rate, steps=steps, target_epsilon=1.0)
    audit, auc = _audit(DPParams(noise_multiplier=noise, max_grad_norm=1.0, delta=DELTA, noise_seed=3), epsilon=1.0)
    assert audit.lower_bound <= 1.0 and not audit.failed
    assert auc < 0.8


def test_reference_scores_round_trip_and_refuse_a_changed_count(tmp_path) -> None:
    path = tmp_path / "ledger.json.black-audit.json"
    assert load_reference(path, run_id="r1", canaries=3) is None
    save_reference(path, run_id="r1", scores=np.array([0.1, 0.2, 0.3]))
    assert load_reference(path, run_id="r1", canaries=3) == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="keep privacy.audit_input_canaries"):
        load_reference(path, run_id="r1", canaries=4)
    for run in ("r2", "r3", "r4"):
        save_reference(path, run_id=run, scores=np.zeros(3))
    assert load_reference(path, run_id="r1", canaries=3) is None  # the last three runs are kept
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(LedgerError, match="is damaged; delete it"):
        load_reference(path, run_id="r2", canaries=3)


# -- the report -----------------------------------------------------------------------------------
def _black(lower_bound: float, epsilon: float | None, auc: float) -> dict:
    return {
        "round": 10, "canaries_in": 50, "canaries_out": 50, "guesses": 20, "correct": 19,
        "lower_bound": lower_bound, "confidence": 0.95, "epsilon": epsilon, "steps": 400, "mia_auc": auc,
        "scan_guesses": [2, 2, 4, 10, 20, 40, 100], "scan_correct": [1, 1, 2, 6, 11, 21, 52],
    }  # fmt: skip


def _report(black: dict, *, audit: str = "black") -> dict:
    from federation.history import NodeRecord, RunHistory
    from federation.report import build_report
    from federation.runconfig import PrivacySettings, RunSettings

    history = RunHistory(
        nodes={name: NodeRecord(name=name, delta=DELTA, accountant="rdp", black_audit=b) for name, b in black.items()}
    )
    run = RunSettings(run_id="r", run_dir="/x", rounds=2, nodes=len(black), privacy=PrivacySettings(audit=audit))
    return build_report(run=run, config={}, recorder=history, final={}, federated_final={}, timing={"total": 1.0})


def test_report_gives_the_black_box_audit_per_node_and_pooled() -> None:
    from federation.report import report_markdown

    report = _report({"a": _black(0.0, 8.0, 0.52), "b": _black(0.0, 8.0, 0.48)})
    black = report["audit"]["black"]
    assert black["nodes"]["a"]["mia_auc"] == 0.52 and black["nodes"]["a"]["kind"] == "black"
    assert black["run"]["mia_auc_mean"] == pytest.approx(0.5) and black["run"]["canaries_in"] == 100
    assert not report["audit"]["guarantee_failed"] and report["audit"]["nodes"] == {}
    lines = [line for line in report_markdown(report).splitlines() if line.startswith("Privacy audit")]
    assert len(lines) == 1 and "black-box" in lines[0] and "MIA AUC 0.520" in lines[0]


def test_a_black_box_bound_above_epsilon_fails_the_guarantee() -> None:
    report = _report({"a": _black(2.1, 1.0, 0.97)})
    assert report["audit"]["black"]["nodes"]["a"]["guarantee_failed"] and report["audit"]["guarantee_failed"]
    assert report["privacy"]["guarantee"].startswith("FAILED AUDIT")
    assert any("a (black-box)" in note for note in report["notes"])


def test_unreadable_black_box_figures_are_refused_for_the_recorder_to_drop() -> None:
    from federation.privacy.audit import summarize
    from federation.wire import audit_from_metrics, audit_to_metrics

    result = summarize(kind="black", canaries=100, canaries_in=50, scan=[], epsilon=1.0, delta=DELTA, steps=4)
    metrics = audit_to_metrics(result, prefix="black-", mia_auc=0.5)
    assert audit_from_metrics(metrics, prefix="black-", server_round=2)["mia_auc"] == 0.5
    for damage in ({"black-mia-auc": float("nan")}, {"black-scan-correct": [1]}, {"black-guesses": "x"}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            audit_from_metrics({**metrics, **damage}, prefix="black-", server_round=2)
    with pytest.raises(KeyError):
        audit_from_metrics({"black-lower-bound": 0.0}, prefix="black-", server_round=2)
