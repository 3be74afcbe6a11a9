"""Synthetic grooming conversations: documented stages, annotated groomer lines, varied tempo.

The stages follow the grooming literature used to annotate PAN-2012 and PANC: friendship
and relationship forming, personal questions, flattery, gifts, risk assessment, secrecy
and isolation, moving to another app, photo and meeting requests, offers to help the
child leave home (a place to stay, tickets, leaving without telling anyone: the link to
children going missing), pressure. Three tempos:
``slow`` grooming over 50 to 150 messages with much small talk, ``medium``, and ``fast``
sextortion-style escalation in 10 to 25 messages. Slow and medium conversations may stop
at an early stage, as chats handed to a helpline or seized by police often do, so that
not every positive shows every indicator.

The stages are woven into a real chit-chat conversation (:mod:`.background`), as the hard
negatives are, so the two classes share their language. Only the groomer's scripted lines
carry indicator codes; everything stays non-explicit.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from federation.data.synthetic.background import Background, with_background
from federation.data.synthetic.bank import Banks
from federation.data.synthetic.dialogue import Slots, Speaker, Turn, new_author, realise, to_messages, weave
from federation.data.types import Conversation

__all__ = ["CONTEXTS", "TEMPOS", "grooming_conversation", "plan_stages", "tempo_length"]

TEMPOS: tuple[str, ...] = ("fast", "medium", "slow")

#: (stage, probability of appearing) after the opening stages, in the usual order.
_LATER_STAGES: dict[str, tuple[tuple[str, float], ...]] = {
    "slow": (
        ("gift", 0.6),
        ("risk_check", 0.7),
        ("secrecy", 0.7),
        ("isolation", 0.5),
        ("app_move", 0.6),
        ("photo_request", 0.5),
        ("runaway_offer", 0.3),
        ("meeting_request", 0.5),
        ("pressure", 0.4),
    ),
    "medium": (
        ("gift", 0.4),
        ("risk_check", 0.5),
        ("secrecy", 0.6),
        ("isolation", 0.3),
        ("app_move", 0.6),
        ("photo_request", 0.6),
        ("runaway_offer", 0.25),
        ("meeting_request", 0.4),
        ("pressure", 0.4),
    ),
    "fast": (
        ("personal_question", 0.6),
        ("risk_check", 0.3),
        ("app_move", 0.7),
        ("secrecy", 0.3),
        ("photo_request", 1.0),
        ("photo_request", 0.5),
        ("pressure", 1.0),
        ("pressure", 0.5),
    ),
}


def tempo_length(tempo: str, *, rng: random.Random) -> int:
    """A conversation length typical of ``tempo`` (before the settings' clipping)."""
    if tempo == "fast":
        return rng.randint(10, 25)
    if tempo == "medium":
        return rng.randint(25, 60)
    if tempo == "slow":
        return 50 + round(100 * rng.betavariate(1.0, 1.4))
    raise ValueError(f"unknown tempo {tempo!r}; use one of {TEMPOS}")


def plan_stages(tempo: str, *, rng: random.Random) -> list[str]:
    """The ordered stages one conversation goes through.

    Slow and medium conversations build rapport first and may be cut at a random depth
    (an early-stage chat); fast ones go straight to flattery, an app move, photo requests
    and pressure. In slow and medium ones adjacent stages are sometimes swapped, as real
    chats do not follow the textbook order.
    """
    if tempo not in _LATER_STAGES:
        raise ValueError(f"unknown tempo {tempo!r}; use one of {TEMPOS}")
    if tempo == "fast":
        stages = ["rapport"] * (rng.random() < 0.3) + ["flattery"]
    else:
        rapport = rng.randint(1, 3) if tempo == "slow" else rng.randint(0, 1)
        stages = ["rapport"] * rapport + ["personal_question"] * rng.randint(1, 2) + ["flattery"] * rng.randint(1, 2)
    stages += [stage for stage, chance in _LATER_STAGES[tempo] if rng.random() < chance]
    if tempo != "fast":
        depth = rng.uniform(0.25, 1.0) if tempo == "slow" else rng.uniform(0.4, 1.0)
        stages = stages[: max(2, round(depth * len(stages)))]
        for i in range(1, len(stages)):
            if rng.random() < 0.15:
                stages[i - 1], stages[i] = stages[i], stages[i - 1]
    if all(stage == "rapport" for stage in stages):
        stages.append("personal_question")
    return stages


#: Context banks a groomer of each persona may use as cover (a fellow player, a coach,
#: a tutor, a fan of the child's posts); the same banks serve benign scenarios.
CONTEXTS: dict[str, tuple[str, ...]] = {
    "adult": ("sport", "school", "online"),
    "gamer": ("gaming",),
    "teen": ("online", "gaming"),
}
_CONTEXT_COUNTS = {"fast": (0, 1), "medium": (0, 2), "slow": (1, 3)}


def _with_context(
    blocks: list[list[Turn]], *, tempo: str, persona: str, rng: random.Random, slots: Slots, banks: Banks
) -> list[list[Turn]]:
    """Insert a few neutral exchanges of the groomer's cover context between the stages."""
    context = banks[f"context:{rng.choice(CONTEXTS[persona])}"]
    count = min(len(context), rng.randint(*_CONTEXT_COUNTS[tempo]))
    out = list(blocks)
    for exchange in rng.sample(context, count):
        out.insert(rng.randint(0, len(out)), realise(exchange, rng=rng, slots=slots, roles={"A": "G", "B": "C"}))
    return out


def _stage_blocks(stages: list[str], *, rng: random.Random, slots: Slots, banks: Banks) -> list[list[Turn]]:
    used: dict[str, set[int]] = {}
    blocks = []
    for stage in stages:
        # Friendship forming reads like any new friendship: it shares its bank with peers.
        bank = banks["context:rapport" if stage == "rapport" else f"grooming:{stage}"]
        taken = used.setdefault(stage, set())
        fresh = [i for i in range(len(bank)) if i not in taken] or list(range(len(bank)))
        index = rng.choice(fresh)
        taken.add(index)
        blocks.append(realise(bank[index], rng=rng, slots=slots, roles={"A": "G", "B": "C"}))
    return blocks


def grooming_conversation(
    *,
    conversation_id: str,
    tempo: str,
    length: int,
    rng: random.Random,
    groomer_persona: str,
    groomer_weights: tuple[float, ...],
    child_weights: tuple[float, ...],
    background: Sequence[Conversation],
    banks: Banks,
    extra: Mapping[str, Any] | None = None,
) -> Conversation:
    """One grooming conversation of exactly ``length`` messages between a groomer and a child.

    Parameters
    ----------
    conversation_id
        Id written to the record.
    tempo
        ``fast``, ``medium`` or ``slow`` (see :data:`TEMPOS`).
    length
        Number of messages.
    rng
        Source of randomness; the conversation is a pure function of its state.
    groomer_persona
        The groomer's persona (``adult``, ``teen`` posing as a peer, ``gamer``); picks
        the cover context whose neutral exchanges are mixed in.
    groomer_weights, child_weights
        Surface-variant weights of each side (see :func:`.style.persona_weights`), for
        their scripted lines; background lines keep their real writer's text.
    background
        Real conversations to weave the stages into (see :mod:`.background`); the keys
        used are added to ``extra["synthetic"]["background"]``.
    banks
        The phrase banks to write the scripted lines from: one half of
        :func:`.bank.load_banks` (see :func:`.bank.bank_half`).
    extra
        Extra record keys (e.g. provenance of the synthetic record).

    Returns
    -------
    Conversation
        ``label`` 1, ``groomer`` set to the groomer's author id; the groomer's indicator
        lines carry their codes, every other line carries none.

    Notes
    -----
    The scripted lines are synthetic; the background is public real chit-chat (never a
    reserved conversation) under fresh pseudonyms. The content stays at the level of the
    risk indicators in :mod:`federation.data.indicators` and is never explicit.
    """
    slots = Slots(rng)
    speakers = {
        "G": Speaker(author=new_author(rng), weights=groomer_weights, annotated=True),
        "C": Speaker(author=new_author(rng), weights=child_weights),
    }
    real = Background(background, roles=("G", "C"), rng=rng)
    stages = plan_stages(tempo, rng=rng)
    core = _stage_blocks(stages, rng=rng, slots=slots, banks=banks)
    core = _with_context(core, tempo=tempo, persona=groomer_persona, rng=rng, slots=slots, banks=banks)
    turns = weave(core, background=real.take, length=length, rng=rng)
    return Conversation(
        id=conversation_id,
        label=1,
        messages=to_messages(turns, speakers=speakers, rng=rng),
        groomer=speakers["G"].author,
        extra=with_background(extra, real.keys),
    )
