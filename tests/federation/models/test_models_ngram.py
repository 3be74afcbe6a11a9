"""The hashed n-gram encoder: shape, norms, determinism across processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from federation.errors import ConfigError
from federation.models.encoder import MessageEncoder
from federation.models.ngram import HashedNgramEncoder

TEXTS = [
    "how old are you?", "How old are you?", "i got you a present", "let's talk on another app", "",
]


def test_shape_norm_and_empty_text() -> None:
    encoder = HashedNgramEncoder(dim=256)
    assert isinstance(encoder, MessageEncoder)
    assert encoder.id == "hashed-ngrams-v1:dim=256" and encoder.dim == 256
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (5, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, atol=1e-5)
    assert not vectors[4].any()
    assert encoder.encode([]).shape == (0, 256)
    assert encoder.stats.texts_asked == 5


def test_lowercased_and_similar_texts_are_closer() -> None:
    vectors = HashedNgramEncoder().encode(TEXTS + ["how old r u"])
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert float(vectors[0] @ vectors[5]) > float(vectors[0] @ vectors[2])


def test_signed_hashing_gives_negative_entries() -> None:
    vector = HashedNgramEncoder(dim=64).encode(["a longer line with many different words"])
    assert (vector < 0).any()


def test_deterministic_across_processes() -> None:
    here = hashlib.sha256(HashedNgramEncoder(dim=128).encode(TEXTS).tobytes()).hexdigest()
    script = (
        "import hashlib, json, sys\n"
        "from federation.models.ngram import HashedNgramEncoder\n"
        "v = HashedNgramEncoder(dim=128).encode(json.loads(sys.argv[1]))\n"
        "print(hashlib.sha256(v.tobytes()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert out.stdout.strip() == here


@pytest.mark.parametrize("dim", [0, -3, True, 2.5])
def test_bad_dim(dim: object) -> None:
    with pytest.raises(ConfigError, match="ngram_dim"):
        HashedNgramEncoder(dim=dim)  # type: ignore[arg-type]
