"""False alarms on real language: the model scored on the reserved chitchat conversations.

The reserved quarter of the chitchat corpus (:func:`federation.data.chitchat.real_negative_set`)
is real benign chat that no training, pretraining, calibration or threshold choice reads.
Every label is 0, so whatever the model warns on or flags there is a false alarm.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from federation.assessment import EarlyRule, assess
from federation.data.chitchat import real_negative_set
from federation.errors import DataError
from federation.models.encoder import MessageEncoder
from federation.models.features import build_features

logger = logging.getLogger(__name__)

SOURCE = "chitchat-dataset, reserved quarter (SHA-256 of the key starts with 0-3), two authors and six messages or more"


def measure_real_negatives(
    head: nn.Module, encoder: MessageEncoder, *, threshold: float, rule: EarlyRule, max_messages: int
) -> dict[str, Any]:
    """Conversations, warned and flagged (with rates) on the reserved real chats.

    Scored exactly as on any other file: the conversation's first ``max_messages``
    messages, the bundle's threshold and early-warning rule. Without the chitchat package
    the result says so instead of failing the run.
    """
    try:
        conversations = real_negative_set()
    except DataError as error:
        logger.warning("real-negative check skipped: %s", error)
        return {"measured": False, "why": str(error)}
    features = build_features(conversations, encoder, max_messages=max_messages)
    result = assess(head, features, threshold=threshold, rule=rule)
    count = len(result.scores)
    warned = sum(alert is not None for alert in result.alerts)
    flagged = int((result.scores >= threshold).sum())
    return {
        "measured": True,
        "source": SOURCE,
        "conversations": count,
        "warned": warned,
        "flagged": flagged,
        "warned_rate": warned / count if count else 0.0,
        "flagged_rate": flagged / count if count else 0.0,
    }
