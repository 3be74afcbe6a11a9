"""What travels between the ServerApp and the nodes: record names, metric keys, error codes.

One place spells every key (kebab-case, as Flower does), so server and node cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import ArrayRecord

from federation.histograms import EarlyCounts

if TYPE_CHECKING:
    from federation.privacy.audit import AuditResult

# Flower error codes used by a node's reply (Flower's own codes are small integers).
DECLINED_BUDGET = 4001  # the node's privacy cap would be exceeded: it declines the round
FAILED = 4002  # the node failed (bad data, unexpected error)
DECLINED_POLICY = 4003  # the request is outside the node's own policy: it declines, nothing changes
DECLINED = (DECLINED_BUDGET, DECLINED_POLICY)


class ConfigKeys:
    """Record names and keys of train/evaluate messages and replies."""

    ARRAYS_RECORD = "arrays"
    CONFIG_RECORD = "config"
    METRICS_RECORD = "metrics"
    NODE_RECORD = "node"

    SERVER_ROUND = "server-round"
    THRESHOLD = "threshold"

    NODE_NAME = "name"
    NODE_KIND = "kind"
    CAP = "cap"
    DELTA = "delta"
    ACCOUNTANT = "accountant"
    CONVERSATIONS = "conversations"
    POSITIVES = "positives"

    NUM_EXAMPLES = "num-examples"
    TRAIN_LOSS = "train-loss"
    EVAL_LOSS = "eval-loss"
    EPSILON = "epsilon"
    STEPS = "steps"
    NOISE_MULTIPLIER = "noise-multiplier"  # the DP-SGD mechanism's sigma (0 without DP): bounds the update
    TRAIN_SECONDS = "train-seconds"
    ENCODE_SECONDS = "encode-seconds"
    EVAL_SECONDS = "eval-seconds"
    HIST_POS = "hist-pos"
    HIST_NEG = "hist-neg"
    EARLY_PREFIX = "early-"

    # The node's one-run audit (train replies, with privacy.audit on): canary counts, guesses,
    # the lower bound and the epsilon of the steps the canaries went through.
    AUDIT_PREFIX = "audit-"
    AUDIT_CANARIES_IN = "audit-canaries-in"
    AUDIT_CANARIES_OUT = "audit-canaries-out"
    AUDIT_GUESSES = "audit-guesses"
    AUDIT_CORRECT = "audit-correct"
    AUDIT_LOWER_BOUND = "audit-lower-bound"
    AUDIT_CONFIDENCE = "audit-confidence"
    AUDIT_EPSILON = "audit-epsilon"  # absent for the control (no noise: no finite epsilon)
    AUDIT_STEPS = "audit-steps"
    AUDIT_SCAN_GUESSES = "audit-scan-guesses"
    AUDIT_SCAN_CORRECT = "audit-scan-correct"

    # The node's black-box audit (evaluate replies, with privacy.audit black or both): the
    # evaluated model's scores on its canary conversations, tested against the coins.
    BLACK_PREFIX = "black-"
    BLACK_CANARIES_IN = "black-canaries-in"
    BLACK_CANARIES_OUT = "black-canaries-out"
    BLACK_GUESSES = "black-guesses"
    BLACK_CORRECT = "black-correct"
    BLACK_LOWER_BOUND = "black-lower-bound"
    BLACK_CONFIDENCE = "black-confidence"
    BLACK_EPSILON = "black-epsilon"  # absent for the control
    BLACK_MIA_AUC = "black-mia-auc"
    BLACK_STEPS = "black-steps"
    BLACK_SCAN_GUESSES = "black-scan-guesses"
    BLACK_SCAN_CORRECT = "black-scan-correct"


#: The dtype of every weight array a node sends (whatever dtype a strategy's aggregate has).
WIRE_DTYPE = np.float32


def arrays_to_record(arrays: Sequence[np.ndarray]) -> ArrayRecord:
    """Weights as an ArrayRecord (keys "0", "1", ... in state_dict order), as ``WIRE_DTYPE``."""
    return ArrayRecord([np.ascontiguousarray(a, dtype=WIRE_DTYPE) for a in arrays])


def record_to_arrays(record: ArrayRecord) -> list[np.ndarray]:
    """The weights of an ArrayRecord, in order."""
    return record.to_numpy_ndarrays()


def l2_norm(arrays: Sequence[np.ndarray]) -> float:
    """L2 norm of ``arrays`` taken as one vector, in float64 (a node's update: its arrays minus the global ones)."""
    return float(np.sqrt(sum(float(np.sum(np.square(np.asarray(a, dtype=np.float64)))) for a in arrays)))


def message_bytes(message: object) -> int:
    """Bytes of a message's records (weights, metrics, configs) as Flower counts them."""
    content = getattr(message, "content", None)
    if content is None:
        return 0
    return int(
        sum(record.count_bytes() for record in content.array_records.values())
        + sum(record.count_bytes() for record in content.metric_records.values())
        + sum(record.count_bytes() for record in content.config_records.values())
    )


def early_counts_to_metrics(counts: EarlyCounts) -> dict[str, int | float | list[int]]:
    """Early-warning counts as the metric entries a node's evaluate reply carries (``early-*``)."""
    return {f"{ConfigKeys.EARLY_PREFIX}{key}": value for key, value in counts.to_lists().items()}


def early_counts_from_metrics(metrics: Mapping[str, Any]) -> EarlyCounts | None:
    """The early-warning counts of a reply's metrics (None when it carried none)."""
    prefix = ConfigKeys.EARLY_PREFIX
    fields = {key[len(prefix) :]: metrics[key] for key in metrics.keys() if key.startswith(prefix)}
    return EarlyCounts.from_lists(fields) if fields else None


#: An audit's figures in a reply, after its prefix (``audit-`` white-box, ``black-`` black-box).
_AUDIT_COUNTS = ("canaries-in", "canaries-out", "guesses", "correct", "steps")
_AUDIT_NUMBERS = ("lower-bound", "confidence")
_AUDIT_SCANS = ("scan-guesses", "scan-correct")


def audit_to_metrics(audit: AuditResult, *, prefix: str, mia_auc: float | None = None) -> dict[str, int | float | list[int]]:
    """A node's audit as reply metrics (see the allow-list); no ``-epsilon`` for the control (infinite)."""
    values = {
        "canaries-in": audit.canaries_in, "canaries-out": audit.canaries_out, "guesses": audit.guesses,
        "correct": audit.correct, "steps": audit.steps, "lower-bound": float(audit.lower_bound),
        "confidence": float(audit.confidence), "scan-guesses": list(audit.scan_guesses),
        "scan-correct": list(audit.scan_correct),
    }  # fmt: skip
    if audit.epsilon != float("inf"):
        values["epsilon"] = float(audit.epsilon)
    if mia_auc is not None:
        values["mia-auc"] = round(float(mia_auc), 4)
    return {prefix + key: value for key, value in values.items()}


def audit_from_metrics(metrics: Mapping[str, Any], *, prefix: str, server_round: int) -> dict[str, Any] | None:
    """A node's audit as a reply states it (None when the reply has none), for the report.

    Raises KeyError, TypeError or ValueError for figures that are missing, of the wrong
    type, not finite, or inconsistent (the caller drops them).
    """
    if prefix + "lower-bound" not in metrics:
        return None
    figures: dict[str, Any] = {"round": server_round}
    figures.update({key.replace("-", "_"): int(metrics[prefix + key]) for key in _AUDIT_COUNTS})
    figures.update({key.replace("-", "_"): float(metrics[prefix + key]) for key in _AUDIT_NUMBERS})
    figures.update({key.replace("-", "_"): [int(v) for v in metrics[prefix + key]] for key in _AUDIT_SCANS})
    figures["epsilon"] = float(metrics[prefix + "epsilon"]) if prefix + "epsilon" in metrics else None
    if prefix + "mia-auc" in metrics:
        figures["mia_auc"] = float(metrics[prefix + "mia-auc"])
    numbers = [figures["lower_bound"], figures["confidence"], figures.get("mia_auc", 0.5), figures["epsilon"] or 0.0]
    if not all(math.isfinite(v) for v in numbers) or len(figures["scan_guesses"]) != len(figures["scan_correct"]):
        raise ValueError(f"{prefix}* figures are not finite or their scans differ in length")
    if any(not 0 <= c <= g for c, g in zip(figures["scan_correct"], figures["scan_guesses"], strict=True)):
        raise ValueError(f"{prefix}* scan has more correct guesses than guesses")
    return figures
