"""Conversation-level detection metrics: F-beta, AUPRC, precision at a fixed FPR.

F0.5 is the official metric of PAN-2012's sexual predator identification task: it
weighs precision above recall because every flagged conversation costs a moderator's
or an investigator's time. AUPRC summarises the ranking without a threshold, and
precision at 1% false-positive rate tells an operator what a flag is worth when the
alert volume on innocent conversations is capped.

All functions here are pure and take whole label and score arrays, so they run where
those arrays legitimately live (a node's own split, a simulation's held-out file). The
federated server computes the same quantities from merged histograms in
:mod:`federation.histograms`.

Policies for undefined values (kept the same across the project):

* precision, recall and F-beta are ``0.0`` when their denominator is zero;
* AUPRC and precision at a fixed FPR are ``nan`` when the labels hold no positive
  (or, for the FPR, no negative): the quantity does not exist, and a fabricated 0.0
  would read as a terrible model rather than a missing class.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from federation.errors import ConfigError, DataError

__all__ = [
    "ClassificationMetrics",
    "auprc",
    "best_fbeta_index",
    "check_beta",
    "check_labels",
    "check_scores",
    "classification_metrics",
    "fbeta",
    "precision_at_fpr",
    "safe_ratio",
    "threshold_for_fbeta",
]

logger = logging.getLogger(__name__)

#: F-beta values closer than this count as a tie (then the higher threshold wins).
TIE_TOLERANCE = 1e-12


def safe_ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or ``0.0`` when the denominator is zero.

    The project-wide convention for precision and recall with nothing to count.
    """
    return float(numerator) / float(denominator) if denominator else 0.0


def check_beta(beta: float) -> float:
    """Return ``beta`` as a float, or raise :class:`ConfigError` when it is not positive."""
    beta = float(beta)
    if not math.isfinite(beta) or beta <= 0.0:
        raise ConfigError(f"beta={beta!r} is invalid; use a positive number (0.5 for PAN-2012's F0.5)")
    return beta


def fbeta(*, tp: int, fp: int, fn: int, beta: float) -> float:
    """F-beta from confusion counts.

    Parameters
    ----------
    tp, fp, fn
        True positives, false positives and false negatives (non-negative).
    beta
        Weight of recall relative to precision; ``beta < 1`` favours precision
        (PAN-2012 ranks by F0.5).

    Returns
    -------
    float
        ``(1 + beta^2) tp / ((1 + beta^2) tp + beta^2 fn + fp)``, or ``0.0`` when the
        denominator is zero (no positive predicted and none present), which is the
        undefined case.

    Raises
    ------
    ConfigError
        If ``beta`` is not a positive finite number.
    DataError
        If a count is negative.
    """
    beta = check_beta(beta)
    for name, value in (("tp", tp), ("fp", fp), ("fn", fn)):
        if value < 0:
            raise DataError(f"{name}={value} is negative; confusion counts are non-negative integers")
    b2 = beta * beta
    return safe_ratio((1.0 + b2) * tp, (1.0 + b2) * tp + b2 * fn + fp)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Confusion counts of a binary decision and the metrics derived from them.

    Attributes
    ----------
    tp, fp, fn, tn
        Confusion counts (conversations).
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """Share of flagged conversations that are positive (0.0 when none flagged)."""
        return safe_ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of positive conversations that are flagged (0.0 when none positive)."""
        return safe_ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return fbeta(tp=self.tp, fp=self.fp, fn=self.fn, beta=1.0)

    @property
    def f05(self) -> float:
        """F0.5, PAN-2012's official metric (precision weighted above recall)."""
        return fbeta(tp=self.tp, fp=self.fp, fn=self.fn, beta=0.5)

    def as_dict(self) -> dict[str, float | int]:
        """Plain metrics for reports and Flower records.

        Keys ``f05``, ``f1``, ``precision``, ``recall`` (floats) and ``tp``, ``fp``,
        ``fn``, ``tn`` (ints).
        """
        return {
            "f05": self.f05,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "tp": int(self.tp),
            "fp": int(self.fp),
            "fn": int(self.fn),
            "tn": int(self.tn),
        }


def check_labels(labels: npt.ArrayLike, *, name: str = "labels") -> np.ndarray:
    """Labels as an int64 vector of 0/1, or :class:`DataError` naming the bad value."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DataError(f"{name} must be a flat sequence of 0/1, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must be 0/1 numbers, got dtype {array.dtype}; encode labels as 0 or 1")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"{name}[{index}]={array[index].item()!r} is not 0 or 1; encode labels as 0 or 1")
    return array.astype(np.int64)


def check_scores(scores: npt.ArrayLike, *, size: int, name: str = "scores") -> np.ndarray:
    """Scores as a finite float64 vector of length ``size``.

    Converting to float64 up front keeps every comparison with a threshold in one
    precision (a float32 array compared with a Python float is compared in float32).
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"{name} must be a flat sequence of numbers, got shape {array.shape}")
    if array.size != size:
        raise DataError(f"{name} has {array.size} entries but labels have {size}; pass one per conversation")
    bad = ~np.isfinite(array)
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"{name}[{index}]={array[index].item()!r} is not a finite number; check the model's output")
    return array


