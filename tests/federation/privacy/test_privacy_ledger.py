"""The per-node ledger: explicit creation, strict loading (fail closed), atomic writes, lock."""

from __future__ import annotations

import json
import os

import pytest
from opacus.accountants import RDPAccountant

import federation.io
from federation.errors import ConfigError, LedgerError
from federation.privacy import PrivacyLedger, epsilon_of, ledger_lock, open_or_create, plan_run
from federation.privacy.ledger import lock_path, utc_now

DELTA = 1e-5


def _ledger_with_spend(path, *, rounds=3, steps=4, rate=0.25, cap=8.0):
    ledger = PrivacyLedger.create(path, node="helpline-a", cap=cap, delta=DELTA)
    plan = plan_run(
        history=[], delta=DELTA, cap=cap, run_epsilon=3.0, sample_rate=rate,
        planned_steps=rounds * steps, created=utc_now(),
    )
    for round_number in range(1, rounds + 1):
        ledger.record(
            run_id="run-1", round=round_number, steps=steps, noise_multiplier=plan.noise_multiplier,
            sample_rate=rate, plan=plan if round_number == 1 else None,
        )
    return ledger, plan


def _edit(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def test_created_ledger_round_trips_and_composes_every_entry(tmp_path):
    path = tmp_path / "ledger.json"
    ledger, plan = _ledger_with_spend(path)
    reopened = PrivacyLedger.open(path)
    assert reopened.node == "helpline-a"
    assert reopened.delta == DELTA and reopened.cap == 8.0
    assert reopened.runs == {"run-1": plan}
    assert [entry.round for entry in reopened.entries] == [1, 2, 3]
    accountant = RDPAccountant()
    for _ in range(12):
        accountant.step(noise_multiplier=plan.noise_multiplier, sample_rate=0.25)
    assert abs(reopened.spent - accountant.get_epsilon(delta=DELTA)) <= 1e-9
    assert reopened.entries[-1].epsilon_after == pytest.approx(reopened.spent, abs=1e-12)
    # the plan was sized for exactly these steps: the run reaches its target
    assert reopened.spent == pytest.approx(plan.target_epsilon, rel=1e-4)
    assert reopened.remaining() == pytest.approx(8.0 - reopened.spent)
    document = json.loads(path.read_text())
    assert document["accountant"] == "rdp" and document["unit"] == "conversation"
    assert document["schema"] == 2 and document["accountant_changes"] == []


def test_create_refuses_an_existing_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "ledger.json"
    _ledger_with_spend(path)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="already exists"):
        PrivacyLedger.create(path, node="helpline-a", cap=8.0, delta=DELTA)
    assert path.read_bytes() == before


def test_missing_ledger_fails_closed(tmp_path):
    with pytest.raises(LedgerError, match="does not exist"):
        PrivacyLedger.open(tmp_path / "nowhere.json")


