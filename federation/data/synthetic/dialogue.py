"""The dialogue engine: scripted exchanges in, a conversation of an exact length out.

Grooming and benign conversations are built the same way, so that nothing but their
content tells them apart: an opening, the *core* exchanges that make the conversation
what it is (grooming stages, or a scenario such as a marketplace pick-up), ordinary small
talk spread between them until the wanted length is reached, and a closing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from federation.data.synthetic.bank import Exchange
from federation.data.synthetic.phrases import SLOTS
from federation.data.synthetic.style import surface
from federation.data.types import Message

__all__ = ["Deck", "Slots", "Speaker", "Turn", "assemble", "clock", "new_author", "realise", "to_messages", "weave"]

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Turn:
    """A line once its phrasing is chosen: role, canonical text, indicator codes.

    ``real`` lines come from a real chat (the background) and keep their writer's own text.
    """

    role: str
    text: str
    codes: tuple[str, ...] = ()
    real: bool = False


@dataclass(frozen=True, slots=True)
class Speaker:
    """A participant: author id, the variant weights of their style, whether codes count."""

    author: str
    weights: tuple[float, ...]
    annotated: bool = False


class Slots:
    """Slot values bound once per conversation, so the same game or place recurs in it."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._bound: dict[str, str] = {}

    def _value(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in self._bound:
            self._bound[name] = self._rng.choice(SLOTS[name])
        return self._bound[name]

    def fill(self, template: str) -> str:
        return _SLOT.sub(self._value, template)


def new_author(rng: random.Random) -> str:
    """A fresh pseudonymous author id, e.g. ``u3f9a0c12``."""
    return f"u{rng.getrandbits(32):08x}"


class Deck:
    """Draws exchanges from a bank without repeats until every one has been used once."""

    def __init__(self, bank: Sequence[Exchange], rng: random.Random) -> None:
        self._bank = bank
        self._rng = rng
        self._left: list[int] = []

    def draw(self) -> Exchange:
        if not self._left:
            self._left = list(range(len(self._bank)))
            self._rng.shuffle(self._left)
        return self._bank[self._left.pop()]


def realise(
    exchange: Exchange, *, rng: random.Random, slots: Slots, roles: Mapping[str, str] | None = None
) -> list[Turn]:
    """Choose a phrasing for each line of ``exchange`` (optional lines kept half the time).

    Aligned lines take the alternative at the position chosen for the line before.

    ``roles`` renames the exchange's roles, e.g. small talk's ``A``/``B`` onto a groomer
    and a child.
    """
    turns: list[Turn] = []
    index = 0
    for line in exchange:
        # An aligned line follows its predecessor's choice, even when that line was skipped.
        index = index if line.aligned else rng.randrange(len(line.alternatives))
        if line.optional and rng.random() < 0.5:
            continue
        role = roles.get(line.role, line.role) if roles else line.role
        turns.append(Turn(role=role, text=slots.fill(line.alternatives[index]), codes=line.codes))
    return turns


def assemble(
    core: Sequence[list[Turn]],
    *,
    filler: Callable[[], list[Turn]],
    length: int,
    rng: random.Random,
) -> list[Turn]:
    """Lay out ``core`` blocks (in order) with filler between them (scripted chats with no real background).

    Parameters
    ----------
    core
        The blocks that define the conversation, kept in order. When they do not fit,
        blocks are first cut to their first two lines, then dropped at random, keeping at
        least one block that carries indicator codes if any did.
    filler
        Returns a fresh non-empty block of small talk on each call.
    length
        The exact number of turns wanted.
    rng
        Source of randomness.

    Returns
    -------
    list of Turn
        Exactly ``length`` turns.
    """
    blocks = _fit(core, room=length, rng=rng)
    gaps: list[list[Turn]] = [[] for _ in range(len(blocks) + 1)]
    budget = length - sum(len(block) for block in blocks)
    while budget > 0:
        block = filler()[:budget]
        gaps[rng.randrange(len(gaps))].extend(block)
        budget -= len(block)
    turns: list[Turn] = []
    for gap, block in zip(gaps, blocks):
        turns.extend(gap)
        turns.extend(block)
    turns.extend(gaps[-1])
    return turns[:length]


def _fit(core: Sequence[list[Turn]], *, room: int, rng: random.Random) -> list[list[Turn]]:
    """The core blocks, in order, cut down to fit ``room`` turns where they can.

    Blocks are first cut to their first two lines, then dropped at random, keeping at least
    one block that carries indicator codes if any did.
    """
    blocks = [list(block) for block in core if block]

    def used() -> int:
        return sum(len(block) for block in blocks)

    if used() > room:
        blocks = [block[:2] for block in blocks]
    while used() > room and len(blocks) > 1:
        coded = [i for i, block in enumerate(blocks) if any(turn.codes for turn in block)]
        droppable = [i for i in range(len(blocks)) if i not in coded or len(coded) > 1]
        del blocks[rng.choice(droppable)]
    return blocks


def weave(
    core: Sequence[list[Turn]],
    *,
    background: Callable[[int], list[Turn]],
    length: int,
    rng: random.Random,
    lead: int = 2,
) -> list[Turn]:
    """Insert ``core`` blocks (in order, fitted as by :func:`assemble`) into real background turns.

    ``background(n)`` returns the next ``n`` real turns; they keep their order and the
    first ``lead`` of them open the conversation (when there is room), as a real chat's
    greeting would.

    Returns
    -------
    list of Turn
        Exactly ``length`` turns.
    """
    blocks = _fit(core, room=length, rng=rng)
    budget = max(0, length - sum(len(block) for block in blocks))
    real = background(budget)
    start = min(lead, budget)
    cuts = sorted(rng.randint(start, budget) for _ in blocks)
    turns = list(real[:start])
    for block, begin, end in zip(blocks, [start, *cuts], cuts):
        turns.extend(real[begin:end])
        turns.extend(block)
    turns.extend(real[cuts[-1] if cuts else start :])
    return turns[:length]


def clock(count: int, *, rng: random.Random) -> list[str]:
    """``count`` strictly increasing ``HH:MM`` times within one day."""
    steps = [rng.choice((1, 1, 1, 2, 2, 3, 4, 6)) for _ in range(count)]
    span = sum(steps)
    if span >= 24 * 60:  # only for very long conversations: one message a minute
        steps, span = [1] * count, count
    minute = rng.randrange(0, max(1, 24 * 60 - span))
    times = []
    for step in steps:
        minute += step
        times.append(f"{minute // 60:02d}:{minute % 60:02d}")
    return times


def to_messages(turns: Sequence[Turn], *, speakers: Mapping[str, Speaker], rng: random.Random) -> tuple[Message, ...]:
    """Turn roles into authors, canonical texts into styled surface texts, and add times.

    Indicator codes are kept only for speakers marked ``annotated`` (the groomer): the
    same phrase from a peer or a parent carries none.
    """
    times = clock(len(turns), rng=rng)
    cumulative = {role: tuple(accumulate(speaker.weights)) for role, speaker in speakers.items()}
    messages = []
    for turn, time in zip(turns, times):
        speaker = speakers[turn.role]
        messages.append(
            Message(
                author=speaker.author,
                text=turn.text if turn.real else surface(turn.text, cum_weights=cumulative[turn.role], rng=rng),
                time=time,
                indicators=turn.codes if speaker.annotated else (),
            )
        )
    return tuple(messages)
