"""privacy.accountant=rdp|prv: Opacus's PRV accountant through accounting, plans and the ledger.

The ledger recomposes its whole history with its own accountant, changes accountant only
by a recorded operator command, and still reads schema 1 files. A run cannot change the
accountant a node's ledger keeps.
"""

from __future__ import annotations

import json
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from cesagram.cli import main
from federation.errors import ConfigError, LedgerError
from federation.privacy import PrivacyLedger, epsilon_of, plan_run
from federation.privacy.ledger import utc_now
from federation.privacy.plan import calibrate_noise
from federation.runconfig import PrivacySettings, RunSettings
from simulations.federated import ensure_ledgers

DELTA = 1e-5
HISTORY = [(1.2, 0.05, 60), (2.0, 0.1, 30), (1.2, 0.05, 40)]


def _opacus(accountant_class, history) -> float:
    accountant = accountant_class()
    for noise, rate, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier=noise, sample_rate=rate)
    return accountant.get_epsilon(delta=DELTA)


def test_prv_epsilon_is_opacus_prv_stepped_over_the_same_history_and_tighter_than_rdp():
    prv = epsilon_of(HISTORY, delta=DELTA, accountant="prv")
    assert prv == pytest.approx(_opacus(PRVAccountant, HISTORY), rel=1e-6)
    assert prv < epsilon_of(HISTORY, delta=DELTA, accountant="rdp")
    assert epsilon_of([], delta=DELTA, accountant="prv") == 0.0
    with pytest.raises(ConfigError, match="accountant='moments'"):
        epsilon_of(HISTORY, delta=DELTA, accountant="moments")


def test_prv_calibration_meets_its_target_with_less_noise_than_rdp():
    kwargs = dict(history=[], delta=DELTA, sample_rate=0.05, steps=200, target_epsilon=3.0)
    prv = calibrate_noise(**kwargs, accountant="prv")
    rdp = calibrate_noise(**kwargs, accountant="rdp")
    assert epsilon_of([(prv, 0.05, 200)], delta=DELTA, accountant="prv") <= 3.0
    assert epsilon_of([(prv, 0.05, 200)], delta=DELTA, accountant="prv") == pytest.approx(3.0, rel=1e-2)
    assert prv < rdp


def _spend(ledger: PrivacyLedger, *, rounds=3, steps=20, rate=0.05, run="run-1"):
    # The plan only fixes the noise (calibrated with rdp here: fast); the ledger composes with its own accountant.
    plan = plan_run(history=ledger.history, delta=DELTA, cap=ledger.cap, run_epsilon=2.0, sample_rate=rate,
                    planned_steps=rounds * steps, created=utc_now())  # fmt: skip
    for round_number in range(1, rounds + 1):
        ledger.record(run_id=run, round=round_number, steps=steps, noise_multiplier=plan.noise_multiplier,
                      sample_rate=rate, plan=plan if round_number == 1 else None)  # fmt: skip
    return plan


