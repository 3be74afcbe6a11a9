"""Sticky early warnings and their latency metrics against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.early import (
    WarningTracker,
    erde,
    erde_latency_cost,
    latency_penalty,
    latency_weighted_f1,
    speed,
    true_positive_latencies,
    warning_at,
)
from federation.errors import ConfigError, DataError


def _scores(positive_messages: set[int], length: int) -> list[float]:
    """0.9 after each listed (1-based) message, 0.1 after the others."""
    return [0.9 if t in positive_messages else 0.1 for t in range(1, length + 1)]


def test_warning_raised_when_five_of_last_ten_are_positive() -> None:
    # Positive decisions after messages 3, 5, 6, 8, 9: the window 1..9 holds 5 -> raised at 9.
    assert warning_at(_scores({3, 5, 6, 8, 9}, 15), threshold=0.5) == 9


def test_warning_counts_only_the_last_ten_decisions() -> None:
    # Positives at 1-4 and 11-12: window 2..11 holds {2,3,4,11} = 4, window 3..12 holds
    # {3,4,11,12} = 4, later windows fewer -> never raised.
    assert warning_at(_scores({1, 2, 3, 4, 11, 12}, 20), threshold=0.5) is None
    # Positives at 1-4 and 10: window 1..10 holds 5 -> raised at 10.
    assert warning_at(_scores({1, 2, 3, 4, 10}, 20), threshold=0.5) == 10


def test_warning_at_start_uses_the_decisions_available() -> None:
    # The first five messages are positive: 5 of the 5 decisions so far -> raised at 5.
    assert warning_at([0.9] * 8, threshold=0.5) == 5
    assert warning_at([0.9] * 4, threshold=0.5) is None  # too short to ever reach 5
    assert warning_at([], threshold=0.5) is None


def test_score_equal_to_threshold_is_a_positive_decision() -> None:
    assert warning_at([0.5, 0.2, 0.7], threshold=0.5, k=2, last=3) == 3
    assert warning_at([0.3, 0.7], threshold=0.7, k=1, last=1) == 2


def test_float32_scores_compare_in_float64() -> None:
    # float32(0.1) = 0.10000000149 >= 0.1 in float64 as in float32; 0.30000001192 >= 0.3
    scores = np.array([0.1, 0.3], dtype=np.float32)
    assert warning_at(scores, threshold=0.3, k=1, last=1) == 2


def test_tracker_is_sticky_and_fires_once() -> None:
    tracker = WarningTracker(threshold=0.5)
    fired = [tracker.update(score) for score in _scores({3, 5, 6, 8, 9, 10, 11}, 30)]
    # True exactly once, at message 9; later negatives do not lower it and later
    # positives do not raise it again.
    assert fired.count(True) == 1 and fired.index(True) == 8
    assert tracker.raised and tracker.raised_at == 9
    assert tracker.messages_read == 30


def test_tracker_not_raised_before_enough_positives() -> None:
    tracker = WarningTracker(threshold=0.5, k=3, last=4)
    assert [tracker.update(s) for s in (0.9, 0.1, 0.9, 0.1)] == [False] * 4
    assert tracker.raised_at is None and not tracker.raised
    # message 5: last 4 decisions - + - + -> 2 positives, not yet
    assert tracker.update(0.9) is False
    # message 6: last 4 decisions + - + + -> 3 positives, raised
    assert tracker.update(0.9) is True
    assert tracker.raised_at == 6


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=60),
    threshold=st.floats(min_value=0.0, max_value=1.0),
    last=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_tracker_agrees_with_warning_at(scores: list[float], threshold: float, last: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=last))
    tracker = WarningTracker(threshold=threshold, k=k, last=last)
    fired_at = [t for t, score in enumerate(scores, start=1) if tracker.update(score)]
    expected = warning_at(scores, threshold=threshold, k=k, last=last)
    assert tracker.raised_at == expected
    assert fired_at == ([] if expected is None else [expected])


@pytest.mark.parametrize(("k", "last"), [(0, 10), (11, 10), (5, 0), (2.5, 10)])
def test_invalid_rule_is_a_config_error(k: float, last: int) -> None:
    with pytest.raises(ConfigError):
        warning_at([0.9], threshold=0.5, k=k, last=last)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        WarningTracker(threshold=0.5, k=k, last=last)  # type: ignore[arg-type]


def test_non_finite_scores_name_the_message() -> None:
    with pytest.raises(DataError, match="message 2"):
        warning_at([0.1, math.nan], threshold=0.5)
    tracker = WarningTracker(threshold=0.5)
    tracker.update(0.1)
    with pytest.raises(DataError, match="message 2"):
        tracker.update(math.inf)
    with pytest.raises(ConfigError, match="threshold"):
        warning_at([0.1], threshold=math.nan)


def test_latency_penalty_values() -> None:
    # penalty(1) = -1 + 2/(1 + e^0) = 0
    assert latency_penalty(1) == 0.0
    # penalty(90) = -1 + 2/(1 + e^(-log 3)) = -1 + 2/(1 + 1/3) = -1 + 1.5 = 0.5
    assert latency_penalty(90) == pytest.approx(0.5)
    # limit 1 for late warnings, never reached, increasing
    assert 0.999 < latency_penalty(1000) < 1.0
    assert latency_penalty(10**7) == pytest.approx(1.0)
    values = [latency_penalty(t) for t in range(1, 400)]
    assert all(a < b for a, b in zip(values, values[1:]))
    # a custom slope: p = log(3): penalty(2) = 0.5
    assert latency_penalty(2, p=math.log(3)) == pytest.approx(0.5)


def test_latency_penalty_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="latency=0"):
        latency_penalty(0)
    with pytest.raises(ConfigError, match="p="):
        latency_penalty(3, p=0.0)


def test_speed_is_one_minus_median_penalty() -> None:
    # penalties 0, .5, .5 -> median .5 -> speed .5
    assert speed([1, 90, 90]) == pytest.approx(0.5)
    # penalties 0, .5 -> median .25 -> speed .75
    assert speed([90, 1]) == pytest.approx(0.75)
    assert speed([1]) == 1.0
    # No true positive: no speed credit.
    assert speed([]) == 0.0


def test_latency_weighted_f1_by_hand() -> None:
    labels = [1, 1, 0, 0]
    # conv 1: TP at 90; conv 2: FN; conv 3: TN; conv 4: FP at 5
    alerts = [90, None, None, 5]
    # F1 = 2*1/(2*1 + 1 + 1) = 0.5; speed = 1 - penalty(90) = 0.5 -> 0.25
    assert latency_weighted_f1(labels, alerts) == pytest.approx(0.25)
    assert true_positive_latencies(labels, alerts) == [90]
    assert latency_weighted_f1([1, 0], [None, 3]) == 0.0


def test_erde_latency_cost_values() -> None:
    # lc_o(o) = 1 - 1/(1 + e^0) = 0.5
    assert erde_latency_cost(5, o=5) == pytest.approx(0.5)
    # lc_5(1) = 1 - 1/(1 + e^-4) = e^-4/(1 + e^-4) = 0.017986
    assert erde_latency_cost(1, o=5) == pytest.approx(math.exp(-4) / (1 + math.exp(-4)))
    # no overflow far from o
    assert erde_latency_cost(10**6, o=5) == 1.0
    assert 0.0 < erde_latency_cost(1, o=50) < 1e-20


def test_erde_four_conversations_by_hand() -> None:
    labels = [1, 1, 0, 0]
    alerts = [5, None, 3, None]  # TP at 5, FN, FP, TN
    # c_fp = 2 positives / 4 conversations = 0.5
    # ERDE_5:  TP lc_5(5) = 0.5; FN 1; FP 0.5; TN 0 -> (0.5 + 1 + 0.5 + 0)/4 = 0.5
    assert erde(labels, alerts, o=5) == pytest.approx(0.5)
    # ERDE_50: TP lc_50(5) = e^-45/(1 + e^-45) ~ 2.9e-20; FN 1; FP 0.5 -> 1.5/4 = 0.375
    assert erde(labels, alerts, o=50) == pytest.approx(0.375)


def test_erde_perfect_immediate_detector_and_empty_collection() -> None:
    # Every positive warned after message 1, no false alarms: ERDE_5 = lc_5(1)*2/4.
    assert erde([1, 1, 0, 0], [1, 1, None, None], o=5) == pytest.approx(erde_latency_cost(1, o=5) / 2)
    assert math.isnan(erde([], [], o=5))


def test_alerts_are_validated() -> None:
    with pytest.raises(DataError, match="2 alerts for 3 labels"):
        erde([1, 0, 1], [None, 3], o=5)
    with pytest.raises(DataError, match=r"alert_at\[1\]=0"):
        erde([1, 0], [None, 0], o=5)
