"""Aggregatable counts: the merged counts give the same metrics as the pooled data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.app import MetricRecord
from sklearn.metrics import average_precision_score

from federation.early import erde, latency_penalty, latency_weighted_f1, speed, true_positive_latencies, warning_at
from federation.errors import ConfigError, DataError
from federation.histograms import EarlyCounts, ScoreHistogram
from federation.wire import early_counts_from_metrics, early_counts_to_metrics
from federation.metrics import auprc, classification_metrics, precision_at_fpr, threshold_for_fbeta


def _random_split(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and overlapping class score distributions in [0, 1]."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.18), 0.0, 1.0)
    return labels, scores


def _on_edges(scores: np.ndarray, bins: int) -> np.ndarray:
    """Scores rounded down to their bin's lower edge (what the histogram keeps)."""
    edges = np.arange(bins + 1, dtype=np.float64) / bins
    return edges[np.searchsorted(edges[1:-1], scores, side="right")]


def test_binning_at_edges_by_hand() -> None:
    # 4 bins, edges 0 .25 .5 .75 1: a score on an edge goes to the bin above it; 1.0 to the last.
    scores = [0.0, 0.2499, 0.25, 0.5, 0.74, 0.75, 1.0]
    labels = [1, 0, 1, 0, 1, 0, 1]
    histogram = ScoreHistogram.from_scores(scores, labels, bins=4)
    assert histogram.to_lists() == ([1, 1, 1, 1], [1, 0, 1, 1])
    assert (histogram.positives, histogram.negatives, histogram.bins) == (4, 3, 4)


def test_histogram_rejects_bad_input() -> None:
    with pytest.raises(DataError, match=r"scores\[1\]=1.2"):
        ScoreHistogram.from_scores([0.5, 1.2], [0, 1])
    with pytest.raises(DataError, match=r"scores\[0\]=-0.1"):
        ScoreHistogram.from_scores([-0.1], [0])
    with pytest.raises(ConfigError, match="bins=0"):
        ScoreHistogram.from_scores([0.5], [0], bins=0)
    with pytest.raises(DataError, match="negative"):
        ScoreHistogram.from_lists([1, -1], [0, 0])
    with pytest.raises(DataError, match="as many positive as negative bins"):
        ScoreHistogram.from_lists([1, 2], [0])


def test_merge_of_three_nodes_equals_pooled_histogram() -> None:
    labels, scores = _random_split(1)
    parts = np.array_split(np.arange(labels.size), 3)
    nodes = [ScoreHistogram.from_scores(scores[p], labels[p]) for p in parts]
    pooled = ScoreHistogram.from_scores(scores, labels)
    assert ScoreHistogram.merge_all(nodes) == pooled
    assert nodes[0].merge(nodes[1]).merge(nodes[2]) == pooled
    with pytest.raises(DataError, match="no score histograms"):
        ScoreHistogram.merge_all([])
    with pytest.raises(DataError, match="200 and 10 bins"):
        pooled.merge(ScoreHistogram.from_scores(scores, labels, bins=10))


def test_transport_round_trip_through_a_flower_record() -> None:
    labels, scores = _random_split(2)
    histogram = ScoreHistogram.from_scores(scores, labels, bins=50)
    pos, neg = histogram.to_lists()
    assert all(type(c) is int for c in pos + neg)
    record = MetricRecord({"hist-pos": pos, "hist-neg": neg})
    assert ScoreHistogram.from_lists(list(record["hist-pos"]), list(record["hist-neg"])) == histogram


def test_counts_are_read_only() -> None:
    histogram = ScoreHistogram.from_lists([1, 2], [3, 4])
    with pytest.raises(ValueError):
        histogram.counts_pos[0] = 9


