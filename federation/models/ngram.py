"""The n-gram baseline encoder: signed feature hashing, no model, no cache.

A fast, dependency-light encoder that runs anywhere (CI, a node without the MiniLM
files) and gives the baseline the neural model has to beat.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from federation.checks import is_integer
from federation.errors import ConfigError
from federation.models.encoder import EncoderStats

logger = logging.getLogger(__name__)

NGRAM_VERSION = "hashed-ngrams-v1"


class HashedNgramEncoder:
    """Word 1-2 grams and character 3-5 grams hashed into ``dim`` signed buckets.

    Each view (words, characters) is hashed with scikit-learn's ``HashingVectorizer``
    (MurmurHash3 with a fixed seed, ``alternate_sign=True`` so collisions cancel in
    expectation) and L2-normalised; the two are summed and the row normalised again, so
    both views weigh the same and every non-empty text has a unit vector.

    Parameters
    ----------
    dim
        Number of hash buckets, the vector length.

    Notes
    -----
    Deterministic across processes and machines (no salt, no state), so nodes of a
    federation agree on the features without exchanging anything.
    """

    def __init__(self, *, dim: int = 1024) -> None:
        if not is_integer(dim, numpy=False) or dim < 1:
            raise ConfigError(f"model.ngram_dim must be a positive integer, got {dim!r}")
        from sklearn.feature_extraction.text import HashingVectorizer

        self._dim = dim
        common = {"n_features": dim, "alternate_sign": True, "norm": "l2", "lowercase": True}
        self._words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), **common)
        self._chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)
        self._stats = EncoderStats()

    def __repr__(self) -> str:
        return f"HashedNgramEncoder(dim={self._dim})"

    @property
    def id(self) -> str:
        """``hashed-ngrams-v1:dim=<dim>``."""
        return f"{NGRAM_VERSION}:dim={self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def stats(self) -> EncoderStats:
        """A snapshot of the counters since construction (``cache_hits`` stays 0)."""
        return dataclasses.replace(self._stats)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Hash each text into a dense float32 row.

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``; unit-length rows, zeros for a text with
            no token at all.
        """
        texts = list(texts)
        start = time.perf_counter()
        self._stats.texts_asked += len(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        summed = self._words.transform(texts) + self._chars.transform(texts)
        out = summed.toarray().astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        self._stats.encoded += len(texts)
        self._stats.encode_seconds += time.perf_counter() - start
        return out
