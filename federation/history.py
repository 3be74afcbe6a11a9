"""What a run did, node by node and round by round: aggregates only, ready for the report."""

from __future__ import annotations

from collections.abc import Mapping
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
    black_audit: dict[str, Any] = field(default_factory=dict)  # its latest black-box figures (last evaluate reply)

    @property
    def stopped_for_budget(self) -> bool:
        """Whether the node declined a round for its privacy budget (not for its policy)."""
        return any("privacy budget" in reason for reason in self.declined.values())


@dataclass
class RoundRecord:
    """One round as the report shows it: who trained, who did not and why, and the metrics after it.

    A federated round names nodes (``participants``, ``missed``, and node -> reason in
    ``declined``, ``failed`` and ``rejected``); a baseline's round is one party's, named in
    ``node``, and no server validates or waits there: :meth:`to_dict` leaves its
    ``rejected`` and ``missed`` out, as the report always has. ``metrics`` are the
    validation metrics at the F0.5 threshold (empty when no node evaluated); the report
    shows them with ``eval_loss`` and ``epsilon`` (node -> epsilon spent so far) inside.
    """

    round: int
    participants: list[str] = field(default_factory=list)
    declined: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    train_loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    eval_loss: float | None = None
    epsilon: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    node: str | None = None
    #: Of ``seconds``: the server's own work on the train replies (update checks and aggregation).
    aggregation_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The round as ``report.json`` and the checkpoint hold it."""
        entry: dict[str, Any] = {"round": self.round}
        if self.node is not None:
            entry["node"] = self.node
        entry.update(participants=list(self.participants), declined=dict(self.declined), failed=dict(self.failed))
        if self.node is None:
            entry.update(rejected=dict(self.rejected), missed=list(self.missed))
        entry["train_loss"] = self.train_loss
        entry["metrics"] = {**self.metrics, "eval_loss": self.eval_loss, "epsilon": dict(self.epsilon)}
        entry["seconds"] = self.seconds
        if self.aggregation_seconds is not None:
            entry["aggregation_seconds"] = self.aggregation_seconds
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundRecord:
        """The record of :meth:`to_dict`'s output (a checkpoint's round); raises KeyError, TypeError or ValueError."""
        data = dict(data)
        metrics = dict(data.get("metrics", {}))
        eval_loss = metrics.pop("eval_loss", None)
        epsilon = metrics.pop("epsilon", {})
        node = data.get("node")
        return cls(
            round=int(data["round"]),
            participants=[str(name) for name in data.get("participants", [])],
            declined={str(k): str(v) for k, v in dict(data.get("declined", {})).items()},
            failed={str(k): str(v) for k, v in dict(data.get("failed", {})).items()},
            rejected={str(k): str(v) for k, v in dict(data.get("rejected", {})).items()},
            missed=[str(name) for name in data.get("missed", [])],
            train_loss=None if data.get("train_loss") is None else float(data["train_loss"]),
            metrics=metrics,
            eval_loss=None if eval_loss is None else float(eval_loss),
            epsilon={str(k): v for k, v in dict(epsilon).items()},  # None where a checkpoint held infinity
            seconds=float(data.get("seconds", 0.0)),
            node=None if node is None else str(node),
            aggregation_seconds=None if data.get("aggregation_seconds") is None else float(data["aggregation_seconds"]),
        )


@dataclass
class RunHistory:
    """Rounds, nodes, communication and notes of one run (federated or baseline)."""

    rounds: list[RoundRecord] = field(default_factory=list)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    communication: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
