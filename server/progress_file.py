"""``progress.jsonl``: one JSON line per round, for whoever launched the run to print as it happens."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ArrayRecord

from federation.history import RunHistory
from server.evaluation import RoundEvaluation
from server.rounds import RoundCallbacks


@dataclass(frozen=True)
class ProgressFile(RoundCallbacks):
    """The round loop's callback that appends the round just recorded in ``history`` to ``path``.

    It comes after the recorder (which closes the round) in the loop's callbacks; the
    launcher's :class:`federation.progress.ProgressPrinter` reads the lines.
    """

    path: Path
    history: RunHistory
    #: Under central DP: the client-level epsilon after this many rounds (nodes spend none of their own).
    central_epsilon: Callable[[int], float] | None = None

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        record = self.history.rounds[-1]
        line = {
            "round": server_round,
            "train_loss": record.train_loss,
            "f05": record.metrics.get("f05"),
            "auprc": record.metrics.get("auprc"),
            "max_epsilon": max((n.epsilon for n in self.history.nodes.values()), default=0.0),
            "seconds": record.seconds,
            "declined": sorted(record.declined),
            "failed": sorted(record.failed),
            "rejected": sorted(record.rejected),
        }
        if self.central_epsilon is not None:
            epsilon = self.central_epsilon(len(self.history.rounds))
            line["central_epsilon"] = epsilon if math.isfinite(epsilon) else None  # strict JSON: no Infinity
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