def classification_metrics(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> ClassificationMetrics:
    """Confusion counts of 0/1 ``predictions`` against 0/1 ``labels``.

    Parameters
    ----------
    labels
        True classes, 1 = grooming conversation.
    predictions
        Predicted classes (0/1 or bool), one per label.

    Returns
    -------
    ClassificationMetrics
        Counts plus precision, recall, F1 and F0.5 (``.as_dict()`` for reports).
    """
    y = check_labels(labels)
    p = check_labels(predictions, name="predictions")
    if p.size != y.size:
        raise DataError(f"predictions has {p.size} entries but labels have {y.size}; pass one per conversation")
    return ClassificationMetrics(
        tp=int(np.sum((y == 1) & (p == 1))),
        fp=int(np.sum((y == 0) & (p == 1))),
        fn=int(np.sum((y == 1) & (p == 0))),
        tn=int(np.sum((y == 0) & (p == 0))),
    )


def auprc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the precision-recall curve (step-wise average precision).

    Parameters
    ----------
    labels
        True classes, 1 = grooming conversation.
    scores
        Higher means more likely grooming.

    Returns
    -------
    float
        scikit-learn's ``average_precision_score``: ``sum_n (R_n - R_{n-1}) P_n`` over
        the distinct score thresholds, with tied scores forming one threshold.
        ``nan`` when the labels hold no positive (recall is undefined; scikit-learn
        would return a misleading 0.0 with a warning).
    """
    y = check_labels(labels)
    s = check_scores(scores, size=y.size)
    if not y.any():
        logger.debug("AUPRC undefined: no positive conversation among %d", y.size)
        return math.nan
    from sklearn.metrics import average_precision_score  # here: nodes never need scikit-learn (1.5 s a process)

    return float(average_precision_score(y, s))


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending, first is +inf) and the tp/fp counts at each."""
    positives = int(y.sum())
    negatives = int(y.size - positives)
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    tps = np.rint(tpr * positives).astype(np.int64)
    fps = np.rint(fpr * negatives).astype(np.int64)
    return thresholds, tps, fps


def precision_at_fpr(labels: npt.ArrayLike, scores: npt.ArrayLike, *, max_fpr: float = 0.01) -> float:
    """Highest precision among the thresholds whose false-positive rate is at most ``max_fpr``.

    Parameters
    ----------
    labels
        True classes, 1 = grooming conversation.
    scores
        Higher means more likely grooming; a conversation is flagged when its score is
        at least the threshold.
    max_fpr
        Cap on the share of negative conversations flagged (default 1%).

    Returns
    -------
    float
        The best precision at an admissible threshold; ``0.0`` when only flagging
        nothing keeps the FPR under the cap; ``nan`` when the labels hold no positive
        or no negative (precision or FPR undefined).
    """
    max_fpr = float(max_fpr)
    if not 0.0 <= max_fpr <= 1.0:
        raise ConfigError(f"max_fpr={max_fpr!r} is out of range; use a rate in [0, 1] such as 0.01")
    y = check_labels(labels)
    s = check_scores(scores, size=y.size)
    positives = int(y.sum())
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        return math.nan
    _, tps, fps = _threshold_counts(y, s)
    admissible = fps <= max_fpr * negatives
    precisions = np.array([safe_ratio(tp, tp + fp) for tp, fp in zip(tps, fps, strict=True)])
    return float(precisions[admissible].max())


def best_fbeta_index(tps: np.ndarray, fps: np.ndarray, positives: int, *, beta: float) -> int:
    """Index of the best F-beta among candidate thresholds listed from highest to lowest.

    Ties (within :data:`TIE_TOLERANCE`) go to the earliest index, i.e. the higher
    threshold: fewer flags for the same F-beta.
    """
    values = np.array(
        [fbeta(tp=int(tp), fp=int(fp), fn=positives - int(tp), beta=beta) for tp, fp in zip(tps, fps, strict=True)]
    )
    return int(np.flatnonzero(values >= values.max() - TIE_TOLERANCE)[0])


def threshold_for_fbeta(labels: npt.ArrayLike, scores: npt.ArrayLike, *, beta: float = 0.5) -> float:
    """The score threshold that maximises F-beta (ties go to the higher threshold).

    Parameters
    ----------
    labels
        True classes, 1 = grooming conversation.
    scores
        Higher means more likely grooming; flagged when ``score >= threshold``.
    beta
        F-beta weight (0.5: PAN-2012's F0.5).

    Returns
    -------
    float
        One of the observed scores. When no threshold reaches a positive F-beta (for
        example no positive label), every candidate ties at 0 and the highest score is
        returned, so the fewest conversations are flagged.

    Raises
    ------
    DataError
        If there are no scores at all.
    """
    beta = check_beta(beta)
    y = check_labels(labels)
    s = check_scores(scores, size=y.size)
    if y.size == 0:
        raise DataError("no scored conversations to choose a threshold from; provide a non-empty validation split")
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        # roc_curve needs both classes; with one class the counts are simple.
        thresholds = np.unique(s)[::-1]
        flagged = np.array([int(np.sum(s >= t)) for t in thresholds])
        tps = flagged if positives else np.zeros_like(flagged)
        fps = np.zeros_like(flagged) if positives else flagged
    else:
        thresholds, tps, fps = _threshold_counts(y, s)
        thresholds, tps, fps = thresholds[1:], tps[1:], fps[1:]  # drop "+inf": flags nothing
    if positives == 0:
        logger.warning("no positive conversation: F-beta is 0 at every threshold; using the highest score")
    return float(thresholds[best_fbeta_index(tps, fps, positives, beta=beta)])
