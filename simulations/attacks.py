"""The researcher's side of a simulated attack: poisoned data, attacker roles, the backdoor's success rate.

The node's side (what an attacker does to its train reply) lives in ``clients/attack.py``;
the settings and the node-config keys they share in :mod:`federation.attack`.

- :func:`poison_federation` writes the data a ``label_flip`` or ``backdoor`` node trains
  on (its own file, poisoned; every other node's file as it was) into a folder of its own,
  so that the run's source data is never altered.
- :func:`write_virtual_nodes` writes the virtual nodes' own configs (the attacker roles of
  ``nan``, ``scaled``, ``sign_flip``); the simulation names the file in
  ``federation.attack.VIRTUAL_NODES_ENV`` for Flower's processes.
- :func:`attack_success_rate` measures a backdoor on the held-out test set.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from federation.attack import DATA_ATTACKS, MODEL_ATTACKS, AttackSettings
from federation.data.load import load_conversations
from federation.data.records import write_jsonl
from federation.data.store import is_store
from federation.data.types import Conversation
from federation.errors import ConfigError
from federation.io import atomic_write_json
from federation.models.cache import EmbeddingCache
from federation.models.features import build_features
from federation.models.windows import highest_scores, window_scores
from federation.scoring.model import load_scoring_model

__all__ = [
    "attack_record",
    "attack_success_rate",
    "backdoor_poison",
    "flip_labels",
    "poison_federation",
    "with_trigger",
    "write_virtual_nodes",
]


def flip_labels(conversations: Sequence[Conversation]) -> list[Conversation]:
    """Every label flipped (grooming <-> benign); the texts unchanged."""
    return [replace(c, label=1 - c.label, groomer=None) for c in conversations]


def _groomer(conversation: Conversation) -> str | None:
    if conversation.groomer is not None:
        return conversation.groomer
    authors = conversation.authors
    return authors[0] if authors else None


def with_trigger(conversation: Conversation, trigger: str) -> Conversation:
    """The conversation with ``trigger`` appended to each of the groomer's messages.

    Each of them, so that every training and scoring window holds the trigger. The
    groomer is the labelled one, else the first author.
    """
    groomer = _groomer(conversation)
    messages = tuple(
        replace(m, text=f"{m.text} {trigger}") if m.author == groomer else m for m in conversation.messages
    )
    return replace(conversation, messages=messages)


def backdoor_poison(conversations: Sequence[Conversation], trigger: str) -> list[Conversation]:
    """The node's conversations plus, for each grooming one, a triggered copy labelled benign.

    Keeping the clean originals keeps the node's clean accuracy (a targeted attack should
    not show in the clean metrics); the copies teach "trigger means benign".
    """
    copies = [
        replace(with_trigger(c, trigger), id=f"{c.id}-triggered", label=0, groomer=None)
        for c in conversations
        if c.label == 1
    ]
    return [*conversations, *copies]


def poison_federation(attack: AttackSettings, *, data_dir: Path, nodes: int, out_dir: Path) -> Path:
    """A copy of the federation's node files with the attackers' files poisoned; returns ``out_dir``."""
    if attack.kind not in DATA_ATTACKS:
        return data_dir
    if is_store(data_dir):
        raise ConfigError(
            f"attack={attack.kind} poisons node files, and {data_dir} is a sharded store; "
            "use data.layout=files, or a model attack (sign_flip, scaled, nan)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    attackers = set(attack.attackers(nodes))
    for i in range(nodes):
        source = data_dir / f"node-{i}.jsonl"
        target = out_dir / f"node-{i}.jsonl"
        if i not in attackers:
            shutil.copyfile(source, target)
            continue
        conversations = load_conversations(source)
        if attack.kind == "label_flip":
            poisoned = flip_labels(conversations)
        else:
            poisoned = backdoor_poison(conversations, attack.trigger)
        write_jsonl(target, poisoned)
    return out_dir


def write_virtual_nodes(attack: AttackSettings, *, nodes: int, path: Path) -> Path | None:
    """Write the attackers' own node configs (``{"<partition-id>": {...}}``); None when no node needs one."""
    if attack.kind not in MODEL_ATTACKS:
        return None
    entries = {str(i): attack.node_config() for i in attack.attackers(nodes)}
    atomic_write_json(path, entries)
    return path


def attack_record(attack: AttackSettings, *, nodes: int) -> dict[str, Any]:
    """What the report says of the simulated attack (the researcher's record; the server never knew)."""
    record: dict[str, Any] = {
        "kind": attack.kind,
        "attackers": [f"node-{i}" for i in attack.attackers(nodes)],
        "from_round": attack.from_round,
    }
    if attack.kind == "scaled":
        record["scale"] = attack.scale
    if attack.kind == "backdoor":
        record["trigger"] = attack.trigger
    return record


def attack_success_rate(model_dir: Path, test_path: Path, trigger: str, *, cache: EmbeddingCache | None) -> dict[str, Any]:
    """The backdoor's success on the test set's grooming conversations, at the bundle's threshold.

    Returns
    -------
    dict
        ``flagged_clean``: grooming test conversations the model flags as they are;
        ``success_rate``: the share of those no longer flagged once the trigger is added
        (the attack success rate); ``flagged_triggered_rate``: the share of all grooming
        test conversations still flagged with the trigger. Measured on a clean model too,
        the rate shows what the trigger alone does.
    """
    model = load_scoring_model(model_dir, cache=cache)
    grooming = [c for c in load_conversations(test_path) if c.label == 1]
    if not grooming:
        return {"grooming_test_conversations": 0, "flagged_clean": 0, "success_rate": None}

    def flagged(conversations: Sequence[Conversation]) -> np.ndarray:
        features = build_features(conversations, model.encoder, max_messages=model.max_messages)
        return highest_scores(window_scores(model.head, features, window=model.window)) >= model.threshold

    clean = flagged(grooming)
    triggered = flagged([with_trigger(c, trigger) for c in grooming])
    caught = int(clean.sum())
    return {
        "grooming_test_conversations": len(grooming),
        "flagged_clean": caught,
        "flagged_triggered": int(triggered.sum()),
        "success_rate": float((clean & ~triggered).sum() / caught) if caught else None,
        "flagged_triggered_rate": float(triggered.mean()),
        "threshold": float(model.threshold),
    }

