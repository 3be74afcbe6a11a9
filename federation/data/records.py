"""Conversations to the canonical JSON Lines records, and files of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from federation.data.types import Conversation, Message
from federation.io import atomic_write_text


def message_to_record(message: Message) -> dict[str, Any]:
    record: dict[str, Any] = {"author": message.author, "text": message.text}
    if message.time is not None:
        record["time"] = message.time
    if message.indicators:
        record["indicators"] = list(message.indicators)
    return record


def conversation_to_record(conversation: Conversation) -> dict[str, Any]:
    """The canonical record: required keys first, unknown keys of the source kept."""
    record: dict[str, Any] = {
        "id": conversation.id,
        "label": conversation.label,
        "messages": [message_to_record(m) for m in conversation.messages],
    }
    if conversation.groomer is not None:
        record["groomer"] = conversation.groomer
    for key, value in conversation.extra.items():
        record.setdefault(key, value)
    return record


def write_jsonl(path: Path, conversations: Iterable[Conversation]) -> int:
    """Write one conversation per line, atomically; returns the number written."""
    lines = [json.dumps(conversation_to_record(c), ensure_ascii=False, allow_nan=False) for c in conversations]
    atomic_write_text(Path(path), "".join(line + "\n" for line in lines))
    return len(lines)
