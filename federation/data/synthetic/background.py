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
from collections.abc import Mapping, Sequence
from typing import Any

from federation.data.chitchat import chitchat_key
from federation.data.synthetic.dialogue import Speaker, Turn, to_messages
from federation.data.types import Conversation

__all__ = ["EXCERPT", "Background", "real_chat", "with_background"]

#: Messages used at most from the start of one source conversation. The corpus has
#: conversations of thousands of messages; using only their openings bounds the distinct
#: texts the encoder must embed (about 53,000 for the nodes' and test parts together).
EXCERPT = 30


class Background:
    """Consecutive real turns from randomly chosen pool conversations, mapped onto two roles.

    The first conversation is taken from its start (its greeting opens the chat); when it
    runs out, the next one continues from a random point of its excerpt, so that a long
    chat is not a string of greetings. :attr:`keys` lists the corpus keys used, in order
    (kept in the record's provenance).
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
        excerpt = conversation.messages[:EXCERPT]
        start = self._rng.randrange(len(excerpt) - 1) if len(self.keys) > 1 else 0
        self._queue.extend(
            Turn(role=role_of[m.author], text=m.text, real=True) for m in excerpt[start:] if m.author in role_of
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
    speakers: Mapping[str, Speaker],
    extra: Mapping[str, Any] | None = None,
) -> Conversation:
    """A real benign chat with no scripted content: ``length`` background turns, nothing woven in.

    Built by the same :class:`Background` (and timed by the same clock) as every other
    conversation, so neither its length nor its timing tells it apart from a woven one.
    """
    background = Background(pool, roles=("A", "B"), rng=rng)
    turns = background.take(length)
    return Conversation(
        id=conversation_id,
        label=0,
        messages=to_messages(turns, speakers=speakers, rng=rng),
        extra=with_background({"synthetic": {**(extra or {}), "scenario": "real_chat"}}, background.keys),
    )
