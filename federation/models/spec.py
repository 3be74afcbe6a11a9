"""What model to build: a validated spec and the factories that turn it into objects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError
from federation.models.cache import EmbeddingCache
from federation.models.encoder import MessageEncoder, MiniLMEncoder
from federation.models.heads import AttentionWindowHead, MessageScoreHead, NgramHead
from federation.models.ngram import HashedNgramEncoder

logger = logging.getLogger(__name__)

ModelName = Literal["minilm", "ngram"]
MODEL_NAMES: tuple[str, ...] = ("minilm", "ngram")


def _int_field(name: str, value: object, minimum: int) -> None:
    if not is_integer(value, numpy=False) or value < minimum:
        raise ConfigError(f"model.{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The model's shape, as the ``model`` config group states it.

    Attributes
    ----------
    name
        ``"minilm"`` (frozen MiniLM encoder + :class:`MessageScoreHead`, or
        :class:`AttentionWindowHead` when ``hidden > 0``) or ``"ngram"`` (hashed n-grams
        + :class:`NgramHead`).
    hidden
        Head width; 0 means the compact head (``minilm``) or a linear head (``ngram``).
    window
        Messages per convolution window of the attention head.
    dropout
        Dropout rate of the attention head, in [0, 1).
    max_messages
        Messages kept from the start of each conversation.
    score_window
        Messages per scored window when scoring after each message.
    ngram_dim
        Hash buckets of the n-gram encoder.

    The defaults are ``model=minilm``, the config's default (the Hydra schema takes them from here).
    """

    name: ModelName = "minilm"
    hidden: int = 0
    window: int = 3
    dropout: float = 0.0
    max_messages: int = 150
    score_window: int = 50
    ngram_dim: int = 1024

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(
                f"model.name must be one of {', '.join(MODEL_NAMES)}, got {self.name!r}"
            )
        _int_field("hidden", self.hidden, 0)
        _int_field("window", self.window, 1)
        if not is_finite_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be a number in [0, 1), got {self.dropout!r}")
        _int_field("max_messages", self.max_messages, 1)
        _int_field("score_window", self.score_window, 1)
        _int_field("ngram_dim", self.ngram_dim, 1)


def build_encoder(spec: ModelSpec, *, cache: EmbeddingCache | None) -> MessageEncoder:
    """The message encoder a spec names.

    Parameters
    ----------
    spec
        The model spec.
    cache
        Embedding cache for MiniLM; the n-gram encoder is fast enough to need none.
    """
    if spec.name == "minilm":
        return MiniLMEncoder(cache=cache)
    return HashedNgramEncoder(dim=spec.ngram_dim)


def build_head(spec: ModelSpec, *, dim_in: int, seed: int) -> nn.Module:
    """A freshly initialised head; the same ``seed`` gives the same weights.

    Notes
    -----
    Initialisation runs under a forked RNG seeded with ``seed``, so it neither depends
    on nor disturbs the global torch RNG (used, e.g., by Opacus's noise).
    """
    if not is_integer(seed, numpy=False):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.name == "minilm" and spec.hidden == 0:
            return MessageScoreHead(dim_in=dim_in)
        if spec.name == "minilm":
            return AttentionWindowHead(
                dim_in=dim_in, hidden=spec.hidden, window=spec.window, dropout=spec.dropout
            )
        return NgramHead(dim_in=dim_in, hidden=spec.hidden)
