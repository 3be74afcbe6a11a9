"""Early detection: sticky warnings over per-message scores, and their latency metrics.

The rule follows Vogt, Leser and Akbik, "Early Detection of Sexual Predators in Chats"
(ACL 2021, eSPD): after each message the model scores the window of the last messages
read so far (the model side produces one score per message); a *decision* is positive
when that score reaches the threshold; a *warning* is raised once ``k`` of the last
``last`` decisions are positive, and it stays raised. The latency of a warning is the
number of messages read when it was raised (1-based).

Metrics over a collection of conversations, where a warning on a negative conversation
is a false positive and a positive conversation without one is a false negative:

* ``speed`` and latency-weighted F1 (eSPD, after Sadeque et al., 2018):
  ``penalty(l) = -1 + 2 / (1 + exp(-p (l - 1)))`` and
  ``speed = 1 - median(penalty over true positives)``; ``latency F1 = F1 * speed``;
* ``ERDE_o`` (eRisk, Losada and Crestani, 2016): the mean over conversations of a cost
  that is ``c_fp`` (the share of positives in the collection) for a false positive, 1
  for a false negative, ``lc_o(l) = 1 - 1 / (1 + exp(l - o))`` for a true positive
  raised at latency ``l``, and 0 for a true negative. Lower is better.

The functions here take per-conversation values; :class:`federation.histograms.EarlyCounts`
computes the same numbers from counts that nodes can send.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from federation.errors import ConfigError, DataError
from federation.metrics import check_labels, fbeta

__all__ = [
    "DEFAULT_K",
    "DEFAULT_LAST",
    "LATENCY_P",
    "WarningTracker",
    "check_alerts",
    "check_rule",
    "erde",
    "erde_latency_cost",
    "latency_penalty",
    "latency_weighted_f1",
    "speed",
    "true_positive_latencies",
    "warning_at",
]

logger = logging.getLogger(__name__)

#: Positive decisions needed among the last :data:`DEFAULT_LAST` to raise a warning.
DEFAULT_K = 5
#: How many of the most recent decisions the rule looks at.
DEFAULT_LAST = 10
#: eSPD's latency penalty slope: the penalty reaches 0.5 at latency 90.
LATENCY_P = math.log(3) / 89


def check_rule(*, threshold: float, k: int, last: int) -> float:
    """Validate a warning rule; return the threshold as a float.

    Raises
    ------
    ConfigError
        If ``threshold`` is not finite or ``k`` is not in ``1..last``.
    """
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ConfigError(f"threshold={threshold!r} is not a finite number; use a score such as 0.5")
    if int(last) != last or last < 1:
        raise ConfigError(f"last={last!r} is invalid; use a whole number of decisions of at least 1 (eSPD: 10)")
    if int(k) != k or not 1 <= k <= last:
        raise ConfigError(f"k={k!r} is invalid; use a whole number between 1 and last={last} (eSPD: 5)")
    return threshold


def warning_at(
    scores: Sequence[float] | npt.ArrayLike,
    *,
    threshold: float,
    k: int = DEFAULT_K,
    last: int = DEFAULT_LAST,
) -> int | None:
    """The message after which the sticky warning is raised, or ``None``.

    Parameters
    ----------
    scores
        One score per message: entry ``t - 1`` scores the window ending at message ``t``.
    threshold
        A decision is positive when its score is at least this.
    k
        Positive decisions needed among the last ``last`` ones.
    last
        Length of the decision history the rule looks at (fewer at the start).

    Returns
    -------
    int or None
        The 1-based number of messages read when ``k`` of the last ``last`` decisions
        first are positive; ``None`` when that never happens.

    Raises
    ------
    ConfigError
        If the rule is invalid.
    DataError
        If a score is not a finite number (its message index is named).
    """
    threshold = check_rule(threshold=threshold, k=k, last=last)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(values)
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(f"score of message {index + 1} is {values[index].item()!r}; scores must be finite numbers")
    positives = np.concatenate(([0], np.cumsum(values >= threshold)))
    ends = np.arange(1, values.size + 1)
    in_window = positives[ends] - positives[np.maximum(ends - last, 0)]
    hits = np.flatnonzero(in_window >= k)
    return int(hits[0]) + 1 if hits.size else None


class WarningTracker:
    """The eSPD warning rule for a stream of scores, one message at a time.

    Gives the same result as :func:`warning_at` on the same sequence.

    Parameters
    ----------
    threshold
        A decision is positive when its score is at least this.
    k
        Positive decisions needed among the last ``last`` ones.
    last
        Length of the decision history the rule looks at.
    """

    def __init__(self, *, threshold: float, k: int = DEFAULT_K, last: int = DEFAULT_LAST) -> None:
        self._threshold = check_rule(threshold=threshold, k=k, last=last)
        self._k = int(k)
        self._decisions: deque[bool] = deque(maxlen=int(last))
        self._read = 0
        self._raised_at: int | None = None

    @property
    def raised_at(self) -> int | None:
        """1-based message count at which the warning was raised (``None`` until then)."""
        return self._raised_at

    @property
    def raised(self) -> bool:
        """Whether the warning has been raised (it stays raised)."""
        return self._raised_at is not None

    @property
    def messages_read(self) -> int:
        """How many scores :meth:`update` has received."""
        return self._read

    def update(self, score: float) -> bool:
        """Take the score after the next message.

        Returns
        -------
        bool
            ``True`` exactly once: at the message where the warning is raised.

        Raises
        ------
        DataError
            If ``score`` is not a finite number.
        """
        value = float(score)
        self._read += 1
        if not math.isfinite(value):
            raise DataError(f"score of message {self._read} is {value!r}; scores must be finite numbers")
        if self._raised_at is not None:
            return False
        self._decisions.append(value >= self._threshold)
        if sum(self._decisions) >= self._k:
            self._raised_at = self._read
            return True
        return False


def latency_penalty(latency: int, *, p: float = LATENCY_P) -> float:
    """eSPD's latency penalty ``-1 + 2 / (1 + exp(-p (latency - 1)))``.

    0 for a warning after the first message, 0.5 at latency 90 with the default ``p``,
    approaching 1 for late warnings.

    Raises
    ------
    DataError
        If ``latency`` is below 1 (latencies count messages read, from 1).
    ConfigError
        If ``p`` is not a positive finite number.
    """
    if not math.isfinite(p) or p <= 0:
        raise ConfigError(f"p={p!r} is invalid; use a positive slope (eSPD: log(3)/89)")
    if latency < 1:
        raise DataError(f"latency={latency!r} is invalid; latencies count messages read, starting at 1")
    return -1.0 + 2.0 / (1.0 + math.exp(-p * (latency - 1)))


def speed(latencies_of_true_positives: Iterable[int]) -> float:
    """``1 - median(latency_penalty)`` over the true positives' warning latencies.

    Returns
    -------
    float
        In ``(0, 1]``; ``0.0`` when there is no true positive: a detector that never
        warns on a positive conversation earns no speed credit (and its F1 is 0, so the
        latency-weighted F1 is 0 either way).
    """
    penalties = [latency_penalty(latency) for latency in latencies_of_true_positives]
    if not penalties:
        return 0.0
    return float(1.0 - np.median(penalties))


def erde_latency_cost(latency: int, *, o: int) -> float:
    """eRisk's latency cost ``lc_o(l) = 1 - 1 / (1 + exp(l - o))`` of a true positive.

    Evaluated without overflow for any latency; near 0 well before ``o`` messages,
    0.5 at ``o`` and near 1 after.
    """
    if latency < 1:
        raise DataError(f"latency={latency!r} is invalid; latencies count messages read, starting at 1")
    x = float(latency) - float(o)
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def check_alerts(labels: npt.ArrayLike, alert_at: Sequence[int | None]) -> tuple[np.ndarray, list[int | None]]:
    """Labels as 0/1 and alerts as ``None`` or 1-based ints, equally many."""
    y = check_labels(labels)
    alerts = list(alert_at)
    if len(alerts) != y.size:
        raise DataError(f"{len(alerts)} alerts for {y.size} labels; pass one alert (or None) per conversation")
    checked: list[int | None] = []
    for index, alert in enumerate(alerts):
        if alert is None:
            checked.append(None)
            continue
        if isinstance(alert, bool) or int(alert) != alert or alert < 1:
            raise DataError(f"alert_at[{index}]={alert!r} is invalid; use None or the 1-based message count")
        checked.append(int(alert))
    return y, checked


def true_positive_latencies(labels: npt.ArrayLike, alert_at: Sequence[int | None]) -> list[int]:
    """Warning latencies of the positive conversations that got a warning."""
    y, alerts = check_alerts(labels, alert_at)
    return [alert for label, alert in zip(y, alerts, strict=True) if label == 1 and alert is not None]


def latency_weighted_f1(labels: npt.ArrayLike, alert_at: Sequence[int | None]) -> float:
    """eSPD's latency-weighted F1: the warnings' F1 times :func:`speed`."""
    y, alerts = check_alerts(labels, alert_at)
    warned = np.array([alert is not None for alert in alerts], dtype=bool)
    tp = int(np.sum(warned & (y == 1)))
    fp = int(np.sum(warned & (y == 0)))
    fn = int(np.sum(~warned & (y == 1)))
    return fbeta(tp=tp, fp=fp, fn=fn, beta=1.0) * speed(true_positive_latencies(y, alerts))


def erde(labels: npt.ArrayLike, alert_at: Sequence[int | None], *, o: int) -> float:
    """Early risk detection error ``ERDE_o`` (eRisk), the mean cost per conversation.

    Parameters
    ----------
    labels
        True classes, 1 = grooming conversation.
    alert_at
        Per conversation, the latency of its warning or ``None``.
    o
        Latency at which a true positive costs half (eRisk reports 5 and 50).

    Returns
    -------
    float
        Mean of: ``c_fp = positives / conversations`` per false positive, 1 per false
        negative, :func:`erde_latency_cost` per true positive, 0 per true negative.
        ``nan`` for an empty collection. Lower is better.
    """
    y, alerts = check_alerts(labels, alert_at)
    if y.size == 0:
        return math.nan
    c_fp = float(y.sum()) / y.size
    total = 0.0
    for label, alert in zip(y, alerts, strict=True):
        if alert is None:
            total += 1.0 if label == 1 else 0.0
        elif label == 1:
            total += erde_latency_cost(alert, o=o)
        else:
            total += c_fp
    return total / y.size
