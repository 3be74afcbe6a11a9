"""Sliding-window scoring equals scoring each window on its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus import GradSampleModule

from federation.errors import ConfigError
from federation.models.features import FeatureSet
from federation.models.heads import AttentionWindowHead, NgramHead, MessageScoreHead
from federation.models.windows import conversation_scores, window_scores

DIM = 10


def _features(lengths: list[int]) -> FeatureSet:
    rng = np.random.default_rng(7)
    unique = 9  # few distinct texts: rows repeat, as chat lines do
    return FeatureSet(
        embeddings=rng.standard_normal((unique, DIM)).astype(np.float32),
        rows=[rng.integers(0, unique, n) for n in lengths],
        speakers=[rng.integers(0, 3, n) for n in lengths],
        labels=np.zeros(len(lengths), np.int64),
        ids=[str(i) for i in range(len(lengths))],
    )


def _one_by_one(head: torch.nn.Module, features: FeatureSet, window: int) -> list[np.ndarray]:
    out = []
    with torch.no_grad():
        for i, n in enumerate(features.lengths):
            scores = []
            for t in range(1, n + 1):
                b = features.batch([i], window=window, ends=[t])
                scores.append(torch.sigmoid(head(b.x, b.mask, b.speaker)).item())
            out.append(np.array(scores, np.float32))
    return out


HEADS = [
    lambda: AttentionWindowHead(dim_in=DIM, hidden=8, window=3, dropout=0.5),
    lambda: NgramHead(dim_in=DIM, hidden=4),
    lambda: NgramHead(dim_in=DIM, hidden=0),
    lambda: MessageScoreHead(dim_in=DIM),
]
HEAD_IDS = ["attn", "ngram-mlp", "ngram-linear", "pooled"]


@pytest.mark.parametrize("sliding", [True, False], ids=["sliding", "windowed"])
@pytest.mark.parametrize("make", HEADS, ids=HEAD_IDS)
def test_vectorised_scores_equal_each_window_alone(make, sliding: bool) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    head = make()
    features = _features([9, 1, 0, 4, 12])
    head.train()
    scores = window_scores(head, features, window=4, batch_size=7, conversations_per_pass=2, sliding=sliding)
    assert head.training  # mode restored
    head.eval()
    expected = _one_by_one(head, features, window=4)
    assert [s.shape for s in scores] == [(n,) for n in features.lengths]
    for got, want in zip(scores, expected, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5)
    top = conversation_scores(head, features, window=4, batch_size=100)
    np.testing.assert_allclose(top, [s.max() if s.size else 0.0 for s in expected], atol=1e-5)
    assert top.shape == (5,) and top[2] == 0.0


def test_window_limits_what_is_seen() -> None:
    torch.manual_seed(1)
    head = AttentionWindowHead(dim_in=DIM, hidden=8, window=2, dropout=0.0)
    features = _features([10])
    short = window_scores(head, features, window=3)[0]
    whole = window_scores(head, features, window=50)[0]
    np.testing.assert_allclose(short[:3], whole[:3], atol=1e-6)  # same windows until 3 messages
    assert not np.allclose(short[3:], whole[3:])
    # A conversation's scores up to t do not depend on what comes after t.
    prefix = features.subset([0])
    prefix.rows[0] = prefix.rows[0][:6]
    prefix.speakers[0] = prefix.speakers[0][:6]
    prefix = FeatureSet(prefix.embeddings, prefix.rows, prefix.speakers, prefix.labels, prefix.ids)
    np.testing.assert_allclose(window_scores(head, prefix, window=3)[0], short[:6], atol=1e-6)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_opacus_wrapped_head_scores_the_same() -> None:
    torch.manual_seed(2)
    head = AttentionWindowHead(dim_in=DIM, hidden=8)
    features = _features([5, 3])
    plain = conversation_scores(head, features, window=3)
    wrapped = GradSampleModule(head)
    np.testing.assert_allclose(conversation_scores(wrapped, features, window=3), plain, atol=1e-6)


def test_no_conversations_and_bad_settings() -> None:
    head = NgramHead(dim_in=DIM)
    empty = _features([])
    assert window_scores(head, empty) == []
    assert conversation_scores(head, empty).shape == (0,)
    with pytest.raises(ConfigError, match="score_window"):
        window_scores(head, _features([2]), window=0)
    with pytest.raises(ConfigError, match="batch_size"):
        window_scores(head, _features([2]), batch_size=0)


@pytest.mark.parametrize("make", HEADS[1:], ids=HEAD_IDS[1:])
def test_sliding_path_equals_one_window_per_message_on_long_conversations(make) -> None:  # noqa: ANN001
    """The all-windows-at-once path of a head matches the reference path, windows shorter and longer than chats."""
    torch.manual_seed(3)
    head = make()
    with torch.no_grad():  # large weights: sharp attention and saturated scores are where shortcuts break
        for parameter in head.parameters():
            parameter.mul_(4.0)
    features = _features([150, 37, 2, 0, 88, 51, 50, 49])
    for window in (1, 5, 50, 200):
        fast = window_scores(head, features, window=window, conversations_per_pass=3)
        slow = window_scores(head, features, window=window, batch_size=64, sliding=False)
        for got, want in zip(fast, slow, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
