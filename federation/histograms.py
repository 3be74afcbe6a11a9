"""Aggregatable evaluation counts: score histograms per class and early-warning counts.

A node evaluates the global model on its own validation split and sends only these
counts; the server sums them over nodes and computes AUPRC, the F0.5-optimal threshold,
precision at a fixed FPR and the early-warning metrics of the union of the splits,
without any score, latency or label of a single conversation leaving its node as such.

* :class:`ScoreHistogram` places each conversation score in one of ``bins`` equal bins
  on ``[0, 1]``. Every metric treats a bin's lower edge as a threshold, so metrics at
  a bin edge are exact, and AUPRC is that of the scores rounded down to their bin's
  edge (within the bin resolution of the exact value).
* :class:`EarlyCounts` holds the warnings' confusion counts, a histogram of the true
  positives' latencies and the sums of their ERDE latency costs, which is everything
  :mod:`federation.early`'s metrics need.

Both have a flat transport form of ints, floats and lists of ints, which is what
Flower's ``MetricRecord`` and ``ConfigRecord`` can carry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from federation.early import check_alerts, erde_latency_cost, latency_penalty
from federation.errors import ConfigError, DataError
from federation.metrics import (
    ClassificationMetrics,
    best_fbeta_index,
    check_beta,
    check_labels,
    check_scores,
    fbeta,
    safe_ratio,
)

__all__ = ["DEFAULT_BINS", "DEFAULT_MAX_LATENCY", "EarlyCounts", "ScoreHistogram"]

logger = logging.getLogger(__name__)

#: Score bins per class (threshold resolution 0.005).
DEFAULT_BINS = 200
#: Latency histogram length; later warnings share the last bin.
DEFAULT_MAX_LATENCY = 1000
#: A threshold within this distance of a bin edge is taken to be that edge.
EDGE_TOLERANCE = 1e-9


def _count_vector(values: Sequence[int] | npt.ArrayLike, *, name: str) -> np.ndarray:
    """A read-only int64 vector of non-negative whole numbers, or :class:`DataError`."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be a flat list of counts, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must hold whole numbers, got dtype {array.dtype}")
    if array.size and np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            index = int(np.argmax(bad))
            raise DataError(f"{name}[{index}]={array[index].item()!r} is not a whole number; counts are integers")
    counts = array.astype(np.int64)
    negative = counts < 0
    if negative.any():
        index = int(np.argmax(negative))
        raise DataError(f"{name}[{index}]={counts[index]} is negative; counts are non-negative")
    counts.setflags(write=False)
    return counts


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """Counts of conversation scores per bin on ``[0, 1]``, separately per class.

    Bin ``i`` of ``bins`` holds scores ``s`` with ``edges[i] <= s < edges[i + 1]``
    (the last bin also holds 1.0), where ``edges[i] = i / bins``. Flagging bins
    ``i..bins-1`` is exactly flagging ``score >= edges[i]``.

    Attributes
    ----------
    counts_pos, counts_neg
        Read-only int64 arrays of length ``bins``: positive and negative conversations
        per bin.

    Notes
    -----
    This is what a node sends instead of scores. A bin count of 1 still tells the
    server that one conversation of that class scored in that band (nothing about its
    content or identity); with very small validation splits, prefer coarser bins or
    secure aggregation of the counts.
    """

    counts_pos: np.ndarray
    counts_neg: np.ndarray

    def __post_init__(self) -> None:
        pos = _count_vector(self.counts_pos, name="counts_pos")
        neg = _count_vector(self.counts_neg, name="counts_neg")
        if pos.size == 0 or pos.size != neg.size:
            raise DataError(
                f"histograms need as many positive as negative bins, at least 1 (got {pos.size} and {neg.size})"
            )
        object.__setattr__(self, "counts_pos", pos)
        object.__setattr__(self, "counts_neg", neg)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoreHistogram):
            return NotImplemented
        same_pos = np.array_equal(self.counts_pos, other.counts_pos)
        return bool(same_pos and np.array_equal(self.counts_neg, other.counts_neg))

    __hash__ = None  # type: ignore[assignment]

    @property
    def bins(self) -> int:
        """Number of bins."""
        return int(self.counts_pos.size)

    @property
    def edges(self) -> np.ndarray:
        """The ``bins + 1`` bin edges ``i / bins``; ``edges[:-1]`` are the thresholds."""
        return _edges(self.bins)

    @property
    def positives(self) -> int:
        """Positive conversations counted."""
        return int(self.counts_pos.sum())

    @property
    def negatives(self) -> int:
        """Negative conversations counted."""
        return int(self.counts_neg.sum())

    @classmethod
    def from_scores(
        cls, scores: npt.ArrayLike, labels: npt.ArrayLike, *, bins: int = DEFAULT_BINS
    ) -> ScoreHistogram:
        """Histogram of conversation ``scores`` in ``[0, 1]`` split by 0/1 ``labels``.

        Raises
        ------
        ConfigError
            If ``bins`` is not a whole number of at least 1.
        DataError
            If labels are not 0/1, lengths differ or a score is outside ``[0, 1]``.

        Notes
        -----
        Runs on the node; only the resulting counts are meant to leave it.
        """
        if isinstance(bins, bool) or int(bins) != bins or bins < 1:
            raise ConfigError(f"bins={bins!r} is invalid; use a whole number of histogram bins such as 200")
        bins = int(bins)
        y = check_labels(labels)
        s = check_scores(scores, size=y.size)
        outside = (s < 0.0) | (s > 1.0)
        if outside.any():
            index = int(np.argmax(outside))
            raise DataError(
                f"scores[{index}]={s[index].item()!r} is outside [0, 1]; histogram scores must be probabilities"
            )
        index = np.searchsorted(_edges(bins)[1:-1], s, side="right")
        return cls(
            counts_pos=np.bincount(index[y == 1], minlength=bins),
            counts_neg=np.bincount(index[y == 0], minlength=bins),
        )

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """The histogram of both collections (bin counts added)."""
        if other.bins != self.bins:
            raise DataError(f"cannot merge histograms with {self.bins} and {other.bins} bins; use one bin count")
        return ScoreHistogram(self.counts_pos + other.counts_pos, self.counts_neg + other.counts_neg)

    @staticmethod
    def merge_all(histograms: Iterable[ScoreHistogram]) -> ScoreHistogram:
        """The sum of one or more histograms.

        Raises
        ------
        DataError
            If ``histograms`` is empty or bin counts differ.
        """
        merged: ScoreHistogram | None = None
        for histogram in histograms:
            merged = histogram if merged is None else merged.merge(histogram)
        if merged is None:
            raise DataError("no score histograms to merge; at least one node must send evaluation counts")
        return merged

    def to_lists(self) -> tuple[list[int], list[int]]:
        """``(counts_pos, counts_neg)`` as plain lists of ints (for Flower records)."""
        return [int(c) for c in self.counts_pos], [int(c) for c in self.counts_neg]

    @classmethod
    def from_lists(cls, pos: Sequence[int], neg: Sequence[int]) -> ScoreHistogram:
        """Inverse of :meth:`to_lists`; validates the counts."""
        return cls(counts_pos=np.asarray(list(pos)), counts_neg=np.asarray(list(neg)))

    def _flagged(self) -> tuple[np.ndarray, np.ndarray]:
        """tp and fp when flagging from bin ``i`` up, for ``i = bins-1, ..., 0``."""
        return np.cumsum(self.counts_pos[::-1]), np.cumsum(self.counts_neg[::-1])

    def _threshold_index(self, threshold: float) -> int:
        """The bin whose lower edge is ``threshold``, or :class:`ConfigError`."""
        threshold = float(threshold)
        edges = self.edges[:-1]
        index = int(np.argmin(np.abs(edges - threshold))) if math.isfinite(threshold) else -1
        if index < 0 or abs(edges[index] - threshold) > EDGE_TOLERANCE:
            raise ConfigError(
                f"threshold={threshold!r} is not a bin edge of a {self.bins}-bin histogram; "
                f"use a multiple of 1/{self.bins} below 1 (e.g. from best_threshold())"
            )
        return index

    def metrics_at(self, threshold: float) -> ClassificationMetrics:
        """Confusion counts when flagging ``score >= threshold``, a bin edge below 1."""
        index = self._threshold_index(threshold)
        tp = int(self.counts_pos[index:].sum())
        fp = int(self.counts_neg[index:].sum())
        return ClassificationMetrics(tp=tp, fp=fp, fn=self.positives - tp, tn=self.negatives - fp)

    def auprc(self) -> float:
        """Step-wise average precision with each bin edge as one threshold.

        Returns
        -------
        float
            ``sum_i (R_i - R_{i+1}) P_i`` over bin edges from high to low: scikit-learn's
            average precision of the scores rounded down to their bin edge. It differs
            from the exact AUPRC only through ties within a bin, so it approximates it to
            the bin resolution. ``nan`` without positives, as
            :func:`federation.metrics.auprc`.
        """
        positives = self.positives
        if positives == 0:
            return math.nan
        tps, fps = self._flagged()
        gained = np.diff(np.concatenate(([0], tps)))
        precision = np.divide(tps, tps + fps, out=np.zeros(tps.size), where=(tps + fps) > 0)
        return float(np.sum(gained * precision) / positives)

    def best_threshold(self, beta: float = 0.5) -> float:
        """The bin edge that maximises F-beta (ties go to the higher edge).

        Equals :func:`federation.metrics.threshold_for_fbeta` on the scores rounded down
        to their bin edge. Without positives every edge ties at 0 and the highest edge
        below 1 is returned.
        """
        beta = check_beta(beta)
        tps, fps = self._flagged()
        index = best_fbeta_index(tps, fps, self.positives, beta=beta)
        return float(self.edges[self.bins - 1 - index])

    def precision_at_fpr(self, max_fpr: float = 0.01) -> float:
        """Highest precision at a bin edge whose false-positive rate is at most ``max_fpr``.

        Same policy as :func:`federation.metrics.precision_at_fpr`: ``0.0`` when only
        flagging nothing meets the cap, ``nan`` without positives or negatives.
        """
        max_fpr = float(max_fpr)
        if not 0.0 <= max_fpr <= 1.0:
            raise ConfigError(f"max_fpr={max_fpr!r} is out of range; use a rate in [0, 1] such as 0.01")
        negatives = self.negatives
        if self.positives == 0 or negatives == 0:
            return math.nan
        tps, fps = self._flagged()
        best = 0.0  # flagging nothing: precision 0 by convention, FPR 0
        for tp, fp in zip(tps, fps, strict=True):
            if fp <= max_fpr * negatives:
                best = max(best, safe_ratio(tp, tp + fp))
        return best


