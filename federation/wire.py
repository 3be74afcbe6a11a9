"""What travels between the ServerApp and the nodes: record names, metric keys, error codes.

One place spells every key (kebab-case, as Flower does), so server and node cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from flwr.app import ArrayRecord

from federation.histograms import EarlyCounts

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
