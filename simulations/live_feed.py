"""A live feed simulated from conversations: ``cesagram score --follow``'s input, as a chat service would send it.

The messages of all conversations are mixed at random, each conversation's own order kept
(:func:`interleaved`), written one JSON object a line (:func:`feed_bytes`, the format of
:mod:`federation.scoring.follow`), and read back one line per read by :class:`Trickle`, like
a producer that writes a message at a time. The ``--follow`` tests and the scoring speed
benchmark (:mod:`simulations.benchmarks.score_speed`) build their feeds here.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence

from federation.data.types import Conversation

__all__ = ["Trickle", "feed_bytes", "interleaved"]


def interleaved(conversations: Sequence[Conversation], *, seed: int) -> list[dict[str, str]]:
    """Messages of all conversations mixed at random, each conversation's order kept."""
    rng = random.Random(seed)
    queues = [[{"conversation": c.id, "author": m.author, "text": m.text} for m in c.messages] for c in conversations]
    out = []
    while queues:
        queue = rng.choice(queues)
        out.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return out


def feed_bytes(records: Sequence[dict[str, str]]) -> bytes:
    """The records as ``--follow`` reads them: one JSON object a line, UTF-8."""
    return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")


class Trickle(io.RawIOBase):
    """An input that hands over one line per read, like a live producer."""

    def __init__(self, data: bytes) -> None:
        self.lines = data.splitlines(keepends=True)

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        return self.lines.pop(0) if self.lines else b""
