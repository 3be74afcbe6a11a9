"""Score labelled conversations with a trained head and compute every reported metric.

Used where one process legitimately holds labelled data: the simulation's held-out test
file, the centralized and local baselines, and an analyst's ``cesagram evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from federation.early import warning_at
from federation.histograms import EarlyCounts
from federation.metrics import auprc, classification_metrics, precision_at_fpr
from federation.models.features import FeatureSet
from federation.models.windows import window_scores


@dataclass(frozen=True)
class EarlyRule:
    """The eSPD warning rule: ``k`` positive decisions among the ``last`` messages."""

    k: int = 5
    last: int = 10
    window: int = 50


@dataclass(frozen=True)
class Assessment:
    """Per-conversation outputs (kept in the process that computed them) and the metrics."""

    scores: np.ndarray
    alerts: list[int | None]
    metrics: dict[str, Any]


def assess(head: nn.Module, features: FeatureSet, *, threshold: float, rule: EarlyRule) -> Assessment:
    """Conversation-level and early-warning metrics of ``head`` on labelled ``features``.

    The conversation score is the highest window score reached; the conversation is
    flagged when it reaches ``threshold``. The warning follows the eSPD rule on the same
    window scores.
    """
    per_message = window_scores(head, features, window=rule.window)
    return assess_scores(per_message, features.labels, threshold=threshold, rule=rule)


def assess_scores(
    per_message: Sequence[np.ndarray], labels: np.ndarray, *, threshold: float, rule: EarlyRule
) -> Assessment:
    """Metrics from per-message window scores (shared by :func:`assess` and the scorer)."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.array([float(np.max(s)) if len(s) else 0.0 for s in per_message], dtype=np.float64)
    predictions = (scores >= threshold).astype(np.int64)
    alerts = [warning_at(s, threshold=threshold, k=rule.k, last=rule.last) for s in per_message]
    early = EarlyCounts.from_alerts(labels, alerts).metrics()
    metrics: dict[str, Any] = {
        **classification_metrics(labels, predictions).as_dict(),
        "auprc": auprc(labels, scores),
        "precision_at_1pct_fpr": precision_at_fpr(labels, scores, max_fpr=0.01),
        "threshold": float(threshold),
        "conversations": int(len(labels)),
        "positives": int(labels.sum()),
        **{key: early[key] for key in ("latency_f1", "speed", "erde5", "erde50")},
        "early_precision": early["precision"],
        "early_recall": early["recall"],
        "early_f1": early["f1"],
    }
    return Assessment(scores=scores, alerts=alerts, metrics=metrics)


#: Base rates at which precision, recall and alert rate are also reported: a platform's
#: moderation queue is near the first, a helpline's reported chats nearer the second.
STATED_PREVALENCES: tuple[float, ...] = (0.01, 0.05)


def at_prevalence(labels: np.ndarray, decisions: np.ndarray, prevalence: float) -> dict[str, float]:
    """Precision, recall and alert rate of ``decisions`` if positives made up ``prevalence`` of the traffic.

    Reweights the two classes of a labelled set: recall and the false-positive rate are
    properties of the detector, precision and the alert rate follow from the base rate.
    """
    labels = np.asarray(labels, dtype=np.int64)
    decisions = np.asarray(decisions, dtype=bool)
    positives, negatives = labels == 1, labels == 0
    recall = float(decisions[positives].mean()) if positives.any() else 0.0
    fpr = float(decisions[negatives].mean()) if negatives.any() else 0.0
    alert_rate = prevalence * recall + (1.0 - prevalence) * fpr
    precision = prevalence * recall / alert_rate if alert_rate > 0 else 0.0
    return {"prevalence": prevalence, "precision": precision, "recall": recall, "alert_rate": alert_rate, "fpr": fpr}


def prevalence_table(assessment: Assessment, labels: np.ndarray, *, threshold: float) -> dict[str, Any]:
    """Flag and early-warning figures at the test set's own prevalence and at :data:`STATED_PREVALENCES`."""
    labels = np.asarray(labels, dtype=np.int64)
    own = float(labels.mean()) if len(labels) else 0.0
    decisions = {
        "flagged": assessment.scores >= threshold,
        "warned": np.array([alert is not None for alert in assessment.alerts], dtype=bool),
    }
    return {
        "test_prevalence": own,
        **{
            name: {f"{p:g}": at_prevalence(labels, made, p) for p in (own, *STATED_PREVALENCES)}
            for name, made in decisions.items()
        },
    }

