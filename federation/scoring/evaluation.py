"""``cesagram evaluate``: a bundle's figures on labelled conversations, as the run reports them.

Conversation-level and early-warning metrics come from
:func:`federation.assessment.assess_scores` on the batch scorer's window scores, so on a
run's held-out file they match the run's ``report.json``. On top, the author level of
PAN-2012's first problem (sexual predator identification): the predicted predators are
the suspects of the warned conversations, compared with the known groomers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from federation.assessment import EarlyRule, assess_scores
from federation.data.types import Conversation
from federation.metrics import fbeta, safe_ratio
from federation.scoring.scorer import BatchResult

__all__ = ["author_identification", "evaluation_report", "true_predators"]

logger = logging.getLogger(__name__)


def author_identification(predicted: Iterable[str], truth: Iterable[str]) -> dict[str, float | int]:
    """Precision, recall, F0.5 and F1 of a set of predicted predator ids against the true ones.

    PAN-2012's first problem ranks by F0.5 over *authors*: an id counts once however many
    conversations name it.

    Returns
    -------
    dict
        ``{"f05", "f1", "precision", "recall", "tp", "fp", "fn", "predicted", "true"}``
        (counts only: no author id leaves this function).
    """
    p, t = set(predicted), set(truth)
    tp, fp, fn = len(p & t), len(p - t), len(t - p)
    return {
        "f05": fbeta(tp=tp, fp=fp, fn=fn, beta=0.5),
        "f1": fbeta(tp=tp, fp=fp, fn=fn, beta=1.0),
        "precision": safe_ratio(tp, tp + fp),
        "recall": safe_ratio(tp, tp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "predicted": len(p),
        "true": len(t),
    }


def true_predators(conversations: Sequence[Conversation], *, predators: frozenset[str] | None) -> set[str]:
    """The groomer ids to compare suspects with.

    The groomers named by the conversations (JSONL ``groomer``, or PAN-2012's first
    predator of each conversation) and, with a PAN-2012 ground-truth file, every listed
    predator who writes in these conversations (a listed id absent from the data could
    never be found, so it is left out, as PAN-2012's evaluation on its test set does).
    """
    truth = {c.groomer for c in conversations if c.groomer is not None}
    if predators:
        truth |= {m.author for c in conversations for m in c.messages if m.author in predators}
    return truth


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def evaluation_report(
    result: BatchResult,
    conversations: Sequence[Conversation],
    *,
    threshold: float,
    rule: EarlyRule,
    predators: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Every figure ``cesagram evaluate`` prints, as plain JSON-ready values.

    Parameters
    ----------
    result
        The batch scorer's output on ``conversations`` (same order).
    conversations
        The labelled conversations.
    threshold, rule
        The bundle's threshold and :class:`~federation.assessment.EarlyRule`.
    predators
        PAN-2012 ground truth, when given.

    Returns
    -------
    dict
        ``metrics`` (the assessment's keys: f05, f1, precision, recall, auprc,
        latency_f1, speed, erde5, erde50, ...), ``authors`` (see
        :func:`author_identification`) and ``data`` (counts). Undefined values
        (AUPRC without positives) are ``None``.

    Notes
    -----
    Holds no chat text and no author id: counts and rates only, so the output can be
    shared beyond the analyst's machine.
    """
    assessment = assess_scores(result.per_message, result.labels, threshold=threshold, rule=rule)
    suspects = {s.suspect for s in result.scores if s.alert and s.suspect is not None}
    truth = true_predators(conversations, predators=predators)
    positives_without_groomer = sum(1 for c in conversations if c.label == 1 and c.groomer is None)
    if positives_without_groomer:
        logger.warning(
            "%d grooming conversations name no groomer; the author-level figures miss them", positives_without_groomer
        )
    return _finite(
        {
            "metrics": dict(assessment.metrics),
            "authors": author_identification(suspects, truth),
            "data": {
                "conversations": len(conversations),
                "positives": int(sum(c.label for c in conversations)),
                "warned": int(sum(s.alert for s in result.scores)),
                "positives_without_groomer": positives_without_groomer,
                "conversations_with_notes": len(result.notes),
            },
        }
    )
