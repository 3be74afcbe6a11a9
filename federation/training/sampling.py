"""Which conversations, and which window of each, one training step sees.

Non-DP training walks fixed-size batches over shuffled passes; DP-SGD draws Poisson
batches (each conversation in independently), which is what its accountant assumes.
Each sampled conversation contributes one window ending at a random message.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["poisson_batches", "shuffled_batches", "window_ends"]


def window_ends(lengths: np.ndarray, rng: np.random.Generator, earliest: np.ndarray | None = None) -> np.ndarray:
    """One random end per conversation: half the time its last message, else uniform in [earliest, length].

    A training window is labelled with its conversation's label. The first messages of a
    grooming conversation are small talk, so prefixes alone would mostly teach noise:
    where the data annotates risk indicators, ``earliest`` (1-based, 0 for none) keeps a
    grooming conversation's windows from ending before its first annotated indicator, so
    a window labelled grooming always holds some of the grooming. Every prefix length is
    still trained (by the benign conversations and unannotated data), because scoring
    reads a window after every message and an untrained short window would raise false
    warnings.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    first = np.ones_like(lengths) if earliest is None else np.clip(np.asarray(earliest, dtype=np.int64), 1, None)
    first = np.minimum(first, np.maximum(lengths, 1))
    span = np.maximum(lengths - first + 1, 0)
    uniform = np.minimum(lengths, first + np.floor(rng.random(lengths.shape) * span).astype(np.int64))
    return np.where(rng.random(lengths.shape) < 0.5, lengths, uniform)


def shuffled_batches(n: int, batch: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless fixed-size batches over successive random permutations (non-DP sampling)."""
    pending = np.zeros(0, dtype=np.int64)
    while True:
        while pending.size < batch:
            pending = np.concatenate([pending, rng.permutation(n)])
        yield pending[:batch]
        pending = pending[batch:]


def poisson_batches(n: int, rate: float, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless Poisson batches: each conversation in independently with probability ``rate``."""
    while True:
        yield np.flatnonzero(rng.random(n) < rate)