def test_a_prv_ledger_recomposes_its_history_with_prv_across_reopening(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = PrivacyLedger.create(path, node="n", cap=8.0, delta=DELTA, accountant="prv")
    _spend(ledger)
    _spend(ledger, run="run-2")
    reopened = PrivacyLedger.open(path)
    assert reopened.accountant == "prv" and {e.accountant for e in reopened.entries} == {"prv"}
    assert reopened.spent == pytest.approx(_opacus(PRVAccountant, reopened.history), rel=1e-6)
    assert reopened.spent < epsilon_of(reopened.history, delta=DELTA, accountant="rdp")
    document = json.loads(path.read_text())
    document["entries"][0]["steps"] = 5  # an edit of an early entry changes the last entry's history
    path.write_text(json.dumps(document))
    with pytest.raises(LedgerError, match=r"entries\[5\]\.epsilon_after"):
        PrivacyLedger.open(path)


def test_switching_the_accountant_is_an_operator_command_recorded_in_the_ledger(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    ledger = PrivacyLedger.create(path, node="n", cap=8.0, delta=DELTA)
    _spend(ledger)
    rdp_spent = ledger.spent
    assert main(["node", "budget", str(path), "--switch-accountant", "prv"]) == 0
    out = capsys.readouterr().out
    assert "switched from rdp to prv" in out and "accountant prv" in out
    switched = PrivacyLedger.open(path)
    assert switched.accountant == "prv"
    (change,) = switched.accountant_changes
    assert (change.previous, change.accountant, change.spent_before) == ("rdp", "prv", pytest.approx(rdp_spent))
    assert switched.spent == pytest.approx(_opacus(PRVAccountant, switched.history), rel=1e-6)
    assert switched.spent < rdp_spent
    _spend(switched, run="run-2")  # new entries are recorded by prv, the old ones keep rdp
    assert [e.accountant for e in PrivacyLedger.open(path).entries] == ["rdp"] * 3 + ["prv"] * 3
    with pytest.raises(ConfigError, match="already kept by the prv accountant"):
        switched.switch_accountant("prv")


def test_a_silent_accountant_switch_is_refused(tmp_path):
    path = tmp_path / "ledger.json"
    _spend(PrivacyLedger.create(path, node="n", cap=8.0, delta=DELTA))
    document = json.loads(path.read_text())
    document["accountant"] = "prv"  # no accountant_changes record
    path.write_text(json.dumps(document))
    with pytest.raises(LedgerError) as caught:
        PrivacyLedger.open(path)
    assert "without a recorded operator command" in str(caught.value) and "\n" not in str(caught.value)


def _as_schema_1(path):
    document = json.loads(path.read_text())
    document["schema"] = 1
    del document["accountant_changes"]
    for entry in document["entries"]:
        del entry["accountant"]
    path.write_text(json.dumps(document))
    return document


def test_a_schema_1_ledger_is_read_with_its_history_and_written_as_schema_2(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = PrivacyLedger.create(path, node="n", cap=8.0, delta=DELTA)
    _spend(ledger)
    spent = ledger.spent
    _as_schema_1(path)
    old = PrivacyLedger.open(path)
    assert old.accountant == "rdp" and old.spent == pytest.approx(spent, rel=1e-12)
    assert old.spent == pytest.approx(_opacus(RDPAccountant, old.history), rel=1e-9)
    _spend(old, run="run-2")
    document = json.loads(path.read_text())
    assert document["schema"] == 2 and all(entry["accountant"] == "rdp" for entry in document["entries"])


def test_a_schema_1_ledger_without_history_says_it_cannot_be_recomposed(tmp_path):
    path = tmp_path / "ledger.json"
    _spend(PrivacyLedger.create(path, node="n", cap=8.0, delta=DELTA))
    document = _as_schema_1(path)
    del document["entries"][1]["sample_rate"]
    path.write_text(json.dumps(document))
    with pytest.raises(LedgerError) as caught:
        PrivacyLedger.open(path)
    message = str(caught.value)
    assert "entries[1] lacks its (noise_multiplier, sample_rate, steps)" in message and "\n" not in message


def test_a_run_asking_another_accountant_does_not_change_an_existing_ledger(tmp_path):
    ledger_dir = tmp_path / "ledgers"
    ledger_dir.mkdir()
    path = ledger_dir / "node-0.json"
    _spend(PrivacyLedger.create(path, node="node-0", cap=8.0, delta=DELTA))
    before = path.read_bytes()
    settings = RunSettings(run_id="r", run_dir=str(tmp_path), rounds=1, nodes=2, ledger_dir=str(ledger_dir),
                           privacy=PrivacySettings(accountant="prv", max_grad_norm=1.0, audit="off"))  # fmt: skip
    ensure_ledgers(settings)
    assert path.read_bytes() == before  # kept by rdp: the run's prv only sets new ledgers
    assert PrivacyLedger.open(ledger_dir / "node-1.json").accountant == "prv"


def test_node_init_sets_the_accountant_and_check_plans_with_it(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    assert main(["node", "init", str(path), "--cap", "5", "--accountant", "prv"]) == 0
    assert "accountant prv" in capsys.readouterr().out
    assert PrivacyLedger.open(path).accountant == "prv"
