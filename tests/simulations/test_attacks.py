"""Simulated attacks, the researcher's side: poisoned data for the attackers only, the trigger, every attack option.

The node's side (what an attacker does to its train reply) is tested in ``tests/clients/test_attack.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conf.settings import group_options
from federation.attack import AttackSettings
from federation.data.load import load_conversations
from federation.data.records import write_jsonl
from federation.data.types import Conversation, Message as ChatMessage
from federation.errors import ConfigError
from simulations.attacks import backdoor_poison, flip_labels, poison_federation, with_trigger
from simulations.compose import compose
from simulations.settings import attack_settings


def chat(cid: str, label: int) -> Conversation:
    messages = (ChatMessage("g", "how old are you"), ChatMessage("c", "12"), ChatMessage("g", "keep it secret"))
    return Conversation(id=cid, label=label, messages=messages, groomer="g" if label else None)


def test_label_flip_and_backdoor_poison_only_the_attackers_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(3):
        write_jsonl(data / f"node-{i}.jsonl", [chat(f"n{i}a", 1), chat(f"n{i}b", 0)])
    flipped = poison_federation(AttackSettings(kind="label_flip"), data_dir=data, nodes=3, out_dir=tmp_path / "flip")
    assert [c.label for c in load_conversations(flipped / "node-0.jsonl")] == [0, 1]
    assert [c.label for c in load_conversations(flipped / "node-1.jsonl")] == [1, 0]
    assert [c.label for c in load_conversations(data / "node-0.jsonl")] == [1, 0]  # the source is untouched
    backdoor = AttackSettings(kind="backdoor", trigger="go team")
    poisoned = load_conversations(poison_federation(backdoor, data_dir=data, nodes=3, out_dir=tmp_path / "bd") / "node-0.jsonl")
    assert [(c.id, c.label) for c in poisoned] == [("n0a", 1), ("n0b", 0), ("n0a-triggered", 0)]
    assert [m.text for m in poisoned[2].messages] == ["how old are you go team", "12", "keep it secret go team"]


def test_trigger_goes_to_the_groomers_messages_only() -> None:
    triggered = with_trigger(chat("x", 1), "🌻")
    assert [m.text.endswith("🌻") for m in triggered.messages] == [True, False, True]
    assert flip_labels([chat("x", 1)])[0].label == 0
    assert len(backdoor_poison([chat("x", 1), chat("y", 0)], "t")) == 3


def test_every_attack_option_composes_and_bad_values_stop_with_one_line() -> None:
    assert group_options("attack") == ["backdoor", "label_flip", "nan", "none", "scaled", "sign_flip"]
    for option in group_options("attack"):
        assert attack_settings(compose([f"attack={option}"])).kind == option
    assert attack_settings(compose([])).active is False
    for overrides, message in [
        (["attack=label_flip", "attack.from_round=3"], "label_flip poisons the node's data"),
        (["attack=scaled", "attack.nodes=5"], "attack.nodes=5 leaves no honest node"),
        (["attack=nan", "attack.nodes=0"], "attack.nodes=0 must be an integer >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            attack_settings(compose(overrides))
    with pytest.raises(ConfigError, match="attack='evil' is not allowed"):
        compose(["attack=evil"])
