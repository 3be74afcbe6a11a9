"""DP training under the node's ledger: plans, cap refusals, fail-closed loading, processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant

from federation.errors import ConfigError, LedgerError, PrivacyBudgetExceeded
from federation.models import FeatureSet, NgramHead
from federation.privacy import PrivacyLedger, epsilon_of
from federation.training import ledgered as training
from federation.training import TrainSettings, train_with_ledger

DELTA = 1e-5
DIM = 16
SETTINGS = TrainSettings(local_epochs=1, batch_size=16, learning_rate=1e-2, seed=0, optimizer="adam")  # 4 steps at q = 0.25 on 64


def features(n=64, seed=0):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, 300, rng.integers(2, 15)) for _ in range(n)]
    return FeatureSet(
        embeddings=rng.normal(size=(300, DIM)).astype(np.float32),
        rows=rows,
        speakers=[rng.integers(0, 2, r.size) for r in rows],
        labels=np.arange(n) % 2,
        ids=[f"c{i}" for i in range(n)],
    )


def small_head():
    torch.manual_seed(0)
    return NgramHead(dim_in=DIM, hidden=8)


def call(path, *, round=1, run_id="run-1", planned_rounds=3, run_epsilon=2.0, cap=8.0, delta=DELTA, head=None, data=None,
         settings=SETTINGS):  # fmt: skip
    return train_with_ledger(
        ledger_path=path, run_id=run_id, round=round, planned_rounds=planned_rounds, run_epsilon=run_epsilon,
        cap=cap, delta=delta, head=head if head is not None else small_head(), data=data if data is not None else features(),
        settings=settings, dp_clip=1.0,
    )


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "node-a.ledger.json"
    PrivacyLedger.create(path, node="node-a", cap=8.0, delta=DELTA)
    return path


def test_a_call_records_its_spend_and_reports_the_node_total(ledger_path):
    result = call(ledger_path)
    ledger = PrivacyLedger.open(ledger_path)
    plan = ledger.runs["run-1"]
    assert plan.planned_steps == 12 and plan.sample_rate == 0.25  # 3 rounds x 4 steps
    assert plan.target_epsilon == pytest.approx(2.0)
    (entry,) = ledger.entries
    assert (entry.run, entry.round, entry.steps, entry.noise_multiplier) == ("run-1", 1, 4, plan.noise_multiplier)
    assert result.epsilon == entry.epsilon_after == pytest.approx(ledger.spent)
    assert result.delta == DELTA and result.accountant == "rdp"
    assert result.noise_multiplier == plan.noise_multiplier and result.sample_rate == 0.25


def test_the_plan_is_made_once_per_run_and_reused(ledger_path):
    call(ledger_path, round=1)
    call(ledger_path, round=2, run_epsilon=7.0)  # a later call cannot change the run's noise
    call(ledger_path, round=3)
    ledger = PrivacyLedger.open(ledger_path)
    assert len(ledger.runs) == 1
    assert {entry.noise_multiplier for entry in ledger.entries} == {ledger.runs["run-1"].noise_multiplier}
    assert ledger.spent == pytest.approx(2.0, rel=1e-4)  # the planned rounds reach the run's allowance
    # a new run composes with everything spent so far
    result = call(ledger_path, run_id="run-2", round=1, planned_rounds=2, run_epsilon=1.0)
    assert PrivacyLedger.open(ledger_path).runs["run-2"].target_epsilon == pytest.approx(ledger.spent + 1.0)
    assert result.epsilon > ledger.spent


def test_a_call_past_the_cap_is_refused_and_changes_nothing(ledger_path, monkeypatch):
    call(ledger_path, round=1, planned_rounds=1, run_epsilon=8.0)  # spends the whole cap
    before = ledger_path.read_bytes()
    head = small_head()
    state = {name: tensor.clone() for name, tensor in head.state_dict().items()}
    calls = []
    monkeypatch.setattr(training, "train", lambda **kwargs: calls.append(kwargs))
    with pytest.raises(PrivacyBudgetExceeded) as caught:
        call(ledger_path, round=2, planned_rounds=1, run_epsilon=8.0, head=head)
    assert "cap 8.0000" in str(caught.value) and "\n" not in str(caught.value)
    assert calls == []  # nothing trained
    assert ledger_path.read_bytes() == before
    assert all(torch.equal(state[name], tensor) for name, tensor in head.state_dict().items())
    with pytest.raises(PrivacyBudgetExceeded):  # a new run cannot plan past the cap either
        call(ledger_path, run_id="run-2", round=1, planned_rounds=1, run_epsilon=1.0)
    assert ledger_path.read_bytes() == before


def test_the_node_cap_can_lower_but_not_raise_the_ledger_cap(tmp_path):
    path = tmp_path / "ledger.json"
    PrivacyLedger.create(path, node="n", cap=1.0, delta=DELTA)
    call(path, planned_rounds=1, run_epsilon=5.0, cap=50.0)  # a server-side setting cannot lift the file's cap
    assert PrivacyLedger.open(path).runs["run-1"].target_epsilon == pytest.approx(1.0)
    lower = tmp_path / "lower.json"
    PrivacyLedger.create(lower, node="n", cap=8.0, delta=DELTA)
    call(lower, planned_rounds=1, run_epsilon=5.0, cap=0.5)
    assert PrivacyLedger.open(lower).spent == pytest.approx(0.5, rel=1e-4)


def test_a_missing_ledger_trains_nothing_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "train", lambda **kwargs: pytest.fail("trained without a ledger"))
    with pytest.raises(LedgerError, match="does not exist"):
        call(tmp_path / "missing.json")
    assert not (tmp_path / "missing.json").exists()


def test_a_corrupt_ledger_trains_nothing(ledger_path, monkeypatch):
    call(ledger_path)
    ledger_path.write_bytes(ledger_path.read_bytes()[:-10])
    monkeypatch.setattr(training, "train", lambda **kwargs: pytest.fail("trained on a corrupt ledger"))
    with pytest.raises(LedgerError):
        call(ledger_path, round=2)


def test_another_delta_is_refused(ledger_path):
    before = ledger_path.read_bytes()
    with pytest.raises(LedgerError, match="delta"):
        call(ledger_path, delta=1e-6)
    assert ledger_path.read_bytes() == before


def test_weights_are_not_returned_when_the_spend_cannot_be_recorded(ledger_path, monkeypatch):
    before = ledger_path.read_bytes()

    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("federation.privacy.ledger.atomic_write_json", full_disk)
    with pytest.raises(LedgerError, match="cannot be written"):
        call(ledger_path)
    assert ledger_path.read_bytes() == before


def test_a_new_plan_past_the_planned_rounds_is_a_config_error(ledger_path):
    with pytest.raises(ConfigError, match="planned_rounds"):
        call(ledger_path, round=4, planned_rounds=3)


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, torch
    from federation.models import AttentionWindowHead, FeatureSet
    from federation.training import TrainSettings, train_with_ledger

    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 300, rng.integers(2, 15)) for _ in range(64)]
    data = FeatureSet(embeddings=rng.normal(size=(300, 16)).astype(np.float32), rows=rows,
                      speakers=[rng.integers(0, 2, r.size) for r in rows], labels=np.arange(64) % 2,
                      ids=[f"c{i}" for i in range(64)])
    torch.manual_seed(0)
    head = AttentionWindowHead(dim_in=16, hidden=16, window=3)
    round_number = int(sys.argv[2])
    result = train_with_ledger(
        ledger_path=Path(sys.argv[1]), run_id="run-A", round=round_number, planned_rounds=5, run_epsilon=2.0,
        cap=8.0, delta=1e-5, head=head, data=data, dp_clip=1.0,
        settings=TrainSettings(local_epochs=1, batch_size=16, learning_rate=1e-2, seed=round_number, optimizer="adam"))
    print(json.dumps({"epsilon": result.epsilon, "steps": result.steps, "noise": result.noise_multiplier,
                      "rate": result.sample_rate}))
    """
)