def test_open_or_create_creates_only_when_nothing_is_there(tmp_path):
    path = tmp_path / "ledger.json"
    created = open_or_create(path, node="n", cap=4.0, delta=DELTA)
    assert created.spent == 0.0 and path.exists()
    assert open_or_create(path, node="n", cap=4.0, delta=DELTA).cap == 4.0
    path.write_text("{ not json")
    with pytest.raises(LedgerError):
        open_or_create(path, node="n", cap=4.0, delta=DELTA)
    assert path.read_text() == "{ not json"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: b"\xff\xfe" + raw, id="not-utf8"),
        pytest.param(lambda raw: b"[]", id="not-an-object"),
    ],
)
def test_corrupt_ledger_fails_closed_with_one_line(tmp_path, damage):
    path = tmp_path / "ledger.json"
    _ledger_with_spend(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LedgerError) as caught:
        PrivacyLedger.open(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["entries"][1].__setitem__("epsilon_after", d["entries"][1]["epsilon_after"] * 0.5), "entries[1].epsilon_after"),
        (lambda d: d["entries"].pop(0), "entries[0].epsilon_after"),
        (lambda d: d["entries"][2].__setitem__("steps", "4"), "entries[2].steps"),
        (lambda d: d["entries"][2].__setitem__("steps", True), "entries[2].steps"),
        (lambda d: d["entries"][0].__setitem__("round", 0), "entries[0].round"),
        (lambda d: d["entries"][0].__setitem__("run", "other"), "entries[0].run"),
        (lambda d: d["entries"][0].__setitem__("noise_multiplier", 0.5), "entries[0].noise_multiplier"),
        (lambda d: d["entries"][0].pop("recorded_at"), "entries[0]"),
        (lambda d: d["entries"][0].__setitem__("extra", 1), "entries[0]"),
        (lambda d: d.__setitem__("delta", 1e-6), "entries[0].epsilon_after"),
        (lambda d: d.__setitem__("delta", "1e-5"), "delta"),
        (lambda d: d.__setitem__("cap", -1), "cap"),
        (lambda d: d.__setitem__("schema", 3), "schema"),
        (lambda d: d.__setitem__("accountant", "prv"), "accountant"),
        (lambda d: d.__setitem__("unit", "user"), "unit"),
        (lambda d: d.pop("runs"), "top level"),
        (lambda d: d["runs"]["run-1"].__setitem__("planned_steps", 1.5), "planned_steps"),
        (lambda d: d["runs"]["run-1"].__setitem__("created", "yesterday"), "created"),
    ],
)
def test_inconsistent_ledger_fails_closed_naming_the_key(tmp_path, change, key):
    path = tmp_path / "ledger.json"
    _ledger_with_spend(path)
    _edit(path, change)
    with pytest.raises(LedgerError) as caught:
        PrivacyLedger.open(path)
    assert key in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_failed_write_leaves_the_old_ledger_whole(tmp_path, monkeypatch):
    path = tmp_path / "ledger.json"
    ledger, plan = _ledger_with_spend(path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(federation.io.os, "replace", crash)
    with pytest.raises(LedgerError, match="cannot be written"):
        ledger.record(run_id="run-1", round=4, steps=4, noise_multiplier=plan.noise_multiplier, sample_rate=0.25)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert len(ledger.entries) == 3  # memory matches disk
    assert sorted(os.listdir(tmp_path)) == sorted(["ledger.json", lock_path(path).name])  # no temp files left
    assert PrivacyLedger.open(path).spent == pytest.approx(ledger.spent)


def test_record_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    path = tmp_path / "ledger.json"
    ledger, plan = _ledger_with_spend(path)
    written = []
    monkeypatch.setattr("federation.privacy.ledger.atomic_write_json", lambda p, obj: written.append((p, obj)))
    ledger.record(run_id="run-1", round=4, steps=4, noise_multiplier=plan.noise_multiplier, sample_rate=0.25)
    assert written and written[0][0] == path and len(written[0][1]["entries"]) == 4


def test_record_refuses_a_noise_the_run_did_not_plan(tmp_path):
    path = tmp_path / "ledger.json"
    ledger, plan = _ledger_with_spend(path)
    before = path.read_bytes()
    with pytest.raises(LedgerError):
        ledger.record(run_id="run-1", round=4, steps=4, noise_multiplier=plan.noise_multiplier * 2, sample_rate=0.25)
    with pytest.raises(LedgerError):
        ledger.record(run_id="run-2", round=1, steps=4, noise_multiplier=1.0, sample_rate=0.25)
    assert path.read_bytes() == before


def test_cap_can_be_lowered_freely_but_raised_only_explicitly(tmp_path):
    path = tmp_path / "ledger.json"
    ledger, _ = _ledger_with_spend(path, cap=8.0)
    ledger.set_cap(5.0)
    assert PrivacyLedger.open(path).cap == 5.0
    with pytest.raises(ConfigError, match="operator"):
        ledger.set_cap(9.0)
    assert PrivacyLedger.open(path).cap == 5.0
    ledger.set_cap(9.0, allow_raise=True)
    assert PrivacyLedger.open(path).cap == 9.0


def test_the_lock_is_exclusive(tmp_path):
    path = tmp_path / "ledger.json"
    with ledger_lock(path):
        with pytest.raises(LedgerError, match="locked by another process"):
            with ledger_lock(path, timeout_s=0.2):
                pass
    with ledger_lock(path, timeout_s=0.2):  # released again
        pass


@pytest.mark.parametrize("kwargs", [{"cap": 0.0}, {"cap": float("inf")}, {"delta": 1.0}, {"node": ""}])
def test_create_validates_its_settings(tmp_path, kwargs):
    arguments = {"node": "n", "cap": 4.0, "delta": DELTA} | kwargs
    with pytest.raises(ConfigError):
        PrivacyLedger.create(tmp_path / "ledger.json", **arguments)
    assert not (tmp_path / "ledger.json").exists()


def test_epsilon_after_is_the_total_over_all_runs(tmp_path):
    path = tmp_path / "ledger.json"
    ledger, plan = _ledger_with_spend(path)
    second = plan_run(
        history=ledger.history, delta=DELTA, cap=8.0, run_epsilon=1.0, sample_rate=0.5,
        planned_steps=6, created=utc_now(),
    )
    entry = ledger.record(run_id="run-2", round=1, steps=6, noise_multiplier=second.noise_multiplier, sample_rate=0.5, plan=second)
    expected = epsilon_of([(plan.noise_multiplier, 0.25, 12), (second.noise_multiplier, 0.5, 6)], delta=DELTA)
    assert entry.epsilon_after == pytest.approx(expected, rel=1e-12)
    assert PrivacyLedger.open(path).spent == pytest.approx(second.target_epsilon, rel=1e-4)
