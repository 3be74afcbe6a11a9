"""Trainable heads: a stretch of message embeddings in, one grooming logit out.

The encoder is frozen; the heads are what nodes train and the federation averages.
They are built only from layers Opacus computes per-sample gradients for (Linear,
Conv1d, LayerNorm, Embedding) plus parameter-free functions, with no BatchNorm (it
mixes samples) and no in-place operations, so DP-SGD applies as is.

Every head takes ``(x [B, L, d], mask [B, L], speaker [B, L])`` and returns logits
``[B]``. Padded positions are ignored exactly: a sequence scores the same alone as in a
padded batch. Every head also exposes ``message_weights`` (how much each message counted),
used to pick evidence lines for analysts.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError
from federation.models.features import NUM_SPEAKERS

logger = logging.getLogger(__name__)


def _positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if not is_integer(value, numpy=False) or value < minimum:
        raise ConfigError(f"model.{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _probability(name: str, value: object) -> float:
    if not is_finite_number(value) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model.{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _at_least_one_position(
    x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad an ``L = 0`` batch to one masked position so convolutions have something to see."""
    if x.shape[1] > 0:
        return x, mask, speaker
    batch = x.shape[0]
    return (
        x.new_zeros((batch, 1, x.shape[2])),
        mask.new_zeros((batch, 1)),
        speaker.new_zeros((batch, 1)),
    )


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over real positions only; all-padding rows get all-zero weights."""
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * mask.to(scores.dtype)


def _window_band(mask: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, T, L]`` True where message ``i`` is real and inside the window ending at ``t``.

    The window ending at message ``t`` (0-based) holds messages ``t - window + 1 .. t``.
    """
    length = mask.shape[1]
    position = torch.arange(length, device=mask.device)
    offset = position.unsqueeze(1) - position.unsqueeze(0)  # t - i
    band = (offset >= 0) & (offset < window)
    return band.unsqueeze(0) & mask.unsqueeze(1)