def _child(path, round_number):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(round_number)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )


def _report(process):
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _accountant_epsilon(reports):
    accountant = RDPAccountant()
    for report in reports:
        for _ in range(report["steps"]):
            accountant.step(noise_multiplier=report["noise"], sample_rate=report["rate"])
    return accountant.get_epsilon(delta=DELTA)


@pytest.mark.slow
def test_five_calls_in_separate_processes_spend_what_one_accountant_would(ledger_path):
    reports = [_report(_child(ledger_path, round_number)) for round_number in range(1, 6)]
    ledger = PrivacyLedger.open(ledger_path)
    assert [entry.round for entry in ledger.entries] == [1, 2, 3, 4, 5]
    assert abs(ledger.spent - _accountant_epsilon(reports)) <= 1e-9
    assert [report["epsilon"] for report in reports] == [entry.epsilon_after for entry in ledger.entries]
    assert len({report["noise"] for report in reports}) == 1  # one plan for the run, across processes
    assert ledger.spent == pytest.approx(2.0, rel=1e-4)


def test_concurrent_calls_are_serialised_by_the_lock_and_lose_no_spend(ledger_path, monkeypatch):
    # Each call holds its weights a while before recording: without the lock both would
    # load the same ledger and the second write would drop the first spend.
    real_train = training.train

    def slow_train(**kwargs):
        result = real_train(**kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(training, "train", slow_train)
    results, errors = {}, []

    def worker(round_number):
        try:
            results[round_number] = call(ledger_path, round=round_number)
        except Exception as error:  # noqa: BLE001 - reported below; a thread cannot fail the test itself
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(round_number,)) for round_number in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    ledger = PrivacyLedger.open(ledger_path)
    assert sorted(entry.round for entry in ledger.entries) == [1, 2]
    noise = ledger.runs["run-1"].noise_multiplier
    assert abs(ledger.spent - epsilon_of([(noise, 0.25, 8)], delta=DELTA)) <= 1e-12
    assert sorted(result.epsilon for result in results.values()) == [entry.epsilon_after for entry in ledger.entries]