def test_histogram_auprc_by_hand() -> None:
    # 4 bins: positives at .9 (bin 3) and .3 (bin 1), negatives at .6 (bin 2) and .1 (bin 0)
    # edge .75: P=1, R=.5 -> .5;  edge .5: +0;  edge .25: P=2/3, R=1 -> +1/3;  edge 0: +0
    histogram = ScoreHistogram.from_scores([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0], bins=4)
    assert histogram.auprc() == pytest.approx(0.5 + 1 / 3)
    assert math.isnan(ScoreHistogram.from_scores([0.2], [0]).auprc())


@pytest.mark.parametrize("seed", range(5))
def test_histogram_auprc_close_to_exact(seed: int) -> None:
    labels, scores = _random_split(seed)
    histogram = ScoreHistogram.from_scores(scores, labels)
    assert abs(histogram.auprc() - average_precision_score(labels, scores)) < 0.01
    # and it is exactly the average precision of the scores rounded to bin edges
    assert histogram.auprc() == pytest.approx(auprc(labels, _on_edges(scores, 200)), abs=1e-12)


@pytest.mark.parametrize("bins", [7, 200])
def test_metrics_at_every_edge_match_direct_counts(bins: int) -> None:
    labels, scores = _random_split(3)
    histogram = ScoreHistogram.from_scores(scores, labels, bins=bins)
    for threshold in histogram.edges[:-1]:
        assert histogram.metrics_at(float(threshold)) == classification_metrics(labels, scores >= threshold)


def test_metrics_at_accepts_the_decimal_edge_and_rejects_other_thresholds() -> None:
    histogram = ScoreHistogram.from_scores([0.37, 0.36], [1, 0], bins=200)
    # 0.37 typed by a person is the same float as 74/200.
    assert histogram.metrics_at(0.37).tp == 1 and histogram.metrics_at(0.37).fp == 0
    with pytest.raises(ConfigError, match="not a bin edge"):
        histogram.metrics_at(0.3712)
    with pytest.raises(ConfigError, match="not a bin edge"):
        histogram.metrics_at(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_matches_exact_search_on_edge_scores(seed: int) -> None:
    labels, scores = _random_split(seed)
    histogram = ScoreHistogram.from_scores(scores, labels)
    edge_scores = _on_edges(scores, 200)
    for beta in (0.5, 1.0):
        threshold = histogram.best_threshold(beta=beta)
        assert threshold == threshold_for_fbeta(labels, edge_scores, beta=beta)
        # the exact same flags on the raw scores as the histogram assumed
        assert histogram.metrics_at(threshold) == classification_metrics(labels, scores >= threshold)


def test_best_threshold_by_hand() -> None:
    # 4 bins; positives .9 .8 (bin 3), .3 (bin 1); negatives .6 (bin 2), .1 (bin 0)
    # F0.5 = 1.25tp/(1.25tp + .25fn + fp), P=3:
    # edge .75: tp2 fp0 fn1: 2.5/2.75 = .909 <- best;  .5: 2.5/3.75;  .25: 3.75/4.75;  0: 3.75/5.75
    histogram = ScoreHistogram.from_scores([0.9, 0.8, 0.3, 0.6, 0.1], [1, 1, 1, 0, 0], bins=4)
    assert histogram.best_threshold() == 0.75
    # No positives: every edge ties at 0, the highest edge below 1 wins.
    assert ScoreHistogram.from_scores([0.1], [0], bins=4).best_threshold() == 0.75


@pytest.mark.parametrize("max_fpr", [0.0, 0.01, 0.05, 0.2])
def test_histogram_precision_at_fpr_matches_exact_on_edge_scores(max_fpr: float) -> None:
    labels, scores = _random_split(4, n=1000)
    histogram = ScoreHistogram.from_scores(scores, labels)
    expected = precision_at_fpr(labels, _on_edges(scores, 200), max_fpr=max_fpr)
    assert histogram.precision_at_fpr(max_fpr) == pytest.approx(expected, abs=1e-12)


def test_histogram_precision_at_fpr_by_hand_and_undefined() -> None:
    # 10 bins, 100 negatives: one at .95 (bin 9), 99 at .05; positives .85, .75 (bins 8, 7).
    scores = [0.95] + [0.05] * 99 + [0.85, 0.75]
    labels = [0] * 100 + [1, 1]
    histogram = ScoreHistogram.from_scores(scores, labels, bins=10)
    # <= 1 FP: edge .9: 0/1; edge .8: 1/2; edge .7..0.1: 2/3 (best); edge 0: fp 100, excluded
    assert histogram.precision_at_fpr(0.01) == pytest.approx(2 / 3)
    assert histogram.precision_at_fpr(0.0) == 0.0
    assert math.isnan(ScoreHistogram.from_scores([0.4], [1], bins=10).precision_at_fpr(0.01))


def _random_alerts(seed: int, n: int = 300, top: int = 400) -> tuple[np.ndarray, list[int | None]]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.4).astype(np.int64)
    alerts: list[int | None] = [
        int(rng.integers(1, top)) if rng.random() < (0.7 if label else 0.2) else None for label in labels
    ]
    return labels, alerts


