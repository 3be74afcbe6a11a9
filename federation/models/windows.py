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

from federation.errors import ConfigError
from federation.models.features import FeatureSet

logger = logging.getLogger(__name__)


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _device_of(head: nn.Module) -> torch.device:
    for parameter in head.parameters():
        return parameter.device
    return torch.device("cpu")


def window_scores(
    head: nn.Module,
    features: FeatureSet,
    *,
    window: int = 50,
    batch_size: int = 256,
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
        Windows per forward pass.

    Returns
    -------
    list of numpy.ndarray
        Per conversation, float32 sigmoid scores ``[length]``: entry ``t - 1`` scores the
        window ending at message ``t``.

    Notes
    -----
    All windows of all conversations are laid out at once and scored in batches, sorted
    by window length to cut padding. The head runs in eval mode under
    ``torch.inference_mode``; its training mode is restored afterwards.
    """
    window = _check_positive("score_window", window)
    batch_size = _check_positive("batch_size", batch_size)
    lengths = features.lengths
    total = int(lengths.sum())
    conversation = np.repeat(np.arange(len(features), dtype=np.int64), lengths)
    offsets = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    ends = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths) + 1
    order = np.argsort(np.minimum(ends, window), kind="stable")
    scores = np.empty(total, dtype=np.float32)
    device = _device_of(head)
    was_training = head.training
    head.eval()
    try:
        with torch.inference_mode():
            for first in range(0, total, batch_size):
                chunk = order[first : first + batch_size]
                batch = features.batch(conversation[chunk], window=window, ends=ends[chunk])
                batch = batch.to(device)
                logits = head(batch.x, batch.mask, batch.speaker)
                scores[chunk] = torch.sigmoid(logits).float().cpu().numpy()
    finally:
        head.train(was_training)
    logger.debug("scored %d windows of %d conversations", total, len(features))
    return np.split(scores, np.cumsum(lengths)[:-1]) if len(lengths) else []


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
    per_message = window_scores(head, features, window=window, batch_size=batch_size)
    return np.array(
        [float(s.max()) if s.size else 0.0 for s in per_message], dtype=np.float32
    )
