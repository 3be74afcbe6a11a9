"""Conversation-level metrics against hand-computed examples (arithmetic in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from federation.errors import ConfigError, DataError
from federation.metrics import (
    ClassificationMetrics,
    auprc,
    classification_metrics,
    fbeta,
    precision_at_fpr,
    threshold_for_fbeta,
)


def test_fbeta_small_counts_by_hand() -> None:
    # tp=3, fp=1, fn=2.
    # beta=1:   2*3 / (2*3 + 1*2 + 1)          = 6/9      = 0.6667
    # beta=0.5: 1.25*3 / (1.25*3 + 0.25*2 + 1) = 3.75/5.25 = 0.7143
    # beta=2:   5*3 / (5*3 + 4*2 + 1)          = 15/24    = 0.625
    assert fbeta(tp=3, fp=1, fn=2, beta=1.0) == pytest.approx(6 / 9)
    assert fbeta(tp=3, fp=1, fn=2, beta=0.5) == pytest.approx(3.75 / 5.25)
    assert fbeta(tp=3, fp=1, fn=2, beta=2.0) == pytest.approx(15 / 24)


def test_fbeta_is_zero_when_undefined_or_no_true_positive() -> None:
    assert fbeta(tp=0, fp=0, fn=0, beta=0.5) == 0.0  # 0/0: undefined -> 0
    assert fbeta(tp=0, fp=2, fn=3, beta=0.5) == 0.0  # 0/5
    assert fbeta(tp=4, fp=0, fn=0, beta=0.5) == 1.0  # perfect


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan, math.inf])
def test_fbeta_rejects_bad_beta(beta: float) -> None:
    with pytest.raises(ConfigError, match="beta"):
        fbeta(tp=1, fp=1, fn=1, beta=beta)


def test_fbeta_rejects_negative_counts() -> None:
    with pytest.raises(DataError, match="fp=-1"):
        fbeta(tp=1, fp=-1, fn=0, beta=1.0)


def test_classification_metrics_by_hand() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    predictions = [1, 0, 1, 1, 0, 0, 0, 0]
    # tp: idx 0, 2 -> 2; fn: idx 1, 7 -> 2; fp: idx 3 -> 1; tn: idx 4, 5, 6 -> 3
    # precision 2/3; recall 2/4; F1 = 4/(4+2+1) = 4/7; F0.5 = 2.5/(2.5+0.5+1) = 0.625
    result = classification_metrics(labels, predictions)
    assert result == ClassificationMetrics(tp=2, fp=1, fn=2, tn=3)
    as_dict = result.as_dict()
    assert as_dict["precision"] == pytest.approx(2 / 3)
    assert as_dict["recall"] == pytest.approx(0.5)
    assert as_dict["f1"] == pytest.approx(4 / 7)
    assert as_dict["f05"] == pytest.approx(0.625)
    assert {key: as_dict[key] for key in ("tp", "fp", "fn", "tn")} == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    assert all(isinstance(as_dict[key], int) for key in ("tp", "fp", "fn", "tn"))


def test_classification_metrics_with_nothing_flagged_is_zero_not_error() -> None:
    result = classification_metrics(np.array([1, 0, 0]), np.array([False, False, False]))
    assert (result.precision, result.recall, result.f1, result.f05) == (0.0, 0.0, 0.0, 0.0)
    assert result.tn == 2 and result.fn == 1


def test_classification_metrics_rejects_bad_input_with_index() -> None:
    with pytest.raises(DataError, match=r"labels\[1\]=2"):
        classification_metrics([1, 2], [1, 0])
    with pytest.raises(DataError, match="3 entries but labels have 2"):
        classification_metrics([1, 0], [1, 0, 1])


def test_auprc_by_hand() -> None:
    # scores .9(+) .8(-) .7(+) .1(-), P = 2
    # t=.9: P=1,   R=.5 -> .5*1
    # t=.8: P=.5,  R=.5 -> +0
    # t=.7: P=2/3, R=1  -> +.5*2/3
    # t=.1: P=.5,  R=1  -> +0        AP = .5 + 1/3 = 0.8333
    assert auprc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)


def test_auprc_treats_tied_scores_as_one_threshold() -> None:
    # scores .5(+) .5(-) .2(+): t=.5: P=.5, R=.5 -> .25; t=.2: P=2/3, R=1 -> +.5*2/3  = 0.5833
    assert auprc([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.25 + 1 / 3)


def test_auprc_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 300)
    scores = rng.random(300) + 0.3 * labels
    assert auprc(labels, scores) == pytest.approx(average_precision_score(labels, scores))


def test_auprc_without_positives_is_nan() -> None:
    assert math.isnan(auprc([0, 0, 0], [0.1, 0.5, 0.9]))
    assert math.isnan(auprc([], []))


def _fpr_example() -> tuple[list[int], list[float]]:
    # 5 positives, 100 negatives; one negative outranks every positive.
    positives = [0.95, 0.9, 0.7, 0.5, 0.3]
    negatives = [0.97, 0.8] + [0.1] * 98
    return [1] * 5 + [0] * 100, positives + negatives


def test_precision_at_one_percent_fpr_by_hand() -> None:
    labels, scores = _fpr_example()
    # 1% of 100 negatives: at most 1 false positive.
    # t=.97: tp0 fp1 P=0;  t=.95: tp1 fp1 P=1/2;  t=.9: tp2 fp1 P=2/3;
    # t=.8: fp2 -> FPR 2% > 1%, excluded (and everything below).   best = 2/3
    assert precision_at_fpr(labels, scores, max_fpr=0.01) == pytest.approx(2 / 3)


def test_precision_at_two_percent_fpr_by_hand() -> None:
    labels, scores = _fpr_example()
    # at most 2 FP: t=.8: 2/4; t=.7: 3/5; t=.5: 4/6; t=.3: 5/7 = 0.714 (best); t=.1: fp100, excluded
    assert precision_at_fpr(labels, scores, max_fpr=0.02) == pytest.approx(5 / 7)


def test_precision_at_fpr_zero_when_only_flagging_nothing_fits() -> None:
    labels, scores = _fpr_example()
    # Any flag includes the 0.97 negative, so FPR 0 admits only "flag nothing".
    assert precision_at_fpr(labels, scores, max_fpr=0.0) == 0.0


def test_precision_at_fpr_undefined_cases_and_bad_cap() -> None:
    assert math.isnan(precision_at_fpr([0, 0], [0.1, 0.2]))
    assert math.isnan(precision_at_fpr([1, 1], [0.1, 0.2]))
    with pytest.raises(ConfigError, match="max_fpr"):
        precision_at_fpr([0, 1], [0.1, 0.2], max_fpr=1.5)


def test_threshold_for_fbeta_by_hand() -> None:
    labels = [1, 1, 0, 1, 0]
    scores = [0.9, 0.8, 0.7, 0.6, 0.2]
    # P = 3.  F0.5 = 1.25 tp / (1.25 tp + .25 fn + fp)
    # t=.9: tp1 fp0 fn2: 1.25/1.75 = .714
    # t=.8: tp2 fp0 fn1: 2.5/2.75  = .909  <- best
    # t=.7: tp2 fp1 fn1: 2.5/3.75  = .667
    # t=.6: tp3 fp1 fn0: 3.75/4.75 = .789
    # t=.2: tp3 fp2 fn0: 3.75/5.75 = .652
    assert threshold_for_fbeta(labels, scores, beta=0.5) == 0.8
    # F1 = 2tp/(2tp+fp+fn): .5, .8, .667, .857 (t=.6, best), .75
    assert threshold_for_fbeta(labels, scores, beta=1.0) == 0.6


def test_threshold_for_fbeta_ties_go_to_the_higher_threshold() -> None:
    labels = [1, 0, 0, 1]
    scores = [0.9, 0.8, 0.7, 0.6]
    # F1: t=.9: tp1 fp0 fn1 = 2/3; t=.8: 2/4; t=.7: 2/5; t=.6: tp2 fp2 fn0 = 4/6 = 2/3 (tie)
    assert threshold_for_fbeta(labels, scores, beta=1.0) == 0.9


def test_threshold_for_fbeta_single_class() -> None:
    # No positive: F is 0 everywhere; the highest score flags the fewest.
    assert threshold_for_fbeta([0, 0, 0], [0.2, 0.7, 0.4]) == 0.7
    # Only positives: flagging all (lowest score) gives F = 1.
    assert threshold_for_fbeta([1, 1, 1], [0.2, 0.7, 0.4]) == 0.2


def test_threshold_for_fbeta_flags_exactly_the_scores_at_or_above_it() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = rng.random(200) + 0.4 * labels
    threshold = threshold_for_fbeta(labels, scores, beta=0.5)
    chosen = classification_metrics(labels, scores >= threshold).f05
    # No observed score gives a better F0.5 (brute force over every candidate).
    assert all(classification_metrics(labels, scores >= t).f05 <= chosen + 1e-12 for t in np.unique(scores))


def test_threshold_for_fbeta_rejects_empty_and_non_finite() -> None:
    with pytest.raises(DataError, match="no scored conversations"):
        threshold_for_fbeta([], [])
    with pytest.raises(DataError, match=r"scores\[1\]=nan"):
        threshold_for_fbeta([1, 0], [0.5, math.nan])