def _edges(bins: int) -> np.ndarray:
    """``i / bins`` for ``i = 0..bins`` (the same floats a node compares scores with)."""
    return np.arange(bins + 1, dtype=np.float64) / bins


#: Transport keys of :meth:`EarlyCounts.to_lists` (kebab-case, as Flower's wire keys).
_EARLY_KEYS = ("tp", "fp", "fn", "tn", "latency-counts", "lc5-sum", "lc50-sum")


def round_count(value: int, step: int) -> int:
    """``value`` rounded to a multiple of ``step``, never to 0 when it is not 0 (counts a node sends)."""
    return 0 if value <= 0 else max(step, int(round(value / step)) * step)


@dataclass(frozen=True)
class EarlyCounts:
    """Everything the early-warning metrics need, as sums over conversations.

    Attributes
    ----------
    tp, fp, fn, tn
        Warnings on positive / negative conversations, and their absence.
    latency_counts
        True positives per warning latency: entry ``i`` counts latency ``i + 1``; the
        last entry also counts every later latency.
    lc5_sum, lc50_sum
        Sums of :func:`federation.early.erde_latency_cost` with ``o = 5`` and ``o = 50``
        over the true positives.

    Notes
    -----
    Sent by nodes instead of per-conversation alerts. Only counts and two sums leave the
    node; as with :class:`ScoreHistogram`, a latency bin holding 1 reveals that one
    positive conversation was flagged at that message count.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    latency_counts: tuple[int, ...]
    lc5_sum: float
    lc50_sum: float

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
                raise DataError(f"early count {name}={value!r} is invalid; counts are non-negative integers")
            if not math.isfinite(value) or int(value) != value or value < 0:
                raise DataError(f"early count {name}={value!r} is invalid; counts are non-negative integers")
            object.__setattr__(self, name, int(value))
        counts = tuple(int(c) for c in _count_vector(list(self.latency_counts), name="latency_counts"))
        if not counts:
            raise DataError("latency_counts is empty; it needs at least one latency bin")
        if sum(counts) != self.tp:
            raise DataError(f"latency_counts sum to {sum(counts)} but tp={self.tp}; send counts from one evaluation")
        object.__setattr__(self, "latency_counts", counts)
        for name in ("lc5_sum", "lc50_sum"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0 or value > self.tp + 1e-9 * max(1, self.tp):
                raise DataError(f"{name}={value!r} is invalid; it must lie between 0 and tp={self.tp}")
            object.__setattr__(self, name, value)

    @property
    def max_latency(self) -> int:
        """Length of the latency histogram (latencies from this on share the last bin)."""
        return len(self.latency_counts)

    @classmethod
    def from_alerts(
        cls,
        labels: npt.ArrayLike,
        alert_at: Sequence[int | None],
        *,
        max_latency: int = DEFAULT_MAX_LATENCY,
    ) -> EarlyCounts:
        """Count the warnings of one collection.

        Parameters
        ----------
        labels
            True classes, 1 = grooming conversation.
        alert_at
            Per conversation, the latency of its warning (see
            :func:`federation.early.warning_at`) or ``None``.
        max_latency
            Latency histogram length. Speed is exact while the median true-positive
            latency is below it; otherwise it errs by less than
            ``1 - latency_penalty(max_latency)`` (under 1e-5 for the default 1000).

        Notes
        -----
        Runs on the node; only the returned counts are meant to leave it.
        """
        if isinstance(max_latency, bool) or int(max_latency) != max_latency or max_latency < 1:
            raise ConfigError(f"max_latency={max_latency!r} is invalid; use a whole number of messages such as 1000")
        y, alerts = check_alerts(labels, alert_at)
        counts = [0] * int(max_latency)
        tp = fp = fn = tn = 0
        lc5 = lc50 = 0.0
        for label, alert in zip(y, alerts, strict=True):
            if alert is None:
                fn, tn = (fn + 1, tn) if label == 1 else (fn, tn + 1)
            elif label == 0:
                fp += 1
            else:
                tp += 1
                counts[min(alert, max_latency) - 1] += 1
                lc5 += erde_latency_cost(alert, o=5)
                lc50 += erde_latency_cost(alert, o=50)
        return cls(tp=tp, fp=fp, fn=fn, tn=tn, latency_counts=tuple(counts), lc5_sum=lc5, lc50_sum=lc50)

    def merge(self, other: EarlyCounts) -> EarlyCounts:
        """Counts of both collections."""
        if other.max_latency != self.max_latency:
            raise DataError(
                f"cannot merge early counts with {self.max_latency} and {other.max_latency} latency bins; "
                "use one max_latency on every node"
            )
        return EarlyCounts(
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            fn=self.fn + other.fn,
            tn=self.tn + other.tn,
            latency_counts=tuple(a + b for a, b in zip(self.latency_counts, other.latency_counts, strict=True)),
            lc5_sum=self.lc5_sum + other.lc5_sum,
            lc50_sum=self.lc50_sum + other.lc50_sum,
        )

    def coarsened(self, granularity: int) -> EarlyCounts:
        """These counts as a node may send them: every count a multiple of ``granularity``.

        Why this shape: the four counts are rounded like every other count that leaves a
        node (to a multiple, never to 0 when not empty); the latency histogram is the
        cumulative distribution of true-positive latencies quantised to that multiple,
        so that it still sums to the rounded ``tp`` and no bin can hold one
        conversation; the latency-cost sums keep their mean per true positive, rounded
        to two decimals. ``granularity`` 1 returns the counts unchanged.
        """
        if isinstance(granularity, bool) or int(granularity) != granularity or granularity < 1:
            raise ConfigError(f"count granularity {granularity!r} is invalid; use a whole number >= 1")
        step = int(granularity)
        if step == 1:
            return self
        tp = round_count(self.tp, step)
        cumulative = np.cumsum(self.latency_counts)
        quantised = [int(round(c / max(self.tp, 1) * tp / step)) * step for c in cumulative]
        counts = tuple(int(b - a) for a, b in zip([0, *quantised[:-1]], quantised, strict=True))
        mean5 = round(self.lc5_sum / self.tp, 2) if self.tp else 0.0
        mean50 = round(self.lc50_sum / self.tp, 2) if self.tp else 0.0
        return EarlyCounts(
            tp=tp,
            fp=round_count(self.fp, step),
            fn=round_count(self.fn, step),
            tn=round_count(self.tn, step),
            latency_counts=counts,
            lc5_sum=mean5 * tp,
            lc50_sum=mean50 * tp,
        )

    def to_lists(self) -> dict[str, int | float | list[int]]:
        """Flat transport form: keys ``tp fp fn tn latency-counts lc5-sum lc50-sum``.

        Values are ints, floats and one list of ints, as a Flower ``MetricRecord``
        accepts; callers may prefix the keys (the client app uses ``early-``).
        """
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "latency-counts": list(self.latency_counts),
            "lc5-sum": self.lc5_sum,
            "lc50-sum": self.lc50_sum,
        }

    @classmethod
    def from_lists(cls, fields: Mapping[str, Any]) -> EarlyCounts:
        """Inverse of :meth:`to_lists`; names a missing key and validates the values."""
        missing = [key for key in _EARLY_KEYS if key not in fields]
        if missing:
            raise DataError(f"early-warning counts lack {', '.join(missing)}; send all of {', '.join(_EARLY_KEYS)}")
        try:
            lc5, lc50 = float(fields["lc5-sum"]), float(fields["lc50-sum"])
        except (TypeError, ValueError) as error:
            raise DataError(f"early-warning latency cost sums must be numbers ({error})") from None
        counts = _count_vector(list(fields["latency-counts"]), name="latency-counts")
        return cls(
            tp=fields["tp"],
            fp=fields["fp"],
            fn=fields["fn"],
            tn=fields["tn"],
            latency_counts=tuple(int(c) for c in counts),
            lc5_sum=lc5,
            lc50_sum=lc50,
        )

    def _median_penalty(self) -> float:
        """Median latency penalty of the true positives (as ``numpy.median`` computes it)."""
        cumulative = np.cumsum(self.latency_counts)

        def penalty_at(rank: int) -> float:
            """Penalty of the true positive at 0-based ``rank`` in latency order."""
            latency = int(np.searchsorted(cumulative, rank, side="right")) + 1
            return latency_penalty(latency)

        n = self.tp
        if n % 2:
            return penalty_at(n // 2)
        return (penalty_at(n // 2 - 1) + penalty_at(n // 2)) / 2.0

    def metrics(self) -> dict[str, float]:
        """Warning precision, recall, F1, speed, latency-weighted F1, ERDE_5 and ERDE_50.

        The same numbers as :mod:`federation.early`'s functions on the pooled
        conversations (up to float summation order; see :meth:`from_alerts` for the
        latency histogram's bound). ERDE is ``nan`` for an empty collection; speed is 0
        without true positives.
        """
        f1 = fbeta(tp=self.tp, fp=self.fp, fn=self.fn, beta=1.0)
        speed = 1.0 - self._median_penalty() if self.tp else 0.0
        total = self.tp + self.fp + self.fn + self.tn
        positives = self.tp + self.fn
        if total:
            c_fp = positives / total
            erde5 = (self.fp * c_fp + self.fn + self.lc5_sum) / total
            erde50 = (self.fp * c_fp + self.fn + self.lc50_sum) / total
        else:
            erde5 = erde50 = math.nan
        return {
            "precision": safe_ratio(self.tp, self.tp + self.fp),
            "recall": safe_ratio(self.tp, positives),
            "f1": f1,
            "speed": speed,
            "latency_f1": f1 * speed,
            "erde5": erde5,
            "erde50": erde50,
        }
