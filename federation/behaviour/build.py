"""The suite's cases, built deterministically from the templates (CheckList, Ribeiro et al., 2020).

Three capabilities:

* **minimum functionality** (``minimum_functionality``): clear grooming arcs of each
  tempo must be flagged; ordinary conversations, templated and real (a fixed subset of
  the reserved chit-chat quarter), must not be;
* **invariance** (``invariance``): renaming the speakers, other platform and app names,
  typos, emoji, a sign-off on every line of the adult, American spelling and two unrelated
  messages swapped leave the decision (flagged or not, warned or not) unchanged;
* **directional** (``directional``): a child's age, a secrecy request, a move to another
  app or an offer to leave home added to an ambiguous adult conversation raises its
  score; a parent joining it, or the first speaker turning out to be the child's age
  peer, lowers it.

Every case is a pure function of the templates and its id, so two runs build the same
suite and a case id names the same conversation in every report.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from federation.behaviour.perturb import PERTURBATIONS, Script
from federation.behaviour.templates import CHOSEN_SLOTS, Exchange, Templates, fill, load_templates
from federation.data.types import Conversation, Message

__all__ = [
    "CAPABILITIES",
    "Case",
    "Expectation",
    "build_cases",
    "real_subset",
]

MFT, INV, DIR = "minimum_functionality", "invariance", "directional"
#: Capability names, in the order they are reported.
CAPABILITIES: tuple[str, ...] = (MFT, INV, DIR)
Expectation = Literal["flagged", "not_flagged", "same", "higher", "lower"]

#: Cases per test of the templated parts.
ARCS_PER_TEMPO = 12
ORDINARY = 24
AMBIGUOUS = 18
#: Reserved real chit-chat conversations in the minimum-functionality test.
REAL_NEGATIVES = 36


@dataclass(frozen=True)
class Case:
    """One behavioural test case.

    Attributes
    ----------
    id
        Stable id, ``capability/test/number``.
    capability, test
        Where it is counted.
    expect
        ``flagged`` / ``not_flagged`` for ``original`` alone (minimum functionality);
        ``same`` decision, or a ``higher`` / ``lower`` score, for ``perturbed`` against
        ``original``.
    original, perturbed
        The conversations scored (``perturbed`` is ``None`` for minimum functionality).
    description
        What the case checks, in words.
    real
        Whether ``original`` is a reserved real chat (its text is never printed).
    """

    id: str
    capability: str
    test: str
    expect: Expectation
    original: Conversation
    perturbed: Conversation | None
    description: str
    real: bool = False


class _Builder:
    """Renders exchanges into scripts for one case, with its own seeded generator."""

    def __init__(self, templates: Templates, case_id: str) -> None:
        self.templates = templates
        self.rng = random.Random(f"cesagram-behaviour:{case_id}")
        self.slots = {name: self.rng.choice(templates.slots[name]) for name in CHOSEN_SLOTS}
        self.slots["year"] = str(int(self.slots["age"]) - 5)
        self._fillers = list(templates.filler)
        self.rng.shuffle(self._fillers)

    def pick(self, exchanges: Sequence[Exchange], index: int | None = None) -> Exchange:
        """The exchange at ``index`` (cycling), or a random one."""
        return exchanges[index % len(exchanges)] if index is not None else self.rng.choice(exchanges)

    def filler(self) -> Exchange:
        """An everyday exchange not used yet in this conversation."""
        return self._fillers.pop()

    def script(self, case_id: str, label: int, blocks: Sequence[tuple[str, Exchange]]) -> Script:
        """The conversation of ``blocks`` (kind, exchange), in order."""
        authors = {"a": self.slots["a_name"].lower(), "c": self.slots["c_name"].lower(), "p": self.slots["p_name"].lower()}
        messages, kinds, numbers = [], [], []
        for number, (kind, exchange) in enumerate(blocks):
            for role, text in exchange.lines:
                messages.append(Message(author=authors[role], text=fill(text, self.slots)))
                kinds.append(kind)
                numbers.append(number)
        conversation = Conversation(id=case_id, label=label, messages=tuple(messages))
        return Script(conversation=conversation, kinds=tuple(kinds), blocks=tuple(numbers), slots=dict(self.slots))


def _arc(templates: Templates, tempo: str, index: int) -> Script:
    case_id = f"{MFT}/grooming_{tempo}/{index:02d}"
    builder = _Builder(templates, case_id)
    blocks: list[tuple[str, Exchange]] = []
    for position, entry in enumerate(templates.arcs[tempo]):
        options = entry.split("|")
        stage = options[index % len(options)]
        if stage == "filler":
            blocks.append(("filler", builder.filler()))
        else:
            blocks.append((stage, builder.pick(templates.grooming[stage], index + position)))
    return builder.script(case_id, 1, blocks)


def _ordinary(templates: Templates, index: int) -> Script:
    case_id = f"{MFT}/ordinary_templated/{index:02d}"
    builder = _Builder(templates, case_id)
    parts = templates.ordinary
    blocks: list[tuple[str, Exchange]] = [("opening", builder.pick(parts["opening"], index))]
    for _ in range(2 + index % 4):
        blocks.append(("filler", builder.filler()))
    blocks.append(("topic", builder.pick(parts["topic"], index)))
    blocks.append(("filler", builder.filler()))
    blocks.append(("filler", builder.filler()))
    blocks.append(("closing", builder.pick(parts["closing"], index)))
    return builder.script(case_id, 0, blocks)


def _ambiguous(
    templates: Templates, index: int, *, adult: bool = True, parent: bool = False, child_age: bool = False,
    peer_age: bool = False, hook: str | None = None, suffix: str = "base",
) -> Script:
    """An ambiguous adult conversation, optionally with one of the directional additions.

    Every variant of conversation ``index`` shares its exchanges and slot values: only
    the additions differ.
    """
    builder = _Builder(templates, f"{DIR}/ambiguous/{index:02d}")
    parts, additions = templates.ambiguous, templates.additions
    fillers = [builder.filler() for _ in range(4)]
    blocks: list[tuple[str, Exchange]] = [("contact", builder.pick(parts["contact"], index))]
    if parent:
        blocks.append(("parent", builder.pick(additions["parent"], index)))
    blocks += [("filler", fillers[0]), ("filler", fillers[1])]
    if adult:
        blocks.append(("adult_life", builder.pick(parts["adult_life"], index)))
    blocks.append(("status", builder.pick(parts["status"], index)))
    if child_age:
        blocks.append(("child_age", builder.pick(additions["child_age"], index)))
    if peer_age:
        blocks.append(("peer_age", builder.pick(additions["peer_age"], index)))
    blocks += [("filler", fillers[2]), ("home", builder.pick(parts["home"], index))]
    if hook is not None:
        blocks.append((hook, builder.pick(templates.grooming[hook], index)))
    blocks += [("filler", fillers[3]), ("closing", builder.pick(parts["closing"], index))]
    return builder.script(f"{DIR}/ambiguous/{index:02d}/{suffix}", 0, blocks)


def real_subset(conversations: Sequence[Conversation], *, count: int = REAL_NEGATIVES) -> list[Conversation]:
    """A fixed subset of ``count`` conversations: the first by the SHA-256 of their id."""
    return sorted(conversations, key=lambda c: hashlib.sha256(c.id.encode("utf-8")).hexdigest())[:count]


def _minimum_functionality(templates: Templates, real: Sequence[Conversation]) -> tuple[list[Case], list[Script]]:
    cases, scripts = [], []
    for tempo in ("fast", "medium", "slow"):
        for index in range(ARCS_PER_TEMPO):
            script = _arc(templates, tempo, index)
            scripts.append(script)
            cases.append(Case(
                id=script.conversation.id, capability=MFT, test=f"grooming_{tempo}", expect="flagged",
                original=script.conversation, perturbed=None,
                description=f"a clear grooming arc at {tempo} tempo ({len(script.conversation.messages)} messages) is flagged",
            ))
    for index in range(ORDINARY):
        script = _ordinary(templates, index)
        scripts.append(script)
        cases.append(Case(
            id=script.conversation.id, capability=MFT, test="ordinary_templated", expect="not_flagged",
            original=script.conversation, perturbed=None,
            description="an ordinary conversation between friends is not flagged",
        ))
    for index, conversation in enumerate(real_subset(real)):
        cases.append(Case(
            id=f"{MFT}/ordinary_real/{index:02d}", capability=MFT, test="ordinary_real", expect="not_flagged",
            original=conversation, perturbed=None, real=True,
            description=f"a reserved real chit-chat conversation ({conversation.id}) is not flagged",
        ))
    return cases, scripts


def _invariance(templates: Templates, bases: Sequence[Script]) -> list[Case]:
    cases = []
    for test, perturbation in PERTURBATIONS.items():
        for base in bases:
            source = base.conversation.id.replace("/", "-")
            case_id = f"{INV}/{test}/{source}"
            perturbed = perturbation(base, random.Random(f"cesagram-behaviour:{case_id}"), templates)
            if perturbed is None:
                continue
            cases.append(Case(
                id=case_id, capability=INV, test=test, expect="same",
                original=base.conversation, perturbed=replace(perturbed, id=case_id),
                description=f"{test.replace('_', ' ')} leaves the decision on {base.conversation.id} unchanged",
            ))
    return cases


_RAISING = {
    "child_age": ("child_age", "the child saying their age"),
    "secrecy_request": ("secrecy", "a secrecy request"),
    "move_to_another_app": ("app_move", "a move to another app"),
    "runaway_offer": ("runaway", "an offer to help the child leave home"),
}


def _directional(templates: Templates) -> tuple[list[Case], list[Script]]:
    cases, bases = [], []
    for index in range(AMBIGUOUS):
        base = _ambiguous(templates, index)
        bases.append(base)
        for test, (addition, words) in _RAISING.items():
            if addition == "child_age":
                changed = _ambiguous(templates, index, child_age=True, suffix=test)
            else:
                changed = _ambiguous(templates, index, hook=addition, suffix=test)
            cases.append(Case(
                id=f"{DIR}/{test}/{index:02d}", capability=DIR, test=test, expect="higher",
                original=base.conversation, perturbed=changed.conversation,
                description=f"adding {words} to an ambiguous adult conversation raises its score",
            ))
        parent = _ambiguous(templates, index, parent=True, suffix="parent_joins")
        cases.append(Case(
            id=f"{DIR}/parent_joins/{index:02d}", capability=DIR, test="parent_joins", expect="lower",
            original=base.conversation, perturbed=parent.conversation,
            description="a parent joining an ambiguous adult conversation lowers its score",
        ))
        # The peer says a child's age, so the adult's own talk (work, a landlord) is left out of both.
        young = _ambiguous(templates, index, adult=False, child_age=True, suffix="child_age_no_adult")
        peer = _ambiguous(templates, index, adult=False, child_age=True, peer_age=True, suffix="peer_age")
        cases.append(Case(
            id=f"{DIR}/peer_age/{index:02d}", capability=DIR, test="peer_age", expect="lower",
            original=young.conversation, perturbed=peer.conversation,
            description="the other speaker saying they are the child's age peer lowers the score after the child's age",
        ))
    return cases, bases


def build_cases(real_negatives: Sequence[Conversation] = (), templates: Templates | None = None) -> list[Case]:
    """Every case of the suite, in a fixed order.

    Parameters
    ----------
    real_negatives
        Real benign conversations for the minimum-functionality test (the command passes
        :func:`federation.data.chitchat.real_negative_set`); a fixed subset of
        :data:`REAL_NEGATIVES` is used. Empty: that test is left out.
    templates
        Default: the installed package data.
    """
    templates = load_templates() if templates is None else templates
    mft, mft_scripts = _minimum_functionality(templates, real_negatives)
    directional, ambiguous = _directional(templates)
    return [*mft, *_invariance(templates, [*mft_scripts, *ambiguous]), *directional]
