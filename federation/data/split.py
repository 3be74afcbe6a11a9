"""Deterministic train/validation split by conversation id.

Hashing the id (not the position) keeps a conversation on the same side of the split in
every run and process, so a threshold is never chosen on conversations a model trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from federation.data.types import Conversation


def _unit_interval(seed: int, conversation_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_validation(
    conversations: Sequence[Conversation], *, fraction: float, seed: int
) -> tuple[list[Conversation], list[Conversation]]:
    """Split into (train, validation); about ``fraction`` of the conversations go to validation."""
    train: list[Conversation] = []
    validation: list[Conversation] = []
    for conversation in conversations:
        (validation if _unit_interval(seed, conversation.id) < fraction else train).append(conversation)
    return train, validation


def split_device(
    conversations: Sequence[Conversation], *, fraction: float, seed: int
) -> tuple[list[Conversation], list[Conversation]]:
    """:func:`split_validation`, except that a node too small to keep any training conversation trains on all.

    For the virtual devices of a cross-device simulation (a chat or two each), whose data
    never changes during a run: without it a sampled device with an empty training split
    fails its round, and under central DP one missing update stops a round. Real nodes use
    :func:`split_validation` and refuse instead, since a file that grows later would move
    conversations a model trained on back into validation.
    """
    train, validation = split_validation(conversations, fraction=fraction, seed=seed)
    return (validation, []) if not train else (train, validation)
