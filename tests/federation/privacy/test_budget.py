"""The ledger transaction of one DP call: granted, refused, recorded exactly once or not at all."""

from __future__ import annotations

import pytest

from federation.errors import ConfigError, LedgerError, PrivacyBudgetExceeded
from federation.privacy import PrivacyLedger, SpendRequest, epsilon_of, ledger_lock, spend_budget

DELTA = 1e-5
RATE, STEPS = 0.25, 4


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "node.ledger.json"
    PrivacyLedger.create(path, node="node-a", cap=8.0, delta=DELTA)
    return path


def request(path, **changes):
    fields = {"ledger_path": path, "run_id": "run-1", "round": 1, "planned_rounds": 3, "run_epsilon": 2.0, "cap": 8.0,
              "delta": DELTA, **changes}  # fmt: skip
    return SpendRequest(**fields)


def test_a_granted_call_records_its_spend_with_the_run_plan(ledger_path):
    with spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS) as grant:
        assert (grant.sample_rate, grant.steps, grant.delta, grant.accountant, grant.cap) == (RATE, STEPS, DELTA, "rdp", 8.0)
        entry = grant.record(STEPS)
    ledger = PrivacyLedger.open(ledger_path)
    assert ledger.entries == (entry,)
    assert ledger.runs["run-1"].noise_multiplier == grant.noise_multiplier == entry.noise_multiplier
    assert entry.epsilon_after == pytest.approx(epsilon_of([(grant.noise_multiplier, RATE, STEPS)], delta=DELTA))
    # the plan covers the three planned rounds' steps and reaches the run's allowance
    assert ledger.runs["run-1"].planned_steps == 3 * STEPS
    assert epsilon_of([(grant.noise_multiplier, RATE, 3 * STEPS)], delta=DELTA) == pytest.approx(2.0, rel=1e-4)


def test_a_call_that_fails_before_recording_leaves_the_ledger_as_it_was(ledger_path):
    before = ledger_path.read_bytes()
    with pytest.raises(RuntimeError, match="crashed"), spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS):
        raise RuntimeError("training crashed")
    assert ledger_path.read_bytes() == before  # no plan, no entry: the next attempt plans afresh


def test_a_call_that_ends_without_recording_is_refused(ledger_path):
    before = ledger_path.read_bytes()
    with pytest.raises(LedgerError, match="without recording its spend") as caught:
        with spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS):
            pass
    assert "\n" not in str(caught.value)
    assert ledger_path.read_bytes() == before


def test_a_spend_is_never_recorded_twice(ledger_path):
    with pytest.raises(LedgerError, match="already recorded"):
        with spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS) as grant:
            grant.record(STEPS)
            grant.record(STEPS)
    assert len(PrivacyLedger.open(ledger_path).entries) == 1


def test_more_steps_than_the_budget_was_checked_for_are_refused(ledger_path):
    before = ledger_path.read_bytes()
    with pytest.raises(LedgerError, match="more than the 4"):
        with spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS) as grant:
            grant.record(STEPS + 1)
    assert ledger_path.read_bytes() == before


def test_a_call_past_the_cap_never_runs(ledger_path):
    with spend_budget(request(ledger_path, planned_rounds=1, run_epsilon=8.0), sample_rate=RATE, steps=STEPS) as grant:
        grant.record(STEPS)  # spends the whole cap
    before = ledger_path.read_bytes()
    ran = []
    with pytest.raises(PrivacyBudgetExceeded, match="cap 8.0000"):
        with spend_budget(request(ledger_path, round=2, planned_rounds=1), sample_rate=RATE, steps=STEPS):
            ran.append(True)
    assert ran == [] and ledger_path.read_bytes() == before


def test_the_ledger_stays_locked_for_the_whole_call(ledger_path):
    with spend_budget(request(ledger_path), sample_rate=RATE, steps=STEPS) as grant:
        with pytest.raises(LedgerError, match="locked by another process"), ledger_lock(ledger_path, timeout_s=0.1):
            pass
        grant.record(STEPS)
    with ledger_lock(ledger_path, timeout_s=0.1):  # released once the spend is on disk
        pass


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"run_id": " "}, "run id must be a non-empty string"),
        ({"round": 0}, "round must be a positive integer"),
        ({"planned_rounds": True}, "planned_rounds must be a positive integer"),
        ({"cap": float("inf")}, "node privacy cap"),
        ({"delta": 1.5}, "privacy delta must be a number in"),
        ({"noise_multiplier": 0.0}, "noise multiplier must be a positive number"),
    ],
)
def test_a_bad_request_is_refused_before_the_ledger_is_opened(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        request(tmp_path / "absent.json", **changes)


def test_a_fixed_mechanism_is_recorded_at_its_own_noise_and_never_another(ledger_path):
    """A release at the node's own noise: no calibration, a plan at that noise, a second noise refused."""
    fixed = request(ledger_path, run_id="run-1/evaluate@5", planned_rounds=3, noise_multiplier=5.0)
    with spend_budget(fixed, sample_rate=1.0, steps=1) as grant:
        assert grant.noise_multiplier == 5.0
        entry = grant.record(1)
    ledger = PrivacyLedger.open(ledger_path)
    plan = ledger.runs["run-1/evaluate@5"]
    assert (plan.noise_multiplier, plan.sample_rate, plan.planned_steps) == (5.0, 1.0, 3)
    assert plan.target_epsilon == pytest.approx(epsilon_of([(5.0, 1.0, 3)], delta=DELTA))
    assert entry.epsilon_after == pytest.approx(epsilon_of([(5.0, 1.0, 1)], delta=DELTA))
    before = ledger_path.read_bytes()
    other = request(ledger_path, run_id="run-1/evaluate@5", round=2, planned_rounds=3, noise_multiplier=4.0)
    with pytest.raises(LedgerError, match="planned at noise 5, not 4"):
        with spend_budget(other, sample_rate=1.0, steps=1) as grant:
            grant.record(1)
    assert ledger_path.read_bytes() == before
