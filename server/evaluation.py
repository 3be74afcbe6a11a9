"""Global metrics from the nodes' aggregate evaluation replies.

Nodes send score histograms per class, never scores: the server merges them, computes
AUPRC and picks the F0.5-optimal threshold on the union of the nodes' validation splits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flwr.app import Message

from federation.histograms import EarlyCounts, ScoreHistogram
from federation.wire import ConfigKeys, early_counts_from_metrics


def merge_histograms(replies: Iterable[Message]) -> ScoreHistogram | None:
    """The sum of the replies' score histograms (None when no reply carried one)."""
    histograms = [
        ScoreHistogram.from_lists(
            list(reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.HIST_POS]),
            list(reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.HIST_NEG]),
        )
        for reply in replies
    ]
    return ScoreHistogram.merge_all(histograms) if histograms else None


def merge_early_counts(replies: Iterable[Message]) -> EarlyCounts | None:
    """The sum of the replies' early-warning counts (None when no reply carried them)."""
    counts = [
        found
        for reply in replies
        if (found := early_counts_from_metrics(reply.content[ConfigKeys.METRICS_RECORD])) is not None
    ]
    if not counts:
        return None
    merged = counts[0]
    for other in counts[1:]:
        merged = merged.merge(other)
    return merged


def weighted_loss(replies: Iterable[Message]) -> float | None:
    """Validation loss averaged over the nodes' conversations."""
    total = 0.0
    count = 0
    for reply in replies:
        metrics = reply.content[ConfigKeys.METRICS_RECORD]
        if ConfigKeys.EVAL_LOSS not in metrics:  # nodes of this version do not send it (see clients.allow_list)
            continue
        n = int(metrics[ConfigKeys.NUM_EXAMPLES])
        total += float(metrics[ConfigKeys.EVAL_LOSS]) * n
        count += n
    return total / count if count else None


def histogram_metrics(histogram: ScoreHistogram, *, beta: float = 0.5) -> dict[str, Any]:
    """F0.5-optimal threshold and the metrics there, AUPRC and precision at 1% FPR."""
    threshold = histogram.best_threshold(beta=beta)
    at_threshold = histogram.metrics_at(threshold).as_dict()
    return {
        **at_threshold,
        "auprc": histogram.auprc(),
        "precision_at_1pct_fpr": histogram.precision_at_fpr(0.01),
        "threshold": threshold,
        "conversations": int(histogram.counts_pos.sum() + histogram.counts_neg.sum()),
    }


@dataclass(frozen=True)
class RoundEvaluation:
    """A round's evaluation over the nodes' validation splits, merged: what the round loop passes on.

    ``metrics`` are :func:`histogram_metrics` of the merged ``histogram`` (empty when no
    node sent one); ``loss`` is the validation loss averaged over conversations.
    """

    histogram: ScoreHistogram | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    loss: float | None = None


def aggregate_evaluation(replies: Sequence[Message]) -> RoundEvaluation:
    """Merge the nodes' successful evaluate replies: the one place the round's histograms are summed."""
    histogram = merge_histograms(replies)
    metrics = histogram_metrics(histogram) if histogram is not None else {}
    return RoundEvaluation(histogram=histogram, metrics=metrics, loss=weighted_loss(replies))