def _direct(labels: np.ndarray, alerts: list[int | None]) -> dict[str, float]:
    flagged = np.array([a is not None for a in alerts])
    counts = classification_metrics(labels, flagged)
    return {
        "precision": counts.precision,
        "recall": counts.recall,
        "f1": counts.f1,
        "speed": speed(true_positive_latencies(labels, alerts)),
        "latency_f1": latency_weighted_f1(labels, alerts),
        "erde5": erde(labels, alerts, o=5),
        "erde50": erde(labels, alerts, o=50),
    }


@pytest.mark.parametrize("seed", range(6))
def test_early_counts_from_three_nodes_equal_pooled_direct_metrics(seed: int) -> None:
    labels, alerts = _random_alerts(seed, n=300 + seed)  # odd and even true-positive counts
    parts = np.array_split(np.arange(labels.size), 3)
    nodes = [EarlyCounts.from_alerts(labels[p], [alerts[i] for i in p]) for p in parts]
    merged = nodes[0].merge(nodes[1]).merge(nodes[2])
    assert merged.metrics() == pytest.approx(_direct(labels, alerts), rel=1e-12, abs=1e-12)
    assert merged.metrics()["speed"] == _direct(labels, alerts)["speed"]  # same median arithmetic


def test_early_counts_by_hand() -> None:
    # TP at 5, FN, FP at 3, TN (as in the ERDE hand example)
    counts = EarlyCounts.from_alerts([1, 1, 0, 0], [5, None, 3, None])
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (1, 1, 1, 1)
    assert counts.latency_counts[4] == 1 and sum(counts.latency_counts) == 1
    metrics = counts.metrics()
    # precision 1/2, recall 1/2, F1 = 2/(2+1+1) = .5; speed = 1 - penalty(5); ERDE 0.5 / 0.375
    assert metrics["precision"] == 0.5 and metrics["recall"] == 0.5 and metrics["f1"] == 0.5
    assert metrics["speed"] == pytest.approx(1 - latency_penalty(5))
    assert metrics["latency_f1"] == pytest.approx(0.5 * (1 - latency_penalty(5)))
    assert metrics["erde5"] == pytest.approx(0.5)
    assert metrics["erde50"] == pytest.approx(0.375)


def test_early_counts_empty_and_without_true_positives() -> None:
    empty = EarlyCounts.from_alerts([], []).metrics()
    assert math.isnan(empty["erde5"]) and empty["speed"] == 0.0 and empty["f1"] == 0.0
    missed = EarlyCounts.from_alerts([1, 0], [None, None]).metrics()
    # FN costs 1, TN 0 -> ERDE = 1/2 for any o; no TP -> speed 0
    assert missed["erde5"] == 0.5 and missed["erde50"] == 0.5 and missed["speed"] == 0.0