class AttentionWindowHead(nn.Module):
    """Speaker-aware convolution over consecutive messages, attention pooling, MLP.

    Each message embedding is projected to ``hidden`` and gets its speaker's embedding
    added; a causal ``Conv1d`` mixes each message with the ``window - 1`` before it (so
    the head sees exchanges, e.g. a question and its answer); a linear scorer with a
    masked softmax pools the messages, alongside a masked max over them (one telling
    message, such as a request to keep a secret, should count even in a long window); a
    small MLP gives one logit.

    Parameters
    ----------
    dim_in
        Message embedding length ``d``.
    hidden
        Width of the message representations.
    window
        Messages per convolution window.
    dropout
        Dropout rate in training mode.

    Notes
    -----
    The convolution is causal (left padding only), so a message's representation depends
    on it and earlier messages, never on later ones or on padding. Padded positions are
    zeroed before the convolution and get no attention weight.
    """

    def __init__(
        self, *, dim_in: int, hidden: int = 128, window: int = 3, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.dim_in = _positive_int("dim_in", dim_in)
        self.hidden = _positive_int("hidden", hidden)
        self.window = _positive_int("window", window)
        self.dropout = _probability("dropout", dropout)
        self.project = nn.Linear(self.dim_in, self.hidden)
        self.speaker = nn.Embedding(NUM_SPEAKERS, self.hidden)
        self.conv = nn.Conv1d(self.hidden, self.hidden, kernel_size=self.window)
        self.norm = nn.LayerNorm(self.hidden)
        self.scorer = nn.Linear(self.hidden, 1)
        self.mlp_hidden = nn.Linear(2 * self.hidden, self.hidden)
        self.mlp_out = nn.Linear(self.hidden, 1)
        self.drop = nn.Dropout(self.dropout)

    def _messages(
        self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-message representations ``[B, L, hidden]`` and attention weights ``[B, L]``."""
        keep = mask.unsqueeze(-1).to(x.dtype)
        h = (F.gelu(self.project(x)) + self.speaker(speaker)) * keep
        mixed = self.conv(F.pad(h.transpose(1, 2), (self.window - 1, 0))).transpose(1, 2)
        h = self.drop(self.norm(h + F.gelu(mixed))) * keep
        weights = _masked_softmax(self.scorer(h).squeeze(-1), mask)
        return h, weights

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``: the risk that each stretch of conversation is grooming."""
        x, mask, speaker = _at_least_one_position(x, mask, speaker)
        h, weights = self._messages(x, mask, speaker)
        attended = (weights.unsqueeze(-1) * h).sum(dim=1)
        # Padded positions of h are 0, so a max over them with padding at 0 stays finite
        # for all-padding rows; real rows take the max over real messages only.
        strongest = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
        strongest = torch.where(mask.any(dim=1, keepdim=True), strongest, torch.zeros_like(strongest))
        pooled = torch.cat([attended, strongest], dim=-1)
        return self.mlp_out(self.drop(F.gelu(self.mlp_hidden(pooled)))).squeeze(-1)

    def message_weights(
        self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor
    ) -> torch.Tensor:
        """Attention weight of each message, ``[B, L]``; 0 at padding, rows sum to 1."""
        length = x.shape[1]
        x, mask, speaker = _at_least_one_position(x, mask, speaker)
        return self._messages(x, mask, speaker)[1][:, :length]


class MessageScoreHead(nn.Module):
    """Each message scored on its own; a stretch's logit is the soft maximum of those scores.

    A message's logit is a linear function of its embedding plus its speaker's learned
    offset; the stretch's logit is the mean of its messages' logits weighted by their
    softmax, so the most telling messages dominate (a request to keep a secret counts even
    in a long window) while the rest still move it. About ``dim_in + 4`` weights: the head
    for DP-SGD on small nodes, where every extra weight adds noise to each step (the noise
    norm grows with the square root of the weight count while the clipped signal does
    not). On the synthetic federation it loses far less to DP-SGD than a head that pools
    embeddings before a linear layer (see the README's benchmark figures).

    Parameters
    ----------
    dim_in
        Message embedding length ``d``.

    Notes
    -----
    The attention weights are the softmax of the scores being pooled, so the weights that
    pick evidence lines for analysts are the ones the score is made of.
    """

    def __init__(self, *, dim_in: int) -> None:
        super().__init__()
        self.dim_in = _positive_int("dim_in", dim_in)
        self.scorer = nn.Linear(self.dim_in, 1)
        self.speaker = nn.Embedding(NUM_SPEAKERS, 1)

    def message_logits(self, x: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Each message's own logit, ``[B, L]`` (meaningless at padded positions)."""
        return (self.scorer(x) + self.speaker(speaker)).squeeze(-1)

    def message_weights(self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """How much each message counts, ``[B, L]``; 0 at padding, rows sum to 1."""
        return _masked_softmax(self.message_logits(x, speaker), mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``; 0 for a stretch with no message."""
        x, mask, speaker = _at_least_one_position(x, mask, speaker)
        scores = self.message_logits(x, speaker)
        return (_masked_softmax(scores, mask) * scores).sum(dim=-1)

    def sliding_logits(
        self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor, window: int
    ) -> torch.Tensor:
        """Logits ``[B, L]`` of the window ending at every message of whole conversations.

        Entry ``t`` equals ``forward`` on the last ``window`` messages up to ``t``, for all
        ``t`` at once (one banded softmax) instead of one padded window per message:
        scoring after every message is what evaluation and early warning do, so this is
        their hot path. Padded ``t`` give 0.
        """
        x, mask, speaker = _at_least_one_position(x, mask, speaker)
        scores = self.message_logits(x, speaker).unsqueeze(1)
        band = _window_band(mask, window)
        return (_masked_softmax(scores.expand_as(band), band) * scores).sum(dim=-1) * mask.to(x.dtype)


class NgramHead(nn.Module):
    """Masked mean of message features, then a linear layer (or a small MLP).

    Parameters
    ----------
    dim_in
        Message feature length ``d``.
    hidden
        0 for a logistic regression on the mean; otherwise the width of one hidden layer.

    Notes
    -----
    Speakers are ignored: this is the bag-of-n-grams baseline.
    """

    def __init__(self, *, dim_in: int, hidden: int = 0) -> None:
        super().__init__()
        self.dim_in = _positive_int("dim_in", dim_in)
        self.hidden = _positive_int("hidden", hidden, minimum=0)
        if self.hidden:
            self.mlp_hidden: nn.Linear | None = nn.Linear(self.dim_in, self.hidden)
            self.mlp_out = nn.Linear(self.hidden, 1)
        else:
            self.mlp_hidden = None
            self.mlp_out = nn.Linear(self.dim_in, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]``."""
        weights = self.message_weights(x, mask, speaker)
        return self._classify((weights.unsqueeze(-1) * x).sum(dim=1))

    def _classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``[...]`` of pooled features ``[..., d]`` (the linear layer or the MLP)."""
        if self.mlp_hidden is not None:
            pooled = F.relu(self.mlp_hidden(pooled))
        return self.mlp_out(pooled).squeeze(-1)

    def message_weights(
        self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor
    ) -> torch.Tensor:
        """Uniform weights over real messages, ``[B, L]``."""
        keep = mask.to(x.dtype)
        return keep / keep.sum(dim=1, keepdim=True).clamp(min=1.0)

    def sliding_logits(
        self, x: torch.Tensor, mask: torch.Tensor, speaker: torch.Tensor, window: int
    ) -> torch.Tensor:
        """Logits ``[B, L]`` of the window ending at every message (see ``MessageScoreHead``)."""
        band = _window_band(mask, window).to(x.dtype)
        pooled = (band / band.sum(dim=-1, keepdim=True).clamp(min=1.0)) @ x
        return self._classify(pooled) * mask.to(x.dtype)
