"""One party's round: the privacy mode decides the training, the party's own settings bound it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from federation.local_round import PartyPrivacy, local_round
from federation.models.spec import ModelSpec, build_head
from federation.privacy import PrivacyLedger
from federation.privacy.node_policy import NodePolicy
from federation.runconfig import PrivacySettings, RunSettings, StrategySettings
from federation.training import TrainSettings
from tests.federation.training.test_training_loop import DIM, toy_features

SPEC = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0, ngram_dim=DIM)


def run(**privacy) -> RunSettings:
    return RunSettings(
        run_id="run-1", run_dir="/nonexistent", rounds=2, nodes=1, model=SPEC,
        train=TrainSettings(local_epochs=1.0, batch_size=16, learning_rate=0.5, optimizer="adam"),
        privacy=PrivacySettings(**{"epsilon": 2.0, "max_grad_norm": 1.0, "audit": "off", **privacy}),
    )  # fmt: skip


def party(tmp_path: Path) -> PartyPrivacy:
    ledger = tmp_path / "node-0.json"
    PrivacyLedger.create(ledger, node="node-0", cap=5.0, delta=1e-5)
    return PartyPrivacy(name="node-0", ledger_path=ledger, cap=5.0, delta=1e-5)


def one_round(settings: RunSettings, who: PartyPrivacy, **kwargs):  # noqa: ANN201
    return local_round(run=settings, party=who, head=build_head(SPEC, dim_in=DIM, seed=0), data=toy_features(), round=1, batch_size=16, **kwargs)


def test_record_mode_is_dp_sgd_charged_to_the_partys_ledger(tmp_path: Path) -> None:
    who = party(tmp_path)
    result = one_round(run(), who)
    ledger = PrivacyLedger.open(who.ledger_path)
    assert len(ledger.entries) == 1 and ledger.spent == result.epsilon > 0
    assert result.noise_multiplier > 0 and result.canaries is None  # audit off by default


def test_no_privacy_trains_plainly_and_leaves_the_ledger_alone(tmp_path: Path) -> None:
    who = party(tmp_path)
    before = who.ledger_path.read_bytes()
    result = one_round(run(mode="none"), who)
    assert result.epsilon is None and result.noise_multiplier is None
    assert who.ledger_path.read_bytes() == before


def test_the_audit_mixes_canaries_in_unless_the_caller_reports_none(tmp_path: Path) -> None:
    audited = one_round(run(audit="white", audit_canaries=20), party(tmp_path / "a"))
    assert audited.canaries is not None
    baseline = one_round(run(audit="white", audit_canaries=20), party(tmp_path / "b"), audit=False)
    assert baseline.canaries is None
    who = party(tmp_path / "c")
    before = who.ledger_path.read_bytes()
    control = one_round(run(mode="none", audit="white", audit_canaries=20), who)
    assert control.canaries is not None and control.epsilon == float("inf")  # the audit's no-noise control
    assert who.ledger_path.read_bytes() == before


def test_the_round_seed_mixes_in_the_node_secret(tmp_path: Path) -> None:
    settings = run(mode="none")
    who = party(tmp_path)
    plain = [one_round(settings, who).arrays for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*plain, strict=True))  # same parts, same seed
    secret = one_round(settings, who, policy=NodePolicy(secret="ab" * 16)).arrays
    assert not all(np.array_equal(a, b) for a, b in zip(plain[0], secret, strict=True))


def test_fedprox_pulls_only_towards_weights_a_server_sent(tmp_path: Path) -> None:
    settings = RunSettings(**{**run(mode="none").__dict__, "strategy": StrategySettings(name="fedprox", proximal_mu=50.0)})
    who = party(tmp_path)
    anchor = [np.zeros_like(a) for a in one_round(settings, who).arrays]
    free = one_round(settings, who).arrays
    pulled = one_round(settings, who, global_arrays=anchor).arrays
    assert sum(float(np.abs(a).sum()) for a in pulled) < sum(float(np.abs(a).sum()) for a in free)