def test_the_step_size_follows_the_noise_the_ledger_grants(ledger_path, monkeypatch):
    """A step adds at most ``max_step_noise`` of noise per weight: lr * sigma * clip / batch, the lr lowered to fit."""
    sgd = TrainSettings(learning_rate=5.0, max_step_noise=0.05)
    assert sgd.for_noise(1.2, max_grad_norm=0.5, expected_batch=64) is sgd  # 0.047: as configured
    assert sgd.for_noise(5.0, max_grad_norm=0.5, expected_batch=64).learning_rate == pytest.approx(0.05 * 64 / 2.5)
    assert sgd.for_noise(10.0, max_grad_norm=0.5, expected_batch=256).learning_rate == pytest.approx(0.05 * 256 / 5)
    assert TrainSettings(max_step_noise=None).for_noise(50.0, max_grad_norm=1.0, expected_batch=1).learning_rate == 5.0
    with pytest.raises(ConfigError, match="max_step_noise"):
        TrainSettings(max_step_noise=0.0)
    seen = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda **kw: seen.append(kw["settings"]) or real_train(**kw))
    result = call(ledger_path, run_epsilon=0.5, settings=TrainSettings(local_epochs=1, batch_size=16, learning_rate=5.0))
    noise = PrivacyLedger.open(ledger_path).runs["run-1"].noise_multiplier  # a small budget: a large multiplier
    assert noise * 1.0 * 5.0 / 16 > 0.05  # the configured step would be noisier than allowed
    assert result.sample_rate == 0.25 and seen[0].learning_rate == pytest.approx(0.05 * 16 / noise)
