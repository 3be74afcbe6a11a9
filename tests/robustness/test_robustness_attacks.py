"""Simulated attacks: roles come from the node's own config only; each attack does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata

from clients.attack import attack_mod, poisoned_arrays
from federation.attack import VIRTUAL_NODES_ENV, AttackSettings, virtual_node_config
from federation.data.load import load_conversations
from federation.data.records import write_jsonl
from federation.data.types import Conversation, Message as ChatMessage
from federation.errors import ConfigError
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from simulations.attacks import backdoor_poison, flip_labels, poison_federation, with_trigger, write_virtual_nodes
from simulations.compose import compose
from conf.settings import group_options
from simulations.settings import attack_settings

GLOBAL = [np.ones((1, 4), dtype=np.float32), np.zeros(1, dtype=np.float32)]
HONEST = [np.full((1, 4), 1.5, dtype=np.float32), np.full(1, 0.25, dtype=np.float32)]


def train_message(server_round: int = 1) -> Message:
    metadata = Metadata(
        run_id=1, message_id="m", src_node_id=1, dst_node_id=5, reply_to_message_id="", group_id=str(server_round),
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    content = RecordDict(
        {
            ConfigKeys.ARRAYS_RECORD: arrays_to_record(GLOBAL),
            ConfigKeys.CONFIG_RECORD: ConfigRecord({ConfigKeys.SERVER_ROUND: server_round}),
        }
    )
    return Message(content, metadata=metadata)


def honest_handler(msg: Message, context: Context) -> Message:
    return Message(
        RecordDict(
            {
                ConfigKeys.ARRAYS_RECORD: arrays_to_record(HONEST),
                ConfigKeys.METRICS_RECORD: MetricRecord({ConfigKeys.STEPS: 3}),
            }
        ),
        reply_to=msg,
    )


def context(node_config: dict, run_config: dict | None = None) -> Context:
    return Context(run_id=1, node_id=5, node_config=node_config, state=RecordDict(), run_config=run_config or {})


def sent_arrays(reply: Message) -> list[np.ndarray]:
    return record_to_arrays(reply.content[ConfigKeys.ARRAYS_RECORD])


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("scaled", [1 + 100 * 0.5, 100 * 0.25]),
        ("sign_flip", [1 - 0.5, -0.25]),
    ],
)
def test_a_weight_attack_wraps_the_honest_reply(kind: str, expected: list[float]) -> None:
    reply = attack_mod(train_message(), context({"attack": kind}), honest_handler)
    arrays = sent_arrays(reply)
    assert np.allclose(arrays[0], expected[0]) and np.allclose(arrays[1], expected[1])
    assert reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.STEPS] == 3  # the honest metrics go along


def test_the_nan_attack_sends_nan_and_inf() -> None:
    arrays = sent_arrays(attack_mod(train_message(), context({"attack": "nan"}), honest_handler))
    assert np.isnan(arrays[0]).all() and np.isinf(arrays[1]).any()


def test_an_attack_waits_for_its_first_round() -> None:
    config = {"attack": "sign_flip", "attack-from-round": 3}
    assert np.array_equal(sent_arrays(attack_mod(train_message(2), context(config), honest_handler))[0], HONEST[0])
    assert not np.array_equal(sent_arrays(attack_mod(train_message(3), context(config), honest_handler))[0], HONEST[0])


def test_the_run_config_cannot_make_a_node_attack() -> None:
    run_config = {"attack": "scaled", "attack.kind": "scaled", "attack-from-round": 1}
    reply = attack_mod(train_message(), context({"partition-id": 0}, run_config), honest_handler)
    assert np.array_equal(sent_arrays(reply)[0], HONEST[0])


def test_a_virtual_node_takes_its_role_from_the_simulations_file(tmp_path: Path, monkeypatch) -> None:
    path = write_virtual_nodes(AttackSettings(kind="scaled", nodes=2, scale=10.0), nodes=5, path=tmp_path / "v.json")
    assert json.loads(path.read_text()) == {
        "0": {"attack": "scaled", "attack-from-round": 1, "attack-scale": 10.0},
        "1": {"attack": "scaled", "attack-from-round": 1, "attack-scale": 10.0},
    }
    monkeypatch.setenv(VIRTUAL_NODES_ENV, str(path))
    attacker = attack_mod(train_message(), context({"partition-id": 1, "num-partitions": 5}), honest_handler)
    honest = attack_mod(train_message(), context({"partition-id": 2, "num-partitions": 5}), honest_handler)
    assert np.allclose(sent_arrays(attacker)[0], 1 + 10 * 0.5)
    assert np.array_equal(sent_arrays(honest)[0], HONEST[0])
    # A real node (data-path in its own config) never reads the simulation's file.
    assert "attack" not in virtual_node_config({"data-path": "/d", "ledger-path": "/l", "cap": 1})


def test_a_broken_role_file_fails_the_node_with_one_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "v.json").write_text("{not json")
    monkeypatch.setenv(VIRTUAL_NODES_ENV, str(tmp_path / "v.json"))
    reply = attack_mod(train_message(), context({"partition-id": 0}), honest_handler)
    assert reply.has_error() and "cannot read the virtual nodes' config" in reply.error.reason
    assert "\n" not in reply.error.reason


def test_poisoned_arrays_keep_shapes() -> None:
    for kind in ("nan", "scaled", "sign_flip"):
        out = poisoned_arrays(AttackSettings(kind=kind), GLOBAL, HONEST)
        assert [a.shape for a in out] == [a.shape for a in GLOBAL]


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


def test_a_production_run_cannot_ask_nodes_to_attack(tmp_path: Path) -> None:
    from server.production import compose_production, production_settings

    base = [f"federation.root_certificates={tmp_path}/ca.crt", "federation.superlink=sl:9092"]
    for kind in ("scaled", "nan"):  # nan: refused before Hydra would read it as a float
        with pytest.raises(ConfigError, match=f"attack={kind} simulates misbehaving nodes in `cesagram simulate` only"):
            production_settings(compose_production([*base, f"attack={kind}"]), run_dir=tmp_path)
    cfg = compose_production([*base, "attack.kind=scaled"])  # set as a value, past the override check
    with pytest.raises(ConfigError, match="attack=scaled simulates"):
        production_settings(cfg, run_dir=tmp_path)
