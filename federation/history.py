"""What a run did, node by node and round by round: aggregates only, ready for the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class NodeRecord:
    """One node as the server knows it: its own aggregate description and its history."""

    name: str
    kind: str = "unknown"
    conversations: int = 0
    positives: int = 0
    cap: float | None = None
    delta: float | None = None
    accountant: str | None = None  # the node ledger's accountant, as the node reports it
    epsilon: float = 0.0
    steps: int = 0
    rounds: list[int] = field(default_factory=list)
    declined: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)  # round -> why the server refused its update
    missed: list[int] = field(default_factory=list)
    encode_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    audit: dict[str, Any] = field(default_factory=dict)  # the node's latest audit figures (its last train reply)

    @property
    def stopped_for_budget(self) -> bool:
        """Whether the node declined a round for its privacy budget (not for its policy)."""
        return any("privacy budget" in reason for reason in self.declined.values())


@dataclass
class RunHistory:
    """Rounds, nodes, communication and notes of one run (federated or baseline)."""

    rounds: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    communication: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
