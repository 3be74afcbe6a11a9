"""Real chit-chat as the background every synthetic conversation is woven into.

A synthetic conversation of either class is a real conversation from the chitchat corpus
(:func:`federation.data.chitchat.background_pool`) with scripted exchanges (grooming
stages, or a hard-negative scenario) inserted into it. The background starts the
conversation and fills it out, in its real order and its writers' own typing, and is drawn
the same way whatever the label: so the classes share their language and style, and only
the scripted content can tell them apart.
"""

from __future__ import annotations

import random
from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import Any

from federation.data.chitchat import chitchat_key
from federation.data.synthetic.dialogue import Turn, clock
from federation.data.types import Conversation

__all__ = ["Background", "with_background"]


class Background:
    """Consecutive real turns from randomly chosen pool conversations, mapped onto two roles.

    When one conversation runs out the next one continues; :attr:`keys` lists the corpus
    keys used, in order (kept in the record's provenance).
    """

    def __init__(self, pool: Sequence[Conversation], *, roles: tuple[str, str], rng: random.Random) -> None:
        if not pool:
            raise ValueError("the background pool is empty")
        self._pool = pool
        self._roles = roles
        self._rng = rng
        self._queue: list[Turn] = []
        self.keys: list[str] = []

    def _refill(self) -> None:
        conversation = self._rng.choice(self._pool)
        self.keys.append(chitchat_key(conversation))
        first, second = conversation.authors[:2]
        roles = self._roles if self._rng.random() < 0.5 else self._roles[::-1]
        role_of = {first: roles[0], second: roles[1]}
        self._queue.extend(
            Turn(role=role_of[m.author], text=m.text, real=True) for m in conversation.messages if m.author in role_of
        )

    def take(self, count: int) -> list[Turn]:
        """The next ``count`` real turns."""
        while len(self._queue) < count:
            self._refill()
        taken, self._queue = self._queue[:count], self._queue[count:]
        return taken


def with_background(extra: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, Any]:
    """A record's ``extra`` with the background keys added to its ``synthetic`` provenance."""
    out = dict(extra or {})
    out["synthetic"] = {**out.get("synthetic", {}), "background": list(keys)}
    return out


def real_chat(
    conversation_id: str,
    *,
    pool: Sequence[Conversation],
    length: int,
    rng: random.Random,
    extra: Mapping[str, Any] | None = None,
) -> Conversation:
    """A real benign chat as it is: the first ``length`` messages (at most) of a pool conversation.

    Its times are drawn like every synthetic conversation's (:func:`.dialogue.clock`), so
    that timing cannot tell real chats from woven ones.
    """
    source = rng.choice(pool)
    messages = source.messages[: max(length, 1)]
    times = clock(len(messages), rng=rng)
    return Conversation(
        id=conversation_id,
        label=0,
        messages=tuple(replace(m, time=t) for m, t in zip(messages, times)),
        extra={"synthetic": {**(extra or {}), "scenario": "real_chat", "background": [chitchat_key(source)]}},
    )
