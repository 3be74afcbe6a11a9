"""Which conversations, and which window of each, one training step sees.

Non-DP training walks fixed-size batches over shuffled passes; DP-SGD draws Poisson
batches (each conversation in independently), which is what its accountant assumes.
Each sampled conversation contributes one window ending at a random message.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["poisson_batches", "shuffled_batches", "window_ends"]


def window_ends(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random end per conversation: half the time its last message, else uniform in [1, length].

    A training window is labelled with its conversation's label. The first messages of a
    grooming conversation are small talk, so prefixes alone would mostly teach noise;
    every prefix length must still be trained, because scoring reads a window after every
    message and an untrained short window would raise false warnings.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    uniform = np.minimum(lengths, 1 + np.floor(rng.random(lengths.shape) * lengths).astype(np.int64))
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

