"""Simulated attacks, the node's side: roles come from the node's own config only; each weight attack does what it says.

The researcher's side (poisoned data, attack options) is tested in ``tests/simulations/test_attacks.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata

from clients.attack import attack_mod, poisoned_arrays
from federation.attack import VIRTUAL_NODES_ENV, AttackSettings, virtual_node_config
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from simulations.attacks import write_virtual_nodes

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
