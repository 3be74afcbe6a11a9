"""Sliding-window scoring: a risk score after every message.

Early detection (eSPD) reads a conversation as it grows: after each message t the head
scores the last ``window`` messages ``(t - window, t]``. The conversation-level score is
the highest of those scores, the one F0.5 and AUPRC are computed on.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from federation.checks import is_integer
from federation.errors import ConfigError
from federation.models.features import FeatureSet

logger = logging.getLogger(__name__)


def _check_positive(name: str, value: object) -> int:
    if not is_integer(value) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _device_of(head: nn.Module) -> torch.device:
    for parameter in head.parameters():
        return parameter.device
    return torch.device("cpu")


def _sliding_head(head: nn.Module) -> nn.Module | None:
    """The head itself (unwrapped from Opacus) if it scores all windows at once, else None."""
    inner = getattr(head, "_module", head) if type(head).__name__ == "GradSampleModule" else head
    return inner if callable(getattr(inner, "sliding_logits", None)) else None


def _sliding_scores(
    head: nn.Module, features: FeatureSet, offsets: np.ndarray, window: int, conversations_per_pass: int, device: torch.device
) -> np.ndarray:
    """Flat window scores through ``head.sliding_logits``: whole conversations, by length."""
    lengths = features.lengths
    scores = np.empty(int(offsets[-1]), dtype=np.float32)
    order = np.argsort(lengths, kind="stable")
    for first in range(0, len(order), conversations_per_pass):
        chunk = order[first : first + conversations_per_pass]
        batch = features.batch(chunk).to(device)
        logits = torch.sigmoid(head.sliding_logits(batch.x, batch.mask, batch.speaker, window))
        logits = logits.float().cpu().numpy()
        for row, index in enumerate(chunk):
            scores[offsets[index] : offsets[index + 1]] = logits[row, : lengths[index]]
    return scores


def _windowed_scores(
    head: nn.Module, features: FeatureSet, offsets: np.ndarray, window: int, batch_size: int, device: torch.device
) -> np.ndarray:
    """Flat window scores, one padded window per message (any head)."""
    lengths = features.lengths
    total = int(offsets[-1])
    conversation = np.repeat(np.arange(len(features), dtype=np.int64), lengths)
    ends = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], lengths) + 1
    order = np.argsort(np.minimum(ends, window), kind="stable")
    scores = np.empty(total, dtype=np.float32)
    for first in range(0, total, batch_size):
        chunk = order[first : first + batch_size]
        batch = features.batch(conversation[chunk], window=window, ends=ends[chunk]).to(device)
        scores[chunk] = torch.sigmoid(head(batch.x, batch.mask, batch.speaker)).float().cpu().numpy()
    return scores


def window_scores(
    head: nn.Module,
    features: FeatureSet,
    *,
    window: int = 50,
    batch_size: int = 256,
    conversations_per_pass: int = 32,
    sliding: bool = True,
) -> list[np.ndarray]:
    """Score every conversation after each of its messages.

    Parameters
    ----------
    head
        A head (or an Opacus-wrapped head) mapping ``(x, mask, speaker)`` to logits.
    features
        The conversations to score.
    window
        Messages per scored window (the last ``window`` read so far).
    batch_size
        Windows per forward pass (heads without ``sliding_logits``).
    conversations_per_pass
        Whole conversations per forward pass (heads with ``sliding_logits``).
    sliding
        Use the head's ``sliding_logits`` (every window of a conversation in one pass)
        when it has one; False scores one padded window per message, the reference.

    Returns
    -------
    list of numpy.ndarray
        Per conversation, float32 sigmoid scores ``[length]``: entry ``t - 1`` scores the
        window ending at message ``t``.

    Notes
    -----
    Heads with ``sliding_logits`` (the compact MiniLM head, the n-gram head) score whole
    conversations, every window in one pass; other heads get all windows of all
    conversations laid out at once, scored in batches sorted by window length to cut
    padding. Both give the same scores. The head runs in eval mode under
    ``torch.inference_mode``; its training mode is restored afterwards.
    """
    window = _check_positive("score_window", window)
    batch_size = _check_positive("batch_size", batch_size)
    conversations_per_pass = _check_positive("conversations_per_pass", conversations_per_pass)
    offsets = np.concatenate([[0], np.cumsum(features.lengths)]).astype(np.int64)  # conversation i: [o[i], o[i+1])
    device = _device_of(head)
    fast = _sliding_head(head) if sliding else None
    was_training = head.training
    head.eval()
    try:
        with torch.inference_mode():
            if fast is not None:
                scores = _sliding_scores(fast, features, offsets, window, conversations_per_pass, device)
            else:
                scores = _windowed_scores(head, features, offsets, window, batch_size, device)
    finally:
        head.train(was_training)
    logger.debug("scored %d windows of %d conversations", scores.size, len(features))
    return np.split(scores, offsets[1:-1]) if len(features) else []


def highest_scores(per_message: list[np.ndarray]) -> np.ndarray:
    """The conversation-level score from window scores: float32 ``[N]``, 0.0 for no message."""
    return np.array([float(s.max()) if s.size else 0.0 for s in per_message], dtype=np.float32)


def conversation_scores(
    head: nn.Module,
    features: FeatureSet,
    *,
    window: int = 50,
    batch_size: int = 256,
) -> np.ndarray:
    """The conversation-level score: the highest window score of each conversation.

    Returns
    -------
    numpy.ndarray
        float32 ``[N]``; 0.0 for a conversation with no message.
    """
    return highest_scores(window_scores(head, features, window=window, batch_size=batch_size))
