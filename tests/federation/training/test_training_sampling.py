"""Which window of a sampled conversation a training step reads."""

from __future__ import annotations

import numpy as np

from federation.training.sampling import window_ends


def test_windows_of_annotated_grooming_never_end_before_the_first_indicator() -> None:
    lengths = np.array([40, 40, 12, 1, 0, 30])
    earliest = np.array([25, 0, 12, 1, 0, 40])  # 40 > length 30: the whole conversation
    ends = np.stack([window_ends(lengths, np.random.default_rng(seed), earliest) for seed in range(300)])
    assert (ends[:, 0] >= 25).all() and (ends[:, 0] <= 40).all()
    assert ends[:, 0].min() == 25  # the whole allowed range is drawn, from its first end
    assert ends[:, 1].min() == 1  # no annotation: every prefix, as before
    assert (ends[:, 2] == 12).all()
    assert (ends[:, 3] == 1).all() and (ends[:, 4] == 0).all()
    assert (ends[:, 5] == 30).all()


def test_without_annotations_the_draws_are_unchanged() -> None:
    """No annotation at all draws exactly the ends it drew before annotations counted."""
    lengths = np.array([40, 7, 1, 0, 19])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        unannotated = window_ends(lengths, np.random.default_rng(seed), np.zeros_like(lengths))
        uniform = np.minimum(lengths, 1 + np.floor(rng.random(lengths.shape) * lengths).astype(np.int64))
        before = np.where(rng.random(lengths.shape) < 0.5, lengths, uniform)
        np.testing.assert_array_equal(unannotated, before)
        np.testing.assert_array_equal(window_ends(lengths, np.random.default_rng(seed)), before)
