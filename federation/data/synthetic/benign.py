"""Synthetic benign conversations, most of them hard negatives.

Hard negatives share surface features with grooming: adults dating (compliments, photos,
other apps, meeting up), teen peers (ages, schools, secrets, parents being out), parents
with children (surprise-party secrets, credit for chores, pick-ups), coaches and tutors
(praise for maturity, forms and schedules), gaming trades (credit, other apps), marketplace
pick-ups (photos, meeting places), parents warning a child about grooming signs, and a
child reporting a stranger to a friend, a helpline counsellor or a platform's safety team;
the last three name nearly every indicator, often quoting a groomer's very words. None of
their lines carries an indicator code, even when it mentions a gift or a secret: that is
what makes them hard.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation.data.synthetic.background import Background, with_background
from federation.data.synthetic.bank import Banks
from federation.data.synthetic.dialogue import Deck, Slots, Speaker, Turn, assemble, new_author, realise, to_messages, weave
from federation.data.types import Conversation

__all__ = ["SCENARIOS", "Scenario", "benign_conversation"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A benign scenario: its two sides' personas and what fills it out.

    ``contexts`` name the ``context:*`` banks whose neutral exchanges it shares with
    grooming conversations; ``filler`` is the bank that pads it to length (small talk, or
    for a helpline or a safety team, more of their own kind of talk); ``opens_itself``
    scenarios start with their own first exchange (a greeting, a report) instead of a
    generic opening.
    """

    personas: tuple[str, str]
    contexts: tuple[str, ...] = ()
    filler: str = "smalltalk"
    opens_itself: bool = False


SCENARIOS: dict[str, Scenario] = {
    "adult_dating": Scenario(("adult", "adult")),
    "coach_tutor": Scenario(("adult", "teen"), ("sport", "school")),
    "counsellor": Scenario(("adult", "teen"), filler="support", opens_itself=True),
    "friends": Scenario(("teen", "teen"), ("rapport", "online", "gaming")),
    "gaming_trade": Scenario(("gamer", "gamer"), ("gaming",)),
    "marketplace": Scenario(("adult", "adult")),
    "moderator": Scenario(("adult", "gamer"), filler="support", opens_itself=True),
    "parent_child": Scenario(("parent", "teen")),
    "parent_warning": Scenario(("parent", "teen")),
    "peer_report": Scenario(("teen", "teen"), ("online", "gaming"), opens_itself=True),
    "teen_peers": Scenario(("teen", "teen"), ("rapport", "online", "gaming")),
}


def benign_conversation(
    *,
    conversation_id: str,
    scenario: str,
    length: int,
    rng: random.Random,
    weights: Callable[[str], tuple[float, ...]],
    background: Sequence[Conversation],
    banks: Banks,
    extra: Mapping[str, Any] | None = None,
) -> Conversation:
    """One benign conversation of exactly ``length`` messages in ``scenario``.

    Parameters
    ----------
    conversation_id
        Id written to the record.
    scenario
        One of :data:`SCENARIOS`.
    length
        Number of messages.
    rng
        Source of randomness.
    weights
        Surface-variant weights for a persona name (lets the node kind shift the style).
    background
        Real conversations that small-talk scenarios are woven into, exactly as grooming
        conversations are (see :mod:`.background`); a helpline's or a safety team's chat
        is padded with more of its own kind of talk instead.
    banks
        The phrase banks to write the scripted lines from (one half, see :func:`.bank.bank_half`).
    extra
        Extra record keys.

    Returns
    -------
    Conversation
        ``label`` 0, no groomer, no indicator codes.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; use one of {sorted(SCENARIOS)}")
    slots = Slots(rng)
    spec = SCENARIOS[scenario]
    speakers = {
        "A": Speaker(author=new_author(rng), weights=weights(spec.personas[0])),
        "B": Speaker(author=new_author(rng), weights=weights(spec.personas[1])),
    }
    bank = banks[f"benign:{scenario}"]
    wanted = min(len(bank), max(1, rng.randint(length // 14, length // 6)))
    if spec.opens_itself:
        chosen = [0, *rng.sample(range(1, len(bank)), wanted - 1)]
    else:
        chosen = rng.sample(range(len(bank)), wanted)
    # Bank order is story order (a report starts with what happened and ends with what was done).
    exchanges = [bank[i] for i in sorted(chosen)]
    if spec.contexts:
        context = banks[f"context:{rng.choice(spec.contexts)}"]
        for exchange in rng.sample(context, min(len(context), rng.randint(0, 2))):
            exchanges.insert(rng.randint(int(spec.opens_itself), len(exchanges)), exchange)
    core = [realise(exchange, rng=rng, slots=slots) for exchange in exchanges]
    keys: list[str] = []
    if spec.filler == "smalltalk":
        real = Background(background, roles=("A", "B"), rng=rng)
        turns = weave(core, background=real.take, length=length, rng=rng, lead=0 if spec.opens_itself else 2)
        keys = real.keys
    else:
        turns = _support_chat(core, filler=spec.filler, length=length, rng=rng, slots=slots, banks=banks)
    return Conversation(
        id=conversation_id,
        label=0,
        messages=to_messages(turns, speakers=speakers, rng=rng),
        extra=with_background(extra, keys),
    )


def _support_chat(
    core: list[list[Turn]], *, filler: str, length: int, rng: random.Random, slots: Slots, banks: Banks
) -> list[Turn]:
    """A counsellor's or a safety team's chat: their own scripted talk between the core exchanges."""
    padding = Deck(banks[filler], rng)
    return assemble(core, filler=lambda: realise(padding.draw(), rng=rng, slots=slots), length=length, rng=rng)
