"""Synthetic benign conversations, most of them hard negatives.

Hard negatives share surface features with grooming: adults dating (compliments, photos,
other apps, meeting up), teen peers (ages, schools, secrets, parents being out), parents
with children (surprise-party secrets, credit for chores, pick-ups), coaches and tutors
(praise for maturity, forms and schedules), gaming trades (credit, other apps), marketplace
pick-ups (photos, meeting places), parents warning a child about grooming signs, and a
child reporting a stranger to a friend, a helpline counsellor or a platform's safety team;
the last three name nearly every indicator, often quoting a groomer's very words. None of their lines carries an indicator code, even when it
mentions a gift or a secret: that is what makes them hard.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from federation.data.synthetic.bank import load_banks
from federation.data.synthetic.dialogue import Deck, Slots, Speaker, Turn, assemble, new_author, realise, to_messages
from federation.data.types import Conversation

__all__ = ["SCENARIOS", "benign_conversation"]

#: Benign scenarios: the personas of their two sides (``A``, ``B``) and the context banks
#: (``context:*``) whose neutral exchanges they share with grooming conversations.
SCENARIOS: dict[str, tuple[tuple[str, str], tuple[str, ...]]] = {
    "adult_dating": (("adult", "adult"), ()),
    "coach_tutor": (("adult", "teen"), ("sport", "school")),
    "counsellor": (("adult", "teen"), ()),
    "friends": (("teen", "teen"), ("rapport", "online", "gaming")),
    "gaming_trade": (("gamer", "gamer"), ("gaming",)),
    "marketplace": (("adult", "adult"), ()),
    "moderator": (("adult", "gamer"), ()),
    "parent_child": (("parent", "teen"), ()),
    "parent_warning": (("parent", "teen"), ()),
    "peer_report": (("teen", "teen"), ("online", "gaming")),
    "teen_peers": (("teen", "teen"), ("rapport", "online", "gaming")),
}


#: Scenarios whose first exchange is their own opening (a helpline greeting, a report).
_OPENS_ITSELF = frozenset({"counsellor", "moderator", "peer_report"})


def benign_conversation(
    *,
    conversation_id: str,
    scenario: str,
    length: int,
    rng: random.Random,
    weights: Callable[[str], tuple[float, ...]],
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
    extra
        Extra record keys.

    Returns
    -------
    Conversation
        ``label`` 0, no groomer, no indicator codes.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; use one of {sorted(SCENARIOS)}")
    banks = load_banks()
    slots = Slots(rng)
    (persona_a, persona_b), contexts = SCENARIOS[scenario]
    speakers = {
        "A": Speaker(author=new_author(rng), weights=weights(persona_a)),
        "B": Speaker(author=new_author(rng), weights=weights(persona_b)),
    }

    smalltalk = Deck(banks["smalltalk"], rng)

    def filler() -> list[Turn]:
        roles = {"A": "A", "B": "B"} if rng.random() < 0.5 else {"A": "B", "B": "A"}
        return realise(smalltalk.draw(), rng=rng, slots=slots, roles=roles)

    bank = banks[f"benign:{scenario}"]
    wanted = min(len(bank), max(1, rng.randint(length // 14, length // 6)))
    opens_itself = scenario in _OPENS_ITSELF
    if opens_itself:
        chosen = [0, *rng.sample(range(1, len(bank)), wanted - 1)]
    else:
        chosen = rng.sample(range(len(bank)), wanted)
    # Bank order is story order (a report starts with what happened and ends with what was done).
    exchanges = [bank[i] for i in sorted(chosen)]
    if contexts:
        context = banks[f"context:{rng.choice(contexts)}"]
        extra_count = min(len(context), rng.randint(0, 2))
        for exchange in rng.sample(context, extra_count):
            exchanges.insert(rng.randint(int(opens_itself), len(exchanges)), exchange)
    core = [realise(exchange, rng=rng, slots=slots) for exchange in exchanges]
    first, second = ("A", "B") if rng.random() < 0.7 else ("B", "A")
    opening = []
    if not opens_itself and rng.random() < 0.8:
        opening = realise(rng.choice(banks["open"]), rng=rng, slots=slots, roles={"A": first, "B": second})
    closing = realise(rng.choice(banks["close"]), rng=rng, slots=slots, roles={"A": second, "B": first}) if rng.random() < 0.6 else []
    turns = assemble(core, opening=opening, closing=closing, filler=filler, length=length, rng=rng)
    return Conversation(
        id=conversation_id,
        label=0,
        messages=to_messages(turns, speakers=speakers, rng=rng),
        extra=dict(extra or {}),
    )