def test_latency_overflow_bin_bounds_the_speed_error() -> None:
    labels = [1, 1, 1]
    alerts: list[int | None] = [3, 40, 60]
    counts = EarlyCounts.from_alerts(labels, alerts, max_latency=20)
    # 40 and 60 share the last bin (latency 20); the median (40) is read as 20.
    assert counts.latency_counts[-1] == 2
    exact = speed([3, 40, 60])
    assert counts.metrics()["speed"] == pytest.approx(1 - latency_penalty(20))
    assert abs(counts.metrics()["speed"] - exact) < 1 - latency_penalty(20)
    # ERDE stays exact: it uses the summed latency costs, not the histogram.
    assert counts.metrics()["erde50"] == pytest.approx(erde(labels, alerts, o=50), rel=1e-12)


def test_early_counts_transport_through_a_flower_record() -> None:
    labels, alerts = _random_alerts(9)
    counts = EarlyCounts.from_alerts(labels, alerts)
    record = MetricRecord({**early_counts_to_metrics(counts), "num-examples": 9})  # as a node's reply carries them
    assert early_counts_from_metrics(record) == counts
    assert early_counts_from_metrics(MetricRecord({"num-examples": 9})) is None


def test_early_counts_reject_bad_transport() -> None:
    fields = EarlyCounts.from_alerts([1, 0], [2, None]).to_lists()
    with pytest.raises(DataError, match="lack lc5-sum"):
        EarlyCounts.from_lists({k: v for k, v in fields.items() if k != "lc5-sum"})
    with pytest.raises(DataError, match="tp=2"):
        EarlyCounts.from_lists({**fields, "tp": 2})
    with pytest.raises(DataError, match="tp='1'"):
        EarlyCounts.from_lists({**fields, "tp": "1"})
    with pytest.raises(DataError, match="1000 and 10 latency bins"):
        EarlyCounts.from_alerts([1], [2]).merge(EarlyCounts.from_alerts([1], [2], max_latency=10))


def test_warnings_from_scores_feed_the_counts() -> None:
    # End to end on two hand conversations: positive warned at 9, negative never warned.
    positive = [0.9 if t in {3, 5, 6, 8, 9} else 0.1 for t in range(1, 13)]
    negative = [0.9 if t in {1, 2} else 0.1 for t in range(1, 13)]
    alerts = [warning_at(s, threshold=0.5) for s in (positive, negative)]
    counts = EarlyCounts.from_alerts([1, 0], alerts)
    assert alerts == [9, None]
    assert (counts.tp, counts.tn) == (1, 1)
    assert counts.metrics()["speed"] == pytest.approx(1 - latency_penalty(9))


def test_coarsened_early_counts_keep_their_shape_and_hide_single_conversations() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 137)
    alerts = [int(rng.integers(1, 40)) if rng.random() < 0.7 else None for _ in labels]
    exact = EarlyCounts.from_alerts(labels, alerts, max_latency=50)
    coarse = exact.coarsened(10)
    for name in ("tp", "fp", "fn", "tn"):
        assert getattr(coarse, name) % 10 == 0 and abs(getattr(coarse, name) - getattr(exact, name)) <= 5
    assert sum(coarse.latency_counts) == coarse.tp and all(c % 10 == 0 and c >= 0 for c in coarse.latency_counts)
    exact_cdf = np.cumsum(exact.latency_counts) / exact.tp
    coarse_cdf = np.cumsum(coarse.latency_counts) / coarse.tp
    assert np.max(np.abs(exact_cdf - coarse_cdf)) <= 5 / coarse.tp + 1e-9  # the latency distribution survives
    assert coarse.lc5_sum / coarse.tp == pytest.approx(exact.lc5_sum / exact.tp, abs=0.005)
    assert exact.coarsened(1) == exact
    single = EarlyCounts.from_alerts([1, 0, 0], [7, None, 2], max_latency=10).coarsened(10)
    assert (single.tp, single.fp, single.fn, single.tn) == (10, 10, 0, 10)
    assert single.latency_counts[6] == 10 and sum(single.latency_counts) == 10
    with pytest.raises(ConfigError):
        exact.coarsened(0)
