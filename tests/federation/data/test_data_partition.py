"""Dirichlet size and label skew: coverage, determinism, and skew that grows as alpha shrinks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.partition import dirichlet_partition, dirichlet_sizes, skewed_rate
from federation.errors import ConfigError


def _labels(n: int, positives: int) -> np.ndarray:
    return np.array([1] * positives + [0] * (n - positives))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    frac=st.floats(min_value=0.0, max_value=1.0),
    parts=st.integers(min_value=1, max_value=12),
    alpha=st.floats(min_value=0.01, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_partition_covers_every_index_once_and_no_part_is_empty(n, frac, parts, alpha, seed):
    parts = min(parts, n)
    labels = _labels(n, round(frac * n))
    split = dirichlet_partition(labels, num_parts=parts, alpha=alpha, rng=np.random.default_rng(seed))
    assert len(split) == parts
    assert all(len(part) > 0 for part in split)
    joined = np.concatenate(split)
    assert sorted(joined.tolist()) == list(range(n))
    assert all(np.all(np.diff(part) > 0) for part in split)  # sorted, no duplicates


def test_partition_is_deterministic_for_a_seed_and_differs_across_seeds():
    labels = _labels(500, 150)
    first = dirichlet_partition(labels, num_parts=6, alpha=0.5, rng=np.random.default_rng(7))
    again = dirichlet_partition(labels, num_parts=6, alpha=0.5, rng=np.random.default_rng(7))
    other = dirichlet_partition(labels, num_parts=6, alpha=0.5, rng=np.random.default_rng(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def _label_spread(alpha: float) -> float:
    """Mean over seeds of the spread of per-part positive rates."""
    labels = _labels(1000, 400)
    spreads = []
    for seed in range(20):
        split = dirichlet_partition(labels, num_parts=5, alpha=alpha, rng=np.random.default_rng(seed))
        spreads.append(np.std([labels[part].mean() for part in split]))
    return float(np.mean(spreads))


def test_label_skew_grows_as_alpha_shrinks():
    spreads = [_label_spread(alpha) for alpha in (100.0, 1.0, 0.1)]
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[0] < 0.05  # near-i.i.d. at large alpha


def test_sizes_sum_respect_the_minimum_and_skew_grows_as_alpha_shrinks():
    def spread(alpha: float) -> float:
        values = []
        for seed in range(20):
            sizes = dirichlet_sizes(1000, num_parts=5, alpha=alpha, rng=np.random.default_rng(seed), minimum=20)
            assert sizes.sum() == 1000 and sizes.min() >= 20
            values.append(sizes.std())
        return float(np.mean(values))

    assert spread(100.0) < spread(1.0) < spread(0.1)
    again = dirichlet_sizes(1000, num_parts=5, alpha=1.0, rng=np.random.default_rng(3))
    assert np.array_equal(again, dirichlet_sizes(1000, num_parts=5, alpha=1.0, rng=np.random.default_rng(3)))


def test_skewed_rate_centres_on_the_base_rate_and_narrows_with_alpha():
    rng = np.random.default_rng(0)
    wide = [skewed_rate(0.3, alpha=0.5, rng=rng) for _ in range(2000)]
    narrow = [skewed_rate(0.3, alpha=50.0, rng=rng) for _ in range(2000)]
    assert abs(np.mean(narrow) - 0.3) < 0.01
    assert np.std(narrow) < np.std(wide)
    assert min(wide) >= 0.02 and max(wide) <= 0.98


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda rng: dirichlet_partition(_labels(3, 1), num_parts=4, alpha=1.0, rng=rng), "num_parts = 4"),
        (lambda rng: dirichlet_partition(_labels(9, 1), num_parts=2, alpha=0.0, rng=rng), "alpha = 0.0"),
        (lambda rng: dirichlet_partition(_labels(9, 1), num_parts=0, alpha=1.0, rng=rng), "num_parts = 0"),
        (lambda rng: dirichlet_sizes(10, num_parts=3, alpha=1.0, rng=rng, minimum=4), "total = 10"),
        (lambda rng: skewed_rate(1.0, alpha=1.0, rng=rng), "base_rate = 1.0"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_value(call, needle):
    with pytest.raises(ConfigError, match=needle):
        call(np.random.default_rng(0))
