"""``cesagram node budget LEDGER``: a person-readable spend; a bad ledger is one line, exit 3."""

from __future__ import annotations

import re

from cesagram.cli import main
from federation.privacy import PrivacyLedger, plan_run
from federation.privacy.ledger import utc_now

DELTA = 1e-5


def _ledger(path):
    ledger = PrivacyLedger.create(path, node="police-unit-2", cap=6.0, delta=DELTA)
    plan = plan_run(history=[], delta=DELTA, cap=6.0, run_epsilon=2.0, sample_rate=0.125, planned_steps=10, created=utc_now())
    for round_number in (1, 2):
        ledger.record(run_id="sim-42", round=round_number, steps=5, noise_multiplier=plan.noise_multiplier,
                      sample_rate=0.125, plan=plan if round_number == 1 else None)
    return ledger


def test_budget_prints_spend_with_delta_accountant_cap_and_runs(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    ledger = _ledger(path)
    assert main(["node", "budget", str(path)]) == 0
    out = capsys.readouterr().out
    spent = re.search(r"spent\s+epsilon ([0-9.]+) at delta ([0-9.e-]+) \(accountant rdp", out)
    assert spent, out
    assert float(spent.group(1)) == round(ledger.spent, 4)
    assert float(spent.group(2)) == DELTA
    assert re.search(r"cap\s+epsilon 6\.0000", out)
    assert re.search(rf"remaining\s+epsilon {6.0 - ledger.spent:.4f}", out)
    run_line = next(line for line in out.splitlines() if "sim-42" in line)
    assert "2 round(s) (1-2)" in run_line and "10 steps" in run_line
    assert f"noise multiplier {ledger.runs['sim-42'].noise_multiplier:.4f}" in run_line


def test_budget_of_a_fresh_ledger_shows_nothing_spent(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    PrivacyLedger.create(path, node="n", cap=3.0, delta=DELTA)
    assert main(["node", "budget", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"spent\s+epsilon 0\.0000", out) and "none yet" in out


def test_budget_of_a_corrupt_ledger_is_one_line_and_exit_3(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    _ledger(path)
    path.write_bytes(path.read_bytes()[:-40])
    assert main(["node", "budget", str(path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: privacy ledger") and "Traceback" not in captured.err


def test_budget_of_a_missing_ledger_is_exit_3(tmp_path, capsys):
    assert main(["node", "budget", str(tmp_path / "missing.json")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_set_cap_lowers_freely_and_raises_only_with_raise(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    ledger = _ledger(path)
    history = ledger.history
    assert main(["node", "budget", str(path), "--set-cap", "4"]) == 0
    assert "from epsilon 6 to 4" in capsys.readouterr().out
    assert PrivacyLedger.open(path).cap == 4.0
    before = path.read_bytes()
    assert main(["node", "budget", str(path), "--set-cap", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--raise" in err and "Traceback" not in err
    assert path.read_bytes() == before  # refused: nothing changed
    assert main(["node", "budget", str(path), "--set-cap", "9", "--raise"]) == 0
    reopened = PrivacyLedger.open(path)
    assert reopened.cap == 9.0 and reopened.history == history  # the spend is never touched


def test_set_cap_refuses_a_non_positive_cap(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    _ledger(path)
    before = path.read_bytes()
    assert main(["node", "budget", str(path), "--set-cap", "0"]) == 2
    assert "positive finite number" in capsys.readouterr().err
    assert path.read_bytes() == before
