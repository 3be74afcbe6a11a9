"""The in-memory form of a chat conversation, shared by every reader and model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One chat line. ``indicators`` holds risk-indicator codes (see ``indicators.py``)."""

    author: str
    text: str
    time: str | None = None
    indicators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation with its label (1 = grooming) and, when known, the groomer's author id.

    ``extra`` keeps unknown keys of the source record so that rewriting a file loses nothing.
    """

    id: str
    label: int
    messages: tuple[Message, ...]
    groomer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def authors(self) -> tuple[str, ...]:
        """Authors in order of first appearance."""
        seen: dict[str, None] = {}
        for message in self.messages:
            seen.setdefault(message.author, None)
        return tuple(seen)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(message.text for message in self.messages)
