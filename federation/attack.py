"""Simulated attacks: what a misbehaving node does, and how a researcher assigns the role.

Two families, both run through the honest node's code:

- **model poisoning** (``nan``, ``scaled``, ``sign_flip``): the node trains honestly and
  then alters the weights of its train reply (``clients/attack.py``, a Flower mod around
  the honest train handler); these can start at any round (``from_round``);
- **data poisoning** (``label_flip``, ``backdoor``): the node's data file is poisoned
  before the run (``simulations/attacks.py``) and the node trains, evaluates and replies
  exactly as an honest one does: its data is what it is from its first round on.

The role of a model-poisoning node is part of the node's own configuration, never of the
run config: a coordinator must not be able to make a node attack. A real SuperNode would
take it from its ``--node-config``; a virtual node of a simulation takes it from the file
the simulation names in ``VIRTUAL_NODES_ENV`` (the researcher is every virtual node's
operator; Flower's simulation gives a virtual node only ``partition-id``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.checks import is_integer
from federation.errors import ConfigError

__all__ = [
    "ATTACK_KINDS",
    "DATA_ATTACKS",
    "MODEL_ATTACKS",
    "VIRTUAL_NODES_ENV",
    "AttackSettings",
    "virtual_node_config",
]

MODEL_ATTACKS = ("nan", "scaled", "sign_flip")
DATA_ATTACKS = ("label_flip", "backdoor")
ATTACK_KINDS = ("none", *MODEL_ATTACKS, *DATA_ATTACKS)

#: Environment variable naming the simulation's JSON file of virtual node configs:
#: ``{"<partition-id>": {"<node-config key>": value, ...}, ...}``.
VIRTUAL_NODES_ENV = "CESAGRAM_VIRTUAL_NODES"

# Node-config keys of an attacker role (kebab-case like every Flower config key).
KIND_KEY = "attack"
FROM_ROUND_KEY = "attack-from-round"
SCALE_KEY = "attack-scale"


@dataclass(frozen=True)
class AttackSettings:
    """One simulated attack: its kind, how many nodes run it and from which round.

    Attributes
    ----------
    kind
        One of ``ATTACK_KINDS``.
    nodes
        How many nodes misbehave: ``node-0`` .. ``node-{nodes-1}``.
    from_round
        First round the model-poisoning nodes misbehave in (data poisoning: 1).
    scale
        The ``scaled`` attack's factor on the honest update.
    trigger
        The ``backdoor``'s trigger, appended to each of the groomer's messages.
    """

    kind: str = "none"
    nodes: int = 1
    from_round: int = 1
    scale: float = 100.0
    trigger: str = "have a sunny day 🌻🌻"

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise ConfigError(f"attack.kind={self.kind!r} is not allowed; choose one of: {', '.join(ATTACK_KINDS)}")
        if self.kind == "none":
            return
        if not is_integer(self.nodes, numpy=False) or self.nodes < 1:
            raise ConfigError(f"attack.nodes={self.nodes!r} must be an integer >= 1")
        if not is_integer(self.from_round, numpy=False) or self.from_round < 1:
            raise ConfigError(f"attack.from_round={self.from_round!r} must be an integer >= 1")
        if self.kind in DATA_ATTACKS and self.from_round != 1:
            raise ConfigError(
                f"attack.from_round={self.from_round}: {self.kind} poisons the node's data, which it trains on from "
                f"its first round; only {', '.join(MODEL_ATTACKS)} can start later"
            )
        if self.kind == "scaled" and not self.scale > 0:
            raise ConfigError(f"attack.scale={self.scale!r} must be > 0")
        if self.kind == "backdoor" and not self.trigger.strip():
            raise ConfigError("attack.trigger is empty; give a short innocuous phrase or emoji sequence")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def attackers(self, total_nodes: int) -> list[int]:
        """Partition ids of the misbehaving nodes (the first ``nodes`` of ``total_nodes``)."""
        if not self.active:
            return []
        if self.nodes >= total_nodes:
            raise ConfigError(
                f"attack.nodes={self.nodes} leaves no honest node among federation.nodes={total_nodes}"
            )
        return list(range(self.nodes))

    def node_config(self) -> dict[str, Any]:
        """The node-config entries that make a node run this (model-poisoning) attack."""
        if self.kind not in MODEL_ATTACKS:
            return {}
        return {KIND_KEY: self.kind, FROM_ROUND_KEY: self.from_round, SCALE_KEY: float(self.scale)}

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> AttackSettings | None:
        """The model-poisoning role a node config gives, or None for an honest node."""
        kind = node_config.get(KIND_KEY)
        if kind is None or kind == "none":
            return None
        if kind not in MODEL_ATTACKS:
            raise ConfigError(f"node config {KIND_KEY}={kind!r} is not one of {', '.join(MODEL_ATTACKS)}")
        try:
            return cls(
                kind=str(kind),
                from_round=int(node_config.get(FROM_ROUND_KEY, 1)),
                scale=float(node_config.get(SCALE_KEY, 100.0)),
            )
        except (TypeError, ValueError):
            raise ConfigError(f"node config {FROM_ROUND_KEY} or {SCALE_KEY} is not a number") from None


def virtual_node_config(node_config: Mapping[str, Any]) -> dict[str, Any]:
    """A node's own config: Flower's ``node_config``, plus, for a virtual node, the researcher's entry.

    Only a node with a ``partition-id`` (a virtual node of a simulation) reads the file
    named by ``VIRTUAL_NODES_ENV``, set in the environment of the simulation's processes by
    the researcher's ``cesagram simulate``; nothing the ServerApp sends is read.
    """
    config = dict(node_config)
    path = os.environ.get(VIRTUAL_NODES_ENV)
    if "partition-id" not in config or not path:
        return config
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{VIRTUAL_NODES_ENV}={path}: cannot read the virtual nodes' config ({error})") from None
    entry = entries.get(str(config["partition-id"]), {}) if isinstance(entries, dict) else {}
    return {**entry, **config} if isinstance(entry, dict) else config
