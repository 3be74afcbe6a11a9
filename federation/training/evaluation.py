"""The one evaluation of a head on a node's conversations, scored as in deployment."""

from __future__ import annotations

import numpy as np
from torch import nn

from federation.models.features import FeatureSet
from federation.models.windows import highest_scores, window_scores
from federation.training.settings import EvalResult
from federation.training.steps import unwrapped

__all__ = ["evaluate"]


def evaluate(*, head: nn.Module, data: FeatureSet, window: int) -> EvalResult:
    """Score each conversation as it would be in deployment and compute the loss.

    Parameters
    ----------
    head
        The model; its training mode is restored afterwards, its weights untouched.
    data
        Conversations to evaluate.
    window
        Messages per scored window.

    Returns
    -------
    EvalResult
        Conversation scores (the highest window score, as deployed) and the binary
        cross-entropy of those scores against the labels.
    """
    labels = np.asarray(data.labels, dtype=np.int64)
    if len(data) == 0:
        return EvalResult(loss=0.0, scores=np.zeros(0, dtype=np.float32), labels=labels, num_examples=0)
    head = unwrapped(head)
    per_message = window_scores(head, data, window=window)
    scores = highest_scores(per_message)
    clipped = np.clip(scores.astype(np.float64), 1e-7, 1.0 - 1e-7)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped)))
    return EvalResult(loss=loss, scores=scores, labels=labels, num_examples=len(data), per_message=per_message)
