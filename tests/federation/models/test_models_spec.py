"""ModelSpec validation and the encoder/head factories."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from federation.errors import ConfigError
from federation.models.cache import EmbeddingCache
from federation.models.encoder import MiniLMEncoder
from federation.models.heads import AttentionWindowHead, NgramHead, MessageScoreHead
from federation.models.ngram import HashedNgramEncoder
from federation.models.spec import ModelSpec, build_encoder, build_head
from federation.models.weights import head_arrays

MINILM = ModelSpec(name="minilm", hidden=16, window=3, dropout=0.1)
NGRAM = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0, ngram_dim=64)


@pytest.mark.parametrize(("field", "value"), [
    ("name", "bert"), ("hidden", -1), ("hidden", 1.5), ("window", 0), ("dropout", 1.0),
    ("dropout", "0.1"), ("max_messages", 0), ("score_window", -1), ("ngram_dim", 0),
    ("window", True),
])
def test_bad_fields_are_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(MINILM, **{field: value})
    assert f"model.{field}" in str(caught.value) and repr(value) in str(caught.value)


def test_defaults_and_frozen() -> None:
    assert (MINILM.max_messages, MINILM.score_window, MINILM.ngram_dim) == (150, 50, 1024)
    assert NGRAM.hidden == 0  # a linear n-gram head is allowed
    with pytest.raises(dataclasses.FrozenInstanceError):
        MINILM.hidden = 3  # type: ignore[misc]


def test_build_encoder(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    minilm = build_encoder(MINILM, cache=cache)
    assert isinstance(minilm, MiniLMEncoder) and minilm.cache is cache
    ngram = build_encoder(NGRAM, cache=cache)
    assert isinstance(ngram, HashedNgramEncoder) and ngram.dim == 64


def test_build_head_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_head(MINILM, dim_in=384, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    b = build_head(MINILM, dim_in=384, seed=7)
    c = build_head(MINILM, dim_in=384, seed=8)
    assert isinstance(a, AttentionWindowHead) and (a.hidden, a.window, a.dropout) == (16, 3, 0.1)
    for x, y in zip(head_arrays(a), head_arrays(b), strict=True):
        assert (x == y).all()
    assert any((x != z).any() for x, z in zip(head_arrays(a), head_arrays(c), strict=True))
    n = build_head(NGRAM, dim_in=64, seed=0)
    assert isinstance(n, NgramHead) and n.mlp_hidden is None
    linear = build_head(ModelSpec(name="minilm", hidden=0, window=3, dropout=0.0), dim_in=8, seed=0)
    assert isinstance(linear, MessageScoreHead)
    assert sum(p.numel() for p in linear.parameters()) == 8 + 1 + 3  # scorer weights, bias, speaker offsets
    with pytest.raises(ConfigError, match="seed"):
        build_head(NGRAM, dim_in=64, seed="0")  # type: ignore[arg-type]
